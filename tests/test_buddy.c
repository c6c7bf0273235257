// SPDX-License-Identifier: MIT
/*
 * mm/page_alloc.c: the buddy allocator itself -- split, merge, alignment,
 * exact allocations, error paths and the two reports.
 *
 * Most tests run on a "span": an arena with no backend and one region laid
 * over memory the test mapped, placed so that the region's usable pages are
 * exactly 2^k pages aligned to 2^k pages in the address space.  Then the
 * whole span is one free block of order k and every block position is
 * known in advance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "helpers.h"
#include "../mm/internal.h"	/* __alloc_exact(): white-box tests of runs */

#define PS MM_PAGE_SIZE

struct span {
	struct mm_arena *a;
	void *map;
	size_t map_len;
	char *start;		/* first usable page, aligned to 2^k pages */
	char *base;		/* the region (its metadata) */
	size_t meta;		/* metadata pages */
	unsigned int k;
	size_t pages;		/* 2^k */
};

/* Pages of metadata a region needs in front of 'usable' pages. */
static size_t meta_pages_for(size_t usable)
{
	return DIV_ROUND_UP(sizeof(struct mm_region) + usable * MM_META_BYTES, PS);
}

static void span_init(struct span *s, struct mm_arena *a, unsigned int k)
{
	size_t usable = (size_t)1 << k;
	uintptr_t first;

	assert_true(k <= MM_MAX_ORDER);
	s->a = a;
	s->k = k;
	s->pages = usable;
	s->meta = meta_pages_for(usable);
	s->map_len = (2 * usable + s->meta) * PS;
	s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(s->map != MAP_FAILED);
	first = ALIGN((uintptr_t)s->map + s->meta * PS, usable * PS);
	s->start = (char *)first;
	s->base = s->start - s->meta * PS;

	assert_int_equal(mm_arena_init(a, "span", NULL, 0), 0);
	mm_arena_set_trim(a, 0, 0);
	assert_int_equal(mm_arena_add_region(a, s->base, (s->meta + usable) * PS), 0);
	/* The layout this file relies on. */
	assert_non_null(a->regions);
	assert_int_equal(a->regions->start_pfn, addr_to_pfn(s->start));
	assert_int_equal(mm_region_end(a->regions), addr_to_pfn(s->start) + usable);
	assert_int_equal(mm_arena_free_pages(a), usable);
	assert_int_equal(mm_arena_nr_free_order(a, k), 1);
	assert_arena_valid(a);
}

static void span_fini(struct span *s)
{
	assert_int_equal(mm_arena_free_pages(s->a), s->pages);
	assert_int_equal(mm_arena_nr_free_order(s->a, s->k), 1);
	assert_arena_valid(s->a);
	assert_int_equal(mm_arena_destroy(s->a), 0);
	munmap(s->map, s->map_len);
}

static char *span_page(struct span *s, size_t i)
{
	return s->start + i * PS;
}

/* This file's own deterministic sequence (xorshift64s, helpers.h). */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static uint64_t rng(void)
{
	return xorshift64s(&rng_state);
}

static size_t rng_below(size_t n)
{
	return (size_t)(rng() % n);
}

