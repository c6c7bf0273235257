/* SPDX-License-Identifier: MIT */
/*
 * Arenas: a backend plus a buddy allocator over the regions it handed out.
 *
 * Nothing in mm is a hidden singleton.  A program may keep an arena on fast
 * SRAM, another on a DMA-capable bank and the default one on mmap, and put
 * slab caches on any of them.  struct mm_arena is public so an arena can be
 * a static object on a target without a heap to allocate it from; treat its
 * fields as read-only outside mm/.
 *
 * Each region carries its own metadata at its start:
 *
 *	+---------------+-----------------+----------+------------------+
 *	| struct        | meta[]: 1 byte  | (to page | pages start_pfn  |
 *	| mm_region     | per usable page |  bound.) | ... + nr_pages   |
 *	+---------------+-----------------+----------+------------------+
 *
 * so the arena's own RAM is the free lists and a few counters, whatever the
 * heap's size, and one byte per page is the whole per-page cost (Linux spends
 * a 64-byte struct page).  With CONFIG_MM_PAGE_CLASS a page has two bytes,
 * side by side: the block byte and its kmalloc class (MM_META_BYTES).
 */
#ifndef MM_ARENA_H
#define MM_ARENA_H

#include <mm/compiler.h>
#include <mm/list.h>
#include <mm/page.h>
#include <mm/lock.h>
#include <mm/backend.h>

MM_BEGIN_DECLS

/* Metadata bytes per page: the block byte, and the class byte if configured. */
#define MM_META_BYTES	(IS_ENABLED(CONFIG_MM_PAGE_CLASS) ? 2 : 1)

struct mm_region {
	struct mm_region *next;
	struct mm_backend *backend;	/* NULL: added by the application, kept */
	uintptr_t start_pfn;		/* first usable page */
	uintptr_t nr_pages;		/* usable pages, from start_pfn on */
	uintptr_t max_pages;		/* pages meta[] has room for: never changes */
	size_t len;			/* bytes held from the backend, header included */
	unsigned int no_regrow;		/* its tail address was taken: don't retry */
	uint8_t meta[];			/* meta[(pfn - start_pfn) * MM_META_BYTES] */
};

/*
 * The arena's running figures, as o1heap's diagnostics: cheap to read, and
 * what a test or a watchdog checks.
 */
/* One past the region's last page. */
static inline uintptr_t mm_region_end(const struct mm_region *r)
{
	return r->start_pfn + r->nr_pages;
}

struct mm_diag {
	size_t capacity;		/* bytes of pages in all regions */
	size_t allocated;		/* bytes of pages allocated (slabs included) */
	size_t peak_allocated;		/* highest 'allocated' seen (CONFIG_MM_STATS) */
	unsigned long nr_regions;
	unsigned long nr_grow;		/* regions added from the backend */
	unsigned long nr_trim;		/* regions or tails given back */
	unsigned long oom_count;	/* requests that failed for want of memory */
	unsigned long error_count;	/* bad frees and other misuse reported */
};

struct mm_arena;
typedef int (*mm_oom_hook_t)(struct mm_arena *arena, size_t bytes, void *ctx);

struct kmem_cache;

#if IS_ENABLED(CONFIG_MM_TINY)
/*
 * CONFIG_MM_TINY's arena: one static region, no backend.  Its free lists
 * are single-pointer heads (hlist), and the figures struct mm_diag reports
 * are worked out when asked, so the whole state is a few words.
 */
struct mm_arena {
	/* Published last by setup: non-NULL means ready.  First, so one address serves both. */
	struct kmem_cache *kmalloc;	/* kmalloc's classes, behind the metadata */
	uint8_t *meta;			/* meta[pfn - start_pfn], one byte per page */
	uintptr_t start_pfn;		/* first usable page */
	size_t nr_pages;		/* usable pages (0: not set up yet) */
	size_t nr_free;
	uint32_t free_mask;		/* bit k set: free_area[k] not empty */
	mm_lock_t lock;
	struct hlist_head free_area[MM_NR_ORDERS];
	struct kmem_cache *caches;	/* every cache, newest first */
	size_t (*reclaim)(struct mm_arena *arena);	/* set by the slab layer */
	struct {
		unsigned long oom_count, error_count;
#if IS_ENABLED(CONFIG_MM_STATS)
		size_t peak_allocated;	/* in pages */
#endif
	} diag;
};
#else
struct mm_arena {
	/*
	 * The head of 'regions', or an empty region when there is none, so
	 * kfree() tests its likeliest region without a NULL check.  First in
	 * the struct: mm_arena_init() leaves it alone, so that a free()
	 * racing the default arena's first initialisation never reads NULL.
	 */
	const struct mm_region *first;
	struct hlist_head free_area[MM_NR_ORDERS];
	uint32_t free_mask;		/* bit k set: free_area[k] not empty */
	size_t nr_free;			/* free pages */
	size_t nr_clean;		/* of those, discarded by the backend */
#if IS_ENABLED(CONFIG_MM_PREFER_RESIDENT)
	size_t nr_dirty;		/* of those, presumed resident (page_alloc.c) */
	uintptr_t taken_pfn;		/* the block rmqueue() last took */
	size_t taken;			/* its pages presumed resident */
#endif
	size_t nr_pages;		/* pages in all regions */
	struct mm_region *regions;
	struct mm_backend *backend;
	const char *name;
	mm_lock_t lock;
	size_t limit_pages;		/* growth stops here (0: no limit) */
#if IS_ENABLED(CONFIG_MM_TRIM)
	size_t trim_high, trim_low;	/* auto-trim hysteresis in pages (high SIZE_MAX: off) */
	size_t trim_bar;		/* trim_high unless raised after a trim in vain */
	size_t trim_recheck;		/* pages in use below which a raised bar drops */
	size_t trim_base;		/* the Kconfig threshold the defaults scale from */
	size_t trim_peak;		/* most pages the arena has held */
	int trim_adaptive;		/* thresholds follow the arena's size */
#endif
#if IS_ENABLED(CONFIG_MM_FOOTPRINT_CAP)
	size_t fp_high;			/* resident pages that make a free discard */
	size_t fp_peak;			/* most pages seen in use (sampled) */
#endif
	struct mm_diag diag;
#if CONFIG_MM_PCP_PAGES > 0
	unsigned int pcp_count;		/* order-0 pages cached in pcp[] */
	unsigned int pcp_max;		/* 0: no page cache for this arena */
	void *pcp[CONFIG_MM_PCP_PAGES];
	uint8_t *pcp_meta[CONFIG_MM_PCP_PAGES];	/* their metadata bytes */
#endif
#if IS_ENABLED(CONFIG_MM_STATS)
	unsigned long nr_free_order[MM_NR_ORDERS];
#endif
#if IS_ENABLED(CONFIG_MM_SLAB)
	struct list_head caches;	/* kmem_caches on this arena */
#endif
	size_t (*reclaim)(struct mm_arena *arena);	/* set by the slab layer */
	mm_oom_hook_t oom_hook;
	void *oom_ctx;
	struct mm_arena *next_arena;	/* all arenas, for fork() and reports */
};
#endif

