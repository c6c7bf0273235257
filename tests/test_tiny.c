// SPDX-License-Identifier: MIT
/*
 * The size-first core (CONFIG_MM_TINY): buddy, slab caches and kmalloc on
 * its one static region.  The malloc facade on top of it is test_malloc's.
 *
 * Every test ends where it started: the free-page count and the number of
 * free blocks of each order are what they were before it ("nothing lost").
 * The core keeps empty slabs until a shrink, so the baseline is taken and
 * checked after kmem_cache_reap().
 */
#include <stdlib.h>
#include "helpers.h"
#include "../mm/tiny.h"		/* white-box: where a slab's header and the class array are */

#if !IS_ENABLED(CONFIG_MM_TINY)
#error "test_tiny is for CONFIG_MM_TINY"
#endif

/* Per-order counts and kmem_cache_info() come with statistics or reports. */
#define ORDER_COUNTS	(IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS))

struct baseline {
	size_t free;
	size_t order[MM_NR_ORDERS];
};

static struct mm_arena *arena(void)
{
	struct mm_arena *a = mm_default_arena();

	assert_non_null(a);
	assert_non_null(kmalloc_slab(1));	/* kmalloc's classes are set up */
	return a;
}

static void take(struct baseline *b)
{
	struct mm_arena *a = arena();

	kmem_cache_reap(a);
	b->free = mm_arena_free_pages(a);
#if ORDER_COUNTS
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		b->order[o] = mm_arena_nr_free_order(a, o);
#endif
}

/* Nothing lost: every page and every merge is back. */
static void back_to(const struct baseline *b)
{
	struct mm_arena *a = arena();

	kmem_cache_reap(a);
	assert_int_equal(mm_arena_free_pages(a), b->free);
#if ORDER_COUNTS
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		assert_int_equal(mm_arena_nr_free_order(a, o), b->order[o]);
#endif
}

static void fill(void *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)p)[i] = (unsigned char)(seed * 31 + i);
}

static int filled(const void *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i] != (unsigned char)(seed * 31 + i))
			return 0;
	return 1;
}

/* ---- buddy ------------------------------------------------------------- */

static void test_setup_geometry(void **state)
{
	struct mm_arena *a = arena();
	struct mm_diag d;

	/* One metadata byte per page, in pages of its own before the first one. */
	assert_true(a->nr_pages > 0);
	assert_true((uintptr_t)a->meta < (uintptr_t)pfn_to_addr(a->start_pfn));
	assert_true((uintptr_t)a->meta + a->nr_pages <= (uintptr_t)pfn_to_addr(a->start_pfn));
	assert_true(a->nr_pages * MM_PAGE_SIZE + MM_PAGE_SIZE <= CONFIG_MM_STATIC_SIZE);
	/* The whole region is on the free lists but kmalloc's class array. */
	mm_arena_diag(a, &d);
	assert_int_equal(d.capacity, a->nr_pages * MM_PAGE_SIZE);
	assert_int_equal(d.allocated, (a->nr_pages - mm_arena_free_pages(a)) * MM_PAGE_SIZE);
	assert_int_equal(d.nr_regions, 1);
	assert_int_equal(mm_init(), 0);
}

static void test_buddy_orders_aligned_and_merged(void **state)
{
	struct mm_arena *a = arena();
	struct baseline b;
	void *p[MM_NR_ORDERS];

	take(&b);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++) {
		p[o] = alloc_pages(a, o);
		assert_non_null(p[o]);
		assert_int_equal((uintptr_t)p[o] % (MM_PAGE_SIZE << o), 0);
		fill(p[o], MM_PAGE_SIZE << o, o);
	}
	assert_int_equal(mm_arena_free_pages(a), b.free - ((1u << MM_NR_ORDERS) - 1));
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		assert_true(filled(p[o], MM_PAGE_SIZE << o, o));
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		free_pages(a, p[o], o);
	back_to(&b);
	assert_null(alloc_pages(a, MM_MAX_ORDER + 1));
}

static void test_buddy_exhaust_and_recover(void **state)
{
	/* Not from malloc: with the libc facade that is this same heap. */
	static void *pages[CONFIG_MM_STATIC_SIZE / MM_PAGE_SIZE];
	struct mm_arena *a = arena();
	unsigned long oom;
	struct baseline b;
	size_t n = 0;

	take(&b);
	oom = a->diag.oom_count;
	while ((pages[n] = __get_free_page()) != NULL) {
		*(size_t *)pages[n] = n;
		n++;
		assert_true(n <= b.free);
	}
	assert_int_equal(n, b.free);
	assert_int_equal(mm_arena_free_pages(a), 0);
	assert_int_equal(a->diag.oom_count, oom + 1);
	assert_null(kmalloc(MM_PAGE_SIZE * 2));	/* large blocks too */
	/* Free in an order that merges late: every other page first. */
	for (size_t i = 0; i < n; i += 2)
		free_page(pages[i]);
	for (size_t i = 1; i < n; i += 2) {
		assert_int_equal(*(size_t *)pages[i], i);
		free_page(pages[i]);
	}
	back_to(&b);
}

/*
 * Orders and sizes the largest block holds: order 2 or 5, or the largest
 * where that is less; a large block -- past the classes, which end at
 * half the largest block -- of 3 pages, or the largest block where that
 * is less (MM_MAX_ORDER=1).
 */
