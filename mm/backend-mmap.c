// SPDX-License-Identifier: MIT
/*
 * The anonymous-mapping backend.
 *
 * Each region is a private anonymous mapping aligned to the largest buddy
 * block: mapping len + align - 1 bytes and unmapping the slack on both sides
 * costs two extra munmap() calls and makes every block order available from
 * the region's first aligned page.  Pages are committed by the kernel on
 * first touch (MAP_NORESERVE keeps a large region from reserving swap), so
 * a region costs address space until it is used.  A backend with 'commit'
 * set maps without MAP_NORESERVE: kmalloc's direct mappings, each the size
 * a program asked for, which the kernel's overcommit check must be able to
 * refuse as it refuses glibc's.
 *
 * release() unmaps (any tail of a region can go); discard() keeps the
 * mapping and drops its pages with madvise(MADV_DONTNEED), so they read as
 * zero when next touched and cost no memory until then.  zero() does the
 * same to the pages of a range that are not resident -- never touched,
 * discarded, or swapped out -- and clears the others in place.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"

#if IS_ENABLED(CONFIG_MM_MMAP_NORESERVE)
#define MMAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
#else
#define MMAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS)
#endif

static void *map_aligned(size_t len, size_t align, int flags)
{
	/*
	 * mmap() aligns to the MMU page only, which may be smaller than
	 * MM_PAGE_SIZE (Kconfig allows up to 64 KiB pages on a 4 KiB host):
	 * the slack must cover align minus the smaller of the two.  No Linux
	 * MMU page is smaller than 4 KiB, so that bound stands in for
	 * sysconf(_SC_PAGESIZE): at worst a little more address space is
	 * mapped and unmapped again, where sysconf() -- its code and its
	 * jump table, in pages of the C library nothing else may touch --
	 * cost a preloaded process up to 64 KiB of resident file pages (the
	 * kernel maps up to 16 cached pages around each fault).
	 */
	size_t mmu = 4096;
	size_t span = len + align - (mmu < MM_PAGE_SIZE ? mmu : MM_PAGE_SIZE);
	uintptr_t p, start;

	if (span < len)
		return NULL;
	p = (uintptr_t)mmap(NULL, span, PROT_READ | PROT_WRITE, flags, -1, 0);
	if ((void *)p == MAP_FAILED)
		return NULL;
	start = ALIGN(p, align);
	if (start > p)
		munmap((void *)p, start - p);
	if (start + len < p + span)
		munmap((void *)(start + len), p + span - (start + len));
	return (void *)start;
}

static void *mmap_grow(struct mm_backend *be, size_t min, size_t want, size_t *got)
{
	struct mm_backend_mmap *m = container_of(be, struct mm_backend_mmap, be);
	int flags = m->commit ? MAP_PRIVATE | MAP_ANONYMOUS : MMAP_FLAGS;
	int saved = errno;
	void *p = NULL;

	if (want != SIZE_MAX)
		p = map_aligned(want, m->align, flags);
	if (!p && (p = map_aligned(min, m->align, flags)) != NULL)
		want = min;
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	/* Not what the refusal of 'want' left: this is a success. */
	errno = saved;
	*got = want;
	return p;
}

/* Reached from free(), which must leave errno as it found it. */
static int mmap_release(struct mm_backend *be, void *addr, size_t len)
{
	int saved = errno, ret = munmap(addr, len);

	errno = saved;
	return ret;
}

static int mmap_discard(struct mm_backend *be, void *addr, size_t len)
{
	int saved = errno, ret = madvise(addr, len, MADV_DONTNEED);

	errno = saved;
	return ret;
}

/*
 * Zero whole pages: those resident now by memset(), the others by
 * MADV_DONTNEED, after which they read zero and cost nothing until
 * written -- touching them to clear them would make a calloc() of fresh
 * memory resident in full, where glibc's mapped chunks stay untouched.
 * Every page gets one or the other whatever mincore() says, so a failed
 * call (-1: the caller clears the rest) costs time, never a wrong byte.
 *
 * mincore() reports MMU pages, at least 4 KiB on Linux (map_aligned()):
 * vec has room for MMU_UNITS of those per page of ours, and a page of
 * ours is resident if any of its are.  A larger MMU page writes fewer
 * entries (the rest stay 1: cleared by memset()), and one larger than
 * ours makes madvise() of a page of ours fail (EINVAL: memset() again).
 */
#define MMU_MIN_SHIFT	12
#define MMU_UNITS	(MM_PAGE_SHIFT > MMU_MIN_SHIFT ? 1u << (MM_PAGE_SHIFT - MMU_MIN_SHIFT) : 1u)

