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
 * exits (a pthread key destructor), which also gives its cache (percpu.h)
 * back to the arena, and by malloc_trim()/mm_percpu_drain().
 *
 * Lock-free kfree needs the page metadata without the lock.  That is safe
 * because (1) regions are published with a release store and never unmapped
 * in a build with any locking (trim.c keeps an empty region's header), so
 * walking the region list cannot fault, and (2) the metadata of the object
 * being freed cannot change while it is allocated.  What the arena lock
 * orders for these readers it orders between threads: while the process
 * has one, the host skips the mutex (arch_lock()), and the first
 * pthread_create() is a full barrier before any other thread reads.
 *
 * Double frees into a magazine are caught as glibc's tcache catches them: an
 * object in a magazine carries the thread's key in its first word; a free
 * that finds a key looks for the object in the magazine -- that thread's,
 * found on the list of live caches, where glibc looks in its own only (an
 * object freed by one thread and again by another went into both their
 * magazines, and two threads were later handed the same block).  Objects
 * whose slab free pointer looks valid take the locked path, which checks
 * the slab.  Without the checks, CONFIG_MM_FREE_MARK's mark (slab.h) does
 * the key's work for a compare and a store per free: it names no thread,
 * so a marked object is looked for in every live thread's magazine, then
 * on its slab.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include "percpu.h"

/*
 * A magazine holds at most MAG_SIZE objects and at most MAG_BYTES of them,
 * so a thread parks 64 small objects but only 2 of 8 KiB (c->mag_cap):
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

/* A thread's cache: the counts, then every class's object slots. */
#define PERCPU_BYTES	(sizeof(struct percpu_cache) + \
			 KMALLOC_NR_CLASSES * MAG_SIZE * sizeof(void *))

/*
 * Taken as one block (percpu_setup()): where none is that large the thread
 * never got a cache, and every malloc() took the lock while the
 * configuration said otherwise.  Kconfig asks for a largest block of 32
 * KiB, which holds the cache of every class layout.
 */
static_assert(DIV_ROUND_UP(PERCPU_BYTES, MM_PAGE_SIZE) <= (1u << MM_MAX_ORDER),
	      "CONFIG_MM_PERCPU_CACHE: a thread's cache does not fit the largest block,"
	      " 2^(CONFIG_MM_PAGE_SHIFT + CONFIG_MM_MAX_ORDER) bytes: raise MM_MAX_ORDER"
	      " or turn MM_PERCPU_CACHE off");

/*
 * What a thread's pointer names before its cache exists, and after it went
 * back at the thread's exit: every count and cap 0, so the fast paths go
 * the slow way, which tells the two apart.  Never written: untouched .bss.
 */
static struct percpu_cache percpu_none, percpu_gone;

__thread struct percpu_cache *mm_tcache __attribute__((tls_model("initial-exec"))) =
	&percpu_none;
__thread int mm_oom_quiet __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static int exit_key_ok;

/*
 * Every thread's cache while it lives, where a double free is looked for:
 * the keys' owners (checks), or every magazine that might hold a marked
 * object (CONFIG_MM_FREE_MARK); and, in a fork()'s child, the caches of
 * the threads that did not come along (__percpu_fork_child()).
 */
#define PERCPU_LIVE	(IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK))
static struct percpu_cache *live_caches;
static mm_lock_t live_lock = MM_LOCK_INIT;

static void live_add(struct percpu_cache *pc)
{
	mm_flags_t flags;

	flags = mm_lock(&live_lock);
	pc->next_live = live_caches;
	live_caches = pc;
	mm_unlock(&live_lock, flags);
}

static void live_del(struct percpu_cache *pc)
{
	mm_flags_t flags;

	flags = mm_lock(&live_lock);
	for (struct percpu_cache **q = &live_caches; *q; q = &(*q)->next_live) {
		if (*q == pc) {
			*q = pc->next_live;
			break;
		}
	}
	mm_unlock(&live_lock, flags);
}

