// SPDX-License-Identifier: MIT
/*
 * kmalloc's heap: boundary-tag blocks in spans of buddy pages, for the
 * medium sizes (CONFIG_MM_HEAP_MIN < size <= CONFIG_MM_HEAP_MAX_KB).
 *
 * Size classes cost memory three ways that grow with the object size: a
 * request rounds up to its class (9% with quarter steps), a slab's free
 * slots serve its class only, and a block that realloc() shrank keeps its
 * class until it is halved (krealloc()), since an object cannot be cut.
 * Below a few hundred bytes these are a few bytes an object and the speed
 * of a slab is worth them; above, a program with mixed sizes keeps 1.2
 * times glibc's peak RSS (1.4 while a shrunk object kept its class for
 * good), most of it in those three.  glibc's chunks
 * waste none of it: a block is as big as asked (to 16 bytes), a free one
 * merges with its free neighbours into one that any size can use, and a
 * shrink cuts the tail off.  This file does the same for kmalloc.
 *
 * A span is a buddy block of 2^CONFIG_MM_HEAP_SPAN_ORDER pages, a PT_LARGE
 * block whose pages carry KMALLOC_HEAP_CLASS in their class byte, so that
 * kfree() and ksize() know a heap block from the page alone.  It holds a
 * header, then blocks that tile it exactly, then a last header of size 0
 * that is never free and stops the walk.  A block is as glibc's chunk:
 *
 *	+-----------+-----------+------------------------------+
 *	| prev_size | size|bits | payload ...                  | (next's prev_size)
 *	+-----------+-----------+------------------------------+
 *	b           b + 8       b + 16 = what kmalloc returns
 *
 * prev_size is valid only while the block before is free, so a block in
 * use lends its last eight bytes to the next block's header and costs
 * eight bytes in all.  The size is a multiple of 16, which keeps every
 * payload 16-aligned and leaves four low bits: HB_FREE, and HB_PREV_FREE
 * (the block before is free: its size is in prev_size).  No two free
 * blocks are neighbours: a free merges at once, both ways, in O(1).
 *
 * Free blocks are found as TLSF finds them (Masmano et al., 2004): lists
 * by size, 16 per power of two, and a bitmap of non-empty lists per power
 * and one of powers, so a search is two bit scans.  The search looks
 * first at the head of the request's own list, which may hold a block big
 * enough (the best fit, for the common request of a size just freed),
 * then at the first non-empty list of larger blocks, where any block is.
 * A block is cut to the size asked and the rest goes back to the lists.
 *
 * A span that empties stays, one at a time, for the next request, and is
 * given back at the next one or by the reclaim hook (malloc_trim()).
 * Where no span can be had, heap_alloc() fails quietly and kmalloc serves
 * the request in whole pages.  Everything here runs with the arena lock
 * held but heap_alloc(), which takes it.
 *
 * The price is speed: every allocation and free takes the lock (skipped
 * while a process has one thread) and touches two or three other blocks
 * -- list neighbours, the block merged with -- where a slab object is a
 * pointer swap in the thread's magazine.  Magazines of class-sized blocks
 * in front were tried: they won back half the time and gave back most of
 * the memory (the rounding, and parked blocks that cannot merge).  Hence
 * CONFIG_MM_HEAP_MIN: 512 bytes for memory, 4 KiB for speed -- and
 * between the two, the classes that spill here past a bound of slabs
 * (CONFIG_MM_HEAP_SPILL_KB, kmalloc.c).
 *
 * With CONFIG_MM_CHECKS every span keeps a bitmap with a bit per 16 bytes,
 * set where a block starts: a free of anything that is not a block's
 * start -- a pointer into a block, a block already merged away -- is then
 * reported as exactly as a slab reports one.  Without it, free() checks
 * what the header itself can say (a plausible size, not free already).
 */
#include <stddef.h>
#include <string.h>
#include "heap_layout.h"

#define HB_FREE		((size_t)1)
#define HB_PREV_FREE	((size_t)2)
#define HB_BITS		((size_t)15)

