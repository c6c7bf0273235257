// SPDX-License-Identifier: MIT
/*
 * mm/backend-sbrk.c: the program break.  The tests move the break
 * themselves with sbrk() to play "someone else" (an older malloc, a
 * runtime), and put it back where it was before they end: nothing between
 * two sbrk() calls of a test allocates, so the break is the test's alone.
 */
#include <errno.h>
#include <unistd.h>
#include "helpers.h"

#define PS MM_PAGE_SIZE

static uintptr_t brk_now(void)
{
	return (uintptr_t)sbrk(0);
}

/* Put the break back at 'where' (below or above the current one). */
static void brk_restore(uintptr_t where)
{
	assert_true(sbrk((intptr_t)(where - brk_now())) != (void *)-1);
	assert_int_equal(brk_now(), where);
}

static void test_grow_min_want(void **state)
{
	struct mm_backend_sbrk s;
	uintptr_t brk0 = brk_now();
	size_t got;
	char *p, *q;

	mm_backend_sbrk_init(&s);
	assert_string_equal(s.be.name, "sbrk");
	assert_null(s.be.discard);

	/* An unaligned break: the region starts at the next page. */
	if (IS_ALIGNED(brk0, PS))
		assert_true(sbrk(100) != (void *)-1);
	p = mm_backend_grow(&s.be, PS, 4 * PS, &got);
	assert_non_null(p);
	assert_true(IS_ALIGNED((uintptr_t)p, PS));
	assert_true((uintptr_t)p > brk0 && (uintptr_t)p - brk0 <= PS);
	assert_int_equal(got, 4 * PS);
	assert_int_equal(brk_now(), (uintptr_t)p + 4 * PS);
	assert_int_equal(s.last_end, (uintptr_t)p + 4 * PS);
	assert_int_equal(s.be.held, 4 * PS);
	assert_int_equal(s.nr_foreign, 0);
	memset(p, 0x3c, got);

	/* want below min: min; right after the last one, nothing foreign. */
	q = mm_backend_grow(&s.be, 2 * PS, PS, &got);
	assert_ptr_equal(q, p + 4 * PS);
	assert_int_equal(got, 2 * PS);
	/* want not a page multiple: rounded down. */
	q = mm_backend_grow(&s.be, PS, 3 * PS - 1, &got);
	assert_ptr_equal(q, p + 6 * PS);
	assert_int_equal(got, 2 * PS);
	assert_int_equal(s.nr_foreign, 0);
	assert_int_equal(s.be.nr_grow, 3);
	assert_int_equal(s.be.held, 8 * PS);

	/* Give back top down: each lowers the break. */
	assert_int_equal(mm_backend_release(&s.be, q, 2 * PS), 0);
	assert_int_equal(brk_now(), (uintptr_t)q);
	assert_int_equal(mm_backend_release(&s.be, p + PS, 5 * PS), 0);	/* a tail */
	assert_int_equal(brk_now(), (uintptr_t)p + PS);
	assert_int_equal(mm_backend_release(&s.be, p, PS), 0);
	assert_int_equal(brk_now(), (uintptr_t)p);
	assert_int_equal(s.be.held, 0);
	assert_int_equal(s.be.nr_release, 3);
	assert_int_equal(s.be.nr_fail, 0);
	brk_restore(brk0);
}

static void test_want_too_much_falls_back_to_min(void **state)
{
	struct mm_backend_sbrk s;
	uintptr_t brk0 = brk_now();
	size_t got;
	char *p;

	mm_backend_sbrk_init(&s);
	/* "All you have" is not something the break can answer: min. */
	p = mm_backend_grow(&s.be, 2 * PS, SIZE_MAX, &got);
	assert_non_null(p);
	assert_int_equal(got, 2 * PS);
	/* A want the kernel refuses (64 TiB): min again, errno as it was. */
	errno = 4242;
	p = mm_backend_grow(&s.be, PS, (size_t)1 << 46, &got);
	assert_non_null(p);
	assert_int_equal(errno, 4242);
	assert_int_equal(got, PS);
	assert_int_equal(brk_now(), (uintptr_t)p + PS);
	assert_int_equal(s.be.nr_fail, 0);
	assert_int_equal(mm_backend_release(&s.be, p, PS), 0);
	assert_int_equal(mm_backend_release(&s.be, p - 2 * PS, 2 * PS), 0);
	assert_int_equal(s.be.held, 0);
	brk_restore(brk0);
}

