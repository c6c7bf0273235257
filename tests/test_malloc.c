// SPDX-License-Identifier: MIT
/*
 * mm/malloc.c: the C allocation API, for both facades.
 *
 * With CONFIG_MM_MALLOC_PREFIXED the functions are mm_malloc, mm_free, ...;
 * with CONFIG_MM_MALLOC_LIBC they are malloc, free, ... themselves: this
 * program links libmm.a, so every allocation in it (CMocka's and the C
 * library's own included) is mm's.  M(name) picks the right name.
 *
 * Sizes that must fail are passed through opaque() so the compiler neither
 * folds the call nor warns about an impossible constant size.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mm/bitops.h>
#include "helpers.h"

/* Which sizes the heap serves (mm/heap.h, which the tiny core cannot include). */
static __maybe_unused int heap_serves(size_t size)
{
#if IS_ENABLED(CONFIG_MM_HEAP)
	return size > CONFIG_MM_HEAP_MIN && size <= ((size_t)CONFIG_MM_HEAP_MAX_KB << 10);
#else
	return 0;
#endif
}

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define M(x) mm_##x
typedef struct mm_mallinfo2 mallinfo2_t;
#else
#define M(x) x
typedef struct mallinfo2 mallinfo2_t;
#endif

/*
 * valloc and pvalloc are mm's with the extras, and wherever mm takes the C
 * library's names on a host, the tiny core's too (mm/malloc.c): a preloaded
 * libmm.so must hand out every block the program will free.
 */
#define HAVE_VALLOC	(IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) || \
			 (IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && IS_ENABLED(CONFIG_ARCH_HOST)))

#define PAGE		((size_t)4096)
#define MAX_ALIGN	alignof(max_align_t)
#define KiB		((size_t)1024)
#define MiB		(1024 * KiB)

/*
 * The largest block the default arena can be counted on for, again and
 * again, with other blocks live.  A static heap is small and fixed (16 MiB
 * on hosts) and the arena takes it in pieces as it grows, so large blocks
 * there are few: sizes up to 1/64 of it are tested.
 */
#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC) && defined(CONFIG_MM_STATIC_SIZE)
#define BIG		min_t(size_t, (size_t)CONFIG_MM_STATIC_SIZE / 64, MM_MAX_BLOCK)
#else
#define BIG		MM_MAX_BLOCK
#endif
/* Beyond the largest buddy block: direct mappings, on hosts with mmap. */
#define HUGE_OK		PAST_BLOCK_OK

/* 1 if a request that needs n bytes (or n-aligned) can be expected to work. */
static int testable(size_t n)
{
	return n <= BIG || (n > MM_MAX_BLOCK && HUGE_OK);
}

/* The same for n bytes aligned to align (a buddy block of both, or a mapping). */
static int testable_aligned(size_t n, size_t align)
{
	return n > MM_MAX_BLOCK ? HUGE_OK : (n > align ? n : align) <= BIG;
}

static size_t opaque(size_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

/*
 * realloc and reallocarray for calls expected to fail: out of line, so the
 * compiler does not treat the old pointer as freed (-Wuse-after-free).
 */
static __attribute__((noinline)) void *realloc_fails(void *p, size_t n)
{
	return M(realloc)(p, opaque(n));
}

static __attribute__((noinline)) void *reallocarray_fails(void *p, size_t n, size_t size)
{
	return M(reallocarray)(p, opaque(n), opaque(size));
}

static int aligned_to(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

static struct mm_arena *arena(void)
{
	struct mm_arena *a = mm_default_arena();

	assert_non_null(a);
	return a;
}

/* Bytes of arena pages in use (slabs and large blocks). */

/* Give everything that can go back, back: empty slabs, then free pages. */
static void settle(void)
{
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	M(malloc_trim)(0);
#else
	mm_percpu_drain();	/* what malloc_trim() does first */
#endif
	kmem_cache_reap(mm_default_arena());
}

/* 1 if p lies in a region of the default arena. */
static int in_arena(const void *p)
{
	uintptr_t pfn = addr_to_pfn(p);

#if IS_ENABLED(CONFIG_MM_TINY)
	struct mm_arena *a = mm_default_arena();

	return pfn - a->start_pfn < a->nr_pages;
#else
	for (struct mm_region *r = mm_default_arena()->regions; r; r = r->next) {
		if (pfn >= r->start_pfn && pfn < mm_region_end(r))
			return 1;
	}
	return 0;
#endif
}

static void fill(void *p, size_t n, unsigned int seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)(seed + i * 7);
}

static int filled(const void *p, size_t n, unsigned int seed)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (c[i] != (unsigned char)(seed + i * 7))
			return 0;
	}
	return 1;
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (c[i])
			return 0;
	}
	return 1;
}

/* usable >= n, and every usable byte can be written. */
static void assert_usable(void *p, size_t n)
{
	size_t u = M(malloc_usable_size)(p);

	assert_non_null(p);
	assert_true(u >= n);
	memset(p, 0xa5, u);
}

/* ---- Which allocator are we talking to --------------------------------- */

static void test_facade_is_mm(void **state)
{
	void *p = M(malloc)(100);

	assert_non_null(p);
	assert_true(in_arena(p));
	assert_true(ksize(p) >= 100);
	assert_int_equal(ksize(p), M(malloc_usable_size)(p));
	M(free)(p);
#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
	/* The C library's own allocations come from mm too. */
	char *s = strdup("hello, mm");

	assert_non_null(s);
	assert_true(in_arena(s));
	assert_true(ksize(s) >= 10);
	free(s);
#endif
}

/* ---- malloc / free ------------------------------------------------------ */

static void test_alignment_many_sizes(void **state)
{
	enum { WINDOW = 32 };
	void *live[WINDOW] = { 0 };

	for (size_t n = 1; n <= 100000 && (n <= MM_MAX_BLOCK || HUGE_OK); n++) {
		unsigned char *p = M(malloc)(n);
		size_t u;

		assert_non_null(p);
		assert_true(aligned_to(p, MAX_ALIGN));
		u = M(malloc_usable_size)(p);
		assert_true(u >= n);
		if (n <= 4096 || n % 997 == 0)
			memset(p, (int)n, u);
		else
			p[0] = p[u - 1] = (unsigned char)n;
		M(free)(live[n % WINDOW]);
		live[n % WINDOW] = p;
	}
	for (int i = 0; i < WINDOW; i++)
		M(free)(live[i]);
	/* Past the largest block with nothing to serve it: refused, said so. */
	if (!HUGE_OK && MM_MAX_BLOCK < 100000) {
		errno = 0;
		assert_null(M(malloc)(opaque(MM_MAX_BLOCK + 1)));
		assert_int_equal(errno, ENOMEM);
	}
}

static void test_malloc_zero_unique(void **state)
{
	enum { N = 200 };
	void *p[N];

	for (int i = 0; i < N; i++) {
		p[i] = M(malloc)(0);
		assert_non_null(p[i]);
		assert_true(aligned_to(p[i], MAX_ALIGN));
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(p[i], p[j]);
	}
	for (int i = 0; i < N; i++)
		M(free)(p[i]);
}

static void test_free_null_and_errno(void **state)
{
	void *small = M(malloc)(24), *large = M(malloc)(min_t(size_t, 300 * KiB, BIG));
	void *huge = M(malloc)(HUGE_OK ? 6 * MiB : 100);

	assert_non_null(small);
	assert_non_null(large);
	assert_non_null(huge);
	errno = 1234;
	M(free)(NULL);
	assert_int_equal(errno, 1234);
	M(free)(small);
	assert_int_equal(errno, 1234);
	M(free)(large);
	assert_int_equal(errno, 1234);
	M(free)(huge);
	assert_int_equal(errno, 1234);
	errno = 0;
}

/*
 * A request that succeeds leaves errno alone, also when the system calls
 * that grow the arena fail on the way there: a region that cannot grow in
 * place (another mapping after it: MAP_FIXED_NOREPLACE says EEXIST) before
 * a new region is mapped, or the arena's doubling refused before the
 * least it needs is granted (ENOMEM).  A caller that sets errno to 0 and
 * asks it after a call that allocates inside -- getpwnam(), readdir() --
 * took such a success for a failure.
 *
 * The growths refused are the mmap backend's (a mapping placed after a
 * region, an address-space limit); where there is no such growth to
 * refuse, there is no test: it is left out of the list, not skipped.
 */
#define GROWTH_TESTS (!IS_ENABLED(CONFIG_MM_TINY) && \
		      IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_MMAP) && IS_ENABLED(CONFIG_MM_TRIM))
#if GROWTH_TESTS
static void free_blocks(void *list)
{
	while (list) {
		void *next = *(void **)list;

		M(free)(list);
		list = next;
	}
}

/* Blocks of 'size' bytes until the arena grows: errno after each. */
static int grow_keeps_errno(struct mm_arena *a, size_t size, void **list,
			    unsigned int max, unsigned long *grew)
{
	struct mm_diag d;
	unsigned long before;

	mm_arena_diag(a, &d);
	before = d.nr_grow;
	for (unsigned int i = 0; i < max; i++) {
		void **p;

		errno = 1234;
		p = M(malloc)(size);
		if (!p)
			break;
		if (errno != 1234)
			return errno;
		*p = *list;
		*list = p;
		mm_arena_diag(a, &d);
		if (d.nr_grow != before)
			break;
	}
	*grew = d.nr_grow - before;
	return 0;
}