static_assert(sizeof(struct heap_block) == BLOCK_MIN, "a free block's fields fill a minimum block");
static_assert(offsetof(struct heap_block, next) == HEAD_BYTES, "the payload starts after the header");
/* What the options must allow is config_check.c's to say; these are ours. */
static_assert(SPAN_ORDER <= MM_MAX_ORDER, "a span is a buddy block");
static_assert(HEAP_MIN >= 2 * GRANULE, "below the heap, slabs");

/*
 * TLSF's index: sizes below SMALL (256) in 16 lists of 16 bytes (fl 0),
 * then 16 lists per power of two.
 */
#define SL_SHIFT	4
#define SL_COUNT	(1u << SL_SHIFT)
#define FL_SHIFT	(SL_SHIFT + 4)		/* log2(GRANULE) */
#define SMALL		((size_t)1 << FL_SHIFT)
#define FL_COUNT	(MM_PAGE_SHIFT + SPAN_ORDER - FL_SHIFT + 1)

static_assert(FL_COUNT <= 32, "first-level bitmap is 32 bits");

static struct heap {
	uint32_t fl_map;
	uint32_t sl_map[FL_COUNT];
	struct heap_block *lists[FL_COUNT][SL_COUNT];
	struct list_head spans;
	size_t free_bytes;		/* in free blocks: mallinfo2()'s */
	unsigned long nr_spans, nr_empty;
	struct mm_arena *arena;		/* the default arena, once it has a span */
} heap = { .spans = LIST_HEAD_INIT(heap.spans) };

/* ---- Blocks ------------------------------------------------------------ */

/*
 * The block header 'off' bytes from 'base'.  Every block starts on a
 * 16-byte boundary; through void *, as the compilers that check casts'
 * alignment (clang's -Wcast-align) cannot know it.
 */
static __always_inline struct heap_block *block_at(const void *base, ptrdiff_t off)
{
	return (struct heap_block *)(void *)((char *)base + off);
}

static __always_inline size_t block_size(const struct heap_block *b)
{
	return b->head & ~HB_BITS;
}

static __always_inline struct heap_block *block_next(struct heap_block *b)
{
	return block_at(b, block_size(b));
}

static __always_inline struct heap_block *block_of(const void *p)
{
	return block_at(p, -(ptrdiff_t)HEAD_BYTES);
}

static __always_inline void *block_payload(struct heap_block *b)
{
	return (char *)b + HEAD_BYTES;
}

/* A block's size for a request: the payload and the next's prev_size word. */
static __always_inline size_t size_for(size_t size)
{
	size_t n = ALIGN(size + HEAD_BYTES - sizeof(size_t), GRANULE);

	return n < BLOCK_MIN ? BLOCK_MIN : n;
}

/* b is free now, of 'size' bytes: say so in it and in the block after. */
static __always_inline void block_set_free(struct heap_block *b, size_t size)
{
	struct heap_block *n = block_at(b, size);

	b->head = size | HB_FREE | (b->head & HB_PREV_FREE);
	n->prev_size = size;
	n->head |= HB_PREV_FREE;
}

/* b is in use, of 'size' bytes. */
static __always_inline void block_set_used(struct heap_block *b, size_t size)
{
	struct heap_block *n = block_at(b, size);

	b->head = size | (b->head & HB_PREV_FREE);
	n->head &= ~HB_PREV_FREE;
}

/* ---- The start bitmap (CONFIG_MM_CHECKS) ------------------------------- */

static __always_inline struct heap_span *span_of(const void *p)
{
	return (struct heap_span *)((uintptr_t)p & ~(uintptr_t)(SPAN_BYTES - 1));
}

#if IS_ENABLED(CONFIG_MM_CHECKS)
static __always_inline size_t start_bit(const struct heap_block *b)
{
	return ((uintptr_t)b & (SPAN_BYTES - 1)) / GRANULE;
}

