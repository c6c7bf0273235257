// SPDX-License-Identifier: MIT
/*
 * mm/arena.c: arenas as instances -- set-up, regions, growth from each
 * backend, trimming (on demand and automatic, with hysteresis), limits, the
 * OOM hook, several arenas side by side, and the validator itself.
 *
 * Every arena here is a static object of its test: an arena stays on the
 * global list of arenas until it is destroyed, so even a test that fails
 * half-way must not leave a dangling one behind.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "helpers.h"
#include "../mm/internal.h"	/* white-box: the list of arenas */

#define PS MM_PAGE_SIZE
/* An order, capped for configurations with a small MM_MAX_ORDER. */
#define ORD(n) ((n) < MM_MAX_ORDER ? (n) : MM_MAX_ORDER)

/*
 * kfree() walks the region list before it takes the lock, so wherever
 * there is concurrency (any lock but none) an entirely free region keeps
 * its header (the metadata pages) when trimmed; only mm_arena_destroy()
 * gives that back.
 */
#define HEADERS_KEPT (!IS_ENABLED(CONFIG_MM_LOCK_NONE))
#define REGION_HEADER_STAYS(x) (HEADERS_KEPT ? (x) : 0)
#define REGION_HEADER_GOES(x) (HEADERS_KEPT ? 0 : (x))

/* A page's block byte, as internal.h's page_meta() finds it. */
#define META(r, pfn)	((r)->meta[((pfn) - (r)->start_pfn) * MM_META_BYTES])

static size_t meta_pages_for(size_t total)
{
	/* As arena.c lays a region out over 'total' pages. */
	return DIV_ROUND_UP(sizeof(struct mm_region) + total * MM_META_BYTES,
			    PS + MM_META_BYTES);
}

/* Pages aligned to MM_PAGE_SIZE (which may exceed the MMU's); munmap() them. */
static void *map_pages(size_t pages)
{
	struct test_static t;

	test_static_init(&t, pages);
	return t.mem;
}

static int cmp_ptr(const void *x, const void *y)
{
	uintptr_t a = (uintptr_t)*(void *const *)x, b = (uintptr_t)*(void *const *)y;

	return a < b ? -1 : a > b;
}

static int inside(const void *p, size_t len, const void *mem, size_t size)
{
	return (uintptr_t)p >= (uintptr_t)mem &&
	       (uintptr_t)p + len <= (uintptr_t)mem + size;
}

/* Allocate order-0 pages until the arena says no; returns how many. */
static size_t fill_pages(struct mm_arena *a, void **v, size_t max)
{
	size_t n = 0;

	while (n < max && (v[n] = alloc_pages(a, 0)) != NULL)
		n++;
	return n;
}

/* ---- Set-up ----------------------------------------------------------- */

static void test_init_initial(void **state)
{
	static struct mm_arena a1, a2, a3;
	struct test_static ts;
	struct mm_diag d;

	test_static_init(&ts, 64);

	/* 'initial' bytes now, in one region with its metadata in front. */
	assert_int_equal(mm_arena_init(&a1, "a1", &ts.be.be, 8 * PS), 0);
	mm_arena_diag(&a1, &d);
	assert_int_equal(ts.be.be.held, 8 * PS);
	assert_int_equal(ts.be.be.nr_grow, 1);
	assert_int_equal(d.nr_regions, 1);
	assert_int_equal(d.capacity, (8 - meta_pages_for(8)) * PS);
	assert_int_equal(d.allocated, 0);
	assert_int_equal(mm_arena_free_pages(&a1), 8 - meta_pages_for(8));
	assert_string_equal(a1.name, "a1");
	assert_ptr_equal(a1.regions, ts.mem);	/* the header is the first page */
	assert_arena_valid(&a1);

	/* Rounded up to pages (and to the two pages a region needs at least). */
	assert_int_equal(mm_arena_init(&a2, NULL, &ts.be.be, 1), 0);
	assert_string_equal(a2.name, "arena");
	assert_int_equal(ts.be.be.held, 10 * PS);
	assert_int_equal(mm_arena_free_pages(&a2), 1);

	/* SIZE_MAX: everything the backend has left. */
	assert_int_equal(mm_arena_init(&a3, "a3", &ts.be.be, SIZE_MAX), 0);
	assert_int_equal(ts.be.be.held, 64 * PS);
	assert_int_equal(ts.be.top, ts.be.end);
	assert_int_equal(mm_arena_free_pages(&a3), 54 - meta_pages_for(54));
	assert_arena_valid(&a3);

	/* Newest first, as the static backend takes back only its top. */
	assert_int_equal(mm_arena_destroy(&a3), 0);
	assert_int_equal(mm_arena_destroy(&a2), 0);
	assert_int_equal(mm_arena_destroy(&a1), 0);
	assert_int_equal(ts.be.be.held, 0);
	assert_int_equal(ts.be.be.nr_release, 3);
	assert_int_equal(ts.be.top, ts.be.base);
	test_static_fini(&ts);
}

static void expect_init_fails(struct mm_arena *a, struct mm_backend *be, size_t initial)
{
	size_t held = be ? be->held : 0;

	capture_start();
	misuse(assert_int_equal(mm_arena_init(a, "bad", be, initial), -1));
	check_report(a, 0, "BUG mm_arena_init", "arena bad");
	if (be)
		assert_int_equal(be->held, held);
	/* Here it stopped a child, and 'a' was never an arena. */
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR))
		return;
	assert_null(a->regions);
	assert_int_equal(mm_arena_free_pages(a), 0);
	assert_arena_valid(a);
	/* A failed init leaves nothing to destroy, and destroying is harmless. */
	assert_int_equal(mm_arena_destroy(a), 0);
}

static void test_init_failures(void **state)
{
	static struct mm_arena a1, a2, a3, a4, a5, a6;
	struct test_static one, small;

	/* One page cannot hold a region's metadata and a page. */
	test_static_init(&one, 1);
	expect_init_fails(&a1, &one.be.be, SIZE_MAX);
	expect_init_fails(&a2, &one.be.be, PS);
	assert_int_equal(one.be.be.nr_grow, 0);
	assert_true(one.be.be.nr_fail >= counted(2));

	/* More than the backend has: fails, rather than taking less. */
	test_static_init(&small, 16);
	expect_init_fails(&a3, &small.be.be, 32 * PS);
	expect_init_fails(&a4, &small.be.be, SIZE_MAX / 2 + 1);
	expect_init_fails(&a5, &small.be.be, SIZE_MAX - 1);
	assert_int_equal(small.be.top, small.be.base);

	/* No backend, yet memory asked for now. */
	expect_init_fails(&a6, NULL, PS);

	test_static_fini(&small);
	test_static_fini(&one);
}

/*
 * mm_arena_init() of an arena that is live: it forgot its regions (pages
 * in use among them) and linked itself on the list of arenas a second
 * time, a loop that fork()'s handlers walked for ever.  Reported and
 * refused; the arena goes on as it was, and once destroyed it may be set
 * up again.
 */
