/* SPDX-License-Identifier: MIT */
/*
 * Per-thread object caches in front of the kmalloc classes
 * (CONFIG_MM_PERCPU_CACHE): the inline fast paths, and empty stubs without
 * the option, so kmalloc.h reads the same either way.
 */
#ifndef MM_PERCPU_H
#define MM_PERCPU_H

#include "slab.h"

#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)

#define MAG_SIZE 64

/*
 * A magazine's count and capacity; its objects are in the thread's
 * objs[][] (below), so that setting a thread up writes one line of
 * counts, not a page per eight classes.  cap is 0 until the thread has
 * its cache, so the one 'count >= cap' test of the free fast path also
 * sends a thread's first free to the slow path.  mag[0] is no class's and
 * keeps cap 0: caches that are not kmalloc's have kmalloc_idx 0, so that
 * same test sends their objects the slow way too.
 */
struct magazine {
	unsigned int count;
	uint16_t cap;
	uint8_t refilled;		/* refilled since the last flush */
	uint8_t unused;
};

/*
 * A thread's cache: the counts here, then MAG_SIZE object slots per
 * class (percpu_objs(); 64 slots make a class's array 512 bytes, its
 * index a shift).  It is taken from the default arena at the thread's
 * first refill or flush and given back when the thread exits; until then
 * the thread's pointer names a shared empty one whose caps are all 0, so
 * the fast paths test nothing more than the counts: a thread that never
 * allocates costs 8 bytes of TLS, not a magazine per class of zeroed TLS
 * (glibc clears a module's TLS block for every new thread), and classes a
 * thread does not use are never touched.
 */
struct percpu_cache {
	uintptr_t key;			/* marks objects in a magazine (checks) */
	struct percpu_cache *next_live;	/* every thread's, for the checks or marks */
	/* And the class bytes past the classes (slab.h), always of capacity 0. */
	struct magazine mag[KMALLOC_NR_CLASS_BYTES];
} __attribute__((aligned(64)));

/*
 * With CONFIG_MM_CHECKS an object in a magazine carries its thread's key
 * in its first word: the cache's address, salted.  A word that unsalts to
 * a cache's alignment may be any thread's key, and a free that finds one
 * goes the slow way to look for the object in that thread's magazine
 * (percpu.c): a double free is caught whichever thread's magazine holds
 * the object.  An aligned pointer never looks like a key; one word in 64
 * does (the number 42, a string that starts with '*' or 'j'), and its free
 * takes the slow way to find it in no magazine -- time, never a report.
 */
#define PERCPU_KEY_SALT	((uintptr_t)0x6d6d2d6d61672aULL)

static __always_inline int percpu_key_like(uintptr_t word)
{
	return ((word ^ PERCPU_KEY_SALT) & (__alignof__(struct percpu_cache) - 1)) == 0;
}

/*
 * Is the page block at p a thread's cache?  Its first word is its key, its
 * own address salted, which no page block of a program's holds by chance:
 * what a bad free's report uses to say what the pointer names.
 */
static inline int percpu_is_cache(const void *p)
{
	return *(const uintptr_t *)p == ((uintptr_t)p ^ PERCPU_KEY_SALT);
}

extern __thread struct percpu_cache *mm_tcache MM_INTERNAL
	__attribute__((tls_model("initial-exec")));

void *percpu_refill(struct kmem_cache *c);
int percpu_free_slow(struct kmem_cache *c, struct slab *s, void *obj);

/*
 * A refill or a flush ages the direct mappings kept on probation
 * (kmalloc.c): one load while none is.  The magazines are kmalloc's, and
 * their batches are the cheapest sign that the program went on working.
 */
#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP)
extern MM_INTERNAL unsigned int kmalloc_huge_probation;
void __kmalloc_huge_age(void);

static inline void kmalloc_huge_tick(void)
{
	if (unlikely(__atomic_load_n(&kmalloc_huge_probation, __ATOMIC_RELAXED)))
		__kmalloc_huge_age();
}
#else
static inline void kmalloc_huge_tick(void)
{
}
#endif

const char *percpu_holding(struct kmem_cache *c, const void *obj);
void percpu_init(void);
unsigned int percpu_mag_cap(const struct kmem_cache *c);
unsigned int percpu_mag_refill(const struct kmem_cache *c);

static __always_inline struct percpu_cache *percpu_this(void)
{
	return mm_tcache;
}

/* The object slots of class idx, after the counts. */
static __always_inline void **percpu_objs(struct percpu_cache *pc, unsigned int idx)
{
	return (void **)(pc + 1) + (size_t)idx * MAG_SIZE;
}

