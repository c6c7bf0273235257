/* SPDX-License-Identifier: MIT */
/*
 * The slab layer's private structures, shared with kmalloc.c and percpu.c.
 */
#ifndef MM_SLAB_INTERNAL_H
#define MM_SLAB_INTERNAL_H

#include "internal.h"
#include <mm/slab.h>	/* also without CONFIG_MM_SLAB: validate.c, heap.h */

/* kmem_cache_create_arena() flag for kmalloc's classes (see calculate_sizes). */
#define SLAB_KMALLOC	0x80u

/* At the start of every slab. */
struct slab {
	struct kmem_cache *cache;
	void *freelist;			/* first free object, NULL when full */
	struct list_head lru;		/* on the cache's partial, full or empty list */
	unsigned int inuse;		/* objects allocated */
#if IS_ENABLED(CONFIG_MM_SLAB_LAZY)
	unsigned int fresh;		/* objects from here on were never handed out */
#endif
};

struct kmem_cache {
	/* Hot: the fast paths read only these. */
	void *cpu_freelist;		/* free objects of the active slab */
	struct slab *cpu_slab;		/* the active slab, on no list */
	uintptr_t slab_mask;		/* ~(slab bytes - 1) */
	unsigned int offset;		/* free pointer, from the object's start */
	unsigned int objs;		/* objects per slab */
	unsigned int first;		/* offset of the first object */
	unsigned int obj_shift;		/* for slab_is_obj_start() */
	unsigned long obj_inv;
	unsigned long obj_first_inv;	/* first * obj_inv */
	struct mm_arena *arena;
	uintptr_t random;		/* free pointer obfuscation (CONFIG_MM_CHECKS) */

	unsigned int size;		/* stride between objects */
	unsigned int object_size;	/* what the user asked for */
	unsigned int align;
	uint8_t order;			/* a slab is 2^order pages */
	uint8_t flags;
	uint8_t kmalloc_idx;		/* kmalloc class index, 0: not a kmalloc cache */
	uint8_t mag_cap;		/* per-thread magazine capacity (percpu.c) */
	uint8_t mag_refill;		/* at most this many objects per refill (percpu.c) */
	uint8_t destroyed;		/* kmem_cache_destroy() freed it: see boot_cache() */
	uint16_t nr_empty;		/* slabs on 'empty' */
	struct list_head partial;	/* slabs with free objects */
	struct list_head full;
	struct list_head empty;
	kmem_ctor_t ctor;
	const char *name;
	struct list_head list;		/* on arena->caches */
	unsigned long nr_slabs;
	unsigned long spill_slabs;	/* kmalloc's paths grow it below this (slab_may_grow()) */
};

static __always_inline struct slab *obj_to_slab(const struct kmem_cache *c, const void *obj)
{
	return (struct slab *)((uintptr_t)obj & c->slab_mask);
}

/*
 * Is obj, a pointer into a slab of c, an object's start?  Without a
 * division, and without reading the slab: the exact-division test of
 * Granlund and Montgomery.  Say size = odd << k and slabs are 2^n bytes,
 * aligned to their size.  Shifted left by BITS - n, obj - first keeps
 * only its offset from the slab's first object: the slab's address drops
 * out.  An offset of q objects, q * odd << k, times the inverse of odd is
 * q << k; rotated right by k (k + BITS - n, with the shift) it is q.
 * Every other offset -- in the header, inside an object, in the tail --
 * comes out with bits far above objs.  The shift is folded into obj_inv
 * and first * obj_inv kept, so it is one multiply, one subtraction, one
 * rotation and one compare: cheap enough for the magazines' free path.
 */
static __always_inline int slab_is_obj_start(const struct kmem_cache *c, const void *obj)
{
	return ror_long((uintptr_t)obj * c->obj_inv - c->obj_first_inv, c->obj_shift) < c->objs;
}

/*
 * CONFIG_MM_SLAB_LAZY: the objects of a slab from index s->fresh on were
 * never handed out and are on no free list (slab.c threads them a page at
 * a time).  Without the option every object is threaded when the slab is
 * made, and none is ever "fresh".
 *
 * Written under the lock, read without it too: a magazine's free path
 * (percpu.c) asks whether the object freed was ever handed out.  For an
 * object that was, any value read is above its index -- the index only
 * grows while the slab has an object live -- so relaxed atomics (plain
 * moves on every target) are all it takes to make the read well defined.
 */
