// SPDX-License-Identifier: MIT
/*
 * mm/kmalloc.c: size classes at their exact boundaries, alignment,
 * kzalloc/kcalloc/kmalloc_array, krealloc across classes, buddy blocks and
 * direct mappings, ksize, kmalloc_aligned, bad kfree()s, impossible sizes,
 * a random differential test against a model, and "nothing lost".
 *
 * kmalloc always works on the default arena.  When mm replaces the C
 * library's malloc (host_defconfig), CMocka and stdio allocate from that
 * arena too, so the "nothing lost" check compares the arena's allocated
 * pages before and after (after draining this thread's per-thread cache
 * and reaping empty slabs both times), with nothing else allocating in
 * between; that is exact in every configuration.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kmalloc_helpers.h"
#include "../mm/percpu.h"	/* white-box: the fresh index, a thread's magazines */
#include "../mm/kmalloc.h"	/* white-box: kfree()'s inline class lookup */
#include "../mm/heap.h"		/* white-box: which sizes the heap serves */

#define PS MM_PAGE_SIZE

/*
 * Whole pages start above the classes and the heap: a test of page blocks
 * adds its page counts (two and more) to LB -- 0 where both end within
 * two pages (the classes up to 8 KiB, no heap), else past the larger
 * (with CONFIG_MM_KMALLOC_SHIFT_HIGH=16, 5 pages are a class's object).
 */
#define LB_ABOVE	max_t(size_t, HEAP_MAX, KMALLOC_MAX_CACHE_SIZE)
#define LB		(LB_ABOVE > 2 * PS ? ALIGN(LB_ABOVE, PS) : 0)

/*
 * Does a large block of LB and n pages fit the largest block, with the
 * page an odd end may add?  Not always with a small MM_MAX_ORDER, where
 * the classes or the heap reach most of the largest block: there such a
 * size is a direct mapping, or none.
 */
#define LARGE_FITS(n)	(LB + ((n) + 1) * PS <= MM_MAX_BLOCK)


/* This file's own deterministic sequence (xorshift64s, helpers.h). */
static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	return xorshift64s(&rng_state);
}

/* A value the compiler cannot see through (no warnings on huge sizes). */
static size_t opaque(size_t x)
{
	volatile size_t v = x;

	return v;
}

/* Whole pages: above the classes and the heap, or a class no slab suits. */
static int is_large(size_t size)
{
	return !heap_block(size) &&
	       (size > KMALLOC_MAX_CACHE_SIZE || !class_has_slab(expected_class(size)));
}

/*
 * The largest size a slab serves, for #if: the heap takes over above
 * CONFIG_MM_HEAP_MIN, whole pages above the largest class.  And whether a
 * class of 'size' bytes (a power of two) has slabs of several pages:
 * slab.c gives it one page where the header, which takes an object's
 * place, wastes at most 1/32 of it (1/8 above a quarter page) -- 512-byte
 * objects take four 4 KiB pages, one 64 KiB page -- and never more than
 * 2^CONFIG_MM_SLAB_MAX_ORDER.  A one-page slab has no page of fresh
 * objects once it is active: MULTI_PAGE_SLABS(max) says some class of at
 * most 'max' bytes has more.
 */
#if IS_ENABLED(CONFIG_MM_HEAP) && CONFIG_MM_HEAP_MIN < (1 << CONFIG_MM_KMALLOC_SHIFT_HIGH)
#define SLAB_MAX_BYTES	CONFIG_MM_HEAP_MIN
#else
#define SLAB_MAX_BYTES	(1 << CONFIG_MM_KMALLOC_SHIFT_HIGH)
#endif
#define SLAB_PAGES_GT1(size)	((size) * 32 > (1 << MM_PAGE_SHIFT))
#define MULTI_PAGE_SLABS(max)	(CONFIG_MM_SLAB_MAX_ORDER > 0 &&			\
				 SLAB_PAGES_GT1((max) < SLAB_MAX_BYTES ? (max) : SLAB_MAX_BYTES))

/*
 * A class without a slab cache: none of at most CONFIG_MM_SLAB_MAX_ORDER
 * (and the largest block) holds its objects with at most 1/8 left over
 * (slab.c, calculate_sizes()), and kmalloc serves its sizes with whole
 * pages.  Which classes those are is slab.c's arithmetic; what the tests
 * hold it to: with a header under a sixteenth of such a slab, objects of
 * at most a sixteenth of it always fit well, so only larger ones may lack
 * a cache.
 */
static void assert_class_may_lack_slab(size_t cls)
{
	size_t slab = PS << min_t(unsigned int, CONFIG_MM_SLAB_MAX_ORDER, MM_MAX_ORDER);

	if (cls * 16 <= slab)
		print_message("class %zu has no cache, slabs of %zu\n", cls, slab);
	assert_true(cls * 16 > slab);
}

/* What ksize() must say for a live block of 'size' bytes. */
static size_t expected_ksize(size_t size)
{
	if (heap_block(size))
		return heap_usable(size);
	if (!is_large(size))
		return expected_class(size);
	return ALIGN(size, PS);		/* large blocks are exact in pages, direct mappings too */
}

/*
 * Is p, of 'size' bytes, a heap block that a class's request took, its
 * class past its slabs' bound (CONFIG_MM_HEAP_SPILL_KB)?  ksize() tells:
 * a heap block's usable bytes are 8 past a multiple of 16, no class's.
 */
static int spilled(const void *p, size_t size)
{
	struct kmem_cache *c = is_large(size) ? NULL : kmalloc_slab(size);

	return c && c->spill_slabs != ~0UL && heap_ksize_ok(ksize(p), size);
}

/*
 * ksize() of the block p that holds 'size' bytes: expected_ksize(), but a
 * large block never ends before an odd page when the page after it was
 * free (page_alloc.c, exact_end()), so one page more where its exact end
 * would be odd -- and only there.
 */
static size_t expected_ksize_at(const void *p, size_t size)
{
	size_t e = expected_ksize(size);

	if (heap_block(size))
		return ksize(p) == e + 16 ? e + 16 : e;
	if (spilled(p, size))
		return ksize(p);
	if (is_large(size) && size <= MM_MAX_BLOCK &&
	    ((addr_to_pfn(p) + e / PS) & 1) && ksize(p) == e + PS)
		return e + PS;
	/*
	 * A direct mapping past the largest block: the one kept from a
	 * free serves a request it holds without wasting half of it
	 * (kmalloc.c, huge_alloc()), whole pages all the same.  A class's
	 * sizes there -- classes past the largest block, MM_MAX_ORDER=1
	 * with MM_KMALLOC_SHIFT_HIGH=16 -- keep the class's alignment
	 * (__kmalloc_slow()): their mapping is longer by it, and what it
	 * leaves after the block is the block's.
	 */
	if (size > MM_MAX_BLOCK) {
		size_t cs = size <= KMALLOC_MAX_CACHE_SIZE ? expected_class(size) : 0;
		size_t head = max_t(size_t, PS, cs & -cs);

		if (ksize(p) > e && ksize(p) % PS == 0 && ksize(p) / 2 < e + head)
			return ksize(p);
	}
	return e;
}

/* A class's name, as Linux spells it: kmalloc-96, kmalloc-320, kmalloc-8k. */
static void class_name(char *buf, size_t len, size_t cls)
{
	if (cls < 1024 || (cls & (cls - 1)))
		snprintf(buf, len, "kmalloc-%zu", cls);
	else
		snprintf(buf, len, "kmalloc-%zuk", cls >> 10);
}

/* After bad input: the heap is intact and keeps working. */
static void assert_heap_works(void)
{
	static const size_t sizes[] = { 1, 64, 100, 4000, 9000, 70000 };
	void *p[ARRAY_SIZE(sizes)];

	assert_arena_valid(def());
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		p[k] = kmalloc(sizes[k]);
		assert_non_null(p[k]);
		memset(p[k], 0x6b, sizes[k]);
	}
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++)
		kfree(p[k]);
	assert_arena_valid(def());
}

/*
 * A position-dependent pattern: every byte of the first 16 KiB and every
 * 257th byte after (megabytes byte by byte are slow under Valgrind, and a
 * lost page or a shifted copy shows anyway).
 */
static size_t next_pos(size_t i, size_t n)
{
	i++;
	return i < 16384 ? i : (i + 256) / 257 * 257;
}

static void fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i = next_pos(i, n))
		b[i] = (unsigned char)(seed + i * 7 + (i >> 8));
}

static int check_fill(const void *p, size_t n, uint32_t seed)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i = next_pos(i, n)) {
		if (b[i] != (unsigned char)(seed + i * 7 + (i >> 8)))
			return 0;
	}
	return 1;
}

/* ---- Classes -------------------------------------------------------------- */

/* Every size up to the largest class maps to the class the Kconfig says (both tables). */
static void test_every_size_finds_its_class(void **state)
{
	for (size_t sz = 1; sz <= KMALLOC_MAX_CACHE_SIZE; sz++) {
		struct kmem_cache *c = kmalloc_slab(sz);

		/*
		 * The heap's sizes have no class; a class that straddles
		 * CONFIG_MM_HEAP_MIN keeps its cache (heap_block()).
		 */
		if (heap_block(sz)) {
			assert_null(c);
			continue;
		}
		/* A class no slab suits has no cache: whole pages serve it. */
		if (!class_has_slab(expected_class(sz))) {
			assert_null(c);
			continue;
		}
		assert_non_null(c);
		if (kmem_cache_size(c) != expected_class(sz))
			print_message("size %zu: class %u, expected %zu\n", sz,
				      kmem_cache_size(c), expected_class(sz));
		assert_int_equal(kmem_cache_size(c), expected_class(sz));
	}
}

/*
 * Every kmalloc cache is the class of its own size: no cache stands for a
 * class no size maps to -- 80, 96 and 112 when the smallest class is 128
 * -- where it would cost a descriptor, a line in slabinfo and a magazine
 * per thread for nothing.
 */
static void test_every_cache_serves_its_size(void **state)
{
	unsigned int n = 0;

	assert_non_null(kmalloc_slab(1));	/* the classes are set up */
	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);

		if (!c)
			continue;
		if (kmalloc_slab(kmem_cache_size(c)) != c)
			print_message("%s: kmalloc(%u) takes another class\n", c->name,
				      kmem_cache_size(c));
		assert_ptr_equal(kmalloc_slab(kmem_cache_size(c)), c);
		assert_int_equal(c->kmalloc_idx, i);
		n++;
	}
	assert_true(n > 0);
}

static void test_class_boundaries(void **state)
{
	const size_t sizes[] = {
		1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128,
		129, 191, 192, 193, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025,
		2048, 2049, 4096, 4097, KMALLOC_MAX_CACHE_SIZE - 1, KMALLOC_MAX_CACHE_SIZE,
		KMALLOC_MAX_CACHE_SIZE + 1, 2 * KMALLOC_MAX_CACHE_SIZE,
		2 * KMALLOC_MAX_CACHE_SIZE + 1, 100000, MM_MAX_BLOCK,
	};

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t sz = sizes[k];
		unsigned char *p = kmalloc(sz);
		struct kmem_cache *c = kmalloc_slab(sz);

		assert_non_null(p);
		if (sz > MM_MAX_BLOCK) {
			/* Past small largest blocks: a direct mapping, at least sz. */
			assert_true(ksize(p) >= sz);
		} else {
			if (ksize(p) != expected_ksize_at(p, sz))
				print_message("kmalloc(%zu): ksize %zu, expected %zu\n", sz,
					      ksize(p), expected_ksize_at(p, sz));
			assert_int_equal(ksize(p), expected_ksize_at(p, sz));
		}
		if (heap_block(sz)) {
			assert_null(c);		/* no class cache where the heap serves */
			assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
		} else if (!is_large(sz)) {
			struct kmem_cache_info i;
			char name[32];
			size_t cls = expected_class(sz);

			assert_non_null(c);
			kmem_cache_info(c, &i);
			assert_int_equal(i.object_size, cls);
			class_name(name, sizeof(name), cls);
			assert_string_equal(i.name, name);
		} else {
			/* Whole pages: above the classes, or a class without slabs. */
			if (sz <= KMALLOC_MAX_CACHE_SIZE)
				assert_class_may_lack_slab(expected_class(sz));
			assert_null(c);
			assert_int_equal((uintptr_t)p % PS, 0);
		}
		memset(p, 0xa1, ksize(p));	/* all of ksize() is usable */
		kfree(p);
	}
	/* The host configuration in numbers: 8 maps to 16 there. */
	if (CONFIG_MM_KMALLOC_SHIFT_LOW == 4 && CONFIG_MM_KMALLOC_SHIFT_HIGH == 13 &&
	    IS_ENABLED(CONFIG_MM_KMALLOC_96_192)) {
		static const size_t want[][2] = {
			{ 8, 16 }, { 9, 16 }, { 64, 64 }, { 96, 96 }, { 192, 192 },
			{ 8192, 8192 }, { 8193, 12288 },
		};
		static const size_t coarse[][2] = {
			{ 65, 96 }, { 97, 128 }, { 193, 256 }, { 257, 512 }, { 513, 1024 },
		};
		static const size_t fine[][2] = {
			{ 65, 80 }, { 81, 96 }, { 97, 112 }, { 113, 128 }, { 129, 160 },
			{ 161, 192 }, { 193, 224 }, { 225, 256 }, { 257, 320 }, { 321, 384 },
			{ 385, 448 }, { 449, 512 }, { 513, 576 }, { 577, 672 }, { 673, 800 },
			{ 801, 1008 }, { 1009, 1024 },
			{ 1025, 1152 }, { 1153, 1344 }, { 1617, 2032 }, { 2033, 2048 },
			{ 2049, 2320 }, { 3000, 3264 }, { 3585, 4064 }, { 4065, 4096 },
			{ 7168, 7168 }, { 7169, 8192 },
		};
		int is_fine = IS_ENABLED(CONFIG_MM_KMALLOC_FINE);

		for (size_t k = 0; k < (is_fine ? ARRAY_SIZE(fine) : ARRAY_SIZE(coarse)); k++) {
			const size_t *w = is_fine ? fine[k] : coarse[k];
			void *p = kmalloc(w[0]);

			assert_int_equal(ksize(p), heap_block(w[0]) || is_large(w[0]) ?
						   expected_ksize_at(p, w[0]) : w[1]);
			kfree(p);
		}

		for (size_t k = 0; k < ARRAY_SIZE(want); k++) {
			void *p = kmalloc(want[k][0]);

			assert_int_equal(ksize(p), heap_block(want[k][0]) ?
					 expected_ksize_at(p, want[k][0]) :
					 want[k][1] > KMALLOC_MAX_CACHE_SIZE ?
					 expected_ksize_at(p, want[k][1]) : want[k][1]);
			kfree(p);
		}
	}
	assert_arena_valid(def());
}