/* An address-space limit at what the process has mapped now, plus 'room'. */
static int limit_address_space(size_t room)
{
	struct rlimit rl;
	unsigned long vm_pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%lu", &vm_pages) != 1)
		return -1;
	fclose(f);
	rl.rlim_cur = rl.rlim_max = vm_pages * (size_t)sysconf(_SC_PAGESIZE) + room;
	return setrlimit(RLIMIT_AS, &rl);
}

/*
 * In a child with no room for a region more: every page the arena has in
 * objects of 64 bytes, then all of one slab's objects freed -- parked in
 * the thread's magazine, or an empty slab kept -- and a request of another
 * class, which a growth cannot serve and a reclaim can.  0: it succeeded,
 * errno as it was; 1: errno changed; 2: it failed; 3: no such slab;
 * 4: it succeeded, but the OOM hook was called or a failure counted; 5: no
 * other class's slab is as small as the freed one's (memalign() with
 * MM_KMALLOC_SHIFT_LOW=7 and no heap: kmalloc-128 takes one page, every
 * power-of-two class from 256 bytes up more), so nothing to try.
 */
static int reclaim_hook_calls;

static int reclaim_hook(struct mm_arena *a, size_t bytes, void *ctx)
{
	reclaim_hook_calls++;
	return 0;
}

static unsigned long oom_count(struct mm_arena *a)
{
	struct mm_diag d;

	mm_arena_diag(a, &d);
	return d.oom_count;
}

static int reclaim_child(struct mm_arena *a, int aligned)
{
	unsigned long oom0;
	struct kmem_cache *c = kmalloc_slab(64);
	struct kmem_cache_info ci;
	void *list = NULL, *p, **pp;
	uintptr_t mask, base = 0;

	for (struct mm_region *r = a->regions; r; r = r->next)
		r->no_regrow = 1;
	if (!c)
		return 3;
	kmem_cache_info(c, &ci);
	/* Some slabs first: the test before trimmed the arena to nothing. */
	for (int i = 0; i < 1024; i++) {
		p = M(malloc)(64);
		if (!p)
			return 3;
		*(void **)p = list;
		list = p;
	}
	if (limit_address_space(0))
		return 3;
	while ((p = M(malloc)(64)) != NULL) {
		*(void **)p = list;
		list = p;
	}
	/* A slab whose objects are all on the list (others may hold some of the older ones). */
	mask = ~((uintptr_t)ci.pages_per_slab * MM_PAGE_SIZE - 1);
	for (p = list; p && !base; p = *(void **)p) {
		unsigned int n = 0;

		for (void *q = list; q; q = *(void **)q)
			n += ((uintptr_t)q & mask) == ((uintptr_t)p & mask);
		if (n == ci.objs_per_slab)
			base = (uintptr_t)p & mask;
	}
	if (!base)
		return 3;
	for (pp = &list; *pp;) {
		p = *pp;
		if (((uintptr_t)p & mask) == base) {
			*pp = *(void **)p;
			M(free)(p);
		} else {
			pp = (void **)p;
		}
	}
	/*
	 * A size those pages can serve: another class whose slab is no
	 * larger (kmalloc-256's takes two with MM_SLAB_MAX_ORDER=1), or a
	 * size no class serves (past them, MM_KMALLOC_SHIFT_HIGH=6, or the
	 * heap's, whose span is more than a page), which a page does.
	 */
	for (size_t size = 72; size <= 4096; size += 8) {
		/* memalign(16, size) takes the power-of-two class at least size. */
		struct kmem_cache *o = kmalloc_slab(aligned ? roundup_pow_of_two(size) : size);
		struct kmem_cache_info oi;

		if (o == c)
			continue;
		if (o) {
			kmem_cache_info(o, &oi);
			if (oi.pages_per_slab > ci.pages_per_slab)
				continue;
		}
		errno = 1234;
		oom0 = oom_count(a);
		mm_arena_set_oom_hook(a, reclaim_hook, NULL);
		p = aligned ? M(memalign)(16, size) : M(malloc)(size);
		mm_arena_set_oom_hook(a, NULL, NULL);
		if (p && (reclaim_hook_calls || oom_count(a) != oom0))
			return 4;
		return !p ? 2 : errno != 1234;
	}
	return aligned ? 5 : 3;	/* the unaligned case always has a size to try */
}

static void test_success_keeps_errno(void **state)
{
	enum { MAX_BLOCKERS = 16 };
	struct mm_arena *a = arena();
	void *list = NULL, *blocker[MAX_BLOCKERS];
	unsigned int nb = 0, regrowable = 0;
	unsigned long grew = 0;
	struct kmem_cache *k;
	struct kmem_cache_info ki;
	size_t room;
	int err, status;
	pid_t pid;

	/* Regrowth in place refused: the regions' tails given back, a mapping after each. */
	settle();
	mm_arena_trim(a, 0);
	for (struct mm_region *r = a->regions; r && nb < MAX_BLOCKERS; r = r->next) {
		void *end = pfn_to_addr(mm_region_end(r));
		void *m;

		if (r->backend != a->backend || r->no_regrow || r->max_pages - r->nr_pages < 16)
			continue;
		m = mmap(end, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (m == MAP_FAILED)
			continue;
		blocker[nb++] = m;
		regrowable += m == end;
	}
	/* Enough blocks to take what the trim left free, and then grow. */
	err = regrowable ? grow_keeps_errno(a, MM_MAX_BLOCK, &list,
					    (unsigned int)(mm_arena_free_pages(a) * MM_PAGE_SIZE /
							   MM_MAX_BLOCK) + 64, &grew) : 0;
	free_blocks(list);
	while (nb)
		munmap(blocker[--nb], PAGE);
	errno = 0;
	assert_int_equal(err, 0);
	if (regrowable)
		assert_true(grew > 0);

	/*
	 * The doubling refused, the least granted: in a child whose address
	 * space has room for a region of a few blocks of 1/16 of the
	 * largest (and the slack mapped to align it), not for the arena's
	 * doubling.
	 */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* An arena of two largest blocks at least: its doubling is as much. */
		list = NULL;
		for (int i = 0; i < 32; i++) {
			void **p = M(malloc)(MM_MAX_BLOCK / 16);

			if (!p)
				_exit(3);
			*p = list;
			list = p;
		}
		/* No region grows in place: the arena must map a new one. */
		for (struct mm_region *r = a->regions; r; r = r->next)
			r->no_regrow = 1;
		/*
		 * 32 pages at least: a growth's least with its alignment slack
		 * (8 KiB blocks).  Where a class serves the requests, its slab
		 * is what a growth must hold, twice over to align it inside
		 * (arena.c), with a page of metadata and another, and the
		 * mapping's slack to align the region to the largest block
		 * (MM_HEAP off, MM_MAX_ORDER=4: kmalloc-4k's slab of 32 KiB, a
		 * growth of 136 KiB, more than the 128 the line before gave).
		 */
		room = max_t(size_t, MM_MAX_BLOCK + MM_MAX_BLOCK / 2, 32 * MM_PAGE_SIZE);
		if ((k = kmalloc_slab(MM_MAX_BLOCK / 16)) != NULL) {
			kmem_cache_info(k, &ki);
			room = max_t(size_t, room, (2 * (size_t)ki.pages_per_slab + 2) * MM_PAGE_SIZE +
					     MM_MAX_BLOCK);
		}
		if (limit_address_space(room))
			_exit(3);
		err = grow_keeps_errno(a, MM_MAX_BLOCK / 16, &list,
				       (unsigned int)(mm_arena_free_pages(a) * MM_PAGE_SIZE /
						      (MM_MAX_BLOCK / 16)) + 1024, &grew);
		_exit(err ? 1 : grew ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 1)
		fail_msg("a malloc() that grew the arena changed errno");
	assert_int_equal(WEXITSTATUS(status), 0);

	/*
	 * The growth refused outright, the request served after all by the
	 * objects this thread's magazine parks: they go back to their slab,
	 * whose page a reclaim then gives to another class.  A success:
	 * errno as it was.
	 */
	for (int aligned = 0; aligned < 2; aligned++) {
		const char *fn = aligned ? "memalign()" : "malloc()";

		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(reclaim_child(a, aligned));
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 1)
			fail_msg("a %s that a reclaim served changed errno", fn);
		if (WEXITSTATUS(status) == 2)
			fail_msg("a %s failed with a whole slab parked in the thread's magazine", fn);
		if (WEXITSTATUS(status) == 4)
			fail_msg("a %s that succeeded called the OOM hook or counted a failure", fn);
		if (WEXITSTATUS(status) == 5)
			continue;
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}
#endif /* GROWTH_TESTS */

static void test_usable_size(void **state)
{
	static const size_t sizes[] = {
		1, 8, 15, 16, 17, 63, 64, 65, 96, 97, 192, 193, 1000, 4095, 4096,
		4097, 8191, 8192, 8193, 65536, 100000, MiB, 4 * MiB - 1, 4 * MiB,
		4 * MiB + 1, 9 * MiB
	};

	assert_int_equal(M(malloc_usable_size)(NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		void *p;

		if (!testable(sizes[i]))
			continue;
		p = M(malloc)(sizes[i]);
		assert_true(aligned_to(p, MAX_ALIGN));
		assert_usable(p, sizes[i]);
		M(free)(p);
	}
}

static void test_failures_set_enomem(void **state)
{
	static const size_t huge[] = {
		SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX / 2 + 1,
		PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4096,
	};
	void *p;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(huge); i++) {
		size_t n = opaque(huge[i]);

		errno = 0;
		assert_null(M(malloc)(n));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(M(calloc)(1, n));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(M(aligned_alloc)(64, n));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(M(aligned_alloc)(MiB, n));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(M(memalign)(4096, n));
		assert_int_equal(errno, ENOMEM);
#if HAVE_VALLOC
		errno = 0;
		assert_null(M(valloc)(n));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(M(pvalloc)(n));
		assert_int_equal(errno, ENOMEM);
#endif
		/* Returned, and in errno too, as glibc does it. */
		p = (void *)0x1234;
		errno = 0;
		rc = M(posix_memalign)(&p, 64, n);
		assert_int_equal(rc, ENOMEM);
		assert_ptr_equal(p, (void *)0x1234);
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(M(realloc)(NULL, n));
		assert_int_equal(errno, ENOMEM);
	}
	/* The heap still works. */
	p = M(malloc)(100);
	assert_non_null(p);
	M(free)(p);
}

/* ---- calloc ------------------------------------------------------------- */

static void test_calloc_zeroes_dirty_memory(void **state)
{
	static const size_t sizes[] = {
		1, 16, 40, 96, 100, 500, 3000, 8192, 8193, 40000, 300000, 5 * MiB
	};
	enum { N = 16 };
	void *p[N];

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t n = sizes[s], cnt = n > MiB ? 2 : N;

		if (!testable(n))
			continue;

		for (size_t i = 0; i < cnt; i++) {
			p[i] = M(malloc)(n);
			assert_non_null(p[i]);
			memset(p[i], 0xee, M(malloc_usable_size)(p[i]));
		}
		for (size_t i = 0; i < cnt; i++)
			M(free)(p[i]);
		for (size_t i = 0; i < cnt; i++) {
			p[i] = M(calloc)(1, n);
			assert_non_null(p[i]);
			assert_true(aligned_to(p[i], MAX_ALIGN));
			assert_true(all_zero(p[i], n));
			memset(p[i], 0xee, n);
		}
		for (size_t i = 0; i < cnt; i++)
			M(free)(p[i]);
		/* n elements of 1 byte is the same request */
		p[0] = M(calloc)(n, 1);
		assert_non_null(p[0]);
		assert_true(all_zero(p[0], n));
		M(free)(p[0]);
	}
}

