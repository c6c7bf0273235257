/* SPDX-License-Identifier: MIT */
/*
 * The buddy page allocator's API, in Linux's words.
 *
 * A block of order k is 2^k contiguous pages aligned to 2^k pages.  Every
 * operation is O(MM_MAX_ORDER): a bitmap of non-empty free lists finds the
 * smallest order that can serve a request with one bit scan, a split pushes
 * at most MM_MAX_ORDER halves, and a free merges at most MM_MAX_ORDER times.
 */
#ifndef MM_PAGE_ALLOC_H
#define MM_PAGE_ALLOC_H

#include <mm/arena.h>

MM_BEGIN_DECLS

/* Allocate 2^order pages; NULL if order > MM_MAX_ORDER or no memory. */
void *alloc_pages(struct mm_arena *arena, unsigned int order) __malloc;

/*
 * Free a block alloc_pages() returned, with the order it was allocated
 * with.  A pointer that is not such a block (foreign, not a block head,
 * another order, already free, an alloc_pages_exact() block) is reported
 * and ignored.
 */
void free_pages(struct mm_arena *arena, void *addr, unsigned int order);

/* The same on the default arena, as Linux's __get_free_pages(). */
static inline __malloc void *__get_free_pages(unsigned int order)
{
	struct mm_arena *a = mm_default_arena();

	return a ? alloc_pages(a, order) : NULL;
}

static inline __malloc void *__get_free_page(void)
{
	return __get_free_pages(0);
}

static inline void free_page(void *addr)
{
	struct mm_arena *a = mm_default_arena();

	if (a)
		free_pages(a, addr, 0);
}

#if !IS_ENABLED(CONFIG_MM_TINY)
/*
 * Exactly DIV_ROUND_UP(size, MM_PAGE_SIZE) pages: the block is rounded up
 * to a power of two and the tail beyond the pages needed goes straight back
 * to the free lists.  Free with the same size: any other is reported and
 * frees nothing (its pages after the first are marked as the block's own,
 * so neither a prefix of it nor a neighbour passes for it).
 */
void *alloc_pages_exact(struct mm_arena *arena, size_t size) __malloc;
void free_pages_exact(struct mm_arena *arena, void *addr, size_t size);

/* Order of the allocated block at addr, or -1 if addr is not one. */
int mm_page_order(struct mm_arena *arena, const void *addr);
#endif

#if IS_ENABLED(CONFIG_MM_REPORTS)
/* The /proc/buddyinfo line for this arena, through the output hook. */
void mm_buddyinfo(struct mm_arena *arena);
#else
static inline void mm_buddyinfo(struct mm_arena *arena)
{
}
#endif

#if IS_ENABLED(CONFIG_MM_REPORTS) && !IS_ENABLED(CONFIG_MM_TINY)
/*
 * One character per page, 64 to a line, each line prefixed with its
 * address:  '.' free  'P' page block head  'S' slab head  'K' kmalloc
 * large block head  'k' further pieces of an exact block  '-' rest of an
 * allocated block  'M' region metadata.  (The tiny core keeps no per-page
 * metadata to draw: nothing.)
 */
void mm_page_map(struct mm_arena *arena);
#else
static inline void mm_page_map(struct mm_arena *arena)
{
}
#endif

MM_END_DECLS

#endif /* MM_PAGE_ALLOC_H */