/*
 * The fine classes from 512 bytes to 4 KiB are sized to their slabs: what
 * a slab holds beside its objects (header and tail) is at most 1/32 of it
 * with 4 KiB pages -- at most 144 bytes, 96 on a page -- where the quarter
 * steps lost up to an eighth (1280, 1792, 3584), at most a sixteenth with
 * larger pages; and the slabs are small, at most 16 KiB.  The powers of two keep their natural
 * alignment, and the header the place of one object.
 */
static void test_fitted_classes_fill_slabs(void **state)
{
	unsigned int fitted = 0, slabless = 0;

	(void)state;
	for (size_t sz = 512 + 16; sz < 4096 && sz <= KMALLOC_MAX_CACHE_SIZE; sz += 16) {
		struct kmem_cache *c = kmalloc_slab(sz);
		struct kmem_cache_info i;
		size_t bytes;

		if (heap_block(sz))
			continue;
		if (!c) {
			/* Whole pages: a fitted class no slab of at most MM_SLAB_MAX_ORDER suits. */
			if (expected_class(sz) == sz && (sz & (sz - 1))) {
				assert_class_may_lack_slab(sz);
				slabless++;
			}
			continue;
		}
		kmem_cache_info(c, &i);
		if (i.object_size != sz || !(sz & (sz - 1)))
			continue;	/* not a class boundary, or a power of two */
		bytes = (size_t)i.pages_per_slab * MM_PAGE_SIZE;
		assert_true(i.size == sz);
		if (MM_PAGE_SIZE == 4096) {
			assert_true((bytes - i.objs_per_slab * i.size) * 32 <= bytes);
			assert_true(bytes <= 16384);
		} else {
			assert_true((bytes - i.objs_per_slab * i.size) * 16 <= bytes);
		}
		fitted++;
	}
	/*
	 * Twelve, but for those no slab of the largest order holds (2320 and
	 * 3264 with a largest block of 8 KiB: whole pages) ...
	 */
	if (IS_ENABLED(CONFIG_MM_KMALLOC_FINE) && KMALLOC_MAX_CACHE_SIZE >= 4096) {
		unsigned int slabs = 0;

		/* ... and those the heap serves. */
		for (size_t sz = 512 + 16; sz < 4096; sz += 16)
			slabs += expected_class(sz) == sz && (sz & (sz - 1)) && class_has_slab(sz) &&
				 !heap_block(sz);
		assert_true(slabs <= 12);
		assert_int_equal(fitted, slabs);
	}
}

/*
 * A large block is exact in pages: 5 pages are buddy blocks (4 + 1, or
 * smaller pieces when a run of free pages served it), the later ones
 * marked as continuations ('k' in the page map), and
 * kfree() of the start gives back all five; a pointer to the continuation
 * is refused and reported.  Where the largest block has no room for five
 * pages past LB (a small MM_MAX_ORDER), three (2 + 1); with no room for
 * three, no large block has a continuation to test.  One more where LB
 * and those make a power of two, a single buddy block (LB of 11 pages).
 */
static size_t pages_in_use(struct mm_arena *a)
{
	return a->nr_pages - mm_arena_free_pages(a);
}

static void test_large_exact(void **state)
{
	const size_t lp = LB / PS, n0 = LARGE_FITS(5) ? 5 : 3;
	const size_t n = ((lp + n0) & (lp + n0 - 1)) ? n0 : n0 + 1;
	struct mm_arena *a = def();
	size_t used0;
	char *p, *q;
	int whole;

	if (!LARGE_FITS(n))
		skip();
	q = kmalloc(PS);			/* warm the arena */
	kfree(q);
	mm_percpu_drain();
	/* Pages in use, not free ones: the arena may grow for the block. */
	used0 = pages_in_use(a);
	p = kmalloc(LB + n * PS);
	assert_non_null(p);
	/* n pages, or n + 1 where the last would end on an odd one. */
	assert_int_equal(ksize(p), expected_ksize_at(p, LB + n * PS));
	assert_int_equal(pages_in_use(a), used0 + ksize(p) / PS);
	/*
	 * Its first piece: n - 1 pages (LB + 4), or fewer if a run of free
	 * pages served it -- but it may be one buddy block, without a
	 * continuation, where the page an odd end adds makes a power of two:
	 * 3 pages and one in a largest block of 4 (MM_MAX_ORDER=2), LB and 3
	 * and one in 8.  A small largest block leaves no n for which neither
	 * is one.
	 */
	assert_true(mm_page_order(a, p) >= 0);
	whole = (size_t)1 << mm_page_order(a, p) == ksize(p) / PS;
	if (whole)
		assert_true(ksize(p) / PS > lp + n);
	else
		assert_true((size_t)1 << mm_page_order(a, p) <= LB / PS + n - 1);
	memset(p, 0x3e, LB + n * PS);
	capture_start();
	mm_page_map(a);
	capture_stop();
	/*
	 * Its pieces in the map: the head 'K' and the continuation 'k' (no
	 * other output has a 'k': addresses print in lower-case hex).  Not
	 * "no 'k'" for one buddy block: a thread's cache is a large block
	 * of several pieces too.
	 */
	assert_report_says("K");
	if (!whole)
		assert_report_says("k");

	{
		unsigned long e0 = a->diag.error_count;

		capture_start();
		misuse(kfree(p + LB + (n - 1) * PS));
		check_report(a, e0, "BUG kfree", NULL);
		assert_int_equal(pages_in_use(a), used0 + ksize(p) / PS);
	}
	assert_int_equal((unsigned char)p[LB + n * PS - 1], 0x3e);
	kfree(p);
	assert_int_equal(pages_in_use(a), used0);
	assert_arena_valid(a);
}

static void test_class_alignment(void **state)
{
	size_t classes[32], n = 0;

	for (unsigned int i = CONFIG_MM_KMALLOC_SHIFT_LOW; i <= CONFIG_MM_KMALLOC_SHIFT_HIGH; i++)
		classes[n++] = (size_t)1 << i;
	if (IS_ENABLED(CONFIG_MM_KMALLOC_96_192)) {
		classes[n++] = 96;
		classes[n++] = 192;
	}
	for (size_t k = 0; k < n; k++) {
		size_t cls = classes[k];
		void *p[20];

		for (int j = 0; j < 20; j++) {
			size_t sz = j % 2 ? cls : cls - cls / 4 + 1;
			size_t natural = expected_class(sz) & -expected_class(sz);

			/* The heap's blocks are 16-aligned, no more. */
			if (heap_block(sz))
				natural = 16;
			p[j] = kmalloc(sz);
			assert_non_null(p[j]);
			assert_int_equal(ksize(p[j]), expected_ksize_at(p[j], sz));
			/*
			 * A class that spilled into the heap: a power of two
			 * aligned to itself, another size to 16 bytes.
			 */
			if (!heap_block(sz) && ksize(p[j]) != expected_class(sz))
				natural = is_power_of_2(sz) ? sz : 16;
			/* A class without slabs: whole pages, aligned to one. */
			if (is_large(sz))
				natural = min_t(size_t, natural, PS);
			if ((uintptr_t)p[j] % natural)
				print_message("class %zu size %zu: %p\n", cls, sz, p[j]);
			assert_int_equal((uintptr_t)p[j] % natural, 0);
			assert_int_equal((uintptr_t)p[j] % _Alignof(max_align_t), 0);
			memset(p[j], j, sz);
		}
		for (int j = 0; j < 20; j++)
			kfree(p[j]);
	}
	assert_arena_valid(def());
}

static void test_kmalloc_zero(void **state)
{
	unsigned long e0 = diag().error_count;
	void *p = kmalloc(0), *q = kmalloc(0), *r = kzalloc(0);

	assert_non_null(p);
	assert_non_null(q);
	assert_non_null(r);
	assert_ptr_not_equal(p, q);
	assert_ptr_not_equal(q, r);
	assert_ptr_not_equal(p, r);
	kfree(p);
	kfree(q);
	kfree(r);
	kfree(NULL);
	assert_int_equal(diag().error_count, e0);
	assert_int_equal(ksize(NULL), 0);
}

#if IS_ENABLED(CONFIG_MM_REPORTS)	/* the text it prints */
/*
 * Has the class of 'cls' bytes a cache?  Not where the heap serves every
 * size of it, from one past the class below (kmalloc.c, kmalloc_init()),
 * nor where no slab suits it.
 */
static int class_has_cache(size_t cls)
{
	size_t first = cls;

	while (first > 1 && expected_class(first - 1) == cls)
		first--;
	return class_has_slab(cls) && (!heap_serves(cls) || !heap_serves(first));
}

/* The active objects slabinfo's line of cache 'name' gives, from its text. */
static unsigned long slabinfo_active(const char *text, const char *name)
{
	char line[40];
	const char *at;
	unsigned long n;

	snprintf(line, sizeof(line), "\n%s ", name);
	at = strstr(text, line);
	assert_non_null(at);
	assert_int_equal(sscanf(at + strlen(line), "%lu", &n), 1);
	return n;
}

/*
 * A line for every class that has a cache -- those the heap serves have
 * none -- and for no other; the active objects of one counted as they
 * come and go.
 */
static void test_slabinfo_default_arena(void **state)
{
	/* A class in every layout: 256 bytes, or the largest below with a cache. */
	struct kmem_cache *c = slab_class_near(256);
	const char *text, *at;
	unsigned long act0, act1;
	unsigned int lines = 0, classes = 0;
	void *p[40];

	for (int k = 0; k < 40; k++)
		p[k] = kmalloc(kmem_cache_size(c));
	mm_percpu_drain();	/* what the thread's cache holds counts as active */
	capture_start();
	mm_slabinfo(def());
	text = capture_stop();
	assert_true(strncmp(text, "slabinfo - version: 2.1\n", 24) == 0);
	assert_non_null(strstr(text, "\nkmem_cache "));
	for (size_t sz = 1; sz <= KMALLOC_MAX_CACHE_SIZE; sz = expected_class(sz) + 1) {
		size_t cls = expected_class(sz);
		char name[32], line[40];

		class_name(name, sizeof(name), cls);
		snprintf(line, sizeof(line), "\n%s ", name);
		if (!strstr(text, line) != !class_has_cache(cls))
			print_message("%s: %s\n", name, class_has_cache(cls) ? "no line" : "a line");
		assert_int_equal(!strstr(text, line), !class_has_cache(cls));
		classes += class_has_cache(cls);
	}
	for (at = text; (at = strstr(at, "\nkmalloc-")) != NULL; at++)
		lines++;
	assert_int_equal(lines, classes);
	act0 = slabinfo_active(text, c->name);
	for (int k = 0; k < 40; k++)
		kfree(p[k]);
	mm_percpu_drain();
	capture_start();
	mm_slabinfo(def());
	act1 = slabinfo_active(capture_stop(), c->name);
	assert_int_equal(act0 - act1, 40);
}
#endif

/* ---- kzalloc, kcalloc, kmalloc_array --------------------------------------- */

static void test_zeroing_and_arrays(void **state)
{
	static const size_t sizes[] = { 1, 24, 200, 4000, 8192, 20000, 300000 };
	unsigned char *p;

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t sz = served_size(sizes[k]);

		/* Dirty the memory first, so zeroes are kzalloc's doing. */
		for (int round = 0; round < 2; round++) {
			p = kmalloc(sz);
			memset(p, 0xff, sz);
			kfree(p);
			p = round ? kcalloc(sz, 1) : kzalloc(sz);
			assert_non_null(p);
			for (size_t i = 0; i < sz; i++)
				assert_int_equal(p[i], 0);
			kfree(p);
		}
	}
	p = kcalloc(10, 30);
	assert_non_null(p);
	assert_true(ksize(p) >= 300);
	for (int i = 0; i < 300; i++)
		assert_int_equal(p[i], 0);
	kfree(p);
	p = kmalloc_array(25, 8);
	assert_non_null(p);
	assert_true(ksize(p) >= 200);
	kfree(p);
	/* n * size overflows: NULL, not a short block. */
	assert_null(kmalloc_array(opaque(SIZE_MAX / 2 + 1), 2));
	assert_null(kmalloc_array(2, opaque(SIZE_MAX / 2 + 1)));
	assert_null(kmalloc_array(opaque((size_t)1 << 33), opaque((size_t)1 << 33)));
	assert_null(kcalloc(opaque(SIZE_MAX / 16 + 1), 16));
	assert_null(kcalloc(3, opaque(SIZE_MAX / 3 + 1)));
	/* Past the largest block, with no direct mappings: refused. */
	if (!PAST_BLOCK_OK) {
		assert_null(kzalloc(opaque(MM_MAX_BLOCK + 1)));
		assert_null(kcalloc(opaque(MM_MAX_BLOCK + 1), 1));
	}
	assert_arena_valid(def());
}

#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_MMAP)
static void assert_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += sizeof(long))
		assert_int_equal(*(const long *)(p + i), 0);
}

/*
 * Which MMU pages of the default arena's regions are resident, taken
 * before an allocation, so that a test can tell the pages the allocation
 * made resident from those that were already.  Mapped, not malloc()ed:
 * with the libc facade malloc() is mm.
 */
struct residency {
	unsigned int n;
	uintptr_t start[16], end[16];
	unsigned char *vec[16];
};

