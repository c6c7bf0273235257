/* SPDX-License-Identifier: MIT */
/*
 * Host (Linux userspace): lock hooks.  The pthread mutex is the safe
 * default, skipped while the process has a single thread, and watched a
 * while before a thread sleeps on it; the spinlock spins on a relaxed load
 * (test-and-test-and-set) and yields the CPU so a preempted holder can
 * finish.
 */
#ifndef MM_ARCH_H
#define MM_ARCH_H

#include <mm/compiler.h>

/* A pause between looks at a held lock: the hyperthread sibling runs on. */
static __always_inline void arch_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__ARM_ARCH) && __ARM_ARCH >= 7)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

#if IS_ENABLED(CONFIG_MM_LOCK_PTHREAD) || IS_ENABLED(CONFIG_MM_LOCK_SPIN)
/*
 * fork() handlers, with the mutex or the spinlock: a core hands them over
 * (arch/host/fork.c), which wraps them.  __mm_fork_state is
 * ARCH_FORK_READY from then on but while a fork holds every lock
 * (ARCH_FORK_HELD), when the forking thread's arch_lock() takes none: a
 * library's handler that runs inside mm's and allocates would otherwise
 * wait for a lock its own thread holds, for ever.
 */
void arch_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
#define ARCH_FORK_READY	1
#define ARCH_FORK_HELD	2
MM_BEGIN_DECLS
extern int __mm_fork_state;
MM_END_DECLS
#endif

#if IS_ENABLED(CONFIG_MM_LOCK_PTHREAD)
#include <pthread.h>

/*
 * CONFIG_MM_LOCK_SINGLE_THREAD_ELIDE: while the process has one thread
 * there is nobody to exclude, and the mutex is two atomic operations for
 * nothing on every locked path (glibc's malloc skips its own the same way,
 * SINGLE_THREAD_P).  glibc >= 2.32 says so in __libc_single_threaded: set
 * while the process has only ever had one thread, cleared by
 * pthread_create() before the new thread exists.  musl, newlib and older
 * glibc have no such variable: there the mutex is always taken.
 *
 * The decision is taken at lock time and travels to the unlock in the
 * flags (1: the mutex was taken), so a lock and its unlock always agree
 * even if a thread were created in between.  It cannot be, in fact: the
 * only thread would have to create it while it holds the allocator's lock.
 *
 * What the lock orders between threads -- the page metadata percpu.c's
 * lock-free kfree reads, what the next holder of the lock finds -- has no
 * other thread to be ordered with while there is one.  pthread_create()
 * is a full barrier between what the only thread wrote and what the new
 * one reads, and the mutex is taken from then on.
 */
#if IS_ENABLED(CONFIG_MM_LOCK_SINGLE_THREAD_ELIDE) && defined(__GLIBC__) && \
	defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 32)
#include <sys/single_threaded.h>
#define ARCH_LOCK_ELIDES	1
#endif
#endif
#ifndef ARCH_LOCK_ELIDES
#define ARCH_LOCK_ELIDES	0
#endif

typedef pthread_mutex_t arch_lock_t;
#define ARCH_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static __always_inline void arch_lock_init(arch_lock_t *l)
{
	pthread_mutex_init(l, NULL);
}

/* 1 if nothing but this thread can take the lock now. */
static __always_inline int arch_single_threaded(void)
{
#if ARCH_LOCK_ELIDES
	return __libc_single_threaded != 0;
#else
	return 0;
#endif
}

/* The fork state's test costs a load the mutex path can spare. */
MM_BEGIN_DECLS
unsigned long __mm_fork_lock_slow(arch_lock_t *l);
/* pthread_mutex_lock(), but a held mutex is watched a while first (lock.c). */
void __mm_mutex_lock(arch_lock_t *l);
MM_END_DECLS

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	if (arch_single_threaded())
		return 0;
	if (unlikely(__atomic_load_n(&__mm_fork_state, __ATOMIC_ACQUIRE) != ARCH_FORK_READY))
		return __mm_fork_lock_slow(l);
	if (CONFIG_MM_LOCK_SPIN_COUNT == 0)
		pthread_mutex_lock(l);
	else
		__mm_mutex_lock(l);
	return 1;
}

/*
 * Only a mutex arch_lock() took: flags are 0 where it took none -- the
 * process single-threaded, or a fork holding every lock for this thread
 * (arch/host/fork.c), with or without the elision.
 */
static __always_inline void arch_unlock(arch_lock_t *l, unsigned long flags)
{
	if (flags)
		pthread_mutex_unlock(l);
}

/*
 * The mutex itself, one thread or many: for the fork handlers (mm_lock_raw()).
 * The flags say "taken", as arch_lock()'s do.
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

/*
 * The fork state is only looked at when the lock is found held
 * (__mm_spin_lock_slow()), so the uncontended path is the same exchange
 * as ever.  The flags are the value arch_unlock() stores: 0, or 1 when the
 * lock was the fork's and stays held.
 */
MM_BEGIN_DECLS
unsigned long __mm_spin_lock_slow(arch_lock_t *l);
MM_END_DECLS

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	if (likely(!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)))
		return 0;
	return __mm_spin_lock_slow(l);
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long flags)
{
	__atomic_store_n(&l->locked, (int)flags, __ATOMIC_RELEASE);
}

#else
#include <mm/arch-generic-lock.h>
#endif

#endif /* MM_ARCH_H */