static void test_calloc_overflow(void **state)
{
	static const size_t pairs[][2] = {
		{ SIZE_MAX, 2 }, { 2, SIZE_MAX }, { SIZE_MAX / 2 + 1, 2 },
		{ (size_t)1 << 32, (size_t)1 << 32 }, { SIZE_MAX / 3 + 1, 3 },
		{ 65537, SIZE_MAX / 65536 },
	};
	void *p;

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		errno = 0;
		assert_null(M(calloc)(opaque(pairs[i][0]), opaque(pairs[i][1])));
		assert_int_equal(errno, ENOMEM);
	}
	/* Zero elements or zero size: a valid, freeable block. */
	p = M(calloc)(0, opaque(SIZE_MAX));
	assert_non_null(p);
	M(free)(p);
	p = M(calloc)(opaque(SIZE_MAX), 0);
	assert_non_null(p);
	M(free)(p);
	p = M(calloc)(1000, 8);
	assert_non_null(p);
	assert_true(all_zero(p, 8000));
	M(free)(p);
}

/* ---- realloc ------------------------------------------------------------ */

static void test_realloc_keeps_contents(void **state)
{
	static const size_t steps[] = {
		1, 2, 15, 16, 17, 40, 96, 100, 192, 200, 1000, 4096, 8192, 8193,
		20000, 100000, MiB, 4 * MiB, 5 * MiB, 12 * MiB, 3 * MiB, 70000,
		5000, 300, 33, 1
	};
	size_t have = 0;
	unsigned char *p = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		size_t n = steps[i];
		unsigned char *q;

		if (!testable(n))
			continue;
		q = M(realloc)(p, n);

		assert_non_null(q);
		assert_true(aligned_to(q, MAX_ALIGN));
		assert_true(M(malloc_usable_size)(q) >= n);
		assert_true(filled(q, have < n ? have : n, 11));
		fill(q, n, 11);
		p = q;
		have = n;
	}
	M(free)(p);
}

static void test_realloc_in_place_when_it_fits(void **state)
{
	static const size_t sizes[] = { 1, 20, 100, 700, 5000, 10000, 200000, 6 * MiB };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		unsigned char *p, *q;
		size_t u;

		if (!testable(sizes[i]))
			continue;
		p = M(malloc)(sizes[i]);
		assert_non_null(p);
		u = M(malloc_usable_size)(p);
		fill(p, sizes[i], 3);
		/* Growing within the usable size, or staying put. */
		q = M(realloc)(p, u);
		assert_ptr_equal(q, p);
		q = M(realloc)(p, sizes[i]);
		assert_ptr_equal(q, p);
		assert_true(filled(p, sizes[i], 3));
		M(free)(p);
	}
	/* Small shrinks stay in place too. */
	{
		unsigned char *p = M(malloc)(120);

		assert_ptr_equal(M(realloc)(p, 100), p);
		assert_ptr_equal(M(realloc)(p, 120), p);
		M(free)(p);
	}
}

/*
 * A shrink to a quarter gives back what the block no longer needs, however
 * the block is kept: a slab object moves to a smaller class, a heap block
 * or a run of pages is cut in place.  Kept whole, a realloc()ed buffer
 * would hold the most it ever needed.  Not in the tiny core, which keeps
 * every shrink in place (its code budget): there the pointer stays.  The
 * runs are 10 and 49 pages at any page size (40000 bytes are a heap block
 * where the heap serves them, else one page of 64 KiB, which no cut
 * shrinks): one cut in place keeps whole pages, and one more where the
 * next page was free (page_alloc.c, exact_end()), which of a run of four
 * 64 KiB pages is half.
 */
#if IS_ENABLED(CONFIG_MM_HEAP) && CONFIG_MM_HEAP_MIN < 40000 && CONFIG_MM_HEAP_MAX_KB >= 40
#define SHRINK_40K	40000		/* a heap block */
#else
#define SHRINK_40K	(40000 * (MM_PAGE_SIZE / 4096))
#endif

/*
 * 300 bytes are a slab object, or a heap block where the heap serves them.
 * A slab object moves only from 256 bytes: with the classes ending at 256
 * the largest class stands in, and with classes smaller still no object
 * moves -- 300 bytes are then a whole page, which no cut shrinks, unless
 * the heap serves them.
 */
#if CONFIG_MM_KMALLOC_SHIFT_HIGH >= 9 || (IS_ENABLED(CONFIG_MM_HEAP) && CONFIG_MM_HEAP_MIN < 300)
#define SHRINK_SMALL	300
#elif CONFIG_MM_KMALLOC_SHIFT_HIGH == 8
#define SHRINK_SMALL	256
#endif

/*
 * Did a shrink of whole pages p to n bytes cut them in place to n's pages
 * -- and one page more where the block's exact end would be odd, rather
 * than leave a single free page behind (page_alloc.c, exact_end())?  A
 * block of two pages shrunk to one then keeps both: with MM_MAX_ORDER=1
 * 5000 bytes are whole pages (kmalloc-5120 has no slab), and a quarter
 * of them keeps 8 KiB.
 */
static int pages_cut_to(uintptr_t p, void *q, size_t n)
{
	size_t k = M(malloc_usable_size)(q), pages = ALIGN(n, MM_PAGE_SIZE);

	return !IS_ENABLED(CONFIG_MM_TINY) && (uintptr_t)q == p && p % MM_PAGE_SIZE == 0 &&
	       (k == pages || (k == pages + MM_PAGE_SIZE && ((p + pages) / MM_PAGE_SIZE) & 1));
}

