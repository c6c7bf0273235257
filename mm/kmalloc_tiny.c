// SPDX-License-Identifier: MIT
/*
 * The tiny core's kmalloc (CONFIG_MM_TINY): power-of-two classes from
 * KMALLOC_MIN_SIZE to KMALLOC_MAX_CACHE_SIZE, whole buddy blocks above.
 *
 * The classes' struct kmem_cache array is the first thing kmalloc takes
 * from the buddy allocator, so the static RAM of the library stays the
 * arena struct alone.  The class of a size is one count of leading zeros;
 * the class of a pointer is its slab's, found through the metadata byte,
 * so kfree() and ksize() need no size and tell a foreign pointer from ours.
 *
 * Every object of a class of 2^k bytes is aligned to 2^k (the slab starts
 * at a buddy block aligned to its size, tiny.h), and a large block to its
 * own size: kmalloc_aligned() is kmalloc() of max(size, align).
 */
#include <string.h>
#include "tiny.h"

#define NR_CLASSES (CONFIG_MM_KMALLOC_SHIFT_HIGH - CONFIG_MM_KMALLOC_SHIFT_LOW + 1)

static_assert(CONFIG_MM_KMALLOC_SHIFT_LOW >= 3, "a free object holds a pointer");

/* First use: the arena, then the class array.  NULL if there is no memory. */
static __noinline struct kmem_cache *kmalloc_setup(struct mm_arena *a)
{
	mm_flags_t flags = arena_lock(a);
	struct kmem_cache *k = a->kmalloc;

	if (!k && !__arena_setup(a)) {
		k = __alloc_pages_locked(a, get_order(NR_CLASSES * sizeof(*k)), PT_PAGES);
		if (k) {
			memset(k, 0, NR_CLASSES * sizeof(*k));
			for (unsigned int i = 0; i < NR_CLASSES; i++)
				__cache_init(a, &k[i], KMALLOC_MIN_SIZE << i, 0);
		}
		publish(&a->kmalloc, k);
	}
	arena_unlock(a, flags);
	return k;
}

struct kmem_cache *kmalloc_slab(size_t size)
{
	struct mm_arena *a = &mm_arena_default;
	struct kmem_cache *k = read_published(&a->kmalloc);

	if (unlikely(!k))
		k = kmalloc_setup(a);
	if (!k || size > KMALLOC_MAX_CACHE_SIZE)
		return NULL;
	if (size <= KMALLOC_MIN_SIZE)
		return k;
	return k + fls((unsigned int)(size - 1)) - CONFIG_MM_KMALLOC_SHIFT_LOW;
}

void *kmalloc(size_t size)
{
	struct mm_arena *a = &mm_arena_default;
	struct kmem_cache *c = kmalloc_slab(size);
	mm_flags_t flags;
	void *p;

	if (c)
		return kmem_cache_alloc(c);
	if (!kmalloc_slab(0))
		return NULL;		/* no arena */
	flags = arena_lock(a);
	p = __alloc_pages_locked(a, get_order(size), PT_LARGE);
	arena_unlock(a, flags);
	return p;
}

/* The head byte of p's slab, or of the large block that starts at p; or NULL. */
static uint8_t *kmalloc_head(struct mm_arena *a, const void *p)
{
	uint8_t *m = __block_head(a, p);

	if (m && meta_type(*m) == PT_SLAB)
		return m;
	return __block_at(a, p, PT_LARGE);
}

void kfree(const void *p)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags;
	uint8_t *m;

	if (!p)
		return;
	flags = arena_lock(a);
	m = kmalloc_head(a, p);
	if (!m)
		mm_report_bug(a, "kfree", "%p was not allocated by kmalloc", p);
	else if (meta_type(*m) == PT_SLAB)
		__slab_free(a, slab_of(meta_pfn(a, m), meta_order(*m)), (void *)p, "kfree");
	else
		__free_pages_locked(a, meta_pfn(a, m), meta_order(*m));
	arena_unlock(a, flags);
}

/*
 * No lock: for a live object the walk reads only its own block's bytes,
 * which nobody changes while it is allocated.
 */
size_t ksize(const void *p)
{
	struct mm_arena *a = &mm_arena_default;
	uint8_t *m = p ? kmalloc_head(a, p) : NULL;

	if (!m)
		return 0;
	if (meta_type(*m) == PT_SLAB)
		return slab_of(meta_pfn(a, m), meta_order(*m))->cache->size;
	return MM_PAGE_SIZE << meta_order(*m);
}

/* The same block while it still fits, as realloc() must. */
void *krealloc(void *p, size_t size)
{
	size_t old = ksize(p);
	void *q;

	if (old && size <= old)
		return p;
	q = kmalloc(size);
	if (q && p) {
		memcpy(q, p, old);
		kfree(p);
	}
	return q;
}

void *kmalloc_aligned(size_t size, size_t align)
{
	return kmalloc(size > align ? size : align);
}