#define ORDER2	min_t(unsigned int, 2, MM_MAX_ORDER)
#define ORDER5	min_t(unsigned int, 5, MM_MAX_ORDER)
#define LARGE	min_t(size_t, 3 * MM_PAGE_SIZE, MM_MAX_BLOCK)

static void test_free_pages_misuse(void **state)
{
	struct mm_arena *a = arena();
	unsigned long errs;
	struct baseline b;
	int local;
	char *p;

	take(&b);
	p = alloc_pages(a, ORDER2);
	assert_non_null(p);
	expect_bug(a, "free_pages", "not an allocated block", free_pages(a, p, ORDER2 - 1));
	expect_bug(a, "free_pages", "not an allocated block", free_pages(a, p + MM_PAGE_SIZE, 0));
	expect_bug(a, "free_pages", "not an allocated block", free_pages(a, p + 8, ORDER2));
	expect_bug(a, "free_pages", "not an allocated block", free_pages(a, &local, 0));
	free_pages(a, p, ORDER2);
	errs = a->diag.error_count;
	capture_start();
	misuse(free_pages(a, p, ORDER2));	/* double free */
	check_report(a, errs, "free_pages", "not an allocated block");
	/* SLUB's shape: a ruler of 77 '=', the BUG line, a ruler of 77 '-'. */
	{
		char want[200];

		memset(want, '=', 77);
		strcpy(want + 77, "\nBUG free_pages (mm): ");
		assert_report_says(want);
		memset(want, '-', 77);
		want[77] = '\n';
		want[78] = '\0';
		assert_report_says(want);
	}
	/* kfree() of a page block, free_pages() of a kmalloc block */
	p = alloc_pages(a, 0);
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(p));
	free_pages(a, p, 0);
	p = kmalloc(2 * MM_PAGE_SIZE);
	expect_bug(a, "free_pages", "not an allocated block", free_pages(a, p, 1));
	kfree(p);
	back_to(&b);
}

/* ---- slab caches ------------------------------------------------------- */

static unsigned long ctor_calls;

static void ctor(void *obj)
{
	memset(obj, 0xc5, 40);
	ctor_calls++;
}

static void test_cache_objects(void **state)
{
	static const size_t sizes[] = { 1, 8, 24, 40, 100, 256, 1000, 3000 };
	/*
	 * Not from the allocator under test: 3 pages of 1-byte objects are
	 * 12293 pointers, past a largest block of 64 KiB (MM_MAX_ORDER=4).
	 */
	static char *objs[3 * MM_PAGE_SIZE + 5];
	struct baseline b;

	take(&b);
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t size = sizes[k], n = 3 * MM_PAGE_SIZE / size + 5;
		struct kmem_cache *c = kmem_cache_create("t", size, 0, 0, NULL);
#if IS_ENABLED(CONFIG_MM_STATS)
		struct kmem_cache_info info;
#endif
		char **obj = objs;

		assert_non_null(c);
		assert_true(kmem_cache_size(c) >= size);
		/* zalloc clears what the last user left, all of kmem_cache_size() */
		obj[0] = kmem_cache_alloc(c);
		memset(obj[0], 0xa5, kmem_cache_size(c));
		kmem_cache_free(c, obj[0]);
		obj[0] = kmem_cache_zalloc(c);
		for (size_t i = 0; i < kmem_cache_size(c); i++)
			assert_int_equal(((unsigned char *)obj[0])[i], 0);
		kmem_cache_free(c, obj[0]);
		for (size_t i = 0; i < n; i++) {
			obj[i] = kmem_cache_alloc(c);
			assert_non_null(obj[i]);
			assert_int_equal((uintptr_t)obj[i] % sizeof(void *), 0);
			fill(obj[i], size, (unsigned int)i);
		}
		for (size_t i = 0; i < n; i++)
			assert_true(filled(obj[i], size, (unsigned int)i));
#if IS_ENABLED(CONFIG_MM_STATS)
		kmem_cache_info(c, &info);
		assert_int_equal(info.active_objs, n);
		assert_true(info.num_objs >= n);
		assert_true(info.size >= size);
#endif
		/* Free in a scattered order: the partial list takes them back. */
		for (size_t i = 0; i < n; i += 3)
			kmem_cache_free(c, obj[i]);
		for (size_t i = 0; i < n; i++)
			if (i % 3)
				kmem_cache_free(c, obj[i]);
#if IS_ENABLED(CONFIG_MM_STATS)
		kmem_cache_info(c, &info);
		assert_int_equal(info.active_objs, 0);
		assert_int_equal(info.empty_slabs, info.num_slabs);
		assert_int_equal(kmem_cache_shrink(c), info.num_slabs * info.pages_per_slab);
#else
		assert_true(kmem_cache_shrink(c) > 0);
#endif
		assert_int_equal(kmem_cache_destroy(c), 0);
	}
	back_to(&b);
}

static void test_cache_ctor_state_survives(void **state)
{
	struct kmem_cache *c;
	struct baseline b;
	unsigned char *p, *q;
	unsigned long calls;

	take(&b);
	ctor_calls = 0;
	c = kmem_cache_create("ctor", 40, 0, 0, ctor);
	assert_non_null(c);
	p = kmem_cache_alloc(c);
	assert_non_null(p);
	calls = ctor_calls;
	assert_true(calls >= 1);	/* the whole slab, once */
	for (int i = 0; i < 40; i++)
		assert_int_equal(p[i], 0xc5);
	kmem_cache_free(c, p);
	q = kmem_cache_alloc(c);
	assert_ptr_equal(q, p);		/* LIFO: the same object back */
	for (int i = 0; i < 40; i++)
		assert_int_equal(q[i], 0xc5);	/* the free pointer was elsewhere */
	assert_int_equal(ctor_calls, calls);
	kmem_cache_free(c, q);
	assert_int_equal(kmem_cache_destroy(c), 0);
	back_to(&b);
}