static void residency_take(struct residency *rs)
{
	const size_t mmu = (size_t)sysconf(_SC_PAGESIZE);

	rs->n = 0;
	for (const struct mm_region *r = def()->regions; r; r = r->next) {
		uintptr_t start = (uintptr_t)pfn_to_addr(r->start_pfn);
		size_t len = (size_t)r->nr_pages << MM_PAGE_SHIFT;
		unsigned char *v;

		assert_true(rs->n < ARRAY_SIZE(rs->vec));
		v = mmap(NULL, len / mmu + 1, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(v != MAP_FAILED);
		assert_int_equal(mincore((void *)start, len, v), 0);
		rs->start[rs->n] = start;
		rs->end[rs->n] = start + len;
		rs->vec[rs->n++] = v;
	}
}

/* 1 if the MMU page at addr was resident when rs was taken (in a region then). */
static int residency_had(const struct residency *rs, uintptr_t addr)
{
	const size_t mmu = (size_t)sysconf(_SC_PAGESIZE);

	for (unsigned int i = 0; i < rs->n; i++) {
		if (addr >= rs->start[i] && addr < rs->end[i])
			return rs->vec[i][(addr - rs->start[i]) / mmu] & 1;
	}
	return 0;
}

static void residency_drop(struct residency *rs)
{
	const size_t mmu = (size_t)sysconf(_SC_PAGESIZE);

	for (unsigned int i = 0; i < rs->n; i++)
		munmap(rs->vec[i], (rs->end[i] - rs->start[i]) / mmu + 1);
	rs->n = 0;
}

/*
 * The MMU pages of [p, p + len) resident now that were not in rs: mincore()'s
 * unit, which may be smaller than MM_PAGE_SIZE.
 */
static size_t resident_since(const struct residency *rs, const void *p, size_t len)
{
	static unsigned char vec[4096];
	const size_t mmu = (size_t)sysconf(_SC_PAGESIZE);
	size_t k = 0;

	for (size_t off = 0; off < len; off += sizeof(vec) * mmu) {
		size_t n = min_t(size_t, (len - off) / mmu, sizeof(vec));

		assert_int_equal(mincore((char *)p + off, n * mmu, vec), 0);
		for (size_t i = 0; i < n; i++)
			k += (vec[i] & 1) && !residency_had(rs, (uintptr_t)p + off + i * mmu);
	}
	return k;
}

/* How many of the MMU pages of [p, p + len) are resident. */
static size_t resident_pages(const void *p, size_t len)
{
	static const struct residency none;

	return resident_since(&none, p, len);
}

/*
 * kzalloc() (and so calloc()) of whole pages: those the program never
 * touched, or the allocator dropped, stay untouched -- they read zero as
 * they are -- and those that hold old data are cleared.  A direct mapping
 * and a large buddy block, each fresh and then reused dirty.
 */
static void test_kzalloc_leaves_fresh_pages_untouched(void **state)
{
	const size_t huge = 2 * MM_MAX_BLOCK;
	const size_t mmu = (size_t)sysconf(_SC_PAGESIZE);
	static struct residency before_kzalloc;
	size_t before = settle(), large, nr_pages;
	unsigned char *p, *q;

	/* A new direct mapping: nothing of it resident, all of it zero. */
	__kmalloc_trim_huge();
	p = kzalloc(huge);
	assert_non_null(p);
	assert_int_equal(resident_pages(p, huge), 0);
	assert_zero(p, huge);
	/* Dirty, freed (the mapping is kept), and again: cleared. */
	memset(p, 0xa5, huge);
	kfree(p);
	q = kzalloc(huge);
	assert_ptr_equal(q, p);
	assert_zero(q, huge);
	kfree(q);
	__kmalloc_trim_huge();

	/*
	 * A large block: half the largest, or the largest where half is
	 * still a class or the heap's (kzalloc() clears those itself).  With
	 * small blocks and a heap up to the largest, there is none.
	 */
	large = is_large(MM_MAX_BLOCK / 2) ? MM_MAX_BLOCK / 2 : MM_MAX_BLOCK;
	if (!is_large(large))
		goto out;
	/*
	 * Dirtied and freed, its pages dropped by a trim: the next kzalloc()
	 * of its size leaves what it takes as it finds it.  The block need
	 * not come back where it was -- the trim may give that back to the
	 * system, and a run with resident pages is preferred, which kzalloc()
	 * must clear -- so what counts is what it made resident: nothing,
	 * but should the arena grow for it, the free-list nodes of the new
	 * memory the block covers (two blocks of each order at most, and one
	 * at either end).  With small largest blocks, whose free blocks are
	 * all under the 64 KiB a trim discards, it may find every page
	 * resident: then only the contents tell.
	 */
	p = kmalloc(large);
	assert_non_null(p);
	memset(p, 0x5a, large);
	kfree(p);
	mm_arena_trim(def(), 0);
	residency_take(&before_kzalloc);
	nr_pages = def()->nr_pages;
	q = kzalloc(large);
	assert_non_null(q);
	assert_true(resident_since(&before_kzalloc, q, large) <=
		    (def()->nr_pages > nr_pages ? 2 * MM_NR_ORDERS + 2 : 0) *
		    (PS > mmu ? PS / mmu : 1));
	residency_drop(&before_kzalloc);
	assert_zero(q, large);
	/* Dirty and freed without a trim: resident, and cleared. */
	memset(q, 0x5a, large);
	kfree(q);
	p = kzalloc(large);
	assert_non_null(p);
	assert_zero(p, large);
	kfree(p);
out:
	assert_arena_valid(def());
	assert_int_equal(settle(), before);
}
#endif

/* ---- krealloc and ksize ----------------------------------------------------- */

static void test_krealloc_across_everything(void **state)
{
	/* Classes, buddy blocks, direct mappings, and back down. */
	const size_t steps[] = {
		5, 16, 17, 100, 1000, 8000, KMALLOC_MAX_CACHE_SIZE, KMALLOC_MAX_CACHE_SIZE + 1,
		100000, MM_MAX_BLOCK, MM_MAX_BLOCK + 1, MM_MAX_BLOCK + 3 * PS + 5,
		2 * MM_MAX_BLOCK + 12345, MM_MAX_BLOCK / 2, 70000, 3000, 40, 1,
	};
	size_t have = 0;
	unsigned char *p = krealloc(NULL, 1);	/* kmalloc */

	assert_non_null(p);
	p[0] = 0;
	fill(p, 1, 99);
	have = 1;
	for (size_t k = 0; k < ARRAY_SIZE(steps); k++) {
		size_t sz = steps[k];
		unsigned char *q = krealloc(p, sz);

		/* No direct mappings: refused, and the block is as it was. */
		if (sz > MM_MAX_BLOCK && !PAST_BLOCK_OK) {
			assert_null(q);
			assert_true(check_fill(p, have, 99));
			continue;
		}
		assert_non_null(q);
		assert_true(ksize(q) >= sz);
		/* Whatever both sizes cover survived. */
		if (!check_fill(q, min_t(size_t, have, sz), 99))
			print_message("krealloc to %zu lost data\n", sz);
		assert_true(check_fill(q, min_t(size_t, have, sz), 99));
		fill(q, sz, 99);
		p = q;
		have = sz;
	}
	assert_null(krealloc(p, 0));		/* frees */
	assert_arena_valid(def());
}

static void test_krealloc_in_place(void **state)
{
	struct mm_arena *a = def();
	/* A slab object of the largest class below 256 bytes, 8 bytes short of it. */
	size_t sz = opaque(slab_class_below(256) - 8);
	unsigned char *p = kmalloc(sz), *q;
	size_t ks = ksize(p), free0;

	assert_true(sz < 256);
	assert_int_equal(ks, expected_class(sz));
	fill(p, sz, 5);
	assert_ptr_equal(krealloc(p, sz + 1), p);
	assert_ptr_equal(krealloc(p, ks), p);
	assert_ptr_equal(krealloc(p, 1), p);	/* below 256 bytes a shrink never moves */
	assert_true(check_fill(p, 1, 5));
	assert_int_equal(ksize(p), ks);
	assert_ptr_equal(krealloc(p, ks), p);
	q = krealloc(p, ks + 1);		/* the next class: moves */
	assert_non_null(q);
	assert_ptr_not_equal(q, p);
	assert_true(check_fill(q, 1, 5));
	kfree(q);

	/*
	 * A large block is exact in pages (4 + 1 here, not 8); a shrink keeps
	 * the pointer and gives the pages it no longer needs back in place.
	 * (Where the largest block has no room for it, no large block does
	 * what follows: the direct mapping after it still must.)
	 */
	if (!LARGE_FITS(5))
		goto huge;
	p = kmalloc(LB + 5 * PS);
	assert_int_equal(ksize(p), expected_ksize_at(p, LB + 5 * PS));
	fill(p, LB + 5 * PS, 6);
	assert_ptr_equal(krealloc(p, LB + 5 * PS), p);
	mm_percpu_drain();
	free0 = mm_arena_free_pages(a);
	ks = ksize(p) / PS;
	assert_ptr_equal(krealloc(p, LB + 2 * PS + 1), p);
	assert_true(check_fill(p, LB + 2 * PS + 1, 6));
	assert_int_equal(ksize(p), expected_ksize_at(p, LB + 3 * PS));
	assert_int_equal(mm_arena_free_pages(a), free0 + ks - ksize(p) / PS);
	assert_arena_valid(a);
	free0 = mm_arena_free_pages(a);
	ks = ksize(p) / PS;
	assert_ptr_equal(krealloc(p, 100), p);	/* down to one page (or two) */
	assert_true(check_fill(p, 100, 6));
	assert_true(ksize(p) == PS || ksize(p) == 2 * PS);
	assert_int_equal(mm_arena_free_pages(a), free0 + ks - ksize(p) / PS);
	assert_arena_valid(a);
	/* Growing, it takes the free pages after it in place. */
	free0 = mm_arena_free_pages(a);
	ks = ksize(p) / PS;
	q = krealloc(p, LB + 5 * PS);
	assert_ptr_equal(q, p);
	assert_true(check_fill(p, 100, 6));
	assert_int_equal(ksize(p), expected_ksize_at(p, LB + 5 * PS));
	assert_int_equal(mm_arena_free_pages(a), free0 - (ksize(p) / PS - ks));
	assert_arena_valid(a);
	fill(p, LB + 5 * PS, 6);
	/* Into pages that are not free, it moves. */
	q = kmalloc(PS);		/* a class: not in the pages after p */
	p = krealloc(p, MM_MAX_BLOCK);
	assert_non_null(p);
	assert_true(check_fill(p, LB + 5 * PS, 6));
	assert_int_equal(ksize(p), expected_ksize_at(p, MM_MAX_BLOCK));
	kfree(q);
	kfree(p);

huge:
	/* A direct mapping the same way: its tail is unmapped (where there are any). */
	p = kmalloc(MM_MAX_BLOCK + PS);
	if (!PAST_BLOCK_OK) {
		assert_null(p);
		goto out;
	}
	assert_non_null(p);
	assert_true(ksize(p) >= MM_MAX_BLOCK + PS);
	fill(p, 64, 7);
	assert_ptr_equal(krealloc(p, MM_MAX_BLOCK), p);
	assert_true(check_fill(p, 64, 7));
	if (IS_ENABLED(CONFIG_MM_BACKEND_MMAP))
		assert_int_equal(ksize(p), MM_MAX_BLOCK);
	assert_ptr_equal(krealloc(p, 100), p);
	assert_true(check_fill(p, 64, 7));
	if (IS_ENABLED(CONFIG_MM_BACKEND_MMAP))
		assert_int_equal(ksize(p), PS);
	kfree(p);
out:
	assert_arena_valid(def());
}

/*
 * A slab object of 256 bytes or more that realloc() halves moves to the
 * smaller class (its contents with it); a shrink to more than half stays.
 * Every class from 256 to the heap or the largest class is tried.
 */
static void test_krealloc_shrink_moves_to_smaller_class(void **state)
{
	size_t top = KMALLOC_MAX_CACHE_SIZE, tried = 0, caches = 0;

#if IS_ENABLED(CONFIG_MM_HEAP)
	if (CONFIG_MM_HEAP_MIN < top)
		top = CONFIG_MM_HEAP_MIN;
#endif
	/*
	 * As many as there are caches of such sizes: none where the classes
	 * end below 256 bytes (CONFIG_MM_KMALLOC_SHIFT_HIGH=6), one where the
	 * heap starts there.
	 */
	assert_non_null(kmalloc_slab(1));
	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);

		caches += c && kmem_cache_size(c) >= 256 && kmem_cache_size(c) <= top;
	}
	for (size_t n = 256; n <= top; n = expected_class(n) + 1) {
		size_t ks = expected_class(n);
		unsigned char *p, *q;

		if (ks > top)
			break;
		if (!class_has_slab(ks))
			continue;	/* whole pages, cut in place: no cache counted */
		p = kmalloc(ks);
		assert_non_null(p);
		assert_int_equal(ksize(p), ks);
		fill(p, ks, 6);
		assert_ptr_equal(krealloc(p, ks / 2 + 1), p);
		assert_int_equal(ksize(p), ks);
		q = krealloc(p, ks / 2);
		assert_non_null(q);
		if (q == p)
			print_message("krealloc(%zu-byte object, %zu) stayed\n", ks, ks / 2);
		assert_ptr_not_equal(q, p);
		assert_true(ksize(q) >= ks / 2 && ksize(q) < ks);
		assert_true(check_fill(q, ks / 2, 6));
		kfree(q);
		tried++;
	}
	assert_int_equal(tried, caches);
	assert_arena_valid(def());
}

/* Take blocks of 'size' until kmalloc fails; they are chained through their first word. */
static void *exhaust(void *list, size_t size)
{
	void *p;

	/*
	 * Never past the largest block: those are direct mappings, which
	 * no arena limit stops, and taking them all takes the machine's
	 * memory (MM_MAX_ORDER=1 with 64 KiB pages made four pages one).
	 */
	assert_true(size <= MM_MAX_BLOCK);
	while ((p = kmalloc(size)) != NULL) {
		*(void **)p = list;
		list = p;
	}
	return list;
}

/*
 * Stop the default arena's growth and take every page and every object
 * of the 100- and 20-byte classes (the last taken, a 20-byte object,
 * first in the list): kmalloc of those sizes fails from here.
 */
static void *fill_heap(void)
{
	struct mm_diag d;
	void *list = NULL;

	mm_arena_diag(def(), &d);
	mm_arena_set_limit(def(), d.capacity);
	/* Four pages, or the largest block where that is less. */
	list = exhaust(list, min_t(size_t, 4 * PS, MM_MAX_BLOCK));
	list = exhaust(list, PS);
	list = exhaust(list, 100);
	return exhaust(list, 20);
}

/* Give back what fill_heap() took, and let the arena grow again. */
static void unfill_heap(void *list)
{
	while (list) {
		void *next = *(void **)list;

		kfree(list);
		list = next;
	}
	mm_arena_set_limit(def(), 0);
}

/*
 * A shrink never fails: with no page and no object of the smaller class
 * left, the block stays where it is -- a large one still gives its tail
 * back in place -- and nothing is lost.
 */
