// SPDX-License-Identifier: MIT
/*
 * mm/slab.c: slab caches -- create/alloc/free/destroy, constructors,
 * alignment, the partial/empty bookkeeping, shrink and reclaim under
 * memory pressure, the OOM hook, bad frees, /proc/slabinfo, "nothing lost"
 * and the memory overhead of small objects.
 *
 * Almost every test runs on a private arena over a static backend (memory
 * the test mapped), with automatic trimming off, so the arena's free-page
 * count is exact and nothing else in the program (CMocka, stdio, which use
 * mm's default arena when mm replaces malloc) can disturb it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "helpers.h"
#include "../mm/slab.h"	/* __slab_alloc_bulk(): white-box, as percpu.c uses it */

#define PS MM_PAGE_SIZE
/*
 * An object size given for 4 KiB pages, scaled with the page: slabs of
 * the same pages and objects at every page size (slab.c's rule weighs
 * waste against the slab), where a fixed size would put hundreds of
 * objects in a 64 KiB page, or fewer pages in the slab of a big object.
 */
#define AT4K(n)	((size_t)(n) * PS / 4096)

#define MAX_EMPTY CONFIG_MM_SLAB_MAX_EMPTY
/* Of n slabs emptied, a cache keeps the active one and MAX_EMPTY more. */
#define KEPT_EMPTY(n)	((n) < 1 + MAX_EMPTY ? (n) : 1 + MAX_EMPTY)

/*
 * Objects of a slab of several pages holding three or more: 3000 bytes
 * (five to four pages of 4 KiB), or where slabs are two pages at most
 * (MM_MAX_ORDER=1) 2600 bytes a 4 KiB of page: one to a page would waste
 * more than slab.c allows, three fill two.  MULTI_PAGE_4K is the same
 * for 4 KiB pages, for AT4K().
 */
#define MULTI_PAGE_4K	(MM_MAX_ORDER >= 2 ? 3000 : 2600)
#define MULTI_PAGE_OBJ	(MM_MAX_ORDER >= 2 ? 3000 : AT4K(2600))

/* ---- Fixtures ----------------------------------------------------------- */

struct parena {
	struct test_static ts;
	struct mm_arena a;
	size_t start_free;
	size_t start_order[MM_NR_ORDERS];
};

/* A private arena over 'pages' pages; initial: bytes taken up front. */
static struct mm_arena *parena_init(struct parena *p, size_t pages, size_t initial)
{
	test_static_init(&p->ts, pages);
	assert_int_equal(mm_arena_init(&p->a, "slabtest", &p->ts.be.be, initial), 0);
	mm_arena_set_trim(&p->a, 0, 0);
	p->start_free = mm_arena_free_pages(&p->a);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		p->start_order[o] = mm_arena_nr_free_order(&p->a, o);
	assert_arena_valid(&p->a);
	return &p->a;
}

/* Nothing lost: the same free pages, merged into the same blocks. */
static void assert_nothing_lost(struct parena *p)
{
	assert_arena_valid(&p->a);
	assert_int_equal(mm_arena_free_pages(&p->a), p->start_free);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		assert_int_equal(mm_arena_nr_free_order(&p->a, o), p->start_order[o]);
}

static void parena_fini(struct parena *p)
{
	assert_int_equal(mm_arena_destroy(&p->a), 0);
	test_static_fini(&p->ts);
}

static unsigned long errors(struct mm_arena *a)
{
	struct mm_diag d;

	mm_arena_diag(a, &d);
	return d.error_count;
}

static unsigned long ooms(struct mm_arena *a)
{
	struct mm_diag d;

	mm_arena_diag(a, &d);
	return d.oom_count;
}

static struct kmem_cache_info info_of(struct kmem_cache *c)
{
	struct kmem_cache_info i;

	kmem_cache_info(c, &i);
	return i;
}

static uintptr_t slab_base(struct kmem_cache *c, const void *obj)
{
	struct kmem_cache_info i = info_of(c);

	return (uintptr_t)obj & ~((uintptr_t)i.pages_per_slab * PS - 1);
}

static int in_arena(struct mm_arena *a, const void *p)
{
	for (struct mm_region *r = a->regions; r; r = r->next) {
		if (addr_to_pfn(p) >= r->start_pfn && addr_to_pfn(p) < mm_region_end(r))
			return 1;
	}
	return 0;
}

/* A pointer as the reports print it (the C library's %p where there are none). */
static char *fmt_ptr(char *buf, size_t len, const void *p)
{
#if IS_ENABLED(CONFIG_MM_REPORTS)
	mm_snprintf(buf, len, "%p", p);
#else
	snprintf(buf, len, "%p", p);
#endif
	return buf;
}

static int cmp_ptr(const void *x, const void *y)
{
	uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;

	return a < b ? -1 : a > b;
}

/* This file's own deterministic sequence (xorshift64s, helpers.h). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	return xorshift64s(&rng_state);
}

/* ---- Basics ------------------------------------------------------------- */

static void test_create_alloc_free_destroy(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "basic", 100, 0, 0, NULL);
	struct kmem_cache_info i;
	void *objs[200];

	assert_non_null(c);
	i = info_of(c);
	assert_string_equal(i.name, "basic");
	assert_int_equal(i.object_size, 100);
	assert_true(i.size >= 100 && i.size % sizeof(void *) == 0);
	assert_true(i.objs_per_slab >= 1);
	assert_true((size_t)i.objs_per_slab * i.size <= (size_t)i.pages_per_slab * PS);
	assert_int_equal(i.num_slabs, 0);
	assert_int_equal(mm_arena_free_pages(a), p.start_free);	/* lazily */

	for (int n = 0; n < 200; n++) {
		objs[n] = kmem_cache_alloc(c);
		assert_non_null(objs[n]);
		assert_true(in_arena(a, objs[n]));
		assert_int_equal((uintptr_t)objs[n] % sizeof(void *), 0);
		memset(objs[n], n, 100);
	}
	i = info_of(c);
	assert_int_equal(i.active_objs, 200);
	assert_int_equal(i.num_slabs, DIV_ROUND_UP(200, i.objs_per_slab));
	assert_int_equal(i.num_objs, i.num_slabs * i.objs_per_slab);
	qsort(objs, 200, sizeof(objs[0]), cmp_ptr);
	for (int n = 0; n + 1 < 200; n++)
		assert_true((char *)objs[n] + 100 <= (char *)objs[n + 1]);
	for (int n = 0; n < 200; n++)
		kmem_cache_free(c, objs[n]);
	kmem_cache_free(c, NULL);		/* a no-op */
	assert_int_equal(info_of(c).active_objs, 0);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(kmem_cache_destroy(NULL), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

static void test_create_rejects_impossible(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 16, SIZE_MAX);

	assert_null(kmem_cache_create_arena(a, "zero", 0, 0, 0, NULL));
	assert_null(kmem_cache_create_arena(a, "align3", 64, 3, 0, NULL));
	assert_null(kmem_cache_create_arena(a, "align24", 64, 24, 0, NULL));
	assert_null(kmem_cache_create_arena(a, "huge", MM_MAX_BLOCK + 1, 0, 0, NULL));
	assert_null(kmem_cache_create_arena(a, "huge", SIZE_MAX, 0, 0, NULL));
	assert_null(kmem_cache_create_arena(NULL, "noarena", 64, 0, 0, NULL));
	assert_int_equal(mm_arena_free_pages(a), p.start_free);
	parena_fini(&p);
}

static void test_default_arena_cache(void **state)
{
	struct kmem_cache *c = kmem_cache_create("on-default", 48, 0, 0, NULL);
	unsigned long e0 = errors(mm_default_arena());
	void *x, *y;

	assert_non_null(c);
	x = kmem_cache_alloc(c);
	y = kmem_cache_alloc(c);
	assert_non_null(x);
	assert_non_null(y);
	assert_ptr_not_equal(x, y);
	assert_true(in_arena(mm_default_arena(), x));
	kmem_cache_free(c, x);
	/* kfree() and ksize() know an object of any cache of the default arena. */
	assert_int_equal(ksize(y), 48);
	kfree(y);
	assert_int_equal(info_of(c).active_objs, 0);
	assert_int_equal(errors(mm_default_arena()), e0);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_arena_valid(mm_default_arena());
}

/*
 * A cache's handle given to free() (for kmem_cache_destroy()): it is a
 * slab object of the default arena, of the descriptors' own cache, and
 * kfree() took it as it takes any cache's objects -- the descriptor was
 * freed while the arena's list of caches still held it, and the next walk
 * of that list (a reclaim) went astray.  Reported and refused now, and
 * realloc() of it too; the cache goes on working.
 */
static void test_kfree_of_cache_handle(void **state)
{
	struct kmem_cache *c = kmem_cache_create("handle", 48, 0, 0, NULL);
	unsigned long e0;
	void *o;

	assert_non_null(c);
	e0 = errors(mm_default_arena());
	capture_start();
	misuse(kfree(c));
	check_report(mm_default_arena(), e0, "kmem_cache_destroy", NULL);
	assert_int_equal(ksize(c), 0);
	e0 = errors(mm_default_arena());
	capture_start();
	misuse(assert_null(krealloc(c, 4 * sizeof(void *))));
	check_report(mm_default_arena(), e0, "BUG kfree", NULL);
	kmem_cache_reap(mm_default_arena());
	o = kmem_cache_alloc(c);
	assert_non_null(o);
	kmem_cache_free(c, o);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_arena_valid(mm_default_arena());
}

#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)
/*
 * krealloc() of a freed object of a cache of the default arena, which
 * kfree() and ksize() take as they take kmalloc's: only kmalloc's objects
 * (of up to the largest class) were asked whether they were free, so one
 * of these that still fit stayed where it was -- on its slab's free list,
 * handed out again later -- and a larger size freed it twice.  Reported
 * and refused now, as for kmalloc's; the object comes back once.
 */
static void fill100_ctor(void *p)
{
	memset(p, 0x3c, 100);
}

