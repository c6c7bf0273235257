/* SPDX-License-Identifier: MIT */
/*
 * Backends: where an arena's pages come from.
 *
 * A backend hands out page-aligned regions and, where its kind allows, takes
 * the tail of a region (or a whole region) back.  It knows nothing of how
 * the pages are used: the buddy allocator above keeps its own metadata inside
 * the regions.  One struct of function pointers is the whole interface, so a
 * backend an application writes (a second RAM bank, a DMA pool, a file)
 * plugs in the same way as the ones here:
 *
 *  grow(be, min, want, &got)  at least min and at most max(min, want) bytes,
 *                             both multiples of MM_PAGE_SIZE; NULL if even
 *                             min cannot be had.  want = SIZE_MAX: "all you
 *                             have" (the static backend's natural request).
 *  release(be, addr, len)     give back [addr, addr + len), the tail of a
 *                             region grow() returned or the whole of it;
 *                             -1 if this backend cannot (then the pages stay
 *                             with the arena, nothing is lost).
 *  discard(be, addr, len)     optional: the contents of these pages inside a
 *                             region that stays are no longer needed
 *                             (madvise(MADV_DONTNEED)); they read as zero or
 *                             as before, both are fine.
 *  sync(be, addr, len)        optional: make the contents durable (a file
 *                             backend's msync()).
 *  grow_at(be, addr, len)     optional: map exactly [addr, addr + len), the
 *                             pages right after a region this backend
 *                             handed out, so a trimmed region can grow back
 *                             in place instead of becoming a new region.
 *                             0, or -1 if that range cannot be had.
 *  zero(be, addr, len)        optional: make these pages read zero without
 *                             touching those that are not resident (the
 *                             mmap backend: mincore(), then memset() or
 *                             MADV_DONTNEED), so that kzalloc() and calloc()
 *                             of fresh memory cost none until it is used.
 *                             0, or -1 to have the caller memset() it all.
 *
 * The counters in struct mm_backend are kept by the mm_backend_*() wrappers
 * below, not by each backend, so every kind reports the same way.
 */
#ifndef MM_BACKEND_H
#define MM_BACKEND_H

#include <mm/compiler.h>
#include <mm/page.h>

MM_BEGIN_DECLS

struct mm_backend {
	const char *name;
	void *(*grow)(struct mm_backend *be, size_t min, size_t want, size_t *got);
	int (*release)(struct mm_backend *be, void *addr, size_t len);
	int (*discard)(struct mm_backend *be, void *addr, size_t len);
	int (*sync)(struct mm_backend *be, void *addr, size_t len);
	int (*grow_at)(struct mm_backend *be, void *addr, size_t len);
	int (*zero)(struct mm_backend *be, void *addr, size_t len);

	size_t held;			/* bytes handed out and not given back */
	unsigned long nr_grow;		/* successful grow() calls */
	unsigned long nr_release;	/* successful release() calls */
	unsigned long nr_fail;		/* grow() or release() refused */
};

/* Static array (or linker-provided region): no system calls. */
struct mm_backend_static {
	struct mm_backend be;
	uintptr_t base, top, end;	/* [base, top) handed out, [top, end) left */
};

/*
 * Hand out [mem, mem + size), trimmed inward to page boundaries.  Returns 0,
 * or -1 if less than one page remains after trimming.
 */
int mm_backend_static_init(struct mm_backend_static *s, void *mem, size_t size);

/* The program break. */
struct mm_backend_sbrk {
	struct mm_backend be;
	uintptr_t last_end;		/* where our last region ended */
	unsigned long nr_foreign;	/* times someone else had moved the break */
};

void mm_backend_sbrk_init(struct mm_backend_sbrk *s);

/* Anonymous private mappings. */
struct mm_backend_mmap {
	struct mm_backend be;
	size_t align;			/* regions are aligned to this (power of 2) */
	int commit;			/* 1: never MAP_NORESERVE (the kernel may refuse) */
};

/*
 * align: 0 for the largest buddy block (every order is then available in a
 * region from its first page), or any power of two >= MM_PAGE_SIZE.
 */
void mm_backend_mmap_init(struct mm_backend_mmap *m, size_t align);

/*
 * Resize a mapping of m's from old_len to new_len bytes (multiples of
 * MM_PAGE_SIZE), moving it if it must (Linux's mremap(): the kernel moves
 * the page tables, nothing is copied).  The new address, or NULL where
 * that is refused or unsupported.  A moved mapping is aligned to the MMU's
 * page only, not to MM_PAGE_SIZE or the backend's alignment.
 */
void *mm_backend_mmap_remap(struct mm_backend_mmap *m, void *addr, size_t old_len,
			    size_t new_len);

/* The wrappers every caller uses: they check arguments and keep counters. */
void *mm_backend_grow(struct mm_backend *be, size_t min, size_t want, size_t *got);
int mm_backend_release(struct mm_backend *be, void *addr, size_t len);
int mm_backend_discard(struct mm_backend *be, void *addr, size_t len);
int mm_backend_sync(struct mm_backend *be, void *addr, size_t len);
int mm_backend_grow_at(struct mm_backend *be, void *addr, size_t len);
/* [addr, addr + len), whole pages, reads zero: the backend's way, else (be NULL too) memset(). */
void mm_backend_zero(struct mm_backend *be, void *addr, size_t len);

/* The backend Kconfig chose for the default arena. */
struct mm_backend *mm_default_backend(void);

MM_END_DECLS

#endif /* MM_BACKEND_H */
