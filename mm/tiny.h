/* SPDX-License-Identifier: MIT */
/*
 * CONFIG_MM_TINY: what its three layers (page_alloc_tiny.c, slab_tiny.c,
 * kmalloc_tiny.c) share.
 *
 * The tiny core is the full one with everything a small MCU does not use
 * taken out, and the rest written for flash rather than for speed: one
 * arena over one static region, its metadata byte per page at the start of
 * that region, free lists as single-pointer heads, slabs with their header
 * at the end, power-of-two kmalloc classes.  Every public entry takes the
 * arena lock once and calls lock-held helpers below it; nothing else is
 * inlined across files, so each operation exists in exactly one copy.
 *
 * Two choices buy most of the size:
 *
 *  - The slab header sits at the END of the slab, so objects start at the
 *    slab's first byte.  A buddy block is aligned to its size, so an
 *    object of a power-of-two class is aligned to its own size, and
 *    kmalloc_aligned() is kmalloc() of max(size, align) with no code of
 *    its own.
 *
 *  - A slab and a large kmalloc block are found from any pointer inside
 *    them by the metadata byte alone (block_head(), page_meta.h's
 *    invariant), so kfree(), ksize() and kmem_cache_free() share one
 *    lookup, and a pointer the arena never handed out is found to be one.
 */
#ifndef MM_TINY_H
#define MM_TINY_H

#include <mm/mm.h>
#include <mm/bitops.h>
#include "page_meta.h"

#if !IS_ENABLED(CONFIG_MM_TINY)
#error "tiny.h is the tiny core's own header"
#endif

extern MM_INTERNAL struct mm_arena mm_arena_default;

/* At the end of every slab: the last sizeof(struct slab) bytes. */
struct slab {
	struct slab *next;		/* on the cache's partial list, unless full */
	struct kmem_cache *cache;
	void *freelist;			/* first free object, NULL when full */
	unsigned int inuse;		/* objects allocated */
};

/*
 * A descriptor of kmem_cache_create() is a kmalloc object; freed by
 * kmem_cache_destroy(), its first word takes kmalloc's free pointer.  That
 * is 'next', dead once the cache is off the arena's list, so a destroyed
 * cache keeps 'partial' NULL: no free object is taken for its slab, and
 * with the checks its use is told (new_slab()).
 */
struct kmem_cache {
	struct kmem_cache *next;	/* on the arena's list of caches */
	struct slab *partial;		/* slabs with a free object (empty ones too) */
	const char *name;		/* NULL: a kmalloc class, "kmalloc-<size>" */
	kmem_ctor_t ctor;
	unsigned int size;		/* stride between objects */
	unsigned int offset;		/* of the free pointer inside a free object */
	uint16_t objects;		/* per slab */
	uint8_t order;			/* a slab is 2^order pages */
	unsigned long active;		/* objects allocated */
#if IS_ENABLED(CONFIG_MM_STATS)
	unsigned int object_size;	/* what the user asked for (kmem_cache_info()) */
	unsigned int align;		/* the alignment objects have */
#endif
#if IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS)
	unsigned long nr_slabs;		/* for kmem_cache_info() and slabinfo */
#endif
};

/* Slab counting exists only where something reads the count. */
#if IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS)
static inline void count_slabs(struct kmem_cache *c, long n)
{
	c->nr_slabs += (unsigned long)n;
}
#else
static inline void count_slabs(struct kmem_cache *c, long n)
{
}
#endif

/*
 * kmalloc's classes, a struct kmem_cache each, live behind the metadata
 * bytes in the region's first pages (tiny_classes()): the library's static
 * RAM stays the arena struct, and the array costs no block of its own.
 *
 * The largest class is CONFIG_MM_KMALLOC_SHIFT_HIGH, but at most half the
 * largest block (KMALLOC_MAX_CACHE_SIZE says so too): a slab's header
 * takes the end of its block, so a class of a whole block has no slab (it
 * was left unset up, and the first kmalloc() of its sizes crashed).  The
 * sizes above it take buddy blocks.  slab.h's KMALLOC_MAX_CACHE_SIZE is
 * where that bound is made; the count of classes follows from it.
 */
