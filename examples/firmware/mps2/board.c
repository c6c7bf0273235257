// SPDX-License-Identifier: MIT
/* The MPS2 boards under QEMU: a semihosting console, no heap of newlib's. */
#include <stdio.h>
#include <mm/mm.h>
#include "../platform.h"
#include "semihost.h"

extern unsigned long sbrk_calls;	/* syscalls.c */

#if IS_ENABLED(CONFIG_CPU_CORTEX_M3)
const char platform_name[] = "mps2-an385 (Cortex-M3)";
#elif IS_ENABLED(CONFIG_CPU_CORTEX_M7)
const char platform_name[] = "mps2-an500 (Cortex-M7)";
#else
const char platform_name[] = "mps2-an386 (Cortex-M4)";
#endif

void platform_write(const char *buf, size_t len, void *ctx)
{
	semihost_write(buf, len);
}

int platform_checks(void)
{
	printf("check: newlib never called _sbrk (all its memory came from mm): %s\n",
	       sbrk_calls ? "FAIL" : "ok");
	return sbrk_calls != 0;
}

#if IS_ENABLED(CONFIG_MM_LOCK_USER)
/*
 * CONFIG_MM_LOCK_USER: the application's lock hooks.  Under an RTOS these
 * would take and give the mutex whose handle is in arena->lock; this bare
 * board masks interrupts instead, counting nesting so that the hooks may
 * be entered again from a handler that interrupts nothing of mm's.
 */
static unsigned int lock_depth;
static unsigned long saved_primask;

void mm_user_lock(void *lock)
{
	unsigned long primask;

	__asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) :: "memory");
	if (lock_depth++ == 0)
		saved_primask = primask;
}

void mm_user_unlock(void *lock)
{
	if (--lock_depth == 0)
		__asm__ volatile("msr primask, %0" :: "r"(saved_primask) : "memory");
}
#endif
