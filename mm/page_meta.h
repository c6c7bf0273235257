/* SPDX-License-Identifier: MIT */
/*
 * The per-page metadata byte, the same in both cores (the full one and
 * CONFIG_MM_TINY's).
 *
 * Only the head page of a block carries anything; every
 * other page of a block, free or allocated, is 0.  That invariant is kept by
 * split (writes the new heads) and merge (clears the absorbed head), both
 * O(1) per step, and it is what lets any address inside a block find the
 * block's head in at most MM_MAX_ORDER probes (block_head()):
 *
 *	7   5 4     0
 *	+----+-------+
 *	|type| order |	type: enum page_type below; 0 = not a head
 *	+----+-------+
 */
#ifndef MM_PAGE_META_H
#define MM_PAGE_META_H

#include <mm/page.h>

enum page_type {
	PT_TAIL = 0,		/* not the head of a block */
	PT_FREE = 1,		/* head of a free block, contents live */
	PT_PAGES = 2,		/* head of a block from alloc_pages() */
	PT_SLAB = 3,		/* head of a slab */
	PT_LARGE = 4,		/* head of a kmalloc block above the largest class */
	PT_CLEAN = 5,		/* head of a free block the backend discarded */
	PT_CONT = 6,		/* a later piece of an exact block: kmalloc's or alloc_pages_exact()'s */
	PT_PCP = 7,		/* a free page in the arena's order-0 cache */
};

#define PAGE_META(type, order)	((uint8_t)((type) << 5 | (order)))
static_assert(MM_MAX_ORDER < 32, "order must fit in 5 bits of the metadata byte");

static __always_inline unsigned int meta_type(uint8_t m)
{
	return m >> 5;
}

static __always_inline unsigned int meta_order(uint8_t m)
{
	return m & 31;
}

static __always_inline int meta_is_free(uint8_t m)
{
	return meta_type(m) == PT_FREE || meta_type(m) == PT_CLEAN;
}

#endif /* MM_PAGE_META_H */
