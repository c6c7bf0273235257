// SPDX-License-Identifier: MIT
/*
 * stress_mix: everything at once, for lock-order and corruption bugs.
 *
 *   workers   malloc/calloc/realloc/posix_memalign/free of 1 byte to
 *             8 MiB (slab classes, heap, page runs, direct mappings),
 *             half of the blocks freed by another worker (a shared queue);
 *             every block carries a pattern checked before it is freed
 *   forker    fork() while the rest run; the child mallocs, starts a
 *             thread that mallocs, and exits (an alarm turns a hang into
 *             a failure)
 *   trimmer   malloc_trim(0), mallinfo2(), malloc_stats()
 *   spawner   short-lived threads that allocate, leave blocks to the
 *             queue, and exit; their pthread keys' destructors (run after
 *             mm's) allocate and free again, two rounds
 *   kmem      (with -DSTRESS_KMEM, linked with libmm.a) private caches
 *             created, used from several threads, destroyed
 *
 * Usage: stress_mix [seconds] [workers]  (defaults 1, 3: a second in every
 * configuration's 'make test', longer in make check's stress step).  Exit 0 when
 * nothing went wrong; a hang is for the caller's timeout to catch
 * (tests/Makefile's).  Built by 'make tests' with libmm.a linked in, on
 * the mm_ names with the prefixed facade; the libc names also run under
 * LD_PRELOAD=libmm.so (build it without mm's headers' configuration:
 * gcc -pthread -Iinclude -I$O/include -Iarch/host/include).
 * STRESS_NO_FORK=1 leaves the forker out (ThreadSanitizer).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <mm/mm.h>
#include "stress.h"
#if IS_ENABLED(CONFIG_MM_SLAB)
#define STRESS_KMEM	1
#endif

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define malloc		mm_malloc
#define calloc		mm_calloc
#define realloc		mm_realloc
#define free		mm_free
#define posix_memalign	mm_posix_memalign
#define malloc_trim	mm_malloc_trim
#define mallinfo2	mm_mallinfo2
#define malloc_stats	mm_malloc_stats
#endif

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define SLOTS 64
#define QLEN 512

static int stop;
#define STOP __atomic_load_n(&stop, __ATOMIC_RELAXED)
static int in_child;	/* the queue's lock may have stayed held in the parent */
static int errors;
static unsigned long nops, nforks, nspawned;

struct blk {
	unsigned char *p;
	size_t n;
	unsigned char tag;
};

static void fail(const char *what, const void *p, size_t n)
{
	__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "stress_mix: %s %p (%zu bytes)\n", what, p, n);
}

/* Pattern: first and last 64 bytes, and a byte every 4 KiB. */
static void fill(struct blk *b)
{
	size_t n = b->n;

	if (!n)
		return;
	for (size_t i = 0; i < n && i < 64; i++)
		b->p[i] = (unsigned char)(b->tag + i);
	for (size_t i = n > 64 ? n - 64 : 0; i < n; i++)
		b->p[i] = (unsigned char)(b->tag + i);
	for (size_t i = 4096; i < n; i += 4096)
		b->p[i] = (unsigned char)(b->tag + i);
}

static int check(const struct blk *b, size_t upto)
{
	size_t n = b->n < upto ? b->n : upto;

	for (size_t i = 0; i < n && i < 64; i++)
		if (b->p[i] != (unsigned char)(b->tag + i))
			return 0;
	for (size_t i = 4096; i < n; i += 4096)
		if (b->p[i] != (unsigned char)(b->tag + i))
			return 0;
	if (n == b->n)
		for (size_t i = n > 64 ? n - 64 : 0; i < n; i++)
			if (b->p[i] != (unsigned char)(b->tag + i))
				return 0;
	return 1;
}

