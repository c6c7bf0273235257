/* SPDX-License-Identifier: MIT */
/*
 * Per-thread object caches in front of the kmalloc classes
 * (CONFIG_MM_PERCPU_CACHE), and empty stubs without them, so kmalloc.c
 * reads the same either way.
 */
#ifndef MM_PERCPU_H
#define MM_PERCPU_H

#include "slab.h"

#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
void *percpu_alloc(struct kmem_cache *c);
int percpu_free(struct kmem_cache *c, struct slab *s, void *obj);
void percpu_init(void);
unsigned int percpu_mag_cap(const struct kmem_cache *c);
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