static void test_realloc_shrink_gives_memory_back(void **state)
{
	static const size_t sizes[] = {
#ifdef SHRINK_SMALL
		SHRINK_SMALL,
#endif
		700, 1500, 3000, 5000, SHRINK_40K, 200000 * (MM_PAGE_SIZE / 4096),
	};

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		unsigned char *p, *q;
		uintptr_t was;

		if (!testable(n))
			continue;
		p = M(malloc)(n);
		assert_non_null(p);
		fill(p, n, 12);
		was = (uintptr_t)p;
		q = M(realloc)(p, n / 4);
		assert_non_null(q);
		assert_true(filled(q, n / 4, 12));
		assert_true(M(malloc_usable_size)(q) >= n / 4);
		if (IS_ENABLED(CONFIG_MM_TINY)) {
			assert_ptr_equal(q, p);
			M(free)(q);
			continue;
		}
		if (M(malloc_usable_size)(q) > n / 2 && !pages_cut_to(was, q, n / 4))
			print_message("realloc(%zu -> %zu) kept %zu usable\n", n, n / 4,
				      M(malloc_usable_size)(q));
		assert_true(M(malloc_usable_size)(q) <= n / 2 || pages_cut_to(was, q, n / 4));
		M(free)(q);
	}
}

/*
 * Take blocks of 'size' until kmalloc fails; chained through their first
 * word.  Never past the largest block: those are direct mappings, which
 * no arena limit stops, and taking them all takes the machine's memory
 * (with MM_MAX_ORDER=1 and 64 KiB pages, four pages were one: 22 GB
 * before the kernel's OOM killer stopped the test).
 */
static void *take_all(void *list, size_t size)
{
	void *p;

	assert_true(size <= MM_MAX_BLOCK);
	while ((p = kmalloc(size)) != NULL) {
		*(void **)p = list;
		list = p;
	}
	return list;
}

/*
 * A shrink with no smaller block to be had keeps the block and succeeds,
 * with errno as it was: the move to the smaller class that it tries must
 * not leave malloc()'s ENOMEM behind.  Every page and the two target
 * classes are taken first, the arena kept from growing.
 */
static void test_realloc_shrink_under_oom(void **state)
{
	static const size_t sizes[][2] = { { 400, 100 }, { 3000, 20 } };
	unsigned char *p[2];
	struct mm_diag d __maybe_unused;
	void *list = NULL;

	for (int i = 0; i < 2; i++) {
		p[i] = M(malloc)(sizes[i][0]);
		assert_non_null(p[i]);
		fill(p[i], sizes[i][0], 9 + i);
	}
	/* The tiny core's one region cannot grow anyway. */
#if !IS_ENABLED(CONFIG_MM_TINY)
	mm_arena_diag(mm_default_arena(), &d);
	mm_arena_set_limit(mm_default_arena(), d.capacity);
#endif
	list = take_all(list, min_t(size_t, 4 * MM_PAGE_SIZE, MM_MAX_BLOCK));
	list = take_all(list, MM_PAGE_SIZE);
	list = take_all(list, 100);
	list = take_all(list, 20);
	for (int i = 0; i < 2; i++) {
		errno = 0;
		assert_ptr_equal(M(realloc)(p[i], sizes[i][1]), p[i]);
		assert_int_equal(errno, 0);
		assert_true(filled(p[i], sizes[i][1], 9 + i));
	}
	while (list) {
		void *next = *(void **)list;

		kfree(list);
		list = next;
	}
#if !IS_ENABLED(CONFIG_MM_TINY)
	mm_arena_set_limit(mm_default_arena(), 0);
#endif
	for (int i = 0; i < 2; i++)
		M(free)(p[i]);
}

static void test_realloc_failure_keeps_block(void **state)
{
	static const size_t sizes[] = { 10, 5000, 100000, 5 * MiB };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		unsigned char *p;

		if (!testable(sizes[i]))
			continue;
		p = M(malloc)(sizes[i]);
		assert_non_null(p);
		fill(p, sizes[i], 5);
		errno = 0;
		assert_null(realloc_fails(p, SIZE_MAX));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(realloc_fails(p, PTRDIFF_MAX));
		assert_int_equal(errno, ENOMEM);
		assert_true(filled(p, sizes[i], 5));
		assert_true(M(malloc_usable_size)(p) >= sizes[i]);
		M(free)(p);
	}
}

/* Does malloc(n) take whole pages of the arena, above the classes and the heap? */
static int whole_pages(size_t n)
{
	return n > KMALLOC_MAX_CACHE_SIZE && !heap_serves(n) && n <= MM_MAX_BLOCK;
}

static void test_realloc_zero_and_null(void **state)
{
	size_t before, n;
	void *p;

	/* realloc(NULL, n) is malloc(n). */
	p = M(realloc)(NULL, 200);
	assert_usable(p, 200);
	assert_true(aligned_to(p, MAX_ALIGN));
	M(free)(p);
	p = M(realloc)(NULL, 0);
	assert_non_null(p);
	M(free)(p);

	/*
	 * realloc(p, 0) frees p and returns NULL (glibc).  p in whole pages,
	 * which in_use() counts: half the largest block, or all of it where
	 * half is a class's or the heap's (small blocks).
	 */
	n = whole_pages(BIG / 2) ? BIG / 2 : BIG;
	settle();
	before = in_use();
	p = M(malloc)(n);
	assert_non_null(p);
	if (whole_pages(n))
		assert_true(in_use() >= before + n);
	assert_null(M(realloc)(p, 0));
	assert_int_equal(in_use(), before);
	/* A free, not a failure: errno stays as it was. */
	p = M(malloc)(50);
	errno = 1234;
	assert_null(M(realloc)(p, 0));
	assert_int_equal(errno, 1234);
	/* From NULL a malloc() that fails: ENOMEM. */
	errno = 0;
	assert_null(realloc_fails(NULL, SIZE_MAX));
	assert_int_equal(errno, ENOMEM);
}

static void test_reallocarray(void **state)
{
	unsigned int *p = M(reallocarray)(NULL, 10, sizeof(*p));

	assert_non_null(p);
	for (unsigned int i = 0; i < 10; i++)
		p[i] = i * 3;
	p = M(reallocarray)(p, min_t(size_t, 5000, BIG / sizeof(*p)), sizeof(*p));
	assert_non_null(p);
	for (unsigned int i = 0; i < 10; i++)
		assert_int_equal(p[i], i * 3);
	errno = 0;
	assert_null(reallocarray_fails(p, SIZE_MAX / 2, 4));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(reallocarray_fails(p, (size_t)1 << 40, (size_t)1 << 30));
	assert_int_equal(errno, ENOMEM);
	for (unsigned int i = 0; i < 10; i++)
		assert_int_equal(p[i], i * 3);
	errno = 0;
	assert_null(M(reallocarray)(NULL, opaque(SIZE_MAX), 2));
	assert_int_equal(errno, ENOMEM);
	M(free)(p);
}

/* ---- Aligned allocation ------------------------------------------------- */

enum aligned_fn { AF_ALIGNED_ALLOC, AF_MEMALIGN, AF_POSIX_MEMALIGN };

static void *aligned_call(enum aligned_fn fn, size_t align, size_t size)
{
	void *p = NULL;

	switch (fn) {
	case AF_ALIGNED_ALLOC:
		return M(aligned_alloc)(align, size);
	case AF_MEMALIGN:
		return M(memalign)(align, size);
	case AF_POSIX_MEMALIGN:
		if (align < sizeof(void *))
			align = sizeof(void *);
		assert_int_equal(M(posix_memalign)(&p, align, size), 0);
		return p;
	}
	return NULL;
}

static void check_aligned_fn(enum aligned_fn fn)
{
	for (size_t align = 1; align <= 4 * MiB; align <<= 1) {
		const size_t sizes[] = {
			0, 1, 8, 100, 4000, 10000, 100000, align - 1 ? align - 1 : 1,
			align, align + 1, 3 * align, 5 * MiB
		};

		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			size_t n = sizes[i];
			void *p;

			if (!testable_aligned(n, align))
				continue;
			p = aligned_call(fn, align, n);
			if (!p)
				fail_msg("fn %d align %zu size %zu failed", fn, align, n);
			if (!aligned_to(p, align) || !aligned_to(p, MAX_ALIGN))
				fail_msg("fn %d align %zu size %zu: %p", fn, align, n, p);
			assert_usable(p, n);
			M(free)(p);
		}
		/* Several live at once do not overlap. */
		if (testable_aligned(100, align * 4)) {
			void *p[4];

			for (int i = 0; i < 4; i++) {
				p[i] = aligned_call(fn, align, 100);
				assert_non_null(p[i]);
				assert_true(aligned_to(p[i], align));
				memset(p[i], i, 100);
			}
			for (int i = 0; i < 4; i++) {
				const unsigned char *c = p[i];

				assert_int_equal(c[0], i);
				assert_int_equal(c[99], i);
				M(free)(p[i]);
			}
		}
	}
}

static void test_aligned_alloc(void **state)
{
	void *p;

	check_aligned_fn(AF_ALIGNED_ALLOC);
	errno = 0;
	assert_null(M(aligned_alloc)(opaque(3), 16));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(M(aligned_alloc)(opaque(48), 100));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(M(aligned_alloc)(opaque(0), 100));
	assert_int_equal(errno, EINVAL);
	p = M(aligned_alloc)(64, 0);
	assert_non_null(p);
	M(free)(p);
}

