/* SPDX-License-Identifier: MIT */
/*
 * What the layers of mm/ share and nobody else sees: region lookup, the
 * lock-held entry points of the page allocator and the debugging hooks.
 * The per-page metadata byte is described in page_meta.h.
 */
#ifndef MM_INTERNAL_H
#define MM_INTERNAL_H

#include <mm/mm.h>
#include <mm/bitops.h>
#include "page_meta.h"

/*
 * Host-only options, read under IS_ENABLED(CONFIG_ARCH_HOST): absent from
 * autoconf.h elsewhere, but the dead branch must still compile.
 */
#ifndef CONFIG_MM_GROW_MIN_KB
#define CONFIG_MM_GROW_MIN_KB 0
#endif

static __always_inline uint8_t *page_meta(struct mm_region *r, uintptr_t pfn)
{
	return &r->meta[(pfn - r->start_pfn) * MM_META_BYTES];
}

/*
 * The class byte (CONFIG_MM_PAGE_CLASS): the kmalloc class index on every
 * page of a slab of a kmalloc cache, 0 on every other page.  Written with
 * the lock held when a slab is made and before it is freed; read without
 * it by kfree() and ksize(), for whom a live object's page cannot change.
 */
static __always_inline uint8_t *page_class(struct mm_region *r, uintptr_t pfn)
{
	return page_meta(r, pfn) + 1;
}

/*
 * r->nr_pages, which a regrow or a trim changes with the lock held while
 * region_of() reads it without (for a live object both the old and the
 * new value place it right): relaxed atomics, a plain load and store on
 * every target, and no data race by C11's rules (ThreadSanitizer saw
 * one).  With the lock held the field is read as it is
 * (region_contains()), so that the buddy allocator's loops keep it in a
 * register; kfree()'s inline path bounds its lookup by max_pages instead
 * (kmalloc.h).
 */
static __always_inline uintptr_t region_nr_pages(const struct mm_region *r)
{
	return __atomic_load_n(&r->nr_pages, __ATOMIC_RELAXED);
}

static __always_inline void region_set_nr_pages(struct mm_region *r, uintptr_t n)
{
	__atomic_store_n(&r->nr_pages, n, __ATOMIC_RELAXED);
}

/* Lock held. */
static __always_inline int region_contains(const struct mm_region *r, uintptr_t pfn)
{
	return pfn - r->start_pfn < r->nr_pages;
}

/*
 * The arena's newest region, never NULL (mm_region_none stands in for an
 * empty list).  Regions are added at the head of the list, and on a growing
 * host heap the newest is the largest, so it is the one to try first.
 */
extern MM_INTERNAL const struct mm_region mm_region_none;

static __always_inline const struct mm_region *region_first(struct mm_arena *a)
{
	return __atomic_load_n(&a->first, __ATOMIC_ACQUIRE);
}

/* After every change to the head of a->regions; lock held. */
static inline void arena_regions_changed(struct mm_arena *a)
{
	__atomic_store_n(&a->first, a->regions ? a->regions : &mm_region_none,
			 __ATOMIC_RELEASE);
}

/* The region of the arena that holds pfn, or NULL.  Regions are few. */
static __always_inline struct mm_region *region_of(struct mm_arena *a, uintptr_t pfn)
{
	struct mm_region *r;

	/*
	 * Acquire pairs with the release in region_add(): the per-thread
	 * caches walk this list without the lock (see percpu.c).
	 */
	for (r = __atomic_load_n(&a->regions, __ATOMIC_ACQUIRE); r; r = r->next) {
		if (pfn - r->start_pfn < region_nr_pages(r))
			return r;
	}
	return NULL;
}

/*
 * The head of the block holding pfn (which must be inside r): the first
 * nonzero byte among pfn rounded down to 2^0, 2^1, ... pages.  Returns 0 if
 * none is found, which the invariant says cannot happen for a valid pfn.
 */
static inline uintptr_t block_head(struct mm_region *r, uintptr_t pfn)
{
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++) {
		uintptr_t h = pfn & ~(((uintptr_t)1 << o) - 1);
		uint8_t m;

		if (h < r->start_pfn)
			break;
		m = *page_meta(r, h);
		if (m)
			return pfn - h < ((uintptr_t)1 << meta_order(m)) ? h : 0;
	}
	return 0;
}

