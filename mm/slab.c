// SPDX-License-Identifier: MIT
/*
 * Slab caches (Bonwick 1994; Linux's SLUB).
 *
 * One slab is active, as SLUB's per-CPU slab: its free objects are on the
 * cache's own free list (cpu_freelist), so allocating pops that list and
 * freeing an object of the active slab pushes onto it, touching no slab
 * counter and no list.  While active a slab is on no list and its inuse
 * says all its objects are taken; when it is retired, its remaining free
 * objects go back to its own free list and inuse is settled.  The other
 * slabs are on three lists, partial, full and empty, and move between them
 * only when they fill up, stop being full, or empty; an empty slab goes to
 * the empty list, which keeps at most CONFIG_MM_SLAB_MAX_EMPTY (none for a
 * kmalloc class behind magazines) before pages go back to the buddy
 * allocator.
 *
 * Free pointers are stored inside the free objects.  With CONFIG_MM_CHECKS
 * they are stored as (next ^ cache random ^ slot address), as Linux's
 * CONFIG_SLAB_FREELIST_HARDENED does: a stray write into a free object no
 * longer redirects the allocator to an address of the writer's choosing,
 * and a value that decodes to a plausible pointer marks an object that is
 * probably free already -- a double free is confirmed by walking that one
 * slab's free list, so it costs nothing until it happens.  Allocation clears
 * the slot so a live object never carries a stale encoding.
 *
 * Without the checks (the release configurations) CONFIG_MM_FREE_MARK still
 * catches the double free, the misuse that corrupts a heap most often: a
 * free object carries a mark in the word after its free pointer, as
 * glibc's tcache entries carry their key, set wherever an object becomes
 * free and cleared wherever it is handed out.  A free that finds the mark
 * is confirmed on the free list (and by percpu.c in the magazines) before
 * it is reported.  Such a free, and one of a pointer that is no object's
 * start (slab_is_obj_start(): a multiply and a compare) or, through
 * kmem_cache_free(), is in another cache's slab, goes through the checks
 * above (slab_free_suspect(), slab_free_doubtful()); the others pay these
 * tests only.  A cache whose objects have no room for the pointer and the
 * mark grows its stride to two words.
 *
 * The slab size is the smallest buddy order whose unusable part (header
 * and tail) is at most 1/32 of the slab for objects up to a quarter page,
 * 1/8 for larger ones -- else the least wasteful order.  The header takes
 * the place of the first object(s) up to the object alignment, so a
 * one-page slab of 512-byte objects holds 7, an eighth lost: four pages
 * hold 31.  Larger slabs only for small objects: a slab of big objects
 * pinned by one of them holds more memory idle, and lazy slabs
 * (CONFIG_MM_SLAB_LAZY) make the untouched part of a large slab free.
 */
#include <string.h>
#include "slab.h"
#include "heap.h"
#include "percpu.h"
#include "slabinfo.h"

/* Descriptors come from a cache of their own, on the default arena. */
struct kmem_cache kmem_cache_boot;

#if IS_ENABLED(CONFIG_MM_FREE_MARK)
uintptr_t mm_free_mark;

/*
 * Set before the first cache exists, so before any object is freed; every
 * caller computes the same value, so a race writes it twice.  It follows
 * the address layout (ASLR on hosts) rather than being a constant that a
 * program's data could hold by design; odd, so no aligned pointer is it.
 */
static void free_mark_init(void)
{
	uintptr_t x = (uintptr_t)&kmem_cache_boot * (uintptr_t)0x9e3779b97f4a7c15ULL;

	if (!__atomic_load_n(&mm_free_mark, __ATOMIC_RELAXED))
		__atomic_store_n(&mm_free_mark, (x ^ (x >> 29) ^ 0x6d6d2d66UL) | 1,
				 __ATOMIC_RELAXED);
}
#else
static inline void free_mark_init(void)
{
}
#endif

static inline void *slab_first_obj(const struct kmem_cache *c, struct slab *s)
{
	return (char *)s + c->first;
}

static inline size_t slab_bytes(const struct kmem_cache *c)
{
	return MM_PAGE_SIZE << c->order;
}

/* Name the slab's class on every page of it (CONFIG_MM_PAGE_CLASS). */
static void slab_set_class(struct kmem_cache *c, struct mm_region *r, uintptr_t pfn,
			   unsigned int idx)
{
	if (!IS_ENABLED(CONFIG_MM_PAGE_CLASS))
		return;
	for (uintptr_t i = 0; i < ((uintptr_t)1 << c->order); i++)
		*page_class(r, pfn + i) = (uint8_t)idx;
}

/* The first object that starts on a later page than object idx does. */
static unsigned int page_end_obj(const struct kmem_cache *c, unsigned int idx)
{
	size_t end = ((size_t)slab_obj_page(c, idx) + 1) << MM_PAGE_SHIFT;
	unsigned int to = (unsigned int)DIV_ROUND_UP(end - c->first, c->size);

	return to < c->objs ? to : c->objs;
}

/*
 * Move s's fresh index to 'to' (CONFIG_MM_SLAB_LAZY).  A page on which an
 * object never handed out starts carries KMALLOC_FRESH_CLASS instead of
 * its class (CONFIG_MM_PAGE_CLASS), and kfree()'s inline path -- which
 * tests an object's start and its free mark, never the slab -- sends a
 * free of one there the slow way, where the fresh index turns it away:
 * in a magazine it would be handed out while the fresh index hands it out
 * too.  The index moves a page at a time (slab_extend(),
 * __slab_alloc_bulk()), so no page has objects of both kinds, and an
 * object handed out is always on a page of its class.
 */