static void test_init_live_arena(void **state)
{
	static struct mm_arena a, b;
	char *m = map_pages(32), *p;
	unsigned int seen = 0, n = 0;

	assert_int_equal(mm_arena_init(&a, "live", NULL, 0), 0);
	assert_int_equal(mm_arena_add_region(&a, m, 32 * PS), 0);
	assert_int_equal(mm_arena_init(&b, "other", NULL, 0), 0);
	p = alloc_pages(&a, 0);
	assert_non_null(p);
	memset(p, 0x3c, PS);
	expect_bug(&a, "mm_arena_init", "is live",
		   assert_int_equal(mm_arena_init(&a, "live", NULL, 0), -1));
	expect_bug(&b, "mm_arena_init", "is live",
		   assert_int_equal(mm_arena_init(&b, "other", NULL, 0), -1));
	for (struct mm_arena *x = mm_arenas; x && n < 1000; x = x->next_arena, n++)
		seen += x == &a;
	assert_int_equal(seen, 1);
	assert_true(n < 1000);
	assert_int_equal(mm_page_order(&a, p), 0);
	assert_int_equal((unsigned char)p[PS - 1], 0x3c);
	free_pages(&a, p, 0);
	assert_int_equal(mm_arena_destroy(&b), 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
	assert_int_equal(mm_arena_init(&a, "again", NULL, 0), 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
	munmap(m, 32 * PS);
}

/* ---- Regions ---------------------------------------------------------- */

static void test_add_region(void **state)
{
	static struct mm_arena a;
	char *m1 = map_pages(64), *m2 = map_pages(16), *m3 = map_pages(4);
	struct mm_diag d;
	size_t total, n;
	void **v;

	assert_int_equal(mm_arena_init(&a, "regions", NULL, 0), 0);
	assert_int_equal(mm_arena_free_pages(&a), 0);
	/* No backend: nothing to grow from; a clean failure. */
	assert_null(alloc_pages(&a, 0));
	assert_int_equal(a.diag.oom_count, 1);

	/* Trimmed inward to pages: [m1 + 100, m1 + 64 pages + 100) is 63. */
	assert_int_equal(mm_arena_add_region(&a, m1 + 100, 64 * PS), 0);
	total = 63 - meta_pages_for(63);
	assert_int_equal(mm_arena_free_pages(&a), total);
	assert_ptr_equal(a.regions, m1 + PS);
	assert_null(a.regions->backend);
	assert_int_equal(mm_arena_add_region(&a, m2, 16 * PS), 0);
	total += 16 - meta_pages_for(16);
	/* Two pages: the smallest region there is, one page of it usable. */
	assert_int_equal(mm_arena_add_region(&a, m3, 2 * PS), 0);
	total += 1;
	assert_int_equal(mm_arena_free_pages(&a), total);
	assert_int_equal(a.diag.nr_regions, 3);
	mm_arena_diag(&a, &d);
	assert_int_equal(d.capacity, total * PS);
	assert_arena_valid(&a);

	/* Too small, empty, or wrapping around: reported, nothing changes. */
	expect_bug(&a, "mm_arena_add_region", "cannot hold their own metadata and a page",
		   assert_int_equal(mm_arena_add_region(&a, m3 + 2 * PS, PS), -1));
	expect_bug(&a, "mm_arena_add_region", "cannot hold their own metadata and a page",
		   assert_int_equal(mm_arena_add_region(&a, m3 + 2 * PS + 1, 2 * PS - 1), -1));
	expect_bug(&a, "mm_arena_add_region", "0 bytes",
		   assert_int_equal(mm_arena_add_region(&a, m3 + 2 * PS, 0), -1));
	expect_bug(&a, "mm_arena_add_region", "cannot hold",
		   assert_int_equal(mm_arena_add_region(&a, NULL, 0), -1));
	expect_bug(&a, "mm_arena_add_region", "cannot hold",
		   assert_int_equal(mm_arena_add_region(&a, (void *)(UINTPTR_MAX - PS), 4 * PS), -1));
	expect_bug(&a, "mm_arena_add_region", "cannot hold",
		   assert_int_equal(mm_arena_add_region(&a, m3 + 2 * PS, SIZE_MAX), -1));
	assert_int_equal(a.diag.nr_regions, 3);

	/* Every page of every region is handed out, once. */
	v = calloc(total + 1, sizeof(*v));
	assert_non_null(v);
	n = fill_pages(&a, v, total + 1);
	assert_int_equal(n, total);
	qsort(v, n, sizeof(*v), cmp_ptr);
	for (size_t i = 0; i < n; i++) {
		assert_true(inside(v[i], PS, m1, 64 * PS) || inside(v[i], PS, m2, 16 * PS) ||
			    inside(v[i], PS, m3, 4 * PS));
		if (i)
			assert_true(v[i] != v[i - 1]);
	}
	assert_int_equal(mm_arena_free_pages(&a), 0);
	for (size_t i = 0; i < n; i++)
		free_pages(&a, v[i], 0);
	assert_int_equal(mm_arena_free_pages(&a), total);

	/* Regions the application gave are never trimmed away. */
	assert_int_equal(mm_arena_trim(&a, 0), 0);
	assert_int_equal(a.diag.nr_regions, 3);
	assert_int_equal(a.diag.error_count, counted(6));
	assert_arena_valid(&a);
	assert_int_equal(mm_arena_destroy(&a), 0);
	free(v);
	munmap(m1, 64 * PS);
	munmap(m2, 16 * PS);
	munmap(m3, 4 * PS);
}

/*
 * Memory the arena manages already, added again -- the same bank twice,
 * a part of it, a range reaching into it -- and a region at address 0:
 * the second region's metadata went over pages the first had handed out,
 * and every page was handed out twice (a page block written through one
 * pointer was the other's); at 0 the header was written through NULL.
 * Reported and refused; the arena stays as it was.
 */
static void test_add_region_overlapping(void **state)
{
	static struct mm_arena a;
	unsigned int o = MM_MAX_ORDER < 2 ? MM_MAX_ORDER : 2;
	char *m = map_pages(64), *p;
	size_t free0;

	assert_int_equal(mm_arena_init(&a, "overlap", NULL, 0), 0);
	assert_int_equal(mm_arena_add_region(&a, m + 16 * PS, 32 * PS), 0);
	p = alloc_pages(&a, o);
	assert_non_null(p);
	memset(p, 0x5a, PS << o);
	free0 = mm_arena_free_pages(&a);
	expect_bug(&a, "mm_arena_add_region", "overlap",
		   assert_int_equal(mm_arena_add_region(&a, m + 16 * PS, 32 * PS), -1));
	expect_bug(&a, "mm_arena_add_region", "overlap",
		   assert_int_equal(mm_arena_add_region(&a, m + 24 * PS, 4 * PS), -1));
	expect_bug(&a, "mm_arena_add_region", "overlap",
		   assert_int_equal(mm_arena_add_region(&a, m, 17 * PS), -1));
	expect_bug(&a, "mm_arena_add_region", "overlap",
		   assert_int_equal(mm_arena_add_region(&a, m + 47 * PS, 16 * PS), -1));
	expect_bug(&a, "mm_arena_add_region", "cannot hold",
		   assert_int_equal(mm_arena_add_region(&a, NULL, 64 * PS), -1));
	assert_int_equal(mm_arena_free_pages(&a), free0);
	assert_int_equal(a.diag.nr_regions, 1);
	for (size_t i = 0; i < PS << o; i++)
		assert_int_equal((unsigned char)p[i], 0x5a);
	/* Right next to it, on either side, is another region's memory. */
	assert_int_equal(mm_arena_add_region(&a, m, 16 * PS), 0);
	assert_int_equal(mm_arena_add_region(&a, m + 48 * PS, 16 * PS), 0);
	assert_int_equal(a.diag.nr_regions, 3);
	free_pages(&a, p, o);
	assert_arena_valid(&a);
	assert_int_equal(mm_arena_destroy(&a), 0);
	munmap(m, 64 * PS);
}

/* ---- Growth from every backend ---------------------------------------- */

/* Inside some region the backend handed to the arena. */
static int in_arena(struct mm_arena *a, const void *p, size_t len)
{
	for (struct mm_region *r = a->regions; r; r = r->next) {
		if (inside(p, len, r, r->len) &&
		    addr_to_pfn(p) >= r->start_pfn && addr_to_pfn(p) < mm_region_end(r))
			return 1;
	}
	return 0;
}

static void grow_and_trim(struct mm_arena *a, struct mm_backend *be, unsigned int top)
{
	void *p[MM_NR_ORDERS];
	struct mm_diag d;
	unsigned long regions;
	size_t held;

	assert_int_equal(mm_arena_init(a, be->name, be, 0), 0);
	mm_arena_set_trim(a, 0, 0);
	assert_int_equal(be->held, 0);
	assert_int_equal(mm_arena_free_pages(a), 0);

	/* Dry: the first allocation grows it. */
	p[0] = alloc_pages(a, 0);
	assert_non_null(p[0]);
	mm_arena_diag(a, &d);
	assert_int_equal(d.nr_grow, 1);
	assert_int_equal(be->nr_grow, 1);
	assert_true(be->held >= 4 * PS);
	assert_int_equal(d.nr_regions, 1);
	assert_true(in_arena(a, p[0], PS));

	/* Every order up to 'top', growing as needed; all aligned, all inside. */
	for (unsigned int o = 1; o <= top; o++) {
		p[o] = alloc_pages(a, o);
		assert_non_null(p[o]);
		assert_true(IS_ALIGNED((uintptr_t)p[o], PS << o));
		assert_true(in_arena(a, p[o], PS << o));
		/* There to be written, first byte to last. */
		((char *)p[o])[0] = 1;
		((char *)p[o])[(PS << o) - 1] = 1;
	}
	mm_arena_diag(a, &d);
	assert_int_equal(d.nr_grow, be->nr_grow);
	assert_int_equal(d.oom_count, 0);
	assert_arena_valid(a);

	for (unsigned int o = 0; o <= top; o++)
		free_pages(a, p[o], o);
	assert_int_equal(mm_arena_free_pages(a), a->nr_pages);

	/*
	 * Trimmed back: every region goes home.  With per-thread caches the
	 * headers stay (see above), and on a backend that takes back only its
	 * top (static, sbrk) a header left there pins the regions below it:
	 * then only the newest region is sure to be emptied.
	 */
	regions = d.nr_regions;
	if (trim_keeps_all(a, be))
		goto grow_again;
	/*
	 * The first growth's 4 pages at least, but for the header a region
	 * keeps (one page: its metadata for a few hundred pages) -- all that
	 * goes where the blocks are two pages of 64 KiB and a region four.
	 */
	assert_true(mm_arena_trim(a, 0) >= 4 * PS - REGION_HEADER_STAYS(PS));
	mm_arena_diag(a, &d);
	held = 0;
	for (struct mm_region *r = a->regions; r; r = r->next)
		held += r->len;
	assert_int_equal(be->held, held);
	assert_int_equal(d.nr_trim, be->nr_release);
	assert_int_equal(mm_arena_free_pages(a), a->nr_pages);
	if (!HEADERS_KEPT) {
		assert_int_equal(be->held, 0);
		assert_int_equal(d.nr_regions, 0);
		assert_int_equal(d.capacity, 0);
	} else {
		assert_int_equal(d.nr_regions, regions);
		assert_int_equal(mm_region_end(a->regions), a->regions->start_pfn);
		assert_int_equal(a->regions->len,
				 (a->regions->start_pfn - addr_to_pfn(a->regions)) * PS);
		if (be->discard)	/* mmap: any part of any region can go */
			assert_int_equal(d.capacity, 0);
	}
grow_again:
	assert_arena_valid(a);

	/* And grows again when needed. */
	p[0] = alloc_pages(a, 0);
	assert_non_null(p[0]);
	assert_true(be->held > 0);
	free_pages(a, p[0], 0);
	assert_int_equal(a->diag.error_count, 0);
	assert_int_equal(mm_arena_destroy(a), 0);
	assert_int_equal(be->held, 0);
}

static void test_grow_static(void **state)
{
	static struct mm_arena a;
	unsigned int top = MM_MAX_ORDER < 6 ? MM_MAX_ORDER : 6;
	struct test_static ts;

	test_static_init(&ts, 1024 + (8 << top));
	grow_and_trim(&a, &ts.be.be, top);
	assert_int_equal(ts.be.top, ts.be.base);
	test_static_fini(&ts);
}

#if IS_ENABLED(CONFIG_MM_BACKEND_SBRK)
static void test_grow_sbrk(void **state)
{
	static struct mm_arena a;
	static struct mm_backend_sbrk sb;
	void *brk0 = sbrk(0);

	mm_backend_sbrk_init(&sb);
	grow_and_trim(&a, &sb.be, MM_MAX_ORDER < 6 ? MM_MAX_ORDER : 6);
	/* The break is back where it was, give or take the alignment pad. */
	assert_true((uintptr_t)sbrk(0) - (uintptr_t)brk0 < PS);
}
#endif

#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP)
static void test_grow_mmap(void **state)
{
	static struct mm_arena a;
	static struct mm_backend_mmap mb;

	mm_backend_mmap_init(&mb, 0);
	grow_and_trim(&a, &mb.be, MM_MAX_ORDER);
}
#endif

#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
/*
 * CONFIG_MM_PREFER_RESIDENT: the pages of a new mmap region are clean
 * (untouched); a block that was used and freed is dirty, and a request is
 * split from it rather than served from a clean block of its own size.
 * Layout: the region's metadata takes its first page, so its free pages
 * start with clean blocks of order 0 (page 1), 1 (2-3) and 2 (4-7); the
 * order-2 block's buddy holds the metadata, so it never merges.  Where
 * order 2 is the largest, or above it, p is a block of the largest order
 * -- one of many, all clean -- and does not merge either.  The region is
 * sixteen pages, not what the arena would grow by: MM_GROW_MIN_KB need
 * not be a power of two, and a region's tail cut into small blocks has
 * clean order-0 and order-2 blocks of its own.
 */
static void test_prefer_resident(void **state)
{
	static struct mm_arena a;
	static struct mm_backend_mmap mb;
	const unsigned int o = ORD(2);
	char *p, *q;

	mm_backend_mmap_init(&mb, 0);
	assert_int_equal(mm_arena_init(&a, "resident", &mb.be, 16 * PS), 0);
	mm_arena_set_trim(&a, 0, 0);
	p = alloc_pages(&a, o);
	assert_non_null(p);
	assert_true(a.nr_free > 0);
	assert_int_equal(a.nr_clean, a.nr_free);	/* all untouched */
	/* Fixed: the backend aligns a region to the largest block. */
	assert_int_equal((a.regions->start_pfn - 1) & ((1u << o) - 1), 0);
	if (o < MM_MAX_ORDER)
		assert_ptr_equal(p, pfn_to_addr(a.regions->start_pfn + 3));
	assert_int_equal(mm_arena_nr_free_order(&a, 0), 1);
	memset(p, 0x5c, PS << o);
	free_pages(&a, p, o);
	assert_int_equal(a.nr_clean, a.nr_free - (1u << o));	/* p's pages are dirty */
	/* One page: from p's dirty block, not the clean single page before it. */
	q = alloc_pages(&a, 0);
	assert_ptr_equal(q, p);
	free_pages(&a, q, 0);
	assert_arena_valid(&a);
	assert_int_equal(mm_arena_destroy(&a), 0);
}
#endif

#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_FOOTPRINT_CAP)
/*
 * CONFIG_MM_FOOTPRINT_CAP: sixteen blocks of 256 KiB are written and
 * every other one is freed, leaving holes no block of 512 KiB fits.
 * Such blocks then come from untouched pages, and once the pages resident
 * (or presumed so) pass the peak in use by the slack, the holes are
 * discarded -- they read zero -- instead of the footprint growing; with
 * explicit thresholds the cap is off and nothing is discarded.  Sizes in
 * bytes, not pages, as the slack's floor and the trim threshold are: holes
 * of 64 pages of 64 KiB (32 MiB of them) pass the threshold, and those at
 * a region's end are unmapped, not discarded.
 */
#define FP_ORDER (18 - MM_PAGE_SHIFT)	/* 256 KiB */

static void footprint_run(struct mm_arena *a, int capped)
{
	enum { HOLES = 8, BIG = 6 };
	const unsigned int o = FP_ORDER;
	const size_t big = PS << o;
	char *v[2 * HOLES], *w[BIG];
	unsigned int zeroed = 0;

	for (unsigned int i = 0; i < 2 * HOLES; i++) {
		v[i] = alloc_pages(a, o);
		assert_non_null(v[i]);
		memset(v[i], 0x3c, big);
	}
	for (unsigned int i = 0; i < 2 * HOLES; i += 2)
		free_pages(a, v[i], o);
	for (unsigned int i = 0; i < BIG; i++) {
		w[i] = alloc_pages(a, o + 1);
		assert_non_null(w[i]);
		memset(w[i], 0x5a, 2 * big);
		/* Never more resident than the bar (SIZE_MAX when off). */
		assert_true(a->nr_pages - a->nr_clean <= a->fp_high);
	}
	/*
	 * A discarded hole reads zero past its first page (the list node).
	 * One at a region's end may have gone back to the backend instead
	 * (a trim threshold below the holes' 1 MiB): not to be read, and
	 * not resident either.
	 */
	for (unsigned int i = 0; i < 2 * HOLES; i += 2)
		zeroed += !in_arena(a, v[i], big) || (v[i][PS] == 0 && v[i][big - 1] == 0);
	if (capped) {
		assert_true(zeroed > 0);
		assert_true(a->nr_pages - a->nr_clean <= a->fp_peak + a->fp_peak / 16 +
			    ((size_t)1 << 20) / PS);
	} else {
		assert_int_equal(zeroed, 0);
		assert_true(a->fp_high == SIZE_MAX);
	}
	assert_arena_valid(a);
	for (unsigned int i = 0; i < BIG; i++)
		free_pages(a, w[i], o + 1);
	for (unsigned int i = 1; i < 2 * HOLES; i += 2)
		free_pages(a, v[i], o);
	assert_int_equal(a->diag.error_count, 0);
}

/*
 * An alloc/free pair at the edge of untouched memory: the pages freed
 * merge into a block of 2^MM_MAX_ORDER pages, most of it untouched.
 * Counted resident whole, the block would be discarded by the cap at
 * every free (a system call, and the pages refaulted at the next use); a
 * count of its resident pages keeps what was written -- two pages, or a
 * quarter of the block, as a program taking and freeing a 1 MiB buffer.
 */
static void pingpong(unsigned int order)
{
	static struct mm_arena a;
	static struct mm_backend_mmap mb;
	static char *held[1 << 10];
	unsigned int n = 0;
	char *p, *first;

	mm_backend_mmap_init(&mb, 0);
	assert_int_equal(mm_arena_init(&a, "pingpong", &mb.be, 4 * MM_MAX_BLOCK), 0);
	/* Use up the blocks beside the region's header: the next is a whole block's. */
	for (;;) {
		p = alloc_pages(&a, 1);
		assert_non_null(p);
		if (!((uintptr_t)p & (MM_MAX_BLOCK - 1)))
			break;
		assert_true(n < ARRAY_SIZE(held));
		held[n++] = p;
	}
	first = p;
	free_pages(&a, p, 1);
	for (int i = 0; i < 64; i++) {
		p = alloc_pages(&a, order);
		assert_ptr_equal(p, first);
		for (size_t k = 1; k < (size_t)1 << order; k++) {
			if (i)
				assert_int_equal(p[k * PS], 0x6b);	/* not discarded */
			p[k * PS] = 0x6b;
		}
		free_pages(&a, p, order);
	}
	assert_arena_valid(&a);
	while (n)
		free_pages(&a, held[--n], 1);
	assert_int_equal(mm_arena_destroy(&a), 0);
}

static __maybe_unused void test_footprint_no_pingpong(void **state)
{
	pingpong(1);
	pingpong(MM_MAX_ORDER - 2);
}

static __maybe_unused void test_footprint_cap(void **state)
{
	static struct mm_arena a;
	static struct mm_backend_mmap mb;

	mm_backend_mmap_init(&mb, 0);
	/* Default (adaptive) thresholds: the cap is on. */
	assert_int_equal(mm_arena_init(&a, "footprint", &mb.be, 8 << 20), 0);
	assert_true(a.fp_high != SIZE_MAX);
	footprint_run(&a, 1);
	assert_int_equal(mm_arena_destroy(&a), 0);

	/* Explicit thresholds: the application decides, no cap. */
	assert_int_equal(mm_arena_init(&a, "footprint", &mb.be, 8 << 20), 0);
	mm_arena_set_trim(&a, SIZE_MAX / 2, SIZE_MAX / 4);
	footprint_run(&a, 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
}
#endif

/* ---- Trimming --------------------------------------------------------- */

#if IS_ENABLED(CONFIG_MM_TRIM)
static void test_trim_tail(void **state)
{
	static struct mm_arena a;
	struct test_static ts;
	size_t usable, n, released;
	struct mm_diag d;
	void *v[64];

	test_static_init(&ts, 64);
	assert_int_equal(mm_arena_init(&a, "tail", &ts.be.be, SIZE_MAX), 0);
	mm_arena_set_trim(&a, 0, 0);
	usable = 64 - meta_pages_for(64);
	n = fill_pages(&a, v, 64);
	assert_int_equal(n, usable);
	qsort(v, n, sizeof(*v), cmp_ptr);

	/* Nothing free at the end: nothing to give back. */
	assert_int_equal(mm_arena_trim(&a, 0), 0);
	assert_int_equal(ts.be.be.nr_release, 0);

	/* Free the upper half: exactly those pages go back. */
	for (size_t i = 32; i < n; i++)
		free_pages(&a, v[i], 0);
	released = mm_arena_trim(&a, 0);
	assert_int_equal(released, (n - 32) * PS);
	assert_int_equal(ts.be.be.held, 64 * PS - released);
	assert_int_equal(ts.be.top, (uintptr_t)v[32]);
	assert_int_equal(ts.be.be.nr_release, 1);
	assert_int_equal(a.diag.nr_trim, 1);
	assert_int_equal(a.diag.nr_regions, 1);
	mm_arena_diag(&a, &d);
	assert_int_equal(d.capacity, 32 * PS);
	assert_int_equal(mm_arena_free_pages(&a), 0);
	assert_arena_valid(&a);
	/* The pages still held are intact and still ours. */
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(mm_page_order(&a, v[i]), 0);

	/*
	 * 'keep': that many free pages stay with the arena, exactly, even
	 * when it takes splitting a free block to give back the rest.
	 */
	for (size_t i = 8; i < 32; i++)
		free_pages(&a, v[i], 0);
	assert_int_equal(mm_arena_trim(&a, 5 * PS), 19 * PS);
	assert_int_equal(mm_arena_free_pages(&a), 5);
	assert_int_equal(ts.be.be.held, (1 + 8 + 5) * PS);
	assert_int_equal(ts.be.top, (uintptr_t)v[13]);
	assert_arena_valid(&a);
	/* Nothing more to give while only 'keep' is free. */
	assert_int_equal(mm_arena_trim(&a, 5 * PS), 0);
	assert_int_equal(mm_arena_free_pages(&a), 5);

	/* All free: the whole region, metadata and all, goes back. */
	for (size_t i = 0; i < 8; i++)
		free_pages(&a, v[i], 0);
	assert_int_equal(mm_arena_trim(&a, 0), 13 * PS + REGION_HEADER_GOES(PS));
	assert_int_equal(mm_arena_free_pages(&a), 0);
	assert_int_equal(ts.be.be.held, REGION_HEADER_STAYS(PS));
	assert_int_equal(ts.be.top, ts.be.base + REGION_HEADER_STAYS(PS));
	assert_int_equal(a.diag.nr_regions, REGION_HEADER_STAYS(1));
	assert_int_equal(a.diag.error_count, 0);
	assert_arena_valid(&a);
	assert_int_equal(mm_arena_destroy(&a), 0);
	assert_int_equal(ts.be.be.held, 0);
	test_static_fini(&ts);
}

/*
 * A trimmed region grows back in place: its metadata still covers the pages
 * it gave back, so growth asks the backend for exactly those (grow_at) and
 * no new region appears.  The region, of 'len' bytes, starts at an address
 * aligned to the largest block, so its layout is known: metadata, then the
 * first block's remains (the lowest order-0 page is kept allocated, so the
 * region survives the trim with or without per-thread caches), then free
 * largest blocks.
 */
static void regrow_in_place(struct mm_arena *a, struct mm_backend *be, size_t len)
{
	unsigned long nr_grow, nr_fail;
	void *keep, *q, *later = NULL;

	assert_int_equal(mm_arena_init(a, "regrow", be, len), 0);
	mm_arena_set_trim(a, 0, 0);
	/* A page of the first block: smaller blocks may end the region. */
	while ((keep = alloc_pages(a, 0)) != NULL &&
	       (uintptr_t)keep - (uintptr_t)a->regions >= MM_MAX_BLOCK) {
		*(void **)keep = later;
		later = keep;
	}
	assert_non_null(keep);
	while (later) {
		q = later;
		later = *(void **)q;
		free_pages(a, q, 0);
	}
	assert_int_equal(mm_arena_trim(a, 0), len - (meta_pages_for(len / PS) + 1) * PS);
	assert_int_equal(mm_arena_free_pages(a), 0);
	nr_grow = be->nr_grow;
	nr_fail = be->nr_fail;

	q = alloc_pages(a, MM_MAX_ORDER);
	assert_non_null(q);
	assert_int_equal(a->diag.nr_regions, 1);	/* no new region */
	assert_int_equal(be->nr_grow, nr_grow + 1);	/* one grow_at */
	assert_int_equal(be->nr_fail, nr_fail);		/* smaller asks are no failure */
	memset(q, 0x5a, MM_MAX_BLOCK);			/* really there */
	assert_arena_valid(a);
	free_pages(a, q, MM_MAX_ORDER);
	free_pages(a, keep, 0);
	assert_arena_valid(a);
	assert_int_equal(mm_arena_destroy(a), 0);
	assert_int_equal(be->held, 0);
}

static void test_regrow_in_place(void **state)
{
	static struct mm_arena a;
	static struct mm_backend_static sb;
	const size_t len = 4 * MM_MAX_BLOCK, two = 2 * MM_MAX_BLOCK / PS;
	size_t tight;
	char *map = mmap(NULL, len + MM_MAX_BLOCK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(map != MAP_FAILED);
	assert_int_equal(mm_backend_static_init(&sb, PTR_ALIGN(map, MM_MAX_BLOCK), len), 0);
	regrow_in_place(&a, &sb.be, len);
	/*
	 * An array that leaves, after the trim, just the two largest blocks
	 * a growth needs (one aligned, in a region of any alignment): less
	 * than the growth asks for (those, their metadata, and at least
	 * MM_GROW_MIN_KB), and less than the region's metadata covers, as
	 * metadata comes in whole pages.  The region must take what the
	 * array has rather than give its place up and leave the pages to a
	 * new region (which never merges with it), or to none.
	 */
	tight = two + 1;
	while (tight - meta_pages_for(tight) - 1 < two)
		tight++;
	assert_true(tight * PS <= len);
	assert_int_equal(mm_backend_static_init(&sb, PTR_ALIGN(map, MM_MAX_BLOCK), tight * PS), 0);
	regrow_in_place(&a, &sb.be, tight * PS);
	munmap(map, len + MM_MAX_BLOCK);
#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP)
	{
		static struct mm_backend_mmap mb;

		mm_backend_mmap_init(&mb, 0);	/* aligned to the largest block */
		regrow_in_place(&a, &mb.be, len);
	}
#endif
}
#endif

/*
 * Two arenas on one static backend: the lower one's region is not the
 * backend's top, so giving it back is refused -- and the pages must stay
 * with the arena, all of them, still free and valid.
 */
#if IS_ENABLED(CONFIG_MM_TRIM)
static void test_trim_refused(void **state)
{
	static struct mm_arena lo, hi;
	struct test_static ts;
	size_t free_lo;

	test_static_init(&ts, 32);
	assert_int_equal(mm_arena_init(&lo, "lo", &ts.be.be, 16 * PS), 0);
	assert_int_equal(mm_arena_init(&hi, "hi", &ts.be.be, 16 * PS), 0);
	mm_arena_set_trim(&lo, 0, 0);
	mm_arena_set_trim(&hi, 0, 0);
	free_lo = mm_arena_free_pages(&lo);

	assert_int_equal(mm_arena_trim(&lo, 0), 0);
	assert_int_equal(ts.be.be.nr_fail, 1);
	assert_int_equal(ts.be.be.held, 32 * PS);
	assert_int_equal(mm_arena_free_pages(&lo), free_lo);
	assert_int_equal(lo.diag.nr_regions, 1);
	assert_int_equal(lo.diag.nr_trim, 0);
	assert_arena_valid(&lo);
	/* Still fully usable. */
	void *p = alloc_pages(&lo, ORD(3));
	assert_non_null(p);
	free_pages(&lo, p, ORD(3));

	/*
	 * A tail down to 'keep', splitting a free block to get there, refused
	 * too: every block is back as it was, merged as before.
	 */
	size_t before[MM_NR_ORDERS];
	void *q = alloc_pages(&lo, 0);
	assert_non_null(q);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		before[o] = mm_arena_nr_free_order(&lo, o);
	for (size_t keep = 1; keep < free_lo - 1; keep++) {
		assert_int_equal(mm_arena_trim(&lo, keep * PS), 0);
		assert_int_equal(mm_arena_free_pages(&lo), free_lo - 1);
		for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
			assert_int_equal(mm_arena_nr_free_order(&lo, o), before[o]);
		assert_arena_valid(&lo);
	}
	free_pages(&lo, q, 0);
	assert_int_equal(ts.be.be.held, 32 * PS);

	/* Once the upper one has gone, the lower one can go too. */
	assert_int_equal(mm_arena_trim(&hi, 0), 16 * PS - REGION_HEADER_STAYS(PS));
	assert_int_equal(mm_arena_destroy(&hi), 0);
	assert_int_equal(ts.be.top, ts.be.base + 16 * PS);
	assert_int_equal(mm_arena_trim(&lo, 0), 16 * PS - REGION_HEADER_STAYS(PS));
	assert_int_equal(ts.be.be.held, REGION_HEADER_STAYS(PS));
	assert_int_equal(mm_arena_destroy(&lo), 0);
	assert_int_equal(ts.be.be.held, 0);
	test_static_fini(&ts);
}
#endif

/*
 * Automatic trimming: past 'high' free pages, down to 'low'; a workload
 * going up and down by less than high - low never returns memory twice.
 */
#if IS_ENABLED(CONFIG_MM_TRIM)
/*
 * The automatic thresholds: at least the Kconfig threshold (low: half of
 * it), and at least an eighth of the most the arena has held (low: a
 * sixteenth), so a large heap keeps a bounded share of free pages.
 */
static void test_trim_thresholds_follow_peak(void **state)
{
	static struct mm_arena a;
	struct test_static ts;
	/* A threshold of less than a page is a page: 0 alone means never. */
	size_t base = DIV_ROUND_UP((size_t)CONFIG_MM_TRIM_THRESHOLD_KB << 10, PS);
	size_t pages = 16 * base + 64;

	test_static_init(&ts, pages);
	assert_int_equal(mm_arena_init(&a, "peak", &ts.be.be, SIZE_MAX), 0);
	assert_true(a.trim_peak >= 16 * base);
	if (base) {
		assert_int_equal(a.trim_high, max_t(size_t, base, a.trim_peak / 8));
		assert_int_equal(a.trim_low, max_t(size_t, base / 2, a.trim_peak / 16));
		assert_true(a.trim_high < a.trim_peak / 2);
	} else {
		assert_int_equal(a.trim_high, SIZE_MAX);
		assert_int_equal(a.trim_low, 0);
	}
	assert_int_equal(mm_arena_destroy(&a), 0);
	test_static_fini(&ts);
}
#endif

#if IS_ENABLED(CONFIG_MM_TRIM)
/* The trim tests' end: give-back off, no error, every page back. */
static void trim_test_fini(struct mm_arena *a, struct test_static *ts, void **v)
{
	mm_arena_set_trim(a, 0, 0);
	assert_int_equal(a->diag.error_count, 0);
	assert_int_equal(mm_arena_destroy(a), 0);
	assert_int_equal(ts->be.be.held, 0);
	free(v);
	test_static_fini(ts);
}

static void test_auto_trim_hysteresis(void **state)
{
	static struct mm_arena a;
	const size_t high = 32, low = 16, pages = 256;
	struct test_static ts;
	size_t n, releases, top;
	void **v;

	test_static_init(&ts, pages);
	v = calloc(pages, sizeof(*v));
	assert_non_null(v);
	assert_int_equal(mm_arena_init(&a, "auto", &ts.be.be, SIZE_MAX), 0);
	mm_arena_set_trim(&a, high * PS, low * PS);
	assert_int_equal(a.trim_high, high);
	assert_int_equal(a.trim_low, low);
	n = fill_pages(&a, v, pages);
	assert_int_equal(n, pages - meta_pages_for(pages));
	qsort(v, n, sizeof(*v), cmp_ptr);

	/* Free from the top down: no give-back up to 'high' free pages... */
	top = n;
	while (mm_arena_free_pages(&a) < high) {
		free_pages(&a, v[--top], 0);
		assert_int_equal(ts.be.be.nr_release, 0);
	}
	assert_int_equal(mm_arena_free_pages(&a), high);
	/* ...and one page more trims down to 'low'. */
	free_pages(&a, v[--top], 0);
	assert_int_equal(ts.be.be.nr_release, 1);
	assert_int_equal(mm_arena_free_pages(&a), low);
	assert_int_equal(ts.be.top, (uintptr_t)v[top] + low * PS);
	assert_arena_valid(&a);

	/* Oscillating by less than high - low: no thrashing, no regrowth. */
	for (int round = 0; round < 1000; round++) {
		size_t k = 1 + (size_t)round % (high - low - 1);
		void *w[32];

		for (size_t i = 0; i < k; i++)
			assert_non_null(w[i] = alloc_pages(&a, 0));
		for (size_t i = 0; i < k; i++)
			free_pages(&a, w[i], 0);
	}
	assert_int_equal(ts.be.be.nr_release, 1);
	assert_int_equal(ts.be.be.nr_grow, 1);

	/* Up to 'high' again, then hovering just at it: nothing goes back. */
	while (mm_arena_free_pages(&a) < high)
		free_pages(&a, v[--top], 0);
	for (int round = 0; round < 1000; round++) {
		void *w = alloc_pages(&a, 0);

		assert_non_null(w);
		free_pages(&a, w, 0);
	}
	assert_int_equal(mm_arena_free_pages(&a), high);
	assert_int_equal(ts.be.be.nr_release, 1);

	/*
	 * Freeing everything top down: exactly one release each time free
	 * pages pass 'high', and each lands on 'low'.
	 */
	size_t model = mm_arena_free_pages(&a);
	releases = ts.be.be.nr_release;
	while (top) {
		free_pages(&a, v[--top], 0);
		if (++model > high) {
			model = low;
			releases++;
		}
		assert_int_equal(mm_arena_free_pages(&a), model);
		assert_int_equal(ts.be.be.nr_release, releases);
	}
	assert_true(releases >= 1 + (n - 2 * high) / (high - low));
	assert_arena_valid(&a);

	/* Off: no more give-back. */
	mm_arena_set_trim(&a, 0, 0);
	n = fill_pages(&a, v, pages);
	assert_true(n > 0);
	while (n)
		free_pages(&a, v[--n], 0);
	assert_int_equal(ts.be.be.nr_release, releases);

	/* low above high is taken as high. */
	mm_arena_set_trim(&a, 8 * PS, 64 * PS);
	assert_int_equal(a.trim_low, a.trim_high);
	trim_test_fini(&a, &ts, v);
}

/*
 * Freed bottom up, the region's last page in use to the end: each trim
 * past the bar finds nothing at the edge and raises the bar by half, so
 * that the next frees do not walk the region in vain.  The raise must not
 * outlive the reason for it: the last free, which frees the edge, trims
 * down to 'low'.  (The raise stayed until the arena's size changed, and
 * everything freed stayed with it, with the thresholds given or the
 * defaults.)
 */
static void test_auto_trim_after_bottom_up_frees(void **state)
{
	static struct mm_arena a;
	const size_t high = 32, low = 16, pages = 256;
	struct test_static ts;
	size_t n;
	void **v;

	test_static_init(&ts, pages);
	v = calloc(pages, sizeof(*v));
	assert_non_null(v);
	assert_int_equal(mm_arena_init(&a, "bottom-up", &ts.be.be, SIZE_MAX), 0);
	for (int round = 0; round < 3; round++) {
		if (round < 2)
			mm_arena_set_trim(&a, high * PS, low * PS);
		n = fill_pages(&a, v, pages);
		assert_true(n > 4 * high);
		qsort(v, n, sizeof(*v), cmp_ptr);
		for (size_t i = 0; i + 1 < n; i++)
			free_pages(&a, v[i], 0);
		assert_int_equal(ts.be.be.nr_release, (size_t)round);
		assert_true(mm_arena_free_pages(&a) > high);
		free_pages(&a, v[n - 1], 0);
		assert_int_equal(ts.be.be.nr_release, (size_t)round + 1);
		assert_int_equal(mm_arena_free_pages(&a), low);
		assert_int_equal(a.trim_high, high);
		assert_arena_valid(&a);
	}
	trim_test_fini(&a, &ts, v);
}
#endif

/* ---- Limits, OOM and recovery ----------------------------------------- */

static void test_limit(void **state)
{
	static struct mm_arena a, b;
	struct test_static ts;
	unsigned long grows;
	unsigned int top;
	struct mm_diag d;
	size_t n;
	void *v[64];
	void *big;

	test_static_init(&ts, 1024);
	assert_int_equal(mm_arena_init(&a, "limited", &ts.be.be, 0), 0);
	mm_arena_set_trim(&a, 0, 0);
	mm_arena_set_limit(&a, 64 * PS + PS / 2);	/* rounded down to pages */
	assert_int_equal(a.limit_pages, 64);

	/*
	 * It grows (in one region or several, as the growth step and the
	 * page size have it) until the next step would pass the limit.  A
	 * step may extend the last region in place (the static backend's
	 * top is contiguous), so each is one growth, not one region.
	 */
	n = fill_pages(&a, v, 64);
	mm_arena_diag(&a, &d);
	assert_int_equal(n * PS, d.capacity);
	assert_true(ts.be.be.held <= 64 * PS);
	assert_true(ts.be.be.held > 60 * PS);
	if (ts.be.be.held == 64 * PS && d.nr_regions == 1)
		assert_int_equal(n, 64 - meta_pages_for(64));
	grows = ts.be.be.nr_grow;
	assert_int_equal(a.diag.nr_grow, grows);
	assert_true(d.nr_regions >= 1 && d.nr_regions <= grows);
	assert_int_equal(a.diag.oom_count, 1);
	assert_null(alloc_pages(&a, ORD(3)));
	assert_int_equal(a.diag.oom_count, 2);
	assert_int_equal(ts.be.be.nr_grow, grows);
	assert_int_equal(a.diag.error_count, 0);
	assert_arena_valid(&a);

	/* Recovery: free it all, and the largest blocks are there again. */
	while (n)
		free_pages(&a, v[--n], 0);
	for (top = MM_MAX_ORDER; !mm_arena_nr_free_order(&a, top); top--)
		;
	assert_true(top == MM_MAX_ORDER || ((size_t)1 << top) >= 8);
	big = alloc_pages(&a, top);
	assert_non_null(big);
	free_pages(&a, big, top);

	/* Lifting the limit lets it grow again. */
	mm_arena_set_limit(&a, 0);
	n = fill_pages(&a, v, 64);
	assert_int_equal(n, 64);
	assert_int_equal(ts.be.be.nr_grow, grows + 1);
	while (n)
		free_pages(&a, v[--n], 0);
	assert_int_equal(mm_arena_destroy(&a), 0);

	/* A limit below the smallest region: no growth at all. */
	assert_int_equal(mm_arena_init(&b, "tiny", &ts.be.be, 0), 0);
	mm_arena_set_limit(&b, 2 * PS);
	assert_null(alloc_pages(&b, 0));
	assert_int_equal(b.diag.oom_count, 1);
	assert_int_equal(ts.be.be.held, 0);
	assert_int_equal(mm_arena_destroy(&b), 0);
	test_static_fini(&ts);
}

struct hook_ctx {
	int calls;
	size_t bytes;
	struct mm_arena *arena;
	void *give;		/* freed by the hook, if set */
	unsigned int order;
	int ret;
};

static int oom_hook(struct mm_arena *a, size_t bytes, void *ctx)
{
	struct hook_ctx *h = ctx;

	assert_ptr_equal(a, h->arena);
	h->calls++;
	h->bytes = bytes;
	if (h->give) {
		/* The lock is not held: the hook may free into the arena. */
		free_pages(a, h->give, h->order);
		h->give = NULL;
	}
	return h->ret;
}

static void test_oom_hook(void **state)
{
	static struct mm_arena a;
	struct hook_ctx h = { .arena = &a };
	struct test_static ts;
	size_t n;
	void *v[64], *p;

	test_static_init(&ts, 32);
	assert_int_equal(mm_arena_init(&a, "oom", &ts.be.be, SIZE_MAX), 0);
	mm_arena_set_trim(&a, 0, 0);
	mm_arena_set_oom_hook(&a, oom_hook, &h);
	n = fill_pages(&a, v, 64);
	assert_int_equal(n, 32 - meta_pages_for(32));
	/* Filling called the hook once, which declined: counted as OOM. */
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.bytes, PS);
	assert_int_equal(a.diag.oom_count, 1);

	/* The hook frees a page and asks for a retry: the request succeeds. */
	h = (struct hook_ctx){ .arena = &a, .give = v[--n], .order = 0, .ret = 1 };
	p = alloc_pages(&a, 0);
	assert_ptr_equal(p, v[n]);
	assert_int_equal(h.calls, 1);
	assert_int_equal(a.diag.oom_count, 1);
	v[n++] = p;

	/* It frees but says no: the page is there, so it is taken anyway. */
	h = (struct hook_ctx){ .arena = &a, .give = v[--n], .order = 0, .ret = 0 };
	p = alloc_pages(&a, 0);
	assert_ptr_equal(p, v[n]);
	v[n++] = p;

	/* It declines: NULL, counted. */
	h = (struct hook_ctx){ .arena = &a, .ret = 0 };
	assert_null(alloc_pages(&a, ORD(2)));
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.bytes, PS << ORD(2));
	assert_int_equal(a.diag.oom_count, 2);

	/* It asks for a retry but frees nothing: called once, not forever. */
	h = (struct hook_ctx){ .arena = &a, .ret = 1 };
	assert_null(alloc_pages(&a, 0));
	assert_int_equal(h.calls, 1);
	assert_int_equal(a.diag.oom_count, 3);

	/* Not called when there is memory. */
	free_pages(&a, v[--n], 0);
	h = (struct hook_ctx){ .arena = &a, .ret = 1 };
	p = alloc_pages(&a, 0);
	assert_non_null(p);
	assert_int_equal(h.calls, 0);
	v[n++] = p;

	/* Without a hook: NULL, counted. */
	mm_arena_set_oom_hook(&a, NULL, NULL);
	assert_null(alloc_pages(&a, 0));
	assert_int_equal(a.diag.oom_count, 4);

	while (n)
		free_pages(&a, v[--n], 0);
	assert_int_equal(a.diag.error_count, 0);
	assert_arena_valid(&a);
	assert_int_equal(mm_arena_destroy(&a), 0);
	test_static_fini(&ts);
}

static void test_exhaustion_recovery(void **state)
{
	static struct mm_arena a;
	struct test_static ts;
	size_t usable, n, top;
	void *v[128], *p;

	test_static_init(&ts, 128);
	assert_int_equal(mm_arena_init(&a, "exhaust", &ts.be.be, SIZE_MAX), 0);
	mm_arena_set_trim(&a, 0, 0);
	usable = 128 - meta_pages_for(128);
	top = 0;
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		if (mm_arena_nr_free_order(&a, o))
			top = o;

	for (int round = 0; round < 3; round++) {
		n = fill_pages(&a, v, 128);
		assert_int_equal(n, usable);
		assert_int_equal(mm_arena_free_pages(&a), 0);
		for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
			assert_null(alloc_pages(&a, o));
		/* Every other page back: plenty free, but no two are buddies. */
		qsort(v, n, sizeof(*v), cmp_ptr);
		for (size_t i = 0; i < n; i += 2)
			free_pages(&a, v[i], 0);
		assert_int_equal(mm_arena_free_pages(&a), (n + 1) / 2);
		assert_null(alloc_pages(&a, 1));
		assert_arena_valid(&a);
		for (size_t i = 1; i < n; i += 2)
			free_pages(&a, v[i], 0);
		/* All merged again: the largest block is back. */
		assert_int_equal(mm_arena_free_pages(&a), usable);
		p = alloc_pages(&a, (unsigned int)top);
		assert_non_null(p);
		free_pages(&a, p, (unsigned int)top);
	}
	assert_int_equal(a.diag.error_count, 0);
	assert_true(a.diag.oom_count >= 3 * (MM_MAX_ORDER + 2));
	assert_arena_valid(&a);
	assert_int_equal(mm_arena_destroy(&a), 0);
	test_static_fini(&ts);
}

/* ---- Several arenas --------------------------------------------------- */

static void test_multiple_arenas(void **state)
{
	static struct mm_arena a, b, c;
	struct test_static sa, sb;
	char *mc = map_pages(64);
	struct mm_arena *arenas[3] = { &a, &b, &c };
	void *v[3][64];
	size_t n[3] = { 0, 0, 0 };
	void *p;

	test_static_init(&sa, 64);
	test_static_init(&sb, 64);
	assert_int_equal(mm_arena_init(&a, "A", &sa.be.be, SIZE_MAX), 0);
	assert_int_equal(mm_arena_init(&b, "B", &sb.be.be, 0), 0);
	assert_int_equal(mm_arena_init(&c, "C", NULL, 0), 0);
	assert_int_equal(mm_arena_add_region(&c, mc, 64 * PS), 0);
	for (int i = 0; i < 3; i++)
		mm_arena_set_trim(arenas[i], 0, 0);

	/* Interleaved: each block comes from its own arena's memory. */
	for (int round = 0; round < 2000; round++) {
		int i = round % 3;

		if (round % 7 < 4 && n[i] < 64) {
			p = alloc_pages(arenas[i], 0);
			if (!p)
				continue;
			v[i][n[i]++] = p;
			assert_true(inside(p, PS, i == 0 ? sa.mem : i == 1 ? sb.mem : mc, 64 * PS));
			assert_int_equal(mm_page_order(arenas[i], p), 0);
			for (int j = 0; j < 3; j++)
				if (j != i)
					assert_int_equal(mm_page_order(arenas[j], p), -1);
		} else if (n[i]) {
			free_pages(arenas[i], v[i][--n[i]], 0);
		}
	}
	assert_true(n[0] && n[1] && n[2]);

	/* Freeing into the wrong arena is caught there, and only there. */
	expect_bug(&a, "free_pages", "does not belong to arena A",
		   free_pages(&a, v[1][0], 0));
	expect_bug(&b, "free_pages", "does not belong to arena B",
		   free_pages(&b, v[2][0], 0));
	assert_int_equal(b.diag.error_count, counted(1));
	assert_int_equal(c.diag.error_count, 0);

	/* Destroying an arena with pages in use refuses, and says so. */
	expect_bug(&c, "mm_arena_destroy", "still has",
		   assert_int_equal(mm_arena_destroy(&c), -1));

	for (int i = 0; i < 3; i++) {
		while (n[i])
			free_pages(arenas[i], v[i][--n[i]], 0);
		assert_arena_valid(arenas[i]);
		assert_int_equal(mm_arena_destroy(arenas[i]), 0);
	}
	assert_int_equal(sa.be.be.held, 0);
	assert_int_equal(sb.be.be.held, 0);
	test_static_fini(&sa);
	test_static_fini(&sb);
	munmap(mc, 64 * PS);
}

/* ---- Diagnostics and the validator ------------------------------------ */

static void test_diag(void **state)
{
	static struct mm_arena a;
	struct test_static ts;
	struct mm_diag d;
	void *p, *q;

	test_static_init(&ts, 64);
	assert_int_equal(mm_arena_init(&a, "diag", &ts.be.be, SIZE_MAX), 0);
	p = alloc_pages(&a, ORD(2));
	q = alloc_pages(&a, 0);
	mm_arena_diag(&a, &d);
	assert_int_equal(d.capacity, (64 - meta_pages_for(64)) * PS);
	assert_int_equal(d.allocated, (PS << ORD(2)) + PS);
	free_pages(&a, p, ORD(2));
	mm_arena_diag(&a, &d);
	assert_int_equal(d.allocated, PS);
	if (IS_ENABLED(CONFIG_MM_STATS))
		assert_int_equal(d.peak_allocated, (PS << ORD(2)) + PS);
	else
		assert_int_equal(d.peak_allocated, 0);
	free_pages(&a, q, 0);
	mm_arena_diag(&a, &d);
	assert_int_equal(d.allocated, 0);
	assert_int_equal(d.nr_regions, 1);
	assert_int_equal(d.error_count, 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
	test_static_fini(&ts);
}

#if IS_ENABLED(CONFIG_MM_VALIDATE)
/* mm_arena_validate() finds the damage, says what it is, and counts it. */
static void expect_invalid(struct mm_arena *a, const char *what)
{
	unsigned long e0 = a->diag.error_count;

	capture_start();
	misuse(assert_int_equal(mm_arena_validate(a), -1));
	check_report(a, e0, "BUG mm_arena_validate (mm): ", what);
}

static void test_validate_catches_corruption(void **state)
{
	static struct mm_region other;
	static struct mm_arena a;
	struct test_static ts;
	struct mm_region *r;
	void *p;
	uint8_t saved;

	test_static_init(&ts, 64);
	assert_int_equal(mm_arena_init(&a, "corrupt", &ts.be.be, SIZE_MAX), 0);
	p = alloc_pages(&a, ORD(3));
	r = a.regions;

	/* A head byte inside an allocated block. */
	saved = META(r, addr_to_pfn(p) + 1);
	META(r, addr_to_pfn(p) + 1) = 2 << 5;
	expect_invalid(&a, "BUG mm_arena_validate (mm): head byte inside a block (pfn 0x");
	assert_int_equal(a.diag.error_count, counted(1));
	META(r, addr_to_pfn(p) + 1) = saved;
	assert_arena_valid(&a);

	/* A counter that disagrees with the blocks. */
	a.nr_free++;
	expect_invalid(&a, "page counters disagree");
	a.nr_free--;

	/* A free_mask bit without a list. */
	a.free_mask ^= 1u << MM_MAX_ORDER;
	expect_invalid(&a, "free_mask disagrees");
	a.free_mask ^= 1u << MM_MAX_ORDER;

	/* A class byte on a page of p's, which is no kmalloc slab's. */
	if (IS_ENABLED(CONFIG_MM_PAGE_CLASS)) {
		uint8_t *cls = &META(r, addr_to_pfn(p) + min_t(size_t, 2, (1u << ORD(3)) - 1)) + 1;

		*cls = 6;
		expect_invalid(&a, "class byte disagrees with its block");
		*cls = 0;
	}

	/* kfree()'s shortcut pointing at a region that is not the newest. */
	a.first = &other;
	expect_invalid(&a, "first region is not the head of the list");
	a.first = a.regions;

	assert_arena_valid(&a);
	free_pages(&a, p, ORD(3));
	assert_int_equal(mm_arena_destroy(&a), 0);
	test_static_fini(&ts);
}
#endif

/* ---- The default arena ------------------------------------------------ */

static void test_default_arena(void **state)
{
	struct mm_arena *a = mm_default_arena();
	char *p, *q;

	assert_non_null(a);
	assert_ptr_equal(mm_default_arena(), a);
	assert_string_equal(a->name, "default");

	p = __get_free_pages(ORD(2));
	assert_non_null(p);
	assert_true(IS_ALIGNED((uintptr_t)p, PS << ORD(2)));
	assert_int_equal(mm_page_order(a, p), ORD(2));
	memset(p, 0, PS << ORD(2));
	q = __get_free_page();
	assert_non_null(q);
	assert_int_equal(mm_page_order(a, q), 0);
	assert_arena_valid(a);
	free_pages(a, p, ORD(2));
	free_page(q);
	assert_int_equal(mm_page_order(a, p), -1);
	assert_int_equal(mm_page_order(a, q), -1);
	{
		unsigned long e0 = a->diag.error_count;

		capture_start();
		misuse(assert_null(__get_free_pages(MM_MAX_ORDER + 1)));
		check_report(a, e0, "BUG alloc_pages", "above MM_MAX_ORDER");
	}
	assert_arena_valid(a);

#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC)
	/*
	 * The static array is the default arena's, whole, from the start,
	 * and on a host aligned so that every largest block of it is there
	 * -- where the loader honours the array's alignment: valgrind's
	 * places it on a page, and a block is cut in two.
	 */
	{
		size_t nmax = CONFIG_MM_STATIC_SIZE / MM_MAX_BLOCK;
		void *list = NULL, *blk;
		size_t n = 0;

		assert_int_equal(a->diag.nr_regions, 1);
		assert_int_equal(mm_default_backend()->held, CONFIG_MM_STATIC_SIZE);
		assert_true(nmax >= 2);
		struct mm_region *r = a->regions;
		uintptr_t lo = ALIGN((uintptr_t)r, MM_MAX_BLOCK);
		size_t nblk = (ALIGN_DOWN((uintptr_t)r + r->len, MM_MAX_BLOCK) - lo) / MM_MAX_BLOCK;
		size_t spoiled = 0;

		/* The array holds the region, its header first. */
		assert_int_equal(r->len, CONFIG_MM_STATIC_SIZE);
		assert_true(nblk >= nmax - 1);
		/*
		 * Every largest block but those that hold something: the
		 * first (the metadata), and those of the pages in use -- few
		 * with large blocks, but with the libc facade and small ones
		 * (MM_MAX_ORDER=4 of 4 KiB pages), the program's slabs, heap
		 * spans and thread caches spread over several.  Listed
		 * through their first words: thousands of them with
		 * MM_MAX_ORDER=1.
		 */
		while (n < nmax && (blk = alloc_pages(a, MM_MAX_ORDER)) != NULL) {
			((void **)blk)[0] = list;
			((void **)blk)[1] = &list;	/* ours: a thread's cache is a page block too */
			list = blk;
			n++;
		}
		for (size_t b = 0; b < nblk; b++) {
			uintptr_t pfn = addr_to_pfn((void *)(lo + b * MM_MAX_BLOCK));
			uintptr_t end = pfn + (1UL << MM_MAX_ORDER);

			/* Ours is the block's head; the header's pages have no metadata. */
			if (pfn < r->start_pfn) {
				spoiled++;
				continue;
			}
			if (meta_type(*page_meta(r, pfn)) == PT_PAGES &&
			    meta_order(*page_meta(r, pfn)) == MM_MAX_ORDER &&
			    ((void **)pfn_to_addr(pfn))[1] == &list)
				continue;
			/* Otherwise some block in it is allocated: free ones merged. */
			while (pfn < end) {
				uint8_t m = *page_meta(r, pfn);

				if (!meta_is_free(m) && meta_type(m) != PT_PCP) {
					spoiled++;
					break;
				}
				pfn += 1UL << meta_order(m);
			}
		}
		/* Aligned, the first block holds the header; cut, it may lie before lo. */
		assert_true(spoiled >= 1 || lo != (uintptr_t)r);
		assert_int_equal(n + spoiled, nblk);
		while (list) {
			blk = list;
			list = *(void **)blk;
			free_pages(a, blk, MM_MAX_ORDER);
		}
		assert_arena_valid(a);
	}
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_initial),
		cmocka_unit_test(test_init_failures),
		cmocka_unit_test(test_init_live_arena),
		cmocka_unit_test(test_add_region),
		cmocka_unit_test(test_add_region_overlapping),
		cmocka_unit_test(test_grow_static),
#if IS_ENABLED(CONFIG_MM_BACKEND_SBRK)
		cmocka_unit_test(test_grow_sbrk),
#endif
#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP)
		cmocka_unit_test(test_grow_mmap),
#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
		cmocka_unit_test(test_prefer_resident),
#endif
#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_FOOTPRINT_CAP)
#if MM_MAX_ORDER >= FP_ORDER + 1 && FP_ORDER >= 1	/* 512 KiB blocks, holes of 2+ pages */
		cmocka_unit_test(test_footprint_cap),
#endif
#if MM_MAX_ORDER >= 6 && MM_MAX_ORDER <= 11
		cmocka_unit_test(test_footprint_no_pingpong),
#endif
#endif
#endif
#if IS_ENABLED(CONFIG_MM_TRIM)
		cmocka_unit_test(test_trim_tail),
		cmocka_unit_test(test_trim_refused),
		cmocka_unit_test(test_regrow_in_place),
		cmocka_unit_test(test_trim_thresholds_follow_peak),
		cmocka_unit_test(test_auto_trim_hysteresis),
		cmocka_unit_test(test_auto_trim_after_bottom_up_frees),
#endif
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_oom_hook),
		cmocka_unit_test(test_exhaustion_recovery),
		cmocka_unit_test(test_multiple_arenas),
		cmocka_unit_test(test_diag),
#if IS_ENABLED(CONFIG_MM_VALIDATE)
		cmocka_unit_test(test_validate_catches_corruption),
#endif
		cmocka_unit_test(test_default_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