static __always_inline void mark_start(struct heap_block *b)
{
	size_t i = start_bit(b);

	span_of(b)->starts[i / BITS_PER_LONG] |= 1UL << (i % BITS_PER_LONG);
}

static __always_inline void clear_start(struct heap_block *b)
{
	size_t i = start_bit(b);

	span_of(b)->starts[i / BITS_PER_LONG] &= ~(1UL << (i % BITS_PER_LONG));
}

static __always_inline int is_start(const struct heap_block *b)
{
	size_t i = start_bit(b);

	return (span_of(b)->starts[i / BITS_PER_LONG] >> (i % BITS_PER_LONG)) & 1;
}

static __maybe_unused size_t nr_starts(const struct heap_span *s)
{
	size_t bits = 0;

	for (size_t i = 0; i < MAP_LONGS; i++)
		bits += (size_t)__builtin_popcountl(s->starts[i]);
	return bits;
}

/*
 * The block holding b, which is no block's start: the last start before
 * it.  There is one, the span's first block, which always starts one.
 */
static struct heap_block *block_holding(const struct heap_block *b)
{
	struct heap_span *s = span_of(b);
	size_t i = start_bit(b), w = i / BITS_PER_LONG;
	unsigned long bits = s->starts[w] & ((1UL << (i % BITS_PER_LONG)) - 1);

	while (!bits)
		bits = s->starts[--w];
	return block_at(s, (w * BITS_PER_LONG + ilog2(bits)) * GRANULE);
}
#else
static __always_inline void mark_start(struct heap_block *b)
{
}

static __always_inline void clear_start(struct heap_block *b)
{
}

static __always_inline int is_start(const struct heap_block *b)
{
	return 1;
}

static __maybe_unused size_t nr_starts(const struct heap_span *s)
{
	return 0;
}

static __always_inline struct heap_block *block_holding(const struct heap_block *b)
{
	return (struct heap_block *)b;
}
#endif

/* ---- The free lists ---------------------------------------------------- */

static __always_inline void mapping(size_t size, unsigned int *fl, unsigned int *sl)
{
	if (size < SMALL) {
		*fl = 0;
		*sl = (unsigned int)(size / (SMALL / SL_COUNT));
	} else {
		unsigned int f = fls_long(size) - 1;

		*sl = (unsigned int)(size >> (f - SL_SHIFT)) ^ SL_COUNT;
		*fl = f - FL_SHIFT + 1;
	}
}

static void list_insert(struct heap_block *b, size_t size)
{
	unsigned int fl, sl;
	struct heap_block *h;

	mapping(size, &fl, &sl);
	h = heap.lists[fl][sl];
	b->next = h;
	b->prev = NULL;
	if (h)
		h->prev = b;
	heap.lists[fl][sl] = b;
	heap.sl_map[fl] |= 1u << sl;
	heap.fl_map |= 1u << fl;
	heap.free_bytes += size;
}

static void list_remove(struct heap_block *b, size_t size)
{
	unsigned int fl, sl;

	heap.free_bytes -= size;
	if (b->next)
		b->next->prev = b->prev;
	if (b->prev) {
		b->prev->next = b->next;
		return;
	}
	mapping(size, &fl, &sl);
	heap.lists[fl][sl] = b->next;
	if (!b->next) {
		heap.sl_map[fl] &= ~(1u << sl);
		if (!heap.sl_map[fl])
			heap.fl_map &= ~(1u << fl);
	}
}

/*
 * A free block of at least 'size' bytes, or NULL: the head of size's own
 * list if it is big enough, else the head of the first non-empty list of
 * larger blocks.
 */
static struct heap_block *find_free(size_t size)
{
	unsigned int fl, sl;
	uint32_t map;
	struct heap_block *b;

	mapping(size, &fl, &sl);
	b = heap.lists[fl][sl];
	if (b && block_size(b) >= size)
		return b;
	map = sl + 1 < SL_COUNT ? heap.sl_map[fl] & (~0u << (sl + 1)) : 0;
	if (!map) {
		uint32_t fmap = fl + 1 < 32 ? heap.fl_map & (~0u << (fl + 1)) : 0;

		if (!fmap)
			return NULL;
		fl = __ffs(fmap);
		map = heap.sl_map[fl];
	}
	return heap.lists[fl][__ffs(map)];
}

