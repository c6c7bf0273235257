// SPDX-License-Identifier: MIT
/*
 * fuzz_mm: a coverage-guided fuzzer (libFuzzer) of every allocation API at
 * once, against a model of what each promises.
 *
 * An input is a program: each operation is a byte that picks it and the
 * bytes after it for its arguments (a slot, a size, an alignment).  The
 * operations are the facade's (mm_malloc ... mm_posix_memalign, realloc
 * and reallocarray), kmalloc's (kzalloc, krealloc, kmalloc_aligned), up to
 * four kmem_caches of the input's own (with and without a constructor,
 * created, shrunk and destroyed), the buddy allocator's (alloc_pages,
 * alloc_pages_exact), the arena's trims and growth limit, and misuse:
 * impossible sizes, overflowing counts, bad alignments, pages freed twice
 * or with the wrong order or size, foreign frees, and -- where
 * CONFIG_MM_CHECKS validates every free, or CONFIG_MM_FREE_MARK those of
 * slab objects (their Kconfig help) -- double, interior and wrong-cache
 * frees of objects.  Where the allocator has a lock, an input can move
 * its operations to a second thread and back, and make that thread exit:
 * in lockstep, one thread running at a time.  The tiny core
 * (CONFIG_MM_TINY) runs the same programs without what it leaves out.
 *
 * The model is a table of live blocks.  Every block is filled with a
 * pattern of its own over all of its usable bytes (sampled past 4 KiB) and
 * checked when it is resized or freed; a new block must not overlap a live
 * one, must be aligned as its call promises, and must have the usable size
 * asked for.  A failure must say ENOMEM or EINVAL where the call sets
 * errno, and leave the old block intact; a shrink must not fail.  A
 * misuse must be reported exactly once and free nothing, and nothing else
 * may be reported.  A cache must count the objects the model holds.  At
 * the end of every input all is freed, and the default arena must have
 * the pages allocated it had before the input and no direct mapping,
 * nothing lost, and pass mm_arena_validate().
 *
 * What is found aborts with a line that says which promise broke; libFuzzer
 * saves the input, and 'tests/fuzz.sh DEFCONFIG crash-...' replays it.
 * tests/fuzz.sh builds it ('make fuzz' with clang, libFuzzer,
 * AddressSanitizer and UBSan, on the prefixed facade) and runs it;
 * scripts/check.sh runs its seed corpus, tests/fuzz-corpus, and a fixed
 * number of inputs more in four configurations.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mm/mm.h>

#if !IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED) || !IS_ENABLED(CONFIG_MM_SLAB) || \
    !IS_ENABLED(CONFIG_MM_KMALLOC) || \
    IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR)
#error "fuzz_mm: slab caches, kmalloc, the prefixed facade, no MM_PANIC_ON_ERROR"
#endif

#define KiB		((size_t)1024)
#define MiB		(1024 * KiB)
#define NSLOT		24
#define NCACHE		4
#define MAX_OPS		2000
#define LIVE_MAX	(96 * MiB)	/* the model's bound on live bytes */
#define FILL_ALL	(4 * KiB)	/* blocks up to this are filled whole */

/* Where the heap starts, if there is one: kmalloc's classes end there. */
#if IS_ENABLED(CONFIG_MM_HEAP)
#define HEAP_MIN	((size_t)CONFIG_MM_HEAP_MIN)
#else
#define HEAP_MIN	SIZE_MAX
#endif

/* The configuration's growth limit, if it has one: 0 is none. */
#if IS_ENABLED(CONFIG_MM_TINY)
#define BASE_LIMIT	((size_t)0)
#else
#define BASE_LIMIT	((size_t)CONFIG_MM_ARENA_LIMIT_KB << 10)
#endif
/* Bounded from the start: a limit, or a static array that fills up. */
#define BOUNDED		(BASE_LIMIT || IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC))

/* The largest slab object of kmalloc's: its classes end at the heap. */
#define MARKED_MAX	(HEAP_MIN < KMALLOC_MAX_CACHE_SIZE ? HEAP_MIN : KMALLOC_MAX_CACHE_SIZE)

/* Where the mmap backend serves blocks past the largest buddy block. */
#define PAST_BLOCK	(IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_MMAP))

/*
 * A second thread, where the allocator has a lock for it, and where a
 * thread's cache of magazines, if it gets one, can always be had (see
 * worker_start()).
 */
#if (IS_ENABLED(CONFIG_MM_LOCK_PTHREAD) || IS_ENABLED(CONFIG_MM_LOCK_SPIN)) && \
    (!IS_ENABLED(CONFIG_MM_PERCPU_CACHE) || \
     (!CONFIG_MM_ARENA_LIMIT_KB && !IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC)))
#define THREADS		1
#else
#define THREADS		0
#endif

/*
 * The tiny core (CONFIG_MM_TINY) has no exact blocks, growth limit or
 * trim (its Kconfig help): EXACT keeps the first out of the programs, and
 * these stand in for the calls the others make where it has none.
 */
#if IS_ENABLED(CONFIG_MM_TINY)
#define EXACT		0

static inline void *alloc_pages_exact(struct mm_arena *a, size_t n)
{
	(void)a;
	(void)n;
	return NULL;
}

static inline void free_pages_exact(struct mm_arena *a, void *p, size_t n)
{
	(void)a;
	(void)p;
	(void)n;
}

static inline void mm_arena_set_limit(struct mm_arena *a, size_t n)
{
	(void)a;
	(void)n;
}

