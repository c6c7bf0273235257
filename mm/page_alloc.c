// SPDX-License-Identifier: MIT
/*
 * The binary buddy allocator (Knuth; Linux's mm/page_alloc.c).
 *
 * free_area[k] lists the free blocks of 2^k pages.  Allocation takes the
 * smallest non-empty list at or above the order asked for -- one bit scan of
 * free_mask, not a walk -- and splits the block, pushing the unused halves
 * onto the lists below.  Freeing looks at the block's buddy, pfn ^ 2^k: if it
 * is the head of a free block of the same order, the two merge into their
 * parent (pfn & buddy) and the look repeats one order up.  Both are
 * O(MM_MAX_ORDER).
 *
 * Free-list nodes live in the free blocks themselves, with a pointer to the
 * region so that allocation never searches for it.  The one byte of page
 * metadata per page is described in internal.h.
 *
 * Growth, trimming and regions are arena.c's business; this file only moves
 * blocks between the free lists and their owners.
 */
#include "internal.h"

/* The pages of free block b presumed resident: see struct free_block. */
static __always_inline size_t fb_dirty(const struct free_block *b, uint8_t meta)
{
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	return b->dirty;
#else
	return meta_type(meta) == PT_CLEAN ? 0 : (size_t)1 << meta_order(meta);
#endif
}

static __always_inline void fb_set_dirty(struct mm_arena *a, struct free_block *b, size_t n)
{
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	b->dirty = n;
	a->nr_dirty += n;
#endif
}

/* b leaves the free lists: its resident pages no longer count as free. */
static __always_inline void fb_clear_dirty(struct mm_arena *a, struct free_block *b)
{
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	a->nr_dirty -= b->dirty;
#endif
}

/* buddyinfo's count of free blocks per order (CONFIG_MM_STATS). */
static __always_inline void count_free_order(struct mm_arena *a, unsigned int order, int delta)
{
#if IS_ENABLED(CONFIG_MM_STATS)
	a->nr_free_order[order] += (unsigned long)(long)delta;
#endif
}

static __hot_inline void add_free(struct mm_arena *a, struct mm_region *r,
				     uintptr_t pfn, unsigned int order,
				     unsigned int type, size_t dirty)
{
	struct free_block *b = pfn_to_addr(pfn);

	b->region = r;
	fb_set_dirty(a, b, dirty);
	hlist_add_head(&b->node, &a->free_area[order]);
	a->free_mask |= 1u << order;
	a->nr_free += (size_t)1 << order;
	if (type == PT_CLEAN)
		a->nr_clean += (size_t)1 << order;
	count_free_order(a, order, 1);
	*page_meta(r, pfn) = PAGE_META(type, order);
}

static __hot_inline void del_free(struct mm_arena *a, struct free_block *b,
				     unsigned int order, uint8_t meta)
{
	hlist_del(&b->node);
	fb_clear_dirty(a, b);
	if (!a->free_area[order].first)
		a->free_mask &= ~(1u << order);
	a->nr_free -= (size_t)1 << order;
	if (meta_type(meta) == PT_CLEAN)
		a->nr_clean -= (size_t)1 << order;
	count_free_order(a, order, -1);
}

/* The backend dropped b's pages but its first (trim.c): b is clean now. */
void __free_block_discarded(struct mm_arena *a, struct free_block *b, unsigned int order)
{
	uint8_t *m = page_meta(b->region, addr_to_pfn(b));

	*m = PAGE_META(PT_CLEAN, order);
	a->nr_clean += (size_t)1 << order;
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	a->nr_dirty -= b->dirty - 1;
	b->dirty = 1;			/* the page the node is in */
#endif
}

/* The pages of the free block at pfn presumed resident (trim.c). */
size_t __free_block_dirty(struct mm_region *r, uintptr_t pfn)
{
	return fb_dirty(pfn_to_addr(pfn), *page_meta(r, pfn));
}

/* Take a free block of exactly 'order' off its list (trim, exact allocs). */
void __del_free_block(struct mm_arena *a, struct mm_region *r, uintptr_t pfn)
{
	uint8_t *m = page_meta(r, pfn);

	del_free(a, pfn_to_addr(pfn), meta_order(*m), *m);
	*m = 0;
}

/*
 * The block rmqueue() last took, and how many of its pages were presumed
 * resident: __trim_to_exact() gives back the tail of that very block and
 * must not count it resident if it was not (nor clean if it was).
 */
static __always_inline void note_taken(struct mm_arena *a, uintptr_t pfn, size_t taken)
{
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	a->taken_pfn = pfn;
	a->taken = taken;
#endif
}

/* The resident pages of the tail [end, ...) of the block taken at head. */
static __always_inline size_t tail_dirty(struct mm_arena *a, uintptr_t head, uintptr_t end,
					 size_t tail)
{
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	if (a->taken_pfn == head)	/* else another rmqueue() came between */
		return a->taken > end - head ? a->taken - (end - head) : 0;
#endif
	return tail;
}

/* What a free block of 2^order pages, 'dirty' of them resident, is. */
static __always_inline unsigned int resident_type(size_t dirty, unsigned int order,
						  unsigned int type)
{
	if (IS_ENABLED(CONFIG_MM_PREFER_RESIDENT))
		return dirty * 32 <= (size_t)1 << order ? PT_CLEAN : PT_FREE;
	return type;
}