/* Move n objects from magazine idx back to their slabs: one lock for all. */
static void flush(struct kmem_cache *c, struct percpu_cache *pc, unsigned int idx,
		  unsigned int n)
{
	struct magazine *m = &pc->mag[idx];
	void **objs = percpu_objs(pc, idx);
	struct mm_arena *a = c->arena;
	mm_flags_t flags = arena_lock(a);

	while (n-- && m->count) {
		void *obj = objs[--m->count];

		if (IS_ENABLED(CONFIG_MM_CHECKS))
			*(uintptr_t *)obj = 0;	/* no longer in a magazine */
		__slab_free_locked(c, obj_to_slab(c, obj), obj);
	}
	arena_unlock(a, flags);
}

static void drain_all(struct percpu_cache *pc)
{
	for (unsigned int i = 0; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = pc->mag[i].count ? kmalloc_cache_index(i) : NULL;

		if (c)
			flush(c, pc, i, MAG_SIZE);
	}
}

/*
 * A thread's cache is pages of the default arena, not a kmalloc block: a
 * stale pointer that the program frees twice may name the pages of a
 * block it freed before, which a new thread's cache took since; kfree()
 * reports such a free instead of giving the live cache back.
 */
static struct percpu_cache *cache_alloc(void)
{
	return __alloc_exact_nowait(mm_default_arena(), DIV_ROUND_UP(PERCPU_BYTES, MM_PAGE_SIZE));
}

static void cache_free(struct percpu_cache *pc)
{
	free_pages_exact(mm_default_arena(), pc, PERCPU_BYTES);
}

/*
 * The thread exits: its objects go back to their slabs and its cache to
 * the arena.  Anything it frees later (another key's destructor) takes
 * the locked path: it gets no new cache, which nothing would give back.
 */
static void thread_exit(void *arg)
{
	struct percpu_cache *pc = arg;

	/* Drained first: until then its objects' keys must find the cache. */
	drain_all(pc);
	live_del(pc);
	mm_tcache = &percpu_gone;
	cache_free(pc);
}

/*
 * This thread's cache, made at its first refill or flush, with the exit
 * flush arranged; NULL if it has none and gets none (it has exited, there
 * is no exit flush to give the cache back, or no memory).
 */
static __noinline struct percpu_cache *percpu_setup(void)
{
	struct percpu_cache *pc = mm_tcache;
	int saved;

	if (pc != &percpu_none)
		return pc == &percpu_gone ? NULL : pc;
	if (!exit_key_ok)
		return NULL;
	/*
	 * The best-fitting run of free pages, which needs no aligned block
	 * (alloc_pages_exact() would split one of 8 pages).  Quietly: a
	 * free() may get here, and must not fail or call the OOM hook when
	 * the heap is full (it takes the locked path then).
	 */
	saved = errno;
	pc = cache_alloc();
	/*
	 * free() gets here too, and must leave errno as it found it: a
	 * growing arena's system calls may fail on the way to success (a
	 * region that cannot grow in place: EEXIST).
	 */
	errno = saved;
	if (!pc)
		return NULL;
	/* The counts only: a class's slots are written when it is used. */
	memset(pc, 0, sizeof(*pc));
	pc->key = (uintptr_t)pc ^ PERCPU_KEY_SALT;
	for (unsigned int i = 0; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);

		pc->mag[i].cap = c ? min_t(unsigned int, c->mag_cap, MAG_START) : 0;
	}
	/*
	 * Published first: for a key of index 32 or more, glibc's
	 * pthread_setspecific() callocs the thread's second-level key
	 * array, and that allocation must find this cache, not make
	 * another (which would register itself the same way, and so on
	 * until the stack overflows).
	 */
	mm_tcache = pc;
	if (pthread_setspecific(exit_key, pc)) {
		drain_all(pc);
		mm_tcache = &percpu_none;
		cache_free(pc);
		errno = saved;
		return NULL;
	}
	live_add(pc);
	return pc;
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

	/* At most a magazine: it is kept in a byte (256 objects of 8 bytes wrapped to 0). */
	return n < MAG_START / 2 ? MAG_START / 2 : n > MAG_SIZE ? MAG_SIZE : n;
}

void percpu_init(void)
{
	if (pthread_key_create(&exit_key, thread_exit) == 0)
		exit_key_ok = 1;
}

