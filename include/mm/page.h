/* SPDX-License-Identifier: MIT */
/*
 * Page geometry, fixed at build time by Kconfig.
 *
 * Page frame numbers are absolute (address >> MM_PAGE_SHIFT), as Linux's
 * pfns are physical: a buddy block of order k is then aligned to 2^k pages
 * in the address space, not just inside its region, which is what lets a
 * slab find its header from any object with one AND, and what gives
 * aligned_alloc() its alignment for free.
 */
#ifndef MM_PAGE_H
#define MM_PAGE_H

#include <mm/compiler.h>

#define MM_PAGE_SHIFT	CONFIG_MM_PAGE_SHIFT
#define MM_PAGE_SIZE	((size_t)1 << MM_PAGE_SHIFT)
#define MM_PAGE_MASK	(~(MM_PAGE_SIZE - 1))
#define MM_MAX_ORDER	CONFIG_MM_MAX_ORDER		/* inclusive */
#define MM_NR_ORDERS	(MM_MAX_ORDER + 1)
#define MM_MAX_BLOCK	(MM_PAGE_SIZE << MM_MAX_ORDER)	/* largest buddy block */

static_assert(MM_NR_ORDERS <= 32, "free_mask is 32 bits wide");
static_assert(MM_PAGE_SHIFT + MM_MAX_ORDER < 8 * sizeof(size_t),
	      "the largest block must be addressable: lower CONFIG_MM_MAX_ORDER or "
	      "CONFIG_MM_PAGE_SHIFT (their sum below the bits of a size_t)");

static __always_inline uintptr_t addr_to_pfn(const void *addr)
{
	return (uintptr_t)addr >> MM_PAGE_SHIFT;
}

static __always_inline void *pfn_to_addr(uintptr_t pfn)
{
	return (void *)(pfn << MM_PAGE_SHIFT);
}

/*
 * Smallest order whose block holds size bytes (Linux's get_order()); size 0
 * is order 0.  The result may exceed MM_MAX_ORDER: callers check.
 */
static inline unsigned int get_order(size_t size)
{
	unsigned int order = 0;

	if (size > MM_PAGE_SIZE) {
		size = (size - 1) >> MM_PAGE_SHIFT;
		order = 8 * sizeof(size_t) - (unsigned int)__builtin_clzl(size);
	}
	return order;
}

#endif /* MM_PAGE_H */