static void test_cache_alignment(void **state)
{
	struct kmem_cache *c64 = kmem_cache_create("a64", 20, 64, 0, NULL);
	struct kmem_cache *hw = kmem_cache_create("hw", 20, 0, SLAB_HWCACHE_ALIGN, NULL);
	void *p[50];

	assert_non_null(c64);
	assert_non_null(hw);
	for (int i = 0; i < 50; i++) {
		p[i] = kmem_cache_alloc(c64);
		assert_int_equal((uintptr_t)p[i] % 64, 0);
	}
	for (int i = 0; i < 50; i++)
		kmem_cache_free(c64, p[i]);
	for (int i = 0; i < 50; i++) {
		p[i] = kmem_cache_alloc(hw);
		assert_int_equal((uintptr_t)p[i] % CONFIG_ARCH_CACHE_LINE, 0);
	}
	for (int i = 0; i < 50; i++)
		kmem_cache_free(hw, p[i]);
	assert_int_equal(kmem_cache_destroy(c64), 0);
	assert_int_equal(kmem_cache_destroy(hw), 0);
}

static void test_cache_impossible(void **state)
{
	struct baseline b;

	take(&b);
	assert_null(kmem_cache_create("zero", 0, 0, 0, NULL));
	assert_null(kmem_cache_create("huge", MM_MAX_BLOCK, 0, 0, NULL));
	assert_null(kmem_cache_create("huge2", SIZE_MAX, 0, 0, NULL));
	assert_null(kmem_cache_create("align3", 16, 3, 0, NULL));
	assert_null(kmem_cache_create("align>page", 16, 2 * MM_PAGE_SIZE, 0, NULL));
	back_to(&b);
}

static void test_cache_misuse(void **state)
{
	struct mm_arena *a = arena();
	struct kmem_cache *c = kmem_cache_create("victim", 32, 0, 0, NULL);
	struct kmem_cache *other = kmem_cache_create("other", 32, 0, 0, NULL);
	char *p, *q, *r, *r2;
	int local;

	assert_non_null(c);
	assert_non_null(other);
	p = kmem_cache_alloc(c);
	q = kmem_cache_alloc(c);
	kmem_cache_free(c, p);
	r = kmem_cache_alloc(other);
	/* What is in no slab, every build turns away (without the checks, as kfree() does). */
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		expect_bug(a, "victim", "not an object of this cache", kmem_cache_free(c, &local));
	else
		expect_bug(a, "kfree", "not allocated by kmalloc", kmem_cache_free(c, &local));
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		expect_bug(a, "victim", "already free", kmem_cache_free(c, p));
		expect_bug(a, "victim", "middle of an object", kmem_cache_free(c, q + 4));
		expect_bug(a, "victim", "not an object of this cache", kmem_cache_free(c, r));
		expect_bug(a, "victim", "already free", kfree(p));
	}
	/* Nothing was corrupted: two allocations are two different objects. */
	p = kmem_cache_alloc(c);
	r2 = kmem_cache_alloc(c);
	assert_ptr_not_equal(p, q);
	assert_ptr_not_equal(r2, p);
	assert_ptr_not_equal(r2, q);
	kmem_cache_free(other, r);
	kmem_cache_free(c, q);
	kmem_cache_free(c, p);
	/* One object left: the cache stays, and so does the object. */
	expect_bug(a, "victim", "still has objects", assert_int_equal(kmem_cache_destroy(c), -1));
	memset(r2, 0x77, 32);
	kmem_cache_free(c, r2);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(kmem_cache_destroy(other), 0);
}

#if IS_ENABLED(CONFIG_MM_CHECKS)	/* what the tiny core tells only with the checks */
/*
 * kmalloc's classes are kmalloc's: destroying one (kmalloc_slab() hands
 * them out) is refused, with live objects or without, and the class stays
 * on the arena's list, so its empty slabs still go back on a reap.  (It
 * was taken off the list, reported only by the kfree() of a descriptor
 * that no kmalloc handed out, and said 0: the class's empty slabs were
 * never given back again.)
 */
static void test_cache_destroy_kmalloc_class(void **state)
{
	struct mm_arena *a = arena();
	struct kmem_cache *k = kmalloc_slab(64);
	struct baseline b;
	void *p;

	take(&b);
	expect_bug(a, "kmem_cache_destroy", "kmalloc's own",
		   assert_int_equal(kmem_cache_destroy(k), -1));
	p = kmalloc(64);
	assert_non_null(p);
	expect_bug(a, "kmem_cache_destroy", "kmalloc's own",
		   assert_int_equal(kmem_cache_destroy(k), -1));
	kfree(p);
	assert_ptr_equal(kmalloc_slab(64), k);
	back_to(&b);		/* the class's empty slab went back */
}

/*
 * A destroyed cache is a freed descriptor: destroying it again, or
 * allocating from it, is reported and fails (a second destroy walked off
 * the end of the arena's list of caches, an allocation made a slab for
 * the dead cache inside a free kmalloc object), as long as its memory has
 * not been handed out again.
 */