/*
 * Split: the upper half of each step goes back one order down.  Of the
 * 'dirty' resident pages left, the halves take theirs from the low end up
 * (struct free_block); a half with (almost) none is clean.  Without
 * CONFIG_MM_PREFER_RESIDENT every half is as clean as the block was.
 */
static __noinline void expand(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
			      unsigned int low, unsigned int high, unsigned int type,
			      size_t dirty)
{
	for (unsigned int o = low; o < high; o++) {
		size_t n = (size_t)1 << o, d = min_t(size_t, dirty, n);

		add_free(a, r, pfn + n, o, resident_type(d, o, type), d);
		dirty -= d;
	}
}

/* The type of the free block at the head of free_area[o] (lock held). */
static __always_inline unsigned int head_type(struct mm_arena *a, unsigned int o)
{
	struct free_block *b = container_of(a->free_area[o].first, struct free_block, node);

	return meta_type(*page_meta(b->region, addr_to_pfn(b)));
}

/*
 * The order to take a block of at least 'order' from: the smallest with a
 * free block, unless that block is clean -- never touched, or discarded
 * -- and a larger order's first block is dirty: pages already resident
 * are reused before the footprint grows (a dirty block split leaves dirty
 * halves for the next requests; a clean one split makes its pages
 * resident now and leaves the dirty ones idle).  The first block of a
 * list is the one freed last, the likeliest to be dirty.  Lock held.
 */
static __always_inline unsigned int pick_order(struct mm_arena *a, uint32_t mask)
{
	unsigned int o = (unsigned int)__builtin_ctz(mask);

	if (IS_ENABLED(CONFIG_MM_PREFER_RESIDENT) && unlikely(head_type(a, o) == PT_CLEAN)) {
		for (uint32_t m = mask & (mask - 1); m; m &= m - 1) {
			unsigned int d = (unsigned int)__builtin_ctz(m);

			if (head_type(a, d) != PT_CLEAN)
				return d;
		}
	}
	return o;
}

/* The most pages ever allocated at once (CONFIG_MM_STATS). */
static __always_inline void note_peak(struct mm_arena *a)
{
#if IS_ENABLED(CONFIG_MM_STATS)
	if (unlikely(a->nr_pages - a->nr_free > a->diag.peak_allocated >> MM_PAGE_SHIFT))
		a->diag.peak_allocated = (a->nr_pages - a->nr_free) << MM_PAGE_SHIFT;
#endif
}

/*
 * Take a block of 'order' off the free lists, lock held; it becomes 'type'
 * (PAGES, SLAB, LARGE).  NULL when no list can serve the order: growing is
 * the caller's decision.  The common case -- a block of the right order on
 * its list -- is a bit scan, an unlink and a metadata byte.
 */
static __hot_inline void *rmqueue(struct mm_arena *a, unsigned int order, unsigned int type)
{
	uint32_t mask = a->free_mask & (~0u << order);
	struct free_block *b;
	struct mm_region *r;
	unsigned int o, rest;
	size_t dirty, taken;
	uintptr_t pfn;
	uint8_t *m;

	if (unlikely(!mask))
		return NULL;
	o = pick_order(a, mask);
	b = container_of(a->free_area[o].first, struct free_block, node);
	r = b->region;
	pfn = addr_to_pfn(b);
	m = page_meta(r, pfn);
	VM_BUG_ON(!meta_is_free(*m) || meta_order(*m) != o || (pfn & (((uintptr_t)1 << o) - 1)));
	dirty = fb_dirty(b, *m);
	del_free(a, b, o, *m);
	rest = meta_type(*m) == PT_CLEAN ? PT_CLEAN : PT_FREE;
	/* The block taken holds the resident pages first (struct free_block). */
	taken = min_t(size_t, dirty, (size_t)1 << order);
	if (unlikely(o > order))
		expand(a, r, pfn, order, o, rest, dirty - taken);
	*m = PAGE_META(type, order);
	note_peak(a);
	note_taken(a, pfn, taken);
	if (taken < (size_t)1 << order)
		__arena_check_footprint(a);	/* untouched pages: the footprint grows */
	return b;
}

void *__alloc_pages_locked(struct mm_arena *a, unsigned int order, unsigned int type)
{
	return rmqueue(a, order, type);
}

/*
 * Free a block, lock held; pfn is a block head of 'order' inside r, 'dirty'
 * of its pages presumed resident (all of a block that was allocated, none
 * of a new region's).  Merge with the buddy while it is a free block of
 * the same order.  The resident counts of merged blocks add; with
 * CONFIG_MM_PREFER_RESIDENT the result is PT_CLEAN while at most 1/32 of
 * it is resident, so that a page freed beside an untouched 4 MiB block
 * does not make the allocator prefer that block as resident (an eighth
 * hid enough to raise the large workload's peak by 0.4 MiB).  Without
 * the option, what merges with a block of other contents is PT_FREE.
 */