static void slab_move_fresh(struct kmem_cache *c, struct slab *s, unsigned int to)
{
	unsigned int from = slab_fresh(c, s), lo, hi, bound;
	struct mm_region *r;
	uintptr_t pfn;

	slab_set_fresh(s, to);
	if (!IS_ENABLED(CONFIG_MM_PAGE_CLASS) || !c->kmalloc_idx || from == to)
		return;
	VM_BUG_ON(to < c->objs && to && slab_obj_page(c, to - 1) == slab_obj_page(c, to));
	pfn = addr_to_pfn(s);
	r = region_of(c->arena, pfn);
	bound = to < c->objs ? slab_obj_page(c, to) : slab_obj_page(c, c->objs - 1) + 1;
	lo = slab_obj_page(c, min_t(unsigned int, from, to));
	hi = to > from ? bound : slab_obj_page(c, c->objs - 1) + 1;
	for (unsigned int i = lo; i < hi; i++)
		*page_class(r, pfn + i) = (uint8_t)(i < bound ? c->kmalloc_idx : KMALLOC_FRESH_CLASS);
}

static void slab_free_pages(struct kmem_cache *c, struct slab *s)
{
	struct mm_arena *a = c->arena;
	uintptr_t pfn = addr_to_pfn(s);
	struct mm_region *r = region_of(a, pfn);

	c->nr_slabs--;
	slab_set_class(c, r, pfn, 0);
	__free_pages_locked(a, r, pfn, c->order);
}

/*
 * Room on the empty list?  (A test the compiler cannot call always false.)
 * Never for a kmalloc class behind per-thread magazines: the magazines are
 * its hysteresis already -- its slab empties only when a flush brings back
 * its last object, and the refill after that finds pages the buddy
 * allocator keeps resident -- while some thirty classes keeping two empty
 * slabs each held pages no other class could use: on bench/'s mixed
 * workload 128 KiB of a 5.9 MiB peak, at no cost in time.
 */
static __always_inline int keep_empty(const struct kmem_cache *c)
{
#if CONFIG_MM_SLAB_MAX_EMPTY > 0
	if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE) && c->mag_cap)
		return 0;
	return c->nr_empty < CONFIG_MM_SLAB_MAX_EMPTY;
#else
	return 0;
#endif
}

/*
 * Objects [from, to) of s as a free list in address order, constructed
 * first when the cache has a constructor; returns its head (NULL if empty).
 */
static void *slab_thread(struct kmem_cache *c, struct slab *s, unsigned int from,
			 unsigned int to)
{
	char *head = (char *)slab_first_obj(c, s) + (size_t)from * c->size, *obj = head;

	for (unsigned int i = from; i < to; i++, obj += c->size) {
		if (c->ctor)
			c->ctor(obj);
		set_freepointer(c, obj, i + 1 < to ? obj + c->size : NULL);
		obj_set_free(c, obj);
	}
	return from < to ? head : NULL;
}

/* Has s objects it never handed out?  Never without CONFIG_MM_SLAB_LAZY. */
static __always_inline int slab_has_fresh(const struct kmem_cache *c, const struct slab *s)
{
	return IS_ENABLED(CONFIG_MM_SLAB_LAZY) && slab_fresh(c, s) < c->objs;
}

/*
 * CONFIG_MM_SLAB_LAZY: thread the next never-used objects of s, those that
 * start in the page where the first of them does (at least one), and
 * return them as a list; NULL when none is left.  So a slab touches its
 * pages one at a time as it fills, as mimalloc extends a page's free list:
 * one 4 KiB object of a 32 KiB slab costs one page, not eight.
 */
static void *slab_extend(struct kmem_cache *c, struct slab *s)
{
	unsigned int from = slab_fresh(c, s), to;

	if (!IS_ENABLED(CONFIG_MM_SLAB_LAZY) || from >= c->objs)
		return NULL;
	to = page_end_obj(c, from);
	slab_move_fresh(c, s, to);
	return slab_thread(c, s, from, to);
}

/*
 * Lazily threaded slabs start with every object fresh; a cache with a
 * constructor threads (and constructs) the whole slab at once, since its
 * objects keep their constructed state across frees.
 */
static __always_inline int slab_lazy(const struct kmem_cache *c)
{
	return IS_ENABLED(CONFIG_MM_SLAB_LAZY) && !c->ctor;
}

/* Make a new slab: pages, and a free list (see slab_lazy()). */
static struct slab *new_slab(struct kmem_cache *c)
{
	struct slab *s = __alloc_pages_locked(c->arena, c->order, PT_SLAB);

	if (!s)
		return NULL;
	s->cache = c;
	s->inuse = 0;
	if (IS_ENABLED(CONFIG_MM_PAGE_CLASS) && c->kmalloc_idx)
		slab_set_class(c, region_of(c->arena, addr_to_pfn(s)), addr_to_pfn(s),
			       c->kmalloc_idx);
	if (slab_lazy(c)) {
		s->freelist = NULL;
		slab_set_fresh(s, c->objs);
		slab_move_fresh(c, s, 0);	/* every page fresh */
	} else {
		s->freelist = slab_thread(c, s, 0, c->objs);
		slab_set_fresh(s, c->objs);
	}
	c->nr_slabs++;
	return s;
}