static inline size_t mm_arena_trim(struct mm_arena *a, size_t keep)
{
	(void)a;
	(void)keep;
	return 0;
}
#else
#define EXACT		1
#endif

enum kind { K_NONE, K_MALLOC, K_KMALLOC, K_CACHE, K_PAGES, K_EXACT };

struct slot {
	unsigned char *p;
	size_t size;		/* asked for: realloc keeps this much */
	size_t usable;		/* filled and checked */
	enum kind kind;
	unsigned int arg;	/* cache index, order */
	uint8_t tag;
};

struct cache {
	struct kmem_cache *c;
	size_t size, align;
	int ctor;
	unsigned int live;
};

static struct slot slot[NSLOT];
static struct cache cache[NCACHE];
static size_t live_bytes;
static uint8_t next_tag = 1;
/* Reports the input has made on purpose: every other one is a bug. */
static unsigned long expected_errors;
/* Bounded, or a growth limit set: any allocation may fail (with ENOMEM). */
static int limited = BOUNDED;
static size_t limit = BASE_LIMIT;	/* the growth limit set last */

/* ---- failing ------------------------------------------------------------ */

static char last_report[2048];
static size_t last_len;

static void sink(const char *buf, size_t len, void *ctx)
{
	(void)ctx;
	if (len >= sizeof(last_report))
		len = sizeof(last_report) - 1;
	if (last_len + len >= sizeof(last_report))
		last_len = 0;
	memcpy(last_report + last_len, buf, len);
	last_len += len;
	last_report[last_len] = 0;
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_mm: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nfuzz_mm: mm's last output:\n%s\n", last_report);
	abort();
}

#define check(cond, ...)	do { if (!(cond)) fail(__VA_ARGS__); } while (0)

/* ---- the input ---------------------------------------------------------- */

static const uint8_t *in;
static size_t in_left;

static uint32_t take(unsigned int bytes)
{
	uint32_t v = 0;

	while (bytes--) {
		v = v << 8 | (in_left ? *in : 0);
		if (in_left) {
			in++;
			in_left--;
		}
	}
	return v;
}

/*
 * A size from two bytes of choice and four of value: mostly what the
 * classes, the heap and the buddy allocator serve, sometimes a boundary of
 * theirs, sometimes past the largest block.
 */
static size_t take_size(void)
{
	unsigned int sel = take(1);
	size_t v = take(4);

	switch (sel % 8) {
	case 0: return v % 65;
	case 1: return v % 1025;
	case 2: return v % (8 * KiB + 1);
	case 3: return v % (64 * KiB + 1);
	case 4: return v % (512 * KiB + 1);
	case 5: return v % (4 * MiB + 1);
	case 6: return ((size_t)1 << (v % 23)) + (v >> 8) % 3 - 1;	/* 2^k - 1, 2^k, 2^k + 1 */
	default: return MM_MAX_BLOCK - 2 * MM_PAGE_SIZE + (v % (4 * MM_PAGE_SIZE + 1));
	}
}

/* A size no allocator can serve: more than half the address space. */
static size_t take_impossible(void)
{
	return SIZE_MAX - (size_t)take(4) % (SIZE_MAX / 2);
}

static struct slot *take_slot(void)
{
	return &slot[take(1) % NSLOT];
}

/* ---- the pattern -------------------------------------------------------- */

static inline uint8_t pat(uint8_t tag, size_t off)
{
	return (uint8_t)(tag ^ off ^ off >> 8 ^ off >> 16);
}

/*
 * The offsets written and checked of n bytes: all up to FILL_ALL, else the
 * first and last 256 and 64 between, at least a page apart (a page touched
 * is a page fault, what most of a run's time goes to).
 */
#define for_each_off(off, n)							\
	for (size_t off = 0, __n = (n), __step = max_t(size_t, 4096, __n / 64);	\
	     off < __n;								\
	     off = __n <= FILL_ALL || off < 256 || off + 256 >= __n ? off + 1 :	\
		   (off + __step < __n - 256 ? off + __step : __n - 256))

static void fill(struct slot *s)
{
	s->tag = next_tag++;
	for_each_off(off, s->usable)
		s->p[off] = pat(s->tag, off);
}

/* The first n bytes of s, at the offsets fill() wrote. */
static void verify(const struct slot *s, size_t n, const char *when)
{
	for_each_off(off, s->usable)
		if (off < n)
			check(s->p[off] == pat(s->tag, off),
			      "%s: block %p (%zu bytes, kind %d) changed at byte %zu: %#x, not %#x",
			      when, (void *)s->p, s->size, s->kind, off, s->p[off],
			      pat(s->tag, off));
}

static void verify_zero(const unsigned char *p, size_t n, const char *what)
{
	for_each_off(off, n)
		check(!p[off], "%s(%zu): byte %zu of %p is %#x, not 0",
		      what, n, off, (void *)p, p[off]);
}

/* ---- the model's rules for a new block ---------------------------------- */

static void check_disjoint(const unsigned char *p, size_t n, const struct slot *self)
{
	for (int i = 0; i < NSLOT; i++) {
		const struct slot *s = &slot[i];

		if (s == self || !s->p)
			continue;
		check((uintptr_t)p + n <= (uintptr_t)s->p ||
		      (uintptr_t)s->p + s->usable <= (uintptr_t)p,
		      "new block %p+%zu overlaps live block %p+%zu (kind %d)",
		      (void *)p, n, (void *)s->p, s->usable, s->kind);
	}
}