static void test_cache_use_after_destroy(void **state)
{
	struct mm_arena *a = arena();
	struct kmem_cache *c, *ctor_c;
	struct baseline b;
	void *p;

	take(&b);
	c = kmem_cache_create("doomed", 40, 0, 0, NULL);
	ctor_c = kmem_cache_create("doomed_ctor", 40, 0, 0, ctor);
	assert_non_null(c);
	assert_non_null(ctor_c);
	p = kmem_cache_alloc(c);
	kmem_cache_free(c, p);
	p = kmem_cache_alloc(ctor_c);
	kmem_cache_free(ctor_c, p);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(kmem_cache_destroy(ctor_c), 0);
	expect_bug(a, "kmem_cache_destroy", "no cache",
		   assert_int_equal(kmem_cache_destroy(c), -1));
	expect_bug(a, "kmem_cache_alloc", "no cache", assert_null(kmem_cache_alloc(c)));
	expect_bug(a, "kmem_cache_alloc", "no cache", assert_null(kmem_cache_alloc(ctor_c)));
	expect_bug(a, "kmem_cache_destroy", "no cache",
		   assert_int_equal(kmem_cache_destroy(ctor_c), -1));
	expect_bug(a, "kmem_cache_shrink", "no cache", assert_int_equal(kmem_cache_shrink(c), 0));
	/*
	 * NULL, as in the full core: each call reports it and does nothing
	 * (each dereferenced it).  A NULL object to kmem_cache_free() is
	 * nothing, as ever.
	 */
	expect_bug(a, "kmem_cache_alloc", "no cache", assert_null(kmem_cache_alloc(NULL)));
	expect_bug(a, "kmem_cache_shrink", "no cache", assert_int_equal(kmem_cache_shrink(NULL), 0));
	p = kmalloc(40);
	expect_bug(a, "(no cache)", "not an object of this cache", kmem_cache_free(NULL, p));
	kfree(p);
	kmem_cache_free(NULL, NULL);
	/* Nor is what never was a cache: a stack variable's zeroes. */
	{
		struct { void *w[16]; } fake = { { 0 } };

		expect_bug(a, "kmem_cache_destroy", "no cache",
			   assert_int_equal(kmem_cache_destroy((void *)&fake), -1));
		expect_bug(a, "kmem_cache_alloc", "no cache",
			   assert_null(kmem_cache_alloc((void *)&fake)));
	}
	back_to(&b);
}

/*
 * A live cache's descriptor is a kmalloc object, but the arena's list of
 * caches holds it: kfree() (free()) and kmem_cache_free() into its class
 * refuse it, ksize() says 0 and krealloc() reports it and fails.  (kfree() took it, and the next reap
 * walked freed memory as a cache: pages freed that were never allocated.)
 */
static void test_kfree_cache_descriptor(void **state)
{
	struct mm_arena *a = arena();
	struct kmem_cache *c;
	struct baseline b;
	void *p;

	take(&b);
	c = kmem_cache_create("handle", 40, 0, 0, NULL);
	assert_non_null(c);
	p = kmem_cache_alloc(c);
	expect_bug(a, "kmalloc", "is a kmem_cache", kfree(c));
	expect_bug(a, "kmalloc", "is a kmem_cache",
		   kmem_cache_free(kmalloc_slab(sizeof(struct kmem_cache)), c));
	assert_int_equal(ksize(c), 0);
	expect_bug(a, "kmalloc", "is a kmem_cache", assert_null(krealloc(c, 4000)));
	expect_bug(a, "kmalloc", "is a kmem_cache", assert_null(krealloc(c, 8)));
	/* The cache is whole: a reap walks it, and it allocates and is destroyed. */
	kmem_cache_reap(a);
	kmem_cache_free(c, p);
	p = kmem_cache_alloc(c);
	assert_non_null(p);
	kmem_cache_free(c, p);
	assert_int_equal(kmem_cache_destroy(c), 0);
	back_to(&b);
}
#endif

/* ---- kmalloc ----------------------------------------------------------- */

static void test_kmalloc_sizes(void **state)
{
	struct baseline b;

	take(&b);
	for (size_t size = 0; size <= min_t(size_t, 4 * KMALLOC_MAX_CACHE_SIZE, MM_MAX_BLOCK);
	     size += size < 300 ? 1 : 97) {
		char *p = kmalloc(size);
		size_t usable = ksize(p);

		assert_non_null(p);
		assert_true(usable >= size);
		assert_true(usable >= KMALLOC_MIN_SIZE);
		/* max_align_t for everything, and a power-of-two size to its own */
		assert_int_equal((uintptr_t)p % KMALLOC_MIN_SIZE, 0);
		if (usable <= KMALLOC_MAX_CACHE_SIZE)
			assert_int_equal((uintptr_t)p % usable, 0);
		fill(p, usable, (unsigned int)size);
		assert_true(filled(p, usable, (unsigned int)size));
		kfree(p);
	}
	/* Hidden from the compiler, which knows these are impossible. */
	volatile size_t max = SIZE_MAX;

	assert_null(kmalloc(MM_MAX_BLOCK + 1));
	assert_null(kmalloc(max));
	assert_null(kmalloc_array(max / 2, 3));
	assert_null(kcalloc(3, max / 2));
	kfree(NULL);
	assert_int_equal(ksize(NULL), 0);
	back_to(&b);
}