static __hot_inline void free_dirty(struct mm_arena *a, struct mm_region *r,
				       uintptr_t pfn, unsigned int order, size_t dirty)
{
	unsigned int type;

	VM_BUG_ON(!region_contains(r, pfn) || (pfn & (((uintptr_t)1 << order) - 1)) ||
		  pfn + ((uintptr_t)1 << order) > mm_region_end(r));
	*page_meta(r, pfn) = 0;
	while (order < MM_MAX_ORDER) {
		uintptr_t buddy = pfn ^ ((uintptr_t)1 << order);
		uint8_t bm;

		if (!region_contains(r, buddy))
			break;
		bm = *page_meta(r, buddy);
		if (!meta_is_free(bm) || meta_order(bm) != order)
			break;
		dirty += fb_dirty(pfn_to_addr(buddy), bm);
		del_free(a, pfn_to_addr(buddy), order, bm);
		*page_meta(r, buddy) = 0;
		pfn &= ~((uintptr_t)1 << order);
		order++;
	}
	type = resident_type(dirty, order, dirty ? PT_FREE : PT_CLEAN);
	add_free(a, r, pfn, order, type, dirty);
}

static __hot_inline void free_one(struct mm_arena *a, struct mm_region *r,
				     uintptr_t pfn, unsigned int order)
{
	free_dirty(a, r, pfn, order, (size_t)1 << order);
}

void __free_pages_locked(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
			 unsigned int order)
{
	free_one(a, r, pfn, order);
}

/*
 * The slow path: the page cache, growth, reclaim, the OOM hook.  Called
 * with the lock held and releases it, so that the fast paths reach it by a
 * tail call; the hook runs unlocked, since it may free memory itself.
 */
static __noinline void *alloc_pages_slow(struct mm_arena *a, unsigned int order,
					 unsigned int type, mm_flags_t flags)
{
	void *p;

	/* Single pages parked in the cache can make up a larger block. */
	if (__pcp_drain(a, UINT32_MAX) && (p = __alloc_pages_locked(a, order, type)) != NULL)
		goto out;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (__arena_grow(a, order) == 0 &&
		    (p = __alloc_pages_locked(a, order, type)) != NULL)
			goto out;
		if (a->reclaim && a->reclaim(a) &&
		    (p = __alloc_pages_locked(a, order, type)) != NULL)
			goto out;
		if (!a->oom_hook || attempt || oom_quiet())
			break;
		arena_unlock(a, flags);
		int retry = a->oom_hook(a, (size_t)MM_PAGE_SIZE << order, a->oom_ctx);
		flags = arena_lock(a);
		if ((p = __alloc_pages_locked(a, order, type)) != NULL)
			goto out;
		if (!retry)
			break;
	}
	if (!oom_quiet())
		a->diag.oom_count++;
	p = NULL;
out:
	arena_unlock(a, flags);
	return p;
}

static __hot_inline void *alloc_pages_type(struct mm_arena *a, unsigned int order,
					       unsigned int type)
{
	mm_flags_t flags = arena_lock(a);
	void *p = rmqueue(a, order, type);

	if (unlikely(!p))
		return alloc_pages_slow(a, order, type, flags);
	arena_unlock(a, flags);
	return p;
}

/* For the layers above: silent about impossible orders, they check sizes. */
void *__alloc_pages_type(struct mm_arena *a, unsigned int order, unsigned int type)
{
	if (unlikely(order > MM_MAX_ORDER)) {
		if (!oom_quiet()) {
			/* The count is the lock's, as every other oom_count++. */
			mm_flags_t flags = arena_lock(a);

			a->diag.oom_count++;
			arena_unlock(a, flags);
		}
		return NULL;
	}
	return alloc_pages_type(a, order, type);
}

/* A caller's mistake, not a shortage: say so (Linux WARNs). */
static __cold void *bad_order(struct mm_arena *a, unsigned int order)
{
	mm_report_bug(a, "alloc_pages", "order %u is above MM_MAX_ORDER (%u)",
		      order, (unsigned int)MM_MAX_ORDER);
	return NULL;
}

#if CONFIG_MM_PCP_PAGES > 0
/*
 * The order-0 page cache (Linux's per-CPU page lists, per arena): a stack
 * of freed single pages, marked PT_PCP so that freeing one twice is still
 * caught.  They stay counted in nr_free.
 */
int __pcp_drain(struct mm_arena *a, unsigned int n)
{
	int any = a->pcp_count != 0;

	while (n-- && a->pcp_count) {
		void *p = a->pcp[--a->pcp_count];
		uintptr_t pfn = addr_to_pfn(p);

		a->nr_free--;			/* free_one() counts it again */
		free_one(a, region_of(a, pfn), pfn, 0);
	}
	return any;
}

void mm_arena_set_pcp(struct mm_arena *a, unsigned int n)
{
	mm_flags_t flags = arena_lock(a);

	a->pcp_max = min_t(unsigned int, n, CONFIG_MM_PCP_PAGES);
	if (a->pcp_count > a->pcp_max)
		__pcp_drain(a, a->pcp_count - a->pcp_max);
	arena_unlock(a, flags);
}

static __noinline void *alloc_pages_nocache(struct mm_arena *a, unsigned int order);

static __noinline void *alloc_page_pcp(struct mm_arena *a)
{
	mm_flags_t flags = arena_lock(a);
	unsigned int n = a->pcp_count;
	void *p;

	if (unlikely(!n)) {
		arena_unlock(a, flags);
		return alloc_pages_nocache(a, 0);
	}
	a->pcp_count = --n;
	p = a->pcp[n];
	*a->pcp_meta[n] = PAGE_META(PT_PAGES, 0);
	a->nr_free--;
	arena_unlock(a, flags);
	return p;
}