/* Where a slab that is not active belongs, by its count. */
static void slab_place(struct kmem_cache *c, struct slab *s)
{
	if (s->inuse == c->objs) {
		list_add(&s->lru, &c->full);
	} else if (s->inuse) {
		list_add(&s->lru, &c->partial);
	} else if (keep_empty(c)) {
		/*
		 * Kept for reuse: start over at the first object, so the
		 * next user gets its objects in address order again.
		 */
		if (slab_lazy(c)) {
			s->freelist = NULL;
			slab_move_fresh(c, s, 0);
		}
		list_add(&s->lru, &c->empty);
		c->nr_empty++;
	} else {
		slab_free_pages(c, s);
	}
}

/*
 * Make s the active slab: its free objects become the cache's.  Its fresh
 * ones stay where they are until they are needed (__slab_alloc_slow(),
 * __slab_alloc_bulk()).
 */
static void activate(struct kmem_cache *c, struct slab *s)
{
	c->cpu_slab = s;
	c->cpu_freelist = s->freelist;
	s->freelist = NULL;
	s->inuse = c->objs;
}

/*
 * Retire the active slab: what is left on the cache's free list goes back
 * to the slab (the encoding of the pointers does not depend on the list),
 * and its count is settled: the objects handed out so far (below the
 * fresh index) less those free.  O(free objects) -- none when it is
 * exhausted, the usual reason for retiring it.
 */
static void deactivate(struct kmem_cache *c)
{
	struct slab *s = c->cpu_slab;
	unsigned int n = 0;

	if (!s)
		return;
	for (void *p = c->cpu_freelist; p && n < c->objs; p = get_freepointer(c, p))
		n++;
	s->freelist = c->cpu_freelist;
	s->inuse = slab_fresh(c, s) - n;
	c->cpu_slab = NULL;
	c->cpu_freelist = NULL;
	slab_place(c, s);
}

/*
 * May kmalloc's paths give c a new slab?  Not a class that spills into
 * the heap (kmalloc.c, CONFIG_MM_HEAP_SPILL_KB) once it holds its bound:
 * its request goes to the heap instead.  kmem_cache_alloc() of any cache
 * grows it as ever.
 */
static __always_inline int slab_may_grow(const struct kmem_cache *c)
{
	return c->nr_slabs < c->spill_slabs;
}

/*
 * The next slab to activate: a partial one, an empty one, or a new one if
 * 'grow' allows.
 */
static __noinline struct slab *next_slab(struct kmem_cache *c, int grow)
{
	struct slab *s;

	if (!list_empty(&c->partial)) {
		s = list_first_entry(&c->partial, struct slab, lru);
		list_del(&s->lru);
		return s;
	}
	if (!list_empty(&c->empty)) {
		s = list_first_entry(&c->empty, struct slab, lru);
		list_del(&s->lru);
		c->nr_empty--;
		return s;
	}
	if (!grow)
		return NULL;
	s = new_slab(c);
	if (!s) {
		/* Let the arena grow, or reclaim other caches' empty slabs. */
		if (__arena_grow(c->arena, c->order) == 0 ||
		    (c->arena->reclaim && c->arena->reclaim(c->arena)))
			s = new_slab(c);
	}
	return s;
}

/* Retire the exhausted active slab and activate the next: 0, or -1 if none. */
static int slab_switch(struct kmem_cache *c, int grow)
{
	struct slab *s;

	deactivate(c);
	s = next_slab(c, grow);
	if (!s)
		return -1;
	activate(c, s);
	return 0;
}

/*
 * The slow path of allocation, lock held: the active slab's next fresh
 * objects if it has any, else the exhausted slab is retired and the next
 * partial slab, an empty one or (if 'grow') a new one activated.
 */
static void *slab_alloc_next(struct kmem_cache *c, int grow)
{
	if (!c->cpu_freelist && c->cpu_slab && slab_has_fresh(c, c->cpu_slab))
		c->cpu_freelist = slab_extend(c, c->cpu_slab);
	if (!c->cpu_freelist) {
		if (slab_switch(c, grow))
			return NULL;
		if (!c->cpu_freelist)
			c->cpu_freelist = slab_extend(c, c->cpu_slab);
	}
	return slab_alloc_fast(c);
}

void *__slab_alloc_slow(struct kmem_cache *c)
{
	return slab_alloc_next(c, 1);
}

/*
 * Up to n objects for a per-thread magazine (percpu.c), lock held: the
 * active slab's free list first, then its never-used objects straight from
 * the fresh index -- not threaded: a refill takes at most 2 KiB or four
 * of them (percpu.c), which it marks, not the half magazine whose
 * threading made eight pages resident for a first kmalloc(4096) of a
 * thread; only the rest of the last one's page is, onto the free list,
 * so that the index stays at a page's start (slab_move_fresh()) -- then
 * the next slab, a new one only if slab_may_grow().  Returns how many: 0
 * when out of memory, or for a class at its bound.
 */
unsigned int __slab_alloc_bulk(struct kmem_cache *c, void **objs, unsigned int n)
{
	unsigned int got = 0;

	while (got < n) {
		struct slab *s = c->cpu_slab;
		void *obj = slab_pop(c);	/* free still, marked, in a magazine */

		if (obj) {
			objs[got++] = obj;
		} else if (s && slab_lazy(c) && slab_fresh(c, s) < c->objs) {
			unsigned int i = slab_fresh(c, s), end = min_t(unsigned int, c->objs,
								   i + (n - got));
			unsigned int to = page_end_obj(c, end - 1);
			char *o = (char *)slab_first_obj(c, s) + (size_t)i * c->size;

			for (; i < end; i++, o += c->size)
				objs[got++] = o;
			/* The rest of their last page: the next allocations'. */
			if (end < to)
				c->cpu_freelist = slab_thread(c, s, end, to);
			slab_move_fresh(c, s, to);
		} else if (slab_switch(c, slab_may_grow(c))) {
			break;
		}
	}
	return got;
}