static void test_krealloc_shrink_never_fails(void **state)
{
	struct mm_arena *a = def();
	/*
	 * A direct mapping where the largest block has no room for it, or
	 * where there are none, the largest block.
	 */
	const int in_arena = LARGE_FITS(6) || !PAST_BLOCK_OK;
	const size_t big = in_arena && !LARGE_FITS(6) ? MM_MAX_BLOCK : LB + 6 * PS;
	unsigned char *obj = kmalloc(2000), *large = kmalloc(big);
	size_t free0, got;
	void *list;

	assert_non_null(obj);
	assert_non_null(large);
	fill(obj, 2000, 8);
	fill(large, big, 9);
	list = fill_heap();
	assert_null(kmalloc(20));
	assert_null(kmalloc(100));

	assert_ptr_equal(krealloc(obj, 20), obj);
	assert_true(check_fill(obj, 20, 8));
	free0 = mm_arena_free_pages(a);
	assert_ptr_equal(krealloc(large, 100), large);
	assert_true(check_fill(large, 100, 9));
	got = ksize(large);
	assert_true(got == PS || got == 2 * PS);	/* 2 only where 1 would end on an odd page */
	if (in_arena)
		assert_true(mm_arena_free_pages(a) >= free0 + big / PS - got / PS);
	assert_arena_valid(a);
	unfill_heap(list);
	kfree(obj);
	kfree(large);
	assert_arena_valid(a);
}

/*
 * A request that fails is one failure: counted once in oom_count and the
 * OOM hook called once -- not once more when the thread's magazines have
 * gone back and the request is tried again (__kmalloc_slow()).  Objects
 * parked in the magazine make that second try.
 */
static int oom_hook_calls;

static int count_oom_hook(struct mm_arena *a, size_t bytes, void *ctx)
{
	oom_hook_calls++;
	return 0;
}

static void park(void **objs, int n)
{
	for (int i = 0; i < n; i++)
		kfree(objs[i]);
}

static void test_failure_counted_once(void **state)
{
	enum { N = 16 };
	void *objs[N], *list;
	unsigned long oom0;

	for (int i = 0; i < N; i++)
		assert_non_null(objs[i] = kmalloc(64));
	park(objs, N);
	oom0 = diag().oom_count;
	assert_null(kmalloc(opaque((size_t)1 << 62)));
	assert_int_equal(diag().oom_count, oom0 + 1);

	/* Out of pages, the hook hears of it once. */
	for (int i = 0; i < N; i++)
		assert_non_null(objs[i] = kmalloc(64));
	list = fill_heap();
	park(objs, N);
	oom_hook_calls = 0;
	mm_arena_set_oom_hook(def(), count_oom_hook, NULL);
	oom0 = diag().oom_count;
	assert_null(kmalloc(opaque(MM_MAX_BLOCK)));
	mm_arena_set_oom_hook(def(), NULL, NULL);
	assert_int_equal(oom_hook_calls, 1);
	assert_int_equal(diag().oom_count, oom0 + 1);
	unfill_heap(list);
	assert_arena_valid(def());
}

static void test_ksize(void **state)
{
	long on_stack;
	void *p = kmalloc(MM_MAX_BLOCK * 2 + 1);

	if (PAST_BLOCK_OK) {
		assert_non_null(p);
		assert_true(ksize(p) >= MM_MAX_BLOCK * 2 + 1);
		memset(p, 1, ksize(p));
		kfree(p);
	} else {
		assert_null(p);		/* no direct mappings */
	}
	assert_int_equal(ksize(NULL), 0);
	assert_int_equal(ksize(&on_stack), 0);
	p = kmalloc(LB + 3 * PS);	/* 2 + 1 pages; 4 only where a third would end on an odd page */
	if (LARGE_FITS(3))
		assert_int_equal(ksize(p), expected_ksize_at(p, LB + 3 * PS));
	else if (PAST_BLOCK_OK)
		assert_true(ksize(p) >= LB + 3 * PS);	/* a direct mapping */
	else
		assert_null(p);
	kfree(p);
}

/* ---- kmalloc_aligned ----------------------------------------------------------- */

static void test_kmalloc_aligned(void **state)
{
	settle();	/* empty slabs back, so large blocks can merge */
	for (size_t align = 1; align <= ((size_t)1 << 20); align <<= 1) {
		/* 3 * align up to 192 KiB: the static heap has few 4 MiB blocks. */
		const size_t sizes[] = { 0, 1, align / 2, align - 1, align, align + 1,
					 align <= ((size_t)1 << 16) ? 3 * align : 2 * align,
					 100, 5000 };

		for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
			size_t sz = sizes[k];
			/* Big ones one at a time: the static heap is 16 MiB. */
			int n = sz > ((size_t)1 << 18) ? 1 : 3;
			void *p[3];

			/* A block past the largest: a direct mapping, or refused. */
			if (max_t(size_t, sz, align) > MM_MAX_BLOCK && !PAST_BLOCK_OK) {
				assert_null(kmalloc_aligned(sz, align));
				continue;
			}
			for (int j = 0; j < n; j++) {
				p[j] = kmalloc_aligned(sz, align);
				if (!p[j]) {
					print_message("kmalloc_aligned(%zu, %zu) failed\n", sz, align);
					mm_buddyinfo(def());
				}
				assert_non_null(p[j]);
				if ((uintptr_t)p[j] % align)
					print_message("kmalloc_aligned(%zu, %zu) = %p\n", sz, align, p[j]);
				assert_int_equal((uintptr_t)p[j] % align, 0);
				assert_true(ksize(p[j]) >= sz);
				memset(p[j], 0x5e, sz);
			}
			for (int j = 0; j < n; j++)
				kfree(p[j]);
		}
	}
	/* Beyond the largest block, with the mmap backend: a direct mapping. */
	if (IS_ENABLED(CONFIG_MM_BACKEND_MMAP)) {
		void *p = kmalloc_aligned(100, 2 * MM_MAX_BLOCK);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % (2 * MM_MAX_BLOCK), 0);
		memset(p, 1, 100);
		kfree(p);
		p = kmalloc_aligned(MM_MAX_BLOCK + 1, MM_MAX_BLOCK);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % MM_MAX_BLOCK, 0);
		kfree(p);
	}
	/* Not a power of two. */
	assert_null(kmalloc_aligned(64, 0));
	assert_null(kmalloc_aligned(64, 3));
	assert_null(kmalloc_aligned(64, 48));
	assert_arena_valid(def());
}

/* ---- Bad input -------------------------------------------------------------- */

/*
 * Bad frees that CONFIG_MM_CHECKS catches, and without it CONFIG_MM_FREE_MARK
 * (the release configurations).  With neither they corrupt the heap by
 * design, so these tests exist only where one of them does.
 */
#define FREES_CHECKED	(IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK))
#if FREES_CHECKED
/*
 * kfree() of a cache's descriptor is told as one; of a pointer into it, as
 * a stray: a block's start less a few bytes may land in the page before
 * the block, and a descriptor slab may be that page.  Neither is freed.
 */
static void test_kfree_of_cache_descriptor(void **state)
{
	struct kmem_cache *c = kmem_cache_create("test-desc", 64, 0, 0, NULL);

	assert_non_null(c);
	expect_bug(def(), "kfree", "is a kmem_cache", kfree(c));
	expect_bug(def(), "kfree", "points into a kmem_cache", kfree((char *)c + 8));
	assert_int_equal(ksize((char *)c + 8), 0);
	/* Intact: it still allocates, and goes. */
	kmem_cache_free(c, kmem_cache_alloc(c));
	kmem_cache_destroy(c);
}

#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
/*
 * A thread's magazines are pages, not a kmalloc block: a program that
 * frees a stale pointer twice, after a new thread's cache took the pages
 * of the block it named, has the free reported and the cache kept (it was
 * a large block, given back, and the thread crashed later).
 */
static void test_kfree_of_thread_cache(void **state)
{
	struct percpu_cache *pc;
	void *p;

	kfree(kmalloc(64));		/* this thread's cache made, if it was not */
	pc = percpu_this();
	assert_non_null(pc);
	assert_int_equal(ksize(pc), 0);
	expect_bug(def(), "kfree", "a thread's object cache", kfree(pc));
	/* Any other page block is one. */
	{
		void *page = __get_free_page();

		assert_non_null(page);
		expect_bug(def(), "kfree", "a page block (use free_pages)", kfree(page));
		free_page(page);
	}
	assert_ptr_equal(percpu_this(), pc);
	p = kmalloc(64);
	assert_non_null(p);
	kfree(p);
}
#endif

static void test_kfree_garbage(void **state)
{
	long on_stack[8];
	unsigned long e0;
	/*
	 * Pages enough that its second is inside it (one, at 64 KiB pages with
	 * no heap); two where the largest block has no room for 40000 bytes
	 * more, and a direct mapping where it has none for two.
	 */
	const size_t big_size = LB + (LARGE_FITS(40000 / PS + 1) ? max_t(size_t, 40000, 2 * PS) : 2 * PS);
	const char *inside_big = big_size <= MM_MAX_BLOCK ? "not the start of a kmalloc block" :
							    "not allocated by kmalloc";
	/* A slab object: 100 bytes, or all of the largest class below. */
	const size_t n = min_t(size_t, 100, slab_class_size(100));
	char *p = kmalloc(n), *big = kmalloc(big_size), *huge = kmalloc(MM_MAX_BLOCK + 1);
	char *med = kmalloc(3000);
	void *page = __get_free_page();

	assert_non_null(p);
	assert_non_null(big);
	assert_non_null(huge);
	assert_non_null(page);
	memset(p, 0x12, n);

	e0 = diag().error_count;
	capture_start();
	misuse(kfree(on_stack));
	check_report(def(), e0, "kfree", "not allocated by kmalloc");

	e0 = diag().error_count;
	capture_start();
	misuse(kfree((void *)(uintptr_t)0x1008));
	check_report(def(), e0, "kfree", NULL);

	/* The middle of a slab object, at any offset. */
	for (size_t off = 1; off < n; off += off < 16 ? 1 : 16) {
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(p + off));
		check_report(def(), e0, "middle of an object", NULL);
		assert_int_equal((unsigned char)p[off], 0x12);
	}
	/* Its slab's header, and where the slab's last object ends. */
	{
		struct kmem_cache *c = kmalloc_slab(n);
		char *slab = (char *)obj_to_slab(c, p);
		char *bad[] = { slab, slab + 16, slab + c->first - 16,
				slab + c->first + (size_t)c->objs * c->size };

		for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
			if (bad[k] - slab >= (PS << c->order) || bad[k] < slab)
				continue;	/* no tail, or no room in the header */
			e0 = diag().error_count;
			capture_start();
			misuse(kfree(bad[k]));
			check_report(def(), e0, "kfree", NULL);
		}
	}

	/* The middle of a buddy block. */
	e0 = diag().error_count;
	capture_start();
	misuse(kfree(big + PS));
	check_report(def(), e0, "kfree", inside_big);
	e0 = diag().error_count;
	capture_start();
	misuse(kfree(big + 8));
	check_report(def(), e0, "kfree", inside_big);

	/* The middle of a heap block, and past its end. */
	if (heap_block(3000)) {
		static const size_t off[] = { 16, 8, 1, 2048, 2992 };

		memset(med, 0x5a, 3000);
		for (size_t k = 0; k < ARRAY_SIZE(off); k++) {
			e0 = diag().error_count;
			capture_start();
			misuse(kfree(med + off[k]));
			check_report(def(), e0, "kfree", "not the start of a kmalloc block");
			assert_int_equal(ksize(med + off[k]), 0);
		}
		e0 = diag().error_count;
		capture_start();
		misuse(assert_null(krealloc(med + 16, 100)));
		check_report(def(), e0, "kfree", NULL);
		for (int i = 0; i < 3000; i++)
			assert_int_equal((unsigned char)med[i], 0x5a);
	}

	/* The middle of a direct mapping. */
	e0 = diag().error_count;
	capture_start();
	misuse(kfree(huge + PS));
	check_report(def(), e0, "kfree", "not allocated by kmalloc");

	/* A page block is not kmalloc's. */
	e0 = diag().error_count;
	capture_start();
	misuse(kfree(page));
	check_report(def(), e0, "kfree", "use free_pages");
	assert_int_equal(mm_page_order(def(), page), 0);

	/* ksize() knows no bad pointer, krealloc() fails cleanly on one. */
	assert_int_equal(ksize(p + 16), 0);
	assert_int_equal(ksize(p + 1), 0);
	assert_int_equal(ksize(big + PS), 0);
	assert_int_equal(ksize(huge + PS), 0);
	assert_int_equal(ksize(on_stack), 0);
	e0 = diag().error_count;
	capture_start();
	misuse(assert_null(krealloc(on_stack, 50)));
	check_report(def(), e0, "kfree", NULL);
	for (size_t k = 0; k < 2; k++) {
		/* Kept where it is, moved. */
		e0 = diag().error_count;
		capture_start();
		misuse(assert_null(krealloc(p + 16, k ? 500 : 50)));
		check_report(def(), e0, "kfree", NULL);
	}
	e0 = diag().error_count;
	capture_start();
	misuse(assert_null(krealloc(big + PS, 50000)));
	check_report(def(), e0, "kfree", NULL);

	/* Nothing was freed: all of it intact and freeable. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal((unsigned char)p[i], 0x12);
	assert_int_equal(ksize(big), expected_ksize_at(big, big_size));
	assert_heap_works();
	e0 = diag().error_count;
	free_page(page);
	kfree(p);
	kfree(big);
	kfree(med);
	kfree(huge);
	assert_int_equal(diag().error_count, e0);
	assert_heap_works();
}

static void test_double_kfree(void **state)
{
	/*
	 * Slab objects (100 bytes, or the largest class below) and heap
	 * blocks.  The largest class, or the largest block where classes go
	 * past it (MM_MAX_ORDER=1, MM_KMALLOC_SHIFT_HIGH=16): a direct
	 * mapping, once freed, is known for one only while it is among the
	 * last few freed, and is tried at the end.
	 */
	const size_t sizes[] = { 16, slab_class_size(100), 1000,
				 min_t(size_t, KMALLOC_MAX_CACHE_SIZE, MM_MAX_BLOCK) };
	/*
	 * "Object already free", says a slab or the heap; where the block
	 * went back to the buddy allocator whole -- pages (a class no slab
	 * suits), or a heap block alone in its span -- kfree() says it is
	 * "already free (double free)".
	 */
	const char *already_free = "already free";
	unsigned long e0;

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		void *p[6];

		for (int j = 0; j < 6; j++)
			p[j] = kmalloc(sizes[k]);
		/* The most recent free. */
		kfree(p[0]);
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(p[0]));
		check_report(def(), e0, already_free, NULL);
		/* Not the most recent. */
		kfree(p[1]);
		kfree(p[2]);
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(p[1]));
		check_report(def(), e0, already_free, NULL);
		/* Back in its slab (per-thread cache drained). */
		mm_percpu_drain();
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(p[2]));
		check_report(def(), e0, already_free, NULL);
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(p[0]));
		check_report(def(), e0, already_free, NULL);
		/* Each object comes back once. */
		{
			void *q[3];

			for (int j = 0; j < 3; j++) {
				q[j] = kmalloc(sizes[k]);
				for (int m = 0; m < j; m++)
					assert_ptr_not_equal(q[m], q[j]);
				for (int m = 3; m < 6; m++)
					assert_ptr_not_equal(p[m], q[j]);
			}
			for (int j = 0; j < 3; j++)
				kfree(q[j]);
		}
		for (int j = 3; j < 6; j++)
			kfree(p[j]);
	}

	/* A buddy block: 3 pages past LB, or the largest block where that is less. */
	if (is_large(MM_MAX_BLOCK)) {
		void *b = kmalloc(LARGE_FITS(3) ? LB + 3 * PS : MM_MAX_BLOCK), *keep = kmalloc(40000);

		kfree(b);
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(b));
		check_report(def(), e0, "kfree", "already free");
		kfree(keep);
	}
	/*
	 * A direct mapping: its mapping kept for reuse (up to 32 MiB) or
	 * given back, it is known to be freed.
	 */
	{
		void *h = kmalloc(MM_MAX_BLOCK + 1);

		assert_non_null(h);
		kfree(h);
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(h));
		check_report(def(), e0, "kfree", "already free (double free)");
	}
	assert_heap_works();
}

