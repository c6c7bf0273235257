/* SPDX-License-Identifier: MIT */
/*
 * kmalloc's fast paths, inline for kmalloc.c and the malloc facade, so that
 * malloc(64) is one function: size to class by a table lookup (by 8 bytes
 * up to 192, or 4 KiB with the fine classes; by 128 above), then this
 * thread's magazine (or the class's active slab), with everything else --
 * first use, large sizes, magazines to refill or flush, bad pointers -- out
 * of line.
 */
#ifndef MM_KMALLOC_INTERNAL_H
#define MM_KMALLOC_INTERNAL_H

#include <mm/compiler.h>

/*
 * Does a slab object of 'usable' bytes shrunk to 'size' move to a smaller
 * class?  (The tiny core keeps every shrink in place: see its krealloc().)
 * Only when that gives back half of it, and only from KREALLOC_SHRINK_MIN
 * bytes.  A block kept for a much smaller size holds its whole class: a
 * program that reallocs buffers down and up at random ratchets every block
 * up to the largest size it ever had, and on bench/'s mixed workload that
 * was 1.1 MiB, a fifth of the peak RSS.  Half is mimalloc's rule: a block
 * at most twice the size still fits.  (Heap blocks and runs of pages are
 * cut in place instead.)
 */
#define KREALLOC_SHRINK_MIN	256

static __always_inline int krealloc_shrinks_away(size_t usable, size_t size)
{
	return usable >= KREALLOC_SHRINK_MIN && size <= usable / 2;
}

#if IS_ENABLED(CONFIG_MM_TINY)
#include "tiny.h"

/* The tiny core has one kmalloc and one kfree, and the facade calls them. */
#define __kmalloc_slow(size)		kmalloc(size)
#define __kfree_slow(p)			kfree(p)
#define __krealloc_slow(p, size)	krealloc(p, size)
#define kmalloc_fast(size, slow)	slow(size)
#define kfree_fast(p, slow)		slow(p)
#define krealloc_fast(p, size, slow, alloc)	slow(p, size)

#else /* !CONFIG_MM_TINY */

#include "percpu.h"
#include "heap.h"

/* kmalloc.c's tables: 0 / NULL until kmalloc_init() has run. */
/*
 * The largest size kmalloc_size_index[] answers for: 192, or 4 KiB with
 * the fine classes.  Up to 512 it must be the 8-byte table (224, 320 and
 * 448 are no multiples of 128); beyond, the one table costs 448 bytes and
 * saves the branch between the two, which a program of mixed sizes takes
 * at random: on bench/'s mixed workload a fifth fewer mispredicted
 * branches (callgrind's model) and 7% of the time (0.142 -> 0.132 s,
 * medians of 21).
 */
#define KMALLOC_SMALL_MAX	min_t(size_t, IS_ENABLED(CONFIG_MM_KMALLOC_FINE) ? 4096 : 192, \
				      KMALLOC_MAX_CACHE_SIZE)

extern MM_INTERNAL uint8_t kmalloc_size_index[];
extern MM_INTERNAL uint8_t kmalloc_size_index_hi[];
/* And the class bytes past the classes (slab.h): a cache of no objects. */
extern MM_INTERNAL struct kmem_cache *kmalloc_caches[KMALLOC_NR_CLASS_BYTES];
extern MM_INTERNAL struct mm_arena mm_arena_default;

void *__kmalloc_slow(size_t size);
void __kfree_slow(const void *p);
void *__krealloc_slow(void *p, size_t new_size);
size_t __kmalloc_trim_huge(void);
void __kmalloc_huge_stats(size_t *nr, size_t *bytes, size_t *max_nr, size_t *max_bytes);

/*
 * The class tables are written once, by the first kmalloc() of the process
 * (kmalloc_init()), while other threads' inline paths may read them
 * already: atomic loads.  Relaxed for an index -- a stale 0 sends the
 * request the slow way, which waits for the setup -- and acquire for a
 * cache pointer, paired with the setup's release, so that its fields are
 * seen set.  On x86 both are plain moves; ThreadSanitizer reported the
 * plain reads racing the setup's writes.
 */
static __always_inline unsigned int kmalloc_index_load(const uint8_t *table, size_t i)
{
	return __atomic_load_n(&table[i], __ATOMIC_RELAXED);
}

static __always_inline struct kmem_cache *kmalloc_cache_load(unsigned int i)
{
	return __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);
}

/* The cache for 1 <= size <= KMALLOC_MAX_CACHE_SIZE, NULL if none (yet). */
static __always_inline struct kmem_cache *kmalloc_cache(size_t size)
{
	unsigned int i;

	if (size <= KMALLOC_SMALL_MAX)
		i = kmalloc_index_load(kmalloc_size_index, (size - 1) >> 3);
	else if (IS_ENABLED(CONFIG_MM_KMALLOC_FINE))
		i = kmalloc_index_load(kmalloc_size_index_hi, (size - 1) >> 7);
	else
		i = fls((unsigned int)(size - 1));

	return kmalloc_cache_load(i);
}