static void check_aligned(const void *p, size_t align, const char *what, size_t size)
{
	check(!((uintptr_t)p & (align - 1)), "%s(%zu): %p not aligned to %zu",
	      what, size, p, align);
}

/* alignof(max_align_t) for blocks of at least that size, else 8. */
static size_t malloc_align(size_t n)
{
	return n >= 16 ? 16 : 8;
}

/* kmalloc(2^k) that a class serves is aligned to 2^k (slab.h); the heap's 16. */
static size_t kmalloc_align(size_t n)
{
	if (n >= KMALLOC_MIN_SIZE && n <= KMALLOC_MAX_CACHE_SIZE && !(n & (n - 1)) &&
	    n <= HEAP_MIN)
		return n;
	return malloc_align(n);
}

static void place(struct slot *s, void *p, size_t size, size_t usable, enum kind k,
		  unsigned int arg)
{
	check(usable >= size, "kind %d: %zu usable bytes for %zu asked", k, usable, size);
	check_disjoint(p, usable, s);
	s->p = p;
	s->size = size;
	s->usable = usable;
	s->kind = k;
	s->arg = arg;
	live_bytes += usable;
	fill(s);
}

static int room_for(size_t n)
{
	return n <= LIVE_MAX && live_bytes + n <= LIVE_MAX;
}

static void expect_nomem(const void *p, const char *what, size_t size)
{
	check(!p, "%s(%zu) returned %p", what, size, p);
	check(errno == ENOMEM, "%s(%zu): NULL with errno %d, not ENOMEM", what, size, errno);
}

/* ---- may it fail? ------------------------------------------------------- */

/*
 * Where a growth limit is set or the arena is a static array, any request
 * may fail ('limited').  But the tiny core's free lists tell exactly: its
 * allocation fails only when, its empty slabs reclaimed, no free block is
 * large enough for the slab or the block it needs.
 */
#if IS_ENABLED(CONFIG_MM_TINY)
static int no_block(unsigned int order)
{
	for (; order <= MM_MAX_ORDER; order++)
		if (mm_arena_nr_free_order(mm_default_arena(), order))
			return 0;
	return 1;
}

/* At least the order of a slab of objects of 'size' bytes (slab_tiny.c). */
static unsigned int slab_order(size_t size)
{
	unsigned int o = get_order(size + 64);	/* a slab's header is less */
	unsigned int cap = min_t(unsigned int, CONFIG_MM_SLAB_MAX_ORDER, MM_MAX_ORDER);

	return o > cap ? o : cap;
}

/* kmalloc(n), or the facade's n bytes: its class, or a block of n. */
static int may_fail(size_t n)
{
	size_t cls = KMALLOC_MIN_SIZE > 16 ? KMALLOC_MIN_SIZE : 16;	/* the facade's 16 */

	if (n > KMALLOC_MAX_CACHE_SIZE)
		return no_block(get_order(n));
	while (cls < n)
		cls <<= 1;
	return no_block(slab_order(cls));
}

static int may_fail_slab(size_t size)
{
	return no_block(slab_order(size));
}

static int may_fail_pages(unsigned int order)
{
	return no_block(order);
}
#else
/* Only where no mmap backend serves what the arena cannot. */
static int may_fail(size_t n)
{
	(void)n;
	return !PAST_BLOCK || limited;
}

static int may_fail_slab(size_t size)
{
	(void)size;
	return limited;
}

static int may_fail_pages(unsigned int order)
{
	(void)order;
	return limited;
}
#endif

/* ---- freeing ------------------------------------------------------------ */

static void release(struct slot *s)
{
	switch (s->kind) {
	case K_MALLOC:
		mm_free(s->p);
		break;
	case K_KMALLOC:
		kfree(s->p);
		break;
	case K_CACHE: {
		struct cache *c = &cache[s->arg];

		if (c->ctor)	/* back to its constructed state, as Bonwick asks */
			for (size_t off = 0; off < c->size; off++)
				s->p[off] = pat(0xc0 + (uint8_t)s->arg, off);
		kmem_cache_free(c->c, s->p);
		c->live--;
		break;
	}
	case K_PAGES:
		free_pages(mm_default_arena(), s->p, s->arg);
		break;
	case K_EXACT:
		free_pages_exact(mm_default_arena(), s->p, s->size);
		break;
	case K_NONE:
		return;
	}
	live_bytes -= s->usable;
	s->p = NULL;
	s->kind = K_NONE;
}

static void drop(struct slot *s, const char *why)
{
	if (s->p) {
		verify(s, s->usable, why);
		release(s);
	}
}

/* ---- misuse ------------------------------------------------------------- */

static unsigned long errors(void)
{
	struct mm_diag d;

	mm_arena_diag(mm_default_arena(), &d);
	return d.error_count;
}

static size_t nr_free(void)
{
	return mm_arena_free_pages(mm_default_arena());
}

static void check_all(const char *when);

/*
 * Run a misuse: exactly one report, nothing freed, every live block as it
 * was, the arena valid.  A cache's destroy refused may still have given
 * its empty slabs back first, as Linux's does: 'freed' allows that.
 */
#define __misuse(what, freed, call)						\
	do {									\
		unsigned long __e = errors();					\
		size_t __f = nr_free();						\
										\
		last_len = 0;							\
		call;								\
		check(errors() == __e + 1, "%s: %lu reports, not one", what,	\
		      errors() - __e);						\
		expected_errors++;						\
		check(nr_free() == __f || (freed && nr_free() > __f),		\
		      "%s: free pages %zu -> %zu", what, __f, nr_free());	\
		check_all(what);						\
	} while (0)
