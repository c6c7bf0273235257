// SPDX-License-Identifier: MIT
/*
 * mm/backend-mmap.c: anonymous mappings.  Whether memory is really mapped
 * is asked of the kernel: mincore() fails with ENOMEM on any unmapped page
 * of the range.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include "helpers.h"

#define PS MM_PAGE_SIZE

/* 1 if every page of [p, p + len) is mapped, 0 if any is not. */
static int mapped(const void *p, size_t len)
{
	static unsigned char vec[1 << 16];
	size_t mmu = (size_t)sysconf(_SC_PAGESIZE);

	assert_true(len / mmu <= sizeof(vec));
	errno = 0;
	if (mincore((void *)p, len, vec) == 0)
		return 1;
	assert_int_equal(errno, ENOMEM);
	return 0;
}

static void test_init_alignment(void **state)
{
	struct mm_backend_mmap m;

	mm_backend_mmap_init(&m, 0);
	assert_int_equal(m.align, MM_MAX_BLOCK);
	assert_string_equal(m.be.name, "mmap");
	assert_non_null(m.be.release);
	assert_non_null(m.be.discard);
	mm_backend_mmap_init(&m, 2 * PS);
	assert_int_equal(m.align, 2 * PS);
	mm_backend_mmap_init(&m, PS);
	assert_int_equal(m.align, PS);
	/* Not a power of two, or below a page: the default. */
	mm_backend_mmap_init(&m, 3 * PS);
	assert_int_equal(m.align, MM_MAX_BLOCK);
	mm_backend_mmap_init(&m, PS / 2);
	assert_int_equal(m.align, MM_MAX_BLOCK);
}

static void test_grow_aligned(void **state)
{
	const size_t aligns[] = { 0, PS, 4 * PS, 64 * PS, MM_MAX_BLOCK };

	for (size_t i = 0; i < ARRAY_SIZE(aligns); i++) {
		struct mm_backend_mmap m;
		char *p[4];
		size_t got;

		mm_backend_mmap_init(&m, aligns[i]);
		for (int j = 0; j < 4; j++) {
			size_t want = (size_t)(j + 1) * 3 * PS;

			p[j] = mm_backend_grow(&m.be, PS, want, &got);
			assert_non_null(p[j]);
			assert_true(IS_ALIGNED((uintptr_t)p[j], m.align));
			assert_int_equal(got, want);
			assert_true(mapped(p[j], got));
			/* Writable, first byte to last, and zero to begin with. */
			assert_int_equal(p[j][0], 0);
			assert_int_equal(p[j][got - 1], 0);
			memset(p[j], 0x77, got);
		}
		assert_int_equal(m.be.held, 30 * PS);
		assert_int_equal(m.be.nr_grow, 4);
		for (int j = 0; j < 4; j++) {
			assert_int_equal(mm_backend_release(&m.be, p[j], (size_t)(j + 1) * 3 * PS), 0);
			assert_false(mapped(p[j], PS));
		}
		assert_int_equal(m.be.held, 0);
		assert_int_equal(m.be.nr_release, 4);
		assert_int_equal(m.be.nr_fail, 0);
	}
}