#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && MULTI_PAGE_SLABS(SIZE_MAX)
/*
 * The largest kmalloc class whose slabs span several pages and hold
 * objects that start past the first page, of at most 'max' bytes: where an
 * active slab keeps pages of objects it never handed out.
 * MULTI_PAGE_SLABS(max) promises one.  (With a largest block of 8 KiB,
 * kmalloc-7168's two-page slab holds one object, handed out as the slab
 * becomes active; with slabs of two pages, kmalloc-3072's two objects both
 * start on the first, threaded as the slab is made.)
 */
static __maybe_unused struct kmem_cache *multi_page_class(size_t max)
{
	struct kmem_cache *best = NULL;

	assert_non_null(kmalloc_slab(1));	/* the classes are set up */
	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);

		if (c && c->order && c->objs >= 2 && slab_obj_page(c, c->objs - 1) > 0 &&
		    c->object_size <= max &&
		    (!best || c->object_size > best->object_size))
			best = c;
	}
	assert_non_null(best);
	return best;
}

/*
 * Allocate objects of c into keep[] (at most max) until c's active slab
 * has objects it never handed out: once the free ones its slabs had are
 * gone (the thread's cache drained first, so it parks none), a new slab.
 * One at a time from the slab, not through kmalloc(), whose magazine
 * refills take a batch -- with few objects a slab (kmalloc-4064: two in
 * two pages) the whole slab at once, and no active slab ever had a fresh
 * page when the loop looked.  Returns how many it took.
 */
static __maybe_unused unsigned int alloc_until_fresh(struct kmem_cache *c, void **keep,
						      unsigned int max)
{
	unsigned int n = 0;

	mm_percpu_drain();
	while (n < max && !(c->cpu_slab && slab_fresh(c, c->cpu_slab) < c->objs)) {
		keep[n] = kmem_cache_alloc(c);
		assert_non_null(keep[n]);
		n++;
	}
	assert_true(c->cpu_slab && slab_fresh(c, c->cpu_slab) < c->objs);
	return n;
}

/*
 * After a misuse of an object its slab never handed out: the class of
 * 'size' still hands each object out once, when its turn comes -- none
 * twice, none of the n live ones in keep[].  Then everything goes back.
 */
static __maybe_unused void assert_handed_out_once(size_t size, void **keep, unsigned int n)
{
	enum { MORE = 32 };
	void *more[MORE];

	for (unsigned int m = 0; m < MORE; m++) {
		more[m] = kmalloc(size);
		assert_non_null(more[m]);
		for (unsigned int j = 0; j < m; j++)
			assert_ptr_not_equal(more[j], more[m]);
		for (unsigned int j = 0; j < n; j++)
			assert_ptr_not_equal(keep[j], more[m]);
	}
	for (unsigned int m = 0; m < MORE; m++)
		kfree(more[m]);
	for (unsigned int j = 0; j < n; j++)
		kfree(keep[j]);
	assert_heap_works();
}
#endif

#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && (IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_PAGE_CLASS)) && \
	MULTI_PAGE_SLABS(SIZE_MAX)
/*
 * kfree() of an object of a kmalloc slab that was never handed out (beyond
 * the slab's fresh index): reported, and kept out of the per-thread cache,
 * which would otherwise hand it out while the slab hands it out too.
 * Without the checks too: its page's class byte (slab.c, slab_move_fresh())
 * sends it the slow way.
 */
static void test_kfree_never_handed_out(void **state)
{
	enum { MAX = 1024 };
	struct kmem_cache *c = multi_page_class(SIZE_MAX);
	const size_t size = kmem_cache_size(c);
	static void *keep[MAX];
	unsigned int n;
	unsigned long e0;
	char *fresh;

	assert_true(c->objs >= 2);
	/* Until the class's active slab has an object it never handed out. */
	n = alloc_until_fresh(c, keep, MAX);
	fresh = (char *)c->cpu_slab + c->first + (size_t)(c->objs - 1) * c->size;
	/*
	 * As on a page fresh from the kernel: no stale free pointer that
	 * would send the free to the slab's checks anyway.
	 */
	memset(fresh, 0, sizeof(void *));
	e0 = diag().error_count;
	capture_start();
	misuse(kfree(fresh));
	check_report(def(), e0, "Object already free", "never handed out");
	assert_handed_out_once(size, keep, n);
}
#endif

#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && MULTI_PAGE_SLABS(SIZE_MAX)
/*
 * realloc() and ksize() of an object never handed out, which kfree()
 * reports as freed already (above).  ksize() gave its class's size, so
 * realloc() to a size it still fit returned it -- and the fresh index
 * handed it out again later: two owners; to a larger size it was copied
 * and freed, and realloc() succeeded.  It is no block: ksize() is 0, and
 * krealloc() reports it and fails (the facade's realloc() with ENOMEM), as
 * for a freed object.
 */
static void test_realloc_never_handed_out(void **state)
{
	enum { MAX = 1024 };
	struct kmem_cache *c = multi_page_class(SIZE_MAX);
	const size_t size = kmem_cache_size(c);
	const size_t sizes[] = { size / 2 + 1, size, 4 * size, 1 };
	static void *keep[MAX];
	unsigned int n;
	unsigned long e0;
	char *fresh;

	n = alloc_until_fresh(c, keep, MAX);
	fresh = (char *)c->cpu_slab + c->first + (size_t)(c->objs - 1) * c->size;
	memset(fresh, 0, 2 * sizeof(void *));
	assert_int_equal(ksize(fresh), 0);
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		e0 = diag().error_count;
		capture_start();
		misuse(assert_null(krealloc(fresh, sizes[k])));
		check_report(def(), e0, "BUG", NULL);
	}
	assert_handed_out_once(size, keep, n);
}
#endif

/*
 * A double free across threads: one thread frees an object into its own
 * magazine and waits; the main thread frees it again.  The object's key
 * names the other thread's cache, where it is found: reported, not taken
 * into a second magazine -- from which two threads would later be handed
 * the same block.  Each object comes back once after the thread exits.
 */
struct xfree {
	pthread_t thread;
	sem_t freed, done;
	void *p;
	size_t size;
};

static void *xfree_thread(void *arg)
{
	struct xfree *x = arg;

	x->p = kmalloc(x->size);
	kfree(x->p);			/* into this thread's magazine */
	sem_post(&x->freed);
	sem_wait(&x->done);		/* alive, magazine full, until told */
	return NULL;
}

static void test_double_kfree_other_thread(void **state)
{
	static const size_t sizes[] = { 16, 300, 2000 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		static struct xfree x;		/* the thread outlives a failed assert */
		unsigned long e0;
		void *q[4];

		x.size = sizes[k];
		assert_int_equal(sem_init(&x.freed, 0, 0), 0);
		assert_int_equal(sem_init(&x.done, 0, 0), 0);
		assert_int_equal(pthread_create(&x.thread, NULL, xfree_thread, &x), 0);
		sem_wait(&x.freed);
		if (heap_block(x.size) || !kmalloc_slab(x.size)) {
			/* No magazine for it: the heap's own checks (test_heap.c). */
			sem_post(&x.done);
			pthread_join(x.thread, NULL);
			continue;
		}
		e0 = diag().error_count;
		capture_start();
		misuse(kfree(x.p));
		/*
		 * Without magazines the slab finds it free; so does a child
		 * of fork() (misuse()), where the thread is gone and the
		 * child took its magazines back.
		 */
		check_report(def(), e0, "Object already free",
			     IS_ENABLED(CONFIG_MM_PERCPU_CACHE) &&
			     !IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR) ? "another thread's cache" : NULL);
		sem_post(&x.done);
		assert_int_equal(pthread_join(x.thread, NULL), 0);
		for (int j = 0; j < 4; j++) {
			q[j] = kmalloc(x.size);
			assert_non_null(q[j]);
			for (int m = 0; m < j; m++)
				assert_ptr_not_equal(q[m], q[j]);
		}
		for (int j = 0; j < 4; j++)
			kfree(q[j]);
		sem_destroy(&x.freed);
		sem_destroy(&x.done);
	}
	assert_arena_valid(def());
}
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && \
	(IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK))
/*
 * fork() while another thread pushes onto its magazine: the store to the
 * count may land before the one to the slot, and the child, which sifts
 * that thread's magazines (percpu.c, fork_child_sift()), read through the
 * slot of a magazine new to the class, still NULL (a random configuration
 * under UBSan, in test_lock's children).  Here the thread is parked with
 * its top slot in that state while a child forks and allocates.
 */
struct torn {
	sem_t ready, go;
	struct percpu_cache *pc;
};

static void *torn_thread(void *arg)
{
	struct torn *t = arg;

	kfree(kmalloc(64));		/* into this thread's magazine */
	t->pc = percpu_this();
	sem_post(&t->ready);
	sem_wait(&t->go);
	return NULL;
}

static void test_fork_sifts_torn_magazine(void **state)
{
	static struct torn t;		/* it outlives a failed assert */
	struct kmem_cache *c = kmalloc_slab(64);
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
	pthread_t thread;
	struct magazine *m;
	void **slot, *saved;
	pid_t pid;
	int st;

	assert_non_null(c);
	assert_int_equal(sem_init(&t.ready, 0, 0), 0);
	assert_int_equal(sem_init(&t.go, 0, 0), 0);
	assert_int_equal(pthread_create(&thread, NULL, torn_thread, &t), 0);
	sem_wait(&t.ready);
	m = &t.pc->mag[c->kmalloc_idx];
	assert_true(m->count >= 1 && m->count < m->cap);
	slot = &percpu_objs(t.pc, c->kmalloc_idx)[m->count];
	saved = *slot;
	*slot = NULL;			/* the count stored, not the slot */
	m->count++;
	/* A crash in the child is the child's, not a test run of its own. */
	sigaction(SIGSEGV, &dfl, &old);
	pid = fork();
	if (pid == 0) {
		void *q = kmalloc(64);

		kfree(q);
		_exit(q ? 0 : 1);
	}
	sigaction(SIGSEGV, &old, NULL);
	m->count--;
	*slot = saved;
	sem_post(&t.go);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("child: status %#x", st);
	sem_destroy(&t.ready);
	sem_destroy(&t.go);
}
#endif

/*
 * kmem_cache_free() into the cache kmalloc_slab() names, of an object that
 * kfree() already put in this thread's magazine: the object is on no slab
 * list, so the slab's checks found nothing and took it -- in the magazine
 * and on its slab at once, two later allocations were handed it.  The
 * magazines are asked too now.  (Without magazines the slab finds it.)
 */
static void test_kmem_cache_free_of_kfreed(void **state)
{
	/* kmalloc_slab() says NULL where the heap or whole pages serve a size. */
	static const size_t sizes[] = { 16, 100, 256, 512, 2000 };
	unsigned long e0;

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		struct kmem_cache *c = kmalloc_slab(sizes[k]);
		void *p, *keep, *q[8];

		if (!c)
			continue;
		keep = kmalloc(sizes[k]);	/* the slab stays */
		p = kmalloc(sizes[k]);
		kfree(p);
		e0 = diag().error_count;
		capture_start();
		misuse(kmem_cache_free(c, p));
		check_report(def(), e0, "Object already free",
			     IS_ENABLED(CONFIG_MM_PERCPU_CACHE) ? "this thread's cache" : NULL);
		/* Back in its slab, kmem_cache_free() of it again is no better. */
		mm_percpu_drain();
		e0 = diag().error_count;
		capture_start();
		misuse(kmem_cache_free(c, p));
		check_report(def(), e0, "Object already free", NULL);
		/* Handed out once. */
		for (int j = 0; j < 8; j++) {
			q[j] = kmalloc(sizes[k]);
			assert_non_null(q[j]);
			assert_ptr_not_equal(q[j], keep);
			for (int m = 0; m < j; m++)
				assert_ptr_not_equal(q[m], q[j]);
		}
		for (int j = 0; j < 8; j++)
			kfree(q[j]);
		kfree(keep);
	}
	assert_arena_valid(def());
}

/*
 * krealloc() of a freed object -- in this thread's magazine, or back in its
 * slab -- is reported and fails, whether the size would keep it in place
 * or move it: it neither hands the object out while it is free nor frees
 * it a second time; and it is handed out once afterwards.
 */
static void test_krealloc_of_freed_object(void **state)
{
	static const size_t sizes[] = { 16, 100, 1000, 3000 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t n = sizes[k];
		const size_t to[] = { n, n * 4 };
		char *p, *keep, *again[4];

		if (heap_block(n) || !kmalloc_slab(n))
			continue;
		p = kmalloc(n);
		keep = kmalloc(n);
		kfree(p);
		for (int drained = 0; drained < 2; drained++) {
			if (drained)
				mm_percpu_drain();	/* back in its slab */
			for (size_t t = 0; t < ARRAY_SIZE(to); t++) {
				unsigned long e0 = diag().error_count;

				capture_start();
				misuse(assert_null(krealloc(p, to[t])));
				check_report(def(), e0, "Object already free", "krealloc");
			}
		}
		for (int i = 0; i < 4; i++) {
			again[i] = kmalloc(n);
			assert_non_null(again[i]);
			assert_ptr_not_equal(again[i], keep);
			for (int j = 0; j < i; j++)
				assert_ptr_not_equal(again[i], again[j]);
		}
		for (int i = 0; i < 4; i++)
			kfree(again[i]);
		kfree(keep);
	}
	assert_heap_works();
}