/*
 * Held across fork(), reset in the child; taken after the arena locks, as
 * the slab's checks take it (percpu_holding()).  Registered at load time:
 * registered at kmalloc's setup, it could join the table while a fork in
 * another thread walked it, and be released by a parent handler that never
 * took it.
 */
__attribute__((constructor)) static void live_lock_register(void)
{
	__mm_fork_lock(&live_lock, MM_FORK_INNER);
}

/*
 * A batch comes from its slab in address order (a fresh slab's objects
 * are threaded upwards), and a magazine pops from its top: reversed, the
 * batch is handed out in the order it came, as glibc hands out a fresh
 * chunk after the last.  Handed out downwards, the nodes of a list built
 * one malloc() at a time lay in memory against the order a walk takes
 * them: GNU ed's line list, walked from its head, took 1.7 times glibc's
 * time (a campaign of real programs; bench/README.md, Round 17).
 */
static inline void mag_reverse(void **objs, unsigned int n)
{
	for (void **lo = objs, **hi = objs + n; lo + 1 < hi; lo++) {
		void *t = *lo;

		*lo = *--hi;
		*hi = t;
	}
}

/* The magazine is empty: half fill it (MAG_REFILL_BYTES) under the lock, then pop. */
void *percpu_refill(struct kmem_cache *c)
{
	struct percpu_cache *pc = percpu_setup();
	unsigned int idx = c->kmalloc_idx, want;
	struct mm_arena *a = c->arena;
	struct magazine *m;
	mm_flags_t flags;

	if (unlikely(!pc))
		return NULL;		/* the caller takes the ordinary path */
	m = &pc->mag[idx];
	want = min_t(unsigned int, m->cap / 2u, c->mag_refill);
	flags = arena_lock(a);
	if (m->count < want) {
		void **objs = percpu_objs(pc, idx) + m->count;
		unsigned int n = __slab_alloc_bulk(c, objs, want - m->count);

		/*
		 * Every object in a magazine carries the key, or the mark,
		 * those taken fresh from their slab too: a stale pointer to
		 * one, from before its slab went back to the buddy
		 * allocator and came again, is freed twice otherwise, and
		 * the page's old contents (a free-list node of the buddy
		 * allocator, zeroes) have no mark to give it away.
		 */
		for (unsigned int i = 0; i < n; i++) {
			if (IS_ENABLED(CONFIG_MM_CHECKS))
				*(uintptr_t *)objs[i] = pc->key;
			else if (IS_ENABLED(CONFIG_MM_FREE_MARK))
				*mag_obj_mark(objs[i]) = mm_free_mark;
		}
		mag_reverse(objs, n);
		m->count += n;
	}
	arena_unlock(a, flags);
	m->refilled = 1;
	mag_grow(m, c);
	kmalloc_huge_tick();
	/* No room or no memory: the caller takes the ordinary path. */
	return m->count ? percpu_pop(pc, m, idx) : NULL;
}

/*
 * Is obj in magazine idx of pc?  pc may be another thread's, which pushes
 * and pops meanwhile: its slots are read, never written, and an object
 * that is there is found unless that thread takes it out first.
 */
static __cold int in_magazine(struct percpu_cache *pc, unsigned int idx, const void *obj)
{
	void **objs = percpu_objs(pc, idx);
	unsigned int n = __atomic_load_n(&pc->mag[idx].count, __ATOMIC_RELAXED);

	for (unsigned int i = 0; i < n && i < MAG_SIZE; i++) {
		if (__atomic_load_n(&objs[i], __ATOMIC_RELAXED) == obj)
			return 1;
	}
	return 0;
}

/*
 * obj's first word is key-like (percpu_key_like()), or it carries the free
 * mark: which thread's magazine holds obj?  With the checks the key names
 * the thread, if its cache is a live one; a mark names none, so every live
 * cache is looked at, this thread's first.  NULL if none; else this
 * thread's cache or another's (looked at under live_lock, which its
 * thread's exit takes before giving the cache back).
 */