/*
 * Every size up to the largest block is served, whatever the class range
 * and the largest block: each power of two and one either side.  A cache
 * is made for any size a largest block holds beside its slab header.
 * (With MM_MAX_ORDER lowered until the largest block was no larger than
 * the largest class, that class was left unset up and its first kmalloc()
 * crashed; a cache whose one slab had to be the largest block, and
 * wasted more than an eighth of it, was refused when CONFIG_MM_SLAB_MAX_ORDER
 * lay beyond MM_MAX_ORDER.)
 */
static void test_sizes_up_to_the_largest_block(void **state)
{
	const size_t most = MM_MAX_BLOCK - sizeof(struct slab);
	const size_t sizes[] = { MM_MAX_BLOCK / 2 + 1, MM_MAX_BLOCK / 4 * 3, most };
	struct baseline b;

	take(&b);
	for (size_t size = KMALLOC_MIN_SIZE; size <= MM_MAX_BLOCK; size <<= 1) {
		for (size_t n = size - 1; n <= size + 1 && n <= MM_MAX_BLOCK; n++) {
			char *p = kmalloc(n);

			assert_non_null(p);
			assert_true(ksize(p) >= n);
			memset(p, 0x5a, n);
			kfree(p);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct kmem_cache *c = kmem_cache_create("big", sizes[i], 0, 0, NULL);
		char *p;

		assert_non_null(c);
		p = kmem_cache_alloc(c);
		assert_non_null(p);
		assert_true(kmem_cache_size(c) >= sizes[i]);
		memset(p, 0xa5, sizes[i]);
		kmem_cache_free(c, p);
		assert_int_equal(kmem_cache_destroy(c), 0);
	}
	assert_null(kmem_cache_create("too big", most + 1, 0, 0, NULL));
	back_to(&b);
}

static void test_kmalloc_zero_and_arrays(void **state)
{
	struct baseline b;
	unsigned char *z;
	void *p, *q;

	take(&b);
	p = kmalloc(0);
	q = kmalloc(0);
	assert_non_null(p);
	assert_ptr_not_equal(p, q);
	kfree(p);
	kfree(q);
	z = kmalloc(200);
	memset(z, 0xff, 200);
	kfree(z);
	z = kzalloc(200);		/* very likely the same, dirty object */
	for (int i = 0; i < 200; i++)
		assert_int_equal(z[i], 0);
	kfree(z);
	z = kcalloc(10, 30);
	for (int i = 0; i < 300; i++)
		assert_int_equal(z[i], 0);
	kfree(z);
	z = kmalloc_array(10, 30);
	assert_true(ksize(z) >= 300);
	kfree(z);
	back_to(&b);
}

static void test_kmalloc_aligned(void **state)
{
	struct baseline b;

	take(&b);
	for (size_t align = 1; align <= MM_MAX_BLOCK / 4; align <<= 1) {
		static const size_t sizes[] = { 1, 17, 100, 5000 };

		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			char *p = kmalloc_aligned(sizes[i], align);

			assert_non_null(p);
			assert_int_equal((uintptr_t)p % align, 0);
			assert_true(ksize(p) >= sizes[i]);
			memset(p, 0x5a, sizes[i]);
			kfree(p);
		}
	}
	assert_null(kmalloc_aligned(1, 2 * MM_MAX_BLOCK));
	back_to(&b);
}

static void test_krealloc_in_place_and_moves(void **state)
{
	struct baseline b;
	char *p, *q;

	take(&b);
	p = kmalloc(100);
	fill(p, 100, 7);
	assert_ptr_equal(krealloc(p, 120), p);	/* still fits its 128 bytes */
	assert_ptr_equal(krealloc(p, 10), p);	/* shrinking keeps it */
	q = krealloc(p, 1000);
	assert_non_null(q);
	assert_true(filled(q, 100, 7));
	p = krealloc(q, LARGE);			/* into a large block */
	assert_non_null(p);
	assert_true(filled(p, 100, 7));
	assert_ptr_equal(krealloc(p, ksize(p)), p);	/* its whole buddy block */
	/* Past it: a larger block, where the largest is larger. */
	if (ksize(p) < MM_MAX_BLOCK) {
		q = krealloc(p, ksize(p) + 1);
		assert_non_null(q);
		assert_ptr_not_equal(q, p);
	} else {
		q = p;
	}
	assert_true(filled(q, 100, 7));
	/* Failure leaves the block as it was. */
	assert_null(krealloc(q, MM_MAX_BLOCK + 1));
	assert_true(filled(q, 100, 7));
	kfree(q);
	p = krealloc(NULL, 50);
	assert_non_null(p);
	/* Size 0 frees, as in the full core (it kept the block). */
	assert_null(krealloc(p, 0));
	/* From NULL it is kmalloc(0), as in the full core (it was NULL). */
	p = krealloc(NULL, 0);
	assert_non_null(p);
	assert_true(ksize(p) >= 1);
	kfree(p);
	back_to(&b);
}

static void test_kfree_misuse(void **state)
{
	struct mm_arena *a = arena();
	struct baseline b;
	char *big, *small;
	int local;

	take(&b);
	big = kmalloc(LARGE);
	small = kmalloc(64);
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(&local));
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(big + MM_PAGE_SIZE));
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(big + 16));
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		expect_bug(a, "kmalloc", "middle of an object", kfree(small + 8));
	assert_int_equal(ksize(big + 16), 0);
	assert_int_equal(ksize(&local), 0);
	kfree(big);
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(big));	/* double free */
	kfree(small);
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		expect_bug(a, "kmalloc", "already free", kfree(small));
	back_to(&b);
}

