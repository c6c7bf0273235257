/* SPDX-License-Identifier: MIT */
/*
 * ARM semihosting, the part a firmware needs to print and to stop: the
 * debugger (or QEMU with -semihosting-config enable=on) services a
 * "bkpt 0xab" with the operation in r0 and its argument in r1.
 */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stddef.h>

#define SYS_OPEN		0x01
#define SYS_WRITEC		0x03
#define SYS_WRITE0		0x04
#define SYS_WRITE		0x05
#define SYS_EXIT		0x18
#define SYS_EXIT_EXTENDED	0x20

#define ADP_Stopped_ApplicationExit	0x20026
#define ADP_Stopped_RunTimeErrorUnknown	0x20023

static inline long semihost_call(long op, const void *arg)
{
	register long r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;

	__asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
	return r0;
}

/* Write to the host's console (":tt"); the whole buffer, NULs included. */
void semihost_write(const char *buf, size_t len);

/*
 * Stop the simulation with this exit status: 0 is ADP_Stopped_ApplicationExit
 * (QEMU exits 0); anything else goes through SYS_EXIT_EXTENDED so the status
 * itself reaches the host.
 */
void semihost_exit(int status) __attribute__((noreturn));

#endif /* SEMIHOST_H */