static void test_grow_min_want(void **state)
{
	struct mm_backend_mmap m;
	size_t got;
	char *p, *q, *r;

	mm_backend_mmap_init(&m, 0);
	/* want below min: min.  Not a page multiple: rounded down. */
	p = mm_backend_grow(&m.be, 2 * PS, PS, &got);
	assert_int_equal(got, 2 * PS);
	q = mm_backend_grow(&m.be, PS, 2 * PS + 1, &got);
	assert_int_equal(got, 2 * PS);
	/* "All you have" from mmap is the minimum. */
	r = mm_backend_grow(&m.be, 3 * PS, SIZE_MAX, &got);
	assert_int_equal(got, 3 * PS);
	assert_true(mapped(r, 3 * PS));
	assert_int_equal(m.be.held, 7 * PS);
	mm_backend_release(&m.be, p, 2 * PS);
	mm_backend_release(&m.be, q, 2 * PS);
	mm_backend_release(&m.be, r, 3 * PS);
	assert_int_equal(m.be.held, 0);

	/*
	 * A want no kernel maps (half the address space): min.  And errno
	 * as it was: the malloc() that grew the arena succeeded, and a
	 * program that reads errno after a call that allocates inside (NSS's
	 * getpwnam(): NULL and errno 0 is "no such user") saw ENOMEM.
	 */
	errno = 4242;
	p = mm_backend_grow(&m.be, PS, (SIZE_MAX / 2) & MM_PAGE_MASK, &got);
	assert_non_null(p);
	assert_int_equal(errno, 4242);
	assert_int_equal(got, PS);
	assert_int_equal(m.be.nr_fail, 0);
	mm_backend_release(&m.be, p, PS);
}

static void test_bad_requests(void **state)
{
	struct mm_backend_mmap m;
	const size_t bad_min[] = {
		0, 1, PS - 1, PS + 1, SIZE_MAX / 2 + 1, SIZE_MAX & MM_PAGE_MASK, SIZE_MAX,
	};
	size_t got;

	mm_backend_mmap_init(&m, 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad_min); i++) {
		got = 7;
		assert_null(mm_backend_grow(&m.be, bad_min[i], SIZE_MAX, &got));
		assert_int_equal(got, 0);
		assert_null(mm_backend_grow(&m.be, bad_min[i], bad_min[i], &got));
	}
	/* Well formed but impossible: half the address space. */
	errno = 0;
	assert_null(mm_backend_grow(&m.be, (SIZE_MAX / 2) & MM_PAGE_MASK, SIZE_MAX, &got));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(m.be.nr_fail, 2 * ARRAY_SIZE(bad_min) + 1);
	assert_int_equal(m.be.nr_grow, 0);
	assert_int_equal(m.be.held, 0);

	/* Releases of more than is held, or unaligned, are refused. */
	char *p = mm_backend_grow(&m.be, PS, PS, &got);
	assert_int_equal(mm_backend_release(&m.be, p, 2 * PS), -1);
	assert_int_equal(mm_backend_release(&m.be, p + 1, PS), -1);
	assert_int_equal(mm_backend_release(&m.be, p, PS - 1), -1);
	assert_int_equal(mm_backend_release(&m.be, p, 0), -1);
	assert_true(mapped(p, PS));
	assert_int_equal(mm_backend_release(&m.be, p, PS), 0);
}

static void test_release_unmaps(void **state)
{
	struct mm_backend_mmap m;
	size_t got;
	char *p;

	mm_backend_mmap_init(&m, 0);
	p = mm_backend_grow(&m.be, 16 * PS, 16 * PS, &got);
	assert_non_null(p);
	memset(p, 1, got);

	/* A tail goes: unmapped; the head stays, contents intact. */
	assert_int_equal(mm_backend_release(&m.be, p + 10 * PS, 6 * PS), 0);
	assert_false(mapped(p + 10 * PS, PS));
	assert_false(mapped(p + 15 * PS, PS));
	assert_true(mapped(p, 10 * PS));
	assert_int_equal(p[10 * PS - 1], 1);
	assert_int_equal(m.be.held, 10 * PS);

	/* Then the rest. */
	assert_int_equal(mm_backend_release(&m.be, p, 10 * PS), 0);
	assert_false(mapped(p, PS));
	assert_int_equal(m.be.held, 0);
	assert_int_equal(m.be.nr_release, 2);
}