static __always_inline struct magazine *percpu_mag(const struct kmem_cache *c)
{
	return &percpu_this()->mag[c->kmalloc_idx];
}

/*
 * CONFIG_MM_FREE_MARK (slab.h): a kmalloc object, which has no constructor,
 * keeps its free pointer in its first word and its mark in the second (a
 * class of one word gets a stride of two: calculate_sizes()).
 */

static __always_inline uintptr_t *mag_obj_mark(void *obj)
{
	return (uintptr_t *)obj + 1;
}

/* Pop m, magazine idx of pc, which the caller found not empty. */
static __always_inline void *percpu_pop(struct percpu_cache *pc, struct magazine *m,
					unsigned int idx)
{
	void *obj = percpu_objs(pc, idx)[--m->count];

	if (IS_ENABLED(CONFIG_MM_CHECKS))
		*(uintptr_t *)obj = 0;		/* the magazine key */
	if (IS_ENABLED(CONFIG_MM_FREE_MARK))
		*mag_obj_mark(obj) = 0;
	return obj;
}

/* Pop this thread's magazine; refill (a batch, under the lock) when empty. */
static inline void *percpu_alloc(struct kmem_cache *c)
{
	struct percpu_cache *pc = percpu_this();
	unsigned int idx = c->kmalloc_idx;
	struct magazine *m = &pc->mag[idx];

	if (unlikely(!m->count))
		return percpu_refill(c);
	return percpu_pop(pc, m, idx);
}

/*
 * Push onto magazine idx of pc if it has room and the cheap checks pass:
 * 1 if taken, 0 to go the slow way (percpu_free()), where any doubt is
 * settled.  Calls nothing, so the fast paths built on it stay leaves.
 */
static __always_inline int percpu_free_try(struct percpu_cache *pc, unsigned int idx,
					   struct kmem_cache *c, struct slab *s, void *obj)
{
	struct magazine *m = &pc->mag[idx];

	if (unlikely(m->count >= m->cap))
		return 0;
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		/*
		 * An object start, not marked as in a thread's magazine,
		 * no plausible slab free pointer, handed out at some time.
		 */
		if (unlikely(!slab_is_obj_start(c, obj)) ||
		    unlikely(percpu_key_like(*(uintptr_t *)obj)) ||
		    unlikely(slab_maybe_free(c, s, obj)) ||
		    unlikely(slab_obj_fresh(c, s, obj)))
			return 0;
		*(uintptr_t *)obj = pc->key;
	} else if (IS_ENABLED(CONFIG_MM_FREE_MARK)) {
		/* An object's start, and not marked free already. */
		if (unlikely(!slab_is_obj_start(c, obj)) ||
		    unlikely(*mag_obj_mark(obj) == mm_free_mark))
			return 0;
		*mag_obj_mark(obj) = mm_free_mark;
	}
	percpu_objs(pc, idx)[m->count++] = obj;
	return 1;
}

/*
 * Push onto this thread's magazine: 1 if taken, 0 if the caller must free
 * it the locked way (where the checks run in full).
 */
static inline int percpu_free(struct kmem_cache *c, struct slab *s, void *obj)
{
	return percpu_free_try(percpu_this(), c->kmalloc_idx, c, s, obj) ||
	       percpu_free_slow(c, s, obj);
}

#else
struct magazine {
	unsigned int count;
};

struct percpu_cache {
	struct magazine mag[1];
};

static inline struct percpu_cache *percpu_this(void)
{
	return NULL;
}

static inline struct magazine *percpu_mag(const struct kmem_cache *c)
{
	return NULL;
}

static inline void *percpu_pop(struct percpu_cache *pc, struct magazine *m,
			       unsigned int idx)
{
	return NULL;
}

static inline void *percpu_alloc(struct kmem_cache *c)
{
	return NULL;
}

static inline int percpu_free_try(struct percpu_cache *pc, unsigned int idx,
				  struct kmem_cache *c, struct slab *s, void *obj)
{
	return 0;
}

static inline int percpu_free(struct kmem_cache *c, struct slab *s, void *obj)
{
	return 0;
}

static inline void percpu_init(void)
{
}

static inline unsigned int percpu_mag_cap(const struct kmem_cache *c)
{
	return 0;
}

static inline unsigned int percpu_mag_refill(const struct kmem_cache *c)
{
	return 0;
}

static inline int percpu_key_like(uintptr_t word)
{
	return 0;
}

static inline int percpu_is_cache(const void *p)
{
	return 0;
}

static inline const char *percpu_holding(struct kmem_cache *c, const void *obj)
{
	return NULL;
}
#endif

#endif /* MM_PERCPU_H */
