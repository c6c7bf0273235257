// SPDX-License-Identifier: MIT
/*
 * mm/backend-static.c and the checks of mm/backend.c every backend gets:
 * growth, give-back, exhaustion, bad requests, alignment, and an arena on a
 * static array growing when dry and trimming back.
 */
#include <sys/mman.h>
#include "helpers.h"

#define PS MM_PAGE_SIZE

/* Pages aligned to MM_PAGE_SIZE (which may exceed the MMU's); munmap() them. */
static void *map_pages(size_t pages)
{
	struct test_static t;

	test_static_init(&t, pages);
	return t.mem;
}

static void test_init_trims_to_pages(void **state)
{
	struct mm_backend_static s;
	char *mem = map_pages(8);

	/* An unaligned range is trimmed inward on both sides. */
	assert_int_equal(mm_backend_static_init(&s, mem + 1, 8 * PS - 2), 0);
	assert_int_equal(s.base, (uintptr_t)mem + PS);
	assert_int_equal(s.top, s.base);
	assert_int_equal(s.end, (uintptr_t)mem + 7 * PS);
	assert_string_equal(s.be.name, "static");
	assert_int_equal(s.be.held, 0);
	assert_null(s.be.discard);

	/* Exactly one page is enough; less than one after trimming is not. */
	assert_int_equal(mm_backend_static_init(&s, mem, PS), 0);
	assert_int_equal(s.end - s.base, PS);
	assert_int_equal(mm_backend_static_init(&s, mem + 1, PS), -1);
	assert_int_equal(mm_backend_static_init(&s, mem, PS - 1), -1);
	assert_int_equal(mm_backend_static_init(&s, mem, 0), -1);
	assert_int_equal(mm_backend_static_init(&s, NULL, 0), -1);
	/* A range that wraps around the address space. */
	assert_int_equal(mm_backend_static_init(&s, (void *)(UINTPTR_MAX - PS), 4 * PS), -1);
	/* Even a failed init leaves a backend that refuses politely. */
	size_t got = 1;
	assert_null(mm_backend_grow(&s.be, PS, PS, &got));
	assert_int_equal(got, 0);
	munmap(mem, 8 * PS);
}

static void test_grow_min_want(void **state)
{
	struct test_static ts;
	struct mm_backend *be = &ts.be.be;
	size_t got;
	char *p, *q, *r;

	test_static_init(&ts, 16);

	/* want pages when there are that many. */
	p = mm_backend_grow(be, PS, 3 * PS, &got);
	assert_ptr_equal(p, ts.mem);
	assert_int_equal(got, 3 * PS);
	assert_int_equal(be->held, 3 * PS);
	assert_int_equal(be->nr_grow, 1);
	memset(p, 1, got);

	/* want below min: min. */
	q = mm_backend_grow(be, 2 * PS, 0, &got);
	assert_ptr_equal(q, p + 3 * PS);
	assert_int_equal(got, 2 * PS);

	/* want not a page multiple: rounded down, never below min. */
	r = mm_backend_grow(be, PS, 2 * PS + 100, &got);
	assert_ptr_equal(r, q + 2 * PS);
	assert_int_equal(got, 2 * PS);
	r = mm_backend_grow(be, PS, PS + 1, &got);
	assert_int_equal(got, PS);

	/* More than is left: what is left, as long as min fits. */
	r = mm_backend_grow(be, PS, 100 * PS, &got);
	assert_non_null(r);
	assert_int_equal(got, 8 * PS);
	assert_int_equal(be->held, 16 * PS);
	assert_int_equal(ts.be.top, ts.be.end);
	assert_int_equal(be->nr_grow, 5);
	assert_int_equal(be->nr_fail, 0);
	test_static_fini(&ts);
}

static void test_grow_all(void **state)
{
	struct test_static ts;
	size_t got;
	char *p;

	test_static_init(&ts, 32);
	p = mm_backend_grow(&ts.be.be, 5 * PS, 5 * PS, &got);
	assert_non_null(p);
	/* SIZE_MAX: "all you have". */
	p = mm_backend_grow(&ts.be.be, PS, SIZE_MAX, &got);
	assert_ptr_equal(p, (char *)ts.mem + 5 * PS);
	assert_int_equal(got, 27 * PS);
	assert_int_equal(ts.be.be.held, 32 * PS);
	/* Every byte of it is ours to use. */
	memset(p, 0xa5, got);
	test_static_fini(&ts);
}

