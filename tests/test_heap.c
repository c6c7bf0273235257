// SPDX-License-Identifier: MIT
/*
 * mm/heap.c: kmalloc's boundary-tag heap for the medium sizes
 * (CONFIG_MM_HEAP_MIN < size <= CONFIG_MM_HEAP_MAX_KB KiB).
 *
 *  - merging: a freed block joins its free neighbours, before and after,
 *    at once, and the joined block serves a request of the joined size
 *    where the first of them was;
 *  - realloc cuts a block in place when it shrinks (the tail is a free
 *    block right after it) and grows it into a free block after it, and
 *    moves it, contents kept and the old block freed, when it cannot;
 *  - kmalloc_aligned() and posix_memalign() cut aligned blocks;
 *  - bad frees (CONFIG_MM_CHECKS): double frees, merged or not, pointers
 *    into a block, to its header, into a span's header;
 *  - spans: one empty span is kept, the others go back at once, and
 *    kmem_cache_reap()/malloc_trim() give back the kept one;
 *  - mm_arena_validate() sees a corrupted block header;
 *  - threads handing blocks to each other;
 *  - a random differential test against a model, sizes mostly in the
 *    heap's range, realloc across the slab/heap/page boundaries;
 *  - classes that spill into the heap past their bound of slabs
 *    (CONFIG_MM_HEAP_SPILL_KB), and what one spilled serves another.
 *
 * Built only where CONFIG_MM_HEAP is set (tests/Makefile).  The tests look
 * at block headers where they must (the 8-byte word before a payload is
 * its size and two flag bits, as in heap.c): white-box on purpose.
 *
 * The heap is one for the whole program: with the libc facade, CMocka
 * and the C library allocate from it too, so a test cannot know where
 * its first block will go.  heap_run() allocates until it has blocks
 * lying back to back, with a guard block at either end that stays
 * allocated, so that what the test frees between the guards merges only
 * with what the test means it to.
 *
 * MM_TEST_SCALE=N (default 1) divides the operation counts by N, e.g.
 * MM_TEST_SCALE=10 under valgrind (scripts/check.sh does that).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "kmalloc_helpers.h"
#include "../mm/heap_layout.h"	/* white-box: which sizes the heap serves, its spans */

#if !IS_ENABLED(CONFIG_MM_HEAP)
#error "test_heap is built only with CONFIG_MM_HEAP (tests/Makefile)"
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define M(x) mm_##x
#elif IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
#define M(x) x
#include <malloc.h>
#endif

#define PS		MM_PAGE_SIZE

/* A block header's flag bits, as heap.c has them. */
#define HB_FREE		((size_t)1)
#define HB_PREV_FREE	((size_t)2)
#define HB_BITS		((size_t)15)

/* A size the heap serves in every configuration: n bytes above its least. */
#define H(n)		(heap_lo() + (size_t)(n))
/*
 * The heap's greatest size: HEAP_MAX, or less where a class holds sizes
 * on both sides of it (heap_hi()).
 */
#define HEAP_TOP	heap_hi()
/*
 * The same, or the heap's greatest where the heap is narrower than that
 * (MM_HEAP_MIN near MM_HEAP_MAX_KB: 14.4 to 15 KiB, say).
 */
#define HC(n)		min_t(size_t, H(n), HEAP_TOP)

static double scale = 1.0;	/* divisor of the operation counts */

static long scaled(long n)
{
	long v = (long)(n / scale);

	return v < 1 ? 1 : v;
}

static uint64_t rng_state = 0x13198a2e03707344ULL;

static uint64_t rnd(void)
{
	return xorshift64s(&rng_state);
}

/* ---- What the heap promises ----------------------------------------------- */

/* The bytes of the live heap block at p: its payload and its header. */
static size_t blk(const void *p)
{
	return ksize(p) + 8;
}

/* The header word of the block whose payload is at p, and its prev_size. */
static size_t *head_of(void *p)
{
	return (size_t *)((char *)p - 8);
}

static size_t *prev_size_of(void *p)
{
	return (size_t *)((char *)p - 16);
}

static size_t head_size(void *p)
{
	return *head_of(p) & ~HB_BITS;
}

/* The payload of the block 'bytes' after the one at p. */
static void *after(void *p, size_t bytes)
{
	return (char *)p + bytes;
}

/*
 * K_HUGE: past the largest buddy block, a direct mapping -- the heap's
 * sizes reach there where its largest is a good part of the largest block
 * (small MM_MAX_ORDER).
 */
enum kind { K_SLAB, K_HEAP, K_LARGE, K_HUGE };

static enum kind kind_of(size_t size)
{
	if (heap_block(size))
		return K_HEAP;
	/* A class no slab suits (small MM_MAX_ORDER) is whole pages. */
	if (size <= KMALLOC_MAX_CACHE_SIZE && class_has_slab(expected_class(size)))
		return K_SLAB;
	return size <= MM_MAX_BLOCK ? K_LARGE : K_HUGE;
}

/*
 * What the block at p, of 'size' bytes, is: a class that spills into the
 * heap (CONFIG_MM_HEAP_SPILL_KB) hands out heap blocks too, whose usable
 * size (8 more than a multiple of 16) is never a class's.
 */
static enum kind block_kind(const void *p, size_t size)
{
	enum kind k = kind_of(size);

	if (k == K_SLAB && ksize(p) != expected_class(size))
		return K_HEAP;
	/*
	 * An alignment no span holds with the size -- kmalloc_aligned(7160,
	 * 2048) in spans of 8 KiB -- or no span to be had: whole pages
	 * (kmalloc.c), whose usable size no heap block has.
	 */
	if (k == K_HEAP && ksize(p) % PS == 0 && (uintptr_t)p % PS == 0)
		return K_LARGE;
	return k;
}

/*
 * Is k what ksize() may say of a block of 'size' bytes of its kind?  A
 * large block is exact in pages, or one page more where its exact end
 * would be an odd page (page_alloc.c, exact_end()); a direct mapping is
 * at least as big (its pages, and what a shrink in place left it).
 */
static int ksize_ok(enum kind kind, size_t k, size_t size)
{
	switch (kind) {
	case K_HEAP:
		return heap_ksize_ok(k, size);
	case K_SLAB:
		return k == expected_class(size);
	case K_HUGE:
		return k >= size;
	default:
		return k == ALIGN(size, PS) || k == ALIGN(size, PS) + PS;
	}
}

/* ---- Contents ------------------------------------------------------------------ */

static unsigned char pat(uint32_t seed, size_t i)
{
	return (unsigned char)(seed + i * 7 + (i >> 8));
}

static void fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed, i);
}

static int check_fill(const void *p, size_t n, uint32_t seed)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != pat(seed, i))
			return 0;
	}
	return 1;
}

/* ---- Blocks back to back ---------------------------------------------------- */

#define RUN_MAX		8

/*
 * n heap blocks of sizes[], each the next one's neighbour in memory.  The
 * first tries may go to holes elsewhere; they are kept until a try gives
 * a run, so the holes fill up, and then freed.  The callers make the first
 * and the last block guards that stay allocated.
 */
static void heap_run(void **p, const size_t *sizes, int n)
{
	enum { TRIES = 64 };
	static void *spare[TRIES][RUN_MAX], *filler[TRIES];
	size_t bytes = 0;
	int t, ok = 0;

	assert_true(n <= RUN_MAX);
	/*
	 * A run lies in one span: where the blocks fill more than a span
	 * holds (spans of a few pages, a heap's least block of kilobytes),
	 * there is no run to be had, and what the caller tests on one cannot
	 * happen in this configuration.  Said so, not passed.
	 */
	for (int i = 0; i < n; i++)
		bytes += heap_usable(sizes[i]) + 8;
	if (bytes + BLOCK_MIN > SPAN_AREA)
		skip();
	for (t = 0; t < TRIES && !ok; t++) {
		for (int i = 0; i < n; i++) {
			assert_true(heap_block(sizes[i]));
			spare[t][i] = kmalloc(sizes[i]);
			assert_non_null(spare[t][i]);
		}
		ok = 1;
		for (int i = 0; i + 1 < n; i++)
			ok &= spare[t][i + 1] == after(spare[t][i], blk(spare[t][i]));
		/*
		 * The hole the others left in their span, where the first
		 * fits: filled, or where a span holds about one run (blocks
		 * of 2 KiB and more in spans of 8 KiB) every try's first
		 * block takes the last one's hole, and the rest the next span.
		 */
		if (!ok) {
			filler[t] = kmalloc(sizes[0]);
			assert_non_null(filler[t]);
		}
	}
	assert_true(ok);
	t--;
	for (int i = 0; i < n; i++)
		p[i] = spare[t][i];
	while (t--) {
		for (int i = 0; i < n; i++)
			kfree(spare[t][i]);
		kfree(filler[t]);
	}
}