static void test_krealloc_of_freed_cache_object(void **state)
{
	/* The last beyond the largest class, where buddy blocks allow. */
	const size_t sizes[] = { 48, 100, min_t(size_t, 3 * KMALLOC_MAX_CACHE_SIZE / 2,
						MM_MAX_BLOCK / 2) };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		struct kmem_cache *c = kmem_cache_create("realloc-freed", sizes[k], 0, 0,
							 k == 1 ? fill100_ctor : NULL);
		void *keep, *o, *x, *y;
		unsigned long e0;

		assert_non_null(c);
		keep = kmem_cache_alloc(c);
		o = kmem_cache_alloc(c);
		assert_non_null(o);
		kmem_cache_free(c, o);
		e0 = errors(mm_default_arena());
		capture_start();
		misuse(assert_null(krealloc(o, sizes[k] / 2)));
		check_report(mm_default_arena(), e0, "Object already free", NULL);
		e0 = errors(mm_default_arena());
		capture_start();
		misuse(assert_null(krealloc(o, 2 * sizes[k])));
		check_report(mm_default_arena(), e0, "Object already free", NULL);
		x = kmem_cache_alloc(c);
		y = kmem_cache_alloc(c);
		assert_ptr_not_equal(x, y);
		assert_ptr_not_equal(x, keep);
		assert_ptr_not_equal(y, keep);
		kmem_cache_free(c, x);
		kmem_cache_free(c, y);
		kmem_cache_free(c, keep);
		assert_int_equal(kmem_cache_destroy(c), 0);
	}
	assert_arena_valid(mm_default_arena());
}
#endif

/* SLAB_PANIC: mm_panic() -- abort() here -- instead of NULL. */
static void test_slab_panic(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 16, SIZE_MAX);
	struct kmem_cache *c;

	capture_start();
	expect_stop(kmem_cache_create_arena(a, "panicky", 0, 0, SLAB_PANIC, NULL));
	capture_stop();
	assert_report_says("mm: panic: kmem_cache_create failed");
	/* Without the flag: NULL, no panic. */
	assert_null(kmem_cache_create_arena(a, "quiet", 0, 0, 0, NULL));
	/* A good cache with the flag is just a cache. */
	c = kmem_cache_create_arena(a, "fine", 32, 0, SLAB_PANIC, NULL);
	assert_non_null(c);
	assert_int_equal(kmem_cache_destroy(c), 0);
	parena_fini(&p);
}

static void test_zalloc_zeroes(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 64, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "z", 200, 0, 0, NULL);
	unsigned char *o;

	assert_int_equal(kmem_cache_size(c), 200);
	for (int round = 0; round < 3; round++) {
		o = kmem_cache_alloc(c);
		memset(o, 0xa5, 200);
		kmem_cache_free(c, o);
		o = kmem_cache_zalloc(c);
		assert_non_null(o);
		for (int n = 0; n < 200; n++)
			assert_int_equal(o[n], 0);
		memset(o, 0xa5, 200);
		kmem_cache_free(c, o);
	}
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/* ---- Constructors ------------------------------------------------------- */

#define CTOR_MAGIC 0xc0de1234u

struct cobj {
	uint32_t magic;
	uint32_t refs;
	unsigned char body[56];
};

static unsigned long ctor_calls;

static void cobj_ctor(void *p)
{
	struct cobj *o = p;

	ctor_calls++;
	o->magic = CTOR_MAGIC;
	o->refs = 0;
	memset(o->body, 0x5a, sizeof(o->body));
}

static void assert_constructed(const struct cobj *o)
{
	assert_int_equal(o->magic, CTOR_MAGIC);
	assert_int_equal(o->refs, 0);
	for (size_t n = 0; n < sizeof(o->body); n++)
		assert_int_equal(o->body[n], 0x5a);
}

static void test_ctor_once_per_object_per_slab(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 64, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "cobj", sizeof(struct cobj), 0, 0,
						       cobj_ctor);
	static struct cobj *objs[PS / 16];	/* room for a slab's objects and one */
	unsigned long made;
	unsigned int per;

	assert_non_null(c);
	ctor_calls = 0;
	per = info_of(c).objs_per_slab;
	assert_true(per >= 2 && per < ARRAY_SIZE(objs) / 2);

	/* The first allocation makes a slab: every object constructed once. */
	objs[0] = kmem_cache_alloc(c);
	assert_int_equal(ctor_calls, per);
	assert_constructed(objs[0]);
	/* The rest of the slab: no more constructor calls. */
	for (unsigned int n = 1; n < per; n++) {
		objs[n] = kmem_cache_alloc(c);
		assert_constructed(objs[n]);
	}
	assert_int_equal(ctor_calls, per);
	/* The next slab. */
	objs[per] = kmem_cache_alloc(c);
	assert_int_equal(ctor_calls, 2 * per);
	assert_constructed(objs[per]);

	/* Use and restore (Bonwick's contract), free, allocate again. */
	for (unsigned int n = 0; n <= per; n++) {
		objs[n]->refs = 7;
		objs[n]->refs = 0;
		kmem_cache_free(c, objs[n]);
	}
	for (unsigned int n = 0; n <= per; n++) {
		objs[n] = kmem_cache_alloc(c);
		assert_constructed(objs[n]);
	}
	/* Not on every allocation: only for a slab given back and made again. */
	assert_int_equal(ctor_calls, 2 * per + (2 - KEPT_EMPTY(2)) * per);
	for (unsigned int n = 0; n <= per; n++)
		kmem_cache_free(c, objs[n]);

	/* A slab given back and made again is constructed again. */
	assert_true(kmem_cache_shrink(c) > 0);
	assert_int_equal(info_of(c).num_slabs, 0);
	made = ctor_calls;
	objs[0] = kmem_cache_alloc(c);
	assert_int_equal(ctor_calls, made + per);
	kmem_cache_free(c, objs[0]);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

static unsigned long small_ctor_calls;

static void small_ctor(void *p)
{
	small_ctor_calls++;
	memset(p, 0x77, 8);
}

/*
 * The free pointer lives outside the object when there is a constructor:
 * whatever the object held when freed is there when it comes back.
 */
static void test_ctor_state_kept_across_free(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 64, SIZE_MAX);
	static const size_t sizes[] = { 8, 20, sizeof(struct cobj), 1000 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t sz = sizes[k];
		struct kmem_cache *c = kmem_cache_create_arena(a, "kept", sz, 0, 0, small_ctor);
		unsigned char *o, *o2, *other;

		assert_non_null(c);
		assert_true(info_of(c).size >= sz + sizeof(void *));
		o = kmem_cache_alloc(c);
		other = kmem_cache_alloc(c);
		assert_non_null(o);
		for (size_t n = 0; n < 8; n++)
			assert_int_equal(o[n], 0x77);
		memset(o, 0xab, sz);
		memset(other, 0xcd, sz);
		kmem_cache_free(c, o);
		kmem_cache_free(c, other);	/* o is now inside the free list */
		o2 = kmem_cache_alloc(c);
		assert_ptr_equal(o2, other);
		o2 = kmem_cache_alloc(c);
		assert_ptr_equal(o2, o);
		for (size_t n = 0; n < sz; n++)
			assert_int_equal(o[n], 0xab);
		for (size_t n = 0; n < sz; n++)
			assert_int_equal(other[n], 0xcd);
		kmem_cache_free(c, o);
		kmem_cache_free(c, other);
		assert_int_equal(kmem_cache_destroy(c), 0);
	}
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/* Without a constructor the free pointer may sit in the object: no promise,
 * but the object must be as big as asked and aligned.  The free mark takes
 * a second word (CONFIG_MM_FREE_MARK). */
static void test_no_ctor_layout(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 64, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "tiny", 1, 0, 0, NULL);
	struct kmem_cache_info i = info_of(c);
	size_t stride = (IS_ENABLED(CONFIG_MM_FREE_MARK) ? 2 : 1) * sizeof(void *);

	assert_int_equal(i.object_size, 1);
	assert_int_equal(i.size, stride);
	assert_true(i.objs_per_slab >= (PS - 64) / stride);
	assert_int_equal(kmem_cache_destroy(c), 0);
	parena_fini(&p);
}

/* ---- Alignment ---------------------------------------------------------- */

static void check_aligned_cache(struct mm_arena *a, size_t size, size_t align,
				unsigned int flags, size_t want_align)
{
	struct kmem_cache *c = kmem_cache_create_arena(a, "aligned", size, align, flags, NULL);
	struct kmem_cache_info i;
	size_t n;
	void **objs;

	/* The header, then one object, both aligned, past the largest block: no cache. */
	if (ALIGN(sizeof(struct slab), want_align) + ALIGN(size, want_align) > MM_MAX_BLOCK) {
		assert_null(c);
		return;
	}
	assert_non_null(c);
	i = info_of(c);
	assert_int_equal(i.align, want_align);
	assert_int_equal(i.size % want_align, 0);
	n = 2 * i.objs_per_slab + 3;
	objs = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(objs != MAP_FAILED);
	for (size_t k = 0; k < n; k++) {
		objs[k] = kmem_cache_alloc(c);
		assert_non_null(objs[k]);
		if ((uintptr_t)objs[k] % want_align)
			print_message("size %zu align %zu: %p\n", size, align, objs[k]);
		assert_int_equal((uintptr_t)objs[k] % want_align, 0);
		assert_true(in_arena(a, objs[k]));
		memset(objs[k], (int)(k & 0xff), size);
	}
	for (size_t k = 0; k < n; k++) {
		unsigned char *b = objs[k];

		assert_int_equal(b[0], k & 0xff);
		assert_int_equal(b[size - 1], k & 0xff);
	}
	qsort(objs, n, sizeof(void *), cmp_ptr);
	for (size_t k = 0; k + 1 < n; k++)
		assert_true((char *)objs[k] + size <= (char *)objs[k + 1]);
	for (size_t k = 0; k < n; k++)
		kmem_cache_free(c, objs[k]);
	assert_int_equal(kmem_cache_destroy(c), 0);
	munmap(objs, n * sizeof(void *));
}

static void test_explicit_alignments(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 1024, SIZE_MAX);

	for (size_t align = 8; align <= 4096; align <<= 1) {
		static const size_t sizes[] = { 1, 24, 100 };

		for (size_t k = 0; k < ARRAY_SIZE(sizes); k++)
			check_aligned_cache(a, sizes[k], align, 0, align);
		check_aligned_cache(a, align, align, 0, align);
		check_aligned_cache(a, align + 8, align, 0, align);
	}
	/* 0: the natural alignment, at least a pointer. */
	check_aligned_cache(a, 3, 0, 0, sizeof(void *));
	assert_nothing_lost(&p);
	parena_fini(&p);
}