static void test_exhaustion(void **state)
{
	struct test_static ts;
	size_t got;

	test_static_init(&ts, 4);
	assert_non_null(mm_backend_grow(&ts.be.be, 3 * PS, 3 * PS, &got));
	/* More than is left: NULL, nothing moves, counted. */
	got = 12345;
	assert_null(mm_backend_grow(&ts.be.be, 2 * PS, 2 * PS, &got));
	assert_int_equal(got, 0);
	assert_int_equal(ts.be.be.nr_fail, 1);
	assert_int_equal(ts.be.be.held, 3 * PS);
	/* The last page still comes. */
	assert_non_null(mm_backend_grow(&ts.be.be, PS, SIZE_MAX, &got));
	assert_int_equal(got, PS);
	/* Then nothing, even for "all you have". */
	assert_null(mm_backend_grow(&ts.be.be, PS, SIZE_MAX, &got));
	assert_null(mm_backend_grow(&ts.be.be, PS, PS, &got));
	assert_int_equal(ts.be.be.nr_fail, 3);
	assert_int_equal(ts.be.be.nr_grow, 2);
	assert_int_equal(ts.be.top, ts.be.end);
	test_static_fini(&ts);
}

static void test_bad_requests(void **state)
{
	struct test_static ts;
	const size_t bad_min[] = {
		0, 1, PS - 1, PS + 1, PS / 2 * 3, SIZE_MAX / 2 + 1,
		(SIZE_MAX / 2 + 1) & MM_PAGE_MASK, SIZE_MAX & MM_PAGE_MASK, SIZE_MAX,
	};
	size_t got;

	test_static_init(&ts, 8);
	for (size_t i = 0; i < ARRAY_SIZE(bad_min); i++) {
		got = 7;
		assert_null(mm_backend_grow(&ts.be.be, bad_min[i], SIZE_MAX, &got));
		assert_int_equal(got, 0);
		assert_null(mm_backend_grow(&ts.be.be, bad_min[i], bad_min[i], &got));
		assert_null(mm_backend_grow(&ts.be.be, bad_min[i], 0, &got));
	}
	/* A sane but impossible size (more than the array). */
	assert_null(mm_backend_grow(&ts.be.be, 1024 * PS, SIZE_MAX, &got));
	assert_int_equal(ts.be.be.nr_fail, 3 * ARRAY_SIZE(bad_min) + 1);
	assert_int_equal(ts.be.be.nr_grow, 0);
	assert_int_equal(ts.be.be.held, 0);
	assert_int_equal(ts.be.top, ts.be.base);
	/* And it still works afterwards. */
	assert_ptr_equal(mm_backend_grow(&ts.be.be, PS, SIZE_MAX, &got), ts.mem);
	assert_int_equal(got, 8 * PS);
	test_static_fini(&ts);
}

static void test_release(void **state)
{
	struct test_static ts;
	struct mm_backend *be = &ts.be.be;
	char *a, *b;
	size_t got;

	test_static_init(&ts, 16);
	a = mm_backend_grow(be, 4 * PS, 4 * PS, &got);
	b = mm_backend_grow(be, 8 * PS, 8 * PS, &got);
	assert_int_equal(be->held, 12 * PS);

	/* Only the top can go back: a is below b. */
	assert_int_equal(mm_backend_release(be, a, 4 * PS), -1);
	assert_int_equal(mm_backend_release(be, a + 2 * PS, 2 * PS), -1);
	assert_int_equal(be->nr_fail, 2);
	/* Bad arguments: zero, unaligned, more than is held. */
	assert_int_equal(mm_backend_release(be, b, 0), -1);
	assert_int_equal(mm_backend_release(be, b + 1, 8 * PS - 1), -1);
	assert_int_equal(mm_backend_release(be, b, 8 * PS + 1), -1);
	assert_int_equal(mm_backend_release(be, b + 8 * PS - 100 * PS, 100 * PS), -1);
	assert_int_equal(mm_backend_release(be, a - PS, 13 * PS), -1);
	assert_int_equal(be->nr_fail, 7);
	assert_int_equal(be->held, 12 * PS);
	assert_int_equal(be->nr_release, 0);
	assert_int_equal(ts.be.top, (uintptr_t)b + 8 * PS);

	/* The tail of b... */
	assert_int_equal(mm_backend_release(be, b + 6 * PS, 2 * PS), 0);
	assert_int_equal(be->held, 10 * PS);
	assert_int_equal(ts.be.top, (uintptr_t)b + 6 * PS);
	/* ...then the rest of b, then a: both now at the top. */
	assert_int_equal(mm_backend_release(be, b, 6 * PS), 0);
	assert_int_equal(mm_backend_release(be, a, 4 * PS), 0);
	assert_int_equal(be->held, 0);
	assert_int_equal(be->nr_release, 3);
	assert_int_equal(ts.be.top, ts.be.base);

	/* What went back comes out again. */
	assert_ptr_equal(mm_backend_grow(be, 16 * PS, 16 * PS, &got), a);
	/* No discard; sync is a no-op. */
	assert_int_equal(mm_backend_discard(be, a, PS), -1);
	assert_int_equal(mm_backend_sync(be, a, PS), 0);
	test_static_fini(&ts);
}

