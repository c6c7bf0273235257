/* SPDX-License-Identifier: MIT */
/*
 * Bit scans and power-of-two arithmetic.  The builtins compile to one
 * instruction where the core has it (CLZ on ARMv7-M, BSR/TZCNT on x86) and
 * to a libgcc helper on ARMv6-M and RV32IMAC, which have none.
 */
#ifndef MM_BITOPS_H
#define MM_BITOPS_H

#include <mm/compiler.h>

#define BITS_PER_LONG	(8 * (unsigned int)sizeof(long))

/* Find last set: fls(1) = 1, fls(0x80000000) = 32, fls(0) = 0. */
static __always_inline unsigned int fls(unsigned int x)
{
	return x ? 32 - (unsigned int)__builtin_clz(x) : 0;
}

static __always_inline unsigned int fls_long(unsigned long x)
{
	return x ? 8 * sizeof(long) - (unsigned int)__builtin_clzl(x) : 0;
}

/* Index of the lowest set bit, x != 0: __ffs(1) = 0. */
static __always_inline unsigned int __ffs(unsigned long x)
{
	return (unsigned int)__builtin_ctzl(x);
}

/* floor(log2(x)), x != 0. */
static __always_inline unsigned int ilog2(unsigned long x)
{
	return fls_long(x) - 1;
}

static __always_inline int is_power_of_2(unsigned long x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* x rotated right by k < bits of a long: one instruction where the core has it. */
static __always_inline unsigned long ror_long(unsigned long x, unsigned int k)
{
	return (x >> k) | (x << (-k & (BITS_PER_LONG - 1)));
}

/* The inverse of odd x modulo 2^(bits of a long): x * inverse_odd(x) == 1. */
static inline unsigned long inverse_odd(unsigned long x)
{
	unsigned long y = x;	/* right to 3 bits: x * x == 1 mod 8 for odd x */

	/* Newton's step doubles the bits that are right: 6, 12, 24, 48, 96. */
	for (unsigned int bits = 3; bits < BITS_PER_LONG; bits *= 2)
		y *= 2 - x * y;
	return y;
}

/* Smallest power of two >= x, x in [1, LONG_MAX/2]. */
static __always_inline unsigned long roundup_pow_of_two(unsigned long x)
{
	return x <= 1 ? 1 : 1UL << fls_long(x - 1);
}

#endif /* MM_BITOPS_H */