/*
 * The fast paths call nothing: anything but the common case tail-calls
 * 'slow', which starts over and handles every case.  So malloc() and free()
 * are leaf functions that touch no callee-saved register and no stack, and
 * each caller picks its slow path (kmalloc's, or malloc's that also sets
 * errno).
 *
 * kmalloc: small sizes first, one unsigned comparison deep (size 0 wraps
 * and goes the slow way with everything that is not a class); then this
 * thread's magazine, or without magazines the class's active slab.
 */
static __hot_inline void *__kmalloc(size_t size, void *(*slow)(size_t))
{
	struct kmem_cache *c;

	if (likely(size - 1 < KMALLOC_SMALL_MAX))
		c = kmalloc_cache_load(kmalloc_index_load(kmalloc_size_index, (size - 1) >> 3));
	else if (size - 1 < KMALLOC_MAX_CACHE_SIZE)
		c = kmalloc_cache(size);
	else
		return slow(size);
	if (unlikely(!c))
		return slow(size);		/* first use, or no slab for the class */
	if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
		struct percpu_cache *pc = percpu_this();
		unsigned int idx = c->kmalloc_idx;
		struct magazine *m = &pc->mag[idx];

		if (unlikely(!m->count))
			return slow(size);
		return percpu_pop(pc, m, idx);
	} else {
		mm_flags_t flags = arena_lock(c->arena);
		void *p = slab_alloc_fast(c);

		arena_unlock(c->arena, flags);
		if (likely(p))
			return p;
		return slow(size);
	}
}

/*
 * How many of the default arena's regions, newest first, the inline paths
 * look at.  A host heap grows by doubling, so the newest holds half of it,
 * the next a quarter: a heap of a few MiB has three or four regions, and
 * an object in one of those the newest missed went the slow way (a fifth
 * of the mixed workload's time).  Four cover all but a sixteenth of any
 * heap; each one more costs a miss a compare and a load.
 */
#define KMALLOC_FAST_REGIONS	4

/*
 * The kmalloc class of the page holding p, from its class byte, if p lies in
 * one of the default arena's KMALLOC_FAST_REGIONS newest regions
 * (CONFIG_MM_PAGE_CLASS); 0 for every other page, and always 0 without the
 * option.  Regions are never unmapped where there is concurrency, and a
 * region's 'next' is set before the region is published (region_of()).
 *
 * A region's lookup is bounded by max_pages, which never changes, not by
 * nr_pages, which a regrow or a trim may be changing under the lock.  The
 * class byte of every page past nr_pages is 0 (a page leaves the region
 * free, and comes back zeroed), and the pages past a region's end may be
 * another region's (mmap places a newer region below the older ones): so
 * only a class byte that is not 0 answers, and a 0 goes on to the next
 * region, then the slow way.
 */
static __always_inline unsigned int kmalloc_class_older(const void *p)
{
	const struct mm_region *r = region_first(&mm_arena_default);

	/* Opaque: the common case must not keep its page number for this. */
	__asm__("" : "+r"(p));

	for (unsigned int n = 1; n < KMALLOC_FAST_REGIONS && (r = r->next) != NULL; n++) {
		uintptr_t i = addr_to_pfn(p) - r->start_pfn;
		unsigned int k;

		if (i < r->max_pages && (k = r->meta[i * MM_META_BYTES + 1]) != 0)
			return k;
	}
	return 0;
}

static __always_inline unsigned int kmalloc_class_of(const void *p)
{
	const struct mm_region *r = region_first(&mm_arena_default);
	uintptr_t i = addr_to_pfn(p) - r->start_pfn;

	if (!IS_ENABLED(CONFIG_MM_PAGE_CLASS))
		return 0;
	if (likely(i < r->max_pages)) {
		unsigned int k = r->meta[i * MM_META_BYTES + 1];

		if (likely(k))
			return k;
	}
	/* Starts over from p: nothing of the common case stays live for it. */
	return kmalloc_class_older(p);
}

/*
 * kfree: an object of a kmalloc slab in the default arena's newest region
 * (with CONFIG_MM_PAGE_CLASS, anywhere in the slab, and found without
 * reading the slab; without it, in the slab's first page, whose block byte
 * names a slab head) into this thread's magazine, or without magazines
 * onto its slab.  Anything else -- other regions and caches, large
 * blocks, direct mappings, NULL, bad pointers, a full magazine -- goes the
 * slow way.
 */