/* ---- Spans ------------------------------------------------------------- */

static void span_set_class(struct mm_region *r, uintptr_t pfn, unsigned int k)
{
	for (uintptr_t i = 0; i < ((uintptr_t)1 << SPAN_ORDER); i++)
		*page_class(r, pfn + i) = (uint8_t)k;
}

static __always_inline struct heap_block *span_first(struct heap_span *s)
{
	return block_at(s, SPAN_FIRST);
}

static __always_inline struct heap_block *span_end(struct heap_span *s)
{
	return block_at(s, SPAN_BYTES - HEAD_BYTES);
}

/* Make the pages at s a span: one free block, and the stop at the end. */
static void span_add(struct mm_arena *a, struct heap_span *s)
{
	uintptr_t pfn = addr_to_pfn(s);
	struct heap_block *b = span_first(s), *end = span_end(s);

	heap.arena = a;
	span_set_class(region_of(a, pfn), pfn, KMALLOC_HEAP_CLASS);
	memset(s->starts, 0, sizeof(s->starts));
	list_add(&s->list, &heap.spans);
	heap.nr_spans++;
	heap.nr_empty++;
	end->head = 0;			/* size 0, in use: the walk stops */
	b->head = 0;			/* nothing before it */
	mark_start(b);
	mark_start(end);
	block_set_free(b, SPAN_AREA);
	list_insert(b, SPAN_AREA);
}

static void span_release(struct mm_arena *a, struct heap_span *s)
{
	uintptr_t pfn = addr_to_pfn(s);
	struct mm_region *r = region_of(a, pfn);

	list_remove(span_first(s), SPAN_AREA);
	list_del(&s->list);
	heap.nr_spans--;
	heap.nr_empty--;
	span_set_class(r, pfn, 0);
	__free_pages_locked(a, r, pfn, SPAN_ORDER);
}

/* A free block of the whole area: no two free blocks are neighbours. */
static __always_inline int span_is_empty(size_t size)
{
	return size == SPAN_AREA;
}

/* ---- Allocation -------------------------------------------------------- */

/*
 * Take 'size' bytes (a block size) from free block b, at 'off' bytes into
 * it (0, or for an alignment at least BLOCK_MIN): the bytes before and
 * after, if any, stay free.
 */
static void *take_block(struct heap_block *b, size_t size, size_t off)
{
	size_t have = block_size(b);

	list_remove(b, have);
	if (have == SPAN_AREA)
		heap.nr_empty--;
	if (off) {
		struct heap_block *f = b;

		b = block_at(b, off);
		b->head = 0;
		block_set_free(f, off);
		list_insert(f, off);
		mark_start(b);
		have -= off;
	}
	if (have - size >= BLOCK_MIN) {
		struct heap_block *rest = block_at(b, size);

		rest->head = 0;
		block_set_free(rest, have - size);
		list_insert(rest, have - size);
		mark_start(rest);
	} else {
		size = have;
	}
	block_set_used(b, size);
	return block_payload(b);
}

/*
 * Where in free block b a payload aligned to 'align' starts: the offset
 * of its block, 0 or at least BLOCK_MIN (the bytes before must make a
 * free block); or SIZE_MAX if b is too small for 'size' bytes there.
 */
static size_t align_offset(struct heap_block *b, size_t size, size_t align)
{
	uintptr_t pay = (uintptr_t)block_payload(b);
	size_t off = (size_t)(ALIGN(pay, align) - pay);

	while (off && off < BLOCK_MIN)
		off += align;
	return off + size <= block_size(b) ? off : SIZE_MAX;
}