static void test_hwcache_align(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);

	check_aligned_cache(a, 40, 0, SLAB_HWCACHE_ALIGN, CONFIG_ARCH_CACHE_LINE);
	check_aligned_cache(a, 8, 16, SLAB_HWCACHE_ALIGN, CONFIG_ARCH_CACHE_LINE);
	check_aligned_cache(a, 200, 0, SLAB_HWCACHE_ALIGN, CONFIG_ARCH_CACHE_LINE);
	/* A larger explicit alignment wins. */
	check_aligned_cache(a, 40, 4 * CONFIG_ARCH_CACHE_LINE, SLAB_HWCACHE_ALIGN,
			    4 * CONFIG_ARCH_CACHE_LINE);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/*
 * slab_is_obj_start(), the object-start test of every free without the
 * checks, against the arithmetic it replaces, at every byte of a slab (and
 * a few past either end), for sizes and alignments that give every slab
 * order, odd and even strides and headers of every length.
 */
static void check_obj_start_test(struct mm_arena *a, size_t size, size_t align)
{
	struct kmem_cache *c = kmem_cache_create_arena(a, "starts", size, align, 0, NULL);
	void *x;
	uintptr_t base, bytes;

	/* No slab holds an object and its header past the largest block. */
	if (size + sizeof(struct slab) > MM_MAX_BLOCK) {
		assert_null(c);
		return;
	}
	assert_non_null(c);
	x = kmem_cache_alloc(c);
	assert_non_null(x);
	bytes = (uintptr_t)PS << c->order;
	base = (uintptr_t)x & ~(bytes - 1);
	assert_true(slab_is_obj_start(c, x));
	for (uintptr_t off = 0; off < bytes; off++) {
		int want = off >= c->first && (off - c->first) % c->size == 0 &&
			   (off - c->first) / c->size < c->objs;

		if (slab_is_obj_start(c, (void *)(base + off)) != want)
			fail_msg("size %zu align %zu (stride %u, first %u, %u objects, order %u): "
				 "offset %zu says %d", size, align, c->size, c->first, c->objs,
				 c->order, (size_t)off, !want);
	}
	/* The same offsets in the next slab of the same size and alignment. */
	assert_true(slab_is_obj_start(c, (void *)(base + bytes + c->first)));
	assert_false(slab_is_obj_start(c, (void *)(base + bytes + c->first - sizeof(void *))));
	assert_true(slab_is_obj_start(c, (void *)(base - bytes + c->first +
						 (c->objs - 1) * c->size)));
	kmem_cache_free(c, x);
	assert_int_equal(kmem_cache_destroy(c), 0);
}

static void test_obj_start_test(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 1024, SIZE_MAX);
	static const size_t sizes[] = { 1, 8, 16, 24, 40, 48, 96, 100, 104, 192, 200, 448,
					 1000, 1024, 1536, 2000, 3000, 3072, 4000, 4096, 5000,
					 12000, 40000 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		check_obj_start_test(a, sizes[k], 0);
		check_obj_start_test(a, sizes[k], 64);
	}
	check_obj_start_test(a, 24, 8);
	check_obj_start_test(a, 100, 4096);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/* ---- Partial / empty bookkeeping, shrink ------------------------------- */


static void assert_info(struct kmem_cache *c, unsigned long active, unsigned long slabs,
			unsigned long empty)
{
	struct kmem_cache_info i = info_of(c);

	if (i.active_objs != active || i.num_slabs != slabs || i.empty_slabs != empty)
		print_message("%s: active %lu/%lu slabs %lu/%lu empty %lu/%lu\n", i.name,
			      i.active_objs, active, i.num_slabs, slabs, i.empty_slabs, empty);
	assert_int_equal(i.active_objs, active);
	assert_int_equal(i.num_slabs, slabs);
	assert_int_equal(i.num_objs, slabs * i.objs_per_slab);
	assert_int_equal(i.empty_slabs, empty);
	assert_true(i.active_slabs + i.empty_slabs == i.num_slabs);
}

static void test_partial_empty_bookkeeping(void **state)
{
	enum { S = MAX_EMPTY + 4 };
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "book", AT4K(256), 0, 0, NULL);
	struct kmem_cache_info i = info_of(c);
	unsigned int n = i.objs_per_slab, pps = i.pages_per_slab;
	void *slab[S][64];
	uintptr_t base[S];
	size_t f0, got;
	void *x, *y;

	assert_true(n >= 2 && n <= 64);
	/* Fill S slabs: objects come slab by slab, in address order. */
	for (int s = 0; s < S; s++) {
		for (unsigned int k = 0; k < n; k++) {
			slab[s][k] = kmem_cache_alloc(c);
			assert_non_null(slab[s][k]);
		}
		base[s] = slab_base(c, slab[s][0]);
		for (unsigned int k = 0; k < n; k++)
			assert_int_equal(slab_base(c, slab[s][k]), base[s]);
		for (int t = 0; t < s; t++)
			assert_true(base[t] != base[s]);
	}
	assert_info(c, S * n, S, 0);
	f0 = mm_arena_free_pages(a);

	/* The first slab to empty is the active one and stays. */
	for (unsigned int k = 0; k < n; k++)
		kmem_cache_free(c, slab[0][k]);
	assert_info(c, (S - 1) * n, S, 1);
	/* The next MAX_EMPTY are kept on the empty list. */
	for (int s = 1; s <= MAX_EMPTY; s++) {
		for (unsigned int k = 0; k < n; k++)
			kmem_cache_free(c, slab[s][k]);
		assert_info(c, (S - 1 - s) * n, S, 1 + s);
		assert_int_equal(mm_arena_free_pages(a), f0);
	}
	/* One more goes back to the buddy allocator. */
	for (unsigned int k = 0; k < n; k++)
		kmem_cache_free(c, slab[MAX_EMPTY + 1][k]);
	assert_info(c, (S - 2 - MAX_EMPTY) * n, S - 1, 1 + MAX_EMPTY);
	assert_int_equal(mm_arena_free_pages(a), f0 + pps);
	assert_arena_valid(a);

	/* Shrink gives back every empty slab and says how many pages. */
	got = kmem_cache_shrink(c);
	assert_int_equal(got, (1 + MAX_EMPTY) * pps);
	assert_int_equal(mm_arena_free_pages(a), f0 + (2 + MAX_EMPTY) * pps);
	assert_info(c, 2 * n, 2, 0);
	assert_int_equal(kmem_cache_shrink(c), 0);

	/* A partial slab is used before a new one: the hole is refilled. */
	x = slab[S - 2][n / 2];
	kmem_cache_free(c, x);
	assert_info(c, 2 * n - 1, 2, 0);
	y = kmem_cache_alloc(c);
	assert_ptr_equal(y, x);
	assert_info(c, 2 * n, 2, 0);

	/* Holes in two slabs: both refilled before any new slab. */
	kmem_cache_free(c, slab[S - 2][1]);
	kmem_cache_free(c, slab[S - 1][2]);
	kmem_cache_free(c, slab[S - 1][3]);
	f0 = mm_arena_free_pages(a);
	for (int k = 0; k < 3; k++) {
		y = kmem_cache_alloc(c);
		assert_true(y == slab[S - 2][1] || y == slab[S - 1][2] || y == slab[S - 1][3]);
	}
	assert_info(c, 2 * n, 2, 0);
	assert_int_equal(mm_arena_free_pages(a), f0);

	/*
	 * Empty slabs (the active one, one on the empty list) before new
	 * ones; with MAX_EMPTY 0 the second went back, and a new slab
	 * stands in for it.
	 */
	for (unsigned int k = 0; k < n; k++)
		kmem_cache_free(c, slab[S - 2][k]);
	for (unsigned int k = 0; k < n; k++)
		kmem_cache_free(c, slab[S - 1][k]);
	assert_info(c, 0, KEPT_EMPTY(2), KEPT_EMPTY(2));
	for (unsigned int k = 0; k < 2 * n; k++) {
		y = kmem_cache_alloc(c);
		if (k < n * KEPT_EMPTY(2))
			assert_true(slab_base(c, y) == base[S - 2] || slab_base(c, y) == base[S - 1]);
		slab[k / n + S - 2][k % n] = y;
	}
	assert_info(c, 2 * n, 2, 0);
	assert_int_equal(mm_arena_free_pages(a), f0);
	/* Only now a new slab. */
	y = kmem_cache_alloc(c);
	assert_info(c, 2 * n + 1, 3, 0);
	assert_int_equal(mm_arena_free_pages(a), f0 - pps);
	kmem_cache_free(c, y);
	for (int s = S - 2; s < S; s++) {
		for (unsigned int k = 0; k < n; k++)
			kmem_cache_free(c, slab[s][k]);
	}
	assert_info(c, 0, KEPT_EMPTY(3), KEPT_EMPTY(3));
	assert_int_equal(kmem_cache_shrink(c), KEPT_EMPTY(3) * pps);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/* A slab of one object goes straight from full to empty: the empty-slab
 * limit must hold for it too. */
static void test_one_object_slabs(void **state)
{
	enum { N = MAX_EMPTY + 6 };
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "single", PS - 64, 0, 0, NULL);
	unsigned int pps = info_of(c).pages_per_slab;
	void *objs[N];
	size_t f0;

	assert_int_equal(info_of(c).objs_per_slab, 1);
	for (int k = 0; k < N; k++)
		objs[k] = kmem_cache_alloc(c);
	assert_info(c, N, N, 0);
	f0 = mm_arena_free_pages(a);
	for (int k = 0; k < N; k++)
		kmem_cache_free(c, objs[k]);
	/* The active slab plus MAX_EMPTY are kept, the rest given back. */
	assert_info(c, 0, 1 + MAX_EMPTY, 1 + MAX_EMPTY);
	assert_int_equal(mm_arena_free_pages(a), f0 + (N - 1 - MAX_EMPTY) * pps);
	/* Reused, not remade. */
	for (int k = 0; k < 1 + MAX_EMPTY; k++)
		objs[k] = kmem_cache_alloc(c);
	assert_int_equal(mm_arena_free_pages(a), f0 + (N - 1 - MAX_EMPTY) * pps);
	for (int k = 0; k < 1 + MAX_EMPTY; k++)
		kmem_cache_free(c, objs[k]);
	assert_int_equal(kmem_cache_shrink(c), (1 + MAX_EMPTY) * pps);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

