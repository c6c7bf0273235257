// SPDX-License-Identifier: MIT
/*
 * The malloc facade: the C allocation API over kmalloc.
 *
 * CONFIG_MM_MALLOC_PREFIXED names everything mm_malloc, mm_free, ...;
 * CONFIG_MM_MALLOC_LIBC uses the C library's own names, so linking libmm.a
 * replaces the C library's allocator and LD_PRELOAD=libmm.so does it for a
 * dynamically linked program.  The whole family is exported, because a
 * program that reaches one missing member (say pvalloc) gets the C
 * library's, and that block later arrives at our free().
 *
 * What the standards and glibc want, and where it is done:
 *  - alignment to alignof(max_align_t): the smallest kmalloc class is 16
 *    bytes on hosts, and every class of at least 16 bytes is 16-aligned;
 *  - malloc(0): a unique pointer (kmalloc(0) is the smallest object);
 *  - errno = ENOMEM on every failure, and free() preserves errno;
 *  - calloc/reallocarray: n * size overflow is ENOMEM, not a short block;
 *  - realloc: the old block survives a failure; size 0 frees (glibc);
 *  - posix_memalign: EINVAL unless a power-of-two multiple of sizeof(void *).
 * On newlib the reentrant _malloc_r family is exported as well, so that
 * newlib's own allocations (stdio buffers) come from mm.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "kmalloc.h"
#if IS_ENABLED(CONFIG_ARCH_HOST)
#include <unistd.h>
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define MM_NAME(name) mm_##name
#define mallinfo2_t struct mm_mallinfo2
#else
#define MM_NAME(name) name
#include <malloc.h>
#include <stdlib.h>
#ifdef __GLIBC__
#define mallinfo2_t struct mallinfo2
#else
/* newlib has no mallinfo2: export it with our own struct of the same shape. */
#define mallinfo2_t struct mm_mallinfo2
#endif
#endif

#if !IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
/* glibc's struct mallinfo2, for C libraries that lack it. */
struct mm_mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks,
	       uordblks, fordblks, keepcost;
};
#endif

/* Visible from the shared object whatever the build's defaults. */
#define MM_EXPORT __attribute__((visibility("default")))

MM_EXPORT void *MM_NAME(malloc)(size_t size);
MM_EXPORT void MM_NAME(free)(void *p);
MM_EXPORT void *MM_NAME(calloc)(size_t n, size_t size);
MM_EXPORT void *MM_NAME(realloc)(void *p, size_t size);
MM_EXPORT void *MM_NAME(reallocarray)(void *p, size_t n, size_t size);
MM_EXPORT void *MM_NAME(aligned_alloc)(size_t align, size_t size);
MM_EXPORT int MM_NAME(posix_memalign)(void **out, size_t align, size_t size);
MM_EXPORT void *MM_NAME(memalign)(size_t align, size_t size);
MM_EXPORT void *MM_NAME(valloc)(size_t size);
MM_EXPORT void *MM_NAME(pvalloc)(size_t size);
MM_EXPORT size_t MM_NAME(malloc_usable_size)(void *p);
MM_EXPORT int MM_NAME(malloc_trim)(size_t pad);
MM_EXPORT void MM_NAME(malloc_stats)(void);
MM_EXPORT mallinfo2_t MM_NAME(mallinfo2)(void);

/* Out of line: every failure path tail-calls it, and none of them is hot. */
static __noinline __cold void *nomem(void)
{
	errno = ENOMEM;
	return NULL;
}

static __noinline void *malloc_slow(size_t size)
{
	void *p = __kmalloc_slow(size);

	return likely(p) ? p : nomem();
}

void *MM_NAME(malloc)(size_t size)
{
	return kmalloc_fast(size, malloc_slow);
}

/*
 * free() preserves errno: the system calls it may make (giving memory back,
 * unmapping a direct mapping, writing a report) save and restore it where
 * they are made, so the common path spends nothing on it.
 */
void MM_NAME(free)(void *p)
{
	kfree_fast(p, __kfree_slow);
}