/*
 * What kmem_cache_free() of what no slab holds reports: the cache's own
 * check with CONFIG_MM_CHECKS, kfree()'s without (it hands the pointer on).
 */
#define expect_cache_free_refused(a, c, what, p)					\
	do {									\
		if (IS_ENABLED(CONFIG_MM_CHECKS))				\
			expect_bug(a, what, "not an object of this cache",	\
				   kmem_cache_free(c, p));			\
		else								\
			expect_bug(a, "kfree", "not allocated by kmalloc",	\
				   kmem_cache_free(c, p));			\
	} while (0)

static int data_word = 1;

/*
 * What is no block the page metadata tells in every build, checks or not:
 * small integers, .data, the metadata bytes and kmalloc's class array in
 * the region's first pages, a slab object whose slab went back, a large
 * block freed by krealloc(p, 0) or by a krealloc() that moved it.  kfree()
 * and kmem_cache_free() report it, ksize() says 0, free_pages() reports
 * it, krealloc() reports it (with the checks it fails, without it hands
 * out a new block and copies nothing), and nothing is lost.  With the
 * checks also a slab's header, and a slab object freed the same ways.
 */
static void test_no_block_in_any_build(void **state)
{
	struct mm_arena *a = arena();
	struct kmem_cache *k = kmalloc_slab(1), *c;
	void *const bad[] = {
		(void *)1, (void *)8, (void *)MM_PAGE_SIZE, &data_word,
		a->meta, a->meta + a->nr_pages - 1, k, (char *)k + 1,
		(char *)pfn_to_addr(a->start_pfn) - 1,
	};
	struct baseline b;
	char *p, *q, *keep;

	take(&b);
	c = kmem_cache_create("nb", 40, 0, 0, NULL);
	assert_non_null(c);
	keep = kmalloc(10);	/* krealloc()'s new blocks come from its slab */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		void *page = (void *)((uintptr_t)bad[i] & MM_PAGE_MASK);

		expect_bug(a, "kfree", "not allocated by kmalloc", kfree(bad[i]));
		assert_int_equal(ksize(bad[i]), 0);
		expect_cache_free_refused(a, c, "nb", bad[i]);
		expect_bug(a, "free_pages", "not an allocated block", free_pages(a, bad[i], 0));
		if (page)
			expect_bug(a, "free_pages", "not an allocated block",
				   free_pages(a, page, 0));
		if (IS_ENABLED(CONFIG_MM_CHECKS)) {
			expect_bug(a, "kfree", "not allocated by kmalloc",
				   assert_null(krealloc(bad[i], 10)));
		} else {
			expect_bug(a, "kfree", "not allocated by kmalloc", q = krealloc(bad[i], 10));
			assert_non_null(q);
			kfree(q);
		}
	}
	/* A slab object whose slab went back to the buddy allocator. */
	p = kmem_cache_alloc(c);
	kmem_cache_free(c, p);
	assert_true(kmem_cache_shrink(c) > 0);
	expect_cache_free_refused(a, c, "nb", p);
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(p));
	assert_int_equal(ksize(p), 0);
	/*
	 * A large block freed by krealloc(), shrunk to 0 or moved -- where
	 * it can move: with MM_MAX_ORDER=1 every large block is a largest
	 * one (the classes end at half of it).
	 */
	p = kmalloc(LARGE);
	assert_null(krealloc(p, 0));
	expect_bug(a, "kfree", "not allocated by kmalloc", kfree(p));
	p = kmalloc(KMALLOC_MAX_CACHE_SIZE + 1);
	if (ksize(p) < MM_MAX_BLOCK) {
		q = krealloc(p, MM_MAX_BLOCK);
		assert_non_null(q);
		assert_ptr_not_equal(q, p);
		expect_bug(a, "kfree", "not allocated by kmalloc", kfree(p));
		assert_int_equal(ksize(p), 0);
		kfree(q);
	} else {
		assert_int_equal(ksize(p), MM_MAX_BLOCK);
		kfree(p);
	}
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		struct slab *s;

		/* A slab's header: in its slab, but no object's. */
		p = kmem_cache_alloc(c);
		s = slab_of(meta_pfn(a, __block_head(a, p)), meta_order(*__block_head(a, p)));
		for (char *h = (char *)s; h < (char *)(s + 1); h += sizeof(void *)) {
			expect_bug(a, "nb", "middle of an object", kfree(h));
			expect_bug(a, "nb", "middle of an object", kmem_cache_free(c, h));
			assert_int_equal(ksize(h), 0);
		}
		kmem_cache_free(c, p);
		/* A slab object freed by krealloc(), shrunk to 0 or moved. */
		p = kmalloc(64);
		assert_null(krealloc(p, 0));
		expect_bug(a, "kmalloc", "already free", kfree(p));
		p = kmalloc(64);
		q = krealloc(p, 1000);
		assert_ptr_not_equal(q, p);
		expect_bug(a, "kmalloc", "already free", kfree(p));
		expect_bug(a, "kmalloc", "already free", assert_null(krealloc(p, 10)));
		kfree(q);
		/*
		 * An object of a cache of its own, freed, or never handed out
		 * (a new slab hands out its objects in address order).
		 */
		{
			struct kmem_cache *f = kmem_cache_create("fresh", 40, 0, 0, NULL);

			assert_non_null(f);
			p = kmem_cache_alloc(f);
			q = kmem_cache_alloc(f);
			assert_ptr_equal(q, p + kmem_cache_size(f));
			kmem_cache_free(f, q);
			for (int k = 0; k < 2; k++) {
				char *r = k ? q : q + kmem_cache_size(f);

				assert_int_equal(ksize(r), 0);
				expect_bug(a, "fresh", "already free", assert_null(krealloc(r, 8)));
				expect_bug(a, "fresh", "already free",
					   assert_null(krealloc(r, 4000)));
				expect_bug(a, "fresh", "already free", kfree(r));
			}
			kmem_cache_free(f, p);
			assert_int_equal(kmem_cache_destroy(f), 0);
		}
	}
	kfree(keep);
	assert_int_equal(kmem_cache_destroy(c), 0);
	back_to(&b);
}

