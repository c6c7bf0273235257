/* SPDX-License-Identifier: MIT */
/*
 * What the firmware example needs from the board it runs on.  Two boards:
 * mps2/ (Cortex-M4 under QEMU, semihosting console) and host.c (a Linux
 * process), so the same application is tested in both places.
 */
#ifndef FIRMWARE_PLATFORM_H
#define FIRMWARE_PLATFORM_H

#include <stddef.h>

/* The board's name, for the banner. */
extern const char platform_name[];

/*
 * Write straight to the console, without stdio and without allocating:
 * this is mm's output hook, and mm may call it while it holds its lock.
 */
void platform_write(const char *buf, size_t len, void *ctx);

/*
 * Board-specific checks at the end of the run; returns how many failed.
 * On the MPS2 board: newlib never asked for a heap of its own (_sbrk).
 */
int platform_checks(void);

#endif /* FIRMWARE_PLATFORM_H */
