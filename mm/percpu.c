// SPDX-License-Identifier: MIT
/*
 * Per-thread magazines (Bonwick & Adams 2001; Linux's per-cpu slabs).
 *
 * Each thread keeps, per kmalloc class, a small stack of free objects.
 * kmalloc pops from it and kfree pushes onto it without taking the arena
 * lock; only when a magazine runs empty (refill half of it) or full (flush
 * half) does the thread take the lock, and then for a batch.  Objects freed
 * by another thread than the one that allocated them simply join the
 * freeing thread's magazine, and go home to their slab when it flushes:
 * correct, and nothing leaks.  A thread's magazines are flushed when it
 * exits (a pthread key destructor) and by malloc_trim()/mm_percpu_drain().
 *
 * Lock-free kfree needs the page metadata without the lock.  That is safe
 * because (1) regions are published with a release store and never unmapped
 * in a build with any locking (trim.c keeps an empty region's header), so
 * walking the region list cannot fault, and (2) the metadata of the object
 * being freed cannot change while it is allocated.
 *
 * Double frees into a magazine are caught as glibc's tcache catches them: an
 * object in a magazine carries the thread's key in its first word; a free
 * that finds the key looks for the object in the magazine.  Objects whose
 * slab free pointer looks valid take the locked path, which checks the slab.
 */
#include <pthread.h>
#include "percpu.h"

/*
 * A magazine holds at most MAG_SIZE objects and at most MAG_BYTES of them,
 * so a thread parks 63 small objects but only 2 of 8 KiB (c->mag_cap):
 * what a thread parks is memory no other thread can use, and with some
 * thirty classes 64 KiB each came to a third of the mixed workload's heap.
 */
#define MAG_BYTES 16384

/*
 * A refill brings a magazine to half its capacity, but to at most
 * MAG_REFILL_BYTES of objects (never fewer than MAG_START / 2): a thread
 * that only allocates a class -- a producer whose objects another thread
 * frees -- parks what its last refill brought, and half of a 16 KiB
 * magazine for each of a dozen classes of a few hundred bytes was as much
 * memory as the producer/consumer workload's live objects.  The lock is
 * still taken once per 32 objects of 64 bytes; for larger objects, whose
 * users write more bytes per allocation, once per 2 KiB of them.
 */
#define MAG_REFILL_BYTES 2048

/*
 * A thread's magazine of a class starts at this capacity and doubles at
 * each refill or flush, up to the class's (slow start, as tcmalloc's
 * per-thread lists): a class a thread touches once -- a stdio buffer, a
 * FILE -- takes a few objects from one slab instead of half a magazine
 * from five, each slab a page resident for its header (a program that
 * has done one printf: 40 KiB).  A class in steady use reaches the full
 * capacity after a handful of refills.
 *
 * The other way round, a magazine that fills up twice with no refill in
 * between belongs to a thread that frees more of the class than it
 * allocates -- a consumer of another thread's objects, or a heap being
 * drained -- and halves its capacity, down to MAG_START, where it stays
 * until a refill (a flush grows a magazine only if it was refilled
 * since the last one): such a thread would otherwise park most of a
 * magazine for good, and its flushes stay batched.
 */
#define MAG_START 8

__thread struct percpu_cache mm_tcache __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static int exit_key_ok;

/* Move n objects from the magazine back to their slabs: one lock for all. */
static void flush(struct kmem_cache *c, struct magazine *m, unsigned int n)
{
	struct mm_arena *a = c->arena;
	mm_flags_t flags = arena_lock(a);

	while (n-- && m->count) {
		void *obj = m->objs[--m->count];

		if (IS_ENABLED(CONFIG_MM_CHECKS))
			*(uintptr_t *)obj = 0;	/* no longer in a magazine */
		__slab_free_locked(c, obj_to_slab(c, obj), obj);
	}
	arena_unlock(a, flags);
}

static void drain_all(struct percpu_cache *pc);

static void thread_exit(void *arg)
{
	drain_all(arg);
}

/* A thread's first use: arrange the exit flush, open the magazines. */
static __noinline void register_thread(struct percpu_cache *pc)
{
	pc->registered = 1;
	pc->key = (uintptr_t)pc ^ 0x6d6d2d6d61672aULL;
	for (unsigned int i = 0; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);

		pc->mag[i].cap = c ? min_t(unsigned int, c->mag_cap, MAG_START) : 0;
	}
	if (exit_key_ok)
		pthread_setspecific(exit_key, pc);
}