static void test_bad_requests(void **state)
{
	struct mm_backend_sbrk s;
	const size_t bad_min[] = {
		0, 1, PS - 1, PS + 1, SIZE_MAX / 2 + 1, SIZE_MAX & MM_PAGE_MASK, SIZE_MAX,
	};
	uintptr_t brk0 = brk_now();
	size_t got;

	mm_backend_sbrk_init(&s);
	for (size_t i = 0; i < ARRAY_SIZE(bad_min); i++) {
		got = 7;
		assert_null(mm_backend_grow(&s.be, bad_min[i], SIZE_MAX, &got));
		assert_int_equal(got, 0);
		assert_null(mm_backend_grow(&s.be, bad_min[i], bad_min[i], &got));
	}
	/* Well formed, but more than the kernel will give: 64 TiB, 2^62. */
	assert_null(mm_backend_grow(&s.be, (size_t)1 << 46, SIZE_MAX, &got));
	assert_null(mm_backend_grow(&s.be, (size_t)1 << 62, (size_t)1 << 62, &got));
	assert_int_equal(s.be.nr_fail, 2 * ARRAY_SIZE(bad_min) + 2);
	assert_int_equal(s.be.nr_grow, 0);
	assert_int_equal(s.be.held, 0);
	/* Nothing moved the break. */
	assert_int_equal(brk_now(), brk0);
	/* Releases of nothing held, or of nonsense. */
	assert_int_equal(mm_backend_release(&s.be, (void *)ALIGN(brk0, PS), PS), -1);
	assert_int_equal(mm_backend_release(&s.be, (void *)brk0, 0), -1);
	assert_int_equal(brk_now(), brk0);
}

static void test_release_refused_above_us(void **state)
{
	struct mm_backend_sbrk s;
	uintptr_t brk0 = brk_now();
	size_t got;
	char *p;

	mm_backend_sbrk_init(&s);
	p = mm_backend_grow(&s.be, 2 * PS, 2 * PS, &got);
	assert_non_null(p);
	/* Someone takes memory above ours: ours is pinned. */
	assert_ptr_equal(sbrk(PS), p + 2 * PS);
	assert_int_equal(mm_backend_release(&s.be, p, 2 * PS), -1);
	assert_int_equal(mm_backend_release(&s.be, p + PS, PS), -1);
	assert_int_equal(s.be.nr_fail, 2);
	assert_int_equal(s.be.held, 2 * PS);
	assert_int_equal(brk_now(), (uintptr_t)p + 3 * PS);
	/* Not below the break either. */
	assert_int_equal(mm_backend_release(&s.be, p, PS), -1);

	/* They give theirs back: ours can go. */
	assert_true(sbrk(-(intptr_t)PS) != (void *)-1);
	assert_int_equal(mm_backend_release(&s.be, p + PS, PS), 0);
	assert_int_equal(mm_backend_release(&s.be, p, PS), 0);
	assert_int_equal(brk_now(), (uintptr_t)p);
	assert_int_equal(s.be.held, 0);
	brk_restore(brk0);
}

static void test_foreign_break_move(void **state)
{
	struct mm_backend_sbrk s;
	uintptr_t brk0 = brk_now(), foreign;
	size_t got;
	char *p, *q;

	mm_backend_sbrk_init(&s);
	p = mm_backend_grow(&s.be, PS, PS, &got);
	assert_non_null(p);
	/* Someone else moves the break, to an unaligned place. */
	foreign = brk_now();
	assert_true(sbrk(100) != (void *)-1);
	q = mm_backend_grow(&s.be, PS, PS, &got);
	assert_non_null(q);
	assert_int_equal(s.nr_foreign, 1);
	/* A new region past the foreign bytes, aligned, not touching ours. */
	assert_true(IS_ALIGNED((uintptr_t)q, PS));
	assert_true((uintptr_t)q >= foreign + 100);
	assert_int_equal(brk_now(), (uintptr_t)q + PS);
	/* Back to back again: not foreign. */
	q = mm_backend_grow(&s.be, PS, PS, &got);
	assert_int_equal(s.nr_foreign, 1);

	assert_int_equal(mm_backend_release(&s.be, q, PS), 0);
	assert_int_equal(mm_backend_release(&s.be, q - PS, PS), 0);
	/* p is pinned by the foreign bytes until they go. */
	assert_int_equal(mm_backend_release(&s.be, p, PS), -1);
	brk_restore(foreign);
	assert_int_equal(mm_backend_release(&s.be, p, PS), 0);
	assert_int_equal(s.be.held, 0);
	brk_restore(brk0);
}

/*
 * An arena on the break: grows when dry, sees someone else's move as a new
 * region, and trims back as far as it may.
 */