/* A free object's pointer leads out of its slab: report, drop the rest. */
void *__slab_bad_freepointer(struct kmem_cache *c, struct slab *s, void *obj, void *next)
{
	mm_report_bug(c->arena, c->name, "Freepointer %p of free object %p is corrupt", next, obj);
	mm_printf("FIX %s: dropping the rest of the slab's free list\n", c->name);
	s->inuse = c->objs - 1;
	return NULL;
}

/*
 * Allocate with the lock held, for kmalloc's classes without magazines:
 * NULL rather than a new slab where slab_may_grow() says no.
 */
void *__slab_alloc_bounded(struct kmem_cache *c)
{
	void *obj = slab_alloc_fast(c);

	return likely(obj) ? obj : slab_alloc_next(c, slab_may_grow(c));
}

#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
/*
 * Is obj an object start in a live slab of c, and one that was handed out
 * (not fresh)?  Any pointer may be asked -- nothing at obj is read before
 * its page says it is in a slab of c -- with the lock or without, as
 * kfree() classifies a pointer: the regions' headers and metadata are
 * never unmapped, and the slab of an object in use cannot change under
 * it.  For a handle that may name no cache (cache_handle_ok()), and for
 * fork()'s child (percpu.c), which cannot take the magazines of the
 * threads that did not come along on trust.
 */
int __slab_is_obj(const struct kmem_cache *c, const void *obj)
{
	struct slab *s = obj_to_slab(c, obj);
	uintptr_t pfn = addr_to_pfn(s);
	struct mm_region *r = region_of(c->arena, pfn);

	return r && __atomic_load_n(page_meta(r, pfn), __ATOMIC_RELAXED) ==
			    PAGE_META(PT_SLAB, c->order) &&
	       __atomic_load_n(&s->cache, __ATOMIC_RELAXED) == c &&
	       slab_is_obj_start(c, obj) && !slab_obj_fresh(c, s, obj);
}
#endif

/*
 * Is c a cache kmem_cache_create() made, live or destroyed -- a descriptor
 * handed out by the descriptors' cache?  A destroyed descriptor's fields
 * stay as they were (its free pointer is in its list link), and the
 * callers tell it by c->destroyed; but once its slab went back to the
 * buddy allocator (a shrink, a trim) its memory is a free block's or
 * another user's, and every field read from it is garbage -- c->arena
 * first.  A descriptors' slab again is no proof either: the handle may be
 * a slot of it threaded onto its free list unused, whose fields are what
 * the page held (zeroes after a trim: a NULL arena), so only a live arena
 * is locked.  Asked by kmem_cache_destroy() and kmem_cache_shrink(); an
 * allocation or a free trusts a handle that is not NULL, as Linux's do --
 * the walk of the regions cost them 80 instructions a pair, and reading
 * the handle for a stamp of its own could fault where a trim unmapped its
 * page.
 */
#if IS_ENABLED(CONFIG_MM_CHECKS)
static __noinline int cache_handle_ok(const struct kmem_cache *c)
{
	const struct kmem_cache *boot = &kmem_cache_boot;

	if (c == boot)
		return 1;
	return __atomic_load_n(&boot->arena, __ATOMIC_ACQUIRE) && __slab_is_obj(boot, c) &&
	       __arena_is_live(__atomic_load_n(&c->arena, __ATOMIC_RELAXED));
}
#else
/* Without the checks every handle is taken on trust, and this compiles away. */
static inline int cache_handle_ok(const struct kmem_cache *c)
{
	return 1;
}
#endif

/* The handle is no descriptor at all: told against the default arena. */
static __cold int report_bad_handle(const struct kmem_cache *c, const char *caller)
{
	mm_report_bug(mm_default_arena(), caller, "%p is no cache (destroyed, its memory reused?)",
		      (const void *)c);
	return -1;
}

/*
 * The slow path of kmem_cache_alloc(), lock not held: another slab, and out
 * of pages even after growing and reclaiming, the OOM hook.
 */
static __noinline void *kmem_cache_alloc_slow(struct kmem_cache *c)
{
	struct mm_arena *a = c->arena;
	mm_flags_t flags = arena_lock(a);
	void *obj;
	int retry;

	/* A destroyed cache has no active slab: its every allocation gets here. */
	if (unlikely(c->destroyed)) {
		mm_report_bug(a, c->name, "kmem_cache_alloc: cache already destroyed");
		arena_unlock(a, flags);
		return NULL;
	}
	obj = __slab_alloc_slow(c);
	arena_unlock(a, flags);
	if (obj)
		return obj;
	retry = !oom_quiet() && a->oom_hook && a->oom_hook(a, slab_bytes(c), a->oom_ctx);
	flags = arena_lock(a);
	obj = retry ? __slab_alloc_slow(c) : NULL;
	if (!obj && !oom_quiet())
		a->diag.oom_count++;
	arena_unlock(a, flags);
	return obj;
}

void *kmem_cache_alloc(struct kmem_cache *c)
{
	mm_flags_t flags;
	void *obj;

	if (IS_ENABLED(CONFIG_MM_CHECKS) && unlikely(!c)) {
		report_bad_handle(c, "kmem_cache_alloc");
		return NULL;
	}
	flags = arena_lock(c->arena);
	obj = slab_alloc_fast(c);

	arena_unlock(c->arena, flags);
	if (unlikely(!obj))
		return kmem_cache_alloc_slow(c);
	return obj;
}

unsigned int kmem_cache_size(struct kmem_cache *c)
{
	return c->object_size;
}

