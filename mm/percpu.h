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
 * cap is this thread's capacity for the class: 0 until the thread has
 * registered for its exit flush, so the one 'count >= cap' test of the
 * free fast path also sends a thread's first free to the slow path.
 */
struct magazine {
	unsigned int count;
	unsigned int cap;
	void *objs[MAG_SIZE];
};

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

/* Pop this thread's magazine; refill (a batch, under the lock) when empty. */
static __hot_inline void *percpu_alloc(struct kmem_cache *c)
{
	struct magazine *m = &mm_tcache.mag[c->kmalloc_idx];
	void *obj;

	if (unlikely(!m->count))
		return percpu_refill(c);
	obj = m->objs[--m->count];
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		*(uintptr_t *)obj = 0;		/* the magazine key */
	return obj;
}

/*
 * Push onto this thread's magazine: 1 if taken, 0 if the caller must free
 * it the locked way (where the checks run in full).
 */
static __hot_inline int percpu_free(struct kmem_cache *c, struct slab *s, void *obj)
{
	struct magazine *m = &mm_tcache.mag[c->kmalloc_idx];

	if (unlikely(m->count >= m->cap))
		return percpu_free_slow(c, s, obj);
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		/*
		 * The cheap checks inline: an object start, not marked as in
		 * this thread's magazine, no plausible slab free pointer.  Any
		 * doubt goes out of line, where it is settled.
		 */
		if (unlikely(!slab_obj_aligned(c, s, obj)) ||
		    unlikely(*(uintptr_t *)obj == mm_tcache.key) ||
		    unlikely(slab_maybe_free(c, s, obj)))
			return percpu_free_slow(c, s, obj);
		*(uintptr_t *)obj = mm_tcache.key;
	}
	m->objs[m->count++] = obj;
	return 1;
}

#else
static inline void *percpu_alloc(struct kmem_cache *c)
{
	return NULL;
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
#endif

#endif /* MM_PERCPU_H */
