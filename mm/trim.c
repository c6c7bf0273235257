// SPDX-License-Identifier: MIT
/*
 * Giving memory back (CONFIG_MM_TRIM).
 *
 * A backend can take back only the tail of a region or a whole one, so
 * give-back works at region edges: the free blocks that end a region are
 * released -- the block across the cut is split so a trim lands exactly on
 * 'keep' -- then, where the backend can discard, large free blocks in the
 * middle have their pages dropped (marked PT_CLEAN so they are not dropped
 * again).  Done automatically once free memory passes trim_high, down to
 * trim_low: the gap between the two is the hysteresis that keeps a workload
 * hovering at the threshold from returning and refetching memory on every
 * call.  A region whose tail went back grows back in place when the arena
 * next needs memory (__region_regrow), so trims do not leave a trail of
 * small regions.
 *
 * A bare-metal arena on a static array has nobody to give memory to; it
 * builds without this file.
 */
#include <string.h>
#include "internal.h"

/*
 * Grow a region of the arena's backend in place, into pages its metadata
 * already covers (those a trim gave back): no new region, and the new pages
 * merge with the region's free tail.  0, or -1 if no region could.
 */
int __region_regrow(struct mm_arena *a, size_t need, size_t want)
{
	if (!a->backend->grow_at)
		return -1;
	for (struct mm_region *r = a->regions; r; r = r->next) {
		uintptr_t end = mm_region_end(r);
		size_t cap = r->max_pages - r->nr_pages;
		size_t n = min_t(size_t, cap, want >> MM_PAGE_SHIFT);
		unsigned long fails = a->backend->nr_fail;
		int err;

		if (r->backend != a->backend || n < need || r->no_regrow)
			continue;
		/*
		 * The growth wanted may be more than the backend has there:
		 * a static array has only the tail a trim gave back, smaller
		 * than the arena's doubling once it has been trimmed partly
		 * (or than MM_GROW_MIN_KB, with small blocks).  Ask for less,
		 * down to what is needed, before giving the place up: the
		 * new region the backend would hand out instead never merges
		 * with this one, and this one would never regrow again.
		 */
		while ((err = mm_backend_grow_at(a->backend, pfn_to_addr(end),
						 n << MM_PAGE_SHIFT)) && n > need)
			n = max_t(size_t, n / 2, need);
		/* Asking for less until it fits is no failure of the backend. */
		a->backend->nr_fail = fails + !!err;
		if (err) {
			r->no_regrow = 1;	/* someone else lives there now */
			continue;
		}
		memset(page_meta(r, end), 0, n * MM_META_BYTES);
		r->len += n << MM_PAGE_SHIFT;
		region_set_nr_pages(r, r->nr_pages + n);
		a->nr_pages += n;
		__free_range_type(a, r, end, end + n,
				  IS_ENABLED(CONFIG_MM_PREFER_RESIDENT) && a->backend->discard ?
				  PT_CLEAN : PT_FREE);
		__arena_trim_adapt(a);
		a->diag.nr_grow++;
		return 0;
	}
	return -1;
}

/*
 * Discard the pages of resident free blocks of at least 'min_bytes', the
 * largest first, until at most 'keep' free pages are resident: all but
 * the first page of each, which holds the free-list node.  Bytes
 * discarded; lock held.
 */
static size_t discard_free(struct mm_arena *a, size_t keep, size_t min_bytes)
{
	size_t done = 0;

	if (!a->backend || !a->backend->discard)
		return 0;
	for (int o = MM_MAX_ORDER; o >= 1 && ((size_t)MM_PAGE_SIZE << o) >= min_bytes; o--) {
		for (struct hlist_node *h = a->free_area[o].first; h; h = h->next) {
			uintptr_t pfn = addr_to_pfn(h);
			struct mm_region *rr = region_of(a, pfn);
			uint8_t *m = page_meta(rr, pfn);
			size_t len = ((size_t)MM_PAGE_SIZE << o) - MM_PAGE_SIZE;

			if (arena_free_resident(a) <= keep)
				return done;
			if (meta_type(*m) != PT_FREE || rr->backend != a->backend)
				continue;
			if (mm_backend_discard(a->backend, (char *)h + MM_PAGE_SIZE, len) == 0) {
				__free_block_discarded(a, container_of(h, struct free_block, node), o);
				done += len;
			}
		}
	}
	return done;
}