/*
 * krealloc() of what is no block fails and is reported: nothing is handed
 * out, copied or freed.  A freed object is no block when the checks can
 * tell (ksize() 0), the first object of its slab's free list or any other.
 */
static void test_krealloc_misuse(void **state)
{
	struct mm_arena *a = arena();
	struct baseline b;
	char *x, *y, *big;
	int local;

	take(&b);
	x = kmalloc(64);
	y = kmalloc(64);
	big = kmalloc(LARGE);
	assert_non_null(x);
	assert_non_null(y);
	assert_non_null(big);
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		expect_bug(a, "kfree", "not allocated by kmalloc",
			   assert_null(krealloc(&local, 10)));
		expect_bug(a, "kfree", "not allocated by kmalloc",
			   assert_null(krealloc(big + 16, 10)));
		expect_bug(a, "kmalloc", "middle of an object", assert_null(krealloc(y + 8, 10)));
		kfree(x);
		kfree(y);	/* y heads the free list, x is next */
		for (int k = 0; k < 2; k++) {
			char *p = k ? x : y;

			assert_int_equal(ksize(p), 0);
			expect_bug(a, "kmalloc", "already free", assert_null(krealloc(p, 10)));
			expect_bug(a, "kmalloc", "already free", assert_null(krealloc(p, 1000)));
		}
		/* Both still free, once each: the next two are they, a third is not. */
		{
			char *p = kmalloc(64), *q = kmalloc(64), *r = kmalloc(64);

			assert_true((p == y && q == x) || (p == x && q == y));
			assert_true(r != x && r != y);
			kfree(r);
		}
	}
	kfree(x);
	kfree(y);
	kfree(big);
	back_to(&b);
}

/* Empty slabs go back by themselves when the buddy allocator runs dry. */
static void test_reclaim_on_oom(void **state)
{
	struct mm_arena *a = arena();
	void **head = NULL, **obj;
	struct baseline b;
	size_t n = 0;
	void *block;

	take(&b);
	/* Fill the heap with 64-byte objects, chained through themselves. */
	while ((obj = kmalloc(64)) != NULL) {
		*obj = head;
		head = obj;
		n++;
	}
	assert_true(n > b.free);
	assert_int_equal(mm_arena_free_pages(a), 0);
	while (head) {
		obj = *head;
		kfree(head);
		head = obj;
	}
	/* Every slab is empty but kept: no free pages... */
	assert_int_equal(mm_arena_free_pages(a), 0);
	/* ...until a request needs them. */
	block = alloc_pages(a, MM_MAX_ORDER);
	assert_non_null(block);
	free_pages(a, block, MM_MAX_ORDER);
	back_to(&b);
}

static void test_random_mix_nothing_lost(void **state)
{
	enum { N = 3000 };
	static void *live[N];
	static size_t len[N];		/* 0: an object of the cache */
	/*
	 * Fewer slots where pages are larger than 4 KiB: a large block is a
	 * page at least, and a twelfth of 3000 slots live in pages of 64
	 * KiB are the whole 16 MiB array.
	 */
	const size_t n = N * 4096 / max_t(size_t, MM_PAGE_SIZE, 4096);
	uint64_t rng = 88172645463325252ULL;
	unsigned long errs = arena()->diag.error_count;
	struct kmem_cache *c;
	struct baseline b;

	take(&b);
	c = kmem_cache_create("mix", 72, 0, 0, NULL);
	assert_non_null(c);
	for (int round = 0; round < 40000; round++) {
		size_t i = xorshift64s(&rng) % n;

		if (live[i]) {
			assert_true(filled(live[i], len[i] ? len[i] : 72, (unsigned int)i));
			if (!len[i])
				kmem_cache_free(c, live[i]);
			else
				kfree(live[i]);
			live[i] = NULL;
			continue;
		}
		switch (xorshift64s(&rng) % 4) {
		case 0:
			len[i] = 0;
			live[i] = kmem_cache_alloc(c);
			break;
		case 1:
			len[i] = served_size(1 + xorshift64s(&rng) % (3 * KMALLOC_MAX_CACHE_SIZE));
			live[i] = kmalloc(len[i]);
			break;
		default:
			len[i] = 1 + xorshift64s(&rng) % 200;
			live[i] = kmalloc(len[i]);
			break;
		}
		assert_non_null(live[i]);
		fill(live[i], len[i] ? len[i] : 72, (unsigned int)i);
	}
	for (size_t i = 0; i < N; i++) {
		if (!live[i])
			continue;
		if (!len[i])
			kmem_cache_free(c, live[i]);
		else
			kfree(live[i]);
		live[i] = NULL;
	}
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(arena()->diag.error_count, errs);
	back_to(&b);
}