/* No exact_piece_follows() test here: order 0, see there. */
static __noinline void free_page_pcp(struct mm_arena *a, void *addr)
{
	uintptr_t pfn = addr_to_pfn(addr);
	mm_flags_t flags = arena_lock(a);
	struct mm_region *r = region_of(a, pfn);
	uint8_t *m;

	if (unlikely(!r || ((uintptr_t)addr & (MM_PAGE_SIZE - 1)) ||
		     *(m = page_meta(r, pfn)) != PAGE_META(PT_PAGES, 0))) {
		__check_block(a, addr, 0, PT_PAGES, "free_pages");
	} else {
		if (unlikely(a->pcp_count >= a->pcp_max))
			__pcp_drain(a, a->pcp_max / 2 + 1);
		*m = PAGE_META(PT_PCP, 0);
		a->pcp_meta[a->pcp_count] = m;
		a->pcp[a->pcp_count++] = addr;
		a->nr_free++;
	}
	arena_unlock(a, flags);
}
#else
void mm_arena_set_pcp(struct mm_arena *a, unsigned int n)
{
}
#endif

static __noinline void *alloc_pages_nocache(struct mm_arena *a, unsigned int order)
{
	return alloc_pages_type(a, order, PT_PAGES);
}


/* A dispatcher: every path is a tail call, so none pays another's frame. */
void *alloc_pages(struct mm_arena *a, unsigned int order)
{
	if (unlikely(order > MM_MAX_ORDER))
		return bad_order(a, order);
#if CONFIG_MM_PCP_PAGES > 0
	if (order == 0 && a->pcp_max)
		return alloc_page_pcp(a);
#endif
	return alloc_pages_nocache(a, order);
}

static const char *const type_names[] = {
	[PT_TAIL] = "not the head of a block",
	[PT_FREE] = "already free",
	[PT_PAGES] = "a page block",
	[PT_SLAB] = "a slab (use kmem_cache_free or kfree)",
	[PT_LARGE] = "a kmalloc block (use kfree)",
	[PT_CLEAN] = "already free",
	[PT_CONT] = "inside an exact block (free it from its start)",
	[PT_PCP] = "already free",
};

/*
 * Is the block of 'order' at pfn the first piece of an exact block
 * (alloc_pages_exact()), whose later pieces follow it as PT_CONT?  Its head
 * has the type and order of a page block of that order: freed as one, the
 * later pieces were lost for good, marked as the pieces of a block that no
 * longer exists.  Never of order 0: alloc_pages_exact() cuts its pieces
 * from an aligned block, largest first, so a first piece of one page is
 * the whole block (and the common free of one page pays one test).
 */
static __always_inline int exact_piece_follows(struct mm_region *r, uintptr_t pfn,
					       unsigned int order)
{
	uintptr_t i = pfn - r->start_pfn + ((uintptr_t)1 << order);	/* region_contains() */

	return order && i < r->nr_pages && meta_type(r->meta[i * MM_META_BYTES]) == PT_CONT;
}

/*
 * Check that addr is the head of a block of 'type' and 'order' in arena a.
 * Returns its region, or NULL after reporting what it is instead.
 */
__cold struct mm_region *__check_block(struct mm_arena *a, const void *addr,
				unsigned int order, unsigned int type,
				const char *caller)
{
	uintptr_t pfn = addr_to_pfn(addr);
	struct mm_region *r;
	uint8_t m;

	if (unlikely((uintptr_t)addr & (MM_PAGE_SIZE - 1))) {
		mm_report_bug(a, caller, "%p is not page aligned", addr);
		return NULL;
	}
	r = region_of(a, pfn);
	if (unlikely(!r)) {
		mm_report_bug(a, caller, "%p does not belong to arena %s", addr, a->name);
		return NULL;
	}
	m = *page_meta(r, pfn);
	if (unlikely(meta_type(m) != type)) {
		mm_report_bug(a, caller, "%p is %s", addr,
			      meta_type(m) < ARRAY_SIZE(type_names) ?
			      type_names[meta_type(m)] : "corrupt metadata");
		return NULL;
	}
	if (unlikely(meta_order(m) != order)) {
		mm_report_bug(a, caller, "%p was allocated with order %u, freed with order %u",
			      addr, meta_order(m), order);
		return NULL;
	}
	if (unlikely(exact_piece_follows(r, pfn, order))) {
		mm_report_bug(a, caller, "%p is an exact block (use free_pages_exact)", addr);
		return NULL;
	}
	return r;
}

/*
 * Free a block that must be of 'type' and 'order'.  The check is one
 * comparison of the metadata byte in the common case; __check_block() says
 * what is wrong otherwise.
 */
static __hot_inline void free_pages_type(struct mm_arena *a, void *addr, unsigned int order,
					    unsigned int type, const char *caller)
{
	uintptr_t pfn = addr_to_pfn(addr);
	struct mm_region *r;
	mm_flags_t flags;

	if (unlikely(!addr))
		return;
	flags = arena_lock(a);
	r = region_of(a, pfn);
	if (likely(r && order <= MM_MAX_ORDER && !((uintptr_t)addr & (MM_PAGE_SIZE - 1)) &&
		   *page_meta(r, pfn) == PAGE_META(type, order) &&
		   !exact_piece_follows(r, pfn, order))) {
		free_one(a, r, pfn, order);
		__arena_maybe_trim(a);
	} else {
		__check_block(a, addr, order, type, caller);
	}
	arena_unlock(a, flags);
}