/* Release free region edges, then discard large free blocks.  Lock held. */
static size_t arena_trim_locked(struct mm_arena *a, size_t keep, int discard)
{
	struct mm_region *r, *next;
	size_t done = 0;

	__pcp_drain(a, UINT32_MAX);	/* cached pages can only go back merged */
	for (r = a->regions; r; r = next) {
		uintptr_t cut, end = mm_region_end(r);
		uintptr_t base = (uintptr_t)r;
		size_t len;

		next = r->next;
		if (!r->backend || !r->backend->release || a->nr_free <= keep)
			continue;
		cut = __free_tail_start(a, r, keep);
		__unlink_free_range(a, r, cut, end);
		/*
		 * The free block below the cut is larger than what may still
		 * go before 'keep' is reached: give back its top part, so that
		 * a trim lands on 'keep' rather than up to a block above it
		 * (above trim_high, even, when high - low is less than the
		 * block, and then every free would trim again in vain).
		 */
		if (cut > r->start_pfn && a->nr_free > keep) {
			uintptr_t h = block_head(r, cut - 1);

			if (h && meta_is_free(*page_meta(r, h))) {
				uintptr_t split = cut - (a->nr_free - keep);
				size_t dirty = __free_block_dirty(r, h);

				__del_free_block(a, r, h);
				__free_range_dirty(a, r, h, split,
						   min_t(size_t, dirty, split - h));
				cut = split;
			}
		}
		if (cut == end)
			continue;
		/*
		 * kfree() walks the region list before it takes the lock, so
		 * wherever another context may be freeing, a region header is
		 * never unmapped: an entirely free region gives back all but
		 * its metadata pages, and grows back in place later
		 * (__region_regrow).  Only a build with no concurrency at all
		 * gives whole regions back.
		 */
		if (cut == r->start_pfn && IS_ENABLED(CONFIG_MM_LOCK_NONE)) {
			/* The whole region is free: give it all back. */
			len = r->len;
			__region_unlink(a, r);
			if (mm_backend_release(r->backend, r, len) == 0) {
				done += len;
				a->diag.nr_trim++;
				continue;
			}
			r->next = a->regions;	/* refused: take it back */
			a->regions = r;
			arena_regions_changed(a);
			a->nr_pages += end - r->start_pfn;
			a->diag.nr_regions++;
		} else {
			len = (end - cut) << MM_PAGE_SHIFT;
			if (mm_backend_release(r->backend, pfn_to_addr(cut), len) == 0) {
				region_set_nr_pages(r, cut - r->start_pfn);
				r->len = (cut << MM_PAGE_SHIFT) - base;
				a->nr_pages -= end - cut;
				done += len;
				a->diag.nr_trim++;
				continue;
			}
		}
		__free_range_locked(a, r, cut, end);
	}

	/*
	 * Discard the pages of large free blocks.  64 KiB and up: below that
	 * the system call costs more than the memory is worth.
	 */
	if (discard)
		done += discard_free(a, keep, 65536);
	return done;
}

#if IS_ENABLED(CONFIG_MM_FOOTPRINT_CAP)
/*
 * The footprint cap.
 *
 * Free pages at region edges go back above; free pages in the middle of
 * a region stay resident, and a heap whose holes fit none of the
 * requests that come (large blocks of random sizes) takes untouched
 * pages for them while the holes wait: its resident set creeps up to
 * the sum of every layout it went through, not the most it had in use
 * (the large workload: 20-23 MiB resident for 14.6 MiB in use at most).
 * Capping the footprint bounds that directly: the pages in use and the
 * free ones presumed resident (struct free_block's counts) may exceed the
 * most seen in use by a slack, a sixteenth of it and at least 512 KiB;
 * past that, resident free blocks are discarded, the largest first, down
 * to half the slack.  The footprint only grows where untouched pages are
 * taken, so that is where it is looked at (__arena_check_footprint(),
 * and after frees, which may merge), and the peak in use is sampled there
 * too: a peak reached on resident pages alone costs no footprint.  The
 * price is the faults of discarded pages used again: on the large
 * workload (bench/workloads.c, LD_PRELOAD, medians of five interleaved
 * runs) peak RSS went from 21.6 MiB to 17.4 (glibc 17.6), 0.11 -> 0.2 s
 * (glibc 0.57 s).  The counts must be right: one type per block counted
 * a 4 MiB block holding a freed 1 MiB buffer as 4 MiB resident, and a
 * program freeing and taking that buffer again paid a discard and 256
 * faults every time (24 times glibc's time).  What the cap cannot tell
 * is a working set larger than the peak in use: a vector grown by taking
 * a block twice the size and freeing the old one touches about twice
 * what it holds, and round after round its freed blocks are discarded
 * and faulted in again (1 MiB: eight times the time without the cap,
 * still a quarter of glibc's, whose trim threshold does the same); grown
 * with realloc(), it grows in place (__resize_exact()).  Sparing recently
 * freed blocks instead cost the large workload 1.3 MiB.
 *
 * Only for an arena whose thresholds follow its size (the default),
 * and whose backend can discard.
 */
static __always_inline size_t fp_slack(struct mm_arena *a)
{
	return max_t(size_t, a->fp_peak / 16, (size_t)(1 << 19) >> MM_PAGE_SHIFT);
}

static void fp_adapt(struct mm_arena *a)
{
	if (a->trim_adaptive && a->trim_base && a->backend && a->backend->discard)
		a->fp_high = a->fp_peak + fp_slack(a);
	else
		a->fp_high = SIZE_MAX;
}