#if IS_ENABLED(CONFIG_MM_REPORTS)	/* the text they print */
static void test_reports(void **state)
{
	struct mm_arena *a = arena();
	struct kmem_cache *c = kmem_cache_create("sensor_pkt", 48, 0, 0, NULL);
	void *p = kmem_cache_alloc(c), *q = kmalloc(64);

	capture_start();
	mm_buddyinfo(a);
	mm_slabinfo(a);
	capture_stop();
	assert_true(captured("Node 0, zone  default"));
	assert_true(captured("slabinfo - version: 2.1"));
	assert_true(captured("\nsensor_pkt "));
	assert_true(captured("\nkmalloc-64 "));
	kmem_cache_free(c, p);
	kfree(q);
	assert_int_equal(kmem_cache_destroy(c), 0);
}
#endif

static void test_diag_peak(void **state)
{
	struct mm_arena *a = arena();
	struct mm_diag d0, d1, d2;
	void *p;

	mm_arena_diag(a, &d0);
	p = alloc_pages(a, ORDER5);
	mm_arena_diag(a, &d1);
	free_pages(a, p, ORDER5);
	mm_arena_diag(a, &d2);
	assert_int_equal(d1.allocated, d0.allocated + (MM_PAGE_SIZE << ORDER5));
	assert_int_equal(d2.allocated, d0.allocated);
	if (IS_ENABLED(CONFIG_MM_STATS))	/* the peak is kept with statistics only */
		assert_true(d2.peak_allocated >= d1.allocated);
	assert_int_equal(d2.capacity, d0.capacity);
}

/*
 * NULL is no error for free_pages(), as in the full core (test_buddy) and
 * Linux; and the per-order count of an order past MM_MAX_ORDER is 0, not a
 * walk of whatever follows free_area[] in the arena (it crashed).
 */
static void test_free_pages_null_and_orders_past_max(void **state)
{
	struct mm_arena *a = arena();
	unsigned long errs = a->diag.error_count;
	size_t free = mm_arena_free_pages(a);

	free_pages(a, NULL, 0);
	free_pages(a, NULL, 3);
	free_page(NULL);
	assert_int_equal(a->diag.error_count, errs);
	assert_int_equal(mm_arena_free_pages(a), free);
#if ORDER_COUNTS
	assert_int_equal(mm_arena_nr_free_order(a, MM_MAX_ORDER + 1), 0);
	assert_int_equal(mm_arena_nr_free_order(a, MM_MAX_ORDER + 2), 0);
	assert_int_equal(mm_arena_nr_free_order(a, 31), 0);
	assert_int_equal(mm_arena_nr_free_order(a, ~0u), 0);
#endif
}

#if IS_ENABLED(CONFIG_MM_STATS)
/* kmem_cache_info(): object_size is what the user asked for (slab.h), align the objects'. */
static void test_cache_info_sizes(void **state)
{
	struct kmem_cache *c = kmem_cache_create("info", 33, 64, 0, NULL);
	struct kmem_cache *k = kmem_cache_create("info_ctor", 20, 0, 0, ctor);
	struct kmem_cache_info i;

	assert_non_null(c);
	assert_non_null(k);
	kmem_cache_info(c, &i);
	assert_int_equal(i.object_size, 33);
	assert_int_equal(i.size, 64);
	assert_int_equal(i.align, 64);
	kmem_cache_info(k, &i);
	assert_int_equal(i.object_size, 20);
	assert_true(i.size >= 20 + sizeof(void *));
	assert_int_equal(i.align, sizeof(void *));
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(kmem_cache_destroy(k), 0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_pages_null_and_orders_past_max),
#if IS_ENABLED(CONFIG_MM_STATS)
		cmocka_unit_test(test_cache_info_sizes),
#endif
		cmocka_unit_test(test_setup_geometry),
		cmocka_unit_test(test_buddy_orders_aligned_and_merged),
		cmocka_unit_test(test_buddy_exhaust_and_recover),
		cmocka_unit_test(test_free_pages_misuse),
		cmocka_unit_test(test_cache_objects),
		cmocka_unit_test(test_cache_ctor_state_survives),
		cmocka_unit_test(test_cache_alignment),
		cmocka_unit_test(test_cache_impossible),
		cmocka_unit_test(test_cache_misuse),
#if IS_ENABLED(CONFIG_MM_CHECKS)
		cmocka_unit_test(test_cache_destroy_kmalloc_class),
		cmocka_unit_test(test_cache_use_after_destroy),
		cmocka_unit_test(test_kfree_cache_descriptor),
#endif
		cmocka_unit_test(test_kmalloc_sizes),
		cmocka_unit_test(test_sizes_up_to_the_largest_block),
		cmocka_unit_test(test_kmalloc_zero_and_arrays),
		cmocka_unit_test(test_kmalloc_aligned),
		cmocka_unit_test(test_krealloc_in_place_and_moves),
		cmocka_unit_test(test_krealloc_misuse),
		cmocka_unit_test(test_kfree_misuse),
		cmocka_unit_test(test_no_block_in_any_build),
		cmocka_unit_test(test_reclaim_on_oom),
		cmocka_unit_test(test_random_mix_nothing_lost),
#if IS_ENABLED(CONFIG_MM_REPORTS)
		cmocka_unit_test(test_reports),
#endif
		cmocka_unit_test(test_diag_peak),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