#if !IS_ENABLED(CONFIG_MM_TINY)	/* the tiny core has one arena, set up by itself */
/*
 * Set up an arena over a backend.  initial: bytes to take from the backend
 * now (0: none until the first allocation; SIZE_MAX: all the backend has).
 * Returns 0, or -1 if the backend could not provide them or they are too
 * small for their own metadata.
 */
int mm_arena_init(struct mm_arena *arena, const char *name,
		  struct mm_backend *backend, size_t initial);

/*
 * Give every page back to the backend and forget the arena.  Slab caches
 * still on it are reported (they must be destroyed first).  Returns 0, or -1
 * if pages were still allocated (those regions are kept).
 */
int mm_arena_destroy(struct mm_arena *arena);

/*
 * Add memory to an arena: a second RAM bank, or memory the application
 * carved out itself.  [mem, mem + len) is trimmed to page boundaries; the
 * arena never gives it back to a backend.  Returns 0, or -1 if too small.
 */
int mm_arena_add_region(struct mm_arena *arena, void *mem, size_t len);

/* Growth cap in bytes (0: none); rounded down to pages. */
void mm_arena_set_limit(struct mm_arena *arena, size_t bytes);

#if IS_ENABLED(CONFIG_MM_TRIM)
/*
 * Automatic give-back: when free memory exceeds 'high' bytes, trim down to
 * 'low'.  high = 0 turns it off.
 */
void mm_arena_set_trim(struct mm_arena *arena, size_t high, size_t low);

/*
 * Give free memory back to the backend: free blocks at the end of a region
 * (the whole region when it is entirely free) are released; large free
 * blocks elsewhere are discarded where the backend can.  Keeps 'keep' bytes
 * of free pages.  Returns the bytes released or discarded.
 */
size_t mm_arena_trim(struct mm_arena *arena, size_t keep);
#else
/* Built without give-back (CONFIG_MM_TRIM=n): memory stays with the arena. */
static inline void mm_arena_set_trim(struct mm_arena *arena, size_t high, size_t low)
{
}

static inline size_t mm_arena_trim(struct mm_arena *arena, size_t keep)
{
	return 0;
}
#endif

/*
 * Called when a request cannot be met even after the slab caches gave back
 * their empty slabs (FreeRTOS's malloc-failed hook).  Return nonzero if the
 * hook freed memory and the request should be tried once more.
 */
void mm_arena_set_oom_hook(struct mm_arena *arena, mm_oom_hook_t hook, void *ctx);

#endif

void mm_arena_diag(struct mm_arena *arena, struct mm_diag *out);

#if !IS_ENABLED(CONFIG_MM_TINY)
/*
 * Keep up to n freed single pages in front of the free lists, for
 * alloc_pages(arena, 0) to take back without merging and splitting
 * (Linux's per-CPU page lists).  n is capped at CONFIG_MM_PCP_PAGES; 0
 * turns the cache off and empties it.  The default arena starts with
 * CONFIG_MM_PCP_PAGES, others with none.
 */
void mm_arena_set_pcp(struct mm_arena *arena, unsigned int n);
#endif

/* Pages free now, and in blocks of exactly 'order'. */
size_t mm_arena_free_pages(struct mm_arena *arena);
#if !IS_ENABLED(CONFIG_MM_TINY) || IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS)
/* (the tiny core counts blocks per order only with statistics or reports) */
size_t mm_arena_nr_free_order(struct mm_arena *arena, unsigned int order);
#endif

/*
 * The default arena, on the backend Kconfig chose; set up on first use (or
 * by mm_init()).  NULL only if that first setup failed.
 */
struct mm_arena *mm_default_arena(void);

#if IS_ENABLED(CONFIG_MM_VALIDATE)
/*
 * Walk the arena and check every invariant (free lists, metadata, counters);
 * 0 if all hold, else -1 after a report.  O(pages).
 */
int mm_arena_validate(struct mm_arena *arena);
#endif

MM_END_DECLS

#endif /* MM_ARENA_H */