void __arena_footprint(struct mm_arena *a)
{
	size_t used = a->nr_pages - a->nr_free, target;

	if (used > a->fp_peak)
		a->fp_peak = used;
	fp_adapt(a);
	if (arena_footprint(a) <= a->fp_high)
		return;
	/* Down to the peak and half the slack; blocks of 16 KiB and up. */
	target = a->fp_peak + fp_slack(a) / 2;
	discard_free(a, target - used, 16384);
	/* Nothing left to discard: look again only past a higher bar. */
	if (arena_footprint(a) > a->fp_high)
		a->fp_high = arena_footprint(a) + fp_slack(a) / 2;
}
#else
static inline void fp_adapt(struct mm_arena *a)
{
}
#endif

/*
 * The default thresholds scale with the arena: at least the Kconfig
 * threshold, and at least an eighth (a sixteenth) of the most the arena
 * has held, so a heap whose live set swings by tens of MiB does not unmap
 * and re-fault that memory on every swing (glibc's dynamic thresholds do
 * the same).  The peak, not the present size: a trim must not lower the
 * bar for the next one.  An eighth, not half: with untouched pages
 * counted clean (CONFIG_MM_PREFER_RESIDENT) the dirty free pages the bar
 * is compared with are resident ones, and half the peak let the large
 * workload keep 12 MiB of them for a live set of 6-14 MiB (peak RSS 22
 * -> 19.9 MiB, median of 7; the rss workload unchanged).  Called
 * whenever the arena's size changes.
 */
void __arena_trim_adapt(struct mm_arena *a)
{
	size_t high = a->trim_base, part;

	if (a->nr_pages > a->trim_peak)
		a->trim_peak = a->nr_pages;
	fp_adapt(a);
	a->trim_recheck = 0;		/* a raised bar drops (__arena_trim_auto()) */
	if (!a->trim_adaptive) {
		a->trim_high = a->trim_bar;
		return;
	}
	part = a->trim_peak / 8;
	if (!high) {
		a->trim_bar = a->trim_high = SIZE_MAX;
		a->trim_low = 0;
		return;
	}
	a->trim_bar = a->trim_high = max_t(size_t, high, part);
	a->trim_low = max_t(size_t, high / 2, part / 2);
}


/*
 * Past trim_high after a free: release region edges down to trim_low.
 * Discarding pages in the middle of regions is left to mm_arena_trim()
 * (malloc_trim()): done here, every reuse of those pages would fault them
 * back in.  If the edges could not bring free memory under the bar -- the
 * regions' last blocks are in use -- raise it by half, so the next frees
 * do not walk the regions again in vain.  But only until the pages in use
 * fall to a sixteenth (trim_recheck): then the bar is the arena's own
 * again, and the walk is made once more.  A raise kept for good (until
 * the arena's size changed) held everything a program freed in the order
 * it allocated: 200 blocks of 1 MiB freed bottom first raised the bar at
 * each try, and the last free, which freed the tail, found the bar above
 * the 200 MiB now free (glibc had given it back).  A sixteenth, not a
 * half: a live set that swings by half (bench/'s large workload) walked
 * and trimmed at every swing, 1.17 times the time for a peak 10 % higher.
 * At most one walk in vain per sixteenth, and a program that frees
 * everything ends with the walk.
 */
void __arena_trim_auto(struct mm_arena *a)
{
	size_t dirty;

	__arena_trim_adapt(a);			/* the bar without a raise */
	if (arena_free_resident(a) > a->trim_high)
		arena_trim_locked(a, a->trim_low, 0);
	__arena_trim_adapt(a);
	dirty = arena_free_resident(a);
	if (dirty > a->trim_high) {
		a->trim_high = dirty + dirty / 2;
		a->trim_recheck = max_t(size_t, (a->nr_pages - a->nr_free) / 16, 1);
	}
	__arena_check_footprint(a);
}

size_t mm_arena_trim(struct mm_arena *a, size_t keep)
{
	mm_flags_t flags = arena_lock(a);
	size_t done = arena_trim_locked(a, keep >> MM_PAGE_SHIFT, 1);

	__arena_trim_adapt(a);
	arena_unlock(a, flags);
	return done;
}

void mm_arena_set_trim(struct mm_arena *a, size_t high, size_t low)
{
	mm_flags_t flags = arena_lock(a);

	/* Explicit thresholds are kept as given; 0 turns give-back off. */
	a->trim_adaptive = 0;
	a->trim_recheck = 0;
	a->trim_bar = a->trim_high = high ? high >> MM_PAGE_SHIFT : SIZE_MAX;
	a->trim_low = min_t(size_t, low, high) >> MM_PAGE_SHIFT;
	fp_adapt(a);			/* the cap goes with the default thresholds */
	arena_unlock(a, flags);
}