static void test_reap_shrinks_every_cache(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c1 = kmem_cache_create_arena(a, "r1", 64, 0, 0, NULL);
	struct kmem_cache *c2 = kmem_cache_create_arena(a, "r2", 3000, 0, 0, NULL);
	void *o1[300], *o2[30];
	size_t pages;

	for (int k = 0; k < 300; k++)
		o1[k] = kmem_cache_alloc(c1);
	for (int k = 0; k < 30; k++)
		o2[k] = kmem_cache_alloc(c2);
	for (int k = 0; k < 300; k++)
		kmem_cache_free(c1, o1[k]);
	for (int k = 0; k < 30; k++)
		kmem_cache_free(c2, o2[k]);
	pages = (info_of(c1).num_slabs * info_of(c1).pages_per_slab) +
		(info_of(c2).num_slabs * info_of(c2).pages_per_slab);
	assert_true(pages > 0);
	assert_int_equal(kmem_cache_reap(a), pages);
	assert_int_equal(info_of(c1).num_slabs, 0);
	assert_int_equal(info_of(c2).num_slabs, 0);
	assert_nothing_lost(&p);
	assert_int_equal(kmem_cache_destroy(c1), 0);
	assert_int_equal(kmem_cache_destroy(c2), 0);
	parena_fini(&p);
}

/* ---- Memory pressure: reclaim and the OOM hook ------------------------- */

struct oom_ctx {
	int calls;
	size_t bytes;
	int free_one;		/* 1: free one of the test's pages and ask for a retry */
	int say_retry;		/* return nonzero without freeing anything */
	void **pages;
	size_t *npages;
};

static int oom_hook(struct mm_arena *a, size_t bytes, void *arg)
{
	struct oom_ctx *x = arg;

	x->calls++;
	x->bytes = bytes;
	if (x->free_one && *x->npages) {
		free_pages(a, x->pages[--*x->npages], 0);
		return 1;
	}
	return x->say_retry;
}

static void test_reclaim_and_oom_hook(void **state)
{
	enum { LIMIT = 64, MAXOBJ = 64 * 64, MAXPG = 64 };
	static struct parena p;
	static void *objs[MAXOBJ];
	static void *pages[MAXPG];
	struct mm_arena *a = parena_init(&p, 256, 0);
	struct kmem_cache *ca, *cb;
	struct oom_ctx ctx = { 0 };
	size_t nobj = 0, npages = 0, total;
	unsigned long oom0;
	void *x;

	mm_arena_set_limit(a, LIMIT * PS);
	ca = kmem_cache_create_arena(a, "pressure-a", AT4K(200), 0, 0, NULL);
	cb = kmem_cache_create_arena(a, "pressure-b", AT4K(400), 0, 0, NULL);
	assert_int_equal(info_of(ca).pages_per_slab, 1);
	assert_int_equal(info_of(cb).pages_per_slab, 1);

	/* Fill the arena with objects until it is out of pages. */
	oom0 = ooms(a);
	while ((x = kmem_cache_alloc(ca)) != NULL) {
		assert_true(nobj < MAXOBJ);
		objs[nobj++] = x;
	}
	assert_int_equal(ooms(a), oom0 + 1);
	assert_int_equal(mm_arena_free_pages(a), 0);
	total = a->nr_pages;
	assert_true(total > 8 && total <= LIMIT);
	assert_int_equal(info_of(ca).num_slabs, total);
	assert_arena_valid(a);

	/* Free them all: the cache keeps the active slab and MAX_EMPTY (of those it has). */
	while (nobj)
		kmem_cache_free(ca, objs[--nobj]);
	assert_info(ca, 0, KEPT_EMPTY(total), KEPT_EMPTY(total));
	assert_int_equal(mm_arena_free_pages(a), total - KEPT_EMPTY(total));

	/* Take every free page; then a new slab of another cache must come
	 * from the empty slabs of the first. */
	while (mm_arena_free_pages(a)) {
		pages[npages] = alloc_pages(a, 0);
		assert_non_null(pages[npages]);
		npages++;
	}
	x = kmem_cache_alloc(cb);
	assert_non_null(x);
	assert_int_equal(info_of(ca).num_slabs, 0);
	assert_info(cb, 1, 1, 0);
	assert_int_equal(mm_arena_free_pages(a), KEPT_EMPTY(total) - 1);

	/* The buddy allocator reclaims too: a page from an empty slab. */
	while (mm_arena_free_pages(a))
		pages[npages++] = alloc_pages(a, 0);
	kmem_cache_free(cb, x);			/* cb's active slab is now empty */
	assert_info(cb, 0, 1, 1);
	pages[npages] = alloc_pages(a, 0);
	assert_non_null(pages[npages]);
	npages++;
	assert_int_equal(info_of(cb).num_slabs, 0);
	assert_int_equal(npages, total);
	assert_arena_valid(a);

	/* Nothing left to reclaim: the OOM hook is asked before NULL. */
	mm_arena_set_oom_hook(a, oom_hook, &ctx);
	ctx.pages = pages;
	ctx.npages = &npages;
	oom0 = ooms(a);
	assert_null(kmem_cache_alloc(cb));
	assert_int_equal(ctx.calls, 1);
	assert_int_equal(ctx.bytes, info_of(cb).pages_per_slab * PS);
	assert_int_equal(ooms(a), oom0 + 1);
	assert_null(alloc_pages(a, 0));
	assert_int_equal(ctx.calls, 2);
	assert_int_equal(ctx.bytes, PS);
	assert_int_equal(ooms(a), oom0 + 2);
	/* Four pages, or the largest block where that is less. */
	assert_null(alloc_pages(a, MM_MAX_ORDER < 2 ? MM_MAX_ORDER : 2));
	assert_int_equal(ctx.calls, 3);
	assert_int_equal(ctx.bytes, (MM_MAX_ORDER < 2 ? 1u << MM_MAX_ORDER : 4) * PS);

	/* A hook that says "retry" but frees nothing: asked once, then NULL. */
	ctx.say_retry = 1;
	assert_null(kmem_cache_alloc(cb));
	assert_int_equal(ctx.calls, 4);
	assert_null(alloc_pages(a, 0));
	assert_int_equal(ctx.calls, 5);
	ctx.say_retry = 0;

	/* A hook that frees memory: the retry succeeds. */
	ctx.free_one = 1;
	x = kmem_cache_alloc(cb);
	assert_non_null(x);
	assert_int_equal(ctx.calls, 6);
	assert_int_equal(npages, total - 1);
	pages[npages] = alloc_pages(a, 0);
	assert_non_null(pages[npages]);
	assert_int_equal(ctx.calls, 7);
	npages++;				/* the hook freed one, we took one */
	assert_int_equal(npages, total - 1);

	/* Give everything back. */
	mm_arena_set_oom_hook(a, NULL, NULL);
	kmem_cache_free(cb, x);
	while (npages)
		free_pages(a, pages[--npages], 0);
	assert_int_equal(kmem_cache_destroy(ca), 0);
	assert_int_equal(kmem_cache_destroy(cb), 0);
	assert_int_equal(mm_arena_free_pages(a), total);
	assert_arena_valid(a);
	parena_fini(&p);
}

/* ---- Destroy with live objects ----------------------------------------- */

static void test_destroy_with_live_objects(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "leaky-cache", 120, 0, 0, NULL);
	unsigned char *o[40];
	char buf[32];
	unsigned long e0;
	size_t used;

	for (int k = 0; k < 40; k++) {
		o[k] = kmem_cache_alloc(c);
		memset(o[k], k, 120);
	}
	/* Three live objects, the rest freed. */
	for (int k = 0; k < 40; k++) {
		if (k != 3 && k != 17 && k != 39)
			kmem_cache_free(c, o[k]);
	}
	used = p.start_free - mm_arena_free_pages(a);
	e0 = errors(a);
	capture_start();
	misuse(assert_int_equal(kmem_cache_destroy(c), -1));
	check_report(a, e0, "Slab cache still has objects", "leaky-cache");
	/* The report lists the live objects, and only those. */
	assert_report_says(fmt_ptr(buf, sizeof(buf), o[3]));
	assert_report_says(fmt_ptr(buf, sizeof(buf), o[17]));
	assert_report_says(fmt_ptr(buf, sizeof(buf), o[39]));
	assert_false(captured(fmt_ptr(buf, sizeof(buf), o[4])));
	assert_report_says("3 objects");
	/* The memory in use is kept, the objects intact and usable. */
	assert_true(p.start_free - mm_arena_free_pages(a) > 0);
	assert_true(p.start_free - mm_arena_free_pages(a) <= used);
	assert_arena_valid(a);
	for (int n = 0; n < 120; n++) {
		assert_int_equal(o[3][n], 3);
		assert_int_equal(o[17][n], 17);
		assert_int_equal(o[39][n], 39);
	}
	assert_info(c, 3, info_of(c).num_slabs, 0);
	memset(o[17], 0xee, 120);
	o[0] = kmem_cache_alloc(c);		/* still a working cache */
	assert_non_null(o[0]);
	kmem_cache_free(c, o[0]);
	kmem_cache_free(c, o[3]);
	kmem_cache_free(c, o[17]);
	kmem_cache_free(c, o[39]);
	assert_int_equal(errors(a), e0 + counted(1));
	/* Now it goes, and takes its pages with it. */
	capture_start();
	assert_int_equal(kmem_cache_destroy(c), 0);
	capture_stop();
	assert_false(captured("BUG"));
	assert_nothing_lost(&p);
	parena_fini(&p);
}

static void test_destroy_lists_many_live_objects(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "many", 32, 0, 0, NULL);
	void *o[100];
	unsigned long e0 = errors(a);

	for (int k = 0; k < 100; k++)
		o[k] = kmem_cache_alloc(c);
	capture_start();
	misuse(assert_int_equal(kmem_cache_destroy(c), -1));
	check_report(a, e0, "Slab cache still has objects", "many");
	assert_report_says("100 objects");
	assert_report_says("more");		/* the list is capped */
	assert_int_equal(info_of(c).active_objs, 100);	/* the cache is kept */
	for (int k = 0; k < 100; k++)
		kmem_cache_free(c, o[k]);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/*
 * A cache used after kmem_cache_destroy(): destroyed again, allocated
 * from, freed into.  Its descriptor went back to the descriptors' cache,
 * whose free pointer took its first word: a second destroy unlinked it
 * from the arena's list again (and without the checks crashed on the free
 * mark where the active slab was), and an allocation popped a descriptor
 * slot as an object, or crashed.  Each is reported now, and changes
 * nothing; the arena's other caches and pages stay as they were.
 */
