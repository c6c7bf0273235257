/* SPDX-License-Identifier: MIT */
/*
 * /proc/slabinfo's version 2.1 layout, for both cores' mm_slabinfo(): the
 * header, and the columns after a cache's name (printed "%-17s").  The
 * tunables and the shared column are always 0: mm has no per-CPU arrays
 * to tune.
 */
#ifndef MM_SLABINFO_H
#define MM_SLABINFO_H

#define SLABINFO_HEADER							\
	"slabinfo - version: 2.1\n"					\
	"# name            <active_objs> <num_objs> <objsize> <objperslab> " \
	"<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : " \
	"slabdata <active_slabs> <num_slabs> <sharedavail>\n"

/* active_objs num_objs objsize(size_t) objperslab pagesperslab, active_slabs num_slabs */
#define SLABINFO_COLUMNS						\
	" %6lu %6lu %6zu %4u %4u : tunables    0    0    0 : slabdata %6lu %6lu      0\n"

#endif /* MM_SLABINFO_H */