#if IS_ENABLED(CONFIG_MM_SLAB_LAZY)
static __always_inline unsigned int slab_fresh(const struct kmem_cache *c, const struct slab *s)
{
	return __atomic_load_n(&s->fresh, __ATOMIC_RELAXED);
}

static __always_inline void slab_set_fresh(struct slab *s, unsigned int idx)
{
	__atomic_store_n(&s->fresh, idx, __ATOMIC_RELAXED);
}
#else
static __always_inline unsigned int slab_fresh(const struct kmem_cache *c, const struct slab *s)
{
	return c->objs;
}

static __always_inline void slab_set_fresh(struct slab *s, unsigned int idx)
{
}
#endif

/*
 * Was obj, an object start of s, never handed out (beyond the fresh
 * index)?  A free of it is as wrong as a double free.  Always 0 without
 * CONFIG_MM_SLAB_LAZY.
 */
static __always_inline int slab_obj_fresh(const struct kmem_cache *c, const struct slab *s,
					  const void *obj)
{
	if (!IS_ENABLED(CONFIG_MM_SLAB_LAZY))
		return 0;
	return (uintptr_t)obj - ((uintptr_t)s + c->first) >=
	       (uintptr_t)slab_fresh(c, s) * c->size;
}

/* The page object idx starts on, as an index into its slab's pages. */
static __always_inline unsigned int slab_obj_page(const struct kmem_cache *c, unsigned int idx)
{
	return (unsigned int)((c->first + (size_t)idx * c->size) >> MM_PAGE_SHIFT);
}

/*
 * kmalloc class indices: 2^i bytes at i, 96 and 192 at 1 and 2, and the
 * fine classes (CONFIG_MM_KMALLOC_FINE: the quarter steps from 64 bytes
 * that are neither 96 nor 192 -- 80, 112, 160, 224, then 5/4, 6/4 and 7/4
 * of 256 -- four classes fitted to their slabs inside each doubling from
 * 512 bytes to 4 KiB, and 5/4, 6/4 and 7/4 again from 4 KiB; kmalloc.c)
 * after CONFIG_MM_KMALLOC_SHIFT_HIGH.  Index 0 is no class: a cache whose
 * kmalloc_idx is 0 is not a kmalloc cache.
 */
#define KMALLOC_NR_FINE_4K	19	/* up to 4 KiB, 11 up to 1 KiB, 15 up to 2 */
#if IS_ENABLED(CONFIG_MM_KMALLOC_FINE)
#define KMALLOC_NR_FINE		(CONFIG_MM_KMALLOC_SHIFT_HIGH >= 12 ?			\
				 KMALLOC_NR_FINE_4K + 3 * (CONFIG_MM_KMALLOC_SHIFT_HIGH - 12) : \
				 CONFIG_MM_KMALLOC_SHIFT_HIGH == 11 ? 15 : 11)
#else
#define KMALLOC_NR_FINE		0
#endif
#if IS_ENABLED(CONFIG_MM_KMALLOC)
#define KMALLOC_NR_CLASSES	(CONFIG_MM_KMALLOC_SHIFT_HIGH + 1 + KMALLOC_NR_FINE)
#else
#define KMALLOC_NR_CLASSES	0	/* kmem_cache_create() caches only */
#endif
/*
 * Class bytes past the classes: the heap's (KMALLOC_HEAP_CLASS, heap.h)
 * and that of a kmalloc slab's page where objects never handed out start
 * (slab.c, slab_move_fresh()).  Both send kfree() the slow way.
 */
#define KMALLOC_FRESH_CLASS	(KMALLOC_NR_CLASSES + 1)
#define KMALLOC_NR_CLASS_BYTES	(KMALLOC_NR_CLASSES + 2)

/*
 * The cache of the descriptors themselves (slab.c), on the default arena:
 * kfree() and ksize() of an object of any cache there but this one.
 */
extern MM_INTERNAL struct kmem_cache kmem_cache_boot;