#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && MULTI_PAGE_SLABS(512)
/*
 * A refill takes objects its slab never handed out straight from the
 * fresh index; they are in a magazine, so free, and a free of one is a
 * double free -- of a stale pointer, say, from before the slab's page went
 * back to the buddy allocator (whose free-list node, or the kernel's
 * zeroes, then fill the object).  The refill marks them, so it is caught
 * without the checks too: here the never-used objects are zeroed first.
 * (A class of several pages a slab: a refill threads the rest of the page
 * of the last object it takes, so a one-page slab has no fresh objects
 * left after its first.  And of 512 bytes at most, whose refills take
 * four objects or more, more than they hand out: a magazine of 8 KiB
 * objects holds two, and its refill takes one.)
 */
static void test_double_kfree_of_fresh_refill(void **state)
{
	enum { MAX = 1024 };
	struct kmem_cache *c = multi_page_class(512);
	const size_t size = kmem_cache_size(c);
	static void *keep[MAX];
	unsigned int n, lo, reported = 0;
	struct slab *s;
	char *first;

	n = alloc_until_fresh(c, keep, MAX / 2);
	s = c->cpu_slab;
	lo = slab_fresh(c, s);
	first = (char *)s + c->first;
	memset(first + (size_t)lo * c->size, 0, (size_t)(c->objs - lo) * c->size);
	mm_percpu_drain();
	/* Refills, until they have taken every never-used object of s. */
	while (n < MAX && c->cpu_slab == s && slab_fresh(c, s) < c->objs)
		keep[n++] = kmalloc(size);
	assert_true(slab_fresh(c, s) == c->objs);
	for (unsigned int i = lo; i < c->objs; i++) {
		char *o = first + (size_t)i * c->size;
		unsigned long e0 = diag().error_count;
		int handed_out = 0;

		for (unsigned int k = 0; k < n && !handed_out; k++)
			handed_out = keep[k] == o;
		if (handed_out)
			continue;
		/* Taken by a refill, not handed out: in this thread's magazine. */
		capture_start();
		misuse(kfree(o));
		check_report(def(), e0, "Object already free", NULL);
		reported++;
	}
	assert_true(reported > 0);
	for (unsigned int k = 0; k < n; k++)
		kfree(keep[k]);
	assert_heap_works();
}
#endif

/*
 * Objects that went back to their slab and came into a magazine again with
 * a refill are still known to be free: the refill marks them.
 */
static void test_double_kfree_after_refill(void **state)
{
	static const size_t sizes[] = { 16, 64, 300, 2000 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		void *o[4], *r;

		if (heap_block(sizes[k]) || !kmalloc_slab(sizes[k]))
			continue;
		for (int i = 0; i < 4; i++)
			o[i] = kmalloc(sizes[k]);
		for (int i = 0; i < 3; i++)
			kfree(o[i]);
		mm_percpu_drain();		/* back to the slab */
		r = kmalloc(sizes[k]);		/* a refill takes them again */
		for (int i = 0; i < 3; i++) {
			unsigned long e0 = diag().error_count;

			if (o[i] == r)
				continue;
			capture_start();
			misuse(kfree(o[i]));
			check_report(def(), e0, "Object already free", NULL);
		}
		kfree(r);
		kfree(o[3]);
	}
	assert_heap_works();
}

/*
 * Enough frees to overflow a magazine, so that some are pushed by its slow
 * path and some flushed to their slab, each freed again: every second free
 * is reported, and none is taken.
 */
static void test_double_kfree_many(void **state)
{
	enum { N = 300 };
	static void *o[N];
	unsigned long e0;

	mm_percpu_drain();
	for (int i = 0; i < N; i++)
		o[i] = kmalloc(64);
	for (int i = 0; i < N; i++)
		kfree(o[i]);
	e0 = diag().error_count;
	capture_start();
	for (int i = 0; i < N; i++)
		misuse(kfree(o[i]));
	capture_stop();
	assert_reported(def(), e0, N);
	for (int i = 0; i < N; i++) {
		o[i] = kmalloc(64);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(o[i], o[j]);
	}
	for (int i = 0; i < N; i++)
		kfree(o[i]);
	assert_heap_works();
}
#endif /* FREES_CHECKED */

static void test_impossible_sizes(void **state)
{
	const size_t sizes[] = {
		SIZE_MAX, SIZE_MAX - PS, SIZE_MAX / 2 + 1, SIZE_MAX / 2, (size_t)1 << 62,
		(size_t)1 << 56,
	};
	char *p = kmalloc(300);

	fill(p, 300, 3);
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		unsigned long oom0 = diag().oom_count, e0 = diag().error_count;
		size_t sz = opaque(sizes[k]);

		assert_null(kmalloc(sz));
		assert_null(kzalloc(sz));
		assert_null(kmalloc_aligned(sz, 64));
		assert_null(kmalloc_aligned(sz, PS));
		assert_null(krealloc(p, sz));
		/* Counted as failed requests, not as misuse. */
		assert_true(diag().oom_count >= oom0 + 5);
		assert_int_equal(diag().error_count, e0);
		assert_true(check_fill(p, 300, 3));	/* the old block survives */
	}
	/* A class's object, a heap block or a page, as the layout has it. */
	assert_int_equal(ksize(p), expected_ksize_at(p, 300));
	kfree(p);
	assert_heap_works();
}

/* ---- Random differential test ----------------------------------------------- */

/*
 * Bytes of the default arena that kmalloc(sz) takes, about: a class's
 * object or a heap block, or whole pages (exact in pages with a page an
 * odd end may add, else a power-of-two block); nothing past the largest
 * block, a direct mapping.
 */
static size_t arena_cost(size_t sz)
{
	size_t pages = 1;

	if (sz > MM_MAX_BLOCK)
		return 0;
	if (!is_large(sz))
		return expected_ksize(sz);
	if (IS_ENABLED(CONFIG_MM_EXACT_RUNS))
		return ALIGN(sz, PS) + PS;
	while (pages * PS < sz)
		pages *= 2;
	return pages * PS;
}

struct model {
	unsigned char *p;
	size_t size;
	size_t ks;		/* what ksize() must say */
	uint32_t tag;
	int large;		/* pages, not a slab object */
	int heap;		/* a heap block: cut and grown in place */
};

/* A log-uniform size in [1, 20000]: mostly small, now and then large. */
static size_t random_size(void)
{
	unsigned int bits = 1 + (unsigned int)(rnd() % 15);	/* 2^1 .. 2^15 */
	size_t s = 1 + (size_t)(rnd() & ((1u << bits) - 1));

	return s > 20000 ? 1 + rnd() % 20000 : s;
}

static void model_fill(struct model *m)
{
	unsigned char v = (unsigned char)(m->tag >> 24);

	memset(m->p, v, m->size);
	memcpy(m->p, &m->tag, min_t(size_t, 4, m->size));
}

/* The first n bytes are as model_fill left them. */
static void model_check(const struct model *m, size_t n)
{
	unsigned char v = (unsigned char)(m->tag >> 24);
	uint32_t t = 0;

	memcpy(&t, m->p, min_t(size_t, 4, n));
	if (n < 4)
		assert_int_equal(memcmp(&t, &m->tag, n), 0);
	else
		assert_int_equal(t, m->tag);
	if (n > 4) {
		assert_int_equal(m->p[4], v);
		assert_int_equal(memcmp(m->p + 4, m->p + 5, n - 5), 0);
	}
}

static void test_random_differential(void **state)
{
	enum { SLOTS = 512, OPS = 50000 };
	static struct model slot[SLOTS];
	size_t before, after, live = 0, room, used = 0;
	unsigned long e0;

	memset(slot, 0, sizeof(slot));
	before = settle();
	/*
	 * About 1 MiB live at the peak where the classes and the heap take
	 * the small sizes; where whole pages do (classes up to 64 bytes, no
	 * heap), some 180 of the 340-odd live blocks are one or two 64 KiB
	 * pages, more than a 16 MiB array.  What would take the mix past
	 * arena_room() is left out of it: an allocation or a growth
	 * skipped, the slot as it was.
	 */
	room = arena_room();
	e0 = diag().error_count;
	for (int op = 0; op < OPS; op++) {
		struct model *m = &slot[rnd() % SLOTS];
		unsigned int what = (unsigned int)(rnd() % 8);

		if (!m->p) {
			m->size = random_size();
			if (arena_cost(m->size) > room - used)
				continue;
			used += arena_cost(m->size);
			m->p = what == 0 ? kzalloc(m->size) : kmalloc(m->size);
			assert_non_null(m->p);
			if (what == 0) {
				assert_int_equal(m->p[0], 0);
				assert_int_equal(m->p[m->size - 1], 0);
			}
			m->ks = expected_ksize_at(m->p, m->size);
			m->large = is_large(m->size);
			m->heap = heap_block(m->size) || spilled(m->p, m->size);
			assert_int_equal(ksize(m->p), m->ks);
			m->tag = (uint32_t)rnd();
			model_fill(m);
			live++;
		} else if (what < 4) {
			size_t n = random_size();
			unsigned char *q;
			int in_place;

			if (arena_cost(n) > arena_cost(m->size) &&
			    arena_cost(n) - arena_cost(m->size) > room - used)
				continue;
			used = used - arena_cost(m->size) + arena_cost(n);
			q = krealloc(m->p, n);
			assert_non_null(q);
			/*
			 * The model's rule: a shrink stays, but a slab
			 * object halved moves to its class; a large block
			 * gives back the pages it no longer needs (keeping one
			 * more where the exact end is odd), a direct mapping
			 * its tail, a heap block its tail bytes.  Growing, a
			 * slab object moves; a large block may grow in place
			 * (when the pages after it are free), a direct mapping
			 * too (mremap), a heap block into a free block after
			 * it.  A heap block stays one however small it gets,
			 * one a class spilled into the heap too.
			 */
			in_place = (n <= m->ks && (m->large || m->heap || !slab_shrink_moves(m->ks, n))) ||
				   ((m->large || m->heap) && q == m->p);
			if (in_place) {
				assert_ptr_equal(q, m->p);
				if (m->heap) {
					assert_true(heap_ksize_ok(ksize(q), n));
					m->ks = ksize(q);
				} else if (m->large) {
					size_t e = ALIGN(n, PS);

					assert_true(ksize(q) == e || ksize(q) == e + PS);
					m->ks = ksize(q);
				}
			} else {
				assert_ptr_not_equal(q, m->p);
				m->ks = expected_ksize_at(q, n);
				m->large = is_large(n);
				m->heap = heap_block(n) || spilled(q, n);
			}
			assert_int_equal(ksize(q), m->ks);
			m->p = q;
			model_check(m, min_t(size_t, m->size, n));
			m->size = n;
			m->tag = (uint32_t)rnd();
			model_fill(m);
		} else {
			model_check(m, m->size);
			kfree(m->p);
			m->p = NULL;
			used -= arena_cost(m->size);
			live--;
		}
		if (op % 10000 == 9999)
			assert_arena_valid(def());
	}
	for (size_t s = 0; s < SLOTS; s++) {
		if (slot[s].p) {
			model_check(&slot[s], slot[s].size);
			kfree(slot[s].p);
			live--;
		}
	}
	assert_int_equal(live, 0);
	assert_int_equal(diag().error_count, e0);
	after = settle();
	assert_int_equal(after, before);
	assert_arena_valid(def());
}

/* ---- Nothing lost --------------------------------------------------------------- */

/*
 * Objects in regions older than the newest: ksize(), realloc() in place
 * and free() find their class from the page's class byte in any of the
 * few newest regions (kmalloc_class_of()), and give the right answers
 * wherever the object lies -- its class, the same object back.
 */
/* 0 for the newest region of a, 1 for the one before, ... */
static unsigned int region_age(struct mm_arena *a, const struct mm_region *r)
{
	unsigned int n = 0;

	for (const struct mm_region *q = a->regions; q && q != r; q = q->next)
		n++;
	return n;
}