static void *alloc_locked(size_t size, size_t align)
{
	struct heap_block *b;
	size_t off;

	if (align <= GRANULE) {
		b = find_free(size);
		return b ? take_block(b, size, 0) : NULL;
	}
	/* Room for the worst offset: then any block found has one that works. */
	b = find_free(size + align + BLOCK_MIN);
	if (!b)
		return NULL;
	off = align_offset(b, size, align);
	VM_BUG_ON(off == SIZE_MAX);
	return take_block(b, size, off);
}

/*
 * A new span, lock held: from the free lists, or after growing the arena
 * or reclaiming empty slabs and spans, as a slab refill does -- but never
 * the OOM hook: a request that finds no span is served in whole pages by
 * kmalloc's ordinary path, which calls it if those fail too.
 */
static struct heap_span *span_new(struct mm_arena *a)
{
	struct heap_span *s = __alloc_pages_locked(a, SPAN_ORDER, PT_LARGE);

	/* Single pages parked in the page cache may make up a span. */
	if (!s && __pcp_drain(a, UINT32_MAX))
		s = __alloc_pages_locked(a, SPAN_ORDER, PT_LARGE);
	if (!s && (__arena_grow(a, SPAN_ORDER) == 0 || (a->reclaim && a->reclaim(a))))
		s = __alloc_pages_locked(a, SPAN_ORDER, PT_LARGE);
	return s;
}

/* 'size' bytes aligned to 'align', or NULL: the caller falls back to pages. */
void *heap_alloc(struct mm_arena *a, size_t size, size_t align)
{
	size_t need = size_for(size);
	mm_flags_t flags;
	void *p;

	/* What even a new span could not hold goes elsewhere (whole pages). */
	if (size > HEAP_MAX || align > HEAP_MAX ||
	    need + (align > GRANULE ? align + BLOCK_MIN : 0) > SPAN_AREA)
		return NULL;
	flags = arena_lock(a);
	while (!(p = alloc_locked(need, align))) {
		struct heap_span *s = span_new(a);

		if (!s)
			break;
		span_add(a, s);
	}
	arena_unlock(a, flags);
	return p;
}

/* ---- Freeing ----------------------------------------------------------- */

/*
 * Is b a block in use, as far as can be told?  NULL if so, else what it
 * is.  With the start bitmap, exactly; without, its size must stay inside
 * the span and the block after must agree that b is in use.  A block
 * merged into the one before it was marked free then, so that a second
 * free of it says what it is.  With the bitmap that mark counts only
 * inside a free block: inside a block in use the word is the caller's
 * data, and a pointer there is no block's start whatever the data is.
 */
static const char *block_bad(struct heap_block *b, const void *p)
{
	static const char *const not_start = "not the start of a kmalloc block";
	uintptr_t off = (uintptr_t)b - (uintptr_t)span_first(span_of(b));
	size_t size;

	if ((uintptr_t)p % GRANULE || off >= SPAN_AREA)
		return not_start;
	if (IS_ENABLED(CONFIG_MM_CHECKS) && !is_start(b))
		return block_holding(b)->head & b->head & HB_FREE ? "already free" : not_start;
	if (b->head & HB_FREE)
		return "already free";
	size = block_size(b);
	if (size < BLOCK_MIN || size > SPAN_AREA - off || (block_next(b)->head & HB_PREV_FREE))
		return not_start;
	return NULL;
}

static int block_check(struct mm_arena *a, struct heap_block *b, const void *p)
{
	const char *why = block_bad(b, p);

	if (likely(!why))
		return 1;
	if (why[0] == 'a')
		mm_report_bug(a, "kmalloc-heap", "Object already free: kfree of %p", p);
	else
		mm_report_bug(a, "kfree", "%p is %s", p, why);
	return 0;
}

/*
 * Free 'size' bytes at b, which is no longer in use, merging with the
 * free blocks on either side; a span that empties is kept if it is the
 * only empty one, else given back.
 */