static void shuffle(void **v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rng_below(i);
		void *t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static int cmp_ptr(const void *x, const void *y)
{
	uintptr_t a = (uintptr_t)*(void *const *)x, b = (uintptr_t)*(void *const *)y;

	return a < b ? -1 : a > b;
}

/* ---- Split and merge, exhaustively ------------------------------------ */

/*
 * From one free block of order k, allocating order o splits off exactly one
 * free block of each order o .. k-1 and returns the lowest block; every
 * block of order o is then handed out exactly once, each at an aligned
 * position, and freeing them in any order merges back to one block.
 */
static void test_split_every_order(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 7 ? MM_MAX_ORDER : 7;
	struct span s;
	void **blocks;

	span_init(&s, &arena, k);
	blocks = calloc(s.pages, sizeof(*blocks));
	assert_non_null(blocks);
	rng_seed(1);

	for (unsigned int o = 0; o <= k; o++) {
		size_t n = (size_t)1 << (k - o);
		struct mm_diag d0, d1;

		blocks[0] = alloc_pages(&arena, o);
		assert_ptr_equal(blocks[0], s.start);
		for (unsigned int i = 0; i <= MM_MAX_ORDER; i++)
			assert_int_equal(mm_arena_nr_free_order(&arena, i),
					 i >= o && i < k ? 1 : 0);
		assert_int_equal(mm_page_order(&arena, blocks[0]), (int)o);
		assert_arena_valid(&arena);

		for (size_t i = 1; i < n; i++) {
			blocks[i] = alloc_pages(&arena, o);
			assert_non_null(blocks[i]);
			assert_true(IS_ALIGNED((uintptr_t)blocks[i], PS << o));
			assert_int_equal(mm_page_order(&arena, blocks[i]), (int)o);
		}
		/* Every position exactly once. */
		qsort(blocks, n, sizeof(*blocks), cmp_ptr);
		for (size_t i = 0; i < n; i++)
			assert_ptr_equal(blocks[i], span_page(&s, i << o));
		assert_int_equal(mm_arena_free_pages(&arena), 0);
		assert_arena_valid(&arena);

		/* Full: every order fails, cleanly, and is counted. */
		mm_arena_diag(&arena, &d0);
		for (unsigned int i = 0; i <= MM_MAX_ORDER; i++)
			assert_null(alloc_pages(&arena, i));
		mm_arena_diag(&arena, &d1);
		assert_int_equal(d1.oom_count, d0.oom_count + MM_MAX_ORDER + 1);
		assert_int_equal(d1.error_count, d0.error_count);

		shuffle(blocks, n);
		for (size_t i = 0; i < n; i++) {
			free_pages(&arena, blocks[i], o);
			assert_int_equal(mm_arena_free_pages(&arena), (i + 1) << o);
		}
		assert_int_equal(mm_arena_nr_free_order(&arena, k), 1);
		assert_arena_valid(&arena);
	}
	free(blocks);
	span_fini(&s);
}

/*
 * Every order, every position: with the span all in single pages, freeing
 * the pages of one aligned block of order o (in a random order) merges them
 * into exactly that one free block, which the next alloc_pages(o) returns.
 */
static void test_merge_every_position(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 7 ? MM_MAX_ORDER : 7;
	struct span s;
	void **pages, **sub;

	span_init(&s, &arena, k);
	pages = calloc(s.pages, sizeof(*pages));
	sub = calloc(s.pages, sizeof(*sub));
	assert_non_null(pages);
	assert_non_null(sub);
	rng_seed(2);

	for (unsigned int o = 0; o <= k; o++) {
		size_t bsize = (size_t)1 << o;

		for (size_t j = 0; j < s.pages >> o; j++) {
			char *want = span_page(&s, j << o);
			void *p;

			for (size_t i = 0; i < s.pages; i++) {
				pages[i] = alloc_pages(&arena, 0);
				assert_non_null(pages[i]);
			}
			qsort(pages, s.pages, sizeof(*pages), cmp_ptr);
			for (size_t i = 0; i < s.pages; i++)
				assert_ptr_equal(pages[i], span_page(&s, i));
			assert_int_equal(mm_arena_free_pages(&arena), 0);

			memcpy(sub, pages + (j << o), bsize * sizeof(*sub));
			shuffle(sub, bsize);
			for (size_t i = 0; i < bsize; i++)
				free_pages(&arena, sub[i], 0);
			assert_int_equal(mm_arena_free_pages(&arena), bsize);
			for (unsigned int i = 0; i <= MM_MAX_ORDER; i++)
				assert_int_equal(mm_arena_nr_free_order(&arena, i), i == o);
			assert_arena_valid(&arena);

			p = alloc_pages(&arena, o);
			assert_ptr_equal(p, want);
			free_pages(&arena, p, o);

			/* And the rest, in a random order: all merges back. */
			for (size_t i = 0; i < s.pages; i++)
				pages[i] = i >= (j << o) && i < ((j + 1) << o) ? NULL : pages[i];
			shuffle(pages, s.pages);
			for (size_t i = 0; i < s.pages; i++)
				if (pages[i])
					free_pages(&arena, pages[i], 0);
			assert_int_equal(mm_arena_free_pages(&arena), s.pages);
			assert_int_equal(mm_arena_nr_free_order(&arena, k), 1);
		}
		assert_arena_valid(&arena);
	}
	free(sub);
	free(pages);
	span_fini(&s);
}

/* ---- Random operations against a reference model ---------------------- */

struct live {
	char *p;
	size_t pages;		/* pages the caller owns */
	unsigned int order;	/* alloc_pages order, or the exact block's order */
	size_t size;		/* exact: bytes asked for; 0 for alloc_pages */
	uint64_t tag;
};

/* 1 if the model has an aligned run of 2^o free pages. */
static int model_has_free_block(const uint8_t *used, size_t pages, unsigned int o)
{
	size_t n = (size_t)1 << o;

	for (size_t b = 0; b + n <= pages; b += n) {
		size_t i;

		for (i = 0; i < n && !used[b + i]; i++)
			;
		if (i == n)
			return 1;
	}
	return 0;
}

static void check_tag(struct live *l)
{
	uint64_t head, tail;

	memcpy(&head, l->p, sizeof(head));
	memcpy(&tail, l->p + l->pages * PS - sizeof(tail), sizeof(tail));
	assert_int_equal(head, l->tag);
	assert_int_equal(tail, ~l->tag);
}

static void test_random_against_model(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 10 ? MM_MAX_ORDER : 10;
	const unsigned long nr_ops = 100000;
	size_t nr_live = 0, model_free;
	struct live *live;
	uint8_t *used;
	struct span s;
	unsigned long fails = 0;

	span_init(&s, &arena, k);
	live = calloc(s.pages + 1, sizeof(*live));
	used = calloc(s.pages, 1);
	assert_non_null(live);
	assert_non_null(used);
	model_free = s.pages;
	rng_seed(0x5eed);

	for (unsigned long op = 0; op < nr_ops; op++) {
		/* Allocate more often while the arena is emptier. */
		int do_alloc = nr_live == 0 ||
			       rng_below(s.pages) < model_free + s.pages / 8;

		if (do_alloc) {
			unsigned int o = (unsigned int)__builtin_ctzll(rng() | (1ULL << k));
			int exact = o > 0 && rng_below(4) == 0;
			struct live *l = &live[nr_live];
			size_t first;

			if (o > k)
				o = k;
			memset(l, 0, sizeof(*l));
			l->order = o;
			if (exact) {
				/* More than half the block, so it needs order o. */
				size_t lo = ((PS << o) >> 1) + 1, hi = PS << o;

				l->size = lo + rng_below(hi - lo + 1);
				l->pages = DIV_ROUND_UP(l->size, PS);
				l->p = alloc_pages_exact(&arena, l->size);
			} else {
				l->pages = (size_t)1 << o;
				l->p = alloc_pages(&arena, o);
			}
			if (!l->p) {
				/* Buddy never fails while an aligned free run exists. */
				assert_false(model_has_free_block(used, s.pages, o));
				fails++;
				continue;
			}
			assert_true(IS_ALIGNED((uintptr_t)l->p, PS << o));
			assert_true(l->p >= s.start && l->p + (PS << o) <= span_page(&s, s.pages));
			first = (size_t)(l->p - s.start) / PS;
			for (size_t i = 0; i < l->pages; i++) {
				assert_int_equal(used[first + i], 0);
				used[first + i] = 1;
			}
			model_free -= l->pages;
			l->tag = rng();
			memcpy(l->p, &l->tag, sizeof(l->tag));
			l->tag = ~l->tag;
			memcpy(l->p + l->pages * PS - sizeof(l->tag), &l->tag, sizeof(l->tag));
			l->tag = ~l->tag;
			nr_live++;
		} else {
			size_t i = rng_below(nr_live);
			struct live *l = &live[i];
			size_t first = (size_t)(l->p - s.start) / PS;

			check_tag(l);
			if (l->size)
				free_pages_exact(&arena, l->p, l->size);
			else
				free_pages(&arena, l->p, l->order);
			for (size_t j = 0; j < l->pages; j++)
				used[first + j] = 0;
			model_free += l->pages;
			live[i] = live[--nr_live];
		}
		assert_int_equal(mm_arena_free_pages(&arena), model_free);
		if (op % 1000 == 0)
			assert_arena_valid(&arena);
	}
	/* The run did reach exhaustion: the failure path was exercised. */
	assert_true(fails > 0);

	while (nr_live) {
		struct live *l = &live[--nr_live];

		check_tag(l);
		if (l->size)
			free_pages_exact(&arena, l->p, l->size);
		else
			free_pages(&arena, l->p, l->order);
	}
	/* Nothing lost: all back, fully merged, and no error was reported. */
	assert_int_equal(arena.diag.error_count, 0);
	free(used);
	free(live);
	span_fini(&s);
}

/* ---- Alignment on a large arena --------------------------------------- */

static void test_alignment_every_order(void **state)
{
	static struct mm_arena arena;
	struct test_static ts;
	void *blocks[MM_NR_ORDERS][2];
	uintptr_t lo, hi;

	/*
	 * Room for two blocks of every order wherever the array lands.  Not
	 * test_static_init(): with large pages and orders this is gigabytes
	 * of address space, of which only the pages touched are used.
	 */
	ts.size = (((size_t)5 << MM_MAX_ORDER) + 8) * PS;
	ts.mem = mmap(NULL, ts.size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(ts.mem != MAP_FAILED);
	assert_int_equal(mm_backend_static_init(&ts.be, ts.mem, ts.size), 0);
	assert_int_equal(mm_arena_init(&arena, "align", &ts.be.be, SIZE_MAX), 0);
	mm_arena_set_trim(&arena, 0, 0);
	lo = (uintptr_t)ts.mem;
	hi = lo + ts.size;

	for (int o = MM_MAX_ORDER; o >= 0; o--) {
		for (int i = 0; i < 2; i++) {
			char *p = alloc_pages(&arena, (unsigned int)o);

			blocks[o][i] = p;
			assert_non_null(p);
			assert_true(IS_ALIGNED((uintptr_t)p, PS << o));
			assert_true((uintptr_t)p >= lo && (uintptr_t)p + (PS << o) <= hi);
			assert_int_equal(mm_page_order(&arena, p), o);
			/* The memory is really there, first byte to last. */
			p[0] = 1;
			p[(PS << o) - 1] = 2;
		}
	}
	/* No two overlap. */
	for (int o = 0; o <= MM_MAX_ORDER; o++)
		for (int i = 0; i < 2; i++)
			for (int o2 = 0; o2 <= MM_MAX_ORDER; o2++)
				for (int i2 = 0; i2 < 2; i2++) {
					uintptr_t a = (uintptr_t)blocks[o][i], b = (uintptr_t)blocks[o2][i2];

					if (o == o2 && i == i2)
						continue;
					assert_true(a + (PS << o) <= b || b + (PS << o2) <= a);
				}
	assert_arena_valid(&arena);
	for (int o = 0; o <= MM_MAX_ORDER; o++)
		for (int i = 0; i < 2; i++)
			free_pages(&arena, blocks[o][i], (unsigned int)o);
	assert_int_equal(mm_arena_free_pages(&arena), arena.nr_pages);
	assert_int_equal(arena.diag.error_count, 0);
	assert_arena_valid(&arena);
	assert_int_equal(mm_arena_destroy(&arena), 0);
	assert_int_equal(ts.be.be.held, 0);
	test_static_fini(&ts);
}

/* ---- Exact allocations ------------------------------------------------ */

static void test_exact_sizes(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 6 ? MM_MAX_ORDER : 6;
	struct span s;

	span_init(&s, &arena, k);
	for (size_t n = 1; n <= s.pages; n++) {
		size_t sizes[3] = { n * PS, n * PS - PS / 2, (n - 1) * PS + 1 };

		for (int i = 0; i < 3; i++) {
			size_t size = sizes[i];
			unsigned int order = get_order(size);
			char *p = alloc_pages_exact(&arena, size);

			assert_ptr_equal(p, s.start);
			assert_true(IS_ALIGNED((uintptr_t)p, PS << order));
			/* Only the pages needed are taken: the tail went back. */
			assert_int_equal(mm_arena_free_pages(&arena), s.pages - n);
			assert_arena_valid(&arena);
			for (size_t i = 0; i < size; i += PS / 4)
				p[i] = 0x5a;
			p[size - 1] = 0x5a;
			/* The tail is usable at once: the next page is page n. */
			if (n < s.pages) {
				char *q = alloc_pages(&arena, 0);

				assert_ptr_equal(q, span_page(&s, n));
				free_pages(&arena, q, 0);
			}
			free_pages_exact(&arena, p, size);
			assert_int_equal(mm_arena_free_pages(&arena), s.pages);
			assert_int_equal(mm_arena_nr_free_order(&arena, k), 1);
		}
	}
	assert_int_equal(arena.diag.error_count, 0);

	/* Impossible sizes: NULL, nothing taken. */
	assert_null(alloc_pages_exact(&arena, 0));
	assert_null(alloc_pages_exact(&arena, MM_MAX_BLOCK + 1));
	assert_null(alloc_pages_exact(&arena, SIZE_MAX));
	assert_null(alloc_pages_exact(&arena, SIZE_MAX / 2 + 1));
	assert_int_equal(mm_arena_free_pages(&arena), s.pages);
	free_pages_exact(&arena, NULL, PS);
	assert_int_equal(arena.diag.error_count, 0);
	span_fini(&s);
}

static void test_exact_wrong_size(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 4 ? MM_MAX_ORDER : 4;
	struct span s;
	size_t n, before;
	char *p;

	span_init(&s, &arena, k);
	n = s.pages - 1 ? s.pages - 1 : 1;	/* 2^k - 1 pages: k pieces */
	p = alloc_pages_exact(&arena, n * PS);
	assert_non_null(p);
	before = mm_arena_free_pages(&arena);
	assert_int_equal(before, s.pages - n);

	/*
	 * Too small (down to nothing), too large, absurd; and a size that
	 * ends exactly at one of the pieces, 8 + 4 pages of these 8 + 4 + 2 +
	 * 1, which freed that prefix while every piece was a page block of its
	 * own (PT_PAGES): the later pieces are PT_CONT now.
	 */
	size_t bad[] = { n >= 3 ? (n - 2) * PS : 0, PS / 2, 0, (n + 1) * PS,
			 s.pages * PS * 2, SIZE_MAX,
			 n >= 3 ? ((size_t)1 << (k - 1)) * PS : 0,
			 n >= 3 ? (((size_t)1 << (k - 1)) + ((size_t)1 << (k - 2))) * PS : 0 };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		unsigned long errs = arena.diag.error_count;

		if (bad[i] && DIV_ROUND_UP(bad[i], PS) == n)
			continue;
		capture_start();
		misuse(free_pages_exact(&arena, p, bad[i]));
		check_report(&arena, errs, "BUG free_pages_exact", NULL);
		assert_int_equal(mm_arena_free_pages(&arena), before);
		assert_arena_valid(&arena);
	}
	free_pages_exact(&arena, p, n * PS);
	assert_int_equal(mm_arena_free_pages(&arena), s.pages);

	/*
	 * Too large by a neighbour of the right order: 2 pages exact, then a
	 * page block right after them; freed as 3 pages, the two pieces that
	 * size makes were both page blocks of their orders, and the
	 * neighbour went too.  Now nothing goes, and it says so.
	 */
	if (k >= 2) {
		unsigned long errs = arena.diag.error_count;
		char *q;

		p = alloc_pages_exact(&arena, 2 * PS);
		q = alloc_pages(&arena, 0);
		assert_non_null(p);
		assert_ptr_equal(q, p + 2 * PS);
		before = mm_arena_free_pages(&arena);
		capture_start();
		misuse(free_pages_exact(&arena, p, 3 * PS));
		check_report(&arena, errs, "BUG free_pages_exact",
			     "not the size it was allocated with");
		assert_int_equal(mm_arena_free_pages(&arena), before);
		assert_int_equal(mm_page_order(&arena, q), 0);
		free_pages(&arena, q, 0);
		free_pages_exact(&arena, p, 2 * PS);
		assert_int_equal(arena.diag.error_count, errs + counted(1));
		assert_int_equal(mm_arena_free_pages(&arena), s.pages);
		assert_arena_valid(&arena);
	}
	span_fini(&s);
}

/*
 * An exact block given to free_pages(): its head is a page block of the
 * first piece's order, which mm_page_order() tells too, so a caller who
 * asks that and frees with it passes every test of the head -- and freed
 * that piece alone, the later pieces marked as those of a block that no
 * longer was, lost for good (the arena's walk found nothing wrong).
 * Now it is reported and frees nothing; free_pages_exact() then frees it.
 */
static __maybe_unused void test_exact_freed_as_pages(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 4 ? MM_MAX_ORDER : 4;
	struct span s;
	size_t n;
	char *p;

	span_init(&s, &arena, k);
	/* 2^k - 1 pages: k pieces, the first of order k - 1 (3 pages: 2 + 1). */
	n = s.pages - 1;
	p = alloc_pages_exact(&arena, n * PS);
	assert_non_null(p);
	assert_int_equal(mm_page_order(&arena, p), k - 1);
	expect_bug(&arena, "free_pages", "exact block (use free_pages_exact)",
		   free_pages(&arena, p, k - 1));
	expect_bug(&arena, "free_pages", "allocated with order",
		   free_pages(&arena, p, k));
	/* A later piece is no block of its own either. */
	expect_bug(&arena, "free_pages", "inside an exact block",
		   free_pages(&arena, p + ((size_t)1 << (k - 1)) * PS, 0));
	free_pages_exact(&arena, p, n * PS);
	assert_int_equal(mm_arena_free_pages(&arena), s.pages);
	/* A page block of the same order right before another's exact block is fine. */
	if (k >= 3) {
		char *q = alloc_pages(&arena, k - 2), *r;
		unsigned long errs = arena.diag.error_count;

		r = alloc_pages_exact(&arena, 3 * PS);
		assert_non_null(q);
		assert_non_null(r);
		free_pages(&arena, q, k - 2);
		free_pages_exact(&arena, r, 3 * PS);
		assert_int_equal(arena.diag.error_count, errs);
	}
	span_fini(&s);
}

/*
 * Exact blocks from runs (__alloc_exact, what kmalloc's large blocks use):
 * with every page of a 32-page span taken and then pages 2..7 and 17..21
 * freed, there is no free block of 8 pages, yet 5 pages come from the run
 * 17..21 -- the best fit, over the 6-page run 2..7 -- and 6 pages from
 * 2..7, without the arena growing (it cannot: no backend).  Freed, every
 * page merges back into one block.
 */
static __maybe_unused void test_exact_runs(void **state)
{
	static struct mm_arena arena;
	static char *page[32];
	struct span s;
	char *p, *q;

	span_init(&s, &arena, 5);
	for (size_t i = 0; i < 32; i++)
		assert_non_null(page[i] = alloc_pages(&arena, 0));
	qsort(page, 32, sizeof(page[0]), cmp_ptr);
	assert_ptr_equal(page[0], span_page(&s, 0));
	for (size_t i = 2; i < 8; i++)
		free_pages(&arena, page[i], 0);
	for (size_t i = 17; i < 22; i++)
		free_pages(&arena, page[i], 0);
	assert_int_equal(mm_arena_free_pages(&arena), 11);
	for (unsigned int o = 3; o <= s.k; o++)
		assert_int_equal(mm_arena_nr_free_order(&arena, o), 0);

	p = __alloc_exact(&arena, 5, 0, PT_PAGES, PT_CONT);
	assert_ptr_equal(p, span_page(&s, 17));		/* best fit, unaligned */
	q = __alloc_exact(&arena, 6, 0, PT_PAGES, PT_CONT);
	assert_ptr_equal(q, span_page(&s, 2));
	assert_int_equal(mm_arena_free_pages(&arena), 0);
	assert_arena_valid(&arena);
	assert_null(__alloc_exact(&arena, 2, 0, PT_PAGES, PT_CONT));

	/* The pieces are those free_pages_exact() expects for that size. */
	free_pages_exact(&arena, p, 5 * PS);
	free_pages_exact(&arena, q, 6 * PS);
	assert_int_equal(arena.diag.error_count, 0);
	for (size_t i = 0; i < 32; i++)
		if (i < 2 || (i >= 8 && i < 17) || i >= 22)
			free_pages(&arena, page[i], 0);
	span_fini(&s);
}

#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_PREFER_RESIDENT) && \
	IS_ENABLED(CONFIG_MM_EXACT_RUNS) && IS_ENABLED(CONFIG_MM_TRIM)
/*
 * A run whose first pages include untouched ones loses to a longer run of
 * resident pages.  Eight written blocks of 16 pages, q[0..7] by address;
 * q[2] is freed and discarded (clean), then q[1] (dirty) is freed beside
 * it: run A, 32 pages, its head dirty.  q[4..6] freed: run B, 48 resident
 * pages.  20 pages from A would make 3 of q[2]'s pages resident (its
 * first holds the list node); they come from B.
 */
static __maybe_unused void test_exact_runs_resident(void **state)
{
	static struct mm_arena a;
	static struct mm_backend_mmap mb;
	const unsigned int o = 4;
	char *q[8], *p;

	mm_backend_mmap_init(&mb, 0);
	assert_int_equal(mm_arena_init(&a, "runs", &mb.be, 4 * MM_MAX_BLOCK), 0);
	mm_arena_set_trim(&a, 0, 0);
	/* Eight blocks in one aligned span of 2^(o+3) pages. */
	p = alloc_pages(&a, o + 3);
	assert_non_null(p);
	free_pages(&a, p, o + 3);
	for (unsigned int i = 0; i < 8; i++) {
		q[i] = alloc_pages(&a, o);
		assert_non_null(q[i]);
	}
	qsort(q, 8, sizeof(q[0]), cmp_ptr);
	/* The eight are the span just freed: the lowest address first. */
	assert_ptr_equal(q[0], p);
	assert_ptr_equal(q[7], p + 7 * (PS << o));
	for (unsigned int i = 0; i < 8; i++)
		memset(q[i], 0x77, PS << o);
	free_pages(&a, q[2], o);
	mm_arena_trim(&a, 0);
	assert_int_equal(meta_type(*page_meta(a.regions, addr_to_pfn(q[2]))), PT_CLEAN);
	free_pages(&a, q[1], o);
	for (unsigned int i = 4; i < 7; i++)
		free_pages(&a, q[i], o);

	p = __alloc_exact(&a, 20, 0, PT_PAGES, PT_CONT);
	assert_ptr_equal(p, q[4]);
	assert_arena_valid(&a);
	free_pages_exact(&a, p, 20 * PS);
	for (unsigned int i = 0; i < 8; i++)
		if (i == 0 || i == 3 || i == 7)
			free_pages(&a, q[i], o);
	assert_int_equal(a.diag.error_count, 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
}
#endif

/* Free the pieces of a kmalloc-style exact block at page 'i' (white-box). */
static void free_pieces(struct span *s, size_t i)
{
	struct mm_region *r = s->a->regions;
	uintptr_t pfn = addr_to_pfn(span_page(s, i));
	uint8_t m = *page_meta(r, pfn);

	assert_int_equal(meta_type(m), PT_LARGE);
	for (;;) {
		uintptr_t next = pfn + ((uintptr_t)1 << meta_order(m));
		uint8_t nm = region_contains(r, next) ? *page_meta(r, next) : 0;

		__free_pages_locked(s->a, r, pfn, meta_order(m));
		if (meta_type(nm) != PT_CONT)
			break;
		pfn = next;
		m = nm;
	}
}

/*
 * kmalloc's exact blocks (pieces PT_LARGE, PT_CONT) never end before
 * an odd page, so no single free page is split off -- it would hold a
 * free-list node, resident, that only one-page requests can use: 5 pages
 * cut from a block of 8 take 6, and 3 pages from a free run of 6 take 4.
 * alloc_pages_exact()'s blocks (PT_PAGES) stay exact.
 */
static __maybe_unused void test_exact_no_single_page_left(void **state)
{
	static struct mm_arena arena;
	static char *page[32];
	struct span s;
	char *p, *q;

	span_init(&s, &arena, 4);
	/* Cut from a buddy block: pages 0-5, the rest goes back as 6-7 and 8-15. */
	p = __alloc_exact(&arena, 5, 0, PT_LARGE, PT_CONT);
	assert_ptr_equal(p, span_page(&s, 0));
	assert_int_equal(mm_arena_free_pages(&arena), 10);
	assert_int_equal(mm_arena_nr_free_order(&arena, 0), 0);
	assert_int_equal(mm_arena_nr_free_order(&arena, 1), 1);
	assert_int_equal(mm_arena_nr_free_order(&arena, 3), 1);
	assert_arena_valid(&arena);
	free_pieces(&s, 0);
	/* The same cut for free_pages_exact(): exact, page 5 left alone. */
	p = __alloc_exact(&arena, 5, 0, PT_PAGES, PT_CONT);
	assert_ptr_equal(p, span_page(&s, 0));
	assert_int_equal(mm_arena_free_pages(&arena), 11);
	assert_int_equal(mm_arena_nr_free_order(&arena, 0), 1);
	free_pages_exact(&arena, p, 5 * PS);
	assert_int_equal(arena.diag.error_count, 0);
	span_fini(&s);

	if (!IS_ENABLED(CONFIG_MM_EXACT_RUNS))
		return;
	/* From a run: every page taken, then pages 2..7 freed (blocks 2-3, 4-7). */
	span_init(&s, &arena, 5);
	for (size_t i = 0; i < 32; i++)
		assert_non_null(page[i] = alloc_pages(&arena, 0));
	qsort(page, 32, sizeof(page[0]), cmp_ptr);
	for (size_t i = 2; i < 8; i++)
		free_pages(&arena, page[i], 0);
	q = __alloc_exact(&arena, 3, 0, PT_LARGE, PT_CONT);
	assert_ptr_equal(q, span_page(&s, 2));
	assert_int_equal(mm_arena_free_pages(&arena), 2);
	assert_int_equal(mm_arena_nr_free_order(&arena, 0), 0);
	assert_int_equal(mm_arena_nr_free_order(&arena, 1), 1);
	assert_arena_valid(&arena);
	free_pieces(&s, 2);
	for (size_t i = 0; i < 32; i++)
		if (i < 2 || i >= 8)
			free_pages(&arena, page[i], 0);
	span_fini(&s);
}

/* ---- Error paths ------------------------------------------------------ */

static void test_bad_frees(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 4 ? MM_MAX_ORDER : 4;
	struct span s;
	char *p1, *p0a = NULL, *p0b = NULL, *foreign, *mapping;
	unsigned long errs;
	char msg[128];

	span_init(&s, &arena, k);
	p1 = alloc_pages(&arena, 1);		/* pages 0-1 */
	assert_ptr_equal(p1, span_page(&s, 0));
	if (k >= 3) {
		p0a = alloc_pages(&arena, 0);	/* page 2 */
		p0b = alloc_pages(&arena, 0);	/* page 3, buddy of p0a */
		assert_ptr_equal(p0a, span_page(&s, 2));
		assert_ptr_equal(p0b, span_page(&s, 3));
	}

	/* A page-aligned pointer outside every region of the arena. */
	foreign = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(foreign != MAP_FAILED);
	mapping = foreign;
	foreign = PTR_ALIGN(foreign, PS);
	expect_bug(&arena, "free_pages", "does not belong to arena span",
		   free_pages(&arena, foreign, 0));
	/* The region's own metadata page is not a page of the arena either. */
	expect_bug(&arena, "free_pages", "does not belong to arena span",
		   free_pages(&arena, s.base, 0));
	/* Just past the end. */
	expect_bug(&arena, "free_pages", "does not belong to arena span",
		   free_pages(&arena, span_page(&s, s.pages), 0));

	expect_bug(&arena, "free_pages", "is not page aligned",
		   free_pages(&arena, p1 + 1, 1));
	expect_bug(&arena, "free_pages", "is not page aligned",
		   free_pages(&arena, p1 + PS / 2, 1));
	expect_bug(&arena, "free_pages", "is not page aligned",
		   free_pages(&arena, (char *)foreign + 8, 0));

	expect_bug(&arena, "free_pages", "not the head of a block",
		   free_pages(&arena, p1 + PS, 0));
	expect_bug(&arena, "free_pages", "not the head of a block",
		   free_pages(&arena, p1 + PS, 1));

	snprintf(msg, sizeof(msg), "%p was allocated with order 1, freed with order 0", (void *)p1);
	expect_bug(&arena, "free_pages", msg, free_pages(&arena, p1, 0));
	expect_bug(&arena, "free_pages", "allocated with order 1, freed with order 2",
		   free_pages(&arena, p1, 2));
	snprintf(msg, sizeof(msg), "allocated with order 1, freed with order %u",
		    MM_MAX_ORDER + 1);
	expect_bug(&arena, "free_pages", msg, free_pages(&arena, p1, MM_MAX_ORDER + 1));
	expect_bug(&arena, "free_pages", "allocated with order 1",
		   free_pages(&arena, p1, 31));
	expect_bug(&arena, "free_pages", "allocated with order 1",
		   free_pages(&arena, p1, ~0u));

	if (k >= 3) {
		/* A free block inside the arena (the upper half of the span). */
		expect_bug(&arena, "free_pages", "already free",
			   free_pages(&arena, span_page(&s, s.pages / 2), k - 1));

		/* Double free: p0b stays an order-0 free block while p0a is held. */
		errs = arena.diag.error_count;
		free_pages(&arena, p0b, 0);
		assert_int_equal(arena.diag.error_count, errs);
		expect_bug(&arena, "free_pages", "already free", free_pages(&arena, p0b, 0));
		/* Once merged into its buddy, p0b is no longer a block head. */
		free_pages(&arena, p0a, 0);
		expect_bug(&arena, "free_pages", "not the head of a block",
			   free_pages(&arena, p0b, 0));
		expect_bug(&arena, "free_pages", "already free", free_pages(&arena, p0a, 0));
	}

	/* NULL is not an error. */
	errs = arena.diag.error_count;
	free_pages(&arena, NULL, 0);
	free_pages(&arena, p1, 1);
	assert_int_equal(arena.diag.error_count, errs);
	/* Double free of the last block: the span is whole again. */
	expect_bug(&arena, "free_pages", "already free", free_pages(&arena, p1, 1));
	munmap(mapping, 2 * PS);
	span_fini(&s);
}

static void test_bad_orders(void **state)
{
	static struct mm_arena arena;
	struct span s;
	struct mm_diag d;

	span_init(&s, &arena, MM_MAX_ORDER < 3 ? MM_MAX_ORDER : 3);
	expect_bug(&arena, "alloc_pages", "order",
		   assert_null(alloc_pages(&arena, MM_MAX_ORDER + 1)));
	expect_bug(&arena, "alloc_pages", "order",
		   assert_null(alloc_pages(&arena, 1000)));
	expect_bug(&arena, "alloc_pages", "order",
		   assert_null(alloc_pages(&arena, ~0u)));
	mm_arena_diag(&arena, &d);
	assert_int_equal(d.allocated, 0);
	span_fini(&s);
}

static void test_page_order(void **state)
{
	static struct mm_arena arena;
	struct span s;
	char *p;

	span_init(&s, &arena, MM_MAX_ORDER < 3 ? MM_MAX_ORDER : 3);
	p = alloc_pages(&arena, 1);
	assert_int_equal(mm_page_order(&arena, p), 1);
	assert_int_equal(mm_page_order(&arena, p + PS), -1);	/* tail page */
	assert_int_equal(mm_page_order(&arena, p + 8), -1);	/* unaligned */
	assert_int_equal(mm_page_order(&arena, span_page(&s, 2)), -1);	/* free */
	assert_int_equal(mm_page_order(&arena, s.base), -1);	/* metadata */
	assert_int_equal(mm_page_order(&arena, &arena), -1);	/* foreign */
	free_pages(&arena, p, 1);
	assert_int_equal(mm_page_order(&arena, p), -1);
	assert_int_equal(arena.diag.error_count, 0);
	span_fini(&s);
}

/* ---- Reports ---------------------------------------------------------- */

static void check_buddyinfo(struct mm_arena *a, const char *name)
{
	const char *t, *line;
	char want[64];
	int off;

	capture_start();
	mm_buddyinfo(a);
	t = capture_stop();
	if (!IS_ENABLED(CONFIG_MM_REPORTS)) {
		assert_string_equal(t, "");
		return;
	}
	snprintf(want, sizeof(want), "Node 0, zone %8s", name);
	line = strstr(t, want);
	assert_ptr_equal(line, t);
	line += strlen(want);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++) {
		unsigned long v;

		assert_int_equal(sscanf(line, " %lu%n", &v, &off), 1);
		assert_int_equal(v, mm_arena_nr_free_order(a, o));
		line += off;
	}
	assert_string_equal(line, "\n");
}

static void test_buddyinfo(void **state)
{
	static struct mm_arena arena;
	unsigned int k = MM_MAX_ORDER < 6 ? MM_MAX_ORDER : 6;
	struct span s;
	void *p[4];

	span_init(&s, &arena, k);
	check_buddyinfo(&arena, "span");
	p[0] = alloc_pages(&arena, 0);
	p[1] = alloc_pages(&arena, 0);
	p[2] = alloc_pages(&arena, 0);
	check_buddyinfo(&arena, "span");
	p[3] = alloc_pages(&arena, k - 1);
	check_buddyinfo(&arena, "span");
	free_pages(&arena, p[1], 0);
	check_buddyinfo(&arena, "span");
	free_pages(&arena, p[0], 0);
	free_pages(&arena, p[2], 0);
	free_pages(&arena, p[3], k - 1);
	check_buddyinfo(&arena, "span");
	span_fini(&s);
}

/* The page map line of the span's first 64 pages, without the address. */
static void check_map(struct span *s, const char *want_pages)
{
	char want[256], head[160];
	const char *t;
	size_t off = 0;

	capture_start();
	mm_page_map(s->a);
	t = capture_stop();
	if (!IS_ENABLED(CONFIG_MM_REPORTS)) {
		assert_string_equal(t, "");
		return;
	}
	snprintf(head, sizeof(head), "region %p-%p: %zu pages, %zu of metadata\n",
		    (void *)s->base, (void *)span_page(s, s->pages),
		    s->meta + s->pages, s->meta);
	assert_true(strncmp(t, head, strlen(head)) == 0);
	t += strlen(head);

	for (size_t i = 0; i < s->meta; i++)
		want[off++] = 'M';
	memcpy(want + off, want_pages, strlen(want_pages) + 1);
	off = 0;
	for (size_t line = 0; want[off]; line++) {
		char prefix[64];
		size_t n = strlen(want + off) < 64 ? strlen(want + off) : 64;

		snprintf(prefix, sizeof(prefix), "  %p ", (void *)(s->base + line * 64 * PS));
		assert_true(strncmp(t, prefix, strlen(prefix)) == 0);
		t += strlen(prefix);
		assert_true(strncmp(t, want + off, n) == 0);
		t += n;
		assert_int_equal(*t, '\n');
		t++;
		off += n;
	}
	assert_string_equal(t, "");
}

static void test_page_map(void **state)
{
	static struct mm_arena arena;
	char want[200];
	struct span s;
	void *p, *q;

	if (MM_MAX_ORDER >= 2) {
		span_init(&s, &arena, 2);
		check_map(&s, "....");
		p = alloc_pages(&arena, 1);
		q = alloc_pages(&arena, 0);
		assert_ptr_equal(p, s.start);
		check_map(&s, "P-P.");
		free_pages(&arena, p, 1);
		check_map(&s, "..P.");
		free_pages(&arena, q, 0);
		check_map(&s, "....");
		span_fini(&s);
	} else {
		span_init(&s, &arena, 1);
		p = alloc_pages(&arena, 0);
		check_map(&s, "P.");
		free_pages(&arena, p, 0);
		span_fini(&s);
	}

	/* Longer than a line: 64 characters each, each line with its address. */
	if (MM_MAX_ORDER >= 7) {
		static struct mm_arena big;

		span_init(&s, &big, 7);
		p = alloc_pages(&big, 6);
		q = alloc_pages(&big, 0);
		memset(want, '.', 128);
		want[128] = '\0';
		want[0] = 'P';
		memset(want + 1, '-', 63);
		want[64] = 'P';
		check_map(&s, want);
		free_pages(&big, p, 6);
		free_pages(&big, q, 0);
		span_fini(&s);
	}
}

#if CONFIG_MM_PCP_PAGES > 0
/*
 * The order-0 page cache: freed single pages are kept (LIFO) in front of
 * the free lists, still counted free, still protected against double
 * frees; a full cache spills half; a larger request, a trim and turning
 * the cache off all give the pages back to the free lists, merged.
 */
static void test_page_cache(void **state)
{
	static struct mm_arena arena;
	const unsigned int k = MM_MAX_ORDER < 4 ? MM_MAX_ORDER : 4;
	/* Another arena's cache holds at most the default arena's. */
	const unsigned int max = CONFIG_MM_PCP_PAGES < 4 ? CONFIG_MM_PCP_PAGES : 4;
	const size_t n = (size_t)1 << k;
	struct span s;
	void *v[64], *p, *q;

	assert_true(n <= ARRAY_SIZE(v));
	span_init(&s, &arena, k);
	mm_arena_set_pcp(&arena, max);

	p = alloc_pages(&arena, 0);
	assert_non_null(p);
	free_pages(&arena, p, 0);
	assert_int_equal(arena.pcp_count, 1);
	assert_int_equal(mm_arena_free_pages(&arena), n);	/* counted free */
	assert_int_equal(mm_page_order(&arena, p), -1);
	assert_int_equal(mm_arena_nr_free_order(&arena, k), 0);	/* not merged */
	assert_arena_valid(&arena);
	q = alloc_pages(&arena, 0);
	assert_ptr_equal(q, p);					/* LIFO */
	assert_int_equal(arena.pcp_count, 0);
	assert_int_equal(mm_page_order(&arena, q), 0);

	/* A double free into the cache is caught like any other. */
	free_pages(&arena, q, 0);
	expect_bug(&arena, "free_pages", "already free", free_pages(&arena, q, 0));
	assert_int_equal(arena.pcp_count, 1);

	/* Every page out, every page back: the cache spills at 'max'. */
	for (size_t i = 0; i < n; i++) {
		v[i] = alloc_pages(&arena, 0);
		assert_non_null(v[i]);
	}
	assert_null(alloc_pages(&arena, 0));
	for (size_t i = 0; i < n; i++) {
		free_pages(&arena, v[i], 0);
		assert_true(arena.pcp_count <= max);
	}
	assert_int_equal(mm_arena_free_pages(&arena), n);
	assert_arena_valid(&arena);

	/* The largest block is only there once the cache gives its pages up. */
	p = alloc_pages(&arena, k);
	assert_non_null(p);
	assert_int_equal(arena.pcp_count, 0);
	free_pages(&arena, p, k);

	/* Off: emptied, merged, as if it had never been. */
	p = alloc_pages(&arena, 0);
	free_pages(&arena, p, 0);
	assert_int_equal(arena.pcp_count, 1);
	mm_arena_set_pcp(&arena, 0);
	assert_int_equal(arena.pcp_count, 0);
	assert_int_equal(mm_arena_nr_free_order(&arena, k), 1);
	p = alloc_pages(&arena, 0);
	free_pages(&arena, p, 0);
	assert_int_equal(arena.pcp_count, 0);			/* stays off */
	assert_int_equal(mm_arena_nr_free_order(&arena, k), 1);
	assert_arena_valid(&arena);
	span_fini(&s);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_every_order),
#if CONFIG_MM_PCP_PAGES > 0
		cmocka_unit_test(test_page_cache),
#endif
		cmocka_unit_test(test_merge_every_position),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_alignment_every_order),
		cmocka_unit_test(test_exact_sizes),
		cmocka_unit_test(test_exact_wrong_size),
#if MM_MAX_ORDER >= 2
		cmocka_unit_test(test_exact_freed_as_pages),
#endif
#if MM_MAX_ORDER >= 5 && IS_ENABLED(CONFIG_MM_EXACT_RUNS)
		cmocka_unit_test(test_exact_runs),
#endif
#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_PREFER_RESIDENT) && \
	IS_ENABLED(CONFIG_MM_EXACT_RUNS) && IS_ENABLED(CONFIG_MM_TRIM) && \
	MM_MAX_ORDER >= 7 && MM_PAGE_SHIFT + 4 >= 16	/* blocks of 16 pages, 64 KiB */
		cmocka_unit_test(test_exact_runs_resident),
#endif
#if MM_MAX_ORDER >= 5
		cmocka_unit_test(test_exact_no_single_page_left),
#endif
		cmocka_unit_test(test_bad_frees),
		cmocka_unit_test(test_bad_orders),
		cmocka_unit_test(test_page_order),
		cmocka_unit_test(test_buddyinfo),
		cmocka_unit_test(test_page_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