#define misuse(what, call)		__misuse(what, 0, call)
#define misuse_may_shrink(what, call)	__misuse(what, 1, call)

static void check_all(const char *when)
{
	for (int i = 0; i < NSLOT; i++)
		if (slot[i].p)
			verify(&slot[i], slot[i].usable, when);
	for (int i = 0; i < NCACHE; i++) {
		struct kmem_cache_info info;

		if (!cache[i].c)
			continue;
		kmem_cache_info(cache[i].c, &info);
		check(info.active_objs == cache[i].live, "%s: cache %d counts %lu objects, not %u",
		      when, i, info.active_objs, cache[i].live);
	}
	check(errors() == expected_errors, "%s: %lu reports, %lu made on purpose",
	      when, errors(), expected_errors);
#if IS_ENABLED(CONFIG_MM_TINY) && (IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS))
	{	/* no heap walk in the tiny core: its free lists against its count */
		size_t pages = 0;

		for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
			pages += mm_arena_nr_free_order(mm_default_arena(), o) << o;
		check(pages == nr_free(), "%s: free lists hold %zu pages, the count says %zu",
		      when, pages, nr_free());
	}
#endif
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	check(mm_arena_validate(mm_default_arena()) == 0, "%s: mm_arena_validate() failed", when);
#endif
}

static int foreign[8];

/* A double free by the thread that did not free the block first. */
static void *twice_freed;
static void on_other_thread(void (*fn)(void), int then_exit);

static void free_again(void)
{
	misuse("double free by the other thread", kfree(twice_freed));
	twice_freed = NULL;
}

static void op_misuse(void)
{
	unsigned int what = take(1);
	struct slot *s = take_slot();
	size_t n = take_impossible();
	void *p = (void *)1;
	int r;

	switch (what % 14) {
	case 0:
		errno = 0;
		expect_nomem(mm_malloc(n), "malloc", n);
		return;
	case 1:
		errno = 0;
		n = (size_t)take(2) + 2;
		p = mm_calloc(n, SIZE_MAX / n + 1);
		expect_nomem(p, "calloc overflowing", n);
		return;
	case 2:		/* kmalloc() promises NULL, not errno */
		check(!kmalloc(n), "kmalloc(%zu) succeeded", n);
		return;
	case 3:
		r = mm_posix_memalign(&p, (size_t)take(2) * 2 + 3, 64);
		check(r == EINVAL && p == (void *)1, "posix_memalign, odd alignment: %d", r);
		r = mm_posix_memalign(&p, sizeof(void *) / 2, 64);
		check(r == EINVAL && p == (void *)1, "posix_memalign, alignment < a word: %d", r);
		return;
	case 4:
		errno = 0;
		check(!mm_aligned_alloc(48, 64) && errno == EINVAL, "aligned_alloc(48): no EINVAL");
		return;
	case 5:
		if (s->p) {
			size_t keep = s->size;

			errno = 0;
			if (s->kind == K_MALLOC) {
				expect_nomem(mm_realloc(s->p, n), "realloc", n);
				errno = 0;
				expect_nomem(mm_reallocarray(s->p, 3, SIZE_MAX / 2), "reallocarray",
					     SIZE_MAX / 2);
			} else if (s->kind == K_KMALLOC) {
				check(!krealloc(s->p, n), "krealloc(%zu) succeeded", n);
			}
			verify(s, keep, "a failed realloc");
		}
		return;
	case 6:		/* kmalloc's own caches are not the user's to destroy */
		misuse("kmem_cache_destroy of kmalloc's", r = kmem_cache_destroy(kmalloc_slab(64)));
		check(r == -1, "kmem_cache_destroy of kmalloc-64: %d, not -1", r);
		return;
	case 7:		/* pages freed with the wrong order or size: always checked */
		if (s->p && s->kind == K_PAGES)
			misuse("free_pages, wrong order",
			       free_pages(mm_default_arena(), s->p, s->arg + 1));
		if (s->p && s->kind == K_EXACT)
			misuse("free_pages_exact, wrong size",
			       free_pages_exact(mm_default_arena(), s->p, s->size + MM_PAGE_SIZE));
		return;
	case 8:		/* memory that is not the arena's: refused in every build */
		misuse("foreign free", kfree(&foreign[take(1) % 8]));
		return;
	case 9:		/* pages freed twice: the buddy allocator always checks */
		if (s->p && (s->kind == K_PAGES || s->kind == K_EXACT)) {
			struct slot old = *s;

			drop(s, "before a double free");
			if (old.kind == K_PAGES)
				misuse("free_pages twice",
				       free_pages(mm_default_arena(), old.p, old.arg));
			else
				misuse("free_pages_exact twice",
				       free_pages_exact(mm_default_arena(), old.p, old.size));
		}
		return;
	case 10:	/* what is defined of NULL and of impossible requests */
		errno = EDOM;
		mm_free(NULL);
		kfree(NULL);
		check(errno == EDOM, "free(NULL) changed errno to %d", errno);
		check(!ksize(NULL) && !mm_malloc_usable_size(NULL), "a usable size of NULL");
		check(kmem_cache_destroy(NULL) == 0, "kmem_cache_destroy(NULL) failed");
		check(!kmem_cache_create("fuzz-bad", 0, 0, 0, NULL), "a cache of 0 bytes");
		check(!kmem_cache_create("fuzz-bad", 64, 24, 0, NULL), "a cache aligned to 24");
		check(!EXACT || !alloc_pages_exact(mm_default_arena(), 0), "alloc_pages_exact(0)");
		p = kmalloc_aligned(64, 48);	/* the tiny core rounds 48 up (slab.h) */
		check(IS_ENABLED(CONFIG_MM_TINY) ? p ? (uintptr_t)p % 64 == 0 && ksize(p) >= 64 :
		      may_fail(64) : !p, "kmalloc_aligned(64, 48): %p", p);
		kfree(p);
		return;
	}
	/*
	 * Bad frees: reported and ignored where the checks are built, and
	 * where the free mark stands in for them, of slab objects -- and of
	 * what else has their sizes: heap blocks shrunk or aligned into
	 * them, which heap.c tells by their headers, and page blocks, which
	 * the buddy allocator always checks.  Not of direct mappings.
	 */
	if (!IS_ENABLED(CONFIG_MM_CHECKS) &&
	    !(IS_ENABLED(CONFIG_MM_FREE_MARK) && s->p &&
	      (s->kind == K_CACHE || s->usable <= MARKED_MAX)))
		return;
	switch (what % 14) {
	case 11:	/* a double free, the block's pages not yet reused */
		if (s->p && (s->kind == K_MALLOC || s->kind == K_KMALLOC)) {
			void *old = s->p;

			drop(s, "before a double free");
			if (THREADS && what / 14 % 2) {
				/*
				 * Found in this thread's magazine, by the other;
				 * or on its slab, after this thread's exit.
				 */
				twice_freed = old;
				on_other_thread(free_again, what / 14 % 4 == 3);
			} else {
				misuse("double free", kfree(old));
			}
		}
		break;
	case 12:	/* a pointer one byte into a block: no block's start */
		if (s->p && (s->kind == K_MALLOC || s->kind == K_KMALLOC))
			misuse("interior free", mm_free(s->p + 1));
		if (s->p && s->kind == K_CACHE)
			misuse("interior kmem_cache_free",
			       kmem_cache_free(cache[s->arg].c, s->p + 1));
		break;
	case 13:	/* a kmem_cache object freed twice */
		if (s->p && s->kind == K_CACHE) {
			void *old = s->p;
			struct kmem_cache *c = cache[s->arg].c;

			drop(s, "before a double free");
			misuse("double kmem_cache_free", kmem_cache_free(c, old));
		}
		break;
	}
}

