// SPDX-License-Identifier: MIT
/*
 * The tiny core's slab caches (CONFIG_MM_TINY): Bonwick's object caches in
 * the fewest instructions that keep their promises.
 *
 * A slab is a buddy block of 2^order pages: objects from its first byte,
 * the free list threaded through the free objects, and struct slab in its
 * last bytes (tiny.h says why at the end).  A cache keeps one list, of the
 * slabs that have a free object; a slab leaves it when it fills and comes
 * back on its first free.  An empty slab stays on the list, so a cache
 * that empties and refills does not split and merge pages each time; its
 * pages go back on kmem_cache_shrink(), and whenever the buddy allocator
 * runs dry (reap_locked(), the arena's reclaim callback).
 *
 * The free pointer is the object's first word, or with a constructor a
 * word behind the object, so a freed object keeps its constructed state.
 * Constructors run when a slab is made, with the arena lock held.
 *
 * With CONFIG_MM_CHECKS a free is checked against the slab's geometry and
 * its free list (a walk of at most 'objects' links): a pointer into the
 * middle of an object and a double free are reported and ignored.
 */
#include <string.h>
#include "tiny.h"
#include "slabinfo.h"

/* kmalloc's classes have no name of their own; reports call them this. */
static inline const char *cache_name(const struct kmem_cache *c)
{
	return !c ? "(no cache)" : c->name ? c->name : "kmalloc";
}

/* Where a free object keeps the next free object's address. */
static inline void **free_ptr(const struct kmem_cache *c, void *obj)
{
	return (void **)(void *)((char *)obj + c->offset);
}

/*
 * The partial list is singly linked: a slab leaves it only at its head
 * (when it fills, it is the one allocated from) or here, during a walk.
 */
static size_t shrink_locked(struct mm_arena *a, struct kmem_cache *c)
{
	struct slab **pp = &c->partial, *s;
	size_t pages = 0;

	while ((s = *pp) != NULL) {
		if (s->inuse) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		count_slabs(c, -1);
		__free_pages_locked(a, addr_to_pfn(slab_base(c, s)), c->order);
		pages += (size_t)1 << c->order;
	}
	return pages;
}

/* Lock held: every cache's empty slabs back to the buddy allocator. */
static size_t reap_locked(struct mm_arena *a)
{
	size_t pages = 0;

	for (struct kmem_cache *c = a->caches; c; c = c->next)
		pages += shrink_locked(a, c);
	return pages;
}

/*
 * Lock held: where the arena's list of caches holds c.  With the checks,
 * NULL if it holds no such cache -- one destroyed already, or what never
 * was one; without them c must be there.
 */
static struct kmem_cache **cache_link(struct mm_arena *a, const void *c)
{
	struct kmem_cache **pp = &a->caches;

	if (IS_ENABLED(CONFIG_MM_CHECKS) && !c)
		return NULL;		/* not the list's end */
	while (*pp != c) {
		if (IS_ENABLED(CONFIG_MM_CHECKS) && !*pp)
			return NULL;
		pp = &(*pp)->next;
	}
	return pp;
}

/*
 * Lock held; c is zeroed but for its name and constructor.  Geometry for
 * objects of 'size' bytes: the smallest slab whose unused tail is at most
 * 1/8 of it, or failing that by CONFIG_MM_SLAB_MAX_ORDER (or the largest
 * block, if that is smaller), the first that holds an object.  The cache
 * then joins the arena's list, and the arena learns whom to ask for pages
 * when it runs dry.
 */
int __cache_init(struct mm_arena *a, struct kmem_cache *c, size_t size, size_t align)
{
	size_t bytes;
	unsigned int order;

	if (size - 1 >= MM_MAX_BLOCK || (align & (align - 1)) || align > MM_PAGE_SIZE)
		return -1;
	if (align < sizeof(void *))
		align = sizeof(void *);
#if IS_ENABLED(CONFIG_MM_STATS)
	c->object_size = (unsigned int)size;
	c->align = (unsigned int)align;
#endif
	if (c->ctor) {
		size = ALIGN(size, sizeof(void *));
		c->offset = (unsigned int)size;
		size += sizeof(void *);
	}
	size = ALIGN(size, align);
	for (order = 0; order <= MM_MAX_ORDER; order++) {
		bytes = (MM_PAGE_SIZE << order) - sizeof(struct slab);
		if (bytes >= size &&
		    (order >= min_t(unsigned int, CONFIG_MM_SLAB_MAX_ORDER, MM_MAX_ORDER) ||
		     bytes % size * 8 <= bytes))
			break;
	}
	if (order > MM_MAX_ORDER)
		return -1;
	c->size = (unsigned int)size;
	c->objects = (unsigned int)(bytes / size);
	c->order = order;
	c->next = a->caches;
	a->caches = c;
	a->reclaim = reap_locked;
	return 0;
}

