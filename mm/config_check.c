// SPDX-License-Identifier: MIT
/*
 * Constraints between options that Kconfig cannot state, checked once.
 *
 * Kconfig bounds an option by a constant or by another option of the same
 * unit (MM_HEAP_SPAN_ORDER by MM_MAX_ORDER); it has no arithmetic, so a
 * bound in other units -- bytes against KiB, KiB against pages of
 * 2^MM_PAGE_SHIFT bytes -- is asserted here and documented in the help
 * of the options it ties.  The top Makefile compiles this file, warnings
 * off and nothing generated, before any object: a configuration that
 * breaks a rule stops the build with that rule's message, which names the
 * options, their values and what to change, rather than with whatever the
 * first object to trip over it says (a heap whose least size is its
 * greatest made heap.h's size test a comparison that -Werror refused).
 *
 * Not part of libmm.a.
 */
#include <mm/mm.h>

#define __stringify_1(x)	#x
#define __stringify(x)		__stringify_1(x)

/*
 * Kconfig bounds the cache line (4 to 256) but cannot ask for a power of
 * two; SLAB_HWCACHE_ALIGN rounds with a mask, and a line of 211 bytes
 * gave objects misaligned to it.
 */
static_assert((CONFIG_ARCH_CACHE_LINE & (CONFIG_ARCH_CACHE_LINE - 1)) == 0,
	      "CONFIG_ARCH_CACHE_LINE=" __stringify(CONFIG_ARCH_CACHE_LINE)
	      " is no power of two: SLAB_HWCACHE_ALIGN aligns objects to it;"
	      " set the machine's line size (16, 32, 64, 128 ...)");

#if IS_ENABLED(CONFIG_MM_HEAP)
#include "heap_layout.h"

/* Kconfig keeps the heap off the 32-bit targets it knows; not a 32-bit host. */
static_assert(sizeof(size_t) == 8 && sizeof(void *) == 8,
	      "CONFIG_MM_HEAP needs a 64-bit target (a block's header is two 8-byte"
	      " words): turn MM_HEAP off");

static_assert(HEAP_MIN < HEAP_MAX,
	      "CONFIG_MM_HEAP_MIN=" __stringify(CONFIG_MM_HEAP_MIN)
	      " (bytes) must be below CONFIG_MM_HEAP_MAX_KB="
	      __stringify(CONFIG_MM_HEAP_MAX_KB) " (KiB) times 1024, or the heap"
	      " serves no size: lower MM_HEAP_MIN or raise MM_HEAP_MAX_KB");

static_assert(HEAP_MAX + BLOCK_MIN <= SPAN_AREA,
	      "a heap block of CONFIG_MM_HEAP_MAX_KB=" __stringify(CONFIG_MM_HEAP_MAX_KB)
	      " KiB does not fit a span of 2^CONFIG_MM_HEAP_SPAN_ORDER="
	      __stringify(CONFIG_MM_HEAP_SPAN_ORDER) " pages of 2^CONFIG_MM_PAGE_SHIFT="
	      __stringify(CONFIG_MM_PAGE_SHIFT) " bytes, less its header (under 100"
	      " bytes, and 1/128 of the span with MM_CHECKS): lower MM_HEAP_MAX_KB"
	      " (to half the span, which always fits), or raise MM_HEAP_SPAN_ORDER (at most"
	      " CONFIG_MM_MAX_ORDER=" __stringify(CONFIG_MM_MAX_ORDER) ") or MM_PAGE_SHIFT");
#endif