/* ---- the operations ----------------------------------------------------- */

static void op_malloc(unsigned int how)
{
	struct slot *s = take_slot();
	size_t n = take_size(), m = (size_t)take(1) % 8 + 1;
	unsigned char *p;

	drop(s, "before reuse");
	if (!room_for(n * m))
		return;
	errno = 0;
	switch (how) {
	case 0:
		p = mm_malloc(n);
		break;
	case 1:
		p = mm_calloc(m, n);
		n *= m;
		if (p)
			verify_zero(p, n, "calloc");
		break;
	case 2:
		p = kmalloc(n);
		break;
	default:
		p = kzalloc(n);
		if (p)
			verify_zero(p, n, "kzalloc");
		break;
	}
	if (!p) {
		check(may_fail(n), "allocation of %zu failed", n);
		check(errno == ENOMEM || how >= 2, "allocation of %zu: NULL, errno %d", n, errno);
		return;
	}
	if (how < 2)
		check_aligned(p, malloc_align(n), "malloc", n);
	else
		check_aligned(p, kmalloc_align(n), "kmalloc", n);
	if (how < 2)
		place(s, p, n, mm_malloc_usable_size(p), K_MALLOC, 0);
	else
		place(s, p, n, ksize(p), K_KMALLOC, 0);
}

static void op_aligned(void)
{
	struct slot *s = take_slot();
	unsigned int how = take(1);
	size_t n = take_size() % (1 * MiB), align = (size_t)1 << (take(1) % 21);
	void *p = NULL;
	int r;

	drop(s, "before reuse");
	if (!room_for(n + (align > 4096 ? align : 4096)))
		return;
	errno = 0;
	switch (how % 5) {
	case 0:
		if (align < sizeof(void *))
			align = sizeof(void *);
		r = mm_posix_memalign(&p, align, n);
		check(r == 0 || (r == ENOMEM && may_fail(n > align ? n : align)),
		      "posix_memalign(%zu, %zu): %d", align, n, r);
		break;
	case 1:
		p = mm_aligned_alloc(align, n);
		break;
	case 2:
		p = mm_memalign(align, n);
		break;
	case 3:
		p = kmalloc_aligned(n, align);
		break;
	default:
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
		p = mm_valloc(n);
		align = (size_t)sysconf(_SC_PAGESIZE);
#else
		p = mm_malloc(n);
		align = malloc_align(n);
#endif
		break;
	}
	if (!p) {
		check(may_fail(n > align ? n : align),
		      "aligned allocation (%zu, %zu) failed, errno %d", align, n, errno);
		check(errno == ENOMEM || how % 5 == 3, "aligned allocation (%zu, %zu): errno %d",
		      align, n, errno);
		return;
	}
	check_aligned(p, align, "aligned allocation", n);
	if (how % 5 == 3)
		place(s, p, n, ksize(p), K_KMALLOC, 0);
	else
		place(s, p, n, mm_malloc_usable_size(p), K_MALLOC, 0);
}