static __maybe_unused void test_objects_in_older_regions(void **state)
{
	/* Slab objects (100 bytes, or the largest class below) and heap blocks. */
	const size_t sizes[] = { 16, slab_class_size(100), heap_or_slab(700), heap_or_slab(3000),
				 heap_or_slab(KMALLOC_MAX_CACHE_SIZE) };
	/*
	 * Largest blocks enough for two growths: the arena doubles, and what
	 * its regions have free goes first -- a few of 4 MiB, thousands
	 * with a small MM_MAX_ORDER.  The loop stops at two growths; the
	 * blocks are listed through their first words, and but for those
	 * untouched (address space only).
	 */
	const size_t most = max_t(size_t, 32, ((size_t)1 << 30) / MM_MAX_BLOCK);
	struct mm_arena *a = def();
	void *obj[ARRAY_SIZE(sizes)], *big = NULL, *p;
	struct mm_region *barred[64];
	unsigned int nbarred = 0;
	size_t nbig = 0;
	unsigned long regions = diag().nr_regions;

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++)
		obj[k] = kmalloc(sizes[k]);
	/*
	 * Grow the arena by two regions at least (blocks of the largest
	 * order); a static array cannot grow: nothing to test there.  A
	 * region whose metadata has room for the two blocks growth asks
	 * for grows in place instead (trim.c, __region_regrow()): after a
	 * trim, and from the start where one metadata page covers more
	 * than that -- 2 GiB at 64 KiB pages, and the program break extends
	 * as far.  There, bar it for the test, as someone else's memory
	 * after the region would.  At 4 KiB pages (two metadata bytes a
	 * page) a new region's room is short of two 4 MiB blocks, and the
	 * test is what it was.
	 */
	for (;;) {
		for (struct mm_region *r = a->regions; r; r = r->next) {
			if (MM_PAGE_SIZE / MM_META_BYTES <= (2u << MM_MAX_ORDER) ||
			    r->no_regrow || r->max_pages - r->nr_pages < (2u << MM_MAX_ORDER))
				continue;
			assert_true(nbarred < ARRAY_SIZE(barred));
			r->no_regrow = 1;
			barred[nbarred++] = r;
		}
		if (nbig == most || diag().nr_regions >= regions + 2)
			break;
		p = kmalloc(MM_MAX_BLOCK);
		if (!p)
			break;
		*(void **)p = big;
		big = p;
		nbig++;
	}
	while (nbarred)
		barred[--nbarred]->no_regrow = 0;
	if (diag().nr_regions < regions + 2)
		fail_msg("the arena grew by %lu regions, not 2", diag().nr_regions - regions);
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		struct mm_region *r = region_of(a, addr_to_pfn(obj[k]));
		size_t cls = expected_class(sizes[k]);
		void *again;

		assert_non_null(r);
		assert_ptr_not_equal(r, a->regions);	/* not the newest region */
		if (heap_block(sizes[k])) {
			/* A heap block: cut and grown back where it is. */
			assert_int_equal(ksize(obj[k]), expected_ksize_at(obj[k], sizes[k]));
			assert_ptr_equal(krealloc(obj[k], sizes[k] / 2 + 1), obj[k]);
			assert_true(heap_ksize_ok(ksize(obj[k]), sizes[k] / 2 + 1));
			assert_ptr_equal(krealloc(obj[k], sizes[k]), obj[k]);
			assert_true(heap_ksize_ok(ksize(obj[k]), sizes[k]));
			kfree(obj[k]);
			continue;
		}
		if (is_large(sizes[k])) {
			/* A class no slab suits (MM_MAX_ORDER=1): whole pages. */
			assert_int_equal(ksize(obj[k]), expected_ksize_at(obj[k], sizes[k]));
			kfree(obj[k]);
			continue;
		}
		/*
		 * In one of the newest regions, found by kfree()'s inline
		 * lookup, not left to its slow path (an older region may
		 * lie right above the newest: mmap places new ones below).
		 */
		if (IS_ENABLED(CONFIG_MM_PAGE_CLASS) && region_age(a, r) < KMALLOC_FAST_REGIONS)
			assert_int_equal(kmalloc_class_of(obj[k]),
					 kmalloc_slab(sizes[k])->kmalloc_idx);
		assert_int_equal(ksize(obj[k]), cls);
		assert_ptr_equal(krealloc(obj[k], cls / 2 + 1), obj[k]);
		assert_ptr_equal(krealloc(obj[k], cls), obj[k]);
		/* Freed into this thread's cache of its class: the next one back. */
		kfree(obj[k]);
		again = kmalloc(sizes[k]);
		if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE))
			assert_ptr_equal(again, obj[k]);
		assert_int_equal(ksize(again), cls);
		kfree(again);
	}
	while (big) {
		p = big;
		big = *(void **)p;
		kfree(p);
	}
	assert_arena_valid(a);
}

#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
/*
 * Slow start: a thread's first kmalloc of a class refills its magazine
 * with a few objects (MAG_START / 2, one slab's worth at most), not half
 * the class's capacity, and the capacity doubles with each refill until
 * it is the class's.  A run of frees with no refill between the flushes
 * halves it again, down to the start (a consumer thread parks little).
 */
struct slow_start {
	struct kmem_cache *c;
	size_t size;
	unsigned long active_before, active_after;
	unsigned int cap_first, cap_later, cap_freed;
};

static void *slow_start_thread(void *arg)
{
	enum { N = 200 };
	struct slow_start *ss = arg;
	struct kmem_cache_info i;
	void *p[N];

	kmem_cache_info(ss->c, &i);
	ss->active_before = i.active_objs;
	p[0] = kmalloc(ss->size);
	kmem_cache_info(ss->c, &i);
	ss->active_after = i.active_objs;
	ss->cap_first = percpu_mag(ss->c)->cap;
	for (int k = 1; k < N; k++)
		p[k] = kmalloc(ss->size);
	ss->cap_later = percpu_mag(ss->c)->cap;
	for (int k = 0; k < N; k++)
		kfree(p[k]);
	ss->cap_freed = percpu_mag(ss->c)->cap;
	return NULL;
}

/*
 * A thread that only allocates parks what its last refill brought: at
 * most 2 KiB of objects of a class of 512 bytes (4), while a class of
 * 64 bytes still refills half its magazine (31) per lock.
 */

/* A refill's most objects of cache c (percpu.c): 2 KiB of them, 4 at least, 64 at most. */
static unsigned int refill_most(const struct kmem_cache *c)
{
	return min_t(unsigned int, max_t(unsigned int, 2048 / c->size, 4), 64);
}

/* What a refill of a full-grown magazine brings: half of it, up to refill_most(). */
static unsigned int refill_objs(const struct kmem_cache *c)
{
	return min_t(unsigned int, c->mag_cap / 2, refill_most(c));
}

struct producer {
	struct kmem_cache *c;
	size_t size;
	unsigned int most;		/* objects in the magazine, at most */
};

static void *producer_thread(void *arg)
{
	enum { N = 300 };
	struct producer *pr = arg;
	void *p[N];

	for (int k = 0; k < N; k++) {
		p[k] = kmalloc(pr->size);
		pr->most = max_t(unsigned int, pr->most, percpu_mag(pr->c)->count);
	}
	for (int k = 0; k < N; k++)
		kfree(p[k]);
	return NULL;
}