static __noinline void free_pages_nocache(struct mm_arena *a, void *addr, unsigned int order)
{
	free_pages_type(a, addr, order, PT_PAGES, "free_pages");
}

void free_pages(struct mm_arena *a, void *addr, unsigned int order)
{
#if CONFIG_MM_PCP_PAGES > 0
	if (order == 0 && a->pcp_max && likely(addr)) {
		free_page_pcp(a, addr);
		return;
	}
#endif
	free_pages_nocache(a, addr, order);
}

/* Largest block order that starts at pfn and ends at or before end. */
static __always_inline unsigned int fit_order(uintptr_t pfn, uintptr_t end)
{
	unsigned int o = pfn ? (unsigned int)__builtin_ctzl(pfn) : MM_MAX_ORDER;

	if (o > MM_MAX_ORDER)
		o = MM_MAX_ORDER;
	while (pfn + ((uintptr_t)1 << o) > end)
		o--;
	return o;
}

/*
 * Hand the pages [pfn, end) of region r to the free lists as the largest
 * aligned blocks that fit, 'dirty' of them presumed resident, from the
 * low end (struct free_block).  Used for new regions and for the tail of
 * an exact allocation; at most 2 * MM_MAX_ORDER blocks per call for a
 * range inside one maximal block.
 */
void __free_range_dirty(struct mm_arena *a, struct mm_region *r,
			uintptr_t pfn, uintptr_t end, size_t dirty)
{
	while (pfn < end) {
		unsigned int o = fit_order(pfn, end);
		size_t d = min_t(size_t, dirty, (size_t)1 << o);

		*page_meta(r, pfn) = PAGE_META(PT_PAGES, o);
		free_dirty(a, r, pfn, o, d);
		dirty -= d;
		pfn += (uintptr_t)1 << o;
	}
}

void __free_range_type(struct mm_arena *a, struct mm_region *r,
		       uintptr_t pfn, uintptr_t end, unsigned int type)
{
	__free_range_dirty(a, r, pfn, end, type == PT_CLEAN ? 0 : end - pfn);
}

void __free_range_locked(struct mm_arena *a, struct mm_region *r,
			 uintptr_t pfn, uintptr_t end)
{
	__free_range_type(a, r, pfn, end, PT_FREE);
}

/*
 * Exact blocks from runs of free pages.
 *
 * An exact block need not be one aligned buddy block: it is pieces, and
 * any n contiguous pages split into aligned pieces (fit_order()).  So n
 * pages can come from a run of smaller free blocks that lie side by side
 * -- the leftovers of earlier exact blocks, which could not merge because
 * they are not buddies -- instead of from a free block of 2^order pages
 * that must first be found or grown.  Taking the run keeps the large free
 * blocks whole for the requests that need them, and reuses pages that
 * were already touched: without it, a heap of exact blocks of random
 * sizes fragments into runs no aligned request fits, and grows into fresh
 * memory while a third of what it holds is free.
 *
 * Best fit among a few candidates: the free blocks of order - 2 (the
 * smallest that a run of more than 2^(order-1) pages must contain whole),
 * order - 1 and order, each grown into its run of free neighbours; the
 * run whose first n pages hold the fewest untouched ones wins (with
 * CONFIG_MM_PREFER_RESIDENT: a run that reuses resident pages beats a
 * snugger one that would make new pages resident, and the footprint cap
 * discards fewer), then the shortest, then the lower address.
 * O(RUN_CANDIDATES * MM_MAX_ORDER); no list is walked further.
 * CONFIG_MM_EXACT_RUNS (hosts by default): about 600 bytes of code.
 */
#define RUN_CANDIDATES	16

/*
 * Where an exact block of kmalloc's (head 'first' == PT_LARGE) that
 * should end at page 'end' ends, given free pages up to 'avail': never
 * before an odd page, so that what goes back holds no free page on its
 * own.  A single page split off that way can only serve the smallest
 * requests, and holds a free-list node, which makes it resident even if
 * nothing ever uses it: blocks of odd page counts left one such crumb
 * each (16 MiB of them at the peaks of the rss workload).  Inside the
 * block the page stays untouched unless the caller grows into it (ksize()
 * counts it), and goes back with the block.  alloc_pages_exact()'s blocks
 * stay exact: free_pages_exact() is given their size.
 */
static __always_inline uintptr_t exact_end(uintptr_t end, uintptr_t avail, unsigned int first)
{
	if (first == PT_LARGE && (end & 1) && end < avail)
		return end + 1;
	return end;
}

/* Mark [pfn, end) as the pieces of one exact block (see __trim_to_exact). */
static void mark_pieces(struct mm_region *r, uintptr_t pfn, uintptr_t end,
			unsigned int first, unsigned int rest)
{
	for (uintptr_t head = pfn; pfn < end; ) {
		unsigned int o = fit_order(pfn, end);

		*page_meta(r, pfn) = PAGE_META(pfn == head ? first : rest, o);
		pfn += (uintptr_t)1 << o;
	}
}

/*
 * Cut an allocated block of 'order' at p down to its first n pages, lock
 * held: [p, p + n pages) becomes blocks of the orders of n's set bits,
 * largest first (each aligned because the ones before it were larger), the
 * first of type 'first' and the others of type 'rest'; the remainder goes
 * back to the free lists.
 */