static void test_memalign(void **state)
{
	void *p;

	check_aligned_fn(AF_MEMALIGN);
	/* glibc rounds an alignment that is not a power of two up to one. */
	p = M(memalign)(opaque(24), 100);
	assert_true(aligned_to(p, 32));
	assert_usable(p, 100);
	M(free)(p);
	p = M(memalign)(opaque(3000), 10);	/* 4096 */
	assert_true(aligned_to(p, 4096));
	assert_usable(p, 10);
	M(free)(p);
	p = M(memalign)(opaque(0), 10);
	assert_usable(p, 10);
	M(free)(p);
	/*
	 * glibc: an alignment above the largest power of two can be rounded
	 * to none, EINVAL; the largest itself is a request too big, ENOMEM.
	 * The tiny core, for its flash, says ENOMEM to both.
	 */
	errno = 0;
	assert_null(M(memalign)(opaque(SIZE_MAX / 2 + 2), 10));
	assert_int_equal(errno, IS_ENABLED(CONFIG_MM_TINY) ? ENOMEM : EINVAL);
	errno = 0;
	assert_null(M(memalign)(opaque(SIZE_MAX), 10));
	assert_int_equal(errno, IS_ENABLED(CONFIG_MM_TINY) ? ENOMEM : EINVAL);
	errno = 0;
	assert_null(M(memalign)(opaque(SIZE_MAX / 2 + 1), 10));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(M(memalign)(opaque(SIZE_MAX / 4 + 2), 10));	/* 2^63 */
	assert_int_equal(errno, ENOMEM);
}

static void test_posix_memalign(void **state)
{
	static const size_t bad[] = { 0, 1, 2, 4, 3, 12, 24, 48, 4095, 4097, 3 * MiB };
	void *p;

	check_aligned_fn(AF_POSIX_MEMALIGN);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		p = (void *)0x5678;
		assert_int_equal(M(posix_memalign)(&p, opaque(bad[i]), 64), EINVAL);
		assert_ptr_equal(p, (void *)0x5678);
		assert_int_equal(errno, 0);	/* the error is the return value */
	}
	p = (void *)0x5678;
	assert_int_equal(M(posix_memalign)(&p, 256, opaque(SIZE_MAX)), ENOMEM);
	assert_ptr_equal(p, (void *)0x5678);
	assert_int_equal(M(posix_memalign)(&p, sizeof(void *), 0), 0);
	assert_non_null(p);
	M(free)(p);
}

#if HAVE_VALLOC
static void test_valloc_pvalloc(void **state)
{
	static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 50000, 5 * MiB };
	/* The MMU's page, which is not 4 KiB on every kernel. */
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (!testable_aligned(sizes[i] + page, page))
			continue;
		p = M(valloc)(sizes[i]);
		assert_true(aligned_to(p, page));
		assert_usable(p, sizes[i]);
		M(free)(p);

		p = M(pvalloc)(sizes[i]);
		assert_true(aligned_to(p, page));
		/* pvalloc rounds the size up to whole pages (0 to one page) */
		assert_usable(p, sizes[i] ? (sizes[i] + page - 1) / page * page : page);
		M(free)(p);
	}
	p = M(pvalloc)(1);
	assert_true(M(malloc_usable_size)(p) >= page);
	M(free)(p);
}
#endif

/* ---- Beyond the largest buddy block -------------------------------------- */

/*
 * Sizes from the largest block (4 MiB with 4 KiB pages: 5 and 17 MiB), so
 * that each is a direct mapping at every page size; 64 MiB, or two blocks
 * where that is none.
 */
static void test_huge_direct_mapping(void **state)
{
	static const size_t sizes[] = {
		MM_MAX_BLOCK + 1, MM_MAX_BLOCK + MiB, 4 * MM_MAX_BLOCK + MiB + 3,
		64 * MiB > MM_MAX_BLOCK ? 64 * MiB : 2 * MM_MAX_BLOCK,
	};

	if (!HUGE_OK) {
		/* No mmap backend: beyond the largest block, a clean failure. */
		errno = 0;
		assert_null(M(malloc)(opaque(MM_MAX_BLOCK + 1)));
		assert_int_equal(errno, ENOMEM);
		return;
	}

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		unsigned char *p = M(malloc)(n);

		assert_non_null(p);
		assert_true(aligned_to(p, MAX_ALIGN));
		assert_true(M(malloc_usable_size)(p) >= n);
		assert_false(in_arena(p));
		for (size_t off = 0; off < n; off += PAGE)
			p[off] = (unsigned char)(off >> 12);
		for (size_t off = 0; off < n; off += PAGE)
			assert_int_equal(p[off], (unsigned char)(off >> 12));
		p[n - 1] = 0x5a;
		assert_int_equal(p[n - 1], 0x5a);
		M(free)(p);
	}
	/* Several at once, plus calloc of a fresh mapping. */
	{
		const size_t na = MM_MAX_BLOCK + 2 * MiB, nb = 3 * (MM_MAX_BLOCK * 3 / 4);
		unsigned char *a = M(malloc)(na), *b = M(calloc)(3, MM_MAX_BLOCK * 3 / 4);

		assert_non_null(a);
		assert_non_null(b);
		assert_false(in_arena(a));
		assert_false(in_arena(b));
		assert_true(all_zero(b, nb));
		memset(a, 1, na);
		memset(b, 2, nb);
		assert_int_equal(a[na - 1], 1);
		M(free)(b);
		M(free)(a);
	}
}

#if HUGE_OK
/*
 * A block of 0 bytes aligned beyond the largest buddy block is a direct
 * mapping; it must lie inside it.  Its pointer was the first aligned
 * address a page into the mapping, and a mapping that happened to be
 * aligned to it (mmap's alignment is the largest block, so one in two)
 * put that address one past its end: a usable size of 0, and realloc()
 * took the block for a foreign pointer (ENOMEM and a bug report).
 * Sixteen tries: each has an even chance of such a mapping (four with
 * 64 KiB pages, whose largest block is 64 MiB).
 */
static void test_huge_align_zero_size(void **state)
{
	const size_t align = 2 * MM_MAX_BLOCK;
	enum { TRIES = 16 };
	const int tries = MM_MAX_BLOCK <= 4 * MiB ? TRIES : 4;
	unsigned long e0 = mm_default_arena()->diag.error_count;
	unsigned char *p[TRIES];

	/* All live at once: sixteen mappings, not the one kept for reuse. */
	for (int i = 0; i < tries; i++) {
		unsigned char vec[1];
		uintptr_t page;

		p[i] = aligned_call((enum aligned_fn)(i % 3), align, 0);
		assert_non_null(p[i]);
		assert_true(aligned_to(p[i], align));
		page = (uintptr_t)p[i] & ~(uintptr_t)(PAGE - 1);
		assert_int_equal(mincore((void *)page, PAGE, vec), 0);	/* mapped */
	}
	for (int i = 0; i < tries; i++) {
		unsigned char *q = M(realloc)(p[i], 800);

		assert_non_null(q);
		memset(q, 0x5a, 800);
		assert_int_equal(q[799], 0x5a);
		M(free)(q);
	}
	assert_int_equal(mm_default_arena()->diag.error_count, e0);
}

/*
 * A direct mapping is committed memory, as glibc's mapped chunks are: a
 * request the kernel's overcommit check refuses fails with ENOMEM (with
 * MAP_NORESERVE every size succeeded, and a program that used the block
 * was killed).  Whatever the machine's policy, mm must answer as the
 * kernel does for a plain private mapping of the same size.
 */
static int kernel_commits(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return 0;
	munmap(m, len);
	return 1;
}

static void test_huge_overcommit(void **state)
{
	static const size_t sizes[] = { (size_t)1 << 40, (size_t)1 << 44, (size_t)1 << 46 };
	unsigned char *small = M(malloc)(100), *big = M(malloc)(MM_MAX_BLOCK + MiB);

	assert_non_null(small);
	assert_non_null(big);
	memset(small, 7, 100);
	memset(big, 8, MM_MAX_BLOCK + MiB);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		int ok = kernel_commits(n + 2 * MM_MAX_BLOCK);
		void *p;

		errno = 0;
		p = M(malloc)(opaque(n));
		if (!ok) {
			assert_null(p);
			assert_int_equal(errno, ENOMEM);
			/* Grown to it: refused, the block as it was. */
			errno = 0;
			assert_null(M(realloc)(small, opaque(n)));
			assert_int_equal(errno, ENOMEM);
			errno = 0;
			assert_null(M(realloc)(big, opaque(n)));
			assert_int_equal(errno, ENOMEM);
			/* The alignment is what the mapping must cover. */
			errno = 0;
			assert_null(M(memalign)(opaque(n), 16));
			assert_int_equal(errno, ENOMEM);
		} else {
			assert_non_null(p);
			M(free)(p);
		}
		/* Either way the blocks asked to grow are as they were. */
		assert_int_equal(small[99], 7);
		assert_int_equal(big[MM_MAX_BLOCK + MiB - 1], 8);
	}
	M(free)(big);
	M(free)(small);
}
#endif

#if HUGE_OK
/*
 * Other work: n small blocks taken and freed, many refills and flushes of
 * this thread's magazines.
 */
