/* SPDX-License-Identifier: MIT */
/*
 * Slab caches and kmalloc: Bonwick's object caches as Linux's SLUB does them.
 *
 * A slab is one buddy block of 2^k pages with a small header at its start;
 * the rest is objects, and the free list runs through the free objects
 * themselves, so a normal object has no header at all.  Because buddy blocks
 * are aligned to their size, an object's slab is (addr & ~(slab size - 1)):
 * freeing needs no search.  k is the smallest order whose unusable tail is at
 * most 1/8 of the slab (Linux's slub_max_order heuristic, without its
 * minimum object count).
 *
 * Object layout, designed to take SLUB's debugging options later:
 *
 *	| red zone | object (size) | pad | free pointer | owner record |
 *	  (debug)                          (only when the    (debug)
 *	                                    object's bytes
 *	                                    must be kept)
 *
 * With a constructor the free pointer moves behind the object, so a freed
 * object keeps its constructed state: constructors run once per slab, when
 * the slab is made, not on every allocation.
 *
 * kmalloc is a table of such caches, 8 ... 8192 bytes plus 96 and 192 (the
 * bounds are Kconfig options).  Larger requests take buddy blocks cut to the
 * pages asked for, marked in the page metadata so kfree() needs no size;
 * larger than the largest block, a direct mapping on hosts with the mmap
 * backend.
 */
#ifndef MM_SLAB_H
#define MM_SLAB_H

#include <mm/arena.h>

MM_BEGIN_DECLS

struct kmem_cache;

/* kmem_cache_create() flags */
#define SLAB_HWCACHE_ALIGN	0x1u	/* align objects to CONFIG_ARCH_CACHE_LINE */
#define SLAB_PANIC		0x2u	/* mm_panic() if the cache cannot be made */

/*
 * Constructors run when a slab is made, with the arena's lock held: a
 * constructor must not allocate from the same arena.
 */
typedef void (*kmem_ctor_t)(void *obj);

/*
 * A cache of objects of 'size' bytes aligned to 'align' (0: the natural
 * alignment, at least sizeof(void *)); 'name' must outlive the cache.
 * Returns NULL on an impossible size or alignment or when memory is short.
 */
struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned int flags, kmem_ctor_t ctor);
#if !IS_ENABLED(CONFIG_MM_TINY)	/* the tiny core: the default arena only */
struct kmem_cache *kmem_cache_create_arena(struct mm_arena *arena, const char *name,
					   size_t size, size_t align,
					   unsigned int flags, kmem_ctor_t ctor);
#endif

void *kmem_cache_alloc(struct kmem_cache *c) __malloc;
/* Bytes of an object the user may use: at least the size it was created with. */
unsigned int kmem_cache_size(struct kmem_cache *c);

/* Inline, as in Linux: an allocation and a memset, in either core. */
static inline __malloc void *kmem_cache_zalloc(struct kmem_cache *c)
{
	void *obj = kmem_cache_alloc(c);

	if (obj)
		__builtin_memset(obj, 0, kmem_cache_size(c));
	return obj;
}

/*
 * Free an object of this cache.  With CONFIG_MM_CHECKS an object of another
 * cache, a pointer into the middle of an object, a pointer no slab owns and a
 * double free are reported and ignored.
 */
void kmem_cache_free(struct kmem_cache *c, void *obj);

/* Give every empty slab back to the buddy allocator; returns pages freed. */
size_t kmem_cache_shrink(struct kmem_cache *c);

/*
 * Free the cache.  If objects are still allocated, report "Slab cache still
 * has objects" with their addresses, keep their slabs (never free memory in
 * use) and return -1; otherwise 0.  A cache of kmalloc's own (kmalloc_slab())
 * and one destroyed already are reported and refused (-1), and allocating
 * from a destroyed cache is reported and fails, as long as its descriptor's
 * memory has not been handed out again (the tiny core, CONFIG_MM_TINY: with
 * CONFIG_MM_CHECKS).
 */
int kmem_cache_destroy(struct kmem_cache *c);

/* Shrink every cache on the arena; returns pages freed. */
size_t kmem_cache_reap(struct mm_arena *arena);

#if !IS_ENABLED(CONFIG_MM_TINY) || IS_ENABLED(CONFIG_MM_STATS)
/*
 * What /proc/slabinfo says of a cache, as numbers (mm_slabinfo() prints
 * the same for every cache).
 */
struct kmem_cache_info {
	const char *name;
	size_t object_size;		/* what the user asked for */
	size_t size;			/* stride between objects */
	size_t align;
	unsigned int objs_per_slab;
	unsigned int pages_per_slab;
	unsigned long active_objs;
	unsigned long num_objs;
	unsigned long active_slabs;	/* slabs with at least one object in use */
	unsigned long num_slabs;
	unsigned long empty_slabs;
};
void kmem_cache_info(struct kmem_cache *c, struct kmem_cache_info *info);
#endif

