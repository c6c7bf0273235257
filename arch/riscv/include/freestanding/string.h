/* SPDX-License-Identifier: MIT */
/*
 * <string.h> for a toolchain with no C library at all (Debian's
 * riscv64-unknown-elf-gcc): the four functions lib/string.c defines under
 * CONFIG_MM_LIB_STRING.  arch.mk adds this directory with -idirafter, so a
 * toolchain that brings its own C library (newlib, picolibc) keeps its own
 * header.
 */
#ifndef MM_FREESTANDING_STRING_H
#define MM_FREESTANDING_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* MM_FREESTANDING_STRING_H */
