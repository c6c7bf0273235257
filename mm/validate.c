// SPDX-License-Identifier: MIT
/*
 * The heap walk (CONFIG_MM_VALIDATE): every invariant of an arena checked
 * against what is really there.  O(pages); for tests, watchdogs and
 * debugging, never called by the allocator itself.
 */
#include "internal.h"
#include "heap.h"
#if IS_ENABLED(CONFIG_MM_PAGE_CLASS)

/* Is the block at pfn a heap span?  Its head page says so, its others must agree. */
static int is_span(struct mm_region *r, uintptr_t pfn, uint8_t m)
{
	return meta_type(m) == PT_LARGE && page_in_heap(r, pfn);
}

/*
 * What page i of the block at pfn must carry in its class byte: a kmalloc
 * slab's page where an object never handed out starts carries
 * KMALLOC_FRESH_CLASS (slab.c, slab_move_fresh()).
 */
static unsigned int block_class(struct mm_region *r, uintptr_t pfn, uint8_t m, uintptr_t i)
{
	const struct slab *s = pfn_to_addr(pfn);
	const struct kmem_cache *c;
	unsigned int fresh;

	if (is_span(r, pfn, m))
		return KMALLOC_HEAP_CLASS;
	if (meta_type(m) != PT_SLAB)
		return 0;
	c = s->cache;
	fresh = slab_fresh(c, s);
	if (c->kmalloc_idx && fresh < c->objs && i >= slab_obj_page(c, fresh) &&
	    i <= slab_obj_page(c, c->objs - 1))
		return KMALLOC_FRESH_CLASS;
	return c->kmalloc_idx;
}
#else
static int is_span(struct mm_region *r, uintptr_t pfn, uint8_t m)
{
	return 0;
}

static unsigned int block_class(struct mm_region *r, uintptr_t pfn, uint8_t m, uintptr_t i)
{
	return 0;
}
#endif

/*
 * Check every invariant: blocks tile each region exactly, heads are aligned,
 * interior pages are 0, every free block is on the list of its order and
 * every list entry is a free block, no two free buddies are left unmerged,
 * the counters agree with what is there, kfree()'s shortcut to the
 * newest region (a->first) is the list's head, every page's class byte
 * names its slab's kmalloc class, the heap's class on a heap span, or is
 * 0, and is 0 past the region's end as far as its metadata reaches -- and
 * inside every heap span, the heap's own invariants (heap.c).
 */
int mm_arena_validate(struct mm_arena *a)
{
	size_t free_pages = 0, clean = 0, pages = 0, listed = 0, free_blocks = 0, cached = 0;
	size_t heap_free_blocks = 0;
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	size_t dirty = 0;
#endif
	mm_flags_t flags = arena_lock(a);
	const char *why = NULL;
	uintptr_t at = 0;

	if (a->first != (a->regions ? a->regions : &mm_region_none))
		why = "first region is not the head of the list";
	for (struct mm_region *r = a->regions; r && !why; r = r->next) {
		pages += r->nr_pages;
		for (uintptr_t pfn = r->start_pfn; pfn < mm_region_end(r) && !why; ) {
			uint8_t m = *page_meta(r, pfn);
			uintptr_t n = (uintptr_t)1 << meta_order(m);

			at = pfn;
			if (!m)
				why = "page is not a block head where one must start";
			else if (meta_type(m) == PT_PCP && meta_order(m) != 0)
				why = "a cached page that is not a single page";
			else if (pfn & (n - 1))
				why = "block head not aligned to its order";
			else if (pfn + n > mm_region_end(r))
				why = "block runs past its region";
			for (uintptr_t i = 1; i < n && !why; i++) {
				if (*page_meta(r, pfn + i))
					why = "head byte inside a block";
			}
			for (uintptr_t i = 0; IS_ENABLED(CONFIG_MM_PAGE_CLASS) && i < n && !why; i++) {
				if (*page_class(r, pfn + i) != block_class(r, pfn, m, i))
					why = "class byte disagrees with its block";
			}
			if (!why && is_span(r, pfn, m))
				__heap_validate_span(a, r, pfn, &heap_free_blocks, &why);
			if (!why && meta_type(m) == PT_PCP)
				cached++;
			if (!why && meta_is_free(m)) {
				uintptr_t buddy = pfn ^ n;

				free_pages += n;
				free_blocks++;
				if (meta_type(m) == PT_CLEAN)
					clean += n;
				if (meta_order(m) < MM_MAX_ORDER && region_contains(r, buddy) &&
				    meta_is_free(*page_meta(r, buddy)) &&
				    meta_order(*page_meta(r, buddy)) == meta_order(m))
					why = "two free buddies left unmerged";
			}
			pfn += n;
		}
		/*
		 * Past the region's last page, as far as its metadata has
		 * room: kfree() reads there without the lock (kmalloc.h),
		 * and takes anything but 0 for a class, or a slab's head.
		 */
		if (!why && r->max_pages < r->nr_pages)
			why = "region has more pages than its metadata has room for";
		for (uintptr_t i = r->nr_pages; i < r->max_pages && !why; i++) {
			at = r->start_pfn + i;
			if ((IS_ENABLED(CONFIG_MM_PAGE_CLASS) && *page_class(r, at)) ||
			    meta_type(*page_meta(r, at)) == PT_SLAB)
				why = "a class or slab byte past the region's end";
		}
	}
	for (unsigned int o = 0; o <= MM_MAX_ORDER && !why; o++) {
		size_t count = 0;

		if (!!a->free_area[o].first != !!(a->free_mask & (1u << o)))
			why = "free_mask disagrees with the lists";
		for (struct hlist_node *h = a->free_area[o].first; h && !why; h = h->next) {
			uintptr_t pfn = addr_to_pfn(h);
			struct mm_region *r = region_of(a, pfn);

			at = pfn;
			count++;
			if (!r || !meta_is_free(*page_meta(r, pfn)) ||
			    meta_order(*page_meta(r, pfn)) != o)
				why = "free list entry is not a free block of its order";
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
			else if (container_of(h, struct free_block, node)->dirty > (size_t)1 << o)
				why = "free block has more resident pages than pages";
			else
				dirty += container_of(h, struct free_block, node)->dirty;
#endif
		}
		listed += count;
#if IS_ENABLED(CONFIG_MM_STATS)
		if (!why && count != a->nr_free_order[o])
			why = "per-order free count is wrong";
#endif
	}
	if (!why && listed != free_blocks)
		why = "free blocks missing from the lists";
	if (!why)
		__heap_validate_lists(a, heap_free_blocks, &why);
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	if (!why && dirty != a->nr_dirty)
		why = "resident free page count disagrees with the blocks";
#endif
#if CONFIG_MM_PCP_PAGES > 0
	for (unsigned int i = 0; i < a->pcp_count && !why; i++) {
		uintptr_t pfn = addr_to_pfn(a->pcp[i]);
		struct mm_region *r = region_of(a, pfn);

		at = pfn;
		if (!r || *page_meta(r, pfn) != PAGE_META(PT_PCP, 0))
			why = "page cache entry is not a cached page";
	}
	if (!why && cached != a->pcp_count)
		why = "cached pages missing from the page cache";
#endif
	if (!why && (free_pages + cached != a->nr_free || clean != a->nr_clean ||
		     pages != a->nr_pages))
		why = "page counters disagree with the blocks";
	arena_unlock(a, flags);
	if (why) {
		mm_report_bug(a, "mm_arena_validate", "%s (pfn %#lx)", why, (unsigned long)at);
		return -1;
	}
	return 0;
}

