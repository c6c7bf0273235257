// SPDX-License-Identifier: MIT
/*
 * The host mutex's contended path.  The allocator holds its mutex for a
 * magazine's refill or flush, a few microseconds at most, less than a
 * futex sleep and wake-up cost: a thread that finds it held watches it a
 * while before it sleeps (CONFIG_MM_LOCK_SPIN_COUNT, bench/README.md
 * Round 8), as glibc's adaptive mutex does.
 */
#include <mm/compiler.h>
#include <mm/arch.h>
#include <pthread.h>

/*
 * arch_lock()'s mutex, out of line (one call at each of the many places it
 * is inlined, as pthread_mutex_lock() was).  A mutex held at the first try
 * is watched, a pause between looks (so as neither to steal the holder's
 * core from its hyperthread nor bounce the lock's line with a write per
 * look), and tried again when it looks free; only after
 * CONFIG_MM_LOCK_SPIN_COUNT looks does the thread sleep on it.  The lock
 * word is glibc's; elsewhere every look is a trylock.
 */
void __mm_mutex_lock(arch_lock_t *l)
{
	if (likely(pthread_mutex_trylock(l) == 0))
		return;
	for (int i = 0; i < CONFIG_MM_LOCK_SPIN_COUNT; i++) {
		arch_cpu_relax();
#ifdef __GLIBC__
		if (__atomic_load_n(&l->__data.__lock, __ATOMIC_RELAXED) != 0)
			continue;
#endif
		if (pthread_mutex_trylock(l) == 0)
			return;
	}
	pthread_mutex_lock(l);
}
