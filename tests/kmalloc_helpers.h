/* SPDX-License-Identifier: MIT */
/*
 * What the tests of kmalloc and of its heap share (full core only): the
 * default arena, its figures, "settle" before a nothing-lost comparison,
 * and the heap's rule for usable sizes.
 */
#ifndef MM_TEST_KMALLOC_HELPERS_H
#define MM_TEST_KMALLOC_HELPERS_H

#include "helpers.h"
#include "../mm/heap.h"		/* white-box: which sizes the heap serves */

static inline struct mm_arena *def(void)
{
	struct mm_arena *a = mm_default_arena();

	assert_non_null(a);
	return a;
}

static inline struct mm_diag diag(void)
{
	struct mm_diag d;

	mm_arena_diag(def(), &d);
	return d;
}

/*
 * Every empty slab and the heap's kept span back to the buddy allocator,
 * this thread's magazines first; the pages then in use.
 */
static inline size_t settle(void)
{
	mm_percpu_drain();
	kmem_cache_reap(def());
	return diag().allocated;
}

/*
 * A heap block's usable bytes for 'size': its block (the payload and an
 * 8-byte header, to 16 bytes, 32 at least) less the header.  A block may
 * be 16 bytes bigger, where cutting it would leave less than a block.
 */
static inline size_t heap_usable(size_t size)
{
	size_t n = ALIGN(size + 8, 16);

	return (n < 32 ? 32 : n) - 8;
}

/* Is ksize k right for a heap block holding 'size' bytes? */
static inline int heap_ksize_ok(size_t k, size_t size)
{
	return k == heap_usable(size) || k == heap_usable(size) + 16;
}

/*
 * Does a slab object of ks bytes shrunk to n move to a smaller class?  The
 * rule the tests hold kmalloc to: from 256 bytes, when n is at most half.
 */
static inline int slab_shrink_moves(size_t ks, size_t n)
{
	return ks >= 256 && n <= ks / 2;
}

/* The class kmalloc must pick for 'size', from the Kconfig alone. */
static inline size_t expected_class(size_t size)
{
	size_t best = SIZE_MAX;

	if (!size)
		size = 1;
	for (unsigned int i = CONFIG_MM_KMALLOC_SHIFT_LOW; i <= CONFIG_MM_KMALLOC_SHIFT_HIGH; i++) {
		if (((size_t)1 << i) >= size) {
			best = (size_t)1 << i;
			break;
		}
	}
#if IS_ENABLED(CONFIG_MM_KMALLOC_96_192)
	if (CONFIG_MM_KMALLOC_SHIFT_LOW <= 6 && size <= 96 && size > 64 && 96 < best)
		best = 96;
	if (CONFIG_MM_KMALLOC_SHIFT_LOW <= 7 && size <= 192 && size > 128 && 192 < best)
		best = 192;
#endif
#if IS_ENABLED(CONFIG_MM_KMALLOC_FINE)
	/*
	 * 5/4, 6/4 and 7/4 of every power of two from 64, but from 512 bytes
	 * to 4 KiB the four classes a doubling that fill slabs of 4, 8 or 16
	 * KiB (test_fitted_classes_fill_slabs() checks that they do).
	 */
	static const size_t fitted[] = {
		576, 672, 800, 1008, 1152, 1344, 1616, 2032, 2320, 2704, 3264, 4064,
	};

	for (size_t p2 = 64; p2 < KMALLOC_MAX_CACHE_SIZE; p2 *= 2) {
		if (p2 >= 512 && p2 <= 2048) {
			for (size_t k = 0; k < ARRAY_SIZE(fitted); k++)
				if (fitted[k] > p2 && fitted[k] < 2 * p2 && size <= fitted[k] &&
				    fitted[k] < best)
					best = fitted[k];
			continue;
		}
		/* None below the smallest class: 80 and 112 go with 128 there. */
		for (size_t q = 7; q >= 5; q--)
			if (size > p2 && size <= q * p2 / 4 && q * p2 / 4 >= KMALLOC_MIN_SIZE)
				best = q * p2 / 4;
	}
#endif
	return best;
}

/*
 * Does the class of 'cls' bytes get a slab cache?  The rule of
 * CONFIG_MM_SLAB_MAX_ORDER's help: a slab of at most that order -- and of
 * at most MM_MAX_ORDER -- holds its objects, the header in the place of
 * the first, with at most 1/8 of it lost; else kmalloc serves the class's
 * sizes with whole pages.  With a largest block of 8 KiB, kmalloc-5120
 * has none: one object in 8 KiB loses three eighths.
 */