/*
 * After a free into a slab that is not active emptied it or ended its being
 * full, lock held.  A full slab that gets an object back while the active
 * slab is exhausted becomes the active one (the exhausted one retires, as it
 * would at the next allocation); otherwise it joins the partial list at the
 * head, where the next slab to activate is taken: the fullest slabs are
 * the ones that just stopped being full, and filling them first lets the
 * slabs that have been partial longest drain and go back to the buddy
 * allocator for any class to use (on bench/'s mixed workload the arena's
 * peak is 108 KiB lower than taking the oldest partial slab first).  An
 * empty slab goes to the empty list or back to the buddy allocator.  A
 * slab of one object does both in one step.
 */
void __slab_free_slow(struct kmem_cache *c, struct slab *s)
{
	list_del(&s->lru);
	if (s->inuse == c->objs - 1 && !c->cpu_freelist &&
	    (!c->cpu_slab || !slab_has_fresh(c, c->cpu_slab))) {
		deactivate(c);
		activate(c, s);
		return;
	}
	if (s->inuse)
		list_add(&s->lru, &c->partial);
	else
		slab_place(c, s);
}

void __slab_free_locked(struct kmem_cache *c, struct slab *s, void *obj)
{
	slab_free_fast(c, s, obj);
}

/* Is obj on s's free list (the cache's, when s is the active slab)?  Lock held. */
int __slab_freelist_contains(struct kmem_cache *c, struct slab *s, const void *obj)
{
	unsigned int n = 0;
	void *head = s == c->cpu_slab ? c->cpu_freelist : s->freelist;

	for (void *p = head; p && n <= c->objs; p = get_freepointer(c, p), n++) {
		if (p == obj)
			return 1;
		if (!in_slab_objects(c, s, p))
			break;
	}
	return 0;
}

/*
 * obj is not in a slab of c.  Name its real owner, found from obj's own page
 * (a slab of another size does not start at obj & c->slab_mask).
 */
static __cold void report_foreign(struct kmem_cache *c, const void *obj, const char *caller)
{
	struct mm_arena *a = c->arena;
	uintptr_t pfn = addr_to_pfn(obj), head;
	struct mm_region *r = region_of(a, pfn);

	head = r ? block_head(r, pfn) : 0;
	if (head && meta_type(*page_meta(r, head)) == PT_SLAB) {
		struct slab *s = pfn_to_addr(head);

		mm_report_bug(a, c->name, "%s: %p belongs to cache %s", caller, obj,
			      s->cache->name);
		return;
	}
	mm_report_bug(a, c->name, "%s: %p is not in any slab of this arena", caller, obj);
}

#if IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)

/*
 * The checks CONFIG_MM_CHECKS makes on every free, each O(1) except the
 * confirmation of a double free: the page metadata says whether the pointer
 * is in a slab at all, the slab header names the cache, the offset must be
 * a multiple of the object size, and a plausible free pointer in the object
 * (with CONFIG_MM_FREE_MARK, the mark) sends us to look for it on the free
 * list.  With CONFIG_MM_FREE_MARK alone they are made for the frees
 * slab_free_suspect() picks out and on kfree()'s slow path only.
 */
int __slab_check_free(struct kmem_cache *c, struct slab *s, const void *obj,
		      const char *caller)
{
	struct mm_arena *a = c->arena;
	uintptr_t pfn = addr_to_pfn(s);
	struct mm_region *r = region_of(a, pfn);

	if (unlikely(!r || *page_meta(r, pfn) != PAGE_META(PT_SLAB, c->order) ||
		     s->cache != c)) {
		report_foreign(c, obj, caller);
		return -1;
	}
	if (unlikely(!slab_is_obj_start(c, obj))) {
		mm_report_bug(a, c->name, "%s: %p points into the middle of an object",
			      caller, obj);
		return -1;
	}
	if (unlikely(slab_obj_fresh(c, s, obj))) {
		mm_report_begin(a, c->name, "Object already free");
		mm_printf("INFO: %s of %p: object never handed out, slab %p\n", caller, obj,
			  (void *)s);
		mm_report_end(c->name);
		return -1;
	}
	if (unlikely(slab_maybe_free(c, s, (void *)obj) && __slab_freelist_contains(c, s, obj))) {
		mm_report_begin(a, c->name, "Object already free");
		mm_printf("INFO: %s of %p: object %p in slab %p\n", caller, obj, obj, (void *)s);
		mm_report_end(c->name);
		return -1;
	}
	/*
	 * A kmalloc object in a thread's magazine is free and on no slab
	 * list.  kfree() asks the magazines before it gets here (percpu.c),
	 * kmem_cache_free() into kmalloc_slab()'s cache does not: taken, the
	 * object was in a magazine and on its slab at once, handed out twice.
	 * Only an object that carries a magazine's key (or the mark) is
	 * looked for.
	 */
	if (unlikely(c->kmalloc_idx) &&
	    (IS_ENABLED(CONFIG_MM_CHECKS) ? percpu_key_like(*(const uintptr_t *)obj)
					  : obj_marked_free(c, obj))) {
		const char *who = percpu_holding(c, obj);

		if (who) {
			mm_report_begin(a, c->name, "Object already free");
			mm_printf("INFO: %s of %p: object is in %s cache\n", caller, obj, who);
			mm_report_end(c->name);
			return -1;
		}
	}
	return 0;
}
#endif /* CONFIG_MM_CHECKS || CONFIG_MM_FREE_MARK */