static __maybe_unused void churn_small(int n)
{
	void **v = M(malloc)((size_t)n * sizeof(*v));

	assert_non_null(v);
	for (int i = 0; i < n; i++) {
		v[i] = M(malloc)(64);
		assert_non_null(v[i]);
	}
	for (int i = 0; i < n; i++)
		M(free)(v[i]);
	M(free)(v);
}

/* A block of n bytes taken, written and freed: where it was. */
static __maybe_unused unsigned char *use_once(size_t n)
{
	unsigned char *p = M(malloc)(n);

	assert_non_null(p);
	memset(p, 7, n);
	M(free)(p);
	return p;
}

/* Is the page of p mapped no more? */
static __maybe_unused int unmapped(const void *p)
{
	unsigned char vec[1];

	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1)), PAGE, vec) == -1 &&
	       errno == ENOMEM;
}

static __maybe_unused int overlaps(const unsigned char *a, size_t na, const unsigned char *b, size_t nb)
{
	return a < b + nb && b < a + na;
}
#endif

#if HUGE_OK && MM_PAGE_SHIFT + MM_MAX_ORDER <= 22
/*
 * Freed direct mappings are kept for the next requests they hold without
 * wasting half -- four, 64 MiB in all, none over 32 MiB -- so buffers
 * taken and freed in a loop cost no system call.  Until the program takes
 * such a block again, what is kept is on probation: a few refills or
 * flushes of the magazines with no such request (the program went on
 * with other work) unmap it, or with no magazines its free does, and a
 * request that one kept, or one given back, would have held ends the
 * probation.  A request none holds unmaps those smaller than it, and
 * malloc_trim() all, starting a probation again.  With blocks larger
 * than 4 MiB, 5 MiB is no direct mapping, and with 64 MiB ones (64 KiB
 * pages) no direct mapping is ever kept.
 */
static void test_huge_reuse(void **state)
{
	unsigned char *p, *q, *r, *s, *v[5];

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	/* On probation, a block taken again at once is kept: the probation ends. */
	M(malloc_trim)(0);
	p = use_once(16 * MiB);
	if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
		assert_false(unmapped(p));
		q = M(malloc)(16 * MiB - 100);
		assert_ptr_equal(q, p);
		M(free)(q);
		churn_small(4096);
		assert_false(unmapped(p));
	}
	/* Used once and the program goes on: the block goes back. */
	M(malloc_trim)(0);
	p = use_once(16 * MiB);
	churn_small(4096);
	assert_true(unmapped(p));
	/* A second free of it is still known for one. */
	{
		unsigned long e0 = arena()->diag.error_count;

		capture_start();
		misuse(M(free)(p));
		check_report(arena(), e0, "already free (double free)", NULL);
	}
#else
	use_once(16 * MiB);
#endif
	/*
	 * Taken again: the size given back ends the probation -- kept past
	 * other work, not only until it (on probation it stays that long).
	 */
	p = use_once(16 * MiB);
	churn_small(4096);
	assert_false(unmapped(p));
	q = M(malloc)(16 * MiB - 100);
	assert_ptr_equal(q, p);
	assert_true(M(malloc_usable_size)(q) >= 16 * MiB - 100);
	memset(q, 1, 16 * MiB - 100);
	M(free)(q);
	/* 5 MiB would leave more than half of it idle: a mapping of its own. */
	r = M(malloc)(5 * MiB);
	assert_non_null(r);
	assert_false(overlaps(r, 5 * MiB, p, 16 * MiB));
	M(free)(r);
	assert_false(unmapped(p));
	/* Two buffers in turn (one slot made a mapping a turn, 20 times glibc's time). */
	for (int i = 0; i < 3; i++) {
		q = M(malloc)(16 * MiB - 100);
		s = M(malloc)(5 * MiB);
		assert_ptr_equal(q, p);
		assert_ptr_equal(s, r);
		memset(q, i, 16 * MiB - 100);
		memset(s, i, 5 * MiB);
		M(free)(s);
		M(free)(q);
	}
	/* Neither holds 20 MiB: both go (or the new mapping is where they were). */
	q = M(malloc)(20 * MiB);
	assert_non_null(q);
	assert_true(overlaps(q, 20 * MiB, p, 16 * MiB) || unmapped(p));
	assert_true(overlaps(q, 20 * MiB, r, 5 * MiB) || unmapped(r));
	M(free)(q);
	/* Five freed: the oldest goes, four stay. */
	for (int i = 0; i < 5; i++) {
		v[i] = M(malloc)((size_t)(5 + i) * MiB);
		assert_non_null(v[i]);
	}
	for (int i = 0; i < 5; i++)
		M(free)(v[i]);
	assert_true(unmapped(v[0]));
	for (int i = 1; i < 5; i++)
		assert_false(unmapped(v[i]));
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	assert_int_equal(M(malloc_trim)(0), 1);
	for (int i = 1; i < 5; i++)
		assert_true(unmapped(v[i]));
#endif
}
#endif

/*
 * A direct mapping that realloc() grows keeps its contents (mremap: the
 * kernel may move it).  Sizes from the largest block (4 MiB with 4 KiB
 * pages: 6 and 20 MiB), so both are direct mappings at every page size;
 * with blocks under 512 KiB, five are less than one and 2 MiB: twice that.
 */
static __maybe_unused void test_huge_resize(void **state)
{
	const size_t from = MM_MAX_BLOCK + 2 * MiB;
	const size_t to = max_t(size_t, 5 * MM_MAX_BLOCK, 2 * from);
	unsigned char *p, *q;

	void *blocker;

	p = M(malloc)(from);
	assert_non_null(p);
	assert_false(in_arena(p));
	for (size_t off = 0; off < from; off += PAGE / 2)
		p[off] = (unsigned char)(off >> 11);
	/* A mapping right after p's: the kernel must move it to grow it. */
	blocker = mmap(p + ALIGN(from, MM_PAGE_SIZE), PAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	q = M(realloc)(p, to);
	if (blocker != MAP_FAILED)
		munmap(blocker, PAGE);
	assert_non_null(q);
	assert_true(M(malloc_usable_size)(q) >= to);
	/*
	 * Where it went, the mapping lies on a page of ours (with 64 KiB
	 * pages the kernel's choice was any 4 KiB page, which no release
	 * of whole pages of ours would take again).
	 */
	assert_true(aligned_to(q, MM_PAGE_SIZE));
	for (size_t off = 0; off < from; off += PAGE / 2)
		assert_int_equal(q[off], (unsigned char)(off >> 11));
	memset(q + from, 3, to - from);
	assert_int_equal(q[to - 1], 3);
	M(free)(q);
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	M(malloc_trim)(0);
	assert_true(unmapped(q));	/* given back, not leaked */
#endif
}

/* ---- Statistics and trimming ------------------------------------------- */

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
static void test_malloc_trim(void **state)
{
	void *p[64];

	for (int i = 0; i < 64; i++) {
		p[i] = M(malloc)((size_t)(i + 1) * 3000);
		assert_non_null(p[i]);
	}
	for (int i = 0; i < 64; i++)
		M(free)(p[i]);
	assert_in_range(M(malloc_trim)(0), 0, 1);
	assert_in_range(M(malloc_trim)(MiB), 0, 1);
	/* The heap still works after giving memory back. */
	for (int i = 0; i < 64; i++) {
		p[i] = M(malloc)((size_t)(i + 1) * 3000);
		assert_non_null(p[i]);
		memset(p[i], i, (size_t)(i + 1) * 3000);
	}
	for (int i = 0; i < 64; i++)
		M(free)(p[i]);
	assert_arena_valid(arena());
}
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
static void test_mallinfo2(void **state)
{
	mallinfo2_t before, during, after;
	void *p;

	settle();
	before = M(mallinfo2)();
	assert_true(before.arena > 0);
	assert_true(before.uordblks <= before.arena);
	assert_int_equal(before.fordblks, before.arena - before.uordblks);
	p = M(malloc)(BIG / 2);
	assert_non_null(p);
	memset(p, 1, BIG / 2);
	during = M(mallinfo2)();
	assert_true(during.uordblks >= before.uordblks + BIG / 2);
	assert_true(during.arena >= during.uordblks);
	if (IS_ENABLED(CONFIG_MM_STATS))	/* the peak is kept only with stats */
		assert_true(during.usmblks >= during.uordblks);
	M(free)(p);
	after = M(mallinfo2)();
	assert_true(after.uordblks < during.uordblks);
	assert_int_equal(after.fordblks, after.arena - after.uordblks);
	/*
	 * A heap block counts its own bytes, not its span's pages.  Its
	 * usable size is 8 more than a multiple of 16, a class's a multiple
	 * of 16: with spans of a page and the heap up to 3 KiB, 3000 is an
	 * object of kmalloc-3264, a class that holds sizes on both sides of
	 * the heap's end and keeps them all.
	 */
	p = heap_serves(3000) ? M(malloc)(3000) : NULL;
	if (p && M(malloc_usable_size)(p) % 16 == 8) {
		M(free)(p);			/* a span kept: no growth below */
		before = M(mallinfo2)();
		p = M(malloc)(3000);
		during = M(mallinfo2)();
		assert_true(during.uordblks >= before.uordblks + 3000);
		assert_true(during.uordblks <= before.uordblks + 3000 + 32);
		assert_int_equal(during.fordblks, during.arena - during.uordblks);
		M(free)(p);
		after = M(mallinfo2)();
		assert_int_equal(after.uordblks, before.uordblks);
	} else {
		M(free)(p);
	}
	/* A direct mapping counts apart, as glibc's mmapped chunks (hblks, hblkhd). */
	if (PAST_BLOCK_OK) {
		before = M(mallinfo2)();
		p = M(malloc)(MM_MAX_BLOCK + 1);
		assert_non_null(p);
		during = M(mallinfo2)();
		assert_int_equal(during.hblks, before.hblks + 1);
		assert_true(during.hblkhd >= before.hblkhd + MM_MAX_BLOCK + 1);
		M(free)(p);
		after = M(mallinfo2)();
		assert_int_equal(after.hblks, before.hblks);
		assert_int_equal(after.hblkhd, before.hblkhd);
	}
}
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) && IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && defined(__GLIBC__)
#define HAVE_MALLINFO 1
/*
 * glibc's older members are ours too, or a call reaches glibc's allocator
 * and its empty heap: mallinfo() counts what malloc() gave (its int fields
 * saturate), mallopt() tunes nothing and says so, malloc_info() writes
 * glibc's XML with our figures and refuses options.
 */