static void test_destroy_twice_and_use_after(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "gone", 64, 0, 0, NULL);
	struct kmem_cache *d = kmem_cache_create_arena(a, "stays", 64, 0, 0, NULL);
	void *o, *od;
	unsigned long e0;

	assert_non_null(c);
	assert_non_null(d);
	o = kmem_cache_alloc(c);
	od = kmem_cache_alloc(d);
	assert_non_null(o);
	kmem_cache_free(c, o);
	assert_int_equal(kmem_cache_destroy(c), 0);

	e0 = errors(a);
	capture_start();
	misuse(assert_int_equal(kmem_cache_destroy(c), -1));
	check_report(a, e0, "already destroyed", "gone");
	e0 = errors(a);
	capture_start();
	misuse(assert_null(kmem_cache_alloc(c)));
	check_report(a, e0, "already destroyed", "kmem_cache_alloc");
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(c, o));
	check_report(a, e0, "gone", NULL);
	assert_int_equal(kmem_cache_shrink(c), 0);

	/* The other cache, and the arena's list of caches, are intact. */
	kmem_cache_free(d, od);
	assert_int_equal(info_of(d).active_objs, 0);
	assert_int_equal(kmem_cache_destroy(d), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/*
 * A cache destroyed and another created in its place: the descriptor's
 * memory is handed out again (the same address, as the descriptors'
 * cache hands back its last free object first), and the new cache is
 * none of the old one's -- it allocates, frees and is destroyed with no
 * report, and so does a third.
 */
static void test_destroy_then_create_in_place(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	unsigned long e0 = errors(a), d0 = errors(mm_default_arena());
	struct kmem_cache *c = kmem_cache_create_arena(a, "first", 64, 0, 0, NULL), *c2;
	void *o;

	assert_non_null(c);
	o = kmem_cache_alloc(c);
	assert_non_null(o);
	kmem_cache_free(c, o);
	assert_int_equal(kmem_cache_destroy(c), 0);
	for (int i = 0; i < 2; i++) {
		c2 = kmem_cache_create_arena(a, "again", 64, 0, 0, NULL);
		assert_non_null(c2);
		assert_ptr_equal(c2, c);
		o = kmem_cache_alloc(c2);
		assert_non_null(o);
		assert_int_equal(ksize(c2), 0);
		kmem_cache_free(c2, o);
		assert_int_equal(kmem_cache_destroy(c2), 0);
	}
	assert_int_equal(errors(a), e0);
	assert_int_equal(errors(mm_default_arena()), d0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

#if IS_ENABLED(CONFIG_MM_CHECKS)
/*
 * Handles that name no cache: destroyed caches whose descriptors' slab
 * went back to the buddy allocator (their memory a free block's now),
 * NULL, and a struct of the caller's.  A second destroy read the arena
 * pointer from such memory and crashed, and so did a shrink, and an
 * allocation or a free with NULL.  Now each is reported, against the
 * default arena, and does nothing; a destroyed cache whose descriptor is
 * still in a slab is told "already destroyed" as before.  (An allocation
 * or a free trusts a handle that is not NULL, as Linux's do: slab.c.)
 */
static void test_handle_not_a_cache(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX), *d = mm_default_arena();
	struct kmem_cache fake, *reaped = NULL, **c;
	unsigned char *gone;
	unsigned int NHANDLES;
	unsigned long a0, d0;
	void *o;

	/* Three slabs' worth of descriptors: two of them at least hold only these. */
	kfree(kmalloc(1));			/* the descriptors' cache is set up */
	NHANDLES = 3 * kmem_cache_boot.objs;
	c = calloc(NHANDLES, sizeof(*c));
	assert_non_null(c);
	assert_true(NHANDLES >= 3);
	for (unsigned int i = 0; i < NHANDLES; i++) {
		c[i] = kmem_cache_create_arena(a, "handle", 32, 0, 0, NULL);
		assert_non_null(c[i]);
	}
	o = kmem_cache_alloc(c[0]);
	assert_non_null(o);
	kmem_cache_free(c[0], o);
	for (unsigned int i = 0; i < NHANDLES; i++)
		assert_int_equal(kmem_cache_destroy(c[i]), 0);
	/*
	 * The descriptors' slabs that held only these go back, and with a
	 * trim their pages to the system: zeroes when touched again.
	 */
	kmem_cache_reap(d);
	mm_arena_trim(d, 0);
	gone = calloc(NHANDLES, 1);
	assert_non_null(gone);
	for (unsigned int i = 0; i < NHANDLES; i++) {
		struct slab *s = obj_to_slab(&kmem_cache_boot, c[i]);
		struct mm_region *r = region_of(d, addr_to_pfn(s));

		gone[i] = !r || *page_meta(r, addr_to_pfn(s)) !=
				PAGE_META(PT_SLAB, kmem_cache_boot.order);
	}

	a0 = errors(a);
	d0 = errors(d);
	for (unsigned int i = 0; i < NHANDLES; i++) {
		unsigned long before = errors(d);

		capture_start();
		misuse(assert_int_equal(kmem_cache_destroy(c[i]), -1));
		capture_stop();
		if (!reaped && errors(d) != before)
			reaped = c[i];
	}
	assert_int_equal(errors(a) - a0 + errors(d) - d0, counted(NHANDLES));
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR)) {
		/* The children said; a handle whose slab went is one. */
		for (unsigned int i = 0; i < NHANDLES && !reaped; i++)
			if (gone[i])
				reaped = c[i];
	}
	assert_non_null(reaped);

	/* A reaped handle, NULL and a struct on the stack. */
	memset(&fake, 0, sizeof(fake));
	struct kmem_cache *bad[] = { reaped, NULL, &fake };
	for (unsigned int k = 0; k < ARRAY_SIZE(bad); k++) {
		unsigned long e0 = errors(d);

		if (!bad[k]) {
			capture_start();
			misuse(assert_null(kmem_cache_alloc(bad[k])));
			check_report(d, e0, "no cache", "kmem_cache_alloc");
			e0 = errors(d);
			capture_start();
			misuse(kmem_cache_free(bad[k], &fake));
			check_report(d, e0, "no cache", "kmem_cache_free");
			e0 = errors(d);
		}
		capture_start();
		misuse(assert_int_equal(kmem_cache_shrink(bad[k]), 0));
		check_report(d, e0, "no cache", "kmem_cache_shrink");
		if (bad[k]) {
			e0 = errors(d);
			capture_start();
			misuse(assert_int_equal(kmem_cache_destroy(bad[k]), -1));
			check_report(d, e0, "no cache", "kmem_cache_destroy");
		}
	}
	/*
	 * The reaped pages a descriptors' slab again: a handle on one is a
	 * slot never handed out, or threaded unused, whose fields are what
	 * the page held -- zeroes after the trim, a NULL arena that a
	 * destroy locked.  Reported, "no cache" or, where the page kept an
	 * old descriptor (no trim), "already destroyed".
	 */
	{
		struct kmem_cache **again = calloc(NHANDLES, sizeof(*again)), *old = NULL;
		unsigned int n = 0;

		assert_non_null(again);
		while (!old && n < NHANDLES) {
			struct slab *s;

			again[n] = kmem_cache_create_arena(a, "again", 32, 0, 0, NULL);
			assert_non_null(again[n]);
			s = obj_to_slab(&kmem_cache_boot, again[n++]);
			for (unsigned int i = 0; i < NHANDLES && !old; i++) {
				int taken = 0;

				for (unsigned int k = 0; k < n; k++)
					taken |= again[k] == c[i];
				if (!taken && gone[i] && obj_to_slab(&kmem_cache_boot, c[i]) == s)
					old = c[i];
			}
		}
		/* Where the buddy allocator put the new slabs elsewhere (64 KiB pages), nothing to try. */
		if (old) {
			/*
			 * As a trimmed page reads (the pcp lists may have
			 * handed it back untrimmed); its list link, where a
			 * free descriptor keeps its free pointer, as it is.
			 */
			old->arena = NULL;
			old->destroyed = 0;
			a0 = errors(a);
			d0 = errors(d);
			capture_start();
			misuse(assert_int_equal(kmem_cache_destroy(old), -1));
			capture_stop();
			assert_int_equal(errors(a) - a0 + errors(d) - d0, counted(1));
		}
		for (unsigned int k = 0; k < n; k++)
			assert_int_equal(kmem_cache_destroy(again[k]), 0);
		free(again);
		free(gone);
	}

	/* kmem_cache_destroy(NULL) is nothing, as in Linux. */
	assert_int_equal(kmem_cache_destroy(NULL), 0);
	free(c);
	assert_nothing_lost(&p);
	parena_fini(&p);
}
#endif

/*
 * kmalloc's own caches, which kmalloc_slab() hands out, are not the
 * caller's to destroy: one without live objects (a class never used, or
 * whose objects all came back) was freed while kmalloc_caches[] and the
 * magazines still named it, and the next kmalloc() of its sizes crashed.
 */
static void test_destroy_kmalloc_cache(void **state)
{
	static const size_t sizes[] = { 16, 64, 200, 448, 1000, KMALLOC_MAX_CACHE_SIZE };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		struct kmem_cache *c = kmalloc_slab(sizes[k]);
		unsigned long e0 = errors(mm_default_arena());
		void *x;

		if (!c)
			continue;
		capture_start();
		misuse(assert_int_equal(kmem_cache_destroy(c), -1));
		check_report(mm_default_arena(), e0, "kmalloc's own", NULL);
		assert_ptr_equal(kmalloc_slab(sizes[k]), c);
		x = kmalloc(sizes[k]);
		assert_non_null(x);
		assert_int_equal(ksize(x), kmem_cache_size(c));
		kfree(x);
	}
	assert_arena_valid(mm_default_arena());
}

/* ---- /proc/slabinfo ------------------------------------------------------ */

