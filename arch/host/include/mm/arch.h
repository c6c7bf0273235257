/* SPDX-License-Identifier: MIT */
/*
 * Host (Linux userspace): lock hooks.  The pthread mutex is the safe
 * default; the spinlock spins on a relaxed load (test-and-test-and-set) and
 * yields the CPU so a preempted holder can finish.
 */
#ifndef MM_ARCH_H
#define MM_ARCH_H

#include <mm/compiler.h>

#if IS_ENABLED(CONFIG_MM_LOCK_PTHREAD)
#include <pthread.h>

typedef pthread_mutex_t arch_lock_t;
#define ARCH_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static __always_inline void arch_lock_init(arch_lock_t *l)
{
	pthread_mutex_init(l, NULL);
}

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	pthread_mutex_lock(l);
	return 0;
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long flags)
{
	pthread_mutex_unlock(l);
}

/*
 * The mutex itself, one thread or many: for the fork handlers (mm_lock_raw()).
 * The flags say "taken".
 */
static __always_inline unsigned long arch_lock_raw(arch_lock_t *l)
{
	pthread_mutex_lock(l);
	return 1;
}

static __always_inline void arch_unlock_raw(arch_lock_t *l, unsigned long flags)
{
	pthread_mutex_unlock(l);
}
#define arch_lock_raw arch_lock_raw

#elif IS_ENABLED(CONFIG_MM_LOCK_SPIN)
#include <sched.h>

typedef struct { int locked; } arch_lock_t;
#define ARCH_LOCK_INIT { 0 }

static __always_inline void arch_lock_init(arch_lock_t *l)
{
	l->locked = 0;
}

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			sched_yield();
	}
	return 0;
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long flags)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

#else
#include <mm/arch-generic-lock.h>
#endif

#endif /* MM_ARCH_H */
