/* SPDX-License-Identifier: MIT */
/*
 * The layout of the heap's blocks and spans (CONFIG_MM_HEAP; heap.c says
 * how the heap works).  A header of its own so that config_check.c asks
 * the same definitions as heap.c whether a block of CONFIG_MM_HEAP_MAX_KB
 * fits a span: a span's header grows with the span (a bitmap of a bit per
 * 16 bytes with CONFIG_MM_CHECKS), so the largest block is not a round
 * fraction of the span.
 */
#ifndef MM_HEAP_LAYOUT_H
#define MM_HEAP_LAYOUT_H

#include <stddef.h>
#include "heap.h"

#define GRANULE		16u
#define HEAD_BYTES	16u		/* payload offset */
#define BLOCK_MIN	32u		/* header and two list links */

struct heap_block {
	size_t prev_size;		/* the block before, while it is free */
	size_t head;			/* size | HB_FREE | HB_PREV_FREE */
	struct heap_block *next, *prev;	/* on its free list, while free */
};

#define SPAN_ORDER	CONFIG_MM_HEAP_SPAN_ORDER
#define SPAN_BYTES	((size_t)MM_PAGE_SIZE << SPAN_ORDER)

/* The start bitmap: a bit per granule of the span (CONFIG_MM_CHECKS). */
#define MAP_BITS	(IS_ENABLED(CONFIG_MM_CHECKS) ? SPAN_BYTES / GRANULE : 0)
#define MAP_LONGS	((MAP_BITS + BITS_PER_LONG - 1) / BITS_PER_LONG)

struct heap_span {
	struct list_head list;		/* on heap.spans */
	unsigned long starts[MAP_LONGS];
};

/*
 * The first block, after the header: its prev_size word is never read (no
 * block before it), but it is a word the header must not own, and the
 * block must be 16-aligned so its payload is.  The last header sits 16
 * bytes from the end.
 */
#define SPAN_FIRST	ALIGN(sizeof(struct heap_span) + sizeof(size_t), GRANULE)
#define SPAN_AREA	(SPAN_BYTES - SPAN_FIRST - HEAD_BYTES)

#endif /* MM_HEAP_LAYOUT_H */
