/* SPDX-License-Identifier: MIT */
/*
 * kmalloc's heap (CONFIG_MM_HEAP): what kmalloc.c, slab.c (reclaim),
 * malloc.c (mallinfo2) and validate.c call, and empty stubs without the
 * option.  heap.c says how it works.
 */
#ifndef MM_HEAP_H
#define MM_HEAP_H

#include "slab.h"

/*
 * The class byte of every page of a heap span: one past the last kmalloc
 * class.  kmalloc_caches[] and a thread's magazines have an entry for it
 * that nothing is ever put in (a cache of no objects, a magazine of
 * capacity 0), so kfree()'s inline path, which reads a class byte and
 * pushes onto that class's magazine, sends a heap block the slow way
 * without a test of its own.
 */
#define KMALLOC_HEAP_CLASS	KMALLOC_NR_CLASSES

#if IS_ENABLED(CONFIG_MM_HEAP)

#define HEAP_MIN	((size_t)CONFIG_MM_HEAP_MIN)
#define HEAP_MAX	((size_t)CONFIG_MM_HEAP_MAX_KB << 10)
/* A class all above SPILL_MIN takes heap blocks past SPILL_BYTES of slabs (kmalloc.c). */
#define SPILL_BYTES	((size_t)CONFIG_MM_HEAP_SPILL_KB << 10)
#define SPILL_MIN	((size_t)CONFIG_MM_HEAP_SPILL_MIN)

/* Does the heap serve a request of 'size' bytes? */
static __always_inline int heap_serves(size_t size)
{
	return size - HEAP_MIN - 1 < HEAP_MAX - HEAP_MIN;
}

/* heap_alloc() takes the arena lock; everything else wants it held. */
void *heap_alloc(struct mm_arena *a, size_t size, size_t align);
void __heap_free_locked(struct mm_arena *a, void *p);
int __heap_resize_locked(struct mm_arena *a, void *p, size_t size);
size_t heap_usable_size(const void *p);
size_t __heap_reclaim_locked(struct mm_arena *a);
size_t __heap_free_bytes(struct mm_arena *a);
int __heap_validate_span(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
			 size_t *free_blocks, const char **why);
int __heap_validate_lists(struct mm_arena *a, size_t free_blocks, const char **why);
#else
#define HEAP_MIN	((size_t)0)
#define HEAP_MAX	((size_t)0)
#define SPILL_BYTES	((size_t)0)
#define SPILL_MIN	SIZE_MAX	/* no class is above it */

static __always_inline int heap_serves(size_t size)
{
	return 0;
}

static inline void *heap_alloc(struct mm_arena *a, size_t size, size_t align)
{
	return NULL;
}

static inline void __heap_free_locked(struct mm_arena *a, void *p)
{
}

static inline int __heap_resize_locked(struct mm_arena *a, void *p, size_t size)
{
	return 0;
}

static inline size_t heap_usable_size(const void *p)
{
	return 0;
}

static inline size_t __heap_reclaim_locked(struct mm_arena *a)
{
	return 0;
}

static inline size_t __heap_free_bytes(struct mm_arena *a)
{
	return 0;
}

static inline int __heap_validate_span(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
				       size_t *free_blocks, const char **why)
{
	return 0;
}

static inline int __heap_validate_lists(struct mm_arena *a, size_t free_blocks,
					const char **why)
{
	return 0;
}
#endif

/* Is the page at pfn of r part of a heap span? */
static __always_inline int page_in_heap(struct mm_region *r, uintptr_t pfn)
{
	return IS_ENABLED(CONFIG_MM_HEAP) && *page_class(r, pfn) == KMALLOC_HEAP_CLASS;
}

#endif /* MM_HEAP_H */