/*
 * Is s, where obj's slab would start, a slab page of c's order in the
 * newest region of c's arena -- or, for slab_in_any_region(), in any?
 * Only then may kmem_cache_free() read the slab's header: a pointer from
 * anywhere else would have it read memory that is not the allocator's,
 * or not mapped, and -- where that word held c's address -- push obj onto
 * a "slab" that is none.  The newest region is kfree()'s lookup, bounded
 * by the region's metadata capacity; the lock is held.
 */
static __always_inline int slab_in_first_region(struct kmem_cache *c, const struct slab *s)
{
	struct mm_region *r = (struct mm_region *)region_first(c->arena);
	uintptr_t pfn = addr_to_pfn(s);

	return likely(pfn - r->start_pfn < r->max_pages) &&
	       likely(*page_meta(r, pfn) == PAGE_META(PT_SLAB, c->order));
}

static int slab_in_any_region(struct kmem_cache *c, const struct slab *s)
{
	uintptr_t pfn = addr_to_pfn(s);
	struct mm_region *r = region_of(c->arena, pfn);

	return r && *page_meta(r, pfn) == PAGE_META(PT_SLAB, c->order);
}

/*
 * Must kmem_cache_free() of obj, on the slab s would be, go the slow way?
 * The active slab is c's, so only another slab's page is asked first --
 * before anything of s or obj is read; a cache with no active slab has a
 * NULL one, which a pointer below the first slab's size would match.
 * With the mark an object of another cache is one more suspect.  Lock
 * held, so that the active slab stays what it is.
 */
static __always_inline int slab_free_doubtful(struct kmem_cache *c, const struct slab *s,
					      const void *obj)
{
	if (likely(s == c->cpu_slab))
		return unlikely(!s) || slab_free_suspect(c, obj);
	return unlikely(!slab_in_first_region(c, s)) ||
	       (IS_ENABLED(CONFIG_MM_FREE_MARK) && unlikely(s->cache != c)) ||
	       slab_free_suspect(c, obj);
}

/*
 * The frees slab_free_doubtful() picked out, lock held and dropped here:
 * obj's slab looked for in every region first, in every build; then a
 * suspect goes through every check the build has, and an object of a
 * slab in an older region through the fast path's.
 */
static __noinline void kmem_cache_free_slow(struct kmem_cache *c, struct slab *s, void *obj,
					    mm_flags_t flags)
{
	const char *who = "kmem_cache_free";

	if (unlikely(!slab_in_any_region(c, s))) {
		report_foreign(c, obj, who);
	} else {
		int suspect = (IS_ENABLED(CONFIG_MM_FREE_MARK) && s->cache != c) ||
			      slab_free_suspect(c, obj);

		if (suspect ? slab_free_checked(c, s, obj, who) : slab_free_ok(c, s, obj, who))
			slab_free_fast(c, s, obj);
	}
	arena_unlock(c->arena, flags);
}

void kmem_cache_free(struct kmem_cache *c, void *obj)
{
	struct slab *s;
	mm_flags_t flags;

	if (unlikely(!obj))
		return;
	if (IS_ENABLED(CONFIG_MM_CHECKS) && unlikely(!c)) {
		report_bad_handle(c, "kmem_cache_free");
		return;
	}
	s = obj_to_slab(c, obj);
	flags = arena_lock(c->arena);
	if (unlikely(slab_free_doubtful(c, s, obj)))
		return kmem_cache_free_slow(c, s, obj, flags);
	if (slab_free_ok(c, s, obj, "kmem_cache_free"))
		slab_free_fast(c, s, obj);
	arena_unlock(c->arena, flags);
}

static size_t shrink_locked(struct kmem_cache *c)
{
	unsigned long slabs = c->nr_slabs;
	struct slab *s, *n;

	deactivate(c);		/* an empty active slab is empty too */
	list_for_each_entry_safe(s, n, &c->empty, lru) {
		list_del(&s->lru);
		slab_free_pages(c, s);
	}
	c->nr_empty = 0;
	return (slabs - c->nr_slabs) << c->order;
}

size_t kmem_cache_shrink(struct kmem_cache *c)
{
	mm_flags_t flags;
	size_t pages;

	if (unlikely(!cache_handle_ok(c))) {
		report_bad_handle(c, "kmem_cache_shrink");
		return 0;
	}
	flags = arena_lock(c->arena);
	pages = shrink_locked(c);

	__arena_maybe_trim(c->arena);
	arena_unlock(c->arena, flags);
	return pages;
}

/* The arena's reclaim hook: lock held. */
static size_t reclaim_locked(struct mm_arena *a)
{
	struct kmem_cache *c;
	size_t pages = 0;

	list_for_each_entry(c, &a->caches, list)
		pages += shrink_locked(c);
	return pages + __heap_reclaim_locked(a);
}

size_t kmem_cache_reap(struct mm_arena *a)
{
	mm_flags_t flags = arena_lock(a);
	size_t pages = reclaim_locked(a);

	/* As kmem_cache_shrink(): the hook itself leaves that to its callers. */
	__arena_maybe_trim(a);
	arena_unlock(a, flags);
	return pages;
}

/*
 * Layout: stride, free pointer placement and slab order.  Returns 0, or -1
 * for a size or alignment no slab can hold -- or, for a kmalloc class, none
 * of at most CONFIG_MM_SLAB_MAX_ORDER with at most 1/8 waste (that size is
 * then better served by whole buddy blocks).  The bound is on the memory
 * a slab holds that no object can use; see the top of the file.
 */