static void op_realloc(unsigned int how)
{
	struct slot *s = take_slot();
	size_t n = take_size(), keep;
	unsigned char *p;

	if (s->p && s->kind != (how ? K_KMALLOC : K_MALLOC))
		return;
	if (!room_for(n))
		return;
	keep = s->size < n ? s->size : n;
	/*
	 * fill() samples a large block; the end of what must be kept is
	 * where a short copy would show, so it is written whole.
	 */
	if (s->p)
		for (size_t off = keep > 256 ? keep - 256 : 0; off < keep; off++)
			s->p[off] = pat(s->tag, off);
	errno = 0;
	if (how)
		p = krealloc(s->p, n);
	else if ((s - slot) & 1)	/* half the slots through reallocarray() */
		p = mm_reallocarray(s->p, 1, n);
	else
		p = mm_realloc(s->p, n);
	if (!n && s->p) {
		/* Size 0 frees, and says so by NULL (glibc's and Linux's way). */
		check(!p, "realloc(%p, 0) returned %p", (void *)s->p, (void *)p);
		live_bytes -= s->usable;
		s->p = NULL;
		s->kind = K_NONE;
		return;
	}
	if (!p) {
		check(!s->p || n > s->usable, "a shrink of %p to %zu failed", (void *)s->p, n);
		check(may_fail(n), "realloc to %zu failed", n);
		check(how || errno == ENOMEM, "realloc: NULL, errno %d", errno);
		if (s->p)
			verify(s, s->size, "a failed realloc");
		return;
	}
	/* Not kmalloc's natural alignment: a block kept in place keeps its own. */
	check_aligned(p, malloc_align(n), "realloc", n);
	/*
	 * A block that still fits stays, but for a slab object of 256 bytes
	 * or more shrunk to half or less (slab.h).
	 */
	check(!s->p || n > s->usable || p == s->p ||
	      (n <= s->usable / 2 && s->usable >= 256 && s->usable <= KMALLOC_MAX_CACHE_SIZE),
	      "realloc of %p (%zu usable) to %zu moved it to %p",
	      (void *)s->p, s->usable, n, (void *)p);
	if (s->p) {
		struct slot old = *s;

		old.p = p;
		verify(&old, keep, "realloc's copy");
		for (size_t off = keep > 256 ? keep - 256 : 0; off < keep; off++)
			check(p[off] == pat(s->tag, off),
			      "realloc's copy: byte %zu of %zu kept is %#x", off, keep, p[off]);
		live_bytes -= s->usable;
		s->p = NULL;
	}
	place(s, p, n, how ? ksize(p) : mm_malloc_usable_size(p), how ? K_KMALLOC : K_MALLOC, 0);
}

/* Constructors for the caches: the pattern of the cache's index, whole. */
#define CTOR(i)									\
	static void ctor##i(void *obj)						\
	{									\
		for (size_t off = 0; off < cache[i].size; off++)		\
			((uint8_t *)obj)[off] = pat(0xc0 + i, off);		\
	}
CTOR(0) CTOR(1) CTOR(2) CTOR(3)
static const kmem_ctor_t ctors[NCACHE] = { ctor0, ctor1, ctor2, ctor3 };
static const char *const cache_names[NCACHE] = { "fuzz-0", "fuzz-1", "fuzz-2", "fuzz-3" };

static void cache_destroy(unsigned int i)
{
	struct cache *c = &cache[i];

	for (int k = 0; k < NSLOT; k++)
		if (slot[k].kind == K_CACHE && slot[k].arg == i)
			drop(&slot[k], "before kmem_cache_destroy");
	check(kmem_cache_destroy(c->c) == 0, "kmem_cache_destroy of an empty cache failed");
	c->c = NULL;
}

static void op_cache(void)
{
	unsigned int what = take(1), i = take(1) % NCACHE;
	struct cache *c = &cache[i];
	struct slot *s = take_slot();
	size_t size = take(2) % (8 * KiB) + 1, align = take(1) % 13;
	unsigned int flags = take(1);
	unsigned char *p;

	switch (what % 6) {
	case 0:		/* create, or destroy and create anew */
		if (c->c)
			cache_destroy(i);
		c->size = size;
		c->align = align ? (size_t)1 << align : 0;
		c->ctor = flags & 1;
		c->live = 0;
		c->c = kmem_cache_create(cache_names[i], c->size, c->align,
					 flags & 2 ? SLAB_HWCACHE_ALIGN : 0,
					 c->ctor ? ctors[i] : NULL);
		/* its descriptor is an object of 256 bytes at most */
		check(c->c || may_fail_slab(256), "kmem_cache_create(%zu, %zu) failed",
		      c->size, c->align);
		if (!c->c)
			return;
		if (c->align < sizeof(void *))		/* 0 (natural) too */
			c->align = sizeof(void *);
		if (flags & 2 && c->align < CONFIG_ARCH_CACHE_LINE)
			c->align = CONFIG_ARCH_CACHE_LINE;
		check(kmem_cache_size(c->c) >= c->size, "kmem_cache_size %u < %zu",
		      kmem_cache_size(c->c), c->size);
		return;
	case 1:		/* destroy with objects live: refused, nothing in use freed */
		if (c->c && c->live) {
			int r = 0;

			misuse_may_shrink("kmem_cache_destroy with objects",
					  r = kmem_cache_destroy(c->c));
			check(r == -1, "kmem_cache_destroy with %u objects: %d, not -1",
			      c->live, r);
		}
		return;
	case 2:
		if (c->c)
			kmem_cache_shrink(c->c);
		return;
	case 3:
		if (c->c)
			cache_destroy(i);
		return;
	}
	if (!c->c)
		return;
	drop(s, "before reuse");
	p = c->ctor || !(flags & 4) ? kmem_cache_alloc(c->c) : kmem_cache_zalloc(c->c);
	check(p || may_fail_slab(kmem_cache_size(c->c)), "kmem_cache_alloc of %zu bytes failed",
	      c->size);
	if (!p)
		return;
	if (!c->ctor && flags & 4)
		verify_zero(p, kmem_cache_size(c->c), "kmem_cache_zalloc");
	check_aligned(p, c->align, "kmem_cache_alloc", c->size);
	if (c->ctor)
		for (size_t off = 0; off < c->size; off++)
			check(p[off] == pat(0xc0 + (uint8_t)i, off),
			      "object %p of a cache with a constructor: byte %zu is %#x",
			      (void *)p, off, p[off]);
	c->live++;
	place(s, p, c->size, kmem_cache_size(c->c), K_CACHE, i);
	if (what % 6 == 5 && (IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK))) {
		/* An object of this cache freed to another one. */
		for (unsigned int k = 0; k < NCACHE; k++)
			if (k != i && cache[k].c)
				misuse("kmem_cache_free to another cache",
				       kmem_cache_free(cache[k].c, p));
	}
}