static unsigned int rnd(unsigned int *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static size_t rsize(unsigned int *s)
{
	unsigned int r = rnd(s) % 1000;

	if (r < 600)
		return 1 + rnd(s) % 256;
	if (r < 850)
		return 1 + rnd(s) % (8 * KiB);
	if (r < 960)
		return 1 + rnd(s) % (256 * KiB);
	if (r < 992)
		return 1 + rnd(s) % (3 * MiB);
	return 4 * MiB + rnd(s) % (4 * MiB);	/* past the largest buddy block */
}

/* ---- the shared queue: cross-thread frees ---- */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static struct blk queue[QLEN];
static unsigned int qhead, qcount;

static int put(struct blk *b)
{
	int ok = 0;

	if (in_child)
		return 0;
	pthread_mutex_lock(&qlock);
	if (qcount < QLEN) {
		queue[(qhead + qcount++) % QLEN] = *b;
		ok = 1;
	}
	pthread_mutex_unlock(&qlock);
	return ok;
}

static int get(struct blk *b)
{
	int ok = 0;

	if (in_child)
		return 0;
	pthread_mutex_lock(&qlock);
	if (qcount) {
		*b = queue[qhead];
		qhead = (qhead + 1) % QLEN;
		qcount--;
		ok = 1;
	}
	pthread_mutex_unlock(&qlock);
	return ok;
}

static void release(struct blk *b)
{
	if (!b->p)
		return;
	if (!check(b, b->n))
		fail("pattern broken at free", b->p, b->n);
	free(b->p);
	b->p = NULL;
}

static int take(struct blk *b, unsigned int *s)
{
	size_t n = rsize(s);
	unsigned int op = rnd(s) % 4;

	b->n = n;
	b->tag = (unsigned char)rnd(s);
	if (op == 0) {
		b->p = malloc(n);
	} else if (op == 1) {
		b->p = calloc(1, n);
		if (b->p)
			for (size_t i = 0; i < n; i += (n > 4096 ? 4093 : 1))
				if (b->p[i]) {
					fail("calloc not zero", b->p, n);
					break;
				}
	} else {
		void *p = NULL;
		size_t al = (size_t)8 << (rnd(s) % 14);	/* 8 .. 64 KiB */

		if (posix_memalign(&p, al, n))
			p = NULL;
		if (p && ((uintptr_t)p & (al - 1)))
			fail("misaligned", p, al);
		b->p = p;
	}
	if (!b->p) {
		fail("out of memory", NULL, n);
		return 0;
	}
	fill(b);
	return 1;
}

static void churn(unsigned int *s, struct blk *slot, unsigned int nslots, unsigned long ops)
{
	for (unsigned long k = 0; k < ops && !STOP; k++) {
		struct blk *b = &slot[rnd(s) % nslots];
		unsigned int op = rnd(s) % 10;

		if (op < 4) {
			release(b);
			take(b, s);
		} else if (op < 6 && b->p) {
			/* realloc, the old contents kept up to the smaller size */
			size_t n = rsize(s);
			struct blk nb = *b;
			unsigned char *q;

			if (!check(b, b->n))
				fail("pattern broken before realloc", b->p, b->n);
			q = realloc(b->p, n);
			if (!q) {
				fail("realloc failed", b->p, n);
				continue;
			}
			nb.p = q;
			if (!check(&nb, n))
				fail("realloc lost contents", q, n);
			b->p = q;
			b->n = n;
			fill(b);
		} else if (op < 8 && b->p) {
			if (!put(b))
				release(b);
			b->p = NULL;
		} else {
			struct blk g;

			if (get(&g))
				release(&g);
		}
		__atomic_add_fetch(&nops, 1, __ATOMIC_RELAXED);
	}
}

static void *worker(void *arg)
{
	unsigned int s = (unsigned int)(uintptr_t)arg * 2654435761u + 1;
	struct blk slot[SLOTS] = {{0}};

	while (!STOP)
		churn(&s, slot, SLOTS, 1000);
	for (unsigned int i = 0; i < SLOTS; i++)
		release(&slot[i]);
	return NULL;
}

/* ---- the forker ---- */
static __attribute__((unused)) void *child_thread(void *arg)
{
	unsigned int s = 7;
	struct blk slot[8] = {{0}};

	churn(&s, slot, 8, 200);
	for (unsigned int i = 0; i < 8; i++)
		release(&slot[i]);
	return arg;
}

static void child(void)
{
	unsigned int s = 99;
	struct blk slot[8] = {{0}};
	pthread_t t;
	unsigned long mm_before = mm_errors();	/* the parent's, inherited */

	in_child = 1;
	errors = 0;
	if (!getenv("STRESS_GDB"))
		alarm(10);
	churn(&s, slot, 8, 200);
	/*
	 * Not under AddressSanitizer: its own allocator (gcc 12's) holds no
	 * lock across fork(), and a thread started in the child waited on
	 * one, in ASan's thread setup or its quarantine, that another thread
	 * of the parent held.
	 */
#ifndef __SANITIZE_ADDRESS__
	if ((errno = pthread_create(&t, NULL, child_thread, NULL)) ||
	    (errno = pthread_join(t, NULL))) {
		stress_say("stress_mix: child: its thread: %s\n", strerror(errno));
		_exit(3);
	}
#else
	(void)t;
#endif
	for (unsigned int i = 0; i < 8; i++)
		release(&slot[i]);
	malloc_trim(0);
	if (mm_errors() != mm_before)
		fprintf(stderr, "stress_mix: child: mm reported %lu errors\n",
			mm_errors() - mm_before);
	_exit(errors || mm_errors() != mm_before ? 2 : 0);
}

static void *forker(void *arg)
{
	while (!STOP) {
		pid_t pid = fork();
		int st, reaped = 0;

		if (pid == 0)
			child();
		if (pid < 0) {
			fail("fork failed", NULL, 0);
			break;
		}
		if (getenv("STRESS_GDB")) {
			/* a child still there after 5 s: show its threads, then kill it */
			int w = 0;

			for (int i = 0; i < 500 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
				usleep(10000);
			reaped = w == pid;
			if (w == 0) {
				char cmd[128];

				snprintf(cmd, sizeof(cmd),
					 "gdb -p %d -batch -ex 'thread apply all bt' >&2 2>/dev/null",
					 (int)pid);
				fprintf(stderr, "stress_mix: child %d hangs\n", (int)pid);
				if (system(cmd) < 0)
					fail("gdb", NULL, 0);
				kill(pid, SIGKILL);
			}
		}
		if ((!reaped && waitpid(pid, &st, 0) != pid) || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "stress_mix: child %d: %s %d\n", (int)pid,
				WIFSIGNALED(st) ? "signal" : "status",
				WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			fail("child failed", NULL, 0);
		}
		nforks++;
		usleep(2000);
	}
	return arg;
}

/* ---- the trimmer ---- */
static void *trimmer(void *arg)
{
	unsigned long k = 0;

	while (!STOP) {
		struct mallinfo2 mi;

		malloc_trim(0);
		mi = mallinfo2();
		if (mi.uordblks > mi.arena + 64 * MiB)
			fail("mallinfo2 wraps", NULL, mi.uordblks);
		if (++k % 1024 == 0)
			malloc_stats();
		usleep(500);
	}
	return arg;
}

/* ---- short-lived threads with key destructors that allocate ---- */
static pthread_key_t late_key;

static void late_dtor(void *v)
{
	struct blk *b = v;
	unsigned int s = (unsigned int)(uintptr_t)v;
	struct blk slot[4] = {{0}};

	/* After mm's destructor: allocate, free, hand one over. */
	churn(&s, slot, 4, 50);
	for (unsigned int i = 0; i < 4; i++)
		release(&slot[i]);
	if (b->tag++ < 2) {
		pthread_setspecific(late_key, b);	/* another round */
	} else {
		b->tag = 0;
		release(b);
		free(b);
	}
}

static void *short_lived(void *arg)
{
	unsigned int s = (unsigned int)(uintptr_t)arg;
	struct blk slot[16] = {{0}};
	struct blk *b = malloc(sizeof(*b));

	if (b) {
		b->p = malloc(100);
		b->n = 100;
		b->tag = 0;
		fill(b);
		b->tag = 0;
		/* tag is the round count now: the pattern goes with tag 0 */
		pthread_setspecific(late_key, b);
	}
	churn(&s, slot, 16, 300);
	for (unsigned int i = 0; i < 16; i++) {
		if (slot[i].p && (i & 1) && put(&slot[i]))
			slot[i].p = NULL;
		release(&slot[i]);
	}
	return NULL;
}

static void *spawner(void *arg)
{
	unsigned int k = 1;

	while (!STOP) {
		pthread_t t[3];
		int n = 0;

		for (int i = 0; i < 3; i++)
			if (pthread_create(&t[n], NULL, short_lived, (void *)(uintptr_t)(k++ * 77 + 3)) == 0)
				n++;
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		nspawned += n;
	}
	return arg;
}

#ifdef STRESS_KMEM
/* ---- private caches ---- */
#define NCACHE 4
static struct kmem_cache *volatile caches[NCACHE];
static pthread_rwlock_t cache_rw = PTHREAD_RWLOCK_INITIALIZER;

static void *kmem_user(void *arg)
{
	unsigned int s = (unsigned int)(uintptr_t)arg;

	while (!STOP) {
		void *o[32];
		unsigned int i = rnd(&s) % NCACHE, n = 0;
		struct kmem_cache *c;
		size_t sz;

		pthread_rwlock_rdlock(&cache_rw);
		c = caches[i];
		sz = 24 + 40 * i;
		for (n = 0; c && n < 32; n++) {
			o[n] = kmem_cache_alloc(c);
			if (!o[n]) {
				fail("kmem_cache_alloc", c, sz);
				break;
			}
			memset(o[n], (int)n, sz);
		}
		for (unsigned int j = 0; j < n; j++) {
			unsigned char *p = o[j];

			if (p[0] != (unsigned char)j || p[sz - 1] != (unsigned char)j)
				fail("kmem object overwritten", p, sz);
			kmem_cache_free(c, p);
		}
		pthread_rwlock_unlock(&cache_rw);
	}
	return arg;
}

static void *kmem_admin(void *arg)
{
	static const char *names[NCACHE] = { "stress0", "stress1", "stress2", "stress3" };
	unsigned int s = 5;

	while (!STOP) {
		unsigned int i = rnd(&s) % NCACHE;
		struct kmem_cache *c;

		pthread_rwlock_wrlock(&cache_rw);
		c = caches[i];
		caches[i] = NULL;
		pthread_rwlock_unlock(&cache_rw);
		if (c && kmem_cache_destroy(c))
			fail("kmem_cache_destroy", c, 0);
		c = kmem_cache_create(names[i], 24 + 40 * i, 0, 0, NULL);
		if (!c)
			fail("kmem_cache_create", NULL, 24 + 40 * i);
		pthread_rwlock_wrlock(&cache_rw);
		caches[i] = c;
		pthread_rwlock_unlock(&cache_rw);
		usleep(300);
	}
	/*
	 * The users may still be inside a round: under the write lock, which
	 * waits for them, as every destroy above.  Without it a user's live
	 * objects made this destroy report "still has objects" -- a panic
	 * with CONFIG_MM_PANIC_ON_ERROR, once in CI -- and leak the cache.
	 */
	pthread_rwlock_wrlock(&cache_rw);
	for (unsigned int i = 0; i < NCACHE; i++) {
		if (caches[i] && kmem_cache_destroy(caches[i]))
			fail("kmem_cache_destroy at the end", caches[i], 0);
		caches[i] = NULL;
	}
	pthread_rwlock_unlock(&cache_rw);
	return arg;
}
#endif

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 1;
	int nw = argc > 2 ? atoi(argv[2]) : 3;
	int nofork = getenv("STRESS_NO_FORK") != NULL;
	pthread_t t[32];
	int n = 0;
	struct blk b;

	stress_catch_crashes("stress_mix");
	free(malloc(1));	/* mm's key first: ours is destroyed after it */
	pthread_key_create(&late_key, late_dtor);
	for (int i = 0; i < nw && n < 24; i++)
		stress_thread(&t[n++], worker, (void *)(uintptr_t)(i + 1));
	if (!nofork)
		stress_thread(&t[n++], forker, NULL);
	stress_thread(&t[n++], trimmer, NULL);
	stress_thread(&t[n++], spawner, NULL);
#ifdef STRESS_KMEM
	stress_thread(&t[n++], kmem_admin, NULL);
	stress_thread(&t[n++], kmem_user, (void *)11);
	stress_thread(&t[n++], kmem_user, (void *)13);
#endif
	sleep(secs);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	while (get(&b))
		release(&b);
	if (mm_errors())
		fail("mm reported errors", NULL, mm_errors());
	printf("stress_mix: %lu ops, %lu forks, %lu threads, %d errors\n", nops, nforks,
	       nspawned, errors);
	return errors ? 1 : 0;
}