/* ---- The wrapper guards against a broken backend ---------------------- */

static char *bad_mem;
static size_t bad_got;

static void *bad_grow(struct mm_backend *be, size_t min, size_t want, size_t *got)
{
	*got = bad_got;
	return bad_mem;
}

/*
 * A grow that breaks the contract: refused with NULL and nothing got,
 * reported (no arena counts it) and counted as the backend's failure.
 */
static void expect_rejected(struct mm_backend *be, size_t min, const char *text)
{
	unsigned long fails = be->nr_fail;
	size_t got = 1;

	capture_start();
	misuse(assert_null(mm_backend_grow(be, min, min, &got));
	       assert_int_equal(got, 0));
	capture_stop();
	assert_reported(NULL, 0, 1);
	assert_report_says("BUG broken (mm): ");
	assert_report_says(text);
	assert_int_equal(be->nr_fail, fails + counted(1));
}

static void test_wrapper_rejects_broken_backend(void **state)
{
	struct mm_backend be = { .name = "broken", .grow = bad_grow };
	char *mem = map_pages(4);

	/* Not page aligned. */
	bad_mem = mem + 8;
	bad_got = 2 * PS;
	expect_rejected(&be, PS, "not page-aligned or short");
	/* Short of min. */
	bad_mem = mem;
	bad_got = PS;
	expect_rejected(&be, 2 * PS, "not page-aligned or short");
	/* Not a page multiple. */
	bad_got = 2 * PS + 1;
	expect_rejected(&be, 2 * PS, "not page-aligned or short");
	assert_int_equal(be.nr_fail, counted(3));
	assert_int_equal(be.held, 0);
	/* Nothing to release with. */
	assert_int_equal(mm_backend_release(&be, mem, PS), -1);
	assert_int_equal(be.nr_fail, counted(3) + 1);
	munmap(mem, 4 * PS);
}

/* ---- An arena on a static array --------------------------------------- */

static void test_arena_grows_and_trims(void **state)
{
	static struct mm_arena a;
	const size_t pages = 512;
	const unsigned int o = MM_MAX_ORDER < 4 ? MM_MAX_ORDER : 4;
	struct test_static ts;
	uintptr_t lo, hi;
	size_t got_pages;
	void *p, *q;

	test_static_init(&ts, pages);
	lo = ts.be.base;
	hi = ts.be.end;
	assert_int_equal(mm_arena_init(&a, "static", &ts.be.be, 0), 0);
	mm_arena_set_trim(&a, 0, 0);
	assert_int_equal(ts.be.be.held, 0);

	p = alloc_pages(&a, 0);
	assert_non_null(p);
	assert_true((uintptr_t)p >= lo && (uintptr_t)p < hi);
	assert_int_equal(a.diag.nr_grow, 1);
	got_pages = ts.be.be.held / PS;
	assert_true(got_pages >= 4);

	/* A larger block: from that region, or from a second one. */
	q = alloc_pages(&a, o);
	assert_non_null(q);
	assert_true(IS_ALIGNED((uintptr_t)q, PS << o));
	assert_true((uintptr_t)q >= lo && (uintptr_t)q + (PS << o) <= hi);
	assert_int_equal(mm_page_order(&a, q), (int)o);
	assert_arena_valid(&a);

	free_pages(&a, q, o);
	free_pages(&a, p, 0);
	if (trim_keeps_all(&a, &ts.be.be))
		goto destroy;
	assert_true(mm_arena_trim(&a, 0) > 0);
	if (IS_ENABLED(CONFIG_MM_LOCK_NONE)) {	/* headers go (see trim.c) */
		/* Newest first, each at the top by then: all of it. */
		assert_int_equal(mm_arena_free_pages(&a), 0);
		assert_int_equal(ts.be.be.held, 0);
		assert_int_equal(ts.be.top, lo);
	} else {
		/* The newest region's header stays, at the top (see arena.c). */
		assert_int_equal(mm_region_end(a.regions), a.regions->start_pfn);
		assert_int_equal(ts.be.top, (uintptr_t)a.regions + a.regions->len);
	}
destroy:
	assert_int_equal(mm_arena_destroy(&a), 0);
	assert_int_equal(ts.be.be.held, 0);
	assert_int_equal(ts.be.top, lo);

	/*
	 * initial = SIZE_MAX takes it all at once; exhaustion then is final.
	 * No automatic give-back: 512 pages of 32 KiB and up pass its
	 * threshold (CONFIG_MM_TRIM_THRESHOLD_KB), and a free would trim.
	 */
	static struct mm_arena b;
	assert_int_equal(mm_arena_init(&b, "all", &ts.be.be, SIZE_MAX), 0);
	mm_arena_set_trim(&b, 0, 0);
	assert_int_equal(ts.be.be.held, pages * PS);
	p = alloc_pages(&b, MM_MAX_ORDER);
	if (pages < (2u << MM_MAX_ORDER)) {
		/* Cannot be sure of an aligned one; if not, it fails cleanly. */
		if (!p)
			assert_int_equal(b.diag.oom_count, 1);
	} else {
		assert_non_null(p);
	}
	if (p)
		free_pages(&b, p, MM_MAX_ORDER);
	assert_int_equal(ts.be.be.held, pages * PS);
	assert_int_equal(mm_arena_destroy(&b), 0);
	assert_int_equal(ts.be.be.held, 0);
	test_static_fini(&ts);
}

