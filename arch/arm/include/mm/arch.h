/* SPDX-License-Identifier: MIT */
/*
 * ARM Cortex-M: lock hooks.  CONFIG_MM_LOCK_IRQ masks interrupts with
 * PRIMASK around each critical section and restores the previous state, so
 * the allocator may be called from handlers and from thread mode alike.
 * The critical sections are O(MM_MAX_ORDER) or O(objects per slab) long,
 * never a walk over the heap.
 */
#ifndef MM_ARCH_H
#define MM_ARCH_H

#include <mm/compiler.h>

#if IS_ENABLED(CONFIG_MM_LOCK_IRQ)

typedef struct { } arch_lock_t;
#define ARCH_LOCK_INIT { }

static __always_inline void arch_lock_init(arch_lock_t *l)
{
}

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	unsigned long primask;

	__asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) :: "memory");
	return primask;
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long primask)
{
	__asm__ volatile("msr primask, %0" :: "r"(primask) : "memory");
}

#else
#include <mm/arch-generic-lock.h>
#endif

#endif /* MM_ARCH_H */