static void test_mallinfo_mallopt_malloc_info(void **state)
{
	struct mallinfo before, during;
	mallinfo2_t m2;
	char *text = NULL, *at;
	size_t len = 0;
	FILE *f;
	void *p;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	before = mallinfo();
	p = malloc(BIG / 2);
	assert_non_null(p);
	during = mallinfo();
#pragma GCC diagnostic pop
	assert_true(during.uordblks >= before.uordblks + (int)(BIG / 2));
	assert_true(during.arena >= during.uordblks);
	free(p);
	assert_int_equal(mallopt(M_ARENA_MAX, 1), 0);
	assert_int_equal(mallopt(M_TRIM_THRESHOLD, 1 << 20), 0);

	errno = 0;
	assert_int_equal(malloc_info(1, stdout), -1);
	assert_int_equal(errno, EINVAL);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	m2 = mallinfo2();
	assert_int_equal(malloc_info(0, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(text);
	assert_true(strncmp(text, "<malloc version=\"1\">\n<heap nr=\"0\">\n",
			    strlen("<malloc version=\"1\">\n<heap nr=\"0\">\n")) == 0);
	assert_non_null(strstr(text, "</heap>\n"));
	assert_non_null(strstr(text, "</malloc>\n"));
	/* The arena's size, as mallinfo2() said it just before (the stream's buffer may grow it). */
	at = strstr(text, "<system type=\"current\" size=\"");
	assert_non_null(at);
	assert_true(strtoull(at + strlen("<system type=\"current\" size=\""), NULL, 10) >= m2.arena);
	free(text);
}
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) && IS_ENABLED(CONFIG_MM_REPORTS)	/* the text it prints */
/* A figure malloc_stats() prints: the number after 'label'. */
static __maybe_unused size_t stats_field(const char *label)
{
	const char *text, *at;

	capture_start();
	M(malloc_stats)();
	text = capture_stop();
	at = strstr(text, label);
	assert_non_null(at);
	return (size_t)strtoull(at + strlen(label), NULL, 10);
}

static void test_malloc_stats(void **state)
{
	void *p = M(malloc)(1000);
	mallinfo2_t mi = M(mallinfo2)();
	const char *text, *use;

	capture_start();
	M(malloc_stats)();
	text = capture_stop();
	M(free)(p);
	assert_true(captured("Arena 0:"));
	assert_true(captured("system bytes"));
	use = strstr(text, "in use bytes     = ");
	assert_non_null(use);
	/* mallinfo2()'s figure: a heap span's free blocks are not in use. */
	if (IS_ENABLED(CONFIG_MM_REPORTS))
		assert_int_equal(strtoull(use + 19, NULL, 10), mi.uordblks);
#if HUGE_OK
	/*
	 * The last two lines are glibc's: the most direct mappings, and their
	 * bytes, there have been (they printed the arena's regions and peak).
	 * A mapping larger than all before, never touched, raises the bytes.
	 */
	{
		size_t n = stats_field("max mmap bytes   = ") + MM_MAX_BLOCK + 3 * PAGE;
		size_t before = M(mallinfo2)().hblks;
		unsigned char *big = M(malloc)(n), *q;

		assert_non_null(big);
		assert_int_equal(M(mallinfo2)().hblks, before + 1);
		q = M(realloc)(big, n + 5 * PAGE);	/* grown by the kernel: the bytes follow */
		assert_non_null(q);
		M(free)(q);
		assert_int_equal(M(mallinfo2)().hblks, before);
		assert_true(stats_field("max mmap bytes   = ") >= n + 5 * PAGE);
		assert_true(stats_field("max mmap regions = ") >= before + 1);
	}
#endif
}
#endif

/* ---- Nothing lost ------------------------------------------------------- */

#define CHURN_SLOTS 512
/* Fewer blocks live at once on a small fixed heap. */
#define CHURN_LIVE (BIG < MM_MAX_BLOCK ? CHURN_SLOTS / 4 : CHURN_SLOTS)
static struct {
	unsigned char *p;
	size_t n;
	size_t cost;		/* arena_cost() when it was taken */
	unsigned int seed;
} slots[CHURN_SLOTS];

static unsigned int rng_state;

static unsigned int rnd(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static size_t churn_size(void)
{
	unsigned int r = rnd() % 1000;

	if (r < 600)
		return rnd() % 256;
	if (r < 900)
		return rnd() % 8192;
	if (r < 990)
		return served_size(8192 + rnd() % 200000);
	if (r < 998)
		return BIG / 2 + rnd() % (BIG / 2);
	if (!HUGE_OK)
		return BIG / 2;
	return 4 * MiB + rnd() % (2 * MiB);
}

/*
 * Mixed malloc/calloc/realloc/aligned/free with content checks; ends with
 * everything freed.  Calls nothing but the allocator: no CMocka, no stdio.
 * Returns the number of errors seen (allocations that failed are counted
 * apart, in churn_nomem).
 */
static int churn_nomem;

/* Alignments up to 64 KiB, but no more than the largest block (MM_MAX_ORDER=3: 32 KiB). */
static size_t churn_align(size_t align)
{
	return min_t(size_t, align, MM_MAX_BLOCK);
}

/*
 * Bytes of the default arena that n bytes aligned to 'align' take, about:
 * a class's object or a heap block, or whole pages (exact in pages with a
 * page an odd end may add, else a power-of-two block); nothing past the
 * largest block, a direct mapping.
 */
static size_t arena_cost(size_t n, size_t align)
{
	size_t sz = max_t(size_t, max_t(size_t, n, align), 1), pages = 1;
	struct kmem_cache *c = sz <= KMALLOC_MAX_CACHE_SIZE ? kmalloc_slab(sz) : NULL;

	if (sz > MM_MAX_BLOCK)
		return 0;
	if (c)
		return kmem_cache_size(c);
	if (heap_serves(n))
		return n + max_t(size_t, align, 16);
	if (IS_ENABLED(CONFIG_MM_EXACT_RUNS))
		return ALIGN(sz, MM_PAGE_SIZE) + MM_PAGE_SIZE;
	while (pages * MM_PAGE_SIZE < sz)
		pages *= 2;
	return pages * MM_PAGE_SIZE;
}

/*
 * What would take the live blocks past arena_room() is left out of the
 * mix -- an allocation or a growth skipped, the slot as it was: where
 * small sizes are whole 64 KiB pages (no class past 64 bytes, no heap),
 * some 250 of the 300-odd live blocks are, more than a 16 MiB array.
 */
static int churn(unsigned int seed, int ops)
{
	size_t room = arena_room(), used = 0;
	int errors = 0;

	rng_state = seed;
	for (int i = 0; i < ops; i++) {
		unsigned int k = rnd() % CHURN_LIVE, op = rnd() % 10;
		size_t n, align = 0, cost;

		if (slots[k].p) {
			if (!filled(slots[k].p, slots[k].n < 64 ? slots[k].n : 64, slots[k].seed))
				errors++;
			if (op < 3) {
				unsigned char *q;

				n = churn_size();
				cost = arena_cost(n, 0);
				if (cost > slots[k].cost && cost - slots[k].cost > room - used)
					continue;
				q = M(realloc)(slots[k].p, n ? n : 1);
				if (!q) {
					churn_nomem++;
					continue;
				}
				if (!filled(q, min_t(size_t, min_t(size_t, slots[k].n, n), 64),
					    slots[k].seed))
					errors++;
				used = used - slots[k].cost + cost;
				slots[k].p = q;
				slots[k].n = n;
				slots[k].cost = cost;
				fill(q, n < 64 ? n : 64, slots[k].seed);
			} else {
				M(free)(slots[k].p);
				slots[k].p = NULL;
				used -= slots[k].cost;
			}
			continue;
		}
		n = churn_size();
		if (op >= 9)
			align = churn_align((size_t)8 << (rnd() % 14));
		else if (op >= 7)
			align = churn_align((size_t)16 << (rnd() % 10));
		cost = arena_cost(n, align);
		if (cost > room - used)
			continue;
		if (op < 5) {
			slots[k].p = M(malloc)(n);
		} else if (op < 7) {
			slots[k].p = M(calloc)(1, n);
			if (slots[k].p && !all_zero(slots[k].p, n))
				errors++;
		} else if (op < 9) {
			slots[k].p = M(aligned_alloc)(align, n);
		} else {
			void *q = NULL;

			if (M(posix_memalign)(&q, align, n))
				q = NULL;
			slots[k].p = q;
		}
		if (!slots[k].p) {
			churn_nomem++;
			continue;
		}
		used += cost;
		slots[k].n = n;
		slots[k].cost = cost;
		slots[k].seed = rnd();
		fill(slots[k].p, n < 64 ? n : 64, slots[k].seed);
	}
	for (int k = 0; k < CHURN_SLOTS; k++) {
		if (slots[k].p && !filled(slots[k].p, slots[k].n < 64 ? slots[k].n : 64,
					  slots[k].seed))
			errors++;
		M(free)(slots[k].p);
		slots[k].p = NULL;
	}
	return errors;
}

struct churn_job {
	unsigned int seed;
	int ops;
	int errors;
};

static void *churn_thread(void *arg)
{
	struct churn_job *j = arg;

	j->errors = churn(j->seed, j->ops);
	return NULL;
}

/*
 * Run churn() in a thread of its own and wait for it: whatever per-thread
 * cache the allocator keeps goes home when the thread exits.  (With no
 * locking configured this is still safe: only one thread runs at a time.)
 */
static int churn_in_thread(unsigned int seed, int ops)
{
	struct churn_job j = { seed, ops, -1 };
	pthread_t t;

	if (pthread_create(&t, NULL, churn_thread, &j))
		return -1;
	pthread_join(t, NULL);
	return j.errors;
}

#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)
/*
 * free() twice is reported and ignored wherever frees are checked -- the
 * release configurations too (CONFIG_MM_FREE_MARK) -- whether the block
 * waits in this thread's magazine or is back in its slab, is a heap block,
 * pages or a direct mapping; and it is never handed out twice afterwards.
 */
static void test_double_free_reported(void **state)
{
	static const size_t sizes[] = { 0, 24, 100, 1000, 3000, 6000, 100 * KiB, BIG + 1 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t n = sizes[k];
		char *p, *q, *keep, *again[4];
		unsigned long e0;

		if (n > BIG && !HUGE_OK)
			continue;
		p = M(malloc)(n);
		q = M(malloc)(n);
		keep = M(malloc)(n);	/* so that p and q do not merge away */
		assert_non_null(p);
		assert_non_null(q);
		assert_non_null(keep);
		M(free)(p);
		e0 = arena()->diag.error_count;
		capture_start();
		misuse(M(free)(p));
		check_report(arena(), e0, "free", NULL);
		/* Back in its slab, or wherever a freed block goes. */
		M(free)(q);
		settle();
		e0 = arena()->diag.error_count;
		capture_start();
		misuse(M(free)(q));
		check_report(arena(), e0, "free", NULL);
		for (int i = 0; i < 4; i++) {
			again[i] = M(malloc)(n);
			assert_non_null(again[i]);
			assert_ptr_not_equal(again[i], keep);
			for (int j = 0; j < i; j++)
				assert_ptr_not_equal(again[i], again[j]);
		}
		for (int i = 0; i < 4; i++)
			M(free)(again[i]);
		M(free)(keep);
	}
}

/*
 * realloc() of a freed block is reported and fails with ENOMEM, keeping
 * or moving alike, wherever frees are checked (the tiny core: with
 * CONFIG_MM_CHECKS, which is the only way it checks): it neither hands the
 * block out while it is free nor frees it a second time.
 */
static void test_realloc_of_freed_block(void **state)
{
	static const size_t sizes[] = { 24, 100, 1000, 3000, 6000 };

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		size_t n = sizes[k];
		char *p = M(malloc)(n), *keep = M(malloc)(n), *a, *b;
		unsigned long e0;

		assert_non_null(p);
		assert_non_null(keep);
		M(free)(p);
		e0 = arena()->diag.error_count;
		capture_start();
		misuse(errno = 0;
		       assert_null(M(realloc)(p, n));
		       assert_int_equal(errno, ENOMEM));
		check_report(arena(), e0, "free", NULL);
		e0 = arena()->diag.error_count;
		capture_start();
		misuse(assert_null(M(realloc)(p, 4 * n)));
		check_report(arena(), e0, "free", NULL);
		a = M(malloc)(n);
		b = M(malloc)(n);
		assert_ptr_not_equal(a, b);
		assert_ptr_not_equal(a, keep);
		assert_ptr_not_equal(b, keep);
		M(free)(a);
		M(free)(b);
		M(free)(keep);
	}
}
#endif

static void test_nothing_lost(void **state)
{
	struct mm_arena *a = arena();
	size_t used_before, used_after, free_before, free_after, pages_before, pages_after;
	unsigned long objs_before, objs_after;
	int errors;

	churn_nomem = 0;
	/*
	 * Warm up: every kmalloc cache exists, glibc has cached a thread stack
	 * (and its TLS vector), CMocka has what it needs.
	 */
	assert_int_equal(churn_in_thread(1, 20000), 0);
	settle();
	used_before = in_use();
	objs_before = live_objects();
	free_before = mm_arena_free_pages(a);
	pages_before = a->nr_pages;

	/* No CMocka (no allocation) from here ... */
	errors = churn_in_thread(2, 50000);
	settle();
	used_after = in_use();
	objs_after = live_objects();
	free_after = mm_arena_free_pages(a);
	pages_after = a->nr_pages;
	/* ... to here. */

	assert_int_equal(errors, 0);
	assert_int_equal(churn_nomem, 0);
	assert_int_equal(objs_after, objs_before);
	assert_int_equal(used_after, used_before);
	/* Pages held from the backend may shrink (trim); free ones account for it. */
	assert_int_equal(free_after + (pages_before - pages_after), free_before);
	assert_arena_valid(a);

	/* The same on this thread, where CMocka lives too. */
	assert_int_equal(churn(3, 20000), 0);
	settle();
	used_before = in_use();
	objs_before = live_objects();
	errors = churn(4, 50000);
	settle();
	used_after = in_use();
	objs_after = live_objects();
	assert_int_equal(errors, 0);
	assert_int_equal(churn_nomem, 0);
	assert_int_equal(objs_after, objs_before);
	if (used_after != used_before)
		fail_msg("%zu bytes of pages in use after malloc_trim(0), %zu before "
			 "(is a per-thread cache left undrained?)", used_after, used_before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_facade_is_mm),
		cmocka_unit_test(test_alignment_many_sizes),
		cmocka_unit_test(test_malloc_zero_unique),
		cmocka_unit_test(test_free_null_and_errno),
		cmocka_unit_test(test_usable_size),
#if GROWTH_TESTS
		cmocka_unit_test(test_success_keeps_errno),
#endif
		cmocka_unit_test(test_failures_set_enomem),
		cmocka_unit_test(test_calloc_zeroes_dirty_memory),
		cmocka_unit_test(test_calloc_overflow),
		cmocka_unit_test(test_realloc_keeps_contents),
		cmocka_unit_test(test_realloc_in_place_when_it_fits),
		cmocka_unit_test(test_realloc_shrink_gives_memory_back),
		cmocka_unit_test(test_realloc_shrink_under_oom),
		cmocka_unit_test(test_realloc_failure_keeps_block),
		cmocka_unit_test(test_realloc_zero_and_null),
		cmocka_unit_test(test_reallocarray),
		cmocka_unit_test(test_aligned_alloc),
		cmocka_unit_test(test_memalign),
		cmocka_unit_test(test_posix_memalign),
#if HAVE_VALLOC
		cmocka_unit_test(test_valloc_pvalloc),
#endif
		cmocka_unit_test(test_huge_direct_mapping),
#if HUGE_OK
		cmocka_unit_test(test_huge_align_zero_size),
		cmocka_unit_test(test_huge_overcommit),
#endif
#if HUGE_OK && MM_PAGE_SHIFT + MM_MAX_ORDER <= 22
		cmocka_unit_test(test_huge_reuse),
#endif
#if HUGE_OK
		cmocka_unit_test(test_huge_resize),
#endif
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
		cmocka_unit_test(test_malloc_trim),
#endif
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
		cmocka_unit_test(test_mallinfo2),
#ifdef HAVE_MALLINFO
		cmocka_unit_test(test_mallinfo_mallopt_malloc_info),
#endif
#endif
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) && IS_ENABLED(CONFIG_MM_REPORTS)
		cmocka_unit_test(test_malloc_stats),
#endif
#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)
		cmocka_unit_test(test_double_free_reported),
		cmocka_unit_test(test_realloc_of_freed_block),
#endif
		cmocka_unit_test(test_nothing_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
