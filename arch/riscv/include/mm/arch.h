/* SPDX-License-Identifier: MIT */
/*
 * RISC-V bare metal: lock hooks.
 *
 * CONFIG_MM_LOCK_IRQ (machine mode): clear mstatus.MIE around each critical
 * section and restore the previous value, as PRIMASK does on Cortex-M, so
 * the allocator may be called from interrupt handlers and from the main
 * loop alike.  One csrrci to enter, one csrs to leave; no atomics, so no
 * A-extension or libatomic dependency.
 *
 * Otherwise: none, or the application's hooks (CONFIG_MM_LOCK_USER).
 */
#ifndef MM_ARCH_H
#define MM_ARCH_H

#include <mm/compiler.h>

#if IS_ENABLED(CONFIG_MM_LOCK_IRQ)

#define MSTATUS_MIE 0x8UL

typedef struct { } arch_lock_t;
#define ARCH_LOCK_INIT { }

static __always_inline void arch_lock_init(arch_lock_t *l)
{
}

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	unsigned long mstatus;

	__asm__ volatile(".option push\n\t.option arch, +zicsr\n\t"
			 "csrrci %0, mstatus, %1\n\t.option pop"
			 : "=r"(mstatus) : "i"(MSTATUS_MIE) : "memory");
	return mstatus & MSTATUS_MIE;
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long mie)
{
	__asm__ volatile(".option push\n\t.option arch, +zicsr\n\t"
			 "csrs mstatus, %0\n\t.option pop" :: "r"(mie) : "memory");
}

#else
#include <mm/arch-generic-lock.h>
#endif

#endif /* MM_ARCH_H */