/* The guards at either end of a run: whole and patterned. */
static void guard(void *p, uint32_t seed)
{
	fill(p, ksize(p), seed);
}

static void check_guard(void *p, uint32_t seed)
{
	assert_true(check_fill(p, ksize(p), seed));
}

/*
 * Blocks z and d fence the blocks a test works on, filled from seed and
 * seed + 1: whatever merges, cuts or moves between them must leave their
 * contents intact -- checked, last, before they are freed.
 */
static void fence_set(void *z, void *d, uint32_t seed)
{
	guard(z, seed);
	guard(d, seed + 1);
}

static void fence_check_free(void *z, void *d, uint32_t seed)
{
	check_guard(z, seed);
	check_guard(d, seed + 1);
	kfree(z);
	kfree(d);
}

/* After bad input: the heap is intact and keeps working, blocks merge. */
static __maybe_unused void assert_heap_works(void)
{
	const size_t sizes[] = { H(1), HC(100), HC(3000), HEAP_TOP };
	void *p[ARRAY_SIZE(sizes)];

	assert_arena_valid(def());
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		p[k] = kmalloc(sizes[k]);
		assert_non_null(p[k]);
		assert_true(heap_ksize_ok(ksize(p[k]), sizes[k]));
		fill(p[k], sizes[k], (uint32_t)k);
	}
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		assert_true(check_fill(p[k], sizes[k], (uint32_t)k));
		kfree(p[k]);
	}
	assert_arena_valid(def());
}

/* ---- 1. Merging ------------------------------------------------------------------ */

/*
 * a, b, c back to back between two guards: free a and c, then b, and the
 * three are one free block (its header says so, the guard after it knows
 * it is free), which a request of their joined size takes where a was.
 */
