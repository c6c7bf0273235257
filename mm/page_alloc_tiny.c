// SPDX-License-Identifier: MIT
/*
 * The tiny core's buddy allocator (CONFIG_MM_TINY): page_alloc.c's scheme
 * over one static region, written for flash.
 *
 * The region is the static array (or the linker's [__mm_heap_start,
 * __mm_heap_end)).  Its first pages hold the metadata, one byte per usable
 * page (page_meta.h), and kmalloc's class array; the rest are handed to
 * the free lists one page at a time through the ordinary free path, whose
 * merging builds the largest blocks by itself -- setup has no
 * block-carving code of its own.
 *
 * free_area[k] is a single-pointer list head per order: allocation looks at
 * at most MM_NR_ORDERS heads instead of keeping a bitmap, and a free block
 * is just its list node.  Both operations stay O(MM_MAX_ORDER).
 */
#include <string.h>
#include "tiny.h"

MM_INTERNAL struct mm_arena mm_arena_default = { .lock = MM_LOCK_INIT };

#if IS_ENABLED(CONFIG_MM_STATIC_LINKER_REGION)
extern char __mm_heap_start[], __mm_heap_end[];
#define HEAP_START ((uintptr_t)__mm_heap_start)
#define HEAP_END ((uintptr_t)__mm_heap_end)
#else
/* On a host, aligned to the largest block so that every order exists. */
static char static_heap[CONFIG_MM_STATIC_SIZE]
	__aligned(IS_ENABLED(CONFIG_ARCH_HOST) ? MM_MAX_BLOCK : MM_PAGE_SIZE);
#define HEAP_START ((uintptr_t)static_heap)
#define HEAP_END ((uintptr_t)static_heap + sizeof(static_heap))
#endif

/* The high-water mark of allocated pages, kept only with statistics. */
#if IS_ENABLED(CONFIG_MM_STATS)
static inline void note_peak(struct mm_arena *a)
{
	if (a->nr_pages - a->nr_free > a->diag.peak_allocated)
		a->diag.peak_allocated = a->nr_pages - a->nr_free;
}
#else
static inline void note_peak(struct mm_arena *a)
{
}
#endif

static void add_free(struct mm_arena *a, uintptr_t pfn, unsigned int order)
{
	a->meta[pfn - a->start_pfn] = PAGE_META(PT_FREE, order);
	hlist_add_head(pfn_to_addr(pfn), &a->free_area[order]);
}

/*
 * When no list can serve the request, the slab caches give their empty
 * slabs back and the search runs once more: Linux's direct reclaim.  The
 * slab layer hands the arena its reclaim callback, as the full core's
 * does, so this layer never calls the one above by name.
 */
void *__alloc_pages_locked(struct mm_arena *a, unsigned int order, unsigned int type)
{
	struct hlist_node *n;
	uintptr_t pfn;
	unsigned int o;

retry:
	for (o = order; o <= MM_MAX_ORDER; o++) {
		n = a->free_area[o].first;
		if (n)
			goto found;
	}
	if (order <= MM_MAX_ORDER && a->reclaim && a->reclaim(a))
		goto retry;
	a->diag.oom_count++;
	return NULL;
found:
	/*
	 * Split by freeing the upper halves: their buddy, the block being
	 * handed out, is already marked allocated, so none of them merges.
	 */
	hlist_del(n);
	pfn = addr_to_pfn(n);
	a->nr_free -= (size_t)1 << o;
	a->meta[pfn - a->start_pfn] = PAGE_META(type, order);
	while (o > order) {
		o--;
		__free_pages_locked(a, pfn + ((uintptr_t)1 << o), o);
	}
	note_peak(a);
	return n;
}

void __free_pages_locked(struct mm_arena *a, uintptr_t pfn, unsigned int order)
{
	a->nr_free += (size_t)1 << order;
	for (; order < MM_MAX_ORDER; order++) {
		uintptr_t buddy = pfn ^ ((uintptr_t)1 << order);
		uintptr_t i = buddy - a->start_pfn;

		/* Outside the region (i wraps below it) or not free as a whole. */
		if (i >= a->nr_pages || a->meta[i] != PAGE_META(PT_FREE, order))
			break;
		hlist_del(pfn_to_addr(buddy));
		a->meta[i] = 0;
		a->meta[pfn - a->start_pfn] = 0;
		pfn &= ~((uintptr_t)1 << order);
	}
	add_free(a, pfn, order);
}

/*
 * The metadata byte of the head of the block that holds p, or NULL if p is
 * not inside the region.  The first nonzero byte among p's page rounded
 * down to 2^0, 2^1, ... pages is the head (page_meta.h's invariant); it
 * must also reach as far as p.
 */
uint8_t *__block_head(struct mm_arena *a, const void *p)
{
	uintptr_t pfn = addr_to_pfn(p), h;

	if (pfn - a->start_pfn >= a->nr_pages)
		return NULL;
	/* Clearing the lowest set bit visits each rounding once, smallest first. */
	for (h = pfn; h >= a->start_pfn; h &= h - 1) {
		uint8_t *m = &a->meta[h - a->start_pfn];

		if (*m)
			return pfn - h < ((uintptr_t)1 << meta_order(*m)) ? m : NULL;
	}
	return NULL;
}