void __trim_to_exact(struct mm_arena *a, void *p, size_t n, unsigned int order,
		     unsigned int first, unsigned int rest)
{
	uintptr_t head = addr_to_pfn(p);
	uintptr_t end = exact_end(head + n, head + ((uintptr_t)1 << order), first);
	struct mm_region *r = region_of(a, head);

	mark_pieces(r, head, end, first, rest);
	__free_range_dirty(a, r, end, head + ((uintptr_t)1 << order),
			   tail_dirty(a, head, end, head + ((uintptr_t)1 << order) - end));
}

/*
 * Resize kmalloc's exact block of n pages at head to m pages in place,
 * lock held (krealloc): 0, or -1 when it grows and the pages after it are
 * not free blocks (the caller moves it).  The block is re-cut into pieces
 * as if it had been allocated that size.  A shrink gives its tail back,
 * as glibc splits a chunk; growth takes the free blocks after it and gives
 * back what the last one holds beyond the new end, as glibc grows into a
 * free neighbour: a vector that doubles copies nothing while free pages
 * follow it, and takes no new pages while its old ones wait.
 */
int __resize_exact(struct mm_arena *a, struct mm_region *r, uintptr_t head, size_t n, size_t m)
{
	uintptr_t end = head + n, avail, pfn, next, last = end, new_end;
	size_t dirty = 0, taken = 0;

	/* Growing: up to head + m, free blocks only; avail is where the last ends. */
	for (avail = end; avail < head + m; avail = next) {
		if (avail >= mm_region_end(r) || !meta_is_free(*page_meta(r, avail)))
			return -1;
		next = avail + ((uintptr_t)1 << meta_order(*page_meta(r, avail)));
	}
	new_end = exact_end(head + m, avail, PT_LARGE);
	if (new_end == end)
		return 0;
	/* [head, new_end) is cut into pieces anew: the old heads go. */
	for (pfn = head; pfn < end; pfn = next) {
		next = pfn + ((uintptr_t)1 << meta_order(*page_meta(r, pfn)));
		*page_meta(r, pfn) = 0;
	}
	for (pfn = end; pfn < avail; pfn = next) {
		uint8_t mt = *page_meta(r, pfn);

		last = pfn;
		next = pfn + ((uintptr_t)1 << meta_order(mt));
		dirty = fb_dirty(pfn_to_addr(pfn), mt);
		__del_free_block(a, r, pfn);
		taken += min_t(size_t, dirty, min_t(uintptr_t, next, new_end) - pfn);
	}
	mark_pieces(r, head, new_end, PT_LARGE, PT_CONT);
	if (new_end < end) {
		__free_range_locked(a, r, new_end, end);	/* a tail that was in use */
		return 0;
	}
	/* What overshoots is the last block's end: resident beyond its low part? */
	__free_range_dirty(a, r, new_end, avail, dirty > new_end - last ? dirty - (new_end - last) : 0);
	note_peak(a);
	if (taken < new_end - end)
		__arena_check_footprint(a);	/* untouched pages: the footprint grows */
	return 0;
}

/*
 * The run of free blocks around the free block [pfn, pfn + 2^o) of r: its
 * first page, and its length, stopping once it is 'enough' long (longer
 * runs are no better fit).
 */
static size_t free_run(struct mm_region *r, uintptr_t pfn, unsigned int o,
		       size_t enough, uintptr_t *start)
{
	uintptr_t s = pfn, e = pfn + ((uintptr_t)1 << o);

	while (s > r->start_pfn && e - s < enough) {
		uintptr_t h = block_head(r, s - 1);

		if (!h || !meta_is_free(*page_meta(r, h)))
			break;
		s = h;
	}
	while (e < mm_region_end(r) && e - s < enough) {
		uint8_t m = *page_meta(r, e);

		if (!meta_is_free(m))
			break;
		e += (uintptr_t)1 << meta_order(m);
	}
	*start = s;
	return e - s;
}

/*
 * The untouched pages that n pages at s (free blocks) would make resident:
 * those of each block beyond its resident ones (CONFIG_MM_PREFER_RESIDENT;
 * presumed at its low end, and at least its first, which holds the
 * free-list node).  0 without the option: every free page counts as
 * resident.
 */
static size_t window_clean(struct mm_region *r, uintptr_t s, size_t n)
{
	size_t clean = 0;

	if (!IS_ENABLED(CONFIG_MM_PREFER_RESIDENT))
		return 0;
	for (uintptr_t pfn = s, end = s + n; pfn < end; ) {
		uint8_t m = *page_meta(r, pfn);
		uintptr_t next = pfn + ((uintptr_t)1 << meta_order(m));
		size_t part = min_t(uintptr_t, next, end) - pfn;

		/* Its resident pages are presumed at its low end (struct free_block). */
		clean += part - min_t(size_t, part, max_t(size_t, fb_dirty(pfn_to_addr(pfn), m), 1));
		pfn = next;
	}
	return clean;
}

/*
 * n pages (2 <= n <= 2^MM_MAX_ORDER) from the best-fitting run of free
 * blocks, as an exact block of pieces 'first', 'rest', ...; lock held.
 * NULL if no candidate's run is long enough.
 */