static void op_pages(void)
{
	struct slot *s = take_slot();
	unsigned int how = take(1);
	size_t n = take_size() % (4 * MiB) + 1;
	unsigned int order = take(1) % (MM_MAX_ORDER + 2);
	unsigned char *p;

	drop(s, "before reuse");
	if (EXACT && how & 1) {
		if (!room_for(n + MM_PAGE_SIZE))
			return;
		p = alloc_pages_exact(mm_default_arena(), n);
		if (!p) {
			check(n > MM_MAX_BLOCK || limited, "alloc_pages_exact(%zu) failed", n);
			return;
		}
		check_aligned(p, MM_PAGE_SIZE, "alloc_pages_exact", n);
		place(s, p, n, (n + MM_PAGE_SIZE - 1) & MM_PAGE_MASK, K_EXACT, 0);
		return;
	}
	if (!room_for(MM_PAGE_SIZE << order))
		return;
	if (order > MM_MAX_ORDER) {
		/* NULL (page_alloc.h), and a report from the full core */
		if (IS_ENABLED(CONFIG_MM_TINY))
			p = alloc_pages(mm_default_arena(), order);
		else
			misuse("alloc_pages past MM_MAX_ORDER",
			       p = alloc_pages(mm_default_arena(), order));
		check(!p, "alloc_pages(%u) past MM_MAX_ORDER returned %p", order, (void *)p);
		return;
	}
	p = alloc_pages(mm_default_arena(), order);
	check(p || may_fail_pages(order), "alloc_pages(%u) failed", order);
	if (!p)
		return;
	check_aligned(p, MM_PAGE_SIZE << order, "alloc_pages", order);
	place(s, p, MM_PAGE_SIZE << order, MM_PAGE_SIZE << order, K_PAGES, order);
}

/*
 * A growth limit a few pages above what the arena holds, or below it, or
 * none again: the failure paths of every layer.
 */
static void op_limit(void)
{
	unsigned int what = take(1);
	struct mm_diag d;

	mm_arena_diag(mm_default_arena(), &d);
	limited = BOUNDED || what % 4 != 0;
	limit = what % 4 == 0 ? BASE_LIMIT : what % 4 == 1 ? d.capacity / 2 :
		d.capacity + (size_t)(what >> 2) * 4 * MM_PAGE_SIZE;
	mm_arena_set_limit(mm_default_arena(), limit);
}

static void op_trim(void)
{
	unsigned int what = take(1);

	switch (what % 5) {
	case 0:
		mm_percpu_drain();
		break;
	case 1:
		kmem_cache_reap(mm_default_arena());
		break;
	case 2:
		mm_arena_trim(mm_default_arena(), (size_t)take(2) * MM_PAGE_SIZE);
		break;
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	case 3:
		mm_malloc_trim((size_t)take(2) * 64);
		break;
#endif
	default:
		check_all("a check");
		break;
	}
}

/* ---- a second thread ---------------------------------------------------- */

/*
 * The operations run on one of two threads, in lockstep: this one, or a
 * worker that an input switches to (and back from) and makes exit.  The
 * hand-over orders everything one thread did before everything the other
 * does next, so the model needs no lock and an input runs the same way
 * every time -- but the allocator sees two threads: two sets of
 * magazines, blocks freed by the thread that did not allocate them,
 * double frees across threads, and a thread's exit giving back its
 * magazines and its cache while blocks it allocated live on.
 */
#if THREADS
enum { WORKER_SWITCH = 1, WORKER_EXIT };

static pthread_mutex_t hand_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hand_cond = PTHREAD_COND_INITIALIZER;
static void (*job)(void);	/* for the worker to run; NULL once run */
static int worker_quit;
static pthread_t worker;
static int worker_up, on_worker, worker_req;

static void *worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hand_lock);
	for (;;) {
		void (*fn)(void);

		while (!job && !worker_quit)
			pthread_cond_wait(&hand_cond, &hand_lock);
		if (worker_quit)
			break;
		fn = job;
		pthread_mutex_unlock(&hand_lock);
		fn();
		pthread_mutex_lock(&hand_lock);
		job = NULL;
		pthread_cond_broadcast(&hand_cond);
	}
	pthread_mutex_unlock(&hand_lock);
	return NULL;
}