/* Lock-held variants for the layers above (slab, kmalloc). */
void *__alloc_pages_locked(struct mm_arena *a, unsigned int order, unsigned int type);
void __free_pages_locked(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
			 unsigned int order);
void *__alloc_pages_type(struct mm_arena *a, unsigned int order, unsigned int type);
struct mm_region *__check_block(struct mm_arena *a, const void *addr,
				unsigned int order, unsigned int type,
				const char *caller);
void __free_range_locked(struct mm_arena *a, struct mm_region *r,
			 uintptr_t pfn, uintptr_t end);
void __free_range_dirty(struct mm_arena *a, struct mm_region *r,
			uintptr_t pfn, uintptr_t end, size_t dirty);
void __free_range_type(struct mm_arena *a, struct mm_region *r,
		       uintptr_t pfn, uintptr_t end, unsigned int type);
void __del_free_block(struct mm_arena *a, struct mm_region *r, uintptr_t pfn);

/* Empty n pages of the order-0 page cache into the free lists; lock held. */
#if CONFIG_MM_PCP_PAGES > 0
int __pcp_drain(struct mm_arena *a, unsigned int n);
#else
static inline int __pcp_drain(struct mm_arena *a, unsigned int n)
{
	return 0;
}
#endif
void __trim_to_exact(struct mm_arena *a, void *p, size_t n, unsigned int order,
		     unsigned int first, unsigned int rest);
void *__alloc_exact(struct mm_arena *a, size_t n, unsigned int align_order,
		    unsigned int first, unsigned int rest);
void *__alloc_exact_nowait(struct mm_arena *a, size_t n);
int __resize_exact(struct mm_arena *a, struct mm_region *r, uintptr_t head, size_t n, size_t m);
int __arena_grow(struct mm_arena *a, unsigned int order);
void __unlink_free_range(struct mm_arena *a, struct mm_region *r,
			 uintptr_t pfn, uintptr_t end);
void __region_unlink(struct mm_arena *a, struct mm_region *r);
uintptr_t __free_tail_start(struct mm_arena *a, struct mm_region *r, size_t floor);

/*
 * A free block's first bytes: its list node, its region, and (with
 * CONFIG_MM_PREFER_RESIDENT) how many of its pages are presumed resident.
 * The count is what the footprint cap weighs: one type per block (PT_FREE
 * or PT_CLEAN) cannot tell a 4 MiB block with one resident MiB from one
 * that is all resident, and counting such a block whole made the cap
 * discard -- and the next request re-fault -- a 1 MiB buffer that a
 * program freed and took again at the edge of fresh memory.  Exact where
 * blocks merge (the counts add); where one splits, the resident pages are
 * presumed at its low end, where allocations take their pages.
 */
struct free_block {
	struct hlist_node node;
	struct mm_region *region;
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	size_t dirty;
#endif
};

static_assert(sizeof(struct free_block) <= ((size_t)1 << 7),
	      "a free block must fit in the smallest page");

/* Free pages presumed resident. */
static __always_inline size_t arena_free_resident(const struct mm_arena *a)
{
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	return a->nr_dirty;
#else
	return a->nr_free - a->nr_clean;
#endif
}

void __free_block_discarded(struct mm_arena *a, struct free_block *b, unsigned int order);
size_t __free_block_dirty(struct mm_region *r, uintptr_t pfn);

/* Give-back (trim.c), and empty stubs where nothing is ever given back. */
#if IS_ENABLED(CONFIG_MM_TRIM)
void __arena_trim_auto(struct mm_arena *a);
int __region_regrow(struct mm_arena *a, size_t need, size_t want);
void __arena_trim_adapt(struct mm_arena *a);

#if IS_ENABLED(CONFIG_MM_FOOTPRINT_CAP)
void __arena_footprint(struct mm_arena *a);

/*
 * Pages resident, or presumed so: those in use and the free ones presumed
 * resident (struct free_block).  Compared with fp_high (SIZE_MAX when the
 * cap is off) where that count grows: untouched pages taken, and after
 * frees.
 */
static __always_inline size_t arena_footprint(const struct mm_arena *a)
{
	return a->nr_pages - a->nr_free + arena_free_resident(a);
}

