// SPDX-License-Identifier: MIT
/*
 * Semihosting console and exit.  The console is opened as ":tt" (what
 * newlib's rdimon does), so writes are counted strings and may hold any
 * byte; should the host refuse the open, SYS_WRITE0 of NUL-terminated
 * chunks is the fallback every semihosting host implements.
 */
#include <stdint.h>
#include "semihost.h"

static long console = -2;	/* -2: not opened yet, -1: open refused */

static long console_handle(void)
{
	if (console == -2) {
		static const char tt[] = ":tt";
		const uintptr_t args[3] = { (uintptr_t)tt, 4 /* "w" */, sizeof(tt) - 1 };

		console = semihost_call(SYS_OPEN, args);
	}
	return console;
}

void semihost_write(const char *buf, size_t len)
{
	long h = console_handle();

	if (h >= 0) {
		const uintptr_t args[3] = { (uintptr_t)h, (uintptr_t)buf, len };

		semihost_call(SYS_WRITE, args);
		return;
	}
	while (len) {
		char chunk[65];
		size_t n = len < sizeof(chunk) - 1 ? len : sizeof(chunk) - 1;

		for (size_t i = 0; i < n; i++)
			chunk[i] = buf[i] ? buf[i] : ' ';
		chunk[n] = 0;
		semihost_call(SYS_WRITE0, chunk);
		buf += n;
		len -= n;
	}
}

void semihost_exit(int status)
{
	if (status == 0) {
		/* On A32/T32 the argument is the reason itself, not a block. */
		semihost_call(SYS_EXIT, (const void *)(uintptr_t)ADP_Stopped_ApplicationExit);
	} else {
		const uintptr_t args[2] = { ADP_Stopped_ApplicationExit, (uintptr_t)status };

		semihost_call(SYS_EXIT_EXTENDED, args);
		/* A host without SYS_EXIT_EXTENDED: any other reason means failure. */
		semihost_call(SYS_EXIT, (const void *)(uintptr_t)ADP_Stopped_RunTimeErrorUnknown);
	}
	for (;;)
		__asm__ volatile("bkpt 0");
}