#if IS_ENABLED(CONFIG_MM_REPORTS)	/* the text mm_slabinfo() prints */
static void check_slabinfo_line(const char *text, struct kmem_cache *c, unsigned long active)
{
	struct kmem_cache_info i = info_of(c);
	unsigned long act, num, objsize, per, pps, aslabs, nslabs;
	char name[64], pat[80];
	const char *line;

	mm_snprintf(pat, sizeof(pat), "\n%s ", i.name);
	line = strstr(text, pat);
	assert_non_null(line);
	assert_int_equal(sscanf(line + 1, "%63s %lu %lu %lu %lu %lu : tunables %*u %*u %*u : "
				"slabdata %lu %lu", name, &act, &num, &objsize, &per, &pps,
				&aslabs, &nslabs), 8);
	assert_string_equal(name, i.name);
	assert_int_equal(act, active);
	assert_int_equal(act, i.active_objs);
	assert_int_equal(per, i.objs_per_slab);
	assert_int_equal(pps, i.pages_per_slab);
	assert_int_equal(objsize, i.size);
	assert_int_equal(num, i.num_slabs * i.objs_per_slab);
	assert_int_equal(nslabs, i.num_slabs);
	assert_int_equal(aslabs, i.active_slabs);
}

static void test_slabinfo(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c1 = kmem_cache_create_arena(a, "alpha", 100, 0, 0, NULL);
	struct kmem_cache *c2 = kmem_cache_create_arena(a, "beta_cache", 3000, 0, 0, cobj_ctor);
	struct kmem_cache *c3 = kmem_cache_create_arena(a, "gamma", 64, 64, 0, NULL);
	void *o1[50], *o2[7];
	const char *text;
	unsigned long per;

	for (int k = 0; k < 50; k++)
		o1[k] = kmem_cache_alloc(c1);
	for (int k = 0; k < 7; k++)
		o2[k] = kmem_cache_alloc(c2);
	capture_start();
	mm_slabinfo(a);
	text = capture_stop();
	assert_true(strncmp(text, "slabinfo - version: 2.1\n", 24) == 0);
	assert_non_null(strstr(text, "# name            <active_objs> <num_objs> <objsize> "
				     "<objperslab> <pagesperslab> : tunables <limit> "
				     "<batchcount> <sharedfactor> : slabdata <active_slabs> "
				     "<num_slabs> <sharedavail>\n"));
	check_slabinfo_line(text, c1, 50);
	check_slabinfo_line(text, c2, 7);
	check_slabinfo_line(text, c3, 0);
	/* The numbers themselves, not only their agreement with the info. */
	assert_int_equal(info_of(c1).size, 104);
	per = info_of(c1).objs_per_slab;
	assert_true(per >= (PS - 64) / 104 && per * 104 <= PS);
	assert_int_equal(info_of(c1).num_slabs, DIV_ROUND_UP(50, per));
	assert_true(info_of(c2).size >= 3000 + sizeof(void *));
	assert_int_equal(info_of(c3).num_slabs, 0);
	/* Exactly one line per cache, in creation order, nothing else. */
	{
		const char *l1 = strstr(text, "\nalpha "), *l2 = strstr(text, "\nbeta_cache ");
		const char *l3 = strstr(text, "\ngamma ");
		int lines = 0;

		assert_true(l1 && l2 && l3 && l1 < l2 && l2 < l3);
		for (const char *t = text; *t; t++)
			lines += *t == '\n';
		assert_int_equal(lines, 2 + 3);
	}
	for (int k = 0; k < 50; k++)
		kmem_cache_free(c1, o1[k]);
	for (int k = 0; k < 7; k++)
		kmem_cache_free(c2, o2[k]);
	assert_int_equal(kmem_cache_destroy(c1), 0);
	assert_int_equal(kmem_cache_destroy(c2), 0);
	assert_int_equal(kmem_cache_destroy(c3), 0);
	capture_start();
	mm_slabinfo(a);
	text = capture_stop();
	assert_null(strstr(text, "alpha"));
	assert_nothing_lost(&p);
	parena_fini(&p);
}
#endif

/* ---- Bad frees ----------------------------------------------------------- */

/* After a bad free: the heap is intact and keeps working. */
static __maybe_unused void assert_still_works(struct mm_arena *a, struct kmem_cache *c,
					       size_t size)
{
	void *x[8];

	assert_arena_valid(a);
	for (int k = 0; k < 8; k++) {
		x[k] = kmem_cache_alloc(c);
		assert_non_null(x[k]);
		memset(x[k], 0x3c, size);
		for (int j = 0; j < k; j++)
			assert_ptr_not_equal(x[j], x[k]);
	}
	for (int k = 0; k < 8; k++)
		kmem_cache_free(c, x[k]);
	assert_arena_valid(a);
}

/*
 * Bad frees that CONFIG_MM_CHECKS catches; without it (the release
 * configurations) they corrupt the heap by design, so these tests exist
 * only where the checks do -- but for those CONFIG_MM_FREE_MARK catches
 * too: double frees, pointers that are no object's start, objects of
 * another cache.  A pointer outside every slab is caught in every build
 * (test_free_foreign_pointer()).
 */
#define FREES_CHECKED	(IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK))
#if FREES_CHECKED
static void test_free_into_wrong_cache(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c1 = kmem_cache_create_arena(a, "owner-cache", 64, 0, 0, NULL);
	struct kmem_cache *c2 = kmem_cache_create_arena(a, "other-cache", 64, 0, 0, NULL);
	struct kmem_cache *big = kmem_cache_create_arena(a, "big-cache", AT4K(5000), 0, 0, NULL);
	void *x = kmem_cache_alloc(c1), *y = kmem_cache_alloc(c2), *z = kmem_cache_alloc(big);
	unsigned long e0;

	assert_true(info_of(big).pages_per_slab > info_of(c1).pages_per_slab);
	memset(x, 0x11, 64);
	/* Same slab size, another cache. */
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(c2, x));
	check_report(a, e0, "owner-cache", "other-cache");
	assert_info(c1, 1, 1, 0);
	assert_info(c2, 1, 1, 0);
	/* Another slab size, both ways. */
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(big, x));
	check_report(a, e0, "big-cache", NULL);
	assert_report_says("owner-cache");
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(c1, z));
	check_report(a, e0, "owner-cache", NULL);
	assert_report_says("big-cache");
	assert_info(big, 1, 1, 0);
	assert_info(c1, 1, 1, 0);
	for (int n = 0; n < 64; n++)
		assert_int_equal(((unsigned char *)x)[n], 0x11);
	assert_still_works(a, c1, 64);
	assert_still_works(a, c2, 64);
	kmem_cache_free(c1, x);
	kmem_cache_free(c2, y);
	kmem_cache_free(big, z);
	assert_int_equal(kmem_cache_destroy(c1), 0);
	assert_int_equal(kmem_cache_destroy(c2), 0);
	assert_int_equal(kmem_cache_destroy(big), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}
#endif /* FREES_CHECKED */

/*
 * Pointers that are in no slab of the cache's arena, in every build: with
 * the checks or without, kmem_cache_free() finds the page of the slab a
 * pointer would be in before it reads that slab's header.  The last one is
 * memory of nobody's made to look like a slab of c (its slab-aligned base
 * holds c's address): without the region's metadata asked first, it went
 * onto that "slab"'s free list unreported, and 0x1000 read an unmapped
 * header.
 */
static void test_free_foreign_pointer(void **state)
{
	static struct parena p, q;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct mm_arena *b = parena_init(&q, 64, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "victim", 64, 0, 0, NULL);
	struct kmem_cache *cb = kmem_cache_create_arena(b, "elsewhere", 64, 0, 0, NULL);
	/* A block of 8 pages, or the largest where that is less. */
	const unsigned int bo = MM_MAX_ORDER < 3 ? MM_MAX_ORDER : 3;
	void *x = kmem_cache_alloc(c), *far = kmem_cache_alloc(cb);
	void *page = alloc_pages(a, 0), *block = alloc_pages(a, bo);
	long on_stack[16];
	unsigned long e0;
	void *bad[] = {
		on_stack, &on_stack[8], page, (char *)page + 64, block,
		(char *)block + ((5u << bo) / 8) * PS, far, (void *)(uintptr_t)0x1000,
	};

	for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(c, bad[k]));
		check_report(a, e0, "victim", "not in any slab");
		assert_info(c, 1, 1, 0);
	}
	/* Free pages are no slab either. */
	free_pages(a, block, bo);
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(c, block));
	check_report(a, e0, "victim", "not in any slab");
	assert_int_equal(mm_page_order(a, page), 0);
	{
		struct kmem_cache_info i;
		size_t bytes;
		char *map, *fake;

		kmem_cache_info(c, &i);
		bytes = (size_t)i.pages_per_slab * PS;
		map = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(map != MAP_FAILED);
		fake = (char *)(((uintptr_t)map + bytes - 1) & ~(uintptr_t)(bytes - 1));
		memset(fake, 0, bytes);
		*(struct kmem_cache **)fake = c;	/* struct slab's first field */
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(c, fake + c->first));	/* the first object's start */
		check_report(a, e0, "victim", "not in any slab");
		for (size_t n = sizeof(void *); n < bytes; n++)
			assert_int_equal(fake[n], 0);
		assert_true(*(struct kmem_cache **)fake == c);
		munmap(map, 2 * bytes);
	}
	assert_still_works(a, c, 64);
	free_pages(a, page, 0);
	kmem_cache_free(c, x);
	kmem_cache_free(cb, far);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(kmem_cache_destroy(cb), 0);
	assert_nothing_lost(&p);
	assert_nothing_lost(&q);
	parena_fini(&q);
	parena_fini(&p);
}

/*
 * A cache with no active slab (new, or after kmem_cache_shrink()) has a
 * NULL one, and so is obj & c->slab_mask for any pointer below the first
 * slab's size: such a pointer must be refused as any other foreign one,
 * before anything there is read -- it was taken for an object of the
 * active slab, read (the mark) and written (the free list), a crash here
 * and silent corruption on a microcontroller whose memory starts at 0.
 */
static void test_free_foreign_pointer_no_active_slab(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "lowcache", 3000, 0, 0, NULL);
	unsigned long e0;
	void *x;

	(void)state;
	for (int round = 0; round < 2; round++) {
		char *low = (char *)(uintptr_t)(c->first + 2 * (size_t)c->size);

		assert_null(c->cpu_slab);
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(c, low));	/* the third object of a "slab" at 0 */
		check_report(a, e0, "lowcache", "not in any slab");
		x = kmem_cache_alloc(c);
		assert_non_null(x);
		assert_ptr_not_equal(x, low);
		kmem_cache_free(c, x);
		kmem_cache_shrink(c);		/* no active slab again */
	}
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

