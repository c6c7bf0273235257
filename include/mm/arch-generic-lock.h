/* SPDX-License-Identifier: MIT */
/*
 * Lock hooks every architecture shares: none at all, or the application's
 * own.  Included by <mm/arch.h> when the arch has nothing better to offer.
 *
 * CONFIG_MM_LOCK_USER: the application defines
 *	void mm_user_lock(void *lock);
 *	void mm_user_unlock(void *lock);
 * and is handed the lock's handle: an arena's is its 'lock' field, which an
 * application may set to an RTOS mutex for a private arena once
 * mm_arena_init() has returned (it starts the field NULL) and before
 * another thread uses the arena.  Every other lock's handle is NULL: the
 * default arena's (it is set up, lock held, by the first allocation) and
 * mm's own setup locks, which nothing outside can reach.  So the hooks must
 * give NULL a lock of their own -- one recursive mutex, or interrupts
 * masked with a nesting count -- since mm takes one of those while it
 * holds another (examples/demo/demo.c, examples/firmware/mps2/board.c).
 */
#ifndef MM_ARCH_GENERIC_LOCK_H
#define MM_ARCH_GENERIC_LOCK_H

#if IS_ENABLED(CONFIG_MM_LOCK_USER)

typedef void *arch_lock_t;
#define ARCH_LOCK_INIT NULL

MM_BEGIN_DECLS
void mm_user_lock(void *lock);
void mm_user_unlock(void *lock);
MM_END_DECLS

static __always_inline void arch_lock_init(arch_lock_t *l)
{
}

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	mm_user_lock(*l);
	return 0;
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long flags)
{
	mm_user_unlock(*l);
}

#else /* CONFIG_MM_LOCK_NONE, or an arch lock this arch lacks */

typedef struct { } arch_lock_t;
#define ARCH_LOCK_INIT { }

static __always_inline void arch_lock_init(arch_lock_t *l)
{
}

static __always_inline unsigned long arch_lock(arch_lock_t *l)
{
	return 0;
}

static __always_inline void arch_unlock(arch_lock_t *l, unsigned long flags)
{
}

#endif

#endif /* MM_ARCH_GENERIC_LOCK_H */