static int page_resident(const unsigned char *vec, size_t i)
{
	for (size_t k = 0; k < MMU_UNITS; k++) {
		if (vec[i * MMU_UNITS + k] & 1)
			return 1;
	}
	return 0;
}

static int mmap_zero(struct mm_backend *be, void *addr, size_t len)
{
	unsigned char vec[512];
	char *p = addr, *end = p + len;
	int saved = errno, ret = 0;

	static_assert(sizeof(vec) >= MMU_UNITS, "room for one page of ours");
	while (p < end && !ret) {
		size_t n = min_t(size_t, (size_t)(end - p) >> MM_PAGE_SHIFT, sizeof(vec) / MMU_UNITS);
		size_t i, j;

		memset(vec, 1, n * MMU_UNITS);
		if (mincore(p, n << MM_PAGE_SHIFT, vec)) {
			ret = -1;
			break;
		}
		for (i = 0; i < n && !ret; i = j) {
			int resident = page_resident(vec, i);
			char *from = p + (i << MM_PAGE_SHIFT);

			for (j = i + 1; j < n && page_resident(vec, j) == resident; j++)
				;
			if (resident)
				memset(from, 0, (j - i) << MM_PAGE_SHIFT);
			else
				ret = madvise(from, (j - i) << MM_PAGE_SHIFT, MADV_DONTNEED);
		}
		p += n << MM_PAGE_SHIFT;
	}
	errno = saved;
	return ret ? -1 : 0;
}

/*
 * A refusal here is no failure of the request: the arena maps a new
 * region instead, and a malloc() that succeeds must leave errno alone
 * (EEXIST, where another mapping took the address).
 */
static int mmap_grow_at(struct mm_backend *be, void *addr, size_t len)
{
	int saved = errno;
	void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
		       MMAP_FLAGS | MAP_FIXED_NOREPLACE, -1, 0);

	errno = saved;
	if (p == MAP_FAILED)
		return -1;
	if (p != addr) {		/* a kernel older than 4.17 ignores the flag */
		munmap(p, len);
		errno = saved;
		return -1;
	}
	return 0;
}

#ifdef MREMAP_MAYMOVE
/*
 * Where the kernel moved a mapping to, with pages of ours larger than the
 * MMU's: an address on the MMU's page only, which every later release or
 * zeroing of whole pages of ours refuses (a direct mapping that realloc()
 * had moved was never unmapped).  Moved once more, onto a reservation
 * aligned to our page, which MREMAP_FIXED replaces; if that cannot be
 * had, it stays where it is.
 */
static void *remap_aligned(struct mm_backend_mmap *m, void *p, size_t len)
{
	int flags = m->commit ? MAP_PRIVATE | MAP_ANONYMOUS : MMAP_FLAGS;
	void *to = map_aligned(len, MM_PAGE_SIZE, flags), *q;

	if (!to)
		return p;
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (q == MAP_FAILED) {
		munmap(to, len);
		return p;
	}
	return q;
}
#endif

void *mm_backend_mmap_remap(struct mm_backend_mmap *m, void *addr, size_t old_len,
			    size_t new_len)
{
#ifdef MREMAP_MAYMOVE
	int saved = errno;
	void *p;

	/*
	 * Lengths in pages of ours; the address need only be the MMU's page
	 * (the kernel's test): a mapping it moved before lies on any MMU
	 * page, and with pages of ours larger than that, every later resize
	 * of it was refused -- a direct mapping shrunk by realloc() kept
	 * all its memory.
	 */
	if (!old_len || !new_len || (old_len | new_len) & (MM_PAGE_SIZE - 1) ||
	    (uintptr_t)addr & ((1u << MMU_MIN_SHIFT) - 1))
		return NULL;
	p = mremap(addr, old_len, new_len, MREMAP_MAYMOVE);
	if (p != MAP_FAILED && ((uintptr_t)p & (MM_PAGE_SIZE - 1)))
		p = remap_aligned(m, p, new_len);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	m->be.held += new_len;
	m->be.held -= old_len;
	return p;
#else
	return NULL;
#endif
}

void mm_backend_mmap_init(struct mm_backend_mmap *m, size_t align)
{
	if (!align || !is_power_of_2(align) || align < MM_PAGE_SIZE)
		align = MM_MAX_BLOCK;
	*m = (struct mm_backend_mmap){
		.be = {
			.name = "mmap",
			.grow = mmap_grow,
			.release = mmap_release,
			.discard = mmap_discard,
			.grow_at = mmap_grow_at,
			.zero = mmap_zero,
		},
		.align = align,
	};
}

#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_MMAP)
struct mm_backend *mm_default_backend(void)
{
	static struct mm_backend_mmap m;

	if (!m.be.grow)
		mm_backend_mmap_init(&m, 0);
	return &m.be;
}
#endif
