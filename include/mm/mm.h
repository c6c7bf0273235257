/* SPDX-License-Identifier: MIT */
/*
 * mm: a Linux kernel-style memory-management framework for embedded C.
 *
 *	backend --regions--> buddy (arena) --slabs--> kmem_cache --> kmalloc
 *	                                   --blocks---------------------^
 *	                                                     malloc facade
 *
 * Include this one header for everything; each layer's header can also be
 * included on its own.
 */
#ifndef MM_MM_H
#define MM_MM_H

#include <mm/compiler.h>
#include <mm/page.h>
#include <mm/backend.h>
#include <mm/arena.h>
#include <mm/page_alloc.h>
#include <mm/report.h>
#if IS_ENABLED(CONFIG_MM_SLAB)
#include <mm/slab.h>
#endif
#include <mm/malloc.h>

MM_BEGIN_DECLS

#define MM_VERSION "0.1.0"

/*
 * Set up the default arena now rather than on first use (for instance
 * before interrupts that allocate are enabled).  Returns 0 or -1.
 */
int mm_init(void);

MM_END_DECLS

#endif /* MM_MM_H */