static void test_discard_reads_zero(void **state)
{
	struct mm_backend_mmap m;
	size_t got;
	char *p;

	mm_backend_mmap_init(&m, 0);
	p = mm_backend_grow(&m.be, 8 * PS, 8 * PS, &got);
	assert_non_null(p);
	memset(p, 0xee, got);
	assert_int_equal(mm_backend_discard(&m.be, p + 2 * PS, 4 * PS), 0);
	/* Still mapped, still ours, but the contents are gone. */
	assert_true(mapped(p, 8 * PS));
	for (size_t i = 2 * PS; i < 6 * PS; i += 512)
		assert_int_equal(p[i], 0);
	assert_int_equal((unsigned char)p[2 * PS - 1], 0xee);
	assert_int_equal((unsigned char)p[6 * PS], 0xee);
	p[3 * PS] = 5;		/* and usable again */
	assert_int_equal(p[3 * PS], 5);
	assert_int_equal(m.be.held, 8 * PS);
	assert_int_equal(mm_backend_discard(&m.be, p, 0), -1);
	assert_int_equal(mm_backend_sync(&m.be, p, PS), 0);
	mm_backend_release(&m.be, p, 8 * PS);
}

/*
 * How many of the n pages at p are resident: those of which any MMU page
 * is (ours may be larger: CONFIG_MM_PAGE_SHIFT up to 16).
 */
static size_t resident(const void *p, size_t n)
{
	static unsigned char vec[1 << 16];
	size_t mmu = (size_t)sysconf(_SC_PAGESIZE), per = PS / mmu, k = 0;

	assert_true(PS % mmu == 0 && n * per <= sizeof(vec));
	assert_int_equal(mincore((void *)p, n * PS, vec), 0);
	for (size_t i = 0; i < n; i++) {
		int any = 0;

		for (size_t j = 0; j < per; j++)
			any |= vec[i * per + j] & 1;
		k += any;
	}
	return k;
}

/*
 * zero(): pages written are cleared, pages never touched stay untouched --
 * both read zero, and only the first kind is resident afterwards.  So are
 * a range's pages after being dropped once (as a free block's would).
 * Pages of ours larger than the MMU's too (scripts/check.sh runs this
 * with 64 KiB pages): mincore() answers for each MMU page.
 */
static void test_zero_leaves_untouched_pages(void **state)
{
	const size_t n = 64;
	struct mm_backend_mmap m;
	size_t got;
	char *p;

	mm_backend_mmap_init(&m, 0);
	assert_non_null(m.be.zero);
	p = mm_backend_grow(&m.be, n * PS, n * PS, &got);
	assert_non_null(p);
	for (size_t i = 0; i < n; i += 4)	/* every fourth page, and a run */
		memset(p + i * PS, 0xd7, PS);
	memset(p + 40 * PS, 0xd7, 8 * PS);
	assert_int_equal(resident(p, n), n / 4 + 6);

	mm_backend_zero(&m.be, p, n * PS);
	assert_int_equal(resident(p, n), n / 4 + 6);	/* none touched for it */
	for (size_t i = 0; i < n * PS; i += sizeof(long))
		assert_int_equal(*(long *)(p + i), 0);

	/* Written again, then dropped: zeroed without being made resident. */
	memset(p, 0x3c, n * PS);
	assert_int_equal(mm_backend_discard(&m.be, p + 8 * PS, 16 * PS), 0);
	mm_backend_zero(&m.be, p, n * PS);
	assert_int_equal(resident(p, n), n - 16);
	for (size_t i = 0; i < n * PS; i += sizeof(long))
		assert_int_equal(*(long *)(p + i), 0);
	mm_backend_release(&m.be, p, n * PS);
}

/* ---- An arena on mmap ------------------------------------------------- */