/* A refill or a flush: the magazine may hold twice as much (MAG_START). */
static inline void mag_grow(struct magazine *m, const struct kmem_cache *c)
{
	if (unlikely(m->cap < c->mag_cap))
		m->cap = min_t(unsigned int, 2 * m->cap, c->mag_cap);
}

/* What a magazine of cache c may hold: see MAG_BYTES. */
unsigned int percpu_mag_cap(const struct kmem_cache *c)
{
	unsigned int cap = MAG_BYTES / c->size;

	return cap > MAG_SIZE ? MAG_SIZE : cap < 2 ? 2 : cap;
}

/* How many objects of cache c a refill brings at most: see MAG_REFILL_BYTES. */
unsigned int percpu_mag_refill(const struct kmem_cache *c)
{
	unsigned int n = MAG_REFILL_BYTES / c->size;

	return n < MAG_START / 2 ? MAG_START / 2 : n;
}

void percpu_init(void)
{
	if (pthread_key_create(&exit_key, thread_exit) == 0)
		exit_key_ok = 1;
}

/* The magazine is empty: half fill it (MAG_REFILL_BYTES) under the lock, then pop. */
void *percpu_refill(struct kmem_cache *c)
{
	struct percpu_cache *pc = &mm_tcache;
	struct magazine *m = &pc->mag[c->kmalloc_idx];
	struct mm_arena *a = c->arena;
	unsigned int want;
	mm_flags_t flags;

	if (unlikely(!pc->registered))
		register_thread(pc);
	want = min_t(unsigned int, m->cap / 2u, c->mag_refill);
	flags = arena_lock(a);
	if (m->count < want) {
		unsigned int n = __slab_alloc_bulk(c, m->objs + m->count, want - m->count);

		for (unsigned int i = 0; IS_ENABLED(CONFIG_MM_CHECKS) && i < n; i++)
			*(uintptr_t *)m->objs[m->count + i] = pc->key;
		m->count += n;
	}
	arena_unlock(a, flags);
	m->refilled = 1;
	mag_grow(m, c);
	/* No room or no memory: the caller takes the ordinary path. */
	return m->count ? percpu_alloc(c) : NULL;
}

static __cold int in_magazine(struct magazine *m, const void *obj)
{
	for (unsigned int i = 0; i < m->count; i++) {
		if (m->objs[i] == obj)
			return 1;
	}
	return 0;
}

/*
 * Take obj into this thread's magazine, the checks first when they are on;
 * a full magazine flushes half.  0 when the caller must free it the locked
 * way instead (its checks then run in full).
 */
int percpu_free_slow(struct kmem_cache *c, struct slab *s, void *obj)
{
	struct percpu_cache *pc = &mm_tcache;
	struct magazine *m = &pc->mag[c->kmalloc_idx];

	if (unlikely(!pc->registered))
		register_thread(pc);
	if (IS_ENABLED(CONFIG_MM_CHECKS)) {
		/* Not an object start: the locked path reports it. */
		if (unlikely(!slab_obj_aligned(c, s, obj)))
			return 0;
		if (unlikely(*(uintptr_t *)obj == pc->key) && in_magazine(m, obj)) {
			mm_report_bug(c->arena, c->name, "Object already free");
			mm_printf("INFO: kfree of %p: object is in this thread's cache\n", obj);
			return 1;
		}
		/*
		 * Its first word looks like a slab free pointer, or it was
		 * never handed out: the slab's checks settle it.
		 */
		if (unlikely(slab_maybe_free(c, s, obj)) || unlikely(slab_obj_fresh(c, s, obj)))
			return 0;
	}
	if (unlikely(m->count >= m->cap)) {
		if (!m->cap)
			return 0;		/* no magazine for this class */
		if (!m->refilled && m->cap > MAG_START) {
			/* Frees only: a consumer thread's parking lot shrinks. */
			m->cap /= 2;
			flush(c, m, m->count - m->cap / 2u);
		} else {
			flush(c, m, m->cap / 2u);
			/* At MAG_START a thread that only frees stays there. */
			if (m->refilled)
				mag_grow(m, c);
		}
		m->refilled = 0;
	}
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		*(uintptr_t *)obj = pc->key;
	m->objs[m->count++] = obj;
	return 1;
}

static void drain_all(struct percpu_cache *pc)
{
	for (unsigned int i = 0; i < KMALLOC_NR_CLASSES; i++) {
		struct magazine *m = &pc->mag[i];
		struct kmem_cache *c = m->count ? kmalloc_cache_index(i) : NULL;

		if (c)
			flush(c, m, MAG_SIZE);
	}
}

void mm_percpu_drain(void)
{
	drain_all(&mm_tcache);
}