void *MM_NAME(calloc)(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (__builtin_mul_overflow(n, size, &bytes))
		return nomem();
	p = kzalloc(bytes);
	return p ? p : nomem();
}

static __noinline void *realloc_slow(void *p, size_t size)
{
	void *q;

	q = __krealloc_slow(p, size);	/* malloc() for NULL; size 0 frees p */
	return q || (p && !size) ? q : nomem();
}

/* A block that still fits stays put without a call (kmalloc.h). */
void *MM_NAME(realloc)(void *p, size_t size)
{
	return krealloc_fast(p, size, realloc_slow, MM_NAME(malloc));
}

void *MM_NAME(reallocarray)(void *p, size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes))
		return nomem();
	return MM_NAME(realloc)(p, bytes);
}

static void *aligned(size_t align, size_t size)
{
	void *p = kmalloc_aligned(size, align);

	return p ? p : nomem();
}

void *MM_NAME(aligned_alloc)(size_t align, size_t size)
{
	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, size);
}

int MM_NAME(posix_memalign)(void **out, size_t align, size_t size)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	p = aligned(align, size);	/* errno too, as glibc, and every other failure here */
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *MM_NAME(memalign)(size_t align, size_t size)
{
	/*
	 * glibc rounds an alignment that is not a power of two up to one, and
	 * one above the largest power of two, which nothing rounds to, is
	 * EINVAL (the largest itself is a request too big: ENOMEM).  The tiny
	 * core's kmalloc_aligned() rounds by itself: a block of
	 * max(size, align) bytes is aligned to a power of two at least align.
	 * It says ENOMEM for both: the 28 bytes of telling them apart are
	 * more than cortex_m4_min's flash budget has left.
	 */
	if (IS_ENABLED(CONFIG_MM_TINY))
		return aligned(align, size);
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align <= 1 ? 1 : roundup_pow_of_two(align), size);
}

/*
 * valloc and pvalloc hand out blocks, so on a host with the C library's
 * names they are mm's even without the extras -- the tiny core's
 * (host_tiny_defconfig) builds a libmm.so that can be preloaded too: a
 * program's valloc() otherwise reached glibc's, and the block then came
 * to our free() (reported as not ours, and leaked) and realloc() (NULL).
 * glibc's malloc_trim, malloc_stats and mallinfo2 only look at glibc's
 * own empty heap then, which is harmless.
 */
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) || \
    (IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && IS_ENABLED(CONFIG_ARCH_HOST))
/*
 * valloc()'s page is the MMU's: 16 or 64 KiB on some arm64 kernels.  Asked
 * here only, not at setup, where sysconf()'s code would be pages of the C
 * library that a preloaded process otherwise never touches.  newlib's
 * page is 4096.
 */
static size_t sys_page_size(void)
{
#if IS_ENABLED(CONFIG_ARCH_HOST)
	long page = sysconf(_SC_PAGESIZE);

	if (page > 0)
		return (size_t)page;
#endif
	return 4096;
}

void *MM_NAME(valloc)(size_t size)
{
	return aligned(sys_page_size(), size);
}

void *MM_NAME(pvalloc)(size_t size)
{
	size_t page = sys_page_size();

	if (size > SIZE_MAX - page)
		return nomem();
	return aligned(page, size ? ALIGN(size, page) : page);
}

#endif

size_t MM_NAME(malloc_usable_size)(void *p)
{
	return ksize(p);
}

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
int MM_NAME(malloc_trim)(size_t pad)
{
	struct mm_arena *a = mm_default_arena();
	size_t pages;

	if (!a)
		return 0;
	mm_percpu_drain();
	pages = kmem_cache_reap(a) + __kmalloc_trim_huge();
	return (mm_arena_trim(a, pad) || pages) ? 1 : 0;
}

