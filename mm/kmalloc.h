/* SPDX-License-Identifier: MIT */
/*
 * kmalloc's fast paths, inline for kmalloc.c and the malloc facade, so that
 * malloc(64) is one function: size to class by a table lookup (two tables
 * with the fine classes: by 8 bytes up to 192, by 128 above), then this
 * thread's magazine (or the class's active slab), with everything else --
 * first use, large sizes, magazines to refill or flush, bad pointers -- out
 * of line.
 */
#ifndef MM_KMALLOC_INTERNAL_H
#define MM_KMALLOC_INTERNAL_H

#include "percpu.h"

/* kmalloc.c's tables: 0 / NULL until kmalloc_init() has run. */
extern MM_INTERNAL uint8_t kmalloc_size_index[24];
extern MM_INTERNAL uint8_t kmalloc_size_index_hi[];
extern MM_INTERNAL struct kmem_cache *kmalloc_caches[KMALLOC_NR_CLASSES];
extern MM_INTERNAL struct mm_arena mm_arena_default;

void *__kmalloc_slow(size_t size);
void __kfree_slow(const void *p);

/* The cache for 1 <= size <= KMALLOC_MAX_CACHE_SIZE, NULL if none (yet). */
static __always_inline struct kmem_cache *kmalloc_cache(size_t size)
{
	unsigned int i;

	if (size <= 192)
		i = kmalloc_size_index[(size - 1) >> 3];
	else if (IS_ENABLED(CONFIG_MM_KMALLOC_FINE))
		i = kmalloc_size_index_hi[(size - 1) >> 7];
	else
		i = fls((unsigned int)(size - 1));

	return kmalloc_caches[i];
}

static __hot_inline void *__kmalloc(size_t size)
{
	if (likely(size - 1 < KMALLOC_MAX_CACHE_SIZE)) {
		struct kmem_cache *c = kmalloc_cache(size);

		if (likely(c)) {
			void *p;

			if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
				p = percpu_alloc(c);
				if (likely(p))
					return p;
			} else {
				mm_flags_t flags = arena_lock(c->arena);

				p = slab_alloc_fast(c);
				arena_unlock(c->arena, flags);
				if (likely(p))
					return p;
			}
			return kmem_cache_alloc(c);
		}
	}
	return __kmalloc_slow(size);
}

/*
 * An object in the first page of a slab of the default arena: its page's
 * metadata byte names a slab head.  Anything else (objects further into a
 * multi-page slab, large blocks, direct mappings, NULL, bad pointers) goes
 * the slow way.
 */
static __hot_inline void __kfree(const void *p)
{
	struct mm_arena *a = &mm_arena_default;
	uintptr_t pfn = addr_to_pfn(p);
	struct mm_region *r = region_of(a, pfn);

	if (likely(r) && likely(meta_type(*page_meta(r, pfn)) == PT_SLAB)) {
		struct slab *s = pfn_to_addr(pfn);
		struct kmem_cache *c = s->cache;
		mm_flags_t flags;

		if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && likely(c->kmalloc_idx) &&
		    likely(percpu_free(c, s, (void *)p)))
			return;
		flags = arena_lock(c->arena);
		if (slab_free_ok(c, s, p, "kfree"))
			slab_free_fast(c, s, (void *)p);
		arena_unlock(c->arena, flags);
		return;
	}
	__kfree_slow(p);
}

/*
 * What kmalloc(), kfree(), malloc() and free() call: the inline paths when
 * built for speed; under -Os the out-of-line ones, which handle every case,
 * so there is one copy of the code instead of four.
 */
#if IS_ENABLED(CONFIG_OPT_SIZE)
#define kmalloc_fast(size)	__kmalloc_slow(size)
#define kfree_fast(p)		__kfree_slow(p)
#else
#define kmalloc_fast(size)	__kmalloc(size)
#define kfree_fast(p)		__kfree(p)
#endif

#endif /* MM_KMALLOC_INTERNAL_H */
