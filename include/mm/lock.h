/* SPDX-License-Identifier: MIT */
/*
 * The one lock each arena holds, over the hooks the architecture provides
 * (<mm/arch.h>, from arch/<arch>/include): nothing, a pthread mutex, a
 * spinlock, interrupt masking, or the application's own (an RTOS mutex).
 *
 * mm_lock() returns the flags that mm_unlock() restores, as Linux's
 * spin_lock_irqsave(): on Cortex-M that is PRIMASK, so a critical section
 * entered from an interrupt handler leaves interrupts as it found them.
 */
#ifndef MM_LOCK_H
#define MM_LOCK_H

#include <mm/compiler.h>
#include <mm/arch.h>

typedef arch_lock_t mm_lock_t;
typedef unsigned long mm_flags_t;

#define MM_LOCK_INIT ARCH_LOCK_INIT

static __always_inline void mm_lock_init(mm_lock_t *lock)
{
	arch_lock_init(lock);
}

static __always_inline mm_flags_t mm_lock(mm_lock_t *lock)
{
	return arch_lock(lock);
}

static __always_inline void mm_unlock(mm_lock_t *lock, mm_flags_t flags)
{
	arch_unlock(lock, flags);
}

/*
 * The lock itself, even where mm_lock() would skip it (the host's mutex
 * while the process is single-threaded): for the fork handlers, whose
 * mutexes are taken in the parent, released there and reset in the child,
 * none of it depending on what the thread count says at the time.
 * mm_unlock() undoes mm_lock_raw() as well.
 */
#ifndef arch_lock_raw
#define arch_lock_raw	arch_lock
#define arch_unlock_raw	arch_unlock
#endif

static __always_inline mm_flags_t mm_lock_raw(mm_lock_t *lock)
{
	return arch_lock_raw(lock);
}

static __always_inline void mm_unlock_raw(mm_lock_t *lock, mm_flags_t flags)
{
	arch_unlock_raw(lock, flags);
}

#endif /* MM_LOCK_H */