static void *alloc_run(struct mm_arena *a, size_t n, unsigned int order,
		       unsigned int first, unsigned int rest)
{
	struct mm_region *best_r = NULL;
	uintptr_t best = 0, pfn, end, last = 0;
	size_t best_len = SIZE_MAX, best_clean = SIZE_MAX, dirty = 0, taken = 0;
	unsigned int budget = RUN_CANDIDATES;

	for (unsigned int o = order >= 2 ? order - 2 : 0; o <= order && budget; o++) {
		for (struct hlist_node *h = a->free_area[o].first; h && budget; h = h->next) {
			struct free_block *b = container_of(h, struct free_block, node);
			size_t len, clean_pages;
			uintptr_t s;

			budget--;
			len = free_run(b->region, addr_to_pfn(b), o, best_len, &s);
			if (len < n)
				continue;
			/* Fewest untouched pages (CONFIG_MM_PREFER_RESIDENT), then the fit. */
			clean_pages = window_clean(b->region, s, n);
			if (!best_r || clean_pages < best_clean ||
			    (clean_pages == best_clean &&
			     (len < best_len || (len == best_len && s < best)))) {
				best_r = b->region;
				best = s;
				best_len = len;
				best_clean = clean_pages;
				if (len == n && !clean_pages)
					budget = 0;	/* a perfect fit */
			}
		}
	}
	if (!best_r)
		return NULL;

	/* Unlink the blocks the n pages fall in; what overshoots goes back. */
	for (pfn = best, end = best + n; pfn < end; ) {
		uint8_t m = *page_meta(best_r, pfn);

		last = pfn;
		dirty = fb_dirty(pfn_to_addr(pfn), m);
		__del_free_block(a, best_r, pfn);
		pfn += (uintptr_t)1 << meta_order(m);
		taken += min_t(size_t, dirty, min_t(uintptr_t, pfn, end) - last);
	}
	end = exact_end(end, pfn, first);
	mark_pieces(best_r, best, end, first, rest);
	/* What overshoots is the last block's end: resident beyond its low part? */
	dirty = dirty > end - last ? dirty - (end - last) : 0;
	__free_range_dirty(a, best_r, end, pfn, dirty);
	note_peak(a);
	if (taken < end - best)
		__arena_check_footprint(a);	/* untouched pages: the footprint grows */
	return pfn_to_addr(best);
}

/*
 * An exact block of n pages, its pieces typed 'first', 'rest', ...,
 * aligned to 2^align_order pages: where a page's alignment is enough, the
 * best-fitting run of free blocks if one fits, else a buddy block cut down.
 * kmalloc's large blocks; alloc_pages_exact() keeps Linux's promise of a
 * block aligned to its order.
 */
void *__alloc_exact(struct mm_arena *a, size_t n, unsigned int align_order,
		    unsigned int first, unsigned int rest)
{
	unsigned int order = max_t(unsigned int, fls((unsigned int)(n - 1)), align_order);
	mm_flags_t flags;
	void *p;

	if (IS_ENABLED(CONFIG_MM_EXACT_RUNS) && n > 1 && !align_order) {
		flags = arena_lock(a);
		p = alloc_run(a, n, order, first, rest);
		arena_unlock(a, flags);
		if (p)
			return p;
	}
	p = __alloc_pages_type(a, order, first);
	if (p && n < ((size_t)1 << order)) {
		flags = arena_lock(a);
		__trim_to_exact(a, p, n, order, first, rest);
		arena_unlock(a, flags);
	}
	return p;
}

/*
 * alloc_pages_exact() of n pages, from the free lists or by growing the
 * arena, but without the slow path's reclaim and OOM hook and without
 * counting a failure: for a thread's cache (percpu.c), which a free() may
 * set up.  A free is no request that can fail, and an OOM hook called from
 * one may well free memory itself.  free_pages_exact() gives it back.
 */
void *__alloc_exact_nowait(struct mm_arena *a, size_t n)
{
	unsigned int order = fls((unsigned int)(n - 1));
	mm_flags_t flags;
	void *p = NULL;

	if (order > MM_MAX_ORDER)
		return NULL;
	flags = arena_lock(a);
	if (IS_ENABLED(CONFIG_MM_EXACT_RUNS) && n > 1)
		p = alloc_run(a, n, order, PT_PAGES, PT_CONT);
	if (!p) {
		p = rmqueue(a, order, PT_PAGES);
		if (!p && __pcp_drain(a, UINT32_MAX))
			p = rmqueue(a, order, PT_PAGES);
		if (!p && __arena_grow(a, order) == 0)
			p = rmqueue(a, order, PT_PAGES);
		if (p && n < ((size_t)1 << order))
			__trim_to_exact(a, p, n, order, PT_PAGES, PT_CONT);
	}
	arena_unlock(a, flags);
	return p;
}

void *alloc_pages_exact(struct mm_arena *a, size_t size)
{
	size_t n = DIV_ROUND_UP(size, MM_PAGE_SIZE);
	unsigned int order = get_order(size);
	mm_flags_t flags;
	void *p;

	if (!size || order > MM_MAX_ORDER || size > MM_MAX_BLOCK)
		return NULL;
	p = alloc_pages(a, order);
	if (!p)
		return NULL;

	flags = arena_lock(a);
	__trim_to_exact(a, p, n, order, PT_PAGES, PT_CONT);
	arena_unlock(a, flags);
	return p;
}