static int calculate_sizes(struct kmem_cache *c)
{
	size_t size = c->object_size, best_waste = SIZE_MAX;
	int strict = c->flags & SLAB_KMALLOC;
	unsigned int max_order = strict ? min_t(unsigned int, CONFIG_MM_SLAB_MAX_ORDER,
						MM_MAX_ORDER) : MM_MAX_ORDER;
	unsigned int k, bits;
	int best = -1;

	if (size < sizeof(void *))
		size = sizeof(void *);
	size = ALIGN(size, sizeof(void *));
	c->offset = 0;
	if (c->ctor) {
		/* Keep the constructed object intact: the pointer goes after it. */
		c->offset = (unsigned int)size;
		size += sizeof(void *);
	}
	if (IS_ENABLED(CONFIG_MM_FREE_MARK))	/* the mark, after the pointer */
		size = max_t(size_t, size, c->offset + 2 * sizeof(void *));
	size = ALIGN(size, c->align);
	c->size = (unsigned int)size;
	c->first = (unsigned int)ALIGN(sizeof(struct slab), c->align);

	for (unsigned int o = 0; o <= max_order; o++) {
		size_t bytes = MM_PAGE_SIZE << o, n, waste;

		if (bytes < c->first + size)
			continue;
		n = (bytes - c->first) / size;
		waste = bytes - n * size;	/* header and tail */
		if (waste * (size <= MM_PAGE_SIZE / 4 ? 32 : 8) <= bytes) {
			best = (int)o;
			break;
		}
		if ((!strict || waste * 8 <= bytes) && waste * 1024 / bytes < best_waste) {
			best_waste = waste * 1024 / bytes;
			best = (int)o;
		}
	}
	if (best < 0)
		return -1;
	c->order = (uint8_t)best;
	c->objs = (unsigned int)(((MM_PAGE_SIZE << best) - c->first) / size);
	c->slab_mask = ~(uintptr_t)((MM_PAGE_SIZE << best) - 1);
	/* size = odd << k, slabs of 2^n bytes: see slab_is_obj_start(). */
	k = __ffs(size);
	bits = MM_PAGE_SHIFT + (unsigned int)best;
	c->obj_shift = k + BITS_PER_LONG - bits;
	c->obj_inv = inverse_odd(size >> k) << (BITS_PER_LONG - bits);
	c->obj_first_inv = c->first * c->obj_inv;
	return 0;
}

static struct kmem_cache *cache_init(struct kmem_cache *c, struct mm_arena *a,
				     const char *name, size_t size, size_t align,
				     unsigned int flags, kmem_ctor_t ctor)
{
	memset(c, 0, sizeof(*c));
	c->spill_slabs = ~0UL;		/* kmalloc_init() bounds the classes that spill */
	free_mark_init();
	if (!size || size > MM_MAX_BLOCK || (align & (align - 1)) || align > MM_MAX_BLOCK)
		return NULL;
	if (!align)
		align = sizeof(void *);
	if (flags & SLAB_HWCACHE_ALIGN)
		align = max_t(size_t, align, CONFIG_ARCH_CACHE_LINE);
	c->name = name ? name : "cache";
	c->object_size = (unsigned int)size;
	c->align = (unsigned int)max_t(size_t, align, sizeof(void *));
	c->flags = (uint8_t)flags;
	c->ctor = ctor;
	c->arena = a;
	INIT_LIST_HEAD(&c->partial);
	INIT_LIST_HEAD(&c->full);
	INIT_LIST_HEAD(&c->empty);
	if (calculate_sizes(c))
		return NULL;
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		/* Not a secret from an attacker who can read memory; enough to
		 * make stray writes and double frees stand out. */
		uintptr_t x = (uintptr_t)c ^ (uintptr_t)&kmem_cache_boot ^ (uintptr_t)name;

		x *= (uintptr_t)0x9e3779b97f4a7c15ULL;
		c->random = x ^ (x >> 17) ^ 0x5a5a5a5aUL;
	}
	return c;
}

static void cache_link(struct kmem_cache *c)
{
	struct mm_arena *a = c->arena;
	mm_flags_t flags = arena_lock(a);

	list_add_tail(&c->list, &a->caches);
	a->reclaim = reclaim_locked;
	arena_unlock(a, flags);
}

/*
 * Held across fork() (taken inside kmalloc's init_lock, before the arena
 * lock): a child must not inherit it held by a thread it does not have.
 */
static mm_lock_t boot_lock = MM_LOCK_INIT;

__attribute__((constructor)) static void boot_lock_register(void)
{
	__mm_fork_lock(&boot_lock, MM_FORK_BOOT);
}

static struct kmem_cache *boot_cache(void)
{
	static int ready;
	struct mm_arena *a;

	if (likely(__atomic_load_n(&ready, __ATOMIC_ACQUIRE)))
		return &kmem_cache_boot;
	a = mm_default_arena();
	if (!a)
		return NULL;
	/* Racing first callers compute the same thing; only one links it. */
	{
		mm_flags_t flags = mm_lock(&boot_lock);

		if (!ready) {
			cache_init(&kmem_cache_boot, a, "kmem_cache",
				   sizeof(struct kmem_cache), 0, 0, NULL);
			/*
			 * A freed descriptor keeps its free pointer (and mark)
			 * in its list link, dead once the cache is unlinked,
			 * not in its first words: so a destroyed cache keeps
			 * no active slab and its 'destroyed' flag, and a use
			 * of it after kmem_cache_destroy() is told, where the
			 * free list's pointer in cpu_freelist had it allocate
			 * descriptor slots of this cache (or crash).
			 */
			kmem_cache_boot.offset = offsetof(struct kmem_cache, list);
			cache_link(&kmem_cache_boot);
			__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
		}
		mm_unlock(&boot_lock, flags);
	}
	return &kmem_cache_boot;
}