mallinfo2_t MM_NAME(mallinfo2)(void)
{
	mallinfo2_t mi;
	struct mm_arena *a = mm_default_arena();
	size_t allocated, heap_free, max_nr, max_bytes;
	mm_flags_t flags;

	memset(&mi, 0, sizeof(mi));
	if (!a)
		return mi;
	/*
	 * One snapshot: the heap's spans are pages in use, their free blocks
	 * are not, and a span added between two looks would make the
	 * difference wrap.
	 */
	flags = arena_lock(a);
	mi.arena = a->nr_pages << MM_PAGE_SHIFT;
	allocated = (a->nr_pages - a->nr_free) << MM_PAGE_SHIFT;
	heap_free = __heap_free_bytes(a);
	if (IS_ENABLED(CONFIG_MM_STATS))
		mi.usmblks = a->diag.peak_allocated;
	arena_unlock(a, flags);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		mi.ordblks += mm_arena_nr_free_order(a, o);
	mi.uordblks = allocated - heap_free;
	mi.fordblks = mi.arena - mi.uordblks;
	/* Direct mappings apart, as glibc counts its mmapped chunks. */
	__kmalloc_huge_stats(&mi.hblks, &mi.hblkhd, &max_nr, &max_bytes);
	return mi;
}

void MM_NAME(malloc_stats)(void)
{
	mallinfo2_t mi = MM_NAME(mallinfo2)();	/* in use: the heap's free blocks are not */
	struct mm_arena *a = mm_default_arena();
	size_t nr, bytes, max_nr, max_bytes;

	if (!a)
		return;
	/* glibc's last two lines: the most direct mappings there have been. */
	__kmalloc_huge_stats(&nr, &bytes, &max_nr, &max_bytes);
	mm_printf("Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
		  "Total (incl. mmap):\nsystem bytes     = %10zu\nin use bytes     = %10zu\n"
		  "max mmap regions = %10zu\nmax mmap bytes   = %10zu\n",
		  mi.arena, mi.uordblks, mi.arena + mi.hblkhd, mi.uordblks + mi.hblkhd,
		  max_nr, max_bytes);
}
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) && IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && \
    (defined(__GLIBC__) || defined(__NEWLIB__))
/*
 * The older members of the family, which both C libraries have: without
 * ours a program's call reached the C library's allocator, whose heap mm
 * never uses -- mallinfo() said 0 bytes in use, however many there were.
 * glibc's struct mallinfo has int fields: a count past INT_MAX stays at
 * INT_MAX rather than wrap to a negative figure (glibc's does).
 */
#ifdef __GLIBC__
#define MALLINFO_FIELD(v)	((v) > INT_MAX ? INT_MAX : (int)(v))
#else
#define MALLINFO_FIELD(v)	(v)
#endif

MM_EXPORT struct mallinfo mallinfo(void);
MM_EXPORT int mallopt(int param, int value);

struct mallinfo mallinfo(void)
{
	mallinfo2_t m = mallinfo2();
	struct mallinfo mi = {
		.arena = MALLINFO_FIELD(m.arena), .ordblks = MALLINFO_FIELD(m.ordblks),
		.smblks = MALLINFO_FIELD(m.smblks), .hblks = MALLINFO_FIELD(m.hblks),
		.hblkhd = MALLINFO_FIELD(m.hblkhd), .usmblks = MALLINFO_FIELD(m.usmblks),
		.fsmblks = MALLINFO_FIELD(m.fsmblks), .uordblks = MALLINFO_FIELD(m.uordblks),
		.fordblks = MALLINFO_FIELD(m.fordblks), .keepcost = MALLINFO_FIELD(m.keepcost),
	};

	return mi;
}

/* No parameter is tuned at run time (Kconfig sets them): 0, as musl says. */
int mallopt(int param, int value)
{
	return 0;
}
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS) && IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && \
    defined(__GLIBC__)
/*
 * glibc's malloc_info(): its XML, one heap, with mallinfo2()'s figures --
 * "rest" the free pages and heap blocks, "mmap" the direct mappings.  No
 * <sizes>: glibc lists its free chunks by bin there, and a class's free
 * objects are on pages mallinfo2() counts in use.  The arena's greatest
 * size is not kept, so "max" is the current one.  Options must be 0.
 */
MM_EXPORT int malloc_info(int options, FILE *fp);