static void release_block(struct mm_arena *a, struct heap_block *b, size_t size)
{
	struct heap_block *n = block_at(b, size);

	if (n->head & HB_FREE) {
		size_t ns = block_size(n);

		list_remove(n, ns);
		clear_start(n);
		size += ns;
	}
	if (b->head & HB_PREV_FREE) {
		struct heap_block *p = block_at(b, -(ptrdiff_t)b->prev_size);

		list_remove(p, b->prev_size);
		clear_start(b);
		/* A stale pointer to b now finds a free block: a double free. */
		b->head |= HB_FREE;
		size += b->prev_size;
		b = p;
	}
	block_set_free(b, size);
	if (span_is_empty(size)) {
		if (heap.nr_empty) {
			heap.nr_empty++;
			list_insert(b, size);
			span_release(a, span_of(b));
			/* Here, not in span_release(): reclaim's callers trim after their retry. */
			__arena_maybe_trim(a);
			return;
		}
		heap.nr_empty++;
	}
	list_insert(b, size);
}

void __heap_free_locked(struct mm_arena *a, void *p)
{
	struct heap_block *b = block_of(p);

	if (!block_check(a, b, p))
		return;
	release_block(a, b, block_size(b));
}

/* ksize(): 0 for anything but a block in use; lock held. */
size_t heap_usable_size(const void *p)
{
	struct heap_block *b = block_of(p);

	return block_bad(b, p) ? 0 : block_size(b) - sizeof(size_t);
}

/* ---- Resizing in place ------------------------------------------------- */

/*
 * The block at p made to hold 'size' bytes where it is: a shrink gives its
 * tail back (merged with a free block after it), a growth takes what it
 * needs of the free block after it.  1 if done, 0 if it must move, -1 if
 * p is no block in use (reported).
 */
int __heap_resize_locked(struct mm_arena *a, void *p, size_t size)
{
	struct heap_block *b = block_of(p), *n;
	size_t have, need;

	if (!block_check(a, b, p))
		return -1;
	have = block_size(b);
	/* Beyond the heap's sizes it moves, unless the block holds it already. */
	if (size > HEAP_MAX && size > have - sizeof(size_t))
		return 0;
	need = size_for(size);
	if (need > have) {
		n = block_next(b);
		if (!(n->head & HB_FREE) || have + block_size(n) < need)
			return 0;
		list_remove(n, block_size(n));
		clear_start(n);
		have += block_size(n);
		block_set_used(b, have);	/* n is part of b now */
	}
	if (have - need >= BLOCK_MIN) {
		n = block_at(b, need);
		block_set_used(b, need);
		n->head = 0;
		mark_start(n);
		release_block(a, n, have - need);
	}
	return 1;
}

/* Bytes in the heap's free blocks of arena a, lock held. */
size_t __heap_free_bytes(struct mm_arena *a)
{
	return a == heap.arena ? heap.free_bytes : 0;
}

/* ---- Reclaim ----------------------------------------------------------- */

/* Give back every empty span: pages freed. */
size_t __heap_reclaim_locked(struct mm_arena *a)
{
	struct heap_span *s, *t;
	size_t pages = 0;

	if (a != heap.arena)
		return 0;
	list_for_each_entry_safe(s, t, &heap.spans, list) {
		struct heap_block *b = span_first(s);

		if ((b->head & HB_FREE) && block_size(b) == SPAN_AREA) {
			span_release(a, s);
			pages += (size_t)1 << SPAN_ORDER;
		}
	}
	return pages;
}

/* ---- Validation (CONFIG_MM_VALIDATE) ----------------------------------- */

#if IS_ENABLED(CONFIG_MM_VALIDATE)
/* More free blocks than the spans can hold: a list that loops. */
static size_t list_bound(void)
{
	return heap.nr_spans * (SPAN_AREA / BLOCK_MIN);
}

/*
 * The span at pfn: blocks tile it up to the last header, each free one is
 * on the list its size maps to and has no free neighbour, the flags and
 * prev_size agree with the block before, and (checks) the start bitmap
 * has a bit exactly where a block starts.  Counts the free blocks.
 */