/* grow_at: the pages at the top, while the array has them. */
static void test_grow_at(void **state)
{
	struct test_static t;
	size_t got;
	char *p;

	test_static_init(&t, 8);
	p = mm_backend_grow(&t.be.be, 2 * PS, 2 * PS, &got);
	assert_non_null(p);
	assert_int_equal(mm_backend_grow_at(&t.be.be, p + got, 3 * PS), 0);
	assert_int_equal(t.be.top, (uintptr_t)p + 5 * PS);
	assert_int_equal(mm_backend_grow_at(&t.be.be, p, PS), -1);		/* not the top */
	assert_int_equal(mm_backend_grow_at(&t.be.be, p + 5 * PS, 4 * PS), -1);	/* too much */
	assert_int_equal(mm_backend_grow_at(&t.be.be, p + 5 * PS, 100), -1);	/* not pages */
	assert_int_equal(mm_backend_grow_at(&t.be.be, p + 5 * PS, 3 * PS), 0);	/* the rest */
	assert_int_equal(t.be.be.held, 8 * PS);
	assert_int_equal(t.be.be.nr_fail, 3);
	test_static_fini(&t);
}

/*
 * mm_backend_zero() where the backend has no zero() of its own -- a static
 * array -- or there is no backend at all (a region the application added
 * with mm_arena_add_region(), which kzalloc() of a large block in it
 * asks about): the pages are cleared in place.
 */
static void test_zero_without_a_backend_op(void **state)
{
	struct mm_backend_static s;
	unsigned char *mem = map_pages(8);
	unsigned char *p;
	size_t got;

	assert_int_equal(mm_backend_static_init(&s, mem, 8 * PS), 0);
	assert_null(s.be.zero);
	p = mm_backend_grow(&s.be, 4 * PS, 4 * PS, &got);
	assert_non_null(p);
	memset(p, 0xc3, 4 * PS);
	mm_backend_zero(&s.be, p, 4 * PS);
	for (size_t i = 0; i < 4 * PS; i++)
		assert_int_equal(p[i], 0);
	memset(mem, 0x3c, 8 * PS);
	mm_backend_zero(NULL, mem + PS, 2 * PS);
	for (size_t i = 0; i < 8 * PS; i++)
		assert_int_equal(mem[i], i < PS || i >= 3 * PS ? 0x3c : 0);
	munmap(mem, 8 * PS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_trims_to_pages),
		cmocka_unit_test(test_grow_min_want),
		cmocka_unit_test(test_grow_all),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_wrapper_rejects_broken_backend),
		cmocka_unit_test(test_arena_grows_and_trims),
		cmocka_unit_test(test_grow_at),
		cmocka_unit_test(test_zero_without_a_backend_op),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