static void test_arena_grows_and_trims(void **state)
{
	static struct mm_arena a;
	struct mm_backend_mmap m;
	struct mm_region *r;
	void *p, *q;

	mm_backend_mmap_init(&m, 0);
	assert_int_equal(mm_arena_init(&a, "mmap", &m.be, 0), 0);
	mm_arena_set_trim(&a, 0, 0);

	p = alloc_pages(&a, 0);
	assert_non_null(p);
	r = a.regions;
	/* The region is aligned to the largest block, its header first. */
	assert_true(IS_ALIGNED((uintptr_t)r, MM_MAX_BLOCK));
	assert_int_equal(m.be.held, r->len);
	q = alloc_pages(&a, MM_MAX_ORDER);
	assert_non_null(q);
	assert_true(IS_ALIGNED((uintptr_t)q, MM_MAX_BLOCK));
	((char *)q)[0] = 1;
	((char *)q)[MM_MAX_BLOCK - 1] = 1;
	assert_arena_valid(&a);
	free_pages(&a, q, MM_MAX_ORDER);
	free_pages(&a, p, 0);

	if (trim_keeps_all(&a, &m.be))
		goto out;
	assert_true(mm_arena_trim(&a, 0) > 0);
	assert_int_equal(mm_arena_free_pages(&a), 0);
	if (!IS_ENABLED(CONFIG_MM_LOCK_NONE)) {
		/* Headers stay (see trim.c); every page after them is gone. */
		for (r = a.regions; r; r = r->next) {
			assert_true(mapped(r, PS));
			assert_false(mapped(pfn_to_addr(r->start_pfn), PS));
		}
	} else {
		assert_int_equal(m.be.held, 0);
		assert_null(a.regions);
		assert_false(mapped(r, PS));
	}
	assert_false(mapped(q, PS));
out:
	assert_int_equal(mm_arena_destroy(&a), 0);
	assert_int_equal(m.be.held, 0);
}

/*
 * Large free blocks in the middle of a region, which cannot go back, are
 * discarded instead: still the arena's, but their pages read zero.
 */
static void test_arena_discards_middle(void **state)
{
	static struct mm_arena a;
	struct mm_backend_mmap m;
	unsigned int o = MM_MAX_ORDER - 1;
	size_t big = PS << o;
	char *head, *mid, *again;
	size_t done, free0, clean;
	/* Built without give-back, nothing is discarded either. */
	int discards = big >= 65536 && o >= 1 && IS_ENABLED(CONFIG_MM_TRIM);

	mm_backend_mmap_init(&m, 0);
	/* Two maximal blocks: the first is split by the header. */
	assert_int_equal(mm_arena_init(&a, "discard", &m.be, 2 * MM_MAX_BLOCK), 0);
	mm_arena_set_trim(&a, 0, 0);
	/* The top block, so that the region's end is not free. */
	head = alloc_pages(&a, MM_MAX_ORDER);
	assert_non_null(head);
	assert_ptr_equal(head, (char *)a.regions + MM_MAX_BLOCK);
	/* The largest block of the first half, written and given back. */
	mid = alloc_pages(&a, o);
	assert_ptr_equal(mid, (char *)a.regions + big);
	for (size_t i = 0; i < big; i += PS)
		mid[i] = 0x19;
	free_pages(&a, mid, o);
	free0 = mm_arena_free_pages(&a);

	done = mm_arena_trim(&a, 0);
	assert_int_equal(mm_arena_free_pages(&a), free0);
	assert_int_equal(m.be.held, 2 * MM_MAX_BLOCK);
	assert_arena_valid(&a);
	if (discards) {
		/*
		 * All but the first page of the block, which holds its list
		 * node (a block of one page, MM_MAX_ORDER=1, has nothing else).
		 */
		assert_true(done >= big - PS);
		assert_true(a.nr_clean >= ((size_t)1 << o));
		for (size_t i = PS; i < big; i += PS)
			assert_int_equal(mid[i], 0);
		/* Discarding again is not needed: nothing more to do. */
		assert_int_equal(mm_arena_trim(&a, 0), 0);
	} else {
		/* Too small to be worth it, or built without give-back. */
		assert_int_equal(done, 0);
	}
	/* Allocated again, the block is whole and usable. */
	clean = a.nr_clean;
	again = alloc_pages(&a, o);
	assert_ptr_equal(again, mid);
	for (size_t i = 0; i < big; i += PS)
		again[i] = 1;
	if (discards)
		assert_int_equal(a.nr_clean, clean - ((size_t)1 << o));
	free_pages(&a, again, o);
	free_pages(&a, head, MM_MAX_ORDER);
	assert_int_equal(a.diag.error_count, 0);
	assert_int_equal(mm_arena_destroy(&a), 0);
	assert_int_equal(m.be.held, 0);
}

