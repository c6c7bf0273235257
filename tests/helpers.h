/* SPDX-License-Identifier: MIT */
/*
 * What every unit test shares: CMocka, a capture of mm's output hook so a
 * test can assert what a report said, and a few checks that recur.
 */
#ifndef MM_TEST_HELPERS_H
#define MM_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <mm/mm.h>

/* Start capturing everything mm prints (reports, errors) into a buffer. */
void capture_start(void);
/* Stop; returns the captured text (valid until the next capture_start). */
const char *capture_stop(void);
/* The text captured so far, without stopping. */
const char *capture_text(void);
/* 1 if the captured text contains s. */
int captured(const char *s);

/* Static backend over a heap-allocated, page-aligned buffer of 'pages' pages. */
struct test_static {
	struct mm_backend_static be;
	void *mem;
	size_t size;
};
void test_static_init(struct test_static *t, size_t pages);
void test_static_fini(struct test_static *t);

/* Assert the arena passes mm_arena_validate(). */
#define assert_arena_valid(a) assert_int_equal(mm_arena_validate(a), 0)

#endif