#if FREES_CHECKED
/* Pointers into an object, into the slab header and into the slab's tail. */
static void test_free_middle_of_object(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "mid", 100, 0, 0, NULL);
	char *x = kmem_cache_alloc(c), *y = kmem_cache_alloc(c);
	struct kmem_cache *t = kmem_cache_create_arena(a, "tail", 200, 0, 0, NULL);
	char *z = kmem_cache_alloc(t);
	const size_t offs[] = { 1, 8, 16, 50, 96, 99, (size_t)-8, (size_t)-16 };
	uintptr_t base = slab_base(c, x), tail = slab_base(t, z) + t->first + t->objs * t->size;
	unsigned long e0;

	for (size_t k = 0; k < ARRAY_SIZE(offs); k++) {
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(c, y + offs[k]));
		check_report(a, e0, "middle of an object", "mid");
		assert_info(c, 2, 1, 0);
	}
	/* The slab header is no object, nor is the tail after the last one. */
	for (uintptr_t bad = base; bad < base + c->first; bad += 8) {
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(c, (void *)bad));
		check_report(a, e0, "mid", NULL);
		assert_info(c, 2, 1, 0);
	}
	assert_true(tail < slab_base(t, z) + info_of(t).pages_per_slab * PS);
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(t, (void *)tail));
	check_report(a, e0, "tail", NULL);
	assert_info(t, 1, 1, 0);
	kmem_cache_free(t, z);
	assert_int_equal(kmem_cache_destroy(t), 0);
	assert_still_works(a, c, 100);
	kmem_cache_free(c, x);
	kmem_cache_free(c, y);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

static void test_double_free(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "dbl", 48, 0, 0, NULL);
	struct kmem_cache *cc = kmem_cache_create_arena(a, "dbl-ctor", 48, 0, 0, cobj_ctor);
	struct kmem_cache *caches[] = { c, cc };
	unsigned long e0;

	for (size_t k = 0; k < ARRAY_SIZE(caches); k++) {
		struct kmem_cache *x = caches[k];
		void *o[10], *again[10];
		char buf[32];

		for (int n = 0; n < 10; n++) {
			o[n] = kmem_cache_alloc(x);
			memset(o[n], 0, 48);
		}
		/* The most recent free. */
		kmem_cache_free(x, o[4]);
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(x, o[4]));
		check_report(a, e0, "Object already free", info_of(x).name);
		assert_report_says(fmt_ptr(buf, sizeof(buf), o[4]));
		assert_info(x, 9, 1, 0);
		/* Not the most recent free: deeper in the free list. */
		kmem_cache_free(x, o[7]);
		kmem_cache_free(x, o[2]);
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(x, o[4]));
		check_report(a, e0, "Object already free", NULL);
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(x, o[7]));
		check_report(a, e0, "Object already free", NULL);
		assert_info(x, 7, 1, 0);
		/* The free list is intact: three objects come back, once each. */
		for (int n = 0; n < 3; n++) {
			again[n] = kmem_cache_alloc(x);
			assert_true(again[n] == o[2] || again[n] == o[4] || again[n] == o[7]);
			for (int m = 0; m < n; m++)
				assert_ptr_not_equal(again[m], again[n]);
		}
		assert_info(x, 10, 1, 0);
		/* A double free into an empty slab. */
		for (int n = 0; n < 10; n++)
			kmem_cache_free(x, o[n]);
		assert_info(x, 0, 1, 1);
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(x, o[9]));
		check_report(a, e0, "Object already free", NULL);
		assert_info(x, 0, 1, 1);
		/* ... and into a slab already given back. */
		assert_true(kmem_cache_shrink(x) > 0);
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(x, o[0]));
		check_report(a, e0, info_of(x).name, NULL);
		assert_info(x, 0, 0, 0);
		assert_still_works(a, x, 48);
	}
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_int_equal(kmem_cache_destroy(cc), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

#endif /* FREES_CHECKED */

/* ---- Nothing lost -------------------------------------------------------- */

static void ctor_fill(void *p)
{
	memset(p, 0x42, 24);
}

static void test_nothing_lost_random(void **state)
{
	enum { SLOTS = 1500, OPS = 30000 };
	static struct parena p;
	static struct { void *p; int c; uint32_t tag; } slot[SLOTS];
	/* The largest: half the largest block where that is less. */
	static const size_t sizes[] = {
		8, 24, 64, 200, 1000, 3000, 5000, 20000 <= MM_MAX_BLOCK / 2 ? 20000 : MM_MAX_BLOCK / 2,
	};
	struct mm_arena *a = parena_init(&p, 2048, SIZE_MAX);
	struct kmem_cache *c[ARRAY_SIZE(sizes)];
	size_t live = 0;

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		c[k] = kmem_cache_create_arena(a, "rand", sizes[k], k == 3 ? 64 : 0, 0,
					       k == 2 ? ctor_fill : NULL);
		assert_non_null(c[k]);
	}
	memset(slot, 0, sizeof(slot));
	for (int op = 0; op < OPS; op++) {
		size_t s = rnd() % SLOTS;

		if (!slot[s].p) {
			int k = (int)(rnd() % ARRAY_SIZE(sizes));

			/* Fewer big ones, so the arena does not fill up. */
			if (sizes[k] >= 3000 && rnd() % 4)
				k = (int)(rnd() % 4);
			slot[s].p = kmem_cache_alloc(c[k]);
			assert_non_null(slot[s].p);
			slot[s].c = k;
			slot[s].tag = (uint32_t)rnd();
			memset(slot[s].p, (int)(slot[s].tag & 0xff), sizes[k]);
			memcpy(slot[s].p, &slot[s].tag, sizes[k] < 4 ? sizes[k] : 4);
			live++;
		} else {
			unsigned char *b = slot[s].p;
			size_t sz = sizes[slot[s].c];
			uint32_t t;

			memcpy(&t, b, 4);
			assert_int_equal(t, slot[s].tag);
			assert_int_equal(b[sz - 1], slot[s].tag & 0xff);
			assert_int_equal(b[sz / 2 < 4 ? 4 : sz / 2], slot[s].tag & 0xff);
			kmem_cache_free(c[slot[s].c], b);
			slot[s].p = NULL;
			live--;
		}
		if (op % 5000 == 4999) {
			kmem_cache_shrink(c[rnd() % ARRAY_SIZE(sizes)]);
			assert_arena_valid(a);
		}
	}
	{
		unsigned long active = 0;

		for (size_t k = 0; k < ARRAY_SIZE(sizes); k++)
			active += info_of(c[k]).active_objs;
		assert_int_equal(active, live);
	}
	for (size_t s = 0; s < SLOTS; s++) {
		if (slot[s].p)
			kmem_cache_free(c[slot[s].c], slot[s].p);
	}
	/* Shrunk: every page back, fully merged. */
	assert_true(kmem_cache_reap(a) > 0);
	assert_nothing_lost(&p);
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++)
		assert_int_equal(kmem_cache_destroy(c[k]), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

/* ---- Lazily threaded slabs ---------------------------------------------- */

/*
 * Every object a slab hands out, fresh or recycled, is distinct, inside the
 * arena, aligned and usable, the counts stay exact while a slab is only
 * partly threaded, and nothing is lost.  Holds with or without
 * CONFIG_MM_SLAB_LAZY; with it, this is what the bump index must not break.
 */
static void test_lazy_objects_distinct(void **state)
{
	enum { MAX = 600 };
	static struct parena p;
	static void *o[MAX];
	static const size_t sizes[] = { 24, 200, 700, 3000, 5000 };
	struct mm_arena *a = parena_init(&p, 2048, SIZE_MAX);

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		struct kmem_cache *c = kmem_cache_create_arena(a, "lazy", sizes[k], 0, 0, NULL);
		struct kmem_cache_info i = info_of(c);
		unsigned int n = 3 * i.objs_per_slab + 1;
		void *sorted[MAX];

		if (n > MAX)
			n = MAX;
		for (unsigned int j = 0; j < n; j++) {
			o[j] = kmem_cache_alloc(c);
			assert_non_null(o[j]);
			assert_true(in_arena(a, o[j]));
			assert_int_equal((uintptr_t)o[j] % i.align, 0);
			memset(o[j], (int)(j & 0xff), sizes[k]);
			assert_int_equal(info_of(c).active_objs, j + 1);
		}
		/* Whole, distinct, not overlapping. */
		memcpy(sorted, o, n * sizeof(*o));
		qsort(sorted, n, sizeof(*sorted), cmp_ptr);
		for (unsigned int j = 1; j < n; j++)
			assert_true((uintptr_t)sorted[j] - (uintptr_t)sorted[j - 1] >= sizes[k]);
		for (unsigned int j = 0; j < n; j++) {
			unsigned char *b = o[j];

			assert_int_equal(b[0], j & 0xff);
			assert_int_equal(b[sizes[k] - 1], j & 0xff);
		}
		/*
		 * Free every other one and take as many back: holes and the
		 * active slab's never-used objects mixed, still all distinct,
		 * and no slab more than needed.
		 */
		for (unsigned int j = 0; j < n; j += 2)
			kmem_cache_free(c, o[j]);
		assert_int_equal(info_of(c).active_objs, n - (n + 1) / 2);
		for (unsigned int j = 0; j < n; j += 2) {
			o[j] = kmem_cache_alloc(c);
			assert_non_null(o[j]);
			memset(o[j], 0x5a, sizes[k]);
		}
		assert_int_equal(info_of(c).active_objs, n);
		assert_true(info_of(c).num_slabs <= (n + i.objs_per_slab - 1) / i.objs_per_slab + 1);
		memcpy(sorted, o, n * sizeof(*o));
		qsort(sorted, n, sizeof(*sorted), cmp_ptr);
		for (unsigned int j = 1; j < n; j++)
			assert_true((uintptr_t)sorted[j] - (uintptr_t)sorted[j - 1] >= sizes[k]);
		for (unsigned int j = 1; j < n; j += 2) {
			unsigned char *b = o[j];

			assert_int_equal(b[0], j & 0xff);
			assert_int_equal(b[sizes[k] - 1], j & 0xff);
		}
		for (unsigned int j = 0; j < n; j++)
			kmem_cache_free(c, o[j]);
		assert_int_equal(info_of(c).active_objs, 0);
		kmem_cache_shrink(c);
		assert_int_equal(kmem_cache_destroy(c), 0);
		assert_nothing_lost(&p);
	}
	parena_fini(&p);
}

#if IS_ENABLED(CONFIG_MM_SLAB_LAZY)
/*
 * A new slab writes nothing into the pages its first objects do not reach:
 * one object of a multi-page slab leaves the other pages as they were
 * (untouched, so not resident, on a real heap).  The pages are painted
 * first, through a block of the same order that the slab then reuses.
 */