static __always_inline void __arena_check_footprint(struct mm_arena *a)
{
	if (unlikely(arena_footprint(a) > a->fp_high))
		__arena_footprint(a);
}
#else
static inline void __arena_check_footprint(struct mm_arena *a)
{
}
#endif

/*
 * After a free, lock held: two comparisons (trim_high is SIZE_MAX when off,
 * trim_recheck 0 but while a bar is raised: __arena_trim_auto()),
 * with the free pages presumed resident, as the footprint cap weighs them
 * (struct free_block).  Counted by block type, a freed 16 MiB buffer that
 * merged with untouched pages into a 64 MiB block (64 KiB pages) passed
 * the bar as 64 MiB, and the trim unmapped the buffer's pages with the
 * rest, to be faulted in again at its next use.
 */
static __always_inline void __arena_maybe_trim(struct mm_arena *a)
{
	if (unlikely(arena_free_resident(a) > a->trim_high) ||
	    unlikely(a->nr_pages - a->nr_free < a->trim_recheck))
		__arena_trim_auto(a);
	else
		__arena_check_footprint(a);
}
#else
static inline void __arena_check_footprint(struct mm_arena *a)
{
}

static inline void __arena_maybe_trim(struct mm_arena *a)
{
}

static inline int __region_regrow(struct mm_arena *a, size_t need, size_t want)
{
	return -1;
}

static inline void __arena_trim_adapt(struct mm_arena *a)
{
}
#endif

/* The arena lock. */
static __always_inline mm_flags_t arena_lock(struct mm_arena *a)
{
	return mm_lock(&a->lock);
}

static __always_inline void arena_unlock(struct mm_arena *a, mm_flags_t flags)
{
	mm_unlock(&a->lock, flags);
}

/*
 * Hold this lock across fork() too (host thread locks; a no-op elsewhere).
 * The rank says where the fork takes it: the ranks in this order, the
 * arena locks between MM_FORK_HUGE and MM_FORK_INNER -- a lock held while
 * another is taken comes first (setup_lock, then kmalloc's init_lock,
 * then the slab's boot_lock, all before the arena locks the setups take);
 * one taken while an arena lock is held (percpu.c's live_lock) after the
 * arena locks.  Register from a constructor: before any thread exists,
 * and so before any fork that would read the table while it changes.
 */
enum {
	MM_FORK_SETUP,		/* arena.c: the default arena's setup */
	MM_FORK_INIT,		/* kmalloc.c: the size classes' setup */
	MM_FORK_BOOT,		/* slab.c: the descriptors' cache */
	MM_FORK_HUGE,		/* kmalloc.c: the direct mappings */
	MM_FORK_INNER,		/* percpu.c: the live caches */
	MM_FORK_RANKS
};
void __mm_fork_lock(mm_lock_t *lock, int rank);

/*
 * In a fork()'s child, its locks reset: the threads that did not come
 * along leave their per-thread caches behind; give them back (percpu.c).
 */
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
void __percpu_fork_child(void);
#else
static inline void __percpu_fork_child(void)
{
}
#endif

/*
 * Set while kmalloc's first try at a request runs (alloc_or_drain()): a
 * failure then is not yet the request's -- the thread's magazines go back
 * and it is tried once more -- so the OOM hook is not called and no
 * failure counted until that last try.  Only threads with magazines have
 * anything to give back.
 */
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
extern __thread int mm_oom_quiet MM_INTERNAL __attribute__((tls_model("initial-exec")));

static __always_inline int oom_quiet(void)
{
	return mm_oom_quiet;
}
#else
static __always_inline int oom_quiet(void)
{
	return 0;
}
#endif

/* Every arena, for fork() handling and reports. */
extern MM_INTERNAL struct mm_arena *mm_arenas;
int __arena_is_live(const struct mm_arena *a);

/* VM_BUG_ON: the allocator's own invariants, compiled away by default. */
#if IS_ENABLED(CONFIG_MM_DEBUG_VM)
#define VM_BUG_ON(cond)							\
	do {								\
		if (unlikely(cond))					\
			mm_panic("VM_BUG_ON(" #cond ") at " __FILE__);	\
	} while (0)
#else
#define VM_BUG_ON(cond) do { (void)sizeof(cond); } while (0)
#endif

#endif /* MM_INTERNAL_H */