int __heap_validate_span(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
			 size_t *free_blocks, const char **why)
{
	struct heap_span *s = pfn_to_addr(pfn);
	struct heap_block *b = span_first(s), *end = span_end(s);
	size_t prev = 0, starts = 0, n;
	int prev_free = 0;

	for (uintptr_t i = 0; i < ((uintptr_t)1 << SPAN_ORDER); i++) {
		if (*page_class(r, pfn + i) != KMALLOC_HEAP_CLASS) {
			*why = "a heap span's page without the heap's class";
			return -1;
		}
	}
	while (b != end) {
		size_t size = block_size(b);

		if (size < BLOCK_MIN || size % GRANULE || size > (size_t)((char *)end - (char *)b)) {
			*why = "heap block of impossible size";
			return -1;
		}
		if (!!(b->head & HB_PREV_FREE) != prev_free || (prev_free && b->prev_size != prev)) {
			*why = "heap block's header disagrees with the block before";
			return -1;
		}
		if (!is_start(b)) {
			*why = "heap block without its start bit";
			return -1;
		}
		if (b->head & HB_FREE) {
			unsigned int fl, sl;
			struct heap_block *l;

			if (prev_free) {
				*why = "two free heap blocks side by side";
				return -1;
			}
			mapping(size, &fl, &sl);
			/* Bounded: a corrupt list may loop. */
			for (l = heap.lists[fl][sl], n = 0; l && l != b && n < list_bound(); l = l->next)
				n++;
			if (l != b) {
				*why = "free heap block not on its list";
				return -1;
			}
			(*free_blocks)++;
		}
		prev_free = !!(b->head & HB_FREE);
		prev = size;
		starts++;
		b = block_next(b);
	}
	if (!!(end->head & HB_PREV_FREE) != prev_free || block_size(end)) {
		*why = "heap span's last header is wrong";
		return -1;
	}
	if (IS_ENABLED(CONFIG_MM_CHECKS) && nr_starts(s) != starts + 1) {
		*why = "heap start bitmap has bits where no block starts";
		return -1;
	}
	return 0;
}

/* Every listed block is free and where its size says; their number. */
int __heap_validate_lists(struct mm_arena *a, size_t free_blocks, const char **why)
{
	size_t listed = 0, listed_bytes = 0, empty = 0;
	struct heap_span *s;

	if (a != heap.arena) {
		if (free_blocks)
			*why = "heap spans in an arena that is not the heap's";
		return free_blocks ? -1 : 0;
	}
	for (unsigned int fl = 0; fl < FL_COUNT; fl++) {
		for (unsigned int sl = 0; sl < SL_COUNT; sl++) {
			struct heap_block *prev = NULL;
			int bit = (heap.sl_map[fl] >> sl) & 1;

			if (bit != !!heap.lists[fl][sl] || (bit && !((heap.fl_map >> fl) & 1))) {
				*why = "heap list bitmaps disagree with the lists";
				return -1;
			}
			for (struct heap_block *b = heap.lists[fl][sl]; b; b = b->next) {
				unsigned int f, l;

				mapping(block_size(b), &f, &l);
				if (!(b->head & HB_FREE) || f != fl || l != sl || b->prev != prev) {
					*why = "heap list holds a block that does not belong";
					return -1;
				}
				prev = b;
				listed_bytes += block_size(b);
				if (++listed > list_bound()) {
					*why = "heap list loops";
					return -1;
				}
			}
		}
	}
	list_for_each_entry(s, &heap.spans, list) {
		struct heap_block *b = span_first(s);

		empty += (b->head & HB_FREE) && block_size(b) == SPAN_AREA;
	}
	if (listed != free_blocks) {
		*why = "heap lists and spans count different free blocks";
		return -1;
	}
	if (listed_bytes != heap.free_bytes) {
		*why = "heap's count of free bytes is wrong";
		return -1;
	}
	if (empty != heap.nr_empty || empty > 1) {
		*why = "heap's count of empty spans is wrong";
		return -1;
	}
	return 0;
}
#endif