static void test_merge_both_sides(void **state)
{
	const size_t sizes[] = { H(48), HC(100), HC(300), HC(200), H(48) };
	void *r[5], *z, *a, *b, *c, *d, *q;
	size_t before = settle(), ba, bb, bc, all;

	heap_run(r, sizes, 5);
	z = r[0], a = r[1], b = r[2], c = r[3], d = r[4];
	fence_set(z, d, 1);
	ba = blk(a), bb = blk(b), bc = blk(c), all = ba + bb + bc;
	fill(a, ksize(a), 3);
	fill(b, ksize(b), 4);
	fill(c, ksize(c), 5);

	kfree(a);
	kfree(c);
	/* Two free blocks, each its own size, b between them in use. */
	assert_int_equal(*head_of(a) & HB_FREE, HB_FREE);
	assert_int_equal(head_size(a), ba);
	assert_int_equal(*head_of(c) & HB_FREE, HB_FREE);
	assert_int_equal(head_size(c), bc);
	assert_int_equal(ksize(b), bb - 8);
	assert_true(check_fill(b, ksize(b), 4));
	assert_arena_valid(def());

	kfree(b);
	/* One block from a to d. */
	assert_int_equal(*head_of(a) & (HB_FREE | HB_PREV_FREE), HB_FREE);
	assert_int_equal(head_size(a), all);
	assert_int_equal(*head_of(d) & HB_PREV_FREE, HB_PREV_FREE);
	assert_int_equal(*prev_size_of(d), all);
	/* Nothing of it is a block in use any more. */
	assert_int_equal(ksize(a), 0);
	assert_int_equal(ksize(b), 0);
	assert_int_equal(ksize(c), 0);
	assert_arena_valid(def());

	/*
	 * Its exact size: the same place, all of it -- where that is a size
	 * the heap serves (not in a heap narrower than three of its blocks).
	 */
	if (heap_block(all - 8)) {
		q = kmalloc(all - 8);
		assert_ptr_equal(q, a);
		assert_int_equal(ksize(q), all - 8);
		assert_int_equal(*head_of(d) & HB_PREV_FREE, 0);
		fill(q, all - 8, 6);
		kfree(q);
	}
	fence_check_free(z, d, 1);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/*
 * a merges with the free block before it (free a, then b: b joins a) and
 * with the free block after it (free b, then a: a takes b in).
 */
static void test_merge_before_and_after(void **state)
{
	const size_t sizes[] = { H(16), HC(700), HC(1500), H(16) };
	size_t before = settle();

	for (int order = 0; order < 2; order++) {
		void *r[4], *z, *a, *b, *d, *q;
		size_t ba, bb;

		heap_run(r, sizes, 4);
		z = r[0], a = r[1], b = r[2], d = r[3];
		fence_set(z, d, 7);
		ba = blk(a), bb = blk(b);
		if (order == 0) {
			/* With the block before. */
			kfree(a);
			assert_int_equal(*head_of(b) & HB_PREV_FREE, HB_PREV_FREE);
			assert_int_equal(*prev_size_of(b), ba);
			kfree(b);
		} else {
			/* With the block after. */
			kfree(b);
			assert_int_equal(*head_of(d) & HB_PREV_FREE, HB_PREV_FREE);
			assert_int_equal(*prev_size_of(d), bb);
			assert_int_equal(*head_of(a) & HB_FREE, 0);
			kfree(a);
		}
		assert_int_equal(*head_of(a) & HB_FREE, HB_FREE);
		assert_int_equal(head_size(a), ba + bb);
		assert_int_equal(*prev_size_of(d), ba + bb);
		assert_int_equal(ksize(b), 0);
		assert_arena_valid(def());
		/* Asked for again where a heap narrower than two blocks can be. */
		if (heap_block(ba + bb - 8)) {
			q = kmalloc(ba + bb - 8);
			assert_ptr_equal(q, a);
			assert_int_equal(ksize(q), ba + bb - 8);
			fill(q, ba + bb - 8, 9);
			/* Freed between two blocks in use: it merges with neither. */
			kfree(q);
		}
		assert_int_equal(head_size(a), ba + bb);
		assert_int_equal(*head_of(z) & HB_FREE, 0);
		assert_int_equal(*head_of(d) & HB_FREE, 0);
		fence_check_free(z, d, 7);
		assert_arena_valid(def());
	}
	assert_int_equal(settle(), before);
}

/* ---- 2. realloc shrinks in place ------------------------------------------------- */

static void test_realloc_shrink_cuts(void **state)
{
	const size_t big = 4 * HEAP_MIN + 200, small = H(40);
	const size_t sizes[] = { H(16), big, H(16) };
	void *r[3], *z, *a, *d, *t, *q;
	size_t before = settle(), old, tail, ks;

	/*
	 * The tail cut off is asked for again as a heap block: a heap
	 * narrower than four of its least blocks has no such cut to make.
	 */
	if (!heap_block(big) || !heap_block(big - small))
		skip();

	heap_run(r, sizes, 3);
	z = r[0], a = r[1], d = r[2];
	fence_set(z, d, 11);
	old = blk(a);
	fill(a, ksize(a), 13);

	/* Cut: same pointer, the size of the new request, contents kept. */
	assert_ptr_equal(krealloc(a, small), a);
	assert_true(heap_ksize_ok(ksize(a), small));
	assert_true(check_fill(a, small, 13));
	/* The tail is a free block right after it, up to the guard. */
	tail = old - blk(a);
	t = after(a, blk(a));
	assert_int_equal(*head_of(t) & HB_FREE, HB_FREE);
	assert_int_equal(head_size(t), tail);
	assert_int_equal(*prev_size_of(d), tail);
	assert_arena_valid(def());
	/* ... and serves a request of its size there. */
	q = kmalloc(tail - 8);
	assert_ptr_equal(q, t);
	assert_int_equal(ksize(q), tail - 8);
	fill(q, tail - 8, 14);
	assert_true(check_fill(a, small, 13));

	/* Cut again, by less than a block: nothing to cut, nothing moves. */
	ks = ksize(a);
	assert_ptr_equal(krealloc(a, ks - 20), a);
	assert_int_equal(ksize(a), ks);
	assert_ptr_equal(krealloc(a, ks - 8 - 16), a);
	assert_int_equal(ksize(a), ks);		/* a 16-byte rest is no block */
	assert_true(check_fill(a, small, 13));

	/* Below the heap's sizes it stays a heap block, cut to its least. */
	kfree(q);
	assert_ptr_equal(krealloc(a, 10), a);
	assert_true(heap_ksize_ok(ksize(a), 10));
	assert_true(check_fill(a, 10, 13));
	/* The cut joined the free block after it: one block up to the guard. */
	t = after(a, blk(a));
	assert_int_equal(head_size(t), old - blk(a));
	q = kmalloc(old - blk(a) - 8);
	assert_ptr_equal(q, t);
	kfree(q);
	assert_arena_valid(def());

	/* Shrunk to nothing but 1 byte and grown back where it was. */
	assert_ptr_equal(krealloc(a, 1), a);
	assert_true(heap_ksize_ok(ksize(a), 1));
	assert_ptr_equal(krealloc(a, big), a);
	assert_true(heap_ksize_ok(ksize(a), big));
	assert_true(check_fill(a, 1, 13));
	kfree(a);
	fence_check_free(z, d, 11);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/*
 * A block the new size still fits stays where it is, whatever the size:
 * also at the top of the heap's range, where the block holds a few bytes
 * more than HEAP_MAX and a request of those bytes is not the heap's.
 */
static void test_realloc_within_ksize_stays(void **state)
{
	const size_t sizes[] = { H(1), HC(1000), HEAP_TOP - 100, HEAP_TOP - 8, HEAP_TOP };
	size_t before = settle();

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		unsigned char *p = kmalloc(sizes[k]);
		size_t ks = ksize(p);

		assert_non_null(p);
		assert_true(heap_ksize_ok(ks, sizes[k]));
		fill(p, ks, 15);
		for (size_t n = sizes[k]; n <= ks; n++) {
			void *q = krealloc(p, n);

			if (q != p)
				print_message("krealloc(%zu-byte block, %zu) moved\n", ks, n);
			assert_ptr_equal(q, p);
			assert_int_equal(ksize(p), ks);
		}
		assert_true(check_fill(p, ks, 15));
		kfree(p);
	}
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/* ---- 3. realloc grows in place, or moves ------------------------------------- */

static void test_realloc_grow(void **state)
{
	const size_t sizes[] = { H(16), H(200), 3 * HEAP_MIN, H(16) };
	const size_t past = max_t(size_t, HEAP_MAX, KMALLOC_MAX_CACHE_SIZE) + 1;
	void *r[4], *z, *a, *f, *d, *q, *t;
	size_t before = settle(), ba, bf, ks, rest;

	/*
	 * a grows in place into the free block f after it, up to all of it:
	 * a heap narrower than its least four times over has no size for
	 * a and f together.
	 */
	if (!heap_block(sizes[2] + H(200) + 32))
		skip();

	heap_run(r, sizes, 4);
	z = r[0], a = r[1], f = r[2], d = r[3];
	fence_set(z, d, 21);
	ba = blk(a), bf = blk(f);
	fill(a, ksize(a), 23);
	kfree(f);

	/* Into part of the free block after it: same pointer, the rest stays free. */
	ks = ksize(a);
	assert_ptr_equal(krealloc(a, ks + 100), a);
	assert_true(heap_ksize_ok(ksize(a), ks + 100));
	assert_true(check_fill(a, ks, 23));
	rest = ba + bf - blk(a);
	t = after(a, blk(a));
	assert_int_equal(*head_of(t) & HB_FREE, HB_FREE);
	assert_int_equal(head_size(t), rest);
	assert_int_equal(*prev_size_of(d), rest);
	assert_arena_valid(def());
	fill(a, ksize(a), 24);

	/* Into all of it: exactly up to the guard. */
	ks = ksize(a);
	assert_ptr_equal(krealloc(a, ks + rest), a);
	assert_int_equal(ksize(a), ba + bf - 8);
	assert_int_equal(*head_of(d) & HB_PREV_FREE, 0);
	assert_true(check_fill(a, ks, 24));
	assert_arena_valid(def());
	fill(a, ksize(a), 25);

	/* The guard after it is in use: it moves, contents kept, old one freed. */
	ks = ksize(a);
	q = krealloc(a, ks + 1);
	assert_non_null(q);
	assert_ptr_not_equal(q, a);
	assert_true(heap_ksize_ok(ksize(q), ks + 1));
	assert_true(check_fill(q, ks, 25));
	assert_int_equal(ksize(a), 0);
	assert_int_equal(*head_of(a) & HB_FREE, HB_FREE);
	assert_int_equal(head_size(a), ba + bf);
	assert_arena_valid(def());
	/* Its old place serves its old size again. */
	t = kmalloc(ks);
	assert_ptr_equal(t, a);
	kfree(q);

	/*
	 * A free block after it that is too small: it moves, and its old
	 * place merges with that free block.
	 */
	assert_ptr_equal(krealloc(t, H(100)), t);	/* cut: the rest is free */
	fill(t, H(100), 26);
	rest = ba + bf - blk(t);
	ks = ksize(t);
	q = krealloc(t, ks + rest + 16);
	assert_non_null(q);
	assert_ptr_not_equal(q, t);
	assert_true(check_fill(q, H(100), 26));
	assert_int_equal(head_size(t), ba + bf);
	assert_int_equal(*head_of(t) & HB_FREE, HB_FREE);
	assert_arena_valid(def());

	/*
	 * Past the heap's sizes and the classes': whole pages (a direct
	 * mapping past the largest block), contents kept.
	 */
	fill(q, ksize(q), 27);
	ks = ksize(q);
	t = krealloc(q, past);
	assert_non_null(t);
	assert_ptr_not_equal(t, q);
	if (kind_of(past) == K_LARGE)
		assert_int_equal((uintptr_t)t % PS, 0);
	assert_true(ksize_ok(kind_of(past), ksize(t), past));
	assert_true(check_fill(t, ks, 27));
	assert_int_equal(ksize(q), 0);
	kfree(t);

	fence_check_free(z, d, 21);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/* ---- 4. Alignment ----------------------------------------------------------- */

/*
 * The power-of-two class kmalloc_aligned(n, align) takes before the heap
 * (kmalloc.c), or 0: the one that holds both, if it has a cache -- a
 * class holding sizes on both sides of the heap's end keeps one, and
 * kmalloc_aligned(5000, 2048) is an object of kmalloc-8k where the heap
 * ends at 7 KiB.
 */
static size_t aligned_class(size_t n, size_t align)
{
	size_t need = roundup_pow_of_two(max_t(size_t, n, align));

	return align > sizeof(void *) && need <= KMALLOC_MAX_CACHE_SIZE && !heap_block(need) &&
	       class_has_slab(need) ? need : 0;
}

/* Is k the usable size of kmalloc_aligned(n, align) for a size of the heap? */
static int aligned_ksize_ok(size_t k, size_t n, size_t align)
{
	return aligned_class(n, align) ? k == aligned_class(n, align) : heap_ksize_ok(k, n);
}

static void test_aligned(void **state)
{
	enum { N = 6 };
	size_t before = settle();

	for (size_t align = 32; align <= 2048; align <<= 1) {
		const size_t sizes[] = { H(1), H(align), H(3 * align + 5), H(1000) + align / 2,
					 HEAP_TOP - align, HEAP_TOP };

		for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
			size_t sz = sizes[k];
			void *p[N];

			/*
			 * A heap of a few KiB ends before the larger offsets,
			 * and a span of a few pages has no room for the block,
			 * its alignment and the rest cut off before it; nor
			 * does the heap take an alignment past its largest
			 * block (a heap up to 1 KiB, 2 KiB aligned): whole
			 * pages serve those (heap.c, heap_alloc()).
			 */
			if (!heap_block(sz) || heap_usable(sz) + 8 + align + BLOCK_MIN > SPAN_AREA ||
			    align > HEAP_MAX)
				continue;
			for (int j = 0; j < N; j++) {
				p[j] = kmalloc_aligned(sz, align);
				assert_non_null(p[j]);
				if ((uintptr_t)p[j] % align)
					print_message("kmalloc_aligned(%zu, %zu) = %p\n", sz, align,
						      p[j]);
				assert_int_equal((uintptr_t)p[j] % align, 0);
				assert_true(ksize(p[j]) >= sz);
				assert_true(aligned_ksize_ok(ksize(p[j]), sz, align));
				fill(p[j], ksize(p[j]), (uint32_t)(align + j));
			}
			/* None overlaps another; every other one first. */
			for (int j = 0; j < N; j++)
				assert_true(check_fill(p[j], ksize(p[j]), (uint32_t)(align + j)));
			for (int j = 0; j < N; j += 2)
				kfree(p[j]);
			for (int j = 1; j < N; j += 2) {
				assert_true(check_fill(p[j], ksize(p[j]), (uint32_t)(align + j)));
				kfree(p[j]);
			}
		}
		assert_arena_valid(def());
	}
#ifdef M
	/* The facade's ways to the same, where the heap serves the sizes. */
	for (size_t align = 32; align <= 2048 && heap_block(H(3 * align)) &&
				heap_usable(H(3 * align)) + 8 + align + BLOCK_MIN <= SPAN_AREA; align <<= 1) {
		void *p = NULL, *q;

		assert_int_equal(M(posix_memalign)(&p, align, H(align)), 0);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % align, 0);
		assert_true(M(malloc_usable_size)(p) >= H(align));
		assert_true(aligned_ksize_ok(ksize(p), H(align), align));
		q = M(aligned_alloc)(align, H(3 * align));
		assert_non_null(q);
		assert_int_equal((uintptr_t)q % align, 0);
		assert_true(aligned_ksize_ok(ksize(q), H(3 * align), align));
		memset(p, 0x3c, H(align));
		memset(q, 0xc3, H(3 * align));
		for (size_t i = 0; i < H(align); i++)
			assert_int_equal(((unsigned char *)p)[i], 0x3c);
		M(free)(p);
		M(free)(q);
	}
#endif
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/* ---- 5. Bad frees ------------------------------------------------------------ */

#if IS_ENABLED(CONFIG_MM_CHECKS)
/*
 * kfree(p) must be reported as 'what' saying 'text', count once, and
 * change nothing (expect_bug(), helpers.h); ksize(p) is 0.
 */
#define expect_bad_kfree(what, text, p)						\
	do {									\
		const void *__p = (p);						\
										\
		expect_bug(def(), what, text,					\
			   kfree(__p);						\
			   if (!captured("BUG " what) || !captured(text))		\
				   print_message("kfree(%p): %s", __p, capture_text()));	\
		assert_int_equal(ksize(__p), 0);				\
	} while (0)

static void test_double_free(void **state)
{
	const size_t sizes[] = { H(16), HC(300), HC(600), H(16) };
	size_t before = settle();
	unsigned long e0;

	for (int how = 0; how < 4; how++) {
		void *r[4], *z, *a, *b, *d;
		size_t ka, bb;

		heap_run(r, sizes, 4);
		z = r[0], a = r[1], b = r[2], d = r[3];
		fence_set(z, d, 31);
		fill(a, ksize(a), 33);
		fill(b, ksize(b), 34);
		switch (how) {
		case 0:
			/* Merged with nothing: neighbours in use. */
			kfree(a);
			expect_bad_kfree("kmalloc-heap", "Object already free", a);
			kfree(b);
			break;
		case 1:
			/* b merged into the free block before it. */
			kfree(a);
			kfree(b);
			expect_bad_kfree("kmalloc-heap", "Object already free", b);
			expect_bad_kfree("kmalloc-heap", "Object already free", a);
			break;
		case 2:
			/* b taken in by a, freed after it. */
			kfree(b);
			kfree(a);
			expect_bad_kfree("kmalloc-heap", "Object already free", b);
			expect_bad_kfree("kmalloc-heap", "Object already free", a);
			break;
		default:
			/*
			 * b taken in by a growing into it: no block at all
			 * while it is a's payload; a free one again once a
			 * shrinks back and cuts it off.  All of b, or as much
			 * as the heap's greatest size takes where a and b are
			 * more (a heap from 2 KiB to 3 KiB).
			 */
			ka = ksize(a);
			bb = blk(b);
			kfree(b);
			assert_true(min_t(size_t, ka + bb, HEAP_MAX) > ka + 16);
			assert_ptr_equal(krealloc(a, min_t(size_t, ka + bb, HEAP_MAX)), a);
			if (ka + bb <= HEAP_MAX)
				assert_int_equal(ksize(a), ka + bb);
			else
				assert_true(ksize(a) >= HEAP_MAX && ksize(a) <= ka + bb);
			memset(a, 0x5a, ksize(a));
			expect_bad_kfree("kfree", "not the start of a kmalloc block", b);
			assert_ptr_equal(krealloc(a, ka), a);
			assert_int_equal(*head_of(b) & HB_FREE, HB_FREE);
			assert_int_equal(head_size(b), bb);
			expect_bad_kfree("kmalloc-heap", "Object already free", b);
			/* krealloc() of a freed block: NULL, reported. */
			e0 = diag().error_count;
			capture_start();
			misuse(assert_null(krealloc(b, H(1000))));
			check_report(def(), e0, "Object already free", NULL);
			kfree(a);
			break;
		}
		fence_check_free(z, d, 31);
		assert_heap_works();
	}
	assert_int_equal(settle(), before);
}

/*
 * Pointers into a block, to its header, into a span's header: none is a
 * block's start, whatever the bytes there hold.
 */
static void test_bad_pointers(void **state)
{
	const size_t sizes[] = { H(64), HC(1000), H(64) };
	static const size_t into[] = { 16, 32, 8, 1, 100, 512 };
	static const unsigned char bytes[] = { 0x00, 0x5a, 0xff, 0x01 };
	size_t before = settle();
	void *r[3], *z, *a, *d;
	uintptr_t span;
	unsigned long e0;

	heap_run(r, sizes, 3);
	z = r[0], a = r[1], d = r[2];
	for (size_t v = 0; v < ARRAY_SIZE(bytes); v++) {
		memset(z, bytes[v], ksize(z));
		memset(a, bytes[v], ksize(a));
		for (size_t k = 0; k < ARRAY_SIZE(into); k++) {
			char *p = (char *)a + into[k];

			expect_bad_kfree("kfree", "not the start of a kmalloc block", p);
		}
		/* Its last bytes, and its header: the size word, prev_size. */
		expect_bad_kfree("kfree", "not the start of a kmalloc block",
				 (char *)a + ksize(a) - 16);
		expect_bad_kfree("kfree", "not the start of a kmalloc block", (char *)a - 8);
		expect_bad_kfree("kfree", "not the start of a kmalloc block", (char *)a - 16);
		/* krealloc() of one: NULL, reported, the block untouched. */
		e0 = diag().error_count;
		capture_start();
		misuse(assert_null(krealloc((char *)a + 16, H(2000))));
		check_report(def(), e0, "kfree", "not the start of a kmalloc block");
		for (size_t i = 0; i < ksize(a); i++)
			assert_int_equal(((unsigned char *)a)[i], bytes[v]);
		assert_true(heap_ksize_ok(ksize(a), sizes[1]));
	}

	/*
	 * The span's header: its list links and (checks) its start bitmap,
	 * to the first block's header -- a small span's header is shorter
	 * than the 128 bytes looked at, and a block may start there.
	 */
	span = (uintptr_t)a & ~(uintptr_t)(SPAN_BYTES - 1);
	for (size_t off = 0; off <= 128 && off < SPAN_FIRST + HEAD_BYTES; off += 16)
		expect_bad_kfree("kfree", "not the start of a kmalloc block", (void *)(span + off));
	expect_bad_kfree("kfree", "not the start of a kmalloc block", (void *)(span + 8));

	kfree(z);
	kfree(a);
	kfree(d);
	assert_heap_works();
	assert_int_equal(settle(), before);
}
#endif /* CONFIG_MM_CHECKS */

/* ---- 6. Spans -------------------------------------------------------------------- */

/*
 * Blocks over three spans and more, freed in random order: each span that
 * empties goes back to the buddy allocator but one, which is kept for
 * the next request and given back by kmem_cache_reap() (and malloc_trim()).
 */
static void test_spans(void **state)
{
	/*
	 * Tens of thousands where spans are large and the heap's largest
	 * block small; their sizes count down from HEAP_TOP, 64 of them at
	 * most, so that they fill four spans and stay the heap's however
	 * many.  HEAP_TOP, not HEAP_MAX: a class that straddles HEAP_MAX
	 * keeps the sizes above the one below it (MM_HEAP_MAX_KB=7 without
	 * kmalloc-192: the heap's greatest is 4 KiB), and a count made for
	 * blocks of 7 KiB filled two spans and a third with blocks of 4.
	 */
	enum { NMAX = 4 * (int)(SPAN_BYTES / CONFIG_MM_HEAP_MIN) + 2 };
	static void *p[NMAX];
	static int order[NMAX];
	static uintptr_t spans[NMAX];
	const int N = 4 * (int)(SPAN_BYTES / HEAP_TOP) + 2;

	/* A class that straddles MM_HEAP_MIN may hold all the heap's sizes. */
	if (!heap_block(HEAP_TOP))
		skip();
	assert_true(N <= NMAX);
	for (int round = 0; round < 2; round++) {
		size_t nspans = 0, before = settle();

		for (int k = 0; k < N; k++) {
			uintptr_t s;
			size_t i;

			p[k] = kmalloc(HEAP_TOP - (size_t)k % min_t(size_t, 64, HEAP_TOP - heap_lo()));
			assert_non_null(p[k]);
			fill(p[k], 64, (uint32_t)k);
			s = (uintptr_t)p[k] & ~(uintptr_t)(SPAN_BYTES - 1);
			for (i = 0; i < nspans && spans[i] != s; i++)
				;
			if (i == nspans)
				spans[nspans++] = s;
			order[k] = k;
		}
		assert_true(nspans >= 3);
		assert_true(diag().allocated >= before + 3 * SPAN_BYTES);
		assert_arena_valid(def());
		for (int k = N - 1; k > 0; k--) {
			int j = (int)(rnd() % (uint64_t)(k + 1)), t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
		for (int k = 0; k < N; k++) {
			assert_true(check_fill(p[order[k]], 64, (uint32_t)order[k]));
			kfree(p[order[k]]);
		}
		/* All back but one span, kept. */
		mm_percpu_drain();
		assert_int_equal(diag().allocated, before + SPAN_BYTES);
		assert_arena_valid(def());
		/* The next request takes it, no new pages. */
		p[0] = kmalloc(HEAP_TOP);
		assert_non_null(p[0]);
		assert_int_equal(diag().allocated, before + SPAN_BYTES);
		kfree(p[0]);
		assert_int_equal(diag().allocated, before + SPAN_BYTES);
		/* Reclaim gives it back, and the arena is where it started. */
#if defined(M) && IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
		if (round == 1)
			assert_int_equal(M(malloc_trim)(0), 1);
		else
#endif
			assert_true(kmem_cache_reap(def()) >= (size_t)1 << CONFIG_MM_HEAP_SPAN_ORDER);
		assert_int_equal(diag().allocated, before);
		assert_arena_valid(def());
	}
}

/* ---- 7. Validation ---------------------------------------------------------------- */

#if IS_ENABLED(CONFIG_MM_VALIDATE)
/* mm_arena_validate() fails, with a report, and counts it. */
static void expect_invalid(void)
{
	unsigned long e0 = diag().error_count;

	capture_start();
	misuse(assert_int_not_equal(mm_arena_validate(def()), 0));
	check_report(def(), e0, "BUG mm_arena_validate", "heap");
}

static void test_validate_sees_corruption(void **state)
{
	const size_t sizes[] = { H(16), HC(500), H(16) };
	size_t before = settle(), saved;
	void *r[3], *z, *a, *d;

	heap_run(r, sizes, 3);
	z = r[0], a = r[1], d = r[2];
	memset(z, 0, ksize(z));
	memset(d, 0, ksize(d));
	memset(a, 0, ksize(a));	/* no stale header inside it */
	kfree(a);		/* a free block between two in use */
	assert_arena_valid(def());

	/* A free block's size, 16 bytes more and 16 bytes less. */
	saved = *head_of(a);
	*head_of(a) = saved + 16;
	expect_invalid();
	*head_of(a) = saved - 16;
	expect_invalid();
	*head_of(a) = saved;
	assert_arena_valid(def());

	/* A free block that says it is in use. */
	*head_of(a) = saved & ~HB_FREE;
	expect_invalid();
	*head_of(a) = saved;
	assert_arena_valid(def());

	/* The size of a free block as the block after it has it. */
	saved = *prev_size_of(d);
	*prev_size_of(d) = saved + 16;
	expect_invalid();
	*prev_size_of(d) = saved;
	assert_arena_valid(def());

	/* The block after a free one that does not know it is free. */
	saved = *head_of(d);
	*head_of(d) = saved & ~HB_PREV_FREE;
	expect_invalid();
	*head_of(d) = saved;
	assert_arena_valid(def());

	/* A block in use that says it is free. */
	saved = *head_of(z);
	*head_of(z) = saved | HB_FREE;
	expect_invalid();
	*head_of(z) = saved;
	assert_arena_valid(def());

	kfree(z);
	kfree(d);
	assert_heap_works();
	assert_int_equal(settle(), before);
}
#endif /* CONFIG_MM_VALIDATE */

/* ---- 8. Threads -------------------------------------------------------------------- */

#if !IS_ENABLED(CONFIG_MM_LOCK_NONE)
#define NTHREADS	4
#define INBOX_LEN	64
#define LOCAL		32

struct tblk {
	unsigned char *p;
	size_t n;
	uint32_t tag;		/* owner << 24 | sequence */
};

/*
 * Worker i hands blocks to worker i + 1 (the last to the first) through
 * the next one's inbox, and takes them from its own: every block it takes
 * is another thread's, however the threads are scheduled (one at a time
 * under valgrind).
 */
struct inbox {
	pthread_mutex_t lock;
	struct tblk q[INBOX_LEN];
	unsigned int head, count;
};

struct worker {
	pthread_t th;
	unsigned int id;	/* 1.. NTHREADS: 0 is the main thread */
	long ops;
	struct inbox in;
	struct tblk slot[LOCAL];
};

static struct worker workers[NTHREADS];
static unsigned long err_alloc, err_ksize, err_content, err_owner, cross_frees, cross_reallocs;

static void count(unsigned long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static int in_push(struct inbox *in, const struct tblk *b)
{
	int ok = 0;

	pthread_mutex_lock(&in->lock);
	if (in->count < INBOX_LEN) {
		in->q[(in->head + in->count++) % INBOX_LEN] = *b;
		ok = 1;
	}
	pthread_mutex_unlock(&in->lock);
	return ok;
}

static int in_pop(struct inbox *in, struct tblk *b)
{
	int ok = 0;

	pthread_mutex_lock(&in->lock);
	if (in->count) {
		*b = in->q[in->head];
		in->head = (in->head + 1) % INBOX_LEN;
		in->count--;
		ok = 1;
	}
	pthread_mutex_unlock(&in->lock);
	return ok;
}

/* All of a block up to 1 KiB, then every 61st byte, and its last. */
static void tblk_fill(const struct tblk *b)
{
	for (size_t i = 0; i < b->n; i = i < 1024 ? i + 1 : i + 61)
		b->p[i] = pat(b->tag, i);
	b->p[b->n - 1] = pat(b->tag, b->n - 1);
}

/* Its first n bytes as tblk_fill() left them. */
static int tblk_ok(const struct tblk *b, size_t n)
{
	for (size_t i = 0; i < n; i = i < 1024 ? i + 1 : i + 61) {
		if (b->p[i] != pat(b->tag, i))
			return 0;
	}
	return n < b->n || b->p[n - 1] == pat(b->tag, n - 1);
}

static void tblk_free(struct tblk *b)
{
	if (!tblk_ok(b, b->n))
		count(&err_content);
	kfree(b->p);
	b->p = NULL;
}

/* Resized to n, in place or not: contents kept, ksize right, filled anew. */
static int tblk_realloc(struct tblk *b, size_t n, uint32_t tag)
{
	unsigned char *q = krealloc(b->p, n);

	if (!q) {
		count(&err_alloc);
		return 0;
	}
	b->p = q;
	if (!tblk_ok(b, min_t(size_t, n, b->n)))
		count(&err_content);
	if (!heap_ksize_ok(ksize(q), n))
		count(&err_ksize);
	b->n = n;
	b->tag = tag;
	tblk_fill(b);
	return 1;
}

/* A size the heap serves, small ones likelier. */
static size_t heap_size(unsigned int *s)
{
	unsigned int bits;

	*s = *s * 1103515245u + 12345u;
	bits = 4 + (*s >> 8) % 13;		/* up to 64 KiB */
	*s = *s * 1103515245u + 12345u;
	return H(1 + (*s >> 4) % min_t(size_t, (size_t)1 << bits, HEAP_TOP - heap_lo()));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct inbox *next = &workers[w->id % NTHREADS].in;
	unsigned int s = 0x9e3779b9u * w->id, prev = w->id == 1 ? NTHREADS : w->id - 1;
	struct tblk got;

	for (long i = 0; i < w->ops; i++) {
		uint32_t tag = w->id << 24 | ((uint32_t)i & 0xffffff);
		struct tblk *b;
		unsigned int r;

		s = s * 1103515245u + 12345u;
		b = &w->slot[(s >> 8) % LOCAL];
		s = s * 1103515245u + 12345u;
		r = (s >> 8) % 100;
		if (!b->p) {
			b->n = heap_size(&s);
			b->p = kmalloc(b->n);
			if (!b->p) {
				count(&err_alloc);
				continue;
			}
			if (!heap_ksize_ok(ksize(b->p), b->n))
				count(&err_ksize);
			b->tag = tag;
			tblk_fill(b);
		} else if (r < 20) {
			tblk_realloc(b, heap_size(&s), tag);
		} else if (r < 30) {
			tblk_free(b);
		} else if (in_push(next, b)) {
			b->p = NULL;
		}
		if (!in_pop(&w->in, &got))
			continue;
		if (got.tag >> 24 != prev)
			count(&err_owner);
		/* The neighbour's block: freed here, or resized here and kept. */
		if (r % 2 || b->p) {
			tblk_free(&got);
			count(&cross_frees);
		} else if (tblk_realloc(&got, heap_size(&s), tag)) {
			*b = got;
			count(&cross_reallocs);
		}
	}
	for (int k = 0; k < LOCAL; k++) {
		if (w->slot[k].p)
			tblk_free(&w->slot[k]);
	}
	return NULL;
}

static void run_workers(long ops)
{
	pthread_attr_t attr;
	struct tblk got;

	/* Small stacks: glibc's cache of them holds every one (test_threads.c). */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < NTHREADS; i++) {
		memset(&workers[i], 0, sizeof(workers[i]));
		pthread_mutex_init(&workers[i].in.lock, NULL);
		workers[i].id = (unsigned int)i + 1;
		workers[i].ops = ops;
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&workers[i].th, &attr, worker_main, &workers[i]), 0);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(workers[i].th, NULL), 0);
	pthread_attr_destroy(&attr);
	/* What the last ones handed over after their neighbours had finished. */
	for (int i = 0; i < NTHREADS; i++) {
		while (in_pop(&workers[i].in, &got))
			tblk_free(&got);
		pthread_mutex_destroy(&workers[i].in.lock);
	}
}

/*
 * Threads allocating heap blocks, handing them on, freeing and resizing
 * each other's: contents intact, every ksize() right, nothing lost.
 */
static void test_threads_hand_over(void **state)
{
	size_t before;
	unsigned long objs;

	/* A first round: what lives as long as the program (thread stacks' TLS) exists. */
	run_workers(200);
	before = settle();
	objs = live_objects();
	err_alloc = err_ksize = err_content = err_owner = cross_frees = cross_reallocs = 0;

	run_workers(scaled(20000));
	if (err_alloc || err_ksize || err_content || err_owner)
		fail_msg("errors: alloc %lu, ksize %lu, content %lu, owner %lu", err_alloc,
			 err_ksize, err_content, err_owner);
	assert_true(cross_frees > 0);
	assert_true(cross_reallocs > 0);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
	assert_int_equal(live_objects(), objs);
}
#endif /* !CONFIG_MM_LOCK_NONE */

/* ---- 9. Random differential test --------------------------------------------------- */

struct model {
	unsigned char *p;
	size_t size;
	size_t ks;		/* what ksize() must say */
	enum kind kind;
	uint32_t tag;
};

static void model_fill(struct model *m)
{
	fill(m->p, m->size, m->tag);
}

static void model_check(const struct model *m, size_t n)
{
	assert_int_equal(ksize(m->p), m->ks);
	assert_true(check_fill(m->p, n, m->tag));
}

/* A new block of n bytes in m: kmalloc, kzalloc, or aligned for heap sizes. */
static void model_alloc(struct model *m, size_t n, unsigned int how)
{
	size_t align = (size_t)32 << (how % 7);
	int aligned = how % 4 == 0 && heap_block(n);

	if (aligned) {
		m->p = kmalloc_aligned(n, align);
		assert_non_null(m->p);
		assert_int_equal((uintptr_t)m->p % align, 0);
	} else if (how % 4 == 1) {
		m->p = kzalloc(n);
		assert_non_null(m->p);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(m->p[i], 0);
	} else {
		m->p = kmalloc(n);
		assert_non_null(m->p);
	}
	m->size = n;
	m->ks = ksize(m->p);
	if (aligned && aligned_class(n, align)) {
		/* An object of the power-of-two class, not of the size's own. */
		m->kind = K_SLAB;
		assert_int_equal(m->ks, aligned_class(n, align));
	} else {
		m->kind = block_kind(m->p, n);
		if (!ksize_ok(m->kind, m->ks, n))
			print_message("kmalloc(%zu): ksize %zu\n", n, m->ks);
		assert_true(ksize_ok(m->kind, m->ks, n));
	}
	if (m->kind == K_LARGE)
		assert_int_equal((uintptr_t)m->p % PS, 0);
	m->tag = (uint32_t)rnd();
	model_fill(m);
}

/*
 * krealloc to n, by the model's rules: a block that n fits stays where it
 * is (a slab object as it was, a heap block cut to n, a large block to
 * n's pages) -- but a slab object halved moves to its class; growing, a heap block may take the free block after it (up
 * to the heap's largest size), a large block the pages after it, a slab
 * object moves -- and a heap block that moves is freed where it was.
 */
static void model_realloc(struct model *m, size_t n)
{
	unsigned char *old = m->p, *q = krealloc(m->p, n);

	assert_non_null(q);
	if ((n <= m->ks && !(m->kind == K_SLAB && slab_shrink_moves(m->ks, n))) || q == old) {
		if (q != old)
			print_message("krealloc(%zu-byte block, %zu) moved\n", m->ks, n);
		assert_ptr_equal(q, old);
		/*
		 * Grown in place: a heap block to any of the heap's sizes,
		 * those a class holds at its top end too (krealloc_heap()).
		 */
		if (n > m->ks)
			assert_true(m->kind != K_SLAB && (m->kind != K_HEAP || n <= HEAP_MAX));
		if (m->kind != K_SLAB) {
			if (!ksize_ok(m->kind, ksize(q), n))
				print_message("krealloc(%zu-byte block, %zu): ksize %zu\n", m->ks,
					      n, ksize(q));
			assert_true(ksize_ok(m->kind, ksize(q), n));
			m->ks = ksize(q);
		}
	} else {
		enum kind k = block_kind(q, n);

		if (m->kind == K_HEAP)
			assert_int_equal(ksize(old), 0);	/* freed */
		if (!ksize_ok(k, ksize(q), n))
			print_message("krealloc(%zu-byte block, %zu) moved: ksize %zu\n", m->ks, n,
				      ksize(q));
		assert_true(ksize_ok(k, ksize(q), n));
		m->kind = k;
		m->ks = ksize(q);
	}
	m->p = q;
	model_check(m, min_t(size_t, m->size, n));
	m->size = n;
	m->tag = (uint32_t)rnd();
	model_fill(m);
}

static void model_free(struct model *m)
{
	model_check(m, m->size);
	kfree(m->p);
	if (m->kind == K_HEAP)
		assert_int_equal(ksize(m->p), 0);
	m->p = NULL;
}

/*
 * Mostly the heap's sizes, now and then a slab's or whole pages, and the
 * boundaries between them.
 */
static size_t random_size(void)
{
	const size_t edges[] = {
		1, 10, HEAP_MIN - 1, HEAP_MIN, HEAP_MIN + 1, HEAP_MIN + 8, HEAP_MIN + 9,
		HEAP_MAX - 9, HEAP_MAX - 8, HEAP_MAX - 1, HEAP_MAX, HEAP_MAX + 1,
		HEAP_MAX + 8, HEAP_MAX + 24, KMALLOC_MAX_CACHE_SIZE, KMALLOC_MAX_CACHE_SIZE + 1,
	};
	unsigned int r = (unsigned int)(rnd() % 100);

	if (r < 70) {
		unsigned int bits = 4 + (unsigned int)(rnd() % 13);
		size_t span = min_t(size_t, (size_t)1 << bits, HEAP_TOP - heap_lo());

		return H(1 + rnd() % span);
	}
	if (r < 82)
		return 1 + rnd() % HEAP_MIN;
	if (r < 90)
		return HEAP_MAX + 1 + rnd() % (2 * HEAP_MAX);
	return edges[rnd() % ARRAY_SIZE(edges)];
}

/* A size about what a block holds: a little less (it stays), a little more. */
static size_t near(size_t ks)
{
	size_t d = (size_t)(rnd() % 48);

	return ks + d > 24 ? ks + d - 24 : 1;
}

/* Across the slab, heap and page boundaries, and back: 100 -> 3000 -> 70000 -> 600 -> 10. */
static void test_realloc_across_boundaries(void **state)
{
	const size_t steps[] = {
		100, 3000, 70000, 600, 10, 3000, H(1), HEAP_MIN, H(0), HEAP_MAX, HEAP_MAX + 1,
		HEAP_MAX, H(100), 20, H(5000), 3 * HEAP_MAX, H(7), 1, HEAP_MAX - 8, HEAP_MAX + 8,
		H(300), 10,
	};
	size_t before = settle();
	struct model m = { 0 };

	model_alloc(&m, 100, 2);
	for (size_t k = 0; k < ARRAY_SIZE(steps); k++)
		model_realloc(&m, steps[k]);
	model_free(&m);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

static void test_random_differential(void **state)
{
	enum { SLOTS = 256, VALIDATE_EVERY = 500 };
	static struct model slot[SLOTS];
	long ops = scaled(40000);
	size_t before = settle();
	unsigned long e0 = diag().error_count;

	memset(slot, 0, sizeof(slot));
	for (long op = 0; op < ops; op++) {
		struct model *m = &slot[rnd() % SLOTS];
		unsigned int what = (unsigned int)(rnd() % 10);

		if (!m->p)
			model_alloc(m, random_size(), (unsigned int)rnd());
		else if (what < 5)
			model_realloc(m, what == 0 ? near(m->ks) : random_size());
		else
			model_free(m);
		if (op % VALIDATE_EVERY == VALIDATE_EVERY - 1) {
			assert_arena_valid(def());
			for (size_t s = 0; s < SLOTS; s++) {
				if (slot[s].p)
					model_check(&slot[s], slot[s].size);
			}
		}
	}
	for (size_t s = 0; s < SLOTS; s++) {
		if (slot[s].p)
			model_free(&slot[s]);
	}
	assert_int_equal(diag().error_count, e0);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/* Chain blocks of 2^order pages taken until there are none; the list. */
static void *take_pages(void *list, unsigned int order)
{
	void *p;

	while ((p = alloc_pages(def(), order)) != NULL) {
		*(void **)p = list;
		list = p;
	}
	return list;
}

static void give_pages(void *list, unsigned int order)
{
	while (list) {
		void *next = *(void **)list;

		free_pages(def(), list, order);
		list = next;
	}
}

/* ---- 10. Classes that spill into the heap ----------------------------------------- */

/*
 * CONFIG_MM_HEAP_SPILL_KB: a class all above CONFIG_MM_HEAP_SPILL_MIN that
 * keeps its slabs (below CONFIG_MM_HEAP_MIN) takes heap blocks once its
 * slabs hold the bound and have no free object.  Tested with the class
 * of 1000 and of 2000 bytes, where the configuration has them spill:
 * classes up to 2 KiB at least, whose sizes are all above 512 bytes.
 */
#define SPILL_TESTS	(CONFIG_MM_HEAP_SPILL_KB && CONFIG_MM_HEAP_MIN >= 2048 &&		\
			 CONFIG_MM_KMALLOC_SHIFT_HIGH >= 11 && CONFIG_MM_HEAP_SPILL_MIN <= 512)

#if SPILL_TESTS
/* The largest class below the class of 'size' (0 if none). */
static size_t class_below(size_t size)
{
	size_t k = expected_class(size), s = k;

	while (s > 1 && expected_class(s - 1) == k)
		s--;
	return s > 1 ? expected_class(s - 1) : 0;
}

/* The bound kmalloc_init() must have set for the class of 'size'. */
static unsigned long spill_bound(const struct kmem_cache *c, size_t size)
{
	size_t slab = (size_t)PS << c->order;

	if (class_below(size) < SPILL_MIN)
		return ~0UL;
	return SPILL_BYTES / slab ? SPILL_BYTES / slab : 1;
}

/* Is p a heap block rather than a slab object of the class of 'size'? */
static int is_heap_block(const void *p, size_t size)
{
	size_t k = ksize(p);

	if (k == expected_class(size))
		return 0;
	assert_true(heap_ksize_ok(k, size));
	return 1;
}

/* Room for what fill_past_bound() hands out: the class's bound, 'heaps' and some. */
static size_t fill_cap(const struct kmem_cache *c, size_t heaps)
{
	return (size_t)c->spill_slabs * c->objs + heaps + 64;
}

static void **alloc_fill_vector(const struct kmem_cache *c, size_t heaps)
{
	void **v = kmalloc(fill_cap(c, heaps) * sizeof(*v));

	assert_non_null(v);
	return v;
}

/*
 * Objects of one class, each filled, until 'heaps' of them are heap
 * blocks: before the first, the class must hold exactly its bound of
 * slabs with no free object (it spills no sooner, and grows no further);
 * after it, nothing else comes from a slab.  The objects, in order, in
 * v (from alloc_fill_vector(), apart so that a caller can count pages
 * without it: above the heap's sizes it can take a page class's slab);
 * their count returned, the first heap block's index in *first.
 */
static size_t fill_past_bound(struct kmem_cache *c, size_t size, size_t heaps,
			      void **v, size_t *first)
{
	size_t cap = fill_cap(c, heaps), n = 0, seen = 0;

	*first = SIZE_MAX;
	while (seen < heaps) {
		void *p;

		assert_true(n < cap);
		p = kmalloc(size);
		assert_non_null(p);
		fill(p, size, (uint32_t)n);
		if (is_heap_block(p, size)) {
			if (!seen++) {
				*first = n;
				assert_int_equal(c->nr_slabs, c->spill_slabs);
			}
		} else {
			assert_int_equal(seen, 0);
			assert_true(c->nr_slabs <= c->spill_slabs);
		}
		v[n++] = p;
	}
	return n;
}

static void free_filled(void **v, size_t from, size_t to, size_t size)
{
	for (size_t i = from; i < to; i++) {
		assert_true(check_fill(v[i], size, (uint32_t)i));
		kfree(v[i]);
	}
}

/*
 * The class's first SPILL_KB come from its slabs, the rest from the heap;
 * a slab object freed is what the next request gets back, before any heap
 * block; everything keeps its contents, and nothing is lost.
 */
static void test_class_spills_past_its_bound(void **state)
{
	const size_t size = 1000;
	struct kmem_cache *c = kmalloc_slab(size);
	size_t before = settle(), n, first;
	void **v, *p, *q;

	assert_non_null(c);
	assert_int_equal(c->spill_slabs, spill_bound(c, size));
	assert_true(c->spill_slabs < ~0UL);
	v = alloc_fill_vector(c, 32);
	n = fill_past_bound(c, size, 32, v, &first);
	/*
	 * Most of the bound is this test's: the rest, objects of others.  The
	 * bound counts slabs (SPILL_KB of them), of which objects fill only
	 * c->objs each: 4 of 1008 bytes in 4 KiB lose 1/64 of it, more than
	 * 64 KiB from an MM_HEAP_SPILL_KB past 4096.
	 */
	assert_true(first * expected_class(size) + 64 * 1024 >=
		    (size_t)c->spill_slabs * c->objs * expected_class(size));
	assert_int_equal(n - first, 32);
	assert_arena_valid(def());

	/* A slab object given back is the next one handed out, not a heap block. */
	p = v[first / 2];
	assert_true(check_fill(p, size, (uint32_t)(first / 2)));
	kfree(p);
	q = kmalloc(size);
	assert_non_null(q);
	assert_false(is_heap_block(q, size));
	fill(q, size, (uint32_t)(first / 2));
	v[first / 2] = q;
	/* And with none left, a heap block again. */
	q = kmalloc(size);
	assert_non_null(q);
	assert_true(is_heap_block(q, size));
	kfree(q);

	free_filled(v, 0, n, size);
	kfree(v);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}

/*
 * Why the heap: what one class spilled and freed serves another class's
 * spill without a page more -- where a slab's free slots could serve only
 * their own class.
 */
static void test_spilled_memory_serves_other_classes(void **state)
{
	/*
	 * A's heap blocks in one span, which the heap keeps when they are
	 * freed: 256, or fewer where spans are small (MM_MAX_ORDER of 4 and
	 * less) -- more spans' worth went back to the buddy allocator empty,
	 * and B's blocks took new spans from it, pages the comparison below
	 * counts.
	 */
	const size_t a_size = 1000, b_size = 2000;
	const size_t heaps = min_t(size_t, 256, SPAN_AREA / (heap_usable(a_size) + 8) - 1);
	struct kmem_cache *ca = kmalloc_slab(a_size), *cb = kmalloc_slab(b_size);
	size_t before = settle(), na, nb, fa, fb, slabs_b, pages;
	void **va, **vb;

	assert_non_null(ca);
	assert_non_null(cb);
	assert_true(ca != cb);
	assert_true(cb->spill_slabs < ~0UL);
	va = alloc_fill_vector(ca, heaps);
	vb = alloc_fill_vector(cb, heaps * a_size / b_size / 2);
	na = fill_past_bound(ca, a_size, heaps, va, &fa);
	/* The class stays at its bound, its heap blocks freed. */
	free_filled(va, fa, na, a_size);
	mm_percpu_drain();
	pages = diag().allocated;
	slabs_b = cb->nr_slabs;

	/* Half of what A gave back, so that no span boundary gets in the way. */
	nb = fill_past_bound(cb, b_size, heaps * a_size / b_size / 2, vb, &fb);
	/* B's new slabs are new pages; its heap blocks took A's room. */
	assert_true(diag().allocated <= pages + ((cb->nr_slabs - slabs_b) * PS << cb->order) +
					   4 * PS);
	assert_arena_valid(def());

	free_filled(vb, 0, nb, b_size);
	free_filled(va, 0, fa, a_size);
	kfree(vb);
	kfree(va);
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}
#endif /* SPILL_TESTS */

/*
 * With no room for a new span, a request of the heap's sizes is served in
 * whole pages -- not failed, and no failure counted.  The room kept for
 * it: a block of the heap's greatest size's order (16 pages of 4 KiB),
 * below a span's; or where a heap block is more than half a span, its
 * exact pages, which large blocks of exact runs (CONFIG_MM_EXACT_RUNS)
 * can take and a span cannot.  Without exact runs such a request needs a block of a
 * span's order, which the heap would take first: nothing to test there.
 */
static void test_no_span_falls_back_to_pages(void **state)
{
	const size_t top = HEAP_TOP;
	const unsigned int ro = get_order(top);
	const int exact = (PS << ro) >= SPAN_BYTES;
	size_t before = settle();
	unsigned long oom0;
	void *reserve, *taken[MM_MAX_ORDER + 1], *heap = NULL, *p;
	struct mm_diag d;

	/*
	 * Nor where the request's pages are a span's (a span of one page):
	 * any room for them is room for a span.
	 */
	if ((exact && !IS_ENABLED(CONFIG_MM_EXACT_RUNS)) || ALIGN(top, PS) >= SPAN_BYTES)
		skip();
	reserve = exact ? alloc_pages_exact(def(), top) : alloc_pages(def(), ro);
	assert_non_null(reserve);
	mm_arena_diag(def(), &d);
	mm_arena_set_limit(def(), d.capacity);
	for (int o = MM_MAX_ORDER; o >= 0; o--)
		taken[o] = take_pages(NULL, (unsigned int)o);
	/* Whatever room the spans have left, taken too. */
	while ((p = kmalloc(top)) != NULL) {
		*(void **)p = heap;
		heap = p;
	}
	/* Too few pages free for a span, enough for the request. */
	if (exact)
		free_pages_exact(def(), reserve, top);
	else
		free_pages(def(), reserve, ro);
	oom0 = diag().oom_count;
	p = kmalloc(top);
	assert_non_null(p);
	/*
	 * Whole pages, not a heap block: one of 64 KiB for a heap up to 42
	 * KiB, and a page more where the last would be odd (exact_end()).
	 */
	assert_true(ksize_ok(K_LARGE, ksize(p), top));
	memset(p, 0x3c, top);
	assert_int_equal(diag().oom_count, oom0);
	assert_arena_valid(def());
	kfree(p);
	while (heap) {
		p = *(void **)heap;
		kfree(heap);
		heap = p;
	}
	for (int o = 0; o <= MM_MAX_ORDER; o++)
		give_pages(taken[o], (unsigned int)o);
	mm_arena_set_limit(def(), 0);
	assert_int_equal(settle(), before);
	assert_arena_valid(def());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_both_sides),
		cmocka_unit_test(test_merge_before_and_after),
		cmocka_unit_test(test_realloc_shrink_cuts),
		cmocka_unit_test(test_realloc_within_ksize_stays),
		cmocka_unit_test(test_realloc_grow),
		cmocka_unit_test(test_aligned),
#if IS_ENABLED(CONFIG_MM_CHECKS)
		cmocka_unit_test(test_double_free),
		cmocka_unit_test(test_bad_pointers),
#endif
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_no_span_falls_back_to_pages),
#if IS_ENABLED(CONFIG_MM_VALIDATE)
		cmocka_unit_test(test_validate_sees_corruption),
#endif
#if !IS_ENABLED(CONFIG_MM_LOCK_NONE)
		cmocka_unit_test(test_threads_hand_over),
#endif
		cmocka_unit_test(test_realloc_across_boundaries),
		cmocka_unit_test(test_random_differential),
#if SPILL_TESTS
		cmocka_unit_test(test_class_spills_past_its_bound),
		cmocka_unit_test(test_spilled_memory_serves_other_classes),
#endif
	};
	const char *env = getenv("MM_TEST_SCALE");

	if (env && strtod(env, NULL) >= 1)
		scale = strtod(env, NULL);
	/*
	 * Set up before any measurement: the default arena, the classes, and
	 * this thread's cache of them, made at its first object of a class
	 * and kept while the thread lives (the heap's tests take few slab
	 * objects, and the first would count it as lost).
	 */
	assert_int_equal(mm_init(), 0);
	for (size_t sz = 1; sz <= KMALLOC_MAX_CACHE_SIZE; sz *= 2)
		kfree(kmalloc(sz));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