static struct slab *new_slab(struct mm_arena *a, struct kmem_cache *c)
{
	char *obj;
	struct slab *s;
	void **link;

	/* A destroyed cache has no slab (tiny.h): its every allocation gets here. */
	if (IS_ENABLED(CONFIG_MM_CHECKS) && !cache_link(a, c)) {
		mm_report_bug(a, "kmem_cache_alloc", "%p is no cache (destroyed already?)", c);
		return NULL;
	}
	obj = __alloc_pages_locked(a, c->order, PT_SLAB);
	if (!obj)
		return NULL;
	s = slab_of(addr_to_pfn(obj), c->order);
	s->cache = c;
	s->inuse = 0;
	link = &s->freelist;
	for (unsigned int i = 0; i < c->objects; i++, obj += c->size) {
		if (c->ctor)
			c->ctor(obj);
		*link = obj;
		link = free_ptr(c, obj);
	}
	*link = NULL;
	s->next = c->partial;
	c->partial = s;
	count_slabs(c, 1);
	return s;
}

void *kmem_cache_alloc(struct kmem_cache *c)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags = arena_lock(a);
	void *obj = NULL;

	/* With the checks a NULL handle goes to new_slab(), which reports it. */
	if (((!IS_ENABLED(CONFIG_MM_CHECKS) || c) && c->partial) || new_slab(a, c)) {
		struct slab *s = c->partial;

		obj = s->freelist;
		s->freelist = *free_ptr(c, obj);
		s->inuse++;
		c->active++;
		if (!s->freelist)
			c->partial = s->next;
	}
	arena_unlock(a, flags);
	return obj;
}

/* The stride: the object and its padding are all the user's. */
unsigned int kmem_cache_size(struct kmem_cache *c)
{
	return c->size;
}

#if IS_ENABLED(CONFIG_MM_CHECKS)
__noinline int __slab_bad_free(struct slab *s, const void *obj)
{
	struct kmem_cache *c = s->cache;
	size_t off = (size_t)((const char *)obj - (char *)slab_base(c, s));

	if (off % c->size || off / c->size >= c->objects)
		return SLAB_FREE_MIDDLE;
	for (void *f = s->freelist; f; f = *free_ptr(c, f))
		if (f == obj)
			return SLAB_FREE_TWICE;
	/* Descriptors are kmalloc objects; a live one is on the arena's list. */
	if (!c->name && cache_link(&mm_arena_default, obj))
		return SLAB_FREE_CACHE;
	return 0;
}

/* 0 if obj may go back on s's free list; otherwise reported, -1. */
static int check_free(struct mm_arena *a, struct slab *s, void *obj, const char *caller)
{
	int bad = __slab_bad_free(s, obj);

	if (!bad)
		return 0;
	mm_report_bug(a, cache_name(s->cache), "%s: %p: %s", caller, obj,
		      bad == SLAB_FREE_MIDDLE ? "pointer into the middle of an object" :
		      bad == SLAB_FREE_TWICE ? "Object already free" :
		      "is a kmem_cache (use kmem_cache_destroy)");
	return -1;
}
#else
static inline int check_free(struct mm_arena *a, struct slab *s, void *obj,
			     const char *caller)
{
	return 0;
}
#endif

/* Lock held; s is the slab that holds obj. */
void __slab_free(struct mm_arena *a, struct slab *s, void *obj, const char *caller)
{
	struct kmem_cache *c = s->cache;

	if (check_free(a, s, obj, caller))
		return;
	if (!s->freelist) {
		s->next = c->partial;
		c->partial = s;
	}
	*free_ptr(c, obj) = s->freelist;
	s->freelist = obj;
	s->inuse--;
	c->active--;
}

void kmem_cache_free(struct kmem_cache *c, void *obj)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags;
	uint8_t *m;

	/* Unchecked, the object's own slab names its cache, as in kfree(). */
	if (!IS_ENABLED(CONFIG_MM_CHECKS)) {
		kfree(obj);
		return;
	}
	if (!obj)
		return;
	flags = arena_lock(a);
	m = __block_head(a, obj);
	if (m && meta_type(*m) == PT_SLAB &&
	    slab_of(meta_pfn(a, m), meta_order(*m))->cache == c)
		__slab_free(a, slab_of(meta_pfn(a, m), meta_order(*m)), obj, "kmem_cache_free");
	else
		mm_report_bug(a, cache_name(c),
			      "kmem_cache_free: %p is not an object of this cache", obj);
	arena_unlock(a, flags);
}