static __hot_inline void __kfree(const void *p, void (*slow)(const void *))
{
	struct kmem_cache *c;
	struct slab *s;
	unsigned int k;

	if (IS_ENABLED(CONFIG_MM_PAGE_CLASS)) {
		k = kmalloc_class_of(p);
		/*
		 * A heap block's class byte is past the classes, and so is
		 * a page of objects never handed out: their magazine of
		 * capacity 0 turns them away below, and without magazines
		 * one more comparison does (the 0 test is the lookup's own,
		 * kmalloc_class_of() having found a class).
		 */
		if (unlikely(!k) || (!IS_ENABLED(CONFIG_MM_PERCPU_CACHE) &&
				     unlikely(k >= KMALLOC_HEAP_CLASS)))
			return slow(p);
		c = kmalloc_caches[k];
		s = obj_to_slab(c, p);
	} else {
		const struct mm_region *r = region_first(&mm_arena_default);
		uintptr_t i = addr_to_pfn(p) - r->start_pfn;

		if (unlikely(i >= r->max_pages) || unlikely(meta_type(r->meta[i]) != PT_SLAB))
			return slow(p);
		s = (struct slab *)((uintptr_t)p & ~(uintptr_t)(MM_PAGE_SIZE - 1));
		c = s->cache;
		/*
		 * A cache's descriptor is no block: the slow path reports it.
		 * Magazines turn it away themselves (its index is 0); without
		 * them it was freed here, its cache still on the arena's list.
		 */
		if (!IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && unlikely(c == &kmem_cache_boot))
			return slow(p);
		k = c->kmalloc_idx;
	}
	if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
		if (likely(percpu_free_try(percpu_this(), k, c, s, (void *)p)))
			return;
		return slow(p);
	} else {
		mm_flags_t flags;

		if (slab_free_suspect(c, p))
			return slow(p);
		flags = arena_lock(c->arena);
		if (slab_free_ok(c, s, p, "kfree"))
			slab_free_fast(c, s, (void *)p);
		arena_unlock(c->arena, flags);
	}
}

void *__krealloc_move(void *p, size_t old, size_t size, void *(*alloc)(size_t));

/*
 * Does slab object p of c look free -- a magazine key or a plausible free
 * pointer in it with CONFIG_MM_CHECKS, the mark with CONFIG_MM_FREE_MARK?
 * realloc() must neither hand back nor copy a freed object: it sends one
 * that looks free the slow way, where its magazines and slab say if it is.
 */
static __always_inline int kobj_looks_free(const struct kmem_cache *c, void *p)
{
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		return percpu_key_like(*(uintptr_t *)p) || slab_maybe_free(c, obj_to_slab(c, p), p);
	return obj_marked_free(c, p);
}

/*
 * May realloc() keep p, a pointer into a slab of c, where it is?  Not if it
 * looks free.  With the checks it must be an object's start; with the mark
 * alone the free path's test (slab_free_suspect(): an object's start,
 * not marked) is the whole of it.
 */
static __always_inline int krealloc_may_keep(const struct kmem_cache *c, void *p)
{
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		return slab_is_obj_start(c, p) && !kobj_looks_free(c, p);
	return !slab_free_suspect(c, p);
}

/*
 * realloc's common cases, for an object of a kmalloc slab found from its
 * page's class byte alone (CONFIG_MM_PAGE_CLASS), so neither ksize() nor
 * the arena is asked: a new size it still fits (krealloc_shrinks_away())
 * keeps it where it is; any other (not 0) moves it without going
 * through the slow path's questions again (__krealloc_move(): to grow, a
 * block from 'alloc', kmalloc or malloc which sets errno; to shrink, from
 * kmalloc).  To stay it must pass krealloc_may_keep(); to move it must be
 * an object's start in every build, as ksize() would ask, and not look
 * free (kobj_looks_free()).  Everything else (NULL,
 * size 0, heap and large blocks, bad pointers, freed objects) tail-calls
 * 'slow'.
 */
static __hot_inline void *__krealloc(void *p, size_t size, void *(*slow)(void *, size_t),
				     void *(*alloc)(size_t))
{
	unsigned int k = kmalloc_class_of(p);

	if (likely(k - 1 < KMALLOC_HEAP_CLASS - 1)) {	/* a class, not past them */
		struct kmem_cache *c = kmalloc_caches[k];

		if (likely(size - 1 < c->object_size) &&
		    likely(!krealloc_shrinks_away(c->object_size, size))) {
			if (likely(krealloc_may_keep(c, p)))
				return p;
		} else if (likely(size) && likely(slab_is_obj_start(c, p)) &&
			   likely(!kobj_looks_free(c, p))) {
			return __krealloc_move(p, c->object_size, size, alloc);
		}
	}
	return slow(p, size);
}

/*
 * What kmalloc(), kfree(), malloc() and free() call: the inline paths when
 * built for speed; under -Os straight to the slow paths, which handle every
 * case, so there is one copy of the code instead of four.
 */
#if IS_ENABLED(CONFIG_OPT_SIZE)
#define kmalloc_fast(size, slow)	slow(size)
#define kfree_fast(p, slow)		slow(p)
#define krealloc_fast(p, size, slow, alloc)	slow(p, size)
#else
#define kmalloc_fast(size, slow)	__kmalloc(size, slow)
#define kfree_fast(p, slow)		__kfree(p, slow)
#define krealloc_fast(p, size, slow, alloc)	__krealloc(p, size, slow, alloc)
#endif

#endif /* !CONFIG_MM_TINY */

#endif /* MM_KMALLOC_INTERNAL_H */
