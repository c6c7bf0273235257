// SPDX-License-Identifier: MIT
/*
 * The tiny core's kmalloc (CONFIG_MM_TINY): power-of-two classes from
 * KMALLOC_MIN_SIZE to KMALLOC_MAX_CACHE_SIZE (at most half the largest
 * block, tiny.h), whole buddy blocks above.
 *
 * The classes' struct kmem_cache array sits behind the page metadata
 * (tiny.h), so the static RAM of the library stays the arena struct
 * alone.  The class of a size is one count of leading zeros; the class of
 * a pointer is its slab's, found through the metadata byte, so kfree()
 * and ksize() need no size and tell a foreign pointer from ours.
 *
 * Every object of a class of 2^k bytes is aligned to 2^k (the slab starts
 * at a buddy block aligned to its size, tiny.h), and a large block to its
 * own size: kmalloc_aligned() is kmalloc() of max(size, align).
 */
#include <string.h>
#include "tiny.h"

static_assert(CONFIG_MM_KMALLOC_SHIFT_LOW >= 3, "a free object holds a pointer");

#if IS_ENABLED(CONFIG_ARCH_HOST) && (IS_ENABLED(CONFIG_MM_LOCK_PTHREAD) || IS_ENABLED(CONFIG_MM_LOCK_SPIN))
#include <pthread.h>

/*
 * fork() in a threaded host program: the arena lock is held across it, so
 * the child never inherits a lock another thread held mid-update.  (MCU
 * locks mask interrupts; there is no fork to survive.)  The mutex itself,
 * not arena_lock(), which skips it while the process is single-threaded:
 * see arena.c's fork handlers.
 */
static mm_flags_t fork_flags;

static void fork_prepare(void)
{
	fork_flags = mm_lock_raw(&mm_arena_default.lock);
}

static void fork_parent(void)
{
	mm_unlock_raw(&mm_arena_default.lock, fork_flags);
}

static void fork_child(void)
{
	mm_lock_init(&mm_arena_default.lock);
}

/*
 * At load time, as the full core's (arena.c): registered at the arena's
 * setup, with its lock held, a fork in another thread during that setup
 * left its child the lock held by a thread it did not have, and the
 * registration waited for glibc's atfork lock with the arena lock held
 * while that fork's prepare handlers -- another library's, allocating --
 * waited for the arena lock.
 */
__attribute__((constructor)) static void register_atfork(void)
{
	arch_atfork(fork_prepare, fork_parent, fork_child);
}
#endif

/*
 * The default arena, the tiny core's only one, is set up on first use
 * together with kmalloc's classes: one path for both, and the published
 * class array is what says it is ready.  NULL if the region is too small.
 */
struct mm_arena *mm_default_arena(void)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags;

	if (likely(read_published(&a->kmalloc)))
		return a;
	flags = arena_lock(a);
	if (!a->kmalloc && !__arena_setup(a)) {
		struct kmem_cache *k = tiny_classes(a);

		for (unsigned int i = 0; i < TINY_NR_CLASSES; i++)
			__cache_init(a, &k[i], KMALLOC_MIN_SIZE << i, 0);
		publish(&a->kmalloc, k);
	}
	arena_unlock(a, flags);
	return a->kmalloc ? a : NULL;
}

/* 1 <= size <= KMALLOC_MAX_CACHE_SIZE (0 counts as 1). */
static inline unsigned int size_index(size_t size)
{
	if (size <= KMALLOC_MIN_SIZE)
		return 0;
	return fls((unsigned int)(size - 1)) - CONFIG_MM_KMALLOC_SHIFT_LOW;
}

struct kmem_cache *kmalloc_slab(size_t size)
{
	struct mm_arena *a = mm_default_arena();

	if (!a || size > KMALLOC_MAX_CACHE_SIZE)
		return NULL;
	return a->kmalloc + size_index(size);
}

void *kmalloc(size_t size)
{
	struct kmem_cache *c = kmalloc_slab(size);
	struct mm_arena *a;
	mm_flags_t flags;
	void *p;

	if (c)
		return kmem_cache_alloc(c);
	a = mm_default_arena();
	if (!a || size <= KMALLOC_MAX_CACHE_SIZE)
		return NULL;		/* no arena */
	flags = arena_lock(a);
	p = __alloc_pages_locked(a, get_order(size), PT_LARGE);
	arena_unlock(a, flags);
	return p;
}

/*
 * kfree() and ksize() in one: the lookup is the same, and a size-first
 * core would rather not carry it twice.  A slab object anywhere in its
 * slab, or a large block from its first byte; anything else is not ours.
 */
static size_t kmalloc_put(const void *p, int free)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags = arena_lock(a);
	uint8_t *m = __block_head(a, p);
	unsigned int type = m ? meta_type(*m) : PT_TAIL;
	unsigned int order = m ? meta_order(*m) : 0;
	uintptr_t head = m ? meta_pfn(a, m) : 0;
	size_t n = 0;

	if (type == PT_SLAB) {
		struct slab *s = slab_of(head, order);

		n = s->cache->size;
		if (free)
			__slab_free(a, s, (void *)p, "kfree");
		else if (__slab_bad_free(s, p))		/* a freed object has no size */
			n = 0;
	} else if (type == PT_LARGE && pfn_to_addr(head) == p) {
		n = MM_PAGE_SIZE << order;
		if (free)
			__free_pages_locked(a, head, order);
	} else if (free && p) {
		mm_report_bug(a, "kfree", "%p was not allocated by kmalloc", p);
	}
	arena_unlock(a, flags);
	return n;
}

void kfree(const void *p)
{
	kmalloc_put(p, 1);
}

size_t ksize(const void *p)
{
	return kmalloc_put(p, 0);
}

/*
 * The same block while it still fits, as realloc() must -- however much
 * smaller the new size: moving a block shrunk to half its class, as the
 * full core does (krealloc_shrinks_away() in kmalloc.h), would cost this
 * core 12 bytes of its 2 KiB (32 with the promise that a shrink never
 * fails).  Nothing here can fail a shrink.  With the checks a pointer
 * that is no block (ksize() 0, a freed object too) fails: kfree() reports
 * it, and nothing is handed out or copied.  Without them such a pointer
 * is still reported, by the kfree() after the copy of nothing.  Size 0
 * frees p and returns NULL, and krealloc(NULL, 0) is kmalloc(0), as in
 * the full core.
 */
void *krealloc(void *p, size_t size)
{
	size_t old = ksize(p);
	void *q;

	if (size && size <= old)
		return p;
	if (p && (!size || (IS_ENABLED(CONFIG_MM_CHECKS) && !old))) {
		kfree(p);
		return NULL;
	}
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