static __cold const char *magazine_holding(struct percpu_cache *pc, unsigned int idx,
					   const void *obj)
{
	struct percpu_cache *owner = NULL;
	const char *who = NULL;
	mm_flags_t flags;

	if (IS_ENABLED(CONFIG_MM_CHECKS))
		owner = (struct percpu_cache *)(*(const uintptr_t *)obj ^ PERCPU_KEY_SALT);
	if (pc && (!owner || owner == pc) && in_magazine(pc, idx, obj))
		return "this thread's";
	if (pc && owner == pc)
		return NULL;
	flags = mm_lock(&live_lock);
	for (struct percpu_cache *q = live_caches; q; q = q->next_live) {
		if (owner ? q != owner : q == pc)
			continue;
		if (in_magazine(q, idx, obj))
			who = "another thread's";
		if (who || owner)
			break;
	}
	mm_unlock(&live_lock, flags);
	return who;
}

/*
 * Which thread's magazine holds obj, if one does: "this thread's",
 * "another thread's" or NULL.  For krealloc(), asked of an object that
 * looks free (kobj_looks_free()), and for the slab's checks
 * (__slab_check_free()), which hold the arena lock: live_lock nests inside
 * the arena locks, and fork() takes it after them (percpu_init()).
 */
const char *percpu_holding(struct kmem_cache *c, const void *obj)
{
	return magazine_holding(percpu_this(), c->kmalloc_idx, obj);
}

/*
 * Take obj into this thread's magazine, the checks first when they are on;
 * a full magazine flushes half.  0 when the caller must free it the locked
 * way instead (its checks then run in full).
 */
int percpu_free_slow(struct kmem_cache *c, struct slab *s, void *obj)
{
	struct percpu_cache *pc = percpu_setup();
	unsigned int idx = c->kmalloc_idx;
	struct magazine *m;
	const char *who;

	if (PERCPU_LIVE) {
		/* Not an object start: the locked path reports it. */
		if (unlikely(!slab_is_obj_start(c, obj)))
			return 0;
		/* In a magazine: this thread's, or (an exited thread's too) another's. */
		if ((IS_ENABLED(CONFIG_MM_CHECKS) ? unlikely(percpu_key_like(*(uintptr_t *)obj)) :
		     unlikely(*mag_obj_mark(obj) == mm_free_mark)) &&
		    (who = magazine_holding(pc, idx, obj)) != NULL) {
			mm_report_begin(c->arena, c->name, "Object already free");
			mm_printf("INFO: kfree of %p: object is in %s cache\n", obj, who);
			mm_report_end(c->name);
			return 1;
		}
	}
	if (unlikely(!pc))
		return 0;
	m = &pc->mag[idx];
	if (PERCPU_LIVE) {
		/*
		 * Its first word looks like a slab free pointer (or it has
		 * the mark), or it was never handed out: the slab's checks
		 * settle it.
		 */
		if (unlikely(slab_maybe_free(c, s, obj)) || unlikely(slab_obj_fresh(c, s, obj)))
			return 0;
	}
	if (unlikely(m->count >= m->cap)) {
		if (!m->cap)
			return 0;		/* no magazine for this class */
		if (!m->refilled && m->cap > MAG_START) {
			/*
			 * Frees only: a consumer thread's parking lot shrinks,
			 * to MAG_START and no further -- a capacity that is no
			 * power of two (51 objects of 320 bytes) went on to 6.
			 */
			m->cap = max_t(unsigned int, m->cap / 2, MAG_START);
			flush(c, pc, idx, m->count - m->cap / 2u);
		} else {
			flush(c, pc, idx, m->cap / 2u);
			/* At MAG_START a thread that only frees stays there. */
			if (m->refilled)
				mag_grow(m, c);
		}
		m->refilled = 0;
		kmalloc_huge_tick();
	}
	if (IS_ENABLED(CONFIG_MM_CHECKS))
		*(uintptr_t *)obj = pc->key;
	if (IS_ENABLED(CONFIG_MM_FREE_MARK))
		*mag_obj_mark(obj) = mm_free_mark;
	percpu_objs(pc, idx)[m->count++] = obj;
	return 1;
}

/*
 * The word that says "parked here": the key with the checks, else the mark.
 * Claimed, it says nothing -- a second slot naming the object is turned
 * away (fork_child_sift()).
 */