/*
 * Is [pfn, end) of r exactly one block of alloc_pages_exact()'s?  Its
 * pieces are the head (PT_PAGES) and the blocks that follow it (PT_CONT),
 * of the orders the size makes, and the block after the last is no piece
 * of it.  A size too large runs into the next block's head (another
 * allocation's, or a free one), a size too small stops before a PT_CONT;
 * with PT_PAGES pieces a size that ended at one of them freed that prefix,
 * and one that took in a neighbour of the right order freed it too.
 */
static int exact_block_is(struct mm_region *r, uintptr_t pfn, uintptr_t end)
{
	if (end <= pfn || end > mm_region_end(r))	/* wrapped, or past its region */
		return 0;
	for (uintptr_t p = pfn; p < end; ) {
		unsigned int o = fit_order(p, end);

		if (*page_meta(r, p) != PAGE_META(p == pfn ? PT_PAGES : PT_CONT, o))
			return 0;
		p += (uintptr_t)1 << o;
	}
	return end == mm_region_end(r) || meta_type(*page_meta(r, end)) != PT_CONT;
}

void free_pages_exact(struct mm_arena *a, void *addr, size_t size)
{
	uintptr_t pfn, end;
	struct mm_region *r;
	mm_flags_t flags;

	if (!addr)
		return;
	pfn = addr_to_pfn(addr);
	end = pfn + DIV_ROUND_UP(size, MM_PAGE_SIZE);
	if (unlikely(end == pfn)) {
		/* Size 0 (or one that wrapped): no allocation has that size. */
		mm_report_bug(a, "free_pages_exact", "%p freed with size %zu", addr, size);
		return;
	}
	flags = arena_lock(a);
	r = region_of(a, pfn);
	if (!r || ((uintptr_t)addr & (MM_PAGE_SIZE - 1)) || meta_type(*page_meta(r, pfn)) != PT_PAGES) {
		__check_block(a, addr, 0, PT_PAGES, "free_pages_exact");	/* says what it is */
		goto out;
	}
	/* Every piece checked before any is freed, so a wrong size frees nothing. */
	if (!exact_block_is(r, pfn, end)) {
		mm_report_bug(a, "free_pages_exact", "%p freed with size %zu, not the size it was allocated with",
			      addr, size);
		goto out;
	}
	while (pfn < end) {
		unsigned int o = fit_order(pfn, end);

		__free_pages_locked(a, r, pfn, o);
		pfn += (uintptr_t)1 << o;
	}
	__arena_maybe_trim(a);
out:
	arena_unlock(a, flags);
}

int mm_page_order(struct mm_arena *a, const void *addr)
{
	uintptr_t pfn = addr_to_pfn(addr);
	struct mm_region *r;
	mm_flags_t flags;
	int order = -1;

	flags = arena_lock(a);
	r = region_of(a, pfn);
	if (r && !((uintptr_t)addr & (MM_PAGE_SIZE - 1))) {
		uint8_t m = *page_meta(r, pfn);

		if (m && !meta_is_free(m) && meta_type(m) != PT_PCP)
			order = (int)meta_order(m);
	}
	arena_unlock(a, flags);
	return order;
}

size_t mm_arena_nr_free_order(struct mm_arena *a, unsigned int order)
{
	size_t n = 0;
	mm_flags_t flags;

	if (order > MM_MAX_ORDER)
		return 0;
	/*
	 * Under the lock with the count too: mallinfo2() and buddyinfo ask
	 * while other threads allocate (ThreadSanitizer saw the race).
	 */
	flags = arena_lock(a);
#if IS_ENABLED(CONFIG_MM_STATS)
	n = a->nr_free_order[order];
#else
	for (struct hlist_node *h = a->free_area[order].first; h; h = h->next)
		n++;
#endif
	arena_unlock(a, flags);
	return n;
}

size_t mm_arena_free_pages(struct mm_arena *a)
{
	return a->nr_free;
}

#if IS_ENABLED(CONFIG_MM_REPORTS)
void mm_buddyinfo(struct mm_arena *a)
{
	mm_printf("Node 0, zone %8s", a->name);
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		mm_printf(" %6zu", mm_arena_nr_free_order(a, o));
	mm_printf("\n");
}

void mm_page_map(struct mm_arena *a)
{
	mm_flags_t flags = arena_lock(a);

	for (struct mm_region *r = a->regions; r; r = r->next) {
		uintptr_t first = addr_to_pfn(r);
		unsigned int col = 0;

		mm_printf("region %p-%p: %zu pages, %zu of metadata\n",
			  (void *)r, pfn_to_addr(mm_region_end(r)),
			  (size_t)(mm_region_end(r) - first), (size_t)(r->start_pfn - first));
		for (uintptr_t pfn = first; pfn < mm_region_end(r); ) {
			static const char head_char[] = { '?', '.', 'P', 'S', 'K', '.', 'k', ',' };
			uint8_t m = pfn < r->start_pfn ? 0 : *page_meta(r, pfn);
			size_t n = pfn < r->start_pfn ? 1 : (size_t)1 << meta_order(m);
			char c = pfn < r->start_pfn ? 'M' : head_char[meta_type(m)];
			char tail = meta_is_free(m) ? '.' : '-';

			for (size_t i = 0; i < n; i++, pfn++) {
				if (col == 0)
					mm_printf("  %p ", pfn_to_addr(pfn));
				mm_printf("%c", i ? tail : c);
				if (++col == 64) {
					mm_printf("\n");
					col = 0;
				}
			}
		}
		if (col)
			mm_printf("\n");
	}
	arena_unlock(a, flags);
}
#endif