/*
 * remap: a mapping the kernel moved lies on any MMU page, not on one of
 * our pages (larger, with MM_PAGE_SHIFT above 12); it can still be
 * resized.  Such resizes were refused, and realloc() of a direct mapping
 * that had moved once kept its memory however far it shrank.  What remap
 * returns lies on a page of ours again, so that the release of whole pages
 * of ours takes it (it was refused, and the mapping leaked).
 */
static void test_remap_mmu_aligned(void **state)
{
	struct mm_backend_mmap m;
	const size_t mmu = 4096;
	char *base, *p, *q;

	mm_backend_mmap_init(&m, 0);
	base = mmap(NULL, 4 * PS + mmu, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	assert_true(base != MAP_FAILED);
	/* One MMU page in: on no page of ours where those are larger. */
	p = (char *)ALIGN((uintptr_t)base, PS) + mmu;
	munmap(base, (size_t)(p - base));
	munmap(p + 3 * PS, (size_t)(base + 4 * PS + mmu - (p + 3 * PS)));
	p[0] = 1;
	p[3 * PS - 1] = 2;
	m.be.held = 3 * PS;
	q = mm_backend_mmap_remap(&m, p, 3 * PS, PS);
	assert_non_null(q);
	assert_true(((uintptr_t)q & (PS - 1)) == 0);
	assert_int_equal(q[0], 1);
	assert_int_equal(m.be.held, PS);
	/* And the kernel's rule stays: not on an MMU page, refused. */
	assert_null(mm_backend_mmap_remap(&m, q + 8, PS, PS));
	assert_int_equal(mm_backend_release(&m.be, q, PS), 0);
	assert_int_equal(m.be.held, 0);
}

/* grow_at: maps exactly the pages asked for, never over a mapping. */
static void test_grow_at(void **state)
{
	struct mm_backend_mmap m;
	size_t got;
	char *p;

	mm_backend_mmap_init(&m, 0);
	p = mm_backend_grow(&m.be, 4 * PS, 4 * PS, &got);
	assert_non_null(p);
	/* Give back the tail, as a trim does, then take it back in place. */
	assert_int_equal(mm_backend_release(&m.be, p + 2 * PS, 2 * PS), 0);
	assert_int_equal(mm_backend_grow_at(&m.be, p + 2 * PS, 2 * PS), 0);
	memset(p, 7, 4 * PS);
	/*
	 * Already mapped: refused, and the contents are untouched.  errno
	 * too: a refused regrow is no failure of the malloc() that tried it,
	 * which goes on to a new region (it returned a block with errno
	 * EEXIST).
	 */
	errno = 4242;
	assert_int_equal(mm_backend_grow_at(&m.be, p + PS, PS), -1);
	assert_int_equal(errno, 4242);
	assert_int_equal(p[PS], 7);
	assert_int_equal(m.be.held, 4 * PS);
	assert_int_equal(mm_backend_release(&m.be, p, 4 * PS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_alignment),
		cmocka_unit_test(test_grow_aligned),
		cmocka_unit_test(test_grow_min_want),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_release_unmaps),
		cmocka_unit_test(test_discard_reads_zero),
		cmocka_unit_test(test_zero_leaves_untouched_pages),
		cmocka_unit_test(test_arena_grows_and_trims),
		cmocka_unit_test(test_arena_discards_middle),
		cmocka_unit_test(test_grow_at),
		cmocka_unit_test(test_remap_mmu_aligned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