struct kmem_cache *kmem_cache_create_arena(struct mm_arena *a, const char *name,
					   size_t size, size_t align,
					   unsigned int flags, kmem_ctor_t ctor)
{
	struct kmem_cache *boot = boot_cache();
	struct kmem_cache *c = boot ? kmem_cache_alloc(boot) : NULL;

	if (c && a && cache_init(c, a, name, size, align, flags, ctor)) {
		cache_link(c);
		return c;
	}
	if (c)
		kmem_cache_free(boot, c);
	if (flags & SLAB_PANIC)
		mm_panic("kmem_cache_create failed");
	return NULL;
}

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned int flags, kmem_ctor_t ctor)
{
	return kmem_cache_create_arena(mm_default_arena(), name, size, align, flags, ctor);
}

/* Report every live object of a slab (O(objs^2) in the worst case: a report). */
static unsigned long report_live(struct kmem_cache *c, struct slab *s, unsigned long shown)
{
	char *obj = slab_first_obj(c, s);

	for (unsigned int i = 0; i < slab_fresh(c, s); i++, obj += c->size) {
		if (__slab_freelist_contains(c, s, obj))
			continue;
		if (shown < 16)
			mm_printf("INFO: Object %p @offset=%u\n", (void *)obj,
				  (unsigned int)(obj - (char *)s));
		shown++;
	}
	return shown;
}

int kmem_cache_destroy(struct kmem_cache *c)
{
	struct mm_arena *a;
	unsigned long live = 0, shown = 0;
	struct slab *s;
	mm_flags_t flags;

	if (!c)
		return 0;
	if (unlikely(!cache_handle_ok(c)))
		return report_bad_handle(c, "kmem_cache_destroy");
	a = c->arena;
	flags = arena_lock(a);
	/*
	 * kmalloc's classes and the descriptors' own cache are kmalloc's:
	 * kmalloc_caches[] and the magazines would go on using a descriptor
	 * freed under them.  A cache destroyed already is a double free.
	 */
	if (unlikely(c->kmalloc_idx || c == &kmem_cache_boot || c->destroyed)) {
		mm_report_bug(a, c->name, "kmem_cache_destroy: %s", c->destroyed ?
			      "cache already destroyed" : "a cache of kmalloc's own");
		arena_unlock(a, flags);
		return -1;
	}
	shrink_locked(c);
	list_for_each_entry(s, &c->partial, lru)
		live += s->inuse;
	list_for_each_entry(s, &c->full, lru)
		live += s->inuse;
	if (live) {
		mm_report_begin(a, c->name, "Slab cache still has objects");
		if (IS_ENABLED(CONFIG_MM_REPORTS)) {
			mm_printf("INFO: %lu objects of %u bytes still allocated:\n",
				  live, c->object_size);
			list_for_each_entry(s, &c->partial, lru)
				shown = report_live(c, s, shown);
			list_for_each_entry(s, &c->full, lru)
				shown = report_live(c, s, shown);
			if (shown > 16)
				mm_printf("INFO: ... and %lu more\n", shown - 16);
		}
		mm_report_end(c->name);
		mm_printf("FIX %s: cache kept; its memory in use is not freed\n", c->name);
		arena_unlock(a, flags);
		return -1;
	}
	list_del(&c->list);
	c->destroyed = 1;	/* and no active slab: shrink_locked() retired it */
	arena_unlock(a, flags);
	kmem_cache_free(&kmem_cache_boot, c);
	return 0;
}

static void info_locked(struct kmem_cache *c, struct kmem_cache_info *info)
{
	struct slab *s;

	memset(info, 0, sizeof(*info));
	info->name = c->name;
	info->object_size = c->object_size;
	info->size = c->size;
	info->align = c->align;
	info->objs_per_slab = c->objs;
	info->pages_per_slab = 1u << c->order;
	info->num_slabs = c->nr_slabs;
	info->num_objs = c->nr_slabs * c->objs;
	info->empty_slabs = c->nr_empty;
	if (c->cpu_slab) {
		unsigned int n = 0, used;

		for (void *p = c->cpu_freelist; p && n < c->objs; p = get_freepointer(c, p))
			n++;
		used = slab_fresh(c, c->cpu_slab) - n;
		info->active_objs += used;
		if (used)
			info->active_slabs++;
		else
			info->empty_slabs++;
	}
	list_for_each_entry(s, &c->partial, lru) {
		info->active_objs += s->inuse;
		info->active_slabs++;
	}
	list_for_each_entry(s, &c->full, lru) {
		info->active_objs += s->inuse;
		info->active_slabs++;
	}
}

void kmem_cache_info(struct kmem_cache *c, struct kmem_cache_info *info)
{
	mm_flags_t flags = arena_lock(c->arena);

	info_locked(c, info);
	arena_unlock(c->arena, flags);
}

#if IS_ENABLED(CONFIG_MM_REPORTS)
void mm_slabinfo(struct mm_arena *a)
{
	struct kmem_cache_info info;
	struct kmem_cache *c;
	mm_flags_t flags;

	mm_printf(SLABINFO_HEADER);
	flags = arena_lock(a);
	list_for_each_entry(c, &a->caches, list) {
		info_locked(c, &info);
		mm_printf("%-17s" SLABINFO_COLUMNS, info.name, info.active_objs, info.num_objs,
			  info.size, info.objs_per_slab, info.pages_per_slab,
			  info.active_slabs, info.num_slabs);
	}
	arena_unlock(a, flags);
}
#endif