static inline int class_has_slab(size_t cls)
{
	size_t align = max_t(size_t, cls & -cls, sizeof(void *));
	size_t size = ALIGN(cls, sizeof(void *)), first;
	unsigned int max_order = min_t(unsigned int, CONFIG_MM_SLAB_MAX_ORDER, MM_MAX_ORDER);

	if (IS_ENABLED(CONFIG_MM_FREE_MARK))	/* the pointer and the mark (slab.h) */
		size = max_t(size_t, size, 2 * sizeof(void *));
	size = ALIGN(size, align);
	first = ALIGN(sizeof(struct slab), align);
	for (unsigned int o = 0; o <= max_order; o++) {
		size_t bytes = MM_PAGE_SIZE << o;

		if (bytes >= first + size &&
		    (bytes - (bytes - first) / size * size) * 8 <= bytes)
			return 1;
	}
	return 0;
}

/*
 * Where the heap starts for kmalloc: above CONFIG_MM_HEAP_MIN, or above the
 * class that holds sizes on both sides of it, which keeps its cache and
 * all its sizes (kmalloc.c) -- with the heap from 600 bytes, 601 to 672
 * are objects of kmalloc-672.
 */
static inline size_t heap_lo(void)
{
	size_t cls = expected_class(HEAP_MIN + 1);

	return cls != SIZE_MAX && expected_class(HEAP_MIN) == cls && class_has_slab(cls) ?
	       cls : HEAP_MIN;
}

/*
 * Where it ends: at CONFIG_MM_HEAP_MAX_KB, or below the class that holds
 * sizes on both sides of it, which keeps its cache as well -- with spans
 * of a page and the heap up to 3 KiB, 2705 to 3264 are objects of
 * kmalloc-3264.  (A class no slab suits has no cache: the heap serves
 * its sizes, at either end.)
 */
static inline size_t heap_hi(void)
{
	/* Found once: the random tests ask at every size, from several threads. */
	static size_t hi;
	size_t cls, s = __atomic_load_n(&hi, __ATOMIC_RELAXED);

	if (s)
		return s;
	s = HEAP_MAX;
	cls = expected_class(HEAP_MAX);
	if (cls != SIZE_MAX && expected_class(HEAP_MAX + 1) == cls && class_has_slab(cls)) {
		while (s > HEAP_MIN && expected_class(s) == cls)
			s--;
	}
	__atomic_store_n(&hi, s, __ATOMIC_RELAXED);
	return s;
}

/* Does kmalloc(size) take a heap block (before any class spills into the heap)? */
static inline int heap_block(size_t size)
{
	return IS_ENABLED(CONFIG_MM_HEAP) && size > heap_lo() && size <= heap_hi();
}

/*
 * The object size of the class of 'size' if it has a slab cache, else of
 * the largest class below it that has one; 0 if none has.  For a test
 * that needs slab objects of about 'size' bytes in any class layout:
 * above the largest class, or where the heap serves, kmalloc(size) is
 * whole pages or a heap block.  Nor a class that spills into the heap
 * (CONFIG_MM_HEAP_SPILL_KB): past its bound -- with 1 KiB, its first
 * slab -- it takes heap blocks too.
 */
static inline size_t slab_class_size(size_t size)
{
	for (size_t s = min_t(size_t, size, KMALLOC_MAX_CACHE_SIZE); s; s--) {
		struct kmem_cache *c = kmalloc_slab(s);

		if (c && c->spill_slabs == ~0UL)
			return kmem_cache_size(c);
	}
	return 0;
}

/*
 * 'size' where the heap serves it, else slab_class_size(size): a test of
 * slab objects and heap blocks, where kmalloc(size) of neither kind is
 * whole pages (classes that end below, or slabs too small for it).
 */
static inline size_t heap_or_slab(size_t size)
{
	return heap_block(size) ? size : slab_class_size(size);
}

/* The object size of the largest class below 'limit' bytes with a slab cache; 0 if none. */
static inline size_t slab_class_below(size_t limit)
{
	for (size_t s = min_t(size_t, limit - 1, KMALLOC_MAX_CACHE_SIZE); s; s--) {
		struct kmem_cache *c = kmalloc_slab(s);

		if (c && kmem_cache_size(c) < limit)
			return kmem_cache_size(c);
	}
	return 0;
}

/* The same as a cache: the class a test of slab objects of about 'size' takes. */
static inline struct kmem_cache *slab_class_near(size_t size)
{
	size_t n = slab_class_size(size);

	assert_true(n > 0);
	return kmalloc_slab(n);
}

#endif /* MM_TEST_KMALLOC_HELPERS_H */