static void run_on_worker(void (*fn)(void))
{
	pthread_mutex_lock(&hand_lock);
	job = fn;
	pthread_cond_broadcast(&hand_cond);
	while (job)
		pthread_cond_wait(&hand_cond, &hand_lock);
	pthread_mutex_unlock(&hand_lock);
}

/*
 * The worker's first malloc() gives it its cache of magazines, pages from
 * the arena: here, with no limit in the way, and not in the middle of a
 * misuse, which must leave the free pages as they were.
 */
static void worker_warm_up(void)
{
	mm_free(mm_malloc(1));
}

static void worker_start(void)
{
	check(pthread_create(&worker, NULL, worker_main, NULL) == 0, "pthread_create failed");
	worker_up = 1;
	mm_arena_set_limit(mm_default_arena(), BASE_LIMIT);
	run_on_worker(worker_warm_up);
	mm_arena_set_limit(mm_default_arena(), limit);
}

/* Its exit flushes its magazines and gives its cache back (percpu.c). */
static void worker_stop(void)
{
	if (!worker_up)
		return;
	pthread_mutex_lock(&hand_lock);
	worker_quit = 1;
	pthread_cond_broadcast(&hand_cond);
	pthread_mutex_unlock(&hand_lock);
	check(pthread_join(worker, NULL) == 0, "pthread_join failed");
	worker_quit = 0;
	worker_up = 0;
	on_worker = 0;
}

/* Asked for by an operation, done between two: the one thread running. */
static void op_thread(uint32_t op)
{
	worker_req = op == 255 ? WORKER_EXIT : WORKER_SWITCH;
}

/* What the other thread is to do once this operation is done. */
static void (*main_job)(void);

/*
 * Run fn on the thread this operation does not run on: at once on the
 * worker, or on this thread once the worker's operation is done -- and,
 * if asked, once the worker has exited.
 */
static void on_other_thread(void (*fn)(void), int then_exit)
{
	if (on_worker) {
		main_job = fn;
		if (then_exit)
			worker_req = WORKER_EXIT;
		return;
	}
	if (!worker_up)
		worker_start();
	run_on_worker(fn);
}

static void run_step(void (*step)(void))
{
	if (on_worker)
		run_on_worker(step);
	else
		step();
	if (worker_req == WORKER_SWITCH) {
		if (!worker_up)
			worker_start();
		on_worker = !on_worker;
	} else if (worker_req == WORKER_EXIT && worker_up) {
		worker_stop();
		check_all("a thread's exit");
	}
	worker_req = 0;
	if (main_job) {
		main_job();
		main_job = NULL;
	}
}
#else
static void op_thread(uint32_t op)
{
	(void)op;
}

static void on_other_thread(void (*fn)(void), int then_exit)
{
	(void)then_exit;
	fn();
}

static void run_step(void (*step)(void))
{
	step();
}

static void worker_stop(void)
{
}
#endif

/* ---- one input ---------------------------------------------------------- */

static size_t settle(void)
{
	struct mm_diag d;

	mm_percpu_drain();
	kmem_cache_reap(mm_default_arena());
	mm_arena_diag(mm_default_arena(), &d);
	return d.allocated;
}

static size_t base_allocated;

/*
 * One operation.  Op bytes 252 to 255 ask for the other thread where there
 * is one: rare bytes, which named ops 5 to 8 before there were threads,
 * so that most of the seed corpus's programs stay what they were.
 */
static void step(void)
{
	uint32_t op = take(1);

	if (op >= 252 && THREADS) {
		op_thread(op);
		return;
	}
	switch (op % 13) {
	case 0: op_malloc(0); break;
	case 1: op_malloc(1); break;
	case 2: op_malloc(2); break;
	case 3: op_malloc(3); break;
	case 4: op_realloc(0); break;
	case 5: op_realloc(1); break;
	case 6: op_aligned(); break;
	case 7: op_cache(); break;
	case 8: op_pages(); break;
	case 9: drop(take_slot(), "free"); break;
	case 10: op_trim(); break;
	case 11: op_limit(); break;
	default: op_misuse(); break;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mm_set_output(sink, NULL);
	/* Warm up: every class's cache and this thread's magazines exist. */
	for (size_t n = 1; n <= 64 * KiB; n *= 2)
		mm_free(mm_malloc(n));
	base_allocated = settle();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t after;

	in = data;
	in_left = size;
	live_bytes = 0;
	expected_errors = errors();
	for (int ops = 0; in_left && ops < MAX_OPS; ops++) {
		run_step(step);
		check(errors() == expected_errors, "%lu reports, %lu made on purpose",
		      errors(), expected_errors);
	}
	/* All back, and the arena as it was. */
	worker_stop();
	mm_arena_set_limit(mm_default_arena(), BASE_LIMIT);
	limited = BOUNDED;
	limit = BASE_LIMIT;
	check_all("the end");
	for (int i = 0; i < NSLOT; i++)
		drop(&slot[i], "the end");
	for (unsigned int i = 0; i < NCACHE; i++)
		if (cache[i].c)
			cache_destroy(i);
	check(live_bytes == 0, "the model lost count: %zu live bytes", live_bytes);
	after = settle();
	check(after == base_allocated, "nothing lost: %zu bytes of pages allocated, %zu before",
	      after, base_allocated);
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	check(mm_mallinfo2().hblks == 0, "nothing lost: %zu direct mappings left",
	      mm_mallinfo2().hblks);
#endif
	check_all("the end, all freed");
	return 0;
}