static void test_arena_on_sbrk(void **state)
{
	static struct mm_arena a;
	static void *blocks[1024];
	struct mm_backend_sbrk s;
	uintptr_t brk0 = brk_now(), a_end, foreign;
	struct mm_region *ra, *rb;
	unsigned int order = 0;
	size_t n = 0;
	struct mm_diag d;
	void *p;

	mm_backend_sbrk_init(&s);
	assert_int_equal(mm_arena_init(&a, "brk", &s.be, 0), 0);
	mm_arena_set_trim(&a, 0, 0);
	p = alloc_pages(&a, 0);
	assert_non_null(p);
	ra = a.regions;
	a_end = (uintptr_t)ra + ra->len;
	assert_int_equal(brk_now(), a_end);
	assert_true((uintptr_t)p >= (uintptr_t)ra && (uintptr_t)p < a_end);

	/* Someone else's bytes, then more than the first region holds. */
	foreign = brk_now();
	assert_true(sbrk(100) != (void *)-1);
	while (order < MM_MAX_ORDER && ((size_t)1 << order) < ra->len / PS)
		order++;
	while (a.diag.nr_regions == 1) {
		assert_true(n < ARRAY_SIZE(blocks));
		blocks[n] = alloc_pages(&a, order);
		assert_non_null(blocks[n]);
		assert_true(IS_ALIGNED((uintptr_t)blocks[n], PS << order));
		n++;
	}
	mm_arena_diag(&a, &d);
	assert_int_equal(d.nr_regions, 2);
	assert_int_equal(s.nr_foreign, 1);
	rb = a.regions;
	assert_true(rb != ra);
	/* The new memory is a region of its own, past the foreign bytes. */
	assert_true((uintptr_t)rb >= foreign + 100);
	assert_int_equal(brk_now(), (uintptr_t)rb + rb->len);
	assert_true((uintptr_t)blocks[n - 1] > (uintptr_t)rb &&
		    (uintptr_t)blocks[n - 1] < (uintptr_t)rb + rb->len);
	assert_arena_valid(&a);

	while (n)
		free_pages(&a, blocks[--n], order);
	free_pages(&a, p, 0);
	/* The upper region goes; the lower one is pinned by the foreign bytes. */
	if (trim_keeps_all(&a, &s.be))
		goto out;
	mm_arena_trim(&a, 0);
	assert_true(s.be.nr_fail >= 1);
	assert_int_equal(mm_arena_free_pages(&a), a.nr_pages);
	assert_true(a.regions == ra || a.regions->next == ra);
	assert_arena_valid(&a);
	if (IS_ENABLED(CONFIG_MM_LOCK_NONE)) {	/* headers go (see trim.c) */
		assert_ptr_equal(a.regions, ra);
		assert_null(ra->next);
		assert_int_equal(s.be.held, ra->len);
		assert_int_equal(brk_now(), ALIGN(foreign + 100, PS));
		/* The foreign bytes go: now the first region can go too. */
		brk_restore(foreign);
		mm_arena_trim(&a, 0);
		assert_int_equal(s.be.held, 0);
		assert_int_equal(brk_now(), (uintptr_t)ra);
	}
out:
	assert_int_equal(a.diag.error_count, 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
	brk_restore(brk0);
}

/* grow_at: exactly the pages at the break, and nowhere else. */
static void test_grow_at(void **state)
{
	struct mm_backend_sbrk s;
	uintptr_t brk0 = brk_now();
	size_t got;
	char *p;

	mm_backend_sbrk_init(&s);
	p = mm_backend_grow(&s.be, 2 * PS, 2 * PS, &got);
	assert_non_null(p);
	assert_int_equal(mm_backend_grow_at(&s.be, p + got, 3 * PS), 0);
	assert_int_equal(brk_now(), (uintptr_t)p + got + 3 * PS);
	assert_int_equal(s.be.held, got + 3 * PS);
	memset(p, 1, got + 3 * PS);
	/* Not at the break: refused, nothing moved. */
	assert_int_equal(mm_backend_grow_at(&s.be, p, PS), -1);
	assert_int_equal(mm_backend_grow_at(&s.be, p + got + 4 * PS, PS), -1);
	assert_int_equal(brk_now(), (uintptr_t)p + got + 3 * PS);
	/* Someone else moved the break past our end: refused. */
	assert_true(sbrk(PS) != (void *)-1);
	assert_int_equal(mm_backend_grow_at(&s.be, p + got + 3 * PS, PS), -1);
	assert_int_equal(s.be.held, got + 3 * PS);
	brk_restore(brk0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_min_want),
		cmocka_unit_test(test_want_too_much_falls_back_to_min),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_release_refused_above_us),
		cmocka_unit_test(test_foreign_break_move),
		cmocka_unit_test(test_arena_on_sbrk),
		cmocka_unit_test(test_grow_at),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
