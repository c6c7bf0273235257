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

/*
 * The tests take blocks of the largest order from the default arena, two
 * or more at a time (every order at once, in test_tiny).  A static array
 * of four blocks' bytes holds three aligned ones after its metadata page:
 * host_static's and host_tiny's 16 MiB at 4 KiB pages.  Pages of 64 KiB
 * make the block 64 MiB; the allocator runs on a smaller array, but these
 * tests cannot.
 */
#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC) && !IS_ENABLED(CONFIG_MM_STATIC_LINKER_REGION)
static_assert(CONFIG_MM_STATIC_SIZE >= 4 * MM_MAX_BLOCK,
	      "the tests need CONFIG_MM_STATIC_SIZE of four largest blocks at least "
	      "(MM_PAGE_SIZE << MM_MAX_ORDER): raise it or lower CONFIG_MM_MAX_ORDER");
#endif

/*
 * Past the largest block only a direct mapping serves a request: the full
 * core with the mmap backend.  The tiny core, or a static arena alone,
 * refuses it -- with MM_MAX_ORDER of 1 to 4 that is 8 to 64 KiB.
 */
#define PAST_BLOCK_OK	(IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && !IS_ENABLED(CONFIG_MM_TINY))

/*
 * A size of the tests' random mixes that the default arena can serve: n,
 * or where it cannot, a size in the upper half of the largest block.
 */
static inline size_t served_size(size_t n)
{
	return n <= MM_MAX_BLOCK || PAST_BLOCK_OK ? n : MM_MAX_BLOCK / 2 + n % (MM_MAX_BLOCK / 2);
}

/* Start capturing everything mm prints (reports, errors) into a buffer. */
void capture_start(void);
/* Stop; returns the captured text (valid until the next capture_start). */
const char *capture_stop(void);
/* The text captured so far, without stopping. */
const char *capture_text(void);
/* 1 if the captured text contains s. */
int captured(const char *s);

/*
 * Misuse -- a bad free, a heap found corrupt -- is reported, counted in the
 * arena's diag.error_count and ignored; with CONFIG_MM_PANIC_ON_ERROR the
 * report is followed by mm_panic(), abort() on hosts.  misuse(call) runs
 * 'call' so that a test sees either: here, or with that option in a child
 * process that must die of SIGABRT, after exactly one report (when reports
 * are built) that the panic ends, which this process's capture then holds.
 * This process goes on as if mm had ignored the call either way, which is
 * what the tests check next.
 */
#define misuse(call)								\
	do {									\
		if (misuse_here()) {						\
			call;							\
			misuse_end();						\
		}								\
	} while (0)

/* Run 'call' in a child process that must die of SIGABRT. */
#define expect_stop(call)							\
	do {									\
		if (stop_fork() == 0) {						\
			call;							\
			stop_missed();						\
		}								\
	} while (0)

/*
 * fork(): 0 in the child; the parent waits for it and asserts it died of
 * SIGABRT, what it printed in the capture.  misuse_fork() asserts that to
 * be one report, ended by the panic, too.
 */
int stop_fork(void);
int misuse_fork(void);
/* In the child: the call returned; the parent fails the test. */
void stop_missed(void) __attribute__((noreturn));

static inline int misuse_here(void)
{
	return !IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR) || misuse_fork() == 0;
}

static inline void misuse_end(void)
{
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR))
		stop_missed();
}

/* What n misuses add to an error_count here: nothing where children stopped. */
static inline unsigned long counted(unsigned long n)
{
	return IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR) ? 0 : n;
}

/*
 * Assert n misuses since capture_start(): counted in a's error_count since
 * errors_before (a is NULL for what no arena counts: a backend's), or under
 * CONFIG_MM_PANIC_ON_ERROR n children stopped.
 */
void assert_reported(struct mm_arena *a, unsigned long errors_before, unsigned int n);

