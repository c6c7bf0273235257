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

#define MAG_SIZE 63

/*
 * cap is this thread's capacity for the class: 0 until the thread has
 * registered for its exit flush, so the one 'count >= cap' test of the
 * free fast path also sends a thread's first free to the slow path.
 * mag[0] is no class's and keeps cap 0: caches that are not kmalloc's have
 * kmalloc_idx 0, so that same test sends their objects the slow way too.
 * 63 objects make a magazine 512 bytes, an index a shift.
 */
struct magazine {
	unsigned int count;
	uint16_t cap;
	uint8_t refilled;		/* refilled since the last flush */
	uint8_t unused;
	void *objs[MAG_SIZE];
};
static_assert(sizeof(struct magazine) == 8 + MAG_SIZE * sizeof(void *),
	      "a magazine is its count, its cap and its objects");

struct percpu_cache {
	struct magazine mag[KMALLOC_NR_CLASSES];
	uintptr_t key;			/* marks objects in a magazine (checks) */
	int registered;
};

extern __thread struct percpu_cache mm_tcache MM_INTERNAL
	__attribute__((tls_model("initial-exec")));

void *percpu_refill(struct kmem_cache *c);
int percpu_free_slow(struct kmem_cache *c, struct slab *s, void *obj);
void percpu_init(void);
unsigned int percpu_mag_cap(const struct kmem_cache *c);
unsigned int percpu_mag_refill(const struct kmem_cache *c);

static __always_inline struct magazine *percpu_mag_idx(unsigned int idx)
{
	return &mm_tcache.mag[idx];
}

static __always_inline struct magazine *percpu_mag(const struct kmem_cache *c)
{
	return percpu_mag_idx(c->kmalloc_idx);
}

/* Pop a magazine the caller found not empty. */
static __always_inline void *percpu_pop(struct magazine *m)
{
	void *obj = m->objs[--m->count];

	if (IS_ENABLED(CONFIG_MM_CHECKS))
		*(uintptr_t *)obj = 0;		/* the magazine key */
	return obj;
}

/* Pop this thread's magazine; refill (a batch, under the lock) when empty. */
static inline void *percpu_alloc(struct kmem_cache *c)
{
	struct magazine *m = percpu_mag(c);

	if (unlikely(!m->count))
		return percpu_refill(c);
	return percpu_pop(m);
}

/*
 * Push onto this thread's magazine if it has room and the cheap checks
 * pass: 1 if taken, 0 to go the slow way (percpu_free()), where any doubt
 * is settled.  Calls nothing, so the fast paths built on it stay leaves.
 */
static __always_inline int percpu_free_try(struct magazine *m, struct kmem_cache *c,
					   struct slab *s, void *obj)
{
	if (unlikely(m->count >= m->cap))
		return 0;
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		/*
		 * An object start, not marked as in this thread's magazine,
		 * no plausible slab free pointer, handed out at some time.
		 */
		if (unlikely(!slab_obj_aligned(c, s, obj)) ||
		    unlikely(*(uintptr_t *)obj == mm_tcache.key) ||
		    unlikely(slab_maybe_free(c, s, obj)) ||
		    unlikely(slab_obj_fresh(c, s, obj)))
			return 0;
		*(uintptr_t *)obj = mm_tcache.key;
	}
	m->objs[m->count++] = obj;
	return 1;
}

/*
 * Push onto this thread's magazine: 1 if taken, 0 if the caller must free
 * it the locked way (where the checks run in full).
 */
static inline int percpu_free(struct kmem_cache *c, struct slab *s, void *obj)
{
	return percpu_free_try(percpu_mag(c), c, s, obj) || percpu_free_slow(c, s, obj);
}

#else
struct magazine {
	unsigned int count;
};

static inline struct magazine *percpu_mag_idx(unsigned int idx)
{
	return NULL;
}

static inline struct magazine *percpu_mag(const struct kmem_cache *c)
{
	return NULL;
}

static inline void *percpu_pop(struct magazine *m)
{
	return NULL;
}

static inline void *percpu_alloc(struct kmem_cache *c)
{
	return NULL;
}

static inline int percpu_free_try(struct magazine *m, struct kmem_cache *c,
				  struct slab *s, void *obj)
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
#endif

#endif /* MM_PERCPU_H */