int malloc_info(int options, FILE *fp)
{
	static const char totals[] =
		"<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		"<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n";
	static const char sys[] =
		"<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
		"<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n";
	mallinfo2_t m;

	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	m = mallinfo2();
	fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n", fp);
	fprintf(fp, totals, m.ordblks, m.fordblks);
	fprintf(fp, sys, m.arena, m.arena, m.arena, m.arena);
	fputs("</heap>\n", fp);
	fprintf(fp, totals, m.ordblks, m.fordblks);
	fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", m.hblks, m.hblkhd);
	fprintf(fp, sys, m.arena, m.arena, m.arena, m.arena);
	fputs("</malloc>\n", fp);
	return 0;
}
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && defined(__NEWLIB__)
/*
 * newlib's reentrant entry points.  Its own malloc() calls _malloc_r(), and
 * its stdio calls the _r forms directly: defining both families keeps every
 * allocation in the program on mm, and newlib's mallocr.o out of the link.
 *
 * Each calls the plain function, which sets errno -- _REENT->_errno -- on
 * a failure.  newlib's convention is r->_errno, the same struct for every
 * call newlib makes with _REENT and under an RTOS that switches
 * _impure_ptr per task; for a caller that passes another,
 * CONFIG_MM_NEWLIB_REENT_ERRNO copies errno there too.
 */
#include <reent.h>

#if IS_ENABLED(CONFIG_MM_NEWLIB_REENT_ERRNO)
static __noinline void *reent_errno(struct _reent *r, void *p)
{
	if (!p)
		r->_errno = errno;
	return p;
}
#else
static inline void *reent_errno(struct _reent *r, void *p)
{
	return p;
}
#endif

void *_malloc_r(struct _reent *r, size_t size);
void _free_r(struct _reent *r, void *p);
void *_calloc_r(struct _reent *r, size_t n, size_t size);
void *_realloc_r(struct _reent *r, void *p, size_t size);
void *_memalign_r(struct _reent *r, size_t align, size_t size);
size_t _malloc_usable_size_r(struct _reent *r, void *p);

void *_malloc_r(struct _reent *r, size_t size)
{
	return reent_errno(r, malloc(size));
}

void _free_r(struct _reent *r, void *p)
{
	free(p);
}

void *_calloc_r(struct _reent *r, size_t n, size_t size)
{
	return reent_errno(r, calloc(n, size));
}

void *_realloc_r(struct _reent *r, void *p, size_t size)
{
	void *q = realloc(p, size);

	/* Size 0 frees p and returns NULL: no failure, nothing to tell. */
	return size ? reent_errno(r, q) : q;
}

void *_memalign_r(struct _reent *r, size_t align, size_t size)
{
	return reent_errno(r, memalign(align, size));
}

size_t _malloc_usable_size_r(struct _reent *r, void *p)
{
	return malloc_usable_size(p);
}

#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
/*
 * The rest of newlib's family.  Its objects define these in groups --
 * mallinfo, malloc_stats and mallopt in one, valloc and pvalloc in
 * another -- and reach its allocator's own: a program that called
 * mallinfo() or valloc() pulled newlib's allocator in beside mm's, and
 * the link stopped at two _malloc_r (or, for malloc_trim(), at nano's
 * missing _malloc_trim_r).  Every member of every group is here, or
 * above (mallinfo and mallopt, which glibc has too).
 */
struct mallinfo _mallinfo_r(struct _reent *r);
void _malloc_stats_r(struct _reent *r);
int _mallopt_r(struct _reent *r, int param, int value);
void *_valloc_r(struct _reent *r, size_t size);
void *_pvalloc_r(struct _reent *r, size_t size);
int _malloc_trim_r(struct _reent *r, size_t pad);

struct mallinfo _mallinfo_r(struct _reent *r)
{
	return mallinfo();
}

void _malloc_stats_r(struct _reent *r)
{
	malloc_stats();
}

int _mallopt_r(struct _reent *r, int param, int value)
{
	return mallopt(param, value);
}

void *_valloc_r(struct _reent *r, size_t size)
{
	return valloc(size);
}

void *_pvalloc_r(struct _reent *r, size_t size)
{
	return pvalloc(size);
}

int _malloc_trim_r(struct _reent *r, size_t pad)
{
	return malloc_trim(pad);
}
#endif
#endif