/*
 * Stop capturing and assert a report: a BUG line mentioning t1 (and t2
 * unless NULL), and one misuse (assert_reported()).  Without
 * CONFIG_MM_REPORTS, which prints nothing, the count only.
 */
void check_report(struct mm_arena *a, unsigned long errors_before,
		  const char *t1, const char *t2);

/*
 * Assert the captured report says s: where reports are built (without,
 * there is no text; the tests assert the result and the count).
 */
#define assert_report_says(s)							\
	do {									\
		if (IS_ENABLED(CONFIG_MM_REPORTS))				\
			assert_true(captured(s));				\
	} while (0)

/* Static backend over a heap-allocated, page-aligned buffer of 'pages' pages. */
#if !IS_ENABLED(CONFIG_MM_TINY)
struct test_static {
	struct mm_backend_static be;
	void *mem;
	size_t size;
};
void test_static_init(struct test_static *t, size_t pages);
void test_static_fini(struct test_static *t);

/*
 * Built without give-back (CONFIG_MM_TRIM=n), mm_arena_trim() is a no-op:
 * assert that it kept every page, free or held, and return true, so that
 * a test of give-back checks that promise where trimming's do not hold.
 */
static inline int trim_keeps_all(struct mm_arena *a, struct mm_backend *be)
{
	size_t held = be->held, nr_free = mm_arena_free_pages(a);

	if (IS_ENABLED(CONFIG_MM_TRIM))
		return 0;
	assert_int_equal(mm_arena_trim(a, 0), 0);
	assert_int_equal(be->held, held);
	assert_int_equal(mm_arena_free_pages(a), nr_free);
	return 1;
}
#endif

/* xorshift64*: a deterministic generator, so every run is the same. */
static inline uint64_t xorshift64s(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

/* Assert the arena passes mm_arena_validate(). */
#if IS_ENABLED(CONFIG_MM_VALIDATE)
#define assert_arena_valid(a) assert_int_equal(mm_arena_validate(a), 0)
#else
#define assert_arena_valid(a) ((void)(a))	/* the tiny core has no heap walk */
#endif

/*
 * Run 'call', which must report exactly one BUG of 'what' mentioning 'text'
 * (when reports are built), count it (misuse()), and leave the arena's free
 * pages and invariants as they were.
 */
#define expect_bug(a, what, text, call)						\
	do {									\
		unsigned long __errs = (a)->diag.error_count;			\
		size_t __free = mm_arena_free_pages(a);				\
										\
		capture_start();						\
		misuse(call);							\
		capture_stop();							\
		assert_reported(a, __errs, 1);					\
		assert_report_says("BUG " what);				\
		assert_report_says(text);					\
		assert_int_equal(mm_arena_free_pages(a), __free);		\
		assert_arena_valid(a);						\
	} while (0)

/* Bytes of pages allocated in the default arena. */
size_t in_use(void);

/*
 * Bytes a test's random mix may take from the default arena, each request
 * priced from the configuration by the test: where the arena cannot grow
 * past a bound -- the static array, an arena limit -- half of what it may
 * still have, the rest being the slack of slabs, magazines and the heap;
 * else SIZE_MAX.  A mix sized for classes of small sizes is many times
 * that where whole pages serve them (64 KiB ones, no class past 64 bytes).
 */
size_t arena_room(void);

#if IS_ENABLED(CONFIG_MM_KMALLOC) && (!IS_ENABLED(CONFIG_MM_TINY) || IS_ENABLED(CONFIG_MM_STATS))
/*
 * Objects allocated in all kmalloc caches: finer than pages, where a small
 * leak can hide in a slab that was partly used anyway.
 */
unsigned long live_objects(void);
#elif IS_ENABLED(CONFIG_MM_KMALLOC)
/*
 * The tiny core without statistics counts no objects (it has no
 * kmem_cache_info()): there the tests' pages in use must do.
 */
static inline unsigned long live_objects(void)
{
	return 0;
}
#endif

#endif
