// SPDX-License-Identifier: MIT
/*
 * fork() handlers on a host with pthread mutexes, registered late.
 *
 * A core hands its handlers to arch_atfork() when its arena is set up:
 * prepare takes every allocator lock, parent releases them, child resets
 * them, so that a child never inherits a lock another thread held
 * mid-update.  Calling pthread_atfork() there cost a program that never
 * starts a thread 132 KiB of peak RSS: its code and data sit in pages of
 * the C library nothing else touches, and the kernel maps the cached
 * pages around each fault (bench/'s churn64 and mixed, address
 * randomisation off).  While the process has one thread no lock can be
 * held across a fork(), so the handlers are not needed yet: with
 * CONFIG_MM_LOCK_SINGLE_THREAD_ELIDE they are registered by the first
 * lock taken once there are two threads (arch_lock(), before its mutex).
 * Threads that get there together wait for the one registering, which
 * takes its own locks as usual meanwhile (pthread_atfork() may allocate).
 *
 * Late registration changes the order the handlers run in: prepare
 * handlers run last registered first, so ours may now run before those
 * of libraries registered earlier -- and those may allocate.  They would
 * find our locks taken, by their own thread.  So while a fork holds the
 * locks (FORK_HELD), the forking thread's own arch_lock() takes nothing:
 * every allocator lock is already its own and every other thread waits.
 * The same holds for the parent and child handlers that run before ours.
 *
 * A fork() may also come while another thread registers, and the child
 * has no such thread to wait for.  The state names the registering
 * process (minus its pid), so the child sees it is not that process and
 * starts the registration over.
 */
#include <mm/compiler.h>
#include <mm/arch.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#if ARCH_LOCK_ELIDES

/* __mm_fork_state: these, or -pid while that process registers. */
enum { FORK_NONE, FORK_READY = ARCH_FORK_READY, FORK_HELD };

int __mm_fork_state;
static pthread_t fork_thread;		/* registering, or forking (FORK_HELD) */
static void (*core_prepare)(void), (*core_parent)(void), (*core_child)(void);

static void fork_prepare(void)
{
	core_prepare();
	fork_thread = pthread_self();
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
	core_parent = parent;
	core_child = child;
	__atomic_store_n(&core_prepare, prepare, __ATOMIC_RELEASE);
}

/* Register the handlers unless another thread does: 1 if this one did. */
static int fork_register(void)
{
	int none = FORK_NONE;

	if (!__atomic_compare_exchange_n(&__mm_fork_state, &none, -(int)getpid(), 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	fork_thread = pthread_self();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	__atomic_store_n(&__mm_fork_state, FORK_READY, __ATOMIC_RELEASE);
	return 1;
}

/* arch_lock() with more than one thread, while the state is not FORK_READY. */
unsigned long __mm_fork_lock_slow(arch_lock_t *l)
{
	for (;;) {
		int state = __atomic_load_n(&__mm_fork_state, __ATOMIC_ACQUIRE);

		if (state == FORK_READY)
			break;
		if (state == FORK_NONE) {
			/* No core set up yet (nothing to protect), or registered now. */
			if (!__atomic_load_n(&core_prepare, __ATOMIC_ACQUIRE) || fork_register())
				break;
			continue;
		}
		if (pthread_equal(fork_thread, pthread_self())) {
			if (state == FORK_HELD)
				return 0;	/* the fork holds every lock for this thread */
			break;			/* registering: its allocations lock as usual */
		}
		if (state == FORK_HELD)
			break;			/* another thread forks: wait on the mutex */
		if (-state != (int)getpid()) {	/* the child of a fork during registration */
			__atomic_compare_exchange_n(&__mm_fork_state, &state, FORK_NONE, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
			continue;
		}
		sched_yield();			/* another thread registers */
	}
	pthread_mutex_lock(l);
	return 1;
}

#else /* !ARCH_LOCK_ELIDES: the mutex is always taken, so register at once */

void arch_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	pthread_atfork(prepare, parent, child);
}

#endif