#if IS_ENABLED(CONFIG_MM_REPORTS)
/* /proc/slabinfo (version 2.1) for every cache on the arena. */
void mm_slabinfo(struct mm_arena *arena);
#else
static inline void mm_slabinfo(struct mm_arena *arena)
{
}
#endif

/*
 * kmalloc: size classes on the default arena.  A power-of-two size up to
 * the largest class is aligned to itself, as in Linux, but for sizes the
 * heap serves (above CONFIG_MM_HEAP_MIN), whose blocks are aligned to 16
 * bytes: kmalloc_aligned() for more.
 */
void *kmalloc(size_t size) __malloc __alloc_size(1);

#if IS_ENABLED(CONFIG_MM_TINY)
/* Inline, as in Linux: kmalloc() and a line. */
static inline __malloc __alloc_size(1) void *kzalloc(size_t size)
{
	void *p = kmalloc(size);

	if (p)
		__builtin_memset(p, 0, size);
	return p;
}
#else
/*
 * kmalloc() zeroed.  A block of whole pages is zeroed by its backend,
 * which leaves the pages not resident untouched (mm_backend_zero()).
 */
void *kzalloc(size_t size) __malloc __alloc_size(1);
#endif

/* NULL when n * size overflows. */
static inline __malloc __alloc_size(1, 2) void *kmalloc_array(size_t n, size_t size)
{
	size_t bytes;

	return __builtin_mul_overflow(n, size, &bytes) ? NULL : kmalloc(bytes);
}

static inline __malloc __alloc_size(1, 2) void *kcalloc(size_t n, size_t size)
{
	size_t bytes;

	return __builtin_mul_overflow(n, size, &bytes) ? NULL : kzalloc(bytes);
}

/*
 * Resize, keeping the contents: the same pointer while the block still fits
 * -- a growth within ksize(), a shrink of a large or heap block (its tail
 * is given back), a shrink of a slab object to more than half its class --
 * else a new block.  A slab object of 256 bytes or more shrunk to half or
 * less moves to its smaller class when there is room, so that a buffer
 * shrunk does not hold its largest size for good (not in the tiny core,
 * CONFIG_MM_TINY, which keeps its code under 2 KiB).  A shrink never
 * fails.  A new size of 0 frees p and returns NULL (Linux returns
 * ZERO_SIZE_PTR); krealloc(NULL, n) is kmalloc(n), for n = 0 too.
 */
void *krealloc(void *p, size_t new_size) __alloc_size(2);
void kfree(const void *p);

/* Usable bytes at p (at least what was asked for); 0 for NULL or a bad pointer. */
size_t ksize(const void *p);

/*
 * kmalloc with alignment: a power of two up to the largest buddy block (and
 * beyond on hosts with the mmap backend).  Freed with kfree().  NULL for an
 * alignment that is no power of two -- but in the tiny core
 * (CONFIG_MM_TINY), which rounds it up to one: its block of
 * max(size, align) bytes is aligned to its class, a power of two.
 */
void *kmalloc_aligned(size_t size, size_t align) __malloc __alloc_size(1);

/* The kmalloc cache that serves 'size', or NULL above the largest class. */
struct kmem_cache *kmalloc_slab(size_t size);

/*
 * Give this thread's per-thread cached kmalloc objects back to their slabs
 * (CONFIG_MM_PERCPU_CACHE; a no-op without it).  Threads drain on exit by
 * themselves; call this before measuring what the arena holds.
 */
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
void mm_percpu_drain(void);
#else
static inline void mm_percpu_drain(void)
{
}
#endif

/*
 * Largest size served from a slab cache (the largest class).  The tiny
 * core's is at most half the largest block: its slab header takes the end
 * of the block (mm/tiny.h).
 */
#if IS_ENABLED(CONFIG_MM_TINY)
#define KMALLOC_MAX_CACHE_SIZE	((size_t)1 << min_t(unsigned int, CONFIG_MM_KMALLOC_SHIFT_HIGH, \
						    MM_PAGE_SHIFT + MM_MAX_ORDER - 1))
#else
#define KMALLOC_MAX_CACHE_SIZE	((size_t)1 << CONFIG_MM_KMALLOC_SHIFT_HIGH)
#endif
#define KMALLOC_MIN_SIZE	((size_t)1 << CONFIG_MM_KMALLOC_SHIFT_LOW)

MM_END_DECLS

#endif /* MM_SLAB_H */