/* The kmalloc cache of class index i (kmalloc.c). */
struct kmem_cache *kmalloc_cache_index(unsigned int i);

/* Free an object whose slab is known; lock held; checks done by the caller. */
void __slab_free_locked(struct kmem_cache *c, struct slab *s, void *obj);
void *__slab_alloc_bounded(struct kmem_cache *c);
int __slab_freelist_contains(struct kmem_cache *c, struct slab *s, const void *obj);
int __slab_is_obj(const struct kmem_cache *c, const void *obj);
unsigned int __slab_alloc_bulk(struct kmem_cache *c, void **objs, unsigned int n);

/*
 * CONFIG_MM_FREE_MARK: an object that was handed out and freed carries
 * mm_free_mark in the word after its free pointer -- on a slab's free list
 * and in a magazine alike -- and a live one never does: it is cleared where
 * an object is handed out (percpu.c marks the objects a magazine takes
 * fresh from their slab as it takes them).  A free that finds the
 * mark is probably a double free, which the free lists and magazines
 * confirm (slab.c, percpu.c).  The mark is odd, so no aligned pointer a
 * program stores there looks like it.
 */
#if IS_ENABLED(CONFIG_MM_FREE_MARK)
extern uintptr_t mm_free_mark MM_INTERNAL;
#else
#define mm_free_mark ((uintptr_t)0)
#endif

static __always_inline uintptr_t *obj_mark(const struct kmem_cache *c, void *obj)
{
	return (uintptr_t *)((uintptr_t)obj + c->offset + sizeof(void *));
}

static __always_inline void obj_set_free(const struct kmem_cache *c, void *obj)
{
	if (IS_ENABLED(CONFIG_MM_FREE_MARK))
		*obj_mark(c, obj) = mm_free_mark;
}

static __always_inline void obj_set_live(const struct kmem_cache *c, void *obj)
{
	if (IS_ENABLED(CONFIG_MM_FREE_MARK))
		*obj_mark(c, obj) = 0;
}

static __always_inline int obj_marked_free(const struct kmem_cache *c, const void *obj)
{
	return IS_ENABLED(CONFIG_MM_FREE_MARK) && *obj_mark(c, (void *)obj) == mm_free_mark;
}

/*
 * The fast paths, inline for slab.c, kmalloc.c and percpu.c; lock held.
 * With CONFIG_MM_CHECKS free pointers are stored as (next ^ cache random ^
 * slot address), see slab.c.
 */
static __always_inline uintptr_t freeptr_encode(const struct kmem_cache *c, void *ptr,
						uintptr_t slot)
{
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		return (uintptr_t)ptr ^ c->random ^ slot;
	return (uintptr_t)ptr;
}

static __always_inline void *get_freepointer(const struct kmem_cache *c, void *obj)
{
	uintptr_t slot = (uintptr_t)obj + c->offset;

	return (void *)freeptr_encode(c, (void *)*(uintptr_t *)slot, slot);
}

static __always_inline void set_freepointer(const struct kmem_cache *c, void *obj, void *next)
{
	uintptr_t slot = (uintptr_t)obj + c->offset;

	*(uintptr_t *)slot = freeptr_encode(c, next, slot);
}

/* Is p inside the object area of s (not necessarily an object start)? */
static __always_inline int in_slab_objects(const struct kmem_cache *c, struct slab *s, const void *p)
{
	uintptr_t off = (uintptr_t)p - ((uintptr_t)s + c->first);

	return off < (uintptr_t)c->objs * c->size;
}

/*
 * Does obj look free -- its mark, or with CONFIG_MM_CHECKS a free-pointer
 * slot that holds what a free object's would (NULL or an object of the
 * slab, once decoded)?  Then obj is probably free already, a double free,
 * which its slab's free list confirms.
 */
static __always_inline int slab_maybe_free(const struct kmem_cache *c,
					   const struct slab *s, void *obj)
{
	void *fp;

	if (!IS_ENABLED(CONFIG_MM_CHECKS))
		return obj_marked_free(c, obj);
	fp = get_freepointer(c, obj);
	return !fp || in_slab_objects(c, (struct slab *)s, fp);
}

