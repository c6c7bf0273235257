// SPDX-License-Identifier: MIT
/*
 * The smallest program that uses what an embedded application uses -- a
 * slab cache, kmalloc/kfree, and malloc/free where the facade is built --
 * linked with --gc-sections and no C library start-up, so the size of the
 * result is what mm costs in flash (see 'make footprint').  Never run.
 */
#include <mm/mm.h>
#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
#include <stdlib.h>
#endif

void footprint_main(void);

static volatile uintptr_t sink;

void footprint_main(void)
{
	struct kmem_cache *c = kmem_cache_create("obj", 24, 0, 0, NULL);
	void *o = kmem_cache_alloc(c);
	void *p = kmalloc(40);

	sink = (uintptr_t)o ^ (uintptr_t)p;
	kfree(p);
	kmem_cache_free(c, o);
#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
	p = malloc(100);
	p = realloc(p, 200);
	sink ^= (uintptr_t)p;
	free(p);
	sink ^= (uintptr_t)calloc(4, 4);
#elif IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
	p = mm_malloc(100);
	sink ^= (uintptr_t)p;
	mm_free(p);
#endif
	for (;;)
		;
}