static void test_magazine_refill_bytes(void **state)
{
	/* 512 and 64 bytes, or the classes the layout has for them. */
	struct producer big = { .size = slab_class_size(500) };
	struct producer small = { .size = slab_class_size(64) };
	pthread_t t;

	big.c = kmalloc_slab(big.size);
	small.c = kmalloc_slab(small.size);
	assert_non_null(big.c);
	assert_non_null(small.c);
	assert_int_equal(big.c->mag_refill, refill_most(big.c));
	assert_int_equal(pthread_create(&t, NULL, producer_thread, &big), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* A refill of 4 (of 512 bytes), one of them handed out at once. */
	assert_int_equal(big.most, refill_objs(big.c) - 1);
	assert_int_equal(pthread_create(&t, NULL, producer_thread, &small), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(small.most, refill_objs(small.c) - 1);
	assert_heap_works();
}

/*
 * A refill hands its batch out in the order the slab gave it: a fresh
 * slab's objects upwards, so that a list built one kmalloc() at a time
 * lies in memory in the order it is walked (GNU ed's line list went 1.7
 * times glibc's time while each batch came out downwards).  Of many
 * objects held, those of a slab that gave all of them in a row came from
 * a fresh slab (a class behind magazines keeps no empty one), and must
 * ascend -- but for the slab active when the magazines were drained,
 * whose free list has them in the order they came back, as has what
 * partial slabs older tests left.
 */
static void test_magazine_hands_out_ascending(void **state)
{
	struct kmem_cache *c = kmalloc_slab(min_t(size_t, 256, KMALLOC_MAX_CACHE_SIZE));
	unsigned int n, whole = 0;
	struct slab *active;
	void **p;

	assert_non_null(c);
	assert_true(c->mag_refill >= 2 && c->objs >= 2);
	mm_percpu_drain();
	active = c->cpu_slab;
	n = 64 * c->objs;
	p = calloc(n, sizeof(*p));
	assert_non_null(p);
	for (unsigned int i = 0; i < n; i++) {
		p[i] = kmalloc(kmem_cache_size(c));
		assert_non_null(p[i]);
	}
	for (unsigned int i = 0, run; i < n; i += run) {
		struct slab *s = obj_to_slab(c, p[i]);

		for (run = 1; i + run < n && obj_to_slab(c, p[i + run]) == s; run++)
			;
		if (run != c->objs || s == active)
			continue;
		for (unsigned int k = i; k + 1 < i + run; k++)
			assert_true(p[k + 1] > p[k]);
		whole++;
	}
	assert_true(whole >= 2);
	for (unsigned int i = 0; i < n; i++)
		kfree(p[i]);
	free(p);
}

/*
 * A thread's cache is taken from the arena at its first refill or flush,
 * not before (a thread that never allocates has none: its caps read 0),
 * and goes back when the thread exits.  A free in a pthread key destructor
 * that runs after the exit flush takes the locked path instead of making
 * a cache nobody would give back.
 */
struct lifetime {
	struct kmem_cache *c;
	pthread_key_t late;
	unsigned int cap_before, cap_after, cap_late;
	size_t free_before, free_during;
};

static void late_destructor(void *arg)
{
	struct lifetime *lt = arg;

	kfree(kmalloc(64));
	lt->cap_late = percpu_mag(lt->c)->cap;
}

static void *lifetime_thread(void *arg)
{
	struct lifetime *lt = arg;

	lt->cap_before = percpu_mag(lt->c)->cap;
	kfree(kmalloc(64));
	lt->cap_after = percpu_mag(lt->c)->cap;
	lt->free_during = mm_arena_free_pages(def());
	/* Created after the exit key: its destructor runs after the flush. */
	pthread_setspecific(lt->late, lt);
	return NULL;
}

static void test_magazine_lifetime(void **state)
{
	struct lifetime lt = { .c = kmalloc_slab(64), .cap_late = ~0u };
	pthread_t t;

	assert_non_null(lt.c);
	assert_int_equal(pthread_key_create(&lt.late, late_destructor), 0);
	/* A slab of the class with free objects, so the thread needs no new one. */
	kfree(kmalloc(64));
	settle();
	kfree(kmalloc(64));
	lt.free_before = mm_arena_free_pages(def());
	assert_int_equal(pthread_create(&t, NULL, lifetime_thread, &lt), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(lt.cap_before, 0);
	assert_true(lt.cap_after >= 8);	/* slow start: 8, doubled at the refill */
	/* Its cache came from the arena's pages and went back to them. */
	assert_true(lt.free_during < lt.free_before);
	assert_int_equal(lt.cap_late, 0);
	assert_int_equal(mm_arena_free_pages(def()), lt.free_before);
	pthread_key_delete(lt.late);
	assert_heap_works();
}

/*
 * A thread whose first call is a free sets its cache up then; when the
 * heap is full that fails, and the free takes the locked path.  It must
 * not be an allocation failure: no OOM count, and no call of the OOM
 * hook -- which may well free memory itself, from inside free(), and
 * each of its frees would fail and call the hook again.
 */
struct free_at_oom {
	void *obj;
	unsigned int hook_calls;
};

static int free_at_oom_hook(struct mm_arena *a, size_t bytes, void *ctx)
{
	((struct free_at_oom *)ctx)->hook_calls++;
	return 0;
}

static void *free_at_oom_thread(void *arg)
{
	struct free_at_oom *f = arg;

	kfree(f->obj);
	return NULL;
}

static void test_free_at_oom_is_no_failure(void **state)
{
	struct mm_arena *a = def();
	struct free_at_oom f = { 0 };
	unsigned long oom0;
	pthread_t t;
	void *list;

	list = fill_heap();
	f.obj = list;				/* a 20-byte object */
	list = *(void **)list;
	oom0 = diag().oom_count;
	mm_arena_set_oom_hook(a, free_at_oom_hook, &f);
	assert_int_equal(pthread_create(&t, NULL, free_at_oom_thread, &f), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	mm_arena_set_oom_hook(a, NULL, NULL);
	oom0 = diag().oom_count - oom0;
	unfill_heap(list);
	assert_int_equal(f.hook_calls, 0);
	assert_int_equal(oom0, 0);
	assert_arena_valid(a);
	assert_heap_works();
}

/*
 * kmem_cache_free() into kmalloc_slab()'s cache while another thread
 * forks.  A live object whose first word looks like a magazine key (any
 * word that is 42 modulo 64: the number 42, a string that starts with
 * 'j' or '*') is looked for in the magazines, and that took live_lock
 * under the arena lock -- while fork()'s prepare handler took live_lock
 * first and the arena locks after: each thread waited for the other's
 * lock for ever, within a few forks.  The forks run in a child, so that
 * a hang is a failure and not a test program that never ends.  Not under
 * ThreadSanitizer, which takes the child's reset of the locks its parent
 * held across fork() for double locks (as for test_lock's fork tests).
 */
#if !defined(__SANITIZE_THREAD__)
#define KEY_LIKE	(PERCPU_KEY_SALT & (__alignof__(struct percpu_cache) - 1))

static volatile int key_like_stop, key_like_running;

/*
 * The freeing thread yields now and then, outside the locks: Valgrind runs
 * one thread at a time and switches after a fixed count of blocks, which
 * in this loop fell inside the arena lock every time, and with the
 * spinlock (host_static) the forking thread never found it free -- a
 * livelock of the test under Valgrind, not a deadlock of the allocator.
 */
static void *key_like_free_thread(void *arg)
{
	struct kmem_cache *c = arg;

	for (unsigned int n = 1; !key_like_stop; n++) {
		uintptr_t *p = kmem_cache_alloc(c);

		if (!p)
			break;
		p[0] = KEY_LIKE;
		kmem_cache_free(c, p);
		key_like_running = 1;
		if (n % 64 == 0)
			sched_yield();
	}
	return NULL;
}

static int key_like_fork_child(void)
{
	struct kmem_cache *c = kmalloc_slab(64);
	pthread_t t;

	if (!c || pthread_create(&t, NULL, key_like_free_thread, c))
		return 2;
	while (!key_like_running)
		usleep(100);
	for (int i = 0; i < 50; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 3;
		if (pid == 0)
			_exit(0);
		if (waitpid(pid, NULL, 0) != pid)
			return 4;
	}
	key_like_stop = 1;
	return pthread_join(t, NULL) ? 5 : 0;
}

static void test_kmem_cache_free_key_like_while_forking(void **state)
{
	int status = 0, waited = 0;
	pid_t pid, r;

	assert_int_equal(KEY_LIKE, 42);
	assert_true(percpu_key_like(KEY_LIKE));
	assert_non_null(kmalloc_slab(64));
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(key_like_fork_child());
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && waited++ < 60 * 100)
		usleep(10000);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("a thread's kmem_cache_free() and another's fork() hung for 60 s");
	}
	assert_int_equal(r, pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

/*
 * free() preserves errno (malloc.c), also when it sets the thread's
 * cache up and that grows the arena: here a region whose tail was given
 * back cannot grow in place (another mapping sits after it), the attempt
 * fails with EEXIST, and a new region is mapped instead.
 */
struct free_errno {
	void *obj;
	int err;
};

static void *free_errno_thread(void *arg)
{
	struct free_errno *f = arg;

	mm_arena_set_limit(def(), 0);	/* here: pthread_create() allocates */
	errno = 1234;
	kfree(f->obj);
	f->err = errno;
	return NULL;
}

static __maybe_unused void test_first_free_keeps_errno(void **state)
{
	enum { MAX_BLOCKERS = 16 };
	struct mm_arena *a = def();
	struct free_errno f = { 0 };
	void *list, *blocker[MAX_BLOCKERS];
	unsigned int nb = 0;
	pthread_t t;

	f.obj = kmalloc(20);
	assert_non_null(f.obj);
	settle();
	mm_arena_trim(a, 0);		/* region tails back to the system */
	for (struct mm_region *r = a->regions; r && nb < MAX_BLOCKERS; r = r->next) {
		size_t cap = r->max_pages - r->nr_pages;
		void *end = pfn_to_addr(mm_region_end(r));
		void *m;

		if (r->backend != a->backend || r->no_regrow || cap < 16)
			continue;
		/*
		 * A page at the region's end, so that it cannot grow in place.
		 * EEXIST: something is there already, just as good.
		 */
		m = mmap(end, PS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (m == MAP_FAILED) {
			assert_int_equal(errno, EEXIST);
			continue;
		}
		blocker[nb++] = m;
		/* A kernel older than 4.17 maps elsewhere: the test needs the flag. */
		assert_ptr_equal(m, end);
	}
	list = fill_heap();		/* full, with no growth until the thread's first free */
	assert_int_equal(pthread_create(&t, NULL, free_errno_thread, &f), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	unfill_heap(list);
	while (nb)
		munmap(blocker[--nb], PS);
	assert_int_equal(f.err, 1234);
	assert_arena_valid(a);
	assert_heap_works();
}

/*
 * Every class refills its magazines with a few objects at least
 * (MAG_START / 2 = 4): the smallest class too, whose 2 KiB of objects
 * (256 of 8 bytes, CONFIG_MM_KMALLOC_SHIFT_LOW=3) do not fit the byte
 * the refill count is kept in -- it wrapped to 0, and every kmalloc(8)
 * of a thread with an empty magazine took the arena lock.
 */
static void test_magazine_refill_every_class(void **state)
{
	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);

		if (!c)
			continue;
		assert_true(c->mag_refill >= 4);
	}
}

/*
 * A kmalloc class behind magazines keeps no empty slab (slab.c,
 * keep_empty()): once its objects are freed and the magazine drained,
 * its pages are the buddy allocator's again without kmem_cache_reap(),
 * all but the active slab's.  A cache of the program's own, without
 * magazines, still keeps CONFIG_MM_SLAB_MAX_EMPTY (test_slab.c).
 */
static void test_class_keeps_no_empty_slab(void **state)
{
	/* 400 bytes, or the largest class below where the heap serves them. */
	const size_t size = slab_class_size(400);
	struct kmem_cache *c = kmalloc_slab(size);
	struct kmem_cache_info info;
	size_t before, slab_bytes;
	unsigned long active0, slabs0;
	void **p;
	unsigned int n;

	assert_non_null(c);
	kmem_cache_info(c, &info);
	n = 4 * info.objs_per_slab;
	slab_bytes = (size_t)info.pages_per_slab << MM_PAGE_SHIFT;
	/*
	 * Before the baseline: with the libc facade the array is mm's too,
	 * and at 64 KiB pages it is big enough to take a heap span.
	 */
	p = calloc(n, sizeof(*p));
	assert_non_null(p);
	before = settle();
	kmem_cache_info(c, &info);
	active0 = info.active_objs;
	slabs0 = info.num_slabs;
	for (unsigned int k = 0; k < n; k++) {
		p[k] = kmalloc(size);
		assert_non_null(p[k]);
		memset(p[k], (int)k, size);
	}
	mm_percpu_drain();
	kmem_cache_info(c, &info);
	assert_true(info.num_slabs >= slabs0 + 3);
	for (unsigned int k = 0; k < n; k++)
		kfree(p[k]);
	mm_percpu_drain();
	kmem_cache_info(c, &info);
	assert_int_equal(info.active_objs, active0);
	/* The slabs that emptied went back: at most one more, the active one. */
	assert_true(info.num_slabs <= slabs0 + 1);
	assert_true(diag().allocated <= before + slab_bytes);
	assert_int_equal(settle(), before);
	free(p);
}

static void test_magazine_slow_start(void **state)
{
	/* A class of 512 bytes, or the largest below where the layout has none. */
	struct slow_start ss = { .size = slab_class_size(500) };
	pthread_t t;

	ss.c = kmalloc_slab(ss.size);
	assert_non_null(ss.c);
	assert_true(ss.c->mag_cap > 8);
	assert_int_equal(pthread_create(&t, NULL, slow_start_thread, &ss), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* Four objects taken from the slabs, not half a magazine (31). */
	assert_int_equal(ss.active_after - ss.active_before, 4);
	assert_int_equal(ss.cap_first, 16);
	assert_int_equal(ss.cap_later, ss.c->mag_cap);
	assert_int_equal(ss.cap_freed, 8);
	assert_heap_works();
}

/*
 * A magazine that fills up with no refill between halves its capacity
 * down to the start (MAG_START, 8) and stays there, whatever the class's
 * capacity: not only a power of two (64, 32, 16) comes down to 8 -- a
 * class of 320 bytes has 51, which halved to 25, 12 and then 6.
 */
static void test_magazine_shrinks_to_start(void **state)
{
	unsigned int tried = 0;

	assert_non_null(kmalloc_slab(1));	/* the classes are set up */
	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		struct slow_start ss = { .c = kmalloc_cache_index(i) };
		pthread_t t;

		/* Not the classes the heap takes over once their slabs are many. */
		if (!ss.c || ss.c->mag_cap <= 8 || ss.c->spill_slabs != ~0UL)
			continue;
		ss.size = kmem_cache_size(ss.c);
		assert_int_equal(pthread_create(&t, NULL, slow_start_thread, &ss), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		if (ss.cap_freed != 8)
			print_message("%s: %u objects of %u\n", ss.c->name, ss.cap_freed,
				      ss.c->mag_cap);
		assert_int_equal(ss.cap_freed, 8);
		tried++;
	}
	assert_true(tried > 0);
	assert_heap_works();
}
#endif

#if IS_ENABLED(CONFIG_MM_PAGE_CLASS)
/*
 * kfree()'s inline class lookup reads a region's metadata as far as it has
 * room for (max_pages), past the region's last page, without the lock.
 * There an older region may lie -- mmap puts a newer region just below --
 * and its objects must still be found, not sent the slow way (which once
 * cost the mixed benchmark half its speed).  Two regions laid out so: the
 * older, U, right after the newer, L.  The lookup reads only a page's
 * class byte, so one of U's is set by hand and put back.
 */
static void test_class_lookup_past_region_end(void **state)
{
	enum { L_PAGES = 16, U_PAGES = 64 };
	struct mm_arena *a = def();
	char *mem = mmap(NULL, (L_PAGES + U_PAGES) * PS, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned int k = slab_class_near(100)->kmalloc_idx;
	struct mm_region *lo, *up;
	uintptr_t pfn;
	uint8_t *cls;

	assert_true(mem != MAP_FAILED);
	assert_int_equal(mm_arena_add_region(a, mem + L_PAGES * PS, U_PAGES * PS), 0);
	up = a->regions;
	assert_int_equal(mm_arena_add_region(a, mem, L_PAGES * PS), 0);
	lo = a->regions;
	assert_ptr_equal(lo->next, up);
	/* A page of U: past L's end, inside what L's metadata could describe. */
	pfn = up->start_pfn + 1;
	assert_true(pfn - lo->start_pfn >= lo->nr_pages);
	assert_true(pfn - lo->start_pfn < lo->max_pages);
	cls = page_class(up, pfn);
	assert_int_equal(*cls, 0);
	assert_int_equal(kmalloc_class_of(pfn_to_addr(pfn)), 0);
	*cls = (uint8_t)k;
	assert_int_equal(kmalloc_class_of(pfn_to_addr(pfn)), k);
	assert_int_equal(kmalloc_class_of((char *)pfn_to_addr(pfn) + PS - 1), k);
	*cls = 0;
	/* U's header, also past L's end: in no region, class 0. */
	assert_int_equal(kmalloc_class_of(up), 0);
	assert_arena_valid(a);
	/* The heap walk sees a class byte past a region's end. */
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	{
		unsigned long e0 = diag().error_count;

		cls = page_class(lo, lo->start_pfn + lo->nr_pages);
		*cls = (uint8_t)k;
		capture_start();
		misuse(assert_int_equal(mm_arena_validate(a), -1));
		check_report(a, e0, "past the region's end", NULL);
		*cls = 0;
		assert_arena_valid(a);
	}
#endif
}
#endif

static void test_nothing_lost(void **state)
{
	enum { N = 2000 };
	static void *p[N];
	size_t before, after, cap0, free0, room, used = 0;

	/* Warm-up: every class's cache exists and has made a slab. */
	for (size_t sz = 1; sz <= KMALLOC_MAX_CACHE_SIZE; sz *= 2)
		kfree(kmalloc(sz));
	before = settle();
	cap0 = diag().capacity;
	free0 = mm_arena_free_pages(def());
	/*
	 * About 9 MiB in all where the classes and the heap take the small
	 * sizes; where whole pages do (classes up to 64 bytes, the heap up to
	 * 1 KiB), 2000 of them at 64 KiB pages are over 100 MiB.  The mix
	 * stops at arena_room().
	 */
	room = arena_room();

	for (int k = 0; k < N; k++) {
		/* Every 20th a buddy block of 3 to 16 pages (of 4 KiB). */
		size_t sz = k % 20 == 0 ? 10000 + (size_t)(rnd() % 55000) : 1 + (size_t)(rnd() % 3000);

		if (arena_cost(sz) > room - used)
			break;		/* the rest stay NULL: kfree(NULL) below */
		used += arena_cost(sz);
		p[k] = kmalloc(sz);
		assert_non_null(p[k]);
		memset(p[k], k, sz);
	}
	assert_true(diag().allocated > before);
	/* Free in a scrambled order. */
	for (int k = 0; k < N; k++) {
		int j = (int)((k * 7919L) % N);

		kfree(p[j]);
		p[j] = NULL;
	}
	for (int k = 0; k < N; k++)
		assert_null(p[k]);
	{
		void *h = kmalloc(3 * MM_MAX_BLOCK);	/* not in the arena at all */

		/* A direct mapping, or refused where there are none. */
		assert_true(!h == !PAST_BLOCK_OK);
		kfree(h);
	}
	after = settle();
	if (after != before)
		print_message("allocated before %zu, after %zu\n", before, after);
	assert_int_equal(after, before);
	/* Unless the arena grew or gave memory back meanwhile, the very same
	 * free-page count. */
	if (diag().capacity == cap0)
		assert_int_equal(mm_arena_free_pages(def()), free0);
	assert_arena_valid(def());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_boundaries),
		cmocka_unit_test(test_fitted_classes_fill_slabs),
		cmocka_unit_test(test_every_size_finds_its_class),
		cmocka_unit_test(test_every_cache_serves_its_size),
		cmocka_unit_test(test_large_exact),
		cmocka_unit_test(test_class_alignment),
		cmocka_unit_test(test_kmalloc_zero),
#if IS_ENABLED(CONFIG_MM_REPORTS)
		cmocka_unit_test(test_slabinfo_default_arena),
#endif
		cmocka_unit_test(test_zeroing_and_arrays),
#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_MMAP)
		cmocka_unit_test(test_kzalloc_leaves_fresh_pages_untouched),
#endif
		cmocka_unit_test(test_krealloc_across_everything),
		cmocka_unit_test(test_krealloc_in_place),
		cmocka_unit_test(test_krealloc_shrink_moves_to_smaller_class),
		cmocka_unit_test(test_krealloc_shrink_never_fails),
		cmocka_unit_test(test_failure_counted_once),
		cmocka_unit_test(test_ksize),
		cmocka_unit_test(test_kmalloc_aligned),
#if FREES_CHECKED
		cmocka_unit_test(test_kfree_of_cache_descriptor),
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
		cmocka_unit_test(test_kfree_of_thread_cache),
#endif
		cmocka_unit_test(test_kfree_garbage),
		cmocka_unit_test(test_double_kfree),
		cmocka_unit_test(test_double_kfree_other_thread),
		cmocka_unit_test(test_double_kfree_after_refill),
#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && MULTI_PAGE_SLABS(512)
		cmocka_unit_test(test_double_kfree_of_fresh_refill),
#endif
		cmocka_unit_test(test_krealloc_of_freed_object),
		cmocka_unit_test(test_kmem_cache_free_of_kfreed),
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && \
	(IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK))
		cmocka_unit_test(test_fork_sifts_torn_magazine),
#endif
		cmocka_unit_test(test_double_kfree_many),
#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && (IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_PAGE_CLASS)) && \
	MULTI_PAGE_SLABS(SIZE_MAX)
		cmocka_unit_test(test_kfree_never_handed_out),
#endif
#if IS_ENABLED(CONFIG_MM_SLAB_LAZY) && MULTI_PAGE_SLABS(SIZE_MAX)
		cmocka_unit_test(test_realloc_never_handed_out),
#endif
#endif
		cmocka_unit_test(test_impossible_sizes),
		cmocka_unit_test(test_random_differential),
#if !IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC)	/* a static array cannot grow */
		cmocka_unit_test(test_objects_in_older_regions),
#endif
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
		cmocka_unit_test(test_magazine_slow_start),
		cmocka_unit_test(test_magazine_shrinks_to_start),
		cmocka_unit_test(test_magazine_lifetime),
		cmocka_unit_test(test_magazine_refill_bytes),
		cmocka_unit_test(test_magazine_hands_out_ascending),
		cmocka_unit_test(test_magazine_refill_every_class),
		cmocka_unit_test(test_class_keeps_no_empty_slab),
		cmocka_unit_test(test_free_at_oom_is_no_failure),
#if !defined(__SANITIZE_THREAD__)
		cmocka_unit_test(test_kmem_cache_free_key_like_while_forking),
#endif
#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_TRIM)
		cmocka_unit_test(test_first_free_keeps_errno),
#endif
#endif
		cmocka_unit_test(test_nothing_lost),
#if IS_ENABLED(CONFIG_MM_PAGE_CLASS)
		/* Last: its two small regions stay the default arena's newest. */
		cmocka_unit_test(test_class_lookup_past_region_end),
#endif
	};

	/* Set up before any measurement: the default arena, the classes. */
	assert_int_equal(mm_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