/*
 * Of a region of n pages, enough metadata pages for a byte per page that
 * remains after them, and behind those bytes kmalloc's class array (tiny.h).
 */
#define META_PAGES(n)	(((n) + TINY_CLASSES_BYTES + MM_PAGE_SIZE) / (MM_PAGE_SIZE + 1))

/*
 * A region whose metadata pages leave it no page is too small.  The static
 * array's size is known to the build (it is aligned to a page at least),
 * so the build says so; the linker's region is checked at setup.  (Where
 * the metadata did not even fit, the region was taken to have SIZE_MAX
 * pages and cleared far past its end: 128-byte pages, eight classes and
 * a 256-byte array.)
 */
#if !IS_ENABLED(CONFIG_MM_STATIC_LINKER_REGION)
static_assert(CONFIG_MM_STATIC_SIZE / MM_PAGE_SIZE > META_PAGES(CONFIG_MM_STATIC_SIZE / MM_PAGE_SIZE),
	      "CONFIG_MM_STATIC_SIZE is too small for its page metadata and kmalloc's classes");
#endif

/*
 * Lock held, once (mm_default_arena(), kmalloc_tiny.c).  0 once the region
 * is on the free lists, -1 if it is too small.
 */
int __arena_setup(struct mm_arena *a)
{
	uintptr_t first = ALIGN(HEAP_START, MM_PAGE_SIZE) >> MM_PAGE_SHIFT;
	uintptr_t end = HEAP_END >> MM_PAGE_SHIFT;
	size_t n, meta_pages;

	if (end <= first)
		return -1;
	n = end - first;
	meta_pages = META_PAGES(n);
	if (IS_ENABLED(CONFIG_MM_STATIC_LINKER_REGION) && meta_pages >= n)
		return -1;
	a->meta = pfn_to_addr(first);
	a->start_pfn = first + meta_pages;
	a->nr_pages = n - meta_pages;
	memset(a->meta, 0, a->nr_pages + TINY_CLASSES_BYTES);
	for (uintptr_t pfn = a->start_pfn; pfn < end; pfn++)
		__free_pages_locked(a, pfn, 0);
	return 0;
}

void *alloc_pages(struct mm_arena *a, unsigned int order)
{
	mm_flags_t flags = arena_lock(a);
	void *p = __alloc_pages_locked(a, order, PT_PAGES);

	arena_unlock(a, flags);
	return p;
}

void free_pages(struct mm_arena *a, void *addr, unsigned int order)
{
	uintptr_t i = addr_to_pfn(addr) - a->start_pfn;
	mm_flags_t flags;

	if (!addr)		/* as the full core and Linux: NULL is no error */
		return;
	flags = arena_lock(a);

	/*
	 * The whole test is the head's byte: type and order must both match,
	 * which also rejects a foreign pointer, a pointer inside a block and
	 * a block already free.
	 */
	if (order > MM_MAX_ORDER || ((uintptr_t)addr & ~MM_PAGE_MASK) || i >= a->nr_pages ||
	    a->meta[i] != PAGE_META(PT_PAGES, order))
		mm_report_bug(a, "free_pages", "%p is not an allocated block of order %u",
			      addr, order);
	else
		__free_pages_locked(a, addr_to_pfn(addr), order);
	arena_unlock(a, flags);
}

size_t mm_arena_free_pages(struct mm_arena *a)
{
	return a->nr_free;
}

#if IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS)
size_t mm_arena_nr_free_order(struct mm_arena *a, unsigned int order)
{
	mm_flags_t flags;
	size_t n = 0;

	if (order > MM_MAX_ORDER)	/* no such list: free_area[] ends at MM_MAX_ORDER */
		return 0;
	flags = arena_lock(a);
	for (struct hlist_node *b = a->free_area[order].first; b; b = b->next)
		n++;
	arena_unlock(a, flags);
	return n;
}
#endif

/*
 * No lock: each figure comes from one word, read once, and none depends
 * on another being from the same instant.
 */
void mm_arena_diag(struct mm_arena *a, struct mm_diag *d)
{
	*d = (struct mm_diag){
		.capacity = a->nr_pages << MM_PAGE_SHIFT,
		.allocated = (a->nr_pages - a->nr_free) << MM_PAGE_SHIFT,
#if IS_ENABLED(CONFIG_MM_STATS)
		.peak_allocated = a->diag.peak_allocated << MM_PAGE_SHIFT,
#endif
		.nr_regions = 1,
		.oom_count = a->diag.oom_count,
		.error_count = __atomic_load_n(&a->diag.error_count, __ATOMIC_RELAXED),
	};
}

#if IS_ENABLED(CONFIG_MM_REPORTS)
void mm_buddyinfo(struct mm_arena *a)
{
	mm_printf("Node 0, zone %8s", "default");
	for (unsigned int o = 0; o <= MM_MAX_ORDER; o++)
		mm_printf(" %6zu", mm_arena_nr_free_order(a, o));
	mm_printf("\n");
}
#endif