#define TINY_SHIFT_HIGH		((unsigned int)__builtin_ctzl(KMALLOC_MAX_CACHE_SIZE))
#define TINY_NR_CLASSES		(TINY_SHIFT_HIGH - CONFIG_MM_KMALLOC_SHIFT_LOW + 1)
#define TINY_CLASSES_BYTES	(TINY_NR_CLASSES * sizeof(struct kmem_cache) + sizeof(void *))

static __always_inline struct kmem_cache *tiny_classes(struct mm_arena *a)
{
	return (struct kmem_cache *)ALIGN((uintptr_t)a->meta + a->nr_pages, sizeof(void *));
}

/* The most objects a slab holds: 8-byte ones, up to the largest slab order. */
static_assert((MM_PAGE_SIZE << CONFIG_MM_SLAB_MAX_ORDER) / 8 <= UINT16_MAX,
	      "objects per slab must fit struct kmem_cache's 16 bits");

static_assert(sizeof(struct slab) % sizeof(void *) == 0,
	      "the slab header keeps the end of the slab pointer-aligned");

static __always_inline mm_flags_t arena_lock(struct mm_arena *a)
{
	return mm_lock(&a->lock);
}

static __always_inline void arena_unlock(struct mm_arena *a, mm_flags_t flags)
{
	mm_unlock(&a->lock, flags);
}

/*
 * The class array is published once, without the lock for its readers.
 * On an MCU the lock masks interrupts on the one core, and program order
 * is all a handler can see: a compiler barrier is enough, with no DMB.
 */
#if IS_ENABLED(CONFIG_ARCH_HOST)
#define PUBLISH_ORDER	__ATOMIC_RELEASE
#define READ_ORDER	__ATOMIC_ACQUIRE
#else
#define PUBLISH_ORDER	__ATOMIC_RELAXED
#define READ_ORDER	__ATOMIC_RELAXED
#endif

static __always_inline struct kmem_cache *read_published(struct kmem_cache **p)
{
	struct kmem_cache *v = __atomic_load_n(p, READ_ORDER);

	__atomic_signal_fence(__ATOMIC_ACQUIRE);
	return v;
}

static __always_inline void publish(struct kmem_cache **p, struct kmem_cache *v)
{
	__atomic_signal_fence(__ATOMIC_RELEASE);
	__atomic_store_n(p, v, PUBLISH_ORDER);
}

static __always_inline uintptr_t meta_pfn(struct mm_arena *a, const uint8_t *m)
{
	return a->start_pfn + (uintptr_t)(m - a->meta);
}

static __always_inline struct slab *slab_of(uintptr_t head, unsigned int order)
{
	return (struct slab *)pfn_to_addr(head + ((uintptr_t)1 << order)) - 1;
}

static __always_inline void *slab_base(const struct kmem_cache *c, const struct slab *s)
{
	return (char *)(s + 1) - (MM_PAGE_SIZE << c->order);
}

/* page_alloc_tiny.c; all with the lock held. */
void *__alloc_pages_locked(struct mm_arena *a, unsigned int order, unsigned int type);
void __free_pages_locked(struct mm_arena *a, uintptr_t pfn, unsigned int order);
uint8_t *__block_head(struct mm_arena *a, const void *p);
int __arena_setup(struct mm_arena *a);

/* slab_tiny.c; lock held. */
int __cache_init(struct mm_arena *a, struct kmem_cache *c, size_t size, size_t align);
void __slab_free(struct mm_arena *a, struct slab *s, void *obj, const char *caller);

/*
 * Why obj, a pointer into s, may not be freed -- no object's start, free
 * already, or a live cache's descriptor -- or 0.  Without CONFIG_MM_CHECKS
 * nothing is asked.
 */
enum { SLAB_FREE_MIDDLE = 1, SLAB_FREE_TWICE, SLAB_FREE_CACHE };
#if IS_ENABLED(CONFIG_MM_CHECKS)
int __slab_bad_free(struct slab *s, const void *obj);
#else
static inline int __slab_bad_free(struct slab *s, const void *obj)
{
	return 0;
}
#endif

#endif /* MM_TINY_H */
