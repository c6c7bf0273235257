// SPDX-License-Identifier: MIT
/*
 * mm_init(): set everything up now rather than on first use.  Every layer
 * also initialises itself lazily, so calling this is optional; it is for
 * programs that want setup out of the way before interrupts that allocate
 * are enabled, or want to know at boot that the heap is there.
 */
#include <mm/mm.h>

int mm_init(void)
{
	/* The tiny core sets its arena up with kmalloc's classes. */
	if (IS_ENABLED(CONFIG_MM_TINY))
		return mm_default_arena() ? 0 : -1;
	if (!mm_default_arena())
		return -1;
#if IS_ENABLED(CONFIG_MM_KMALLOC)
	if (!kmalloc_slab(1))
		return -1;
#endif
	return 0;
}