void *__slab_alloc_slow(struct kmem_cache *c);
void *__slab_bad_freepointer(struct kmem_cache *c, struct slab *s, void *obj, void *next);
void __slab_free_slow(struct kmem_cache *c, struct slab *s);

/*
 * Pop the cache's free list -- the active slab's free objects, as SLUB's
 * per-CPU freelist -- or NULL when it is empty: __slab_alloc_slow() then
 * retires the slab and activates another.  No slab counter is touched.
 * The object is left as it was on the list: still free, for a magazine
 * (__slab_alloc_bulk()); slab_alloc_fast() hands it out.
 */
static __hot_inline void *slab_pop(struct kmem_cache *c)
{
	void *obj = c->cpu_freelist, *next;

	if (unlikely(!obj))
		return NULL;
	next = get_freepointer(c, obj);
	if (IS_ENABLED(CONFIG_MM_CHECKS) && unlikely(next && !in_slab_objects(c, c->cpu_slab, next)))
		next = __slab_bad_freepointer(c, c->cpu_slab, obj, next);
	VM_BUG_ON(obj_to_slab(c, obj) != c->cpu_slab);
	c->cpu_freelist = next;
	return obj;
}

static __hot_inline void *slab_alloc_fast(struct kmem_cache *c)
{
	void *obj = slab_pop(c);

	if (unlikely(!obj))
		return NULL;
	/* A live object never carries a stale encoded pointer, nor the mark. */
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		*(uintptr_t *)((uintptr_t)obj + c->offset) = 0;
	obj_set_live(c, obj);
	return obj;
}

/*
 * An object of the active slab goes back on the cache's free list; any
 * other onto its slab's own, where one comparison catches both list moves:
 * inuse - 1 >= objs - 2 (unsigned) exactly when the slab is now empty
 * (inuse 0) or was full (inuse objs - 1).
 */
static __hot_inline void slab_free_fast(struct kmem_cache *c, struct slab *s, void *obj)
{
	unsigned int inuse;

	obj_set_free(c, obj);
	if (likely(s == c->cpu_slab)) {
		set_freepointer(c, obj, c->cpu_freelist);
		c->cpu_freelist = obj;
		return;
	}
	VM_BUG_ON(s->inuse == 0 || s->cache != c);
	set_freepointer(c, obj, s->freelist);
	s->freelist = obj;
	inuse = --s->inuse;
	if (unlikely(inuse - 1 >= c->objs - 2))
		__slab_free_slow(c, s);
}
/*
 * May obj be freed into c?  Reports foreign pointers, objects of another
 * cache, pointers into an object and double frees, and says no; lock held.
 * slab_free_ok() on every free with CONFIG_MM_CHECKS; slab_free_checked()
 * with CONFIG_MM_FREE_MARK too, for the frees slab_free_suspect() picks
 * out.  With neither option, always yes and no code.
 */
#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)
int __slab_check_free(struct kmem_cache *c, struct slab *s, const void *obj,
		      const char *caller);

static __always_inline int slab_free_checked(struct kmem_cache *c, struct slab *s,
					     const void *obj, const char *caller)
{
	return likely(__slab_check_free(c, s, obj, caller) == 0);
}
#else
static __always_inline int slab_free_checked(struct kmem_cache *c, struct slab *s,
					     const void *obj, const char *caller)
{
	return 1;
}
#endif

static __always_inline int slab_free_ok(struct kmem_cache *c, struct slab *s,
					const void *obj, const char *caller)
{
	return !IS_ENABLED(CONFIG_MM_CHECKS) || slab_free_checked(c, s, obj, caller);
}

/*
 * CONFIG_MM_FREE_MARK without the checks, on the locked paths: is obj not
 * an object's start, or marked free?  Then the caller frees it out of
 * line, the checked way; every other free costs these two tests and stays
 * a leaf.  (The magazines make the same two: percpu.h.)
 */
static __always_inline int slab_free_suspect(const struct kmem_cache *c, const void *obj)
{
	if (!IS_ENABLED(CONFIG_MM_FREE_MARK))
		return 0;
	return unlikely(!slab_is_obj_start(c, obj)) ||
	       unlikely(obj_marked_free(c, obj));
}

#endif /* MM_SLAB_INTERNAL_H */
