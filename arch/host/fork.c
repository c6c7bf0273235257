// SPDX-License-Identifier: MIT
/*
 * fork() handlers on a host with pthread mutexes or spinlocks.
 *
 * A core hands its handlers to arch_atfork() at load time (a constructor
 * in mm/arena.c, or mm/kmalloc_tiny.c), so that a fork during the default
 * arena's setup finds them.  Prepare
 * takes every allocator lock, parent releases them, child resets them,
 * so that a child never inherits a lock another thread held mid-update.
 * They are registered there and then, wrapped.
 *
 * Prepare handlers run last registered first, so ours runs before those
 * of any library that registered before ours (one whose constructor ran
 * before mm's) -- and those may allocate.
 * They would find our locks taken, by their own thread, and the fork
 * would hang.  So while a fork holds the locks (FORK_HELD), the forking
 * thread's arch_lock() takes nothing: every allocator lock is already its
 * own, and every other thread waits on the mutexes.  The same holds for
 * the parent and child handlers that run before ours.
 *
 * Registering only once a second thread takes a lock was tried: a program
 * that never starts a thread would be spared pthread_atfork()'s pages of
 * the C library (76 KiB of peak RSS on bench/'s churn64, 1940 against
 * 2016 KiB with randomisation off).  But threads
 * that take their first lock during the registration must wait for it,
 * or a fork at that moment leaves them holding locks in the child -- and
 * the registration waits for glibc's atfork lock, which a fork holds
 * while its prepare handlers run: a handler that allocates then waits for
 * the registration, which waits for the fork.
 */
#include <mm/compiler.h>
#include <mm/arch.h>
#include <pthread.h>

enum { FORK_NONE, FORK_READY = ARCH_FORK_READY, FORK_HELD = ARCH_FORK_HELD };

int __mm_fork_state;
/*
 * While FORK_HELD: the one forking.  Relaxed atomics, as plain moves: a
 * thread that read it in one fork and then waited on a mutex may not have
 * taken that mutex yet when the next fork writes it -- a data race by
 * C11's rules (ThreadSanitizer saw it), though no thread uses what it
 * read after the fork it read it in.
 */
static pthread_t fork_thread;
static void (*core_prepare)(void), (*core_parent)(void), (*core_child)(void);

static void fork_prepare(void)
{
	core_prepare();
	__atomic_store_n(&fork_thread, pthread_self(), __ATOMIC_RELAXED);
	__atomic_store_n(&__mm_fork_state, FORK_HELD, __ATOMIC_RELEASE);
}

static void fork_parent(void)
{
	__atomic_store_n(&__mm_fork_state, FORK_READY, __ATOMIC_RELEASE);
	core_parent();
}

static void fork_child(void)
{
	__atomic_store_n(&__mm_fork_state, FORK_READY, __ATOMIC_RELEASE);
	core_child();
}

void arch_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	core_prepare = prepare;
	core_parent = parent;
	core_child = child;
	/* Before: a fork in another thread may run the handlers at once. */
	__atomic_store_n(&__mm_fork_state, FORK_READY, __ATOMIC_RELEASE);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Does a fork hold every lock for this thread (FORK_HELD, and it forks)? */
static int fork_held_here(void)
{
	return __atomic_load_n(&__mm_fork_state, __ATOMIC_ACQUIRE) == FORK_HELD &&
	       pthread_equal(__atomic_load_n(&fork_thread, __ATOMIC_RELAXED), pthread_self());
}

#if IS_ENABLED(CONFIG_MM_LOCK_SPIN)
#include <sched.h>

/*
 * arch_lock()'s spinlock, found held: the fork's, for this thread (1: left
 * held at the unlock), or another thread's, spun on until it is free (0).
 */
unsigned long __mm_spin_lock_slow(arch_lock_t *l)
{
	do {
		if (fork_held_here())
			return 1;
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
			if (fork_held_here())
				return 1;
			sched_yield();
		}
	} while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE));
	return 0;
}
#else
/* arch_lock(), while the state is not FORK_READY. */
unsigned long __mm_fork_lock_slow(arch_lock_t *l)
{
	if (fork_held_here())
		return 0;		/* the fork holds every lock for this thread */
	pthread_mutex_lock(l);
	return 1;
}
#endif