size_t kmem_cache_shrink(struct kmem_cache *c)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags = arena_lock(a);
	size_t pages = 0;

	if (IS_ENABLED(CONFIG_MM_CHECKS) && !cache_link(a, c))
		mm_report_bug(a, "kmem_cache_shrink", "%p is no cache (destroyed already?)", c);
	else
		pages = shrink_locked(a, c);
	arena_unlock(a, flags);
	return pages;
}

size_t kmem_cache_reap(struct mm_arena *a)
{
	mm_flags_t flags = arena_lock(a);
	size_t pages = reap_locked(a);

	arena_unlock(a, flags);
	return pages;
}

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned int flags, kmem_ctor_t ctor)
{
	struct mm_arena *a = &mm_arena_default;
	struct kmem_cache *c = kzalloc(sizeof(*c));
	mm_flags_t lock;
	int err = -1;

	if (flags & SLAB_HWCACHE_ALIGN && align < CONFIG_ARCH_CACHE_LINE)
		align = CONFIG_ARCH_CACHE_LINE;
	if (c) {
		c->name = name ? name : "cache";
		c->ctor = ctor;
		lock = arena_lock(a);
		err = __cache_init(a, c, size, align);
		arena_unlock(a, lock);
	}
	if (err) {
		kfree(c);
		c = NULL;
		if (flags & SLAB_PANIC)
			mm_panic("kmem_cache_create failed");
	}
	return c;
}

int kmem_cache_destroy(struct kmem_cache *c)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags;
	struct kmem_cache **pp;

	if (!c)
		return 0;
	flags = arena_lock(a);
	/*
	 * Found first: a destroyed cache's other words are a freed object's.
	 * kmalloc's classes (no name) are kmalloc's, which goes on using them.
	 */
	pp = cache_link(a, c);
	if (IS_ENABLED(CONFIG_MM_CHECKS) && (!pp || !c->name)) {
		mm_report_bug(a, "kmem_cache_destroy", "%p is %s", c,
			      pp ? "kmalloc's own cache" : "no cache (destroyed already?)");
		goto refuse;
	}
	if (c->active) {
		mm_report_bug(a, c->name, "Slab cache still has objects: %lu of %u bytes",
			      c->active, c->size);
		goto refuse;
	}
	/* No object is allocated, so every slab is empty and on 'partial'. */
	shrink_locked(a, c);
	*pp = c->next;
	arena_unlock(a, flags);
	kfree(c);
	return 0;
refuse:
	arena_unlock(a, flags);
	return -1;
}

#if IS_ENABLED(CONFIG_MM_STATS) || IS_ENABLED(CONFIG_MM_REPORTS)
/* Lock held.  Empty slabs wait on the partial list; full ones are on none. */
static unsigned long empty_slabs(const struct kmem_cache *c)
{
	unsigned long n = 0;

	for (struct slab *s = c->partial; s; s = s->next)
		n += !s->inuse;
	return n;
}
#endif

#if IS_ENABLED(CONFIG_MM_STATS)
void kmem_cache_info(struct kmem_cache *c, struct kmem_cache_info *info)
{
	struct mm_arena *a = &mm_arena_default;
	mm_flags_t flags = arena_lock(a);

	memset(info, 0, sizeof(*info));
	info->name = cache_name(c);
	info->object_size = c->object_size;
	info->size = c->size;
	info->align = c->align;
	info->objs_per_slab = c->objects;
	info->pages_per_slab = 1u << c->order;
	info->active_objs = c->active;
	info->num_objs = c->nr_slabs * c->objects;
	info->num_slabs = c->nr_slabs;
	info->empty_slabs = empty_slabs(c);
	info->active_slabs = c->nr_slabs - info->empty_slabs;
	arena_unlock(a, flags);
}
#endif

#if IS_ENABLED(CONFIG_MM_REPORTS)
void mm_slabinfo(struct mm_arena *a)
{
	mm_flags_t flags;

	mm_printf(SLABINFO_HEADER);
	flags = arena_lock(a);
	for (struct kmem_cache *c = a->caches; c; c = c->next) {
		if (c->name)
			mm_printf("%-17s", c->name);
		else
			mm_printf("kmalloc-%-9u", c->size);
		mm_printf(SLABINFO_COLUMNS, c->active, c->nr_slabs * c->objects, (size_t)c->size,
			  (unsigned int)c->objects, 1u << c->order, c->nr_slabs - empty_slabs(c), c->nr_slabs);
	}
	arena_unlock(a, flags);
}
#endif