static void test_lazy_slab_touches_one_page(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "lazy-touch", MULTI_PAGE_OBJ, 0, 0, NULL);
	struct kmem_cache_info i = info_of(c);
	unsigned int order = 0;
	unsigned char *blk, *o, *o2;

	while ((1u << order) < i.pages_per_slab)
		order++;
	assert_true(i.pages_per_slab >= 2);
	blk = alloc_pages(a, order);
	assert_non_null(blk);
	memset(blk, 0xa5, (size_t)PS << order);
	free_pages(a, blk, order);

	o = kmem_cache_alloc(c);
	assert_true(slab_base(c, o) == (uintptr_t)blk);
	/* The second object starts in the first page: threaded along with it. */
	o2 = kmem_cache_alloc(c);
	assert_ptr_equal(o2, o + i.size);
	/* Nothing written past the page where the second object starts. */
	for (size_t off = ALIGN((size_t)(o2 - blk) + 1, PS); off < (size_t)PS << order; off++)
		assert_int_equal(blk[off], 0xa5);
	/* The rest comes as it is needed, in address order. */
	for (unsigned int j = 2; j < i.objs_per_slab; j++)
		assert_ptr_equal(kmem_cache_alloc(c), o + j * i.size);
	assert_int_equal(info_of(c).active_objs, i.objs_per_slab);
	for (unsigned int j = 0; j < i.objs_per_slab; j++)
		kmem_cache_free(c, o + j * i.size);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}
#endif

/*
 * The per-thread caches refill with __slab_alloc_bulk(): distinct objects
 * across slabs, counted as allocated; with CONFIG_MM_SLAB_LAZY a fresh
 * slab's objects come straight from the bump index, in address order, and
 * nothing is written into their pages (a magazine parking them costs no
 * memory until they are used).
 */
static void test_bulk_alloc(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	const size_t size = AT4K(MULTI_PAGE_4K);
	struct kmem_cache *c = kmem_cache_create_arena(a, "bulk", size, 0, 0, NULL);
	struct kmem_cache_info i = info_of(c);
	unsigned int order = 0, n = i.objs_per_slab, got;
	unsigned char *blk;
	void *o[64], *sorted[64];
	mm_flags_t flags;

	assert_true(n >= 2 && 2 * n + 2 <= 64);
	while ((1u << order) < i.pages_per_slab)
		order++;
	blk = alloc_pages(a, order);
	assert_non_null(blk);
	memset(blk, 0xa5, (size_t)PS << order);
	free_pages(a, blk, order);

	flags = mm_lock(&a->lock);
	got = __slab_alloc_bulk(c, o, n);
	mm_unlock(&a->lock, flags);
	assert_int_equal(got, n);
	assert_true(slab_base(c, o[0]) == (uintptr_t)blk);
	if (IS_ENABLED(CONFIG_MM_SLAB_LAZY)) {
		for (unsigned int j = 0; j < n; j++)
			assert_ptr_equal(o[j], (char *)o[0] + j * i.size);
		/* Only the header was written, in the first page. */
		for (size_t off = PS; off < (size_t)PS << order; off++)
			assert_int_equal(blk[off], 0xa5);
	}
	/* More than a slab: the next ones, distinct from these. */
	flags = mm_lock(&a->lock);
	got += __slab_alloc_bulk(c, o + n, n + 2);
	mm_unlock(&a->lock, flags);
	assert_int_equal(got, 2 * n + 2);
	assert_int_equal(info_of(c).active_objs, got);
	memcpy(sorted, o, got * sizeof(*o));
	qsort(sorted, got, sizeof(*sorted), cmp_ptr);
	for (unsigned int j = 1; j < got; j++)
		assert_true((uintptr_t)sorted[j] - (uintptr_t)sorted[j - 1] >= size);
	for (unsigned int j = 0; j < got; j++) {
		memset(o[j], (int)j, size);
		kmem_cache_free(c, o[j]);
	}
	assert_int_equal(info_of(c).active_objs, 0);
	assert_int_equal(a->diag.error_count, 0);
	kmem_cache_shrink(c);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

#if IS_ENABLED(CONFIG_MM_CHECKS) && IS_ENABLED(CONFIG_MM_SLAB_LAZY)
/*
 * An object beyond the bump index was never handed out: freeing it is
 * reported like a double free and changes nothing -- it is not handed out
 * twice later.  The same for an object of an empty slab kept for reuse,
 * which starts over at its first object.
 */
static void test_free_never_handed_out(void **state)
{
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 256, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "unborn", MULTI_PAGE_OBJ, 0, 0, NULL);
	struct kmem_cache_info i = info_of(c);
	unsigned int n = i.objs_per_slab;
	char *o, *last, *got[65];
	unsigned long e0;
	char buf[32];

	assert_true(n >= 3 && n <= 64);
	o = kmem_cache_alloc(c);
	last = o + (n - 1) * i.size;
	e0 = errors(a);
	capture_start();
	misuse(kmem_cache_free(c, last));
	check_report(a, e0, "Object already free", "never handed out");
	assert_report_says(fmt_ptr(buf, sizeof(buf), last));
	assert_int_equal(info_of(c).active_objs, 1);
	/* The whole slab, each object once, then a second slab. */
	got[0] = o;
	for (unsigned int j = 1; j < n; j++) {
		got[j] = kmem_cache_alloc(c);
		assert_ptr_equal(got[j], o + j * i.size);
	}
	assert_int_equal(info_of(c).num_slabs, 1);
	got[n] = kmem_cache_alloc(c);
	assert_true(slab_base(c, got[n]) != slab_base(c, o));
	/*
	 * An empty slab on the empty list: all of it counts as never used.
	 * With MM_SLAB_MAX_EMPTY 0 there is no such list: the slab goes back.
	 */
	for (unsigned int j = 0; j < n; j++)
		kmem_cache_free(c, got[j]);
	assert_info(c, 1, 1 + !!MAX_EMPTY, !!MAX_EMPTY);
	if (MAX_EMPTY) {
		e0 = errors(a);
		capture_start();
		misuse(kmem_cache_free(c, got[1]));
		check_report(a, e0, "Object already free", NULL);
		assert_info(c, 1, 2, 1);
	}
	assert_still_works(a, c, MULTI_PAGE_OBJ);
	kmem_cache_free(c, got[n]);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}
#endif

/* ---- The memory figure --------------------------------------------------- */

static void test_memory_figure_64(void **state)
{
	enum { N = 100000 };
	static void *objs[N];
	static struct parena p;
	struct mm_arena *a = parena_init(&p, 2200, SIZE_MAX);
	struct kmem_cache *c = kmem_cache_create_arena(a, "figure-64", 64, 0, 0, NULL);
	struct mm_diag d;
	size_t used_pages, cost;
	double ratio;

	for (int k = 0; k < N; k++) {
		objs[k] = kmem_cache_alloc(c);
		assert_non_null(objs[k]);
	}
	mm_arena_diag(a, &d);
	used_pages = (d.capacity - d.allocated) / PS;	/* free */
	used_pages = d.capacity / PS - used_pages;
	assert_int_equal(used_pages * PS, d.allocated);
	assert_int_equal(info_of(c).active_objs, N);
	/* Pages in use, plus their metadata: MM_META_BYTES each. */
	cost = used_pages * PS + used_pages * MM_META_BYTES;
	ratio = (double)cost / (64.0 * N);
	print_message("100000 x 64 bytes: %zu pages (%zu bytes with metadata), ratio %.4f\n",
		      used_pages, cost, ratio);
	assert_true(cost <= 105 * (size_t)64 * N / 100);
	for (int k = 0; k < N; k++)
		kmem_cache_free(c, objs[k]);
	assert_int_equal(kmem_cache_destroy(c), 0);
	assert_nothing_lost(&p);
	parena_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_alloc_free_destroy),
		cmocka_unit_test(test_create_rejects_impossible),
		cmocka_unit_test(test_default_arena_cache),
		cmocka_unit_test(test_kfree_of_cache_handle),
#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)
		cmocka_unit_test(test_krealloc_of_freed_cache_object),
#endif
		cmocka_unit_test(test_slab_panic),
		cmocka_unit_test(test_zalloc_zeroes),
		cmocka_unit_test(test_ctor_once_per_object_per_slab),
		cmocka_unit_test(test_ctor_state_kept_across_free),
		cmocka_unit_test(test_no_ctor_layout),
		cmocka_unit_test(test_explicit_alignments),
		cmocka_unit_test(test_hwcache_align),
		cmocka_unit_test(test_obj_start_test),
		cmocka_unit_test(test_partial_empty_bookkeeping),
		cmocka_unit_test(test_one_object_slabs),
		cmocka_unit_test(test_reap_shrinks_every_cache),
		cmocka_unit_test(test_reclaim_and_oom_hook),
		cmocka_unit_test(test_destroy_with_live_objects),
		cmocka_unit_test(test_destroy_lists_many_live_objects),
		cmocka_unit_test(test_destroy_twice_and_use_after),
		cmocka_unit_test(test_destroy_then_create_in_place),
		cmocka_unit_test(test_destroy_kmalloc_cache),
#if IS_ENABLED(CONFIG_MM_CHECKS)
		cmocka_unit_test(test_handle_not_a_cache),
#endif
#if IS_ENABLED(CONFIG_MM_REPORTS)
		cmocka_unit_test(test_slabinfo),
#endif
		cmocka_unit_test(test_lazy_objects_distinct),
		cmocka_unit_test(test_bulk_alloc),
#if IS_ENABLED(CONFIG_MM_SLAB_LAZY)
		cmocka_unit_test(test_lazy_slab_touches_one_page),
#endif
#if IS_ENABLED(CONFIG_MM_CHECKS) && IS_ENABLED(CONFIG_MM_SLAB_LAZY)
		cmocka_unit_test(test_free_never_handed_out),
#endif
		cmocka_unit_test(test_free_foreign_pointer),
		cmocka_unit_test(test_free_foreign_pointer_no_active_slab),
#if FREES_CHECKED
		cmocka_unit_test(test_free_into_wrong_cache),
		cmocka_unit_test(test_free_middle_of_object),
		cmocka_unit_test(test_double_free),
#endif
		cmocka_unit_test(test_nothing_lost_random),
		cmocka_unit_test(test_memory_figure_64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