static inline uintptr_t *parked_word(void *obj)
{
	return IS_ENABLED(CONFIG_MM_CHECKS) ? (uintptr_t *)obj : mag_obj_mark(obj);
}

static inline uintptr_t parked_value(const struct percpu_cache *pc)
{
	return IS_ENABLED(CONFIG_MM_CHECKS) ? pc->key : mm_free_mark;
}

/* This thread's objects, claimed while the others' are sifted (put back: 1). */
static void claim_own(struct percpu_cache *self, int put_back)
{
	for (unsigned int i = 0; self && i < KMALLOC_NR_CLASSES; i++) {
		void **objs = percpu_objs(self, i);

		for (unsigned int j = 0; j < self->mag[i].count; j++)
			*parked_word(objs[j]) = put_back ? parked_value(self) : 0;
	}
}

/*
 * fork() stops no thread.  The threads the child will not have go on
 * pushing and popping their magazines while the kernel copies the
 * parent's memory (the handlers' locks stop only the locked paths), and
 * the copy may catch one between the stores of a push or a pop -- to a
 * slot, to the count, to the object's key or mark -- which nothing orders
 * (the compiler may reorder them, a weakly ordered CPU make them visible
 * out of order).  So a count may cover a slot whose write the copy
 * missed: a slot never written (the cache's pages came from the buddy
 * allocator as they were), or one naming an object the thread had popped
 * since, and that was handed out, freed into another magazine or this
 * one at another slot, or went home to its slab.  A slot's object goes
 * back only if it is, in every way the child can check, a parked object:
 * an object start of a live slab of the class that the slab counts as
 * handed out, carrying the magazine's key (or the mark), and not taken
 * from another slot already (taking it claims its key or mark: a second
 * slot naming it finds neither).  The forking thread's own objects are
 * claimed first, for the mark names no magazine.  What is turned away is
 * lost to the child, never freed twice.
 */
static void fork_child_sift(struct percpu_cache *pc)
{
	for (unsigned int i = 0; i < KMALLOC_NR_CLASSES; i++) {
		struct kmem_cache *c = kmalloc_cache_index(i);
		void **objs = percpu_objs(pc, i);
		unsigned int n = 0, count = min_t(unsigned int, pc->mag[i].count, MAG_SIZE);
		mm_flags_t flags;

		if (!c || !count) {
			pc->mag[i].count = 0;
			continue;
		}
		flags = arena_lock(c->arena);
		for (unsigned int j = 0; j < count; j++) {
			void *obj = objs[j];

			if (__slab_is_obj(c, obj) && *parked_word(obj) == parked_value(pc) &&
			    !__slab_freelist_contains(c, obj_to_slab(c, obj), obj)) {
				*parked_word(obj) = 0;
				objs[n++] = obj;
			}
		}
		arena_unlock(c->arena, flags);
		pc->mag[i].count = n;
	}
}

/*
 * fork()'s child, every lock reset (arena.c): it has one thread, the one
 * that forked, and every other thread's cache is still on live_caches
 * with the objects its magazines parked -- for threads that do not exist
 * here, so nothing would ever take them or give them back (16 threads of
 * a server that forks workers: a few MiB in each child).  What
 * fork_child_sift() finds parked goes back to the slabs, and the caches
 * to the arena.  Without a key or a mark nothing tells a parked object
 * from one the copy caught being handed out: those caches stay as they
 * are, lost to the child.
 */
void __percpu_fork_child(void)
{
	struct percpu_cache *self = mm_tcache, *pc = live_caches, *next;

	if (self == &percpu_none || self == &percpu_gone)
		self = NULL;
	live_caches = NULL;
	if (PERCPU_LIVE)
		claim_own(self, 0);
	for (; pc; pc = next) {
		next = pc->next_live;
		if (pc == self) {
			pc->next_live = live_caches;
			live_caches = pc;
		} else if (PERCPU_LIVE) {
			fork_child_sift(pc);
			drain_all(pc);
			cache_free(pc);
		}
	}
	if (PERCPU_LIVE)
		claim_own(self, 1);
}

void mm_percpu_drain(void)
{
	drain_all(mm_tcache);
}
