// SPDX-License-Identifier: MIT
/*
 * The malloc facade under threads.  With the libc facade mm is this
 * program's malloc (it links libmm.a), so the C library, CMocka and the
 * test threads all share it; with the prefixed one the same tests call
 * the mm_ names, and ThreadSanitizer -- which brings a malloc of its own,
 * so cannot run the libc facade -- watches them (scripts/check.sh).
 *
 *  - stress: NTHREADS threads of mixed malloc/calloc/realloc/aligned/free,
 *    passing blocks to each other through a queue so that most frees are
 *    cross-thread; every block carries a pattern of its owner and is
 *    checked when it is freed;
 *  - fork: the main thread forks while the others allocate; each child
 *    allocates, checks and frees (a lock inherited in the held state would
 *    hang it: an alarm turns that into a failure) and exits 0;
 *  - thread exit: threads that allocate and die, their blocks freed by
 *    another thread after they are gone (per-thread caches must go home);
 *  - nothing lost: after each, the arena's pages in use and the objects
 *    live in the kmalloc caches are back where they started.
 *
 * The workers also take direct mappings (blocks above the largest buddy
 * block), whose lock a forked child must find usable too.
 *
 * MM_TEST_SCALE=N (default 1) divides the operation counts by N, e.g.
 * MM_TEST_SCALE=10 under valgrind (scripts/check.sh does that).
 *
 * Worker threads call nothing of CMocka's (it is not thread-safe): they
 * count errors, and the main thread asserts on the counts.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "helpers.h"

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define malloc			mm_malloc
#define calloc			mm_calloc
#define realloc			mm_realloc
#define free			mm_free
#define aligned_alloc		mm_aligned_alloc
#define posix_memalign		mm_posix_memalign
#define malloc_usable_size	mm_malloc_usable_size
#define malloc_trim		mm_malloc_trim
#endif

#define NTHREADS	4
#define OPS		200000
#define LOCAL_SLOTS	256
#define QUEUE_LEN	1024
#define KiB		((size_t)1024)
#define MiB		(1024 * KiB)

static double scale = 1.0;	/* divisor */

/*
 * Small stacks, so that glibc's cache of thread stacks (40 MiB) holds every
 * one of them: a stack evicted from it frees its TLS vector, a new one
 * allocates another, and what that does to the slabs is not ours to count.
 */
static pthread_attr_t attr;

static int spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	return pthread_create(t, &attr, fn, arg);
}

static long scaled(long n)
{
	long v = (long)(n / scale);

	return v < 1 ? 1 : v;
}

/* ---- Blocks that know who made them ------------------------------------ */

struct blk {
	unsigned char *p;
	size_t n;
	unsigned int tag;
};

static unsigned char pat(unsigned int tag, size_t i)
{
	return (unsigned char)(tag + i * 13 + (i >> 8));
}

/* Fill all of it up to 4 KiB, then the start, the end and one byte a page. */
static void blk_fill(const struct blk *b)
{
	size_t n = b->n;

	if (n <= 4096) {
		for (size_t i = 0; i < n; i++)
			b->p[i] = pat(b->tag, i);
		return;
	}
	for (size_t i = 0; i < 256; i++) {
		b->p[i] = pat(b->tag, i);
		b->p[n - 1 - i] = pat(b->tag, n - 1 - i);
	}
	for (size_t i = 256; i < n - 256; i += 4096)
		b->p[i] = pat(b->tag, i);
}

static int blk_ok_upto(const struct blk *b, size_t n)
{
	if (n > b->n)
		n = b->n;
	if (n != b->n || n <= 4096) {
		/* Blocks above 4 KiB are patterned in full only in their first 256 bytes. */
		size_t lim = b->n <= 4096 ? n : n < 256 ? n : 256;

		for (size_t i = 0; i < lim; i++) {
			if (b->p[i] != pat(b->tag, i))
				return 0;
		}
		return 1;
	}
	for (size_t i = 0; i < 256; i++) {
		if (b->p[i] != pat(b->tag, i) || b->p[n - 1 - i] != pat(b->tag, n - 1 - i))
			return 0;
	}
	for (size_t i = 256; i < n - 256; i += 4096) {
		if (b->p[i] != pat(b->tag, i))
			return 0;
	}
	return 1;
}

static int blk_ok(const struct blk *b)
{
	return blk_ok_upto(b, b->n);
}

/* ---- Per-thread random sizes ------------------------------------------- */

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* The largest blocks of the arena: up to a MiB, less in a static one. */
#define BIG_MAX		(IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC) ? MiB / 8 : MiB)

static size_t __rnd_size(unsigned int *s, int huge)
{
	unsigned int r = rnd(s) % 10000;

	if (huge > 1 && r % 50 == 0)
		return 4 * MiB + rnd(s) % (2 * MiB);
	if (r < 7000)
		return 1 + rnd(s) % 256;
	if (r < 9500)
		return 1 + rnd(s) % 4096;
	if (r < 9980)
		return 1 + rnd(s) % 65536;
	if (r < 9998 || !huge)
		return 65536 + rnd(s) % BIG_MAX;
	return 4 * MiB + rnd(s) % (2 * MiB);	/* a direct mapping */
}

/* Within the largest block where nothing serves more (the tiny core at MM_MAX_ORDER=4: 64 KiB). */
static size_t rnd_size(unsigned int *s, int huge)
{
	return served_size(__rnd_size(s, huge));
}

/* ---- The shared queue (cross-thread frees) ------------------------------ */

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blk queue[QUEUE_LEN];
static unsigned int q_head, q_count;

static int q_push(const struct blk *b)
{
	int ok = 0;

	pthread_mutex_lock(&q_lock);
	if (q_count < QUEUE_LEN) {
		queue[(q_head + q_count++) % QUEUE_LEN] = *b;
		ok = 1;
	}
	pthread_mutex_unlock(&q_lock);
	return ok;
}

static int q_pop(struct blk *b)
{
	int ok = 0;

	pthread_mutex_lock(&q_lock);
	if (q_count) {
		*b = queue[q_head];
		q_head = (q_head + 1) % QUEUE_LEN;
		q_count--;
		ok = 1;
	}
	pthread_mutex_unlock(&q_lock);
	return ok;
}

/* ---- Error accounting --------------------------------------------------- */

static unsigned long err_alloc, err_align, err_content, err_zero, err_fork;
static unsigned long cross_frees;

static void count(unsigned long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static void reset_counts(void)
{
	err_alloc = err_align = err_content = err_zero = err_fork = cross_frees = 0;
}

static void assert_no_errors(void)
{
	if (err_alloc || err_align || err_content || err_zero || err_fork)
		fail_msg("errors: alloc %lu, align %lu, content %lu, calloc %lu, fork %lu",
			 err_alloc, err_align, err_content, err_zero, err_fork);
}

static void blk_free(struct blk *b)
{
	if (!blk_ok(b))
		count(&err_content);
	free(b->p);
	b->p = NULL;
}

/* ---- Workers ------------------------------------------------------------ */

struct worker {
	pthread_t th;
	unsigned int id;
	long ops;		/* < 0: until 'stop' */
	int huge;		/* also direct mappings (2: often) */
	struct blk slot[LOCAL_SLOTS];
};

static int stop;

static void new_block(struct worker *w, unsigned int *s, struct blk *b, unsigned int seq)
{
	size_t n = rnd_size(s, w->huge);
	unsigned int how = rnd(s) % 8;
	void *p = NULL;

	switch (how) {
	case 0:
	case 1:
	case 2:
		p = malloc(n);
		break;
	case 3:
		p = calloc(1, n);
		if (p) {
			const unsigned char *c = p;

			for (size_t i = 0; i < n && i < 8192; i++) {
				if (c[i]) {
					count(&err_zero);
					break;
				}
			}
		}
		break;
	case 4:
		p = realloc(NULL, n);
		break;
	case 5:
		p = aligned_alloc((size_t)16 << (rnd(s) % 9), n);
		break;
	case 6:
		if (posix_memalign(&p, (size_t)8 << (rnd(s) % 10), n))
			p = NULL;
		break;
	default:
		p = malloc(n < 64 ? n : n / 2);
		p = p ? realloc(p, n) : NULL;
		break;
	}
	if (!p) {
		count(&err_alloc);
		b->p = NULL;
		return;
	}
	if ((uintptr_t)p & 15)
		count(&err_align);
	b->p = p;
	b->n = n;
	b->tag = w->id << 24 | seq;
	blk_fill(b);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned int s = 0x9e3779b9u * (w->id + 1);
	struct blk got;

	for (long i = 0; w->ops < 0 ? !__atomic_load_n(&stop, __ATOMIC_RELAXED) : i < w->ops;
	     i++) {
		struct blk *b = &w->slot[rnd(&s) % LOCAL_SLOTS];
		unsigned int r = rnd(&s) % 100;

		if (!b->p) {
			new_block(w, &s, b, (unsigned int)i);
		} else if (r < 35) {
			blk_free(b);
		} else if (r < 50) {
			struct blk nb = *b;
			unsigned char *q;

			nb.n = rnd_size(&s, w->huge);
			q = realloc(b->p, nb.n);
			if (!q) {
				count(&err_alloc);
				continue;
			}
			b->p = q;
			if (!blk_ok_upto(b, nb.n))
				count(&err_content);
			nb.p = q;
			nb.tag = w->id << 24 | (unsigned int)i;
			*b = nb;
			blk_fill(b);
		} else {
			/* Hand it to whichever thread comes next. */
			if (q_push(b))
				b->p = NULL;
			else
				blk_free(b);
		}
		if (rnd(&s) % 100 < 45 && q_pop(&got)) {
			if ((got.tag >> 24) != w->id)
				count(&cross_frees);
			blk_free(&got);
		}
	}
	for (int k = 0; k < LOCAL_SLOTS; k++) {
		if (w->slot[k].p)
			blk_free(&w->slot[k]);
	}
	return NULL;
}

static void *drain_main(void *arg)
{
	struct blk got;

	while (q_pop(&got))
		blk_free(&got);
	return NULL;
}

/* Run the workers to the end (ops > 0) or until 'stop' (ops < 0). */
static void start_workers(struct worker *w, int n, long ops, int huge)
{
	stop = 0;
	for (int i = 0; i < n; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = (unsigned int)i + 1;
		w[i].ops = ops;
		/*
		 * Direct mappings exist only with the mmap backend, and the
		 * blocks of half their size that realloc() grows into them
		 * (new_block()) do not fit a 16 MiB static arena four times.
		 */
		w[i].huge = IS_ENABLED(CONFIG_MM_BACKEND_MMAP) &&
			    !IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC) ? huge : 0;
		if (spawn(&w[i].th, worker_main, &w[i]))
			count(&err_alloc);
	}
}

/* Join them, then empty the queue from a thread of its own. */
static void join_workers(struct worker *w, int n)
{
	pthread_t t;

	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < n; i++)
		pthread_join(w[i].th, NULL);
	if (spawn(&t, drain_main, NULL) == 0)
		pthread_join(t, NULL);
	else
		count(&err_alloc);
}

/* ---- Measuring ---------------------------------------------------------- */

static void settle(void)
{
	malloc_trim(0);
	kmem_cache_reap(mm_default_arena());
}

static struct worker workers[NTHREADS];

/*
 * A short round of everything first, so that what stays allocated for the
 * program's lifetime already is: kmalloc caches, glibc's cached thread
 * stacks and their TLS vectors (which come from malloc).
 */
static void warm_up(void)
{
	start_workers(workers, NTHREADS, 2000, 1);
	join_workers(workers, NTHREADS);
	settle();
}

/* ---- Tests -------------------------------------------------------------- */

static void test_malloc_is_mm(void **state)
{
	void *p = malloc(64);

	assert_non_null(p);
	assert_true(ksize(p) >= 64);
	assert_int_equal(ksize(p), malloc_usable_size(p));
	free(p);
}

static void test_stress_cross_thread(void **state)
{
	size_t before, after;
	unsigned long objs_before, objs_after;

	reset_counts();
	warm_up();
	assert_no_errors();
	before = in_use();
	objs_before = live_objects();

	start_workers(workers, NTHREADS, scaled(OPS), 1);
	join_workers(workers, NTHREADS);
	settle();

	after = in_use();
	objs_after = live_objects();
	assert_no_errors();
	assert_true(cross_frees > 0);
	assert_int_equal(objs_after, objs_before);
	assert_int_equal(after, before);
	assert_arena_valid(mm_default_arena());
}

/* In the child: allocate, check, free; 0 if all went well. */
static int child_work(void)
{
	/* The last is a direct mapping where there are any (mmap backend). */
	static const size_t sizes[] = { 1, 24, 100, 1000, 5000, 9000, 70000, MiB,
					IS_ENABLED(CONFIG_MM_BACKEND_MMAP) ? 5 * MiB : 2 * MiB };
	struct blk b[ARRAY_SIZE(sizes)];
	int bad = 0;

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			b[i].n = served_size(sizes[i]);
			b[i].tag = (unsigned int)(round * 100 + i);
			b[i].p = malloc(b[i].n);
			if (!b[i].p)
				return 2;
			blk_fill(&b[i]);
		}
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
			bad |= !blk_ok(&b[i]);
			b[i].p = realloc(b[i].p, max_t(size_t, served_size(2 * b[i].n), b[i].n));
			if (!b[i].p)
				return 3;
			bad |= !blk_ok(&b[i]);
			free(b[i].p);
		}
	}
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	if (mm_arena_validate(mm_default_arena()))
		return 4;
#endif
	return bad ? 5 : 0;
}

static void test_fork_while_allocating(void **state)
{
	enum { FORKS = 16, FORK_WORKERS = 2 };
	int status[FORKS];
	size_t before, after;
	unsigned long objs_before, objs_after;
	int nforks = (int)scaled(FORKS);

	if (nforks < 4)
		nforks = 4;
	reset_counts();
	warm_up();
	before = in_use();
	objs_before = live_objects();

	start_workers(workers, FORK_WORKERS, -1, 2);
	for (int i = 0; i < nforks; i++) {
		pid_t pid;

		/* Let the workers get going between forks. */
		for (volatile int spin = 0; spin < 200000; spin++)
			;
		pid = fork();
		if (pid == 0) {
			alarm(10);	/* a lock held forever would hang us */
			_exit(child_work());
		}
		if (pid < 0 || waitpid(pid, &status[i], 0) != pid)
			status[i] = -1;
	}
	join_workers(workers, FORK_WORKERS);
	settle();
	after = in_use();
	objs_after = live_objects();

	for (int i = 0; i < nforks; i++) {
		if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0)
			fail_msg("child %d: status %#x (%s %d)", i, status[i],
				 WIFSIGNALED(status[i]) ? "signal" : "exit",
				 WIFSIGNALED(status[i]) ? WTERMSIG(status[i]) :
							  WEXITSTATUS(status[i]));
	}
	assert_no_errors();
	assert_int_equal(objs_after, objs_before);
	assert_int_equal(after, before);
	assert_arena_valid(mm_default_arena());
}

/*
 * Many short-lived threads: whatever a thread keeps must go home when it
 * exits, and its blocks freed by another thread after it is gone too.
 */
#define SL_THREADS	8
#define SL_BLOCKS	64
static void *orphans[SL_THREADS][SL_BLOCKS / 2];

static void *short_lived(void *arg)
{
	unsigned int id = (unsigned int)(uintptr_t)arg, s = id * 7919u;
	void *p[SL_BLOCKS];

	for (int i = 0; i < SL_BLOCKS; i++) {
		p[i] = malloc(1 + rnd(&s) % 3000);
		if (!p[i])
			count(&err_alloc);
	}
	for (int i = 0; i < SL_BLOCKS; i++) {
		if (i & 1)
			orphans[id][i / 2] = p[i];
		else
			free(p[i]);
	}
	return NULL;
}

static void *short_lived_round(void *arg)
{
	pthread_t t[SL_THREADS];
	void *mine = malloc(10);	/* this thread allocates too */

	for (int i = 0; i < SL_THREADS; i++) {
		if (spawn(&t[i], short_lived, (void *)(uintptr_t)i))
			count(&err_alloc);
	}
	for (int i = 0; i < SL_THREADS; i++)
		pthread_join(t[i], NULL);
	/* The odd blocks of threads that no longer exist. */
	for (int i = 0; i < SL_THREADS; i++) {
		for (int j = 0; j < SL_BLOCKS / 2; j++) {
			free(orphans[i][j]);
			orphans[i][j] = NULL;
		}
	}
	free(mine);
	return NULL;
}

static void test_thread_exit_returns_memory(void **state)
{
	size_t before, after;
	unsigned long objs_before, objs_after;
	pthread_t t;
	int rounds = (int)scaled(100);

	reset_counts();
	/* Warm up glibc's stack cache with as many threads as we will use. */
	assert_int_equal(spawn(&t, short_lived_round, NULL), 0);
	pthread_join(t, NULL);
	settle();
	before = in_use();
	objs_before = live_objects();
	for (int r = 0; r < rounds; r++) {
		if (spawn(&t, short_lived_round, NULL) == 0)
			pthread_join(t, NULL);
		else
			count(&err_alloc);
	}
	settle();
	after = in_use();
	objs_after = live_objects();
	assert_no_errors();
	assert_int_equal(objs_after, objs_before);
	assert_int_equal(after, before);
	assert_arena_valid(mm_default_arena());
}

/*
 * Misuse reported from several threads at once: every report is one more
 * in its arena's diag.error_count, however many threads report together
 * (report.c's count_one()).  REPORT_THREADS threads commit REPORTS misuses
 * each, in rounds a barrier starts together, with the output off (a report
 * is then a few dozen instructions), while this thread reads the count
 * through mm_arena_diag(): it must never be seen to go down, and must end
 * exactly that many higher.
 *
 * The misuse is one reported with no lock held, so that nothing but the
 * count itself orders the counts: in the full core an order above
 * MM_MAX_ORDER, which alloc_pages() reports before it takes any lock (a
 * foreign pointer's free is reported under the arena lock, which orders
 * the counts already).  The tiny core reports everything under its lock:
 * there this checks the total only.
 *
 * A lost count needs two increments to interleave, so against a plain ++
 * this can pass by luck.  Rarely on two cores: there it failed 49 runs in
 * 50 (host and host_debug), each some thousands short -- but pinned to one
 * core (taskset -c 0) it passed 20 in 20.  ThreadSanitizer's run of this
 * file (scripts/check.sh) reports the race itself, counts lost or not.
 */
#define REPORT_THREADS	4
#define REPORT_ROUNDS	64
#define REPORTS		(64 * 1024)	/* per thread, over all rounds */

static pthread_barrier_t report_go;
static long reports_per_round;
static int reporters_done;
#if IS_ENABLED(CONFIG_MM_TINY)
static char not_ours[64];		/* no block of the arena: free() reports it */
#endif

/* One reported misuse; 1 if the call did not fail as it must. */
static int misuse_once(void)
{
#if IS_ENABLED(CONFIG_MM_TINY)
	free(not_ours);
	return 0;
#else
	return alloc_pages(mm_default_arena(), MM_MAX_ORDER + 1) != NULL;
#endif
}

static void *reporter(void *arg)
{
	unsigned long *failed = arg;

	for (int r = 0; r < REPORT_ROUNDS; r++) {
		pthread_barrier_wait(&report_go);
		for (long i = 0; i < reports_per_round; i++)
			*failed += misuse_once();
	}
	__atomic_add_fetch(&reporters_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_concurrent_reports_all_counted(void **state)
{
	struct mm_arena *a = mm_default_arena();
	pthread_t t[REPORT_THREADS];
	unsigned long failed[REPORT_THREADS] = { 0 };
	unsigned long before, seen, expected;
	struct mm_diag d;
	mm_output_t out;
	int went_down = 0;

	/* A report would stop the process (and misuse() forks for each). */
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR))
		skip();
	assert_non_null(a);
	reports_per_round = scaled(REPORTS / REPORT_ROUNDS);
	expected = (unsigned long)REPORT_THREADS * REPORT_ROUNDS * reports_per_round;
	out = mm_set_output(NULL, NULL);
	before = seen = a->diag.error_count;
	reporters_done = 0;
	pthread_barrier_init(&report_go, NULL, REPORT_THREADS);
	for (int i = 0; i < REPORT_THREADS; i++)
		assert_int_equal(spawn(&t[i], reporter, &failed[i]), 0);
	/* Watch the count while they report: it only ever grows. */
	while (__atomic_load_n(&reporters_done, __ATOMIC_ACQUIRE) < REPORT_THREADS) {
		mm_arena_diag(a, &d);
		if (d.error_count < seen)
			went_down = 1;
		seen = d.error_count;
		sched_yield();
	}
	for (int i = 0; i < REPORT_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(failed[i], 0);
	}
	pthread_barrier_destroy(&report_go);
	mm_set_output(out, NULL);
	assert_false(went_down);
	assert_int_equal(a->diag.error_count - before, expected);
}

/*
 * fork() from a threaded program: the child has only the forking thread,
 * and the other threads' caches -- their magazines full of free objects
 * -- must not stay lost in it (they did: a few MiB per child of a server
 * with a dozen threads).  The threads allocate and free every class,
 * so that only their magazines hold anything, and wait while the main
 * thread forks; the child's pages in use after a trim must be what the
 * parent had before it started them.
 */
#define PARKED_THREADS	8

static pthread_barrier_t parked, released;

static void *park_main(void *arg)
{
	void *v[64];

	for (size_t sz = 16; sz <= 4096; sz += sz / 2) {
		for (int i = 0; i < 64; i++)
			v[i] = malloc(sz);
		for (int i = 0; i < 64; i++)
			free(v[i]);
	}
	pthread_barrier_wait(&parked);		/* nothing allocated, much parked */
	pthread_barrier_wait(&released);
	return arg;
}

static void test_fork_child_gets_magazines_back(void **state)
{
	pthread_t t[PARKED_THREADS];
	size_t before = 0;	/* the loop sets it; -Og cannot tell */
	int status = -1;
	pid_t pid;

	pthread_barrier_init(&parked, NULL, PARKED_THREADS + 1);
	pthread_barrier_init(&released, NULL, PARKED_THREADS + 1);
	/*
	 * A first round warms up what stays: glibc's cached thread stacks
	 * and their TLS vectors, the classes.  The second one forks.
	 */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < PARKED_THREADS; i++)
			assert_int_equal(spawn(&t[i], park_main, NULL), 0);
		pthread_barrier_wait(&parked);
		if (round)
			break;
		pthread_barrier_wait(&released);
		for (int i = 0; i < PARKED_THREADS; i++)
			pthread_join(t[i], NULL);
		settle();
		before = in_use();
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/*
		 * Without a key or mark (no checks, no free mark) nothing
		 * tells a parked object from one the fork's copy caught being
		 * handed out, and the child keeps the other threads' caches
		 * as they are (percpu.c, __percpu_fork_child()): a thread's
		 * cache (32 KiB at most, or a page) and what its magazines
		 * park: at most 16 KiB of each class the 14 sizes here use
		 * (16 counted), each class's objects pinning a slab more
		 * than they fill.
		 */
		size_t slack = IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK) ? 0 :
			       (size_t)PARKED_THREADS * (max_t(size_t, 32 * KiB, MM_PAGE_SIZE) +
				16 * (16 * KiB + ((size_t)MM_PAGE_SIZE << CONFIG_MM_SLAB_MAX_ORDER)));

		alarm(10);
		settle();
		/* Exit status 0: all given back; 1: pages still parked. */
		if (in_use() > before + slack)
			fprintf(stderr, "child: %zu bytes in use, %zu before\n", in_use(), before);
		_exit(in_use() > before + slack ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	pthread_barrier_wait(&released);
	for (int i = 0; i < PARKED_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&parked);
	pthread_barrier_destroy(&released);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	settle();
	assert_int_equal(in_use(), before);
}

#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
#include "../mm/percpu.h"	/* white-box: a thread's magazine, as a fork's copy may find it */

/*
 * fork() stops no thread: the threads the child will not have go on
 * pushing and popping while the kernel copies memory, and the copy may
 * catch one between a push's or a pop's stores, which nothing orders, so
 * the child may find a magazine whose count covers slots the copy caught
 * before their last write.  Such a slot names an object the thread had
 * popped since (and that is now in its magazine again at another slot, in
 * the forking thread's magazine, on its slab's free list, or in use), or
 * holds what the page held before (the cache's pages come from the buddy
 * allocator as they were).  The child gave every such object back to its
 * slab as it found it -- a second copy of a free object, handed out twice
 * (stress_mix: the child's allocator crashed on a free list gone bad) --
 * or read through the garbage.  Here the parked thread's magazine gets
 * those slots written into it while it waits, as a fork's copy could
 * show it; the child must hand out no object twice, nor the one in use,
 * and the forking thread's own parked objects must still be known for
 * free (the child sets their keys or marks aside while it sifts).
 */
#define TORN_SIZE	48
#define TORN_PARKED	4
#define TORN_CHILD	2048

static pthread_barrier_t torn_parked, torn_released;

static void *torn_main(void *arg)
{
	void *v[TORN_PARKED];

	for (int i = 0; i < TORN_PARKED; i++)
		v[i] = malloc(TORN_SIZE);
	for (int i = 0; i < TORN_PARKED; i++)
		free(v[i]);
	*(struct percpu_cache **)arg = mm_tcache;
	pthread_barrier_wait(&torn_parked);
	pthread_barrier_wait(&torn_released);
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* In the child: TORN_CHILD objects of the class, all distinct, none of them 'live'. */
static int torn_child(const unsigned char *live, void *mine)
{
	static void *got[TORN_CHILD];
	unsigned long reported = 0;
	int bad = 0;

	alarm(10);
	/* Parked in this thread's magazine: a second free is told (by the key or mark). */
	if ((IS_ENABLED(CONFIG_MM_CHECKS) || IS_ENABLED(CONFIG_MM_FREE_MARK)) &&
	    !IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR)) {
		capture_start();
		free(mine);
		capture_stop();
		reported = 1;
		if (mm_default_arena()->diag.error_count != reported)
			bad |= 32;
	}
	for (int i = 0; i < TORN_CHILD; i++) {
		got[i] = malloc(TORN_SIZE);
		if (!got[i] || got[i] == live)
			bad |= 1;
		else
			memset(got[i], 0xee, TORN_SIZE);
	}
	qsort(got, TORN_CHILD, sizeof(got[0]), cmp_ptr);
	for (int i = 1; i < TORN_CHILD; i++)
		if (got[i] && got[i] == got[i - 1])
			bad |= 2;
	for (int i = 0; i < TORN_SIZE; i++)
		if (live[i] != 0x5a)
			bad |= 4;
	if (mm_default_arena()->diag.error_count != reported)
		bad |= 8;
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	if (mm_arena_validate(mm_default_arena()))
		bad |= 16;
#endif
	return bad;
}

static void test_fork_child_torn_magazine(void **state)
{
	struct kmem_cache *c = kmalloc_slab(TORN_SIZE);
	unsigned int idx = c->kmalloc_idx;
	struct percpu_cache *pc = NULL;
	unsigned char *live;
	void *mine, *on_slab, *torn[6];
	unsigned int count;
	int status = -1;
	pid_t pid;
	pthread_t t;
	static const int crash_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	struct sigaction dfl = { .sa_handler = SIG_DFL }, saved[ARRAY_SIZE(crash_sigs)];

	assert_int_equal(mm_default_arena()->diag.error_count, 0);
	pthread_barrier_init(&torn_parked, NULL, 2);
	pthread_barrier_init(&torn_released, NULL, 2);
	assert_int_equal(spawn(&t, torn_main, &pc), 0);
	pthread_barrier_wait(&torn_parked);
	assert_non_null(pc);
	count = pc->mag[idx].count;
	assert_true(count >= 1 && count + ARRAY_SIZE(torn) <= pc->mag[idx].cap);

	live = malloc(TORN_SIZE);		/* in use by this thread */
	memset(live, 0x5a, TORN_SIZE);
	mine = malloc(TORN_SIZE);
	free(mine);				/* in this thread's magazine */
	on_slab = c->cpu_freelist;		/* free on its slab */
	torn[0] = percpu_objs(pc, idx)[0];	/* parked there already */
	torn[1] = mine;
	torn[2] = on_slab;
	torn[3] = live;
	torn[4] = (void *)(uintptr_t)0x5a5a5a5a5a5a5a58ULL;	/* what a page held */
	torn[5] = NULL;
	for (unsigned int i = 0; i < ARRAY_SIZE(torn); i++)
		percpu_objs(pc, idx)[count + i] = torn[i];
	pc->mag[idx].count = count + ARRAY_SIZE(torn);

	/*
	 * A crash in the child's fork handler must kill the child: cmocka's
	 * handler would return it into the test runner, in the middle of
	 * fork() with the C library's atfork lock held, where the next test
	 * hangs until make test's timeout.
	 */
	for (unsigned int i = 0; i < ARRAY_SIZE(crash_sigs); i++)
		sigaction(crash_sigs[i], &dfl, &saved[i]);
	pid = fork();
	if (pid == 0)
		_exit(torn_child(live, mine));
	for (unsigned int i = 0; i < ARRAY_SIZE(crash_sigs); i++)
		sigaction(crash_sigs[i], &saved[i], NULL);
	pc->mag[idx].count = count;		/* the parent's is the magazine as it was */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	pthread_barrier_wait(&torn_released);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&torn_parked);
	pthread_barrier_destroy(&torn_released);
	free(live);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

/*
 * A thread's first allocation sets up its cache and registers it with
 * pthread_setspecific(), which for a key of index 32 or more allocates
 * the thread's second-level key array with calloc() -- that is, with mm.
 * That nested calloc() must not set up a second cache (and a third...):
 * it recursed until the stack overflowed.  The key is ours only if no
 * allocation came before the program's own 40 keys, so this runs in a
 * fresh process: the test program again, with MANY_KEYS_ARG (main()).
 */
#define MANY_KEYS_ARG	"--many-keys-child"

static void *many_keys_thread(void *arg)
{
	void *p = malloc(100);

	free(p);
	return p ? arg : NULL;
}

static int many_keys_child(void)
{
	pthread_key_t k;
	pthread_t t;
	void *p, *ret = NULL;

	for (int i = 0; i < 40; i++) {
		if (pthread_key_create(&k, NULL))
			return 2;
	}
	p = malloc(100);	/* the first allocation: mm's key comes after ours */
	if (!p)
		return 3;
	free(p);
	if (pthread_create(&t, NULL, many_keys_thread, &k) || pthread_join(t, &ret) || !ret)
		return 4;
	return 0;
}

/*
 * This program again, as a fresh process that runs the child side of the
 * test 'arg' names (main()), with ten seconds to exit 0: a signal (SIGALRM
 * where it hung) fails the test with what was tested.
 */
static void run_self(const char *arg, const char *what)
{
	char self[4096], *args[] = { self, (char *)arg, NULL };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int status = -1;
	pid_t pid;

	assert_true(n > 0);
	self[n] = '\0';		/* the program itself, also under valgrind */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(10);
		execv(self, args);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("%s: signal %d (SIGALRM: it hung)", what, WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A child that allocates at once, with its own alarm (not inherited): 0,
 * or 4 where fork() failed and 5 where the child did not exit 0.
 */
static int fork_child_mallocs(void)
{
	int status = -1;
	pid_t pid = fork();

	if (pid < 0)
		return 4;
	if (pid == 0) {
		void *p;

		alarm(5);
		p = malloc(100);
		free(p);
		_exit(p ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 5;
	return 0;
}

static void test_first_malloc_after_many_keys(void **state)
{
	run_self(MANY_KEYS_ARG, "first malloc after many keys");
}

/*
 * fork() handlers of a library registered before the allocator's, whose
 * prepare handler therefore runs after the allocator's has taken its
 * locks (and whose parent and child handlers run before the allocator's
 * release them), and which allocate: the forking thread must get its
 * memory, with a pthread mutex or a spinlock alike.  A fresh process, so
 * that its handlers come first: the program again, with ATFORK_ARG.
 */
#define ATFORK_ARG	"--atfork-first-child"

static void atfork_alloc(void)
{
	free(malloc(100));
	free(malloc(3000));
}

static void *atfork_thread(void *arg)
{
	free(malloc(200));
	return arg;
}

static int atfork_first_child(void)
{
	static int token;
	pthread_t t;
	void *ret = NULL;

	if (pthread_atfork(atfork_alloc, atfork_alloc, atfork_alloc))
		return 2;
	free(malloc(100));	/* the allocator's handlers: after ours */
	/* A second thread: the locks are taken from now on. */
	if (pthread_create(&t, NULL, atfork_thread, &token) || pthread_join(t, &ret) || !ret)
		return 3;
	return fork_child_mallocs();
}

static void test_fork_with_handlers_that_allocate(void **state)
{
	run_self(ATFORK_ARG, "fork with allocating handlers");
}

/*
 * A fork() while another thread makes the first kmalloc() of the process,
 * and so sets up the size classes under their own lock: the child must
 * find that setup done or not begun, never its lock held by a thread the
 * child does not have.  A fresh process (the program again, SETUP_ARG),
 * whose prepare handler, registered before mm's and so run after it, lets
 * the thread start while the fork holds the arena locks: the setup stops
 * at the first of them.  Where the program allocated before main() (the
 * libc facade) the setup is long done; the mm_ names find it to do.
 */
#define SETUP_ARG	"--fork-during-setup-child"
static int setup_go, setup_done;

static void setup_prepare(void)
{
	if (!__atomic_exchange_n(&setup_go, 1, __ATOMIC_ACQ_REL))
		usleep(100 * 1000);
}

static void *setup_thread(void *arg)
{
	while (!__atomic_load_n(&setup_go, __ATOMIC_ACQUIRE))
		usleep(100);
	free(malloc(100));	/* the first kmalloc() of the process */
	__atomic_store_n(&setup_done, 1, __ATOMIC_RELEASE);
	return arg;
}

static int setup_child(void)
{
	static int token;
	pthread_t t;
	int st;

	/* Ours first, then mm's (the arena's setup), and no kmalloc() yet. */
	if (pthread_atfork(setup_prepare, NULL, NULL) || !mm_default_arena() ||
	    pthread_create(&t, NULL, setup_thread, &token))
		return 2;
	/*
	 * Detached, and waited for by a flag: ThreadSanitizer took the
	 * thread the child does not have for a leak of the child's.
	 */
	pthread_detach(t);
	st = fork_child_mallocs();
	while (!__atomic_load_n(&setup_done, __ATOMIC_ACQUIRE))
		usleep(1000);
	return st;
}

static void test_fork_during_setup(void **state)
{
	run_self(SETUP_ARG, "fork during setup");
}

/*
 * Threads whose allocations are the process's first kmalloc()s, all at
 * once: the thread that sets up the size classes publishes them to the
 * others, which read the class tables on their inline paths meanwhile
 * (ThreadSanitizer, which runs this on the mm_ names, reported those
 * reads racing the setup's writes).  A fresh process, FIRST_ARG; with the
 * libc facade the C library allocated before main(), and this is only a
 * threaded smoke test.
 */
#define FIRST_ARG	"--first-kmalloc-at-once-child"
#define FIRST_THREADS	4
static pthread_barrier_t first_go;

static void *first_thread(void *arg)
{
	uintptr_t k = (uintptr_t)arg;
	unsigned char *p[32];

	pthread_barrier_wait(&first_go);
	for (unsigned int i = 0; i < 32; i++) {
		size_t n = 1 + ((k * 32 + i) * 137) % 4096;

		p[i] = malloc(n);
		if (!p[i])
			return arg;
		memset(p[i], (int)i, n);
	}
	for (unsigned int i = 0; i < 32; i++)
		free(p[i]);
	return NULL;
}

static int first_child(void)
{
	pthread_t t[FIRST_THREADS];
	int bad = 0;

	if (pthread_barrier_init(&first_go, NULL, FIRST_THREADS))
		return 2;
	for (uintptr_t k = 0; k < FIRST_THREADS; k++) {
		if (pthread_create(&t[k], NULL, first_thread, (void *)(k + 1)))
			_exit(2);	/* the others wait at the barrier for ever */
	}
	for (unsigned int k = 0; k < FIRST_THREADS; k++) {
		void *r;

		pthread_join(t[k], &r);
		bad |= r != NULL;
	}
	return bad ? 3 : 0;
}

static void test_first_kmalloc_at_once(void **state)
{
	run_self(FIRST_ARG, "first kmalloc() in threads at once");
}

/* argv[1], if given, is a CMocka test-name filter ("test_fork*"). */
int main(int argc, char **argv)
{
	const char *env;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malloc_is_mm),
		cmocka_unit_test(test_stress_cross_thread),
		cmocka_unit_test(test_fork_while_allocating),
		cmocka_unit_test(test_thread_exit_returns_memory),
		cmocka_unit_test(test_fork_child_gets_magazines_back),
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
		cmocka_unit_test(test_fork_child_torn_magazine),
#endif
		cmocka_unit_test(test_first_malloc_after_many_keys),
		cmocka_unit_test(test_fork_with_handlers_that_allocate),
		cmocka_unit_test(test_fork_during_setup),
		cmocka_unit_test(test_first_kmalloc_at_once),
		/* Last: the tests above count the arena's errors from 0. */
		cmocka_unit_test(test_concurrent_reports_all_counted),
	};

	/* Before anything allocates: see test_first_malloc_after_many_keys(). */
	if (argc > 1 && strcmp(argv[1], MANY_KEYS_ARG) == 0)
		return many_keys_child();
	if (argc > 1 && strcmp(argv[1], ATFORK_ARG) == 0)
		return atfork_first_child();
	if (argc > 1 && strcmp(argv[1], SETUP_ARG) == 0)
		return setup_child();
	if (argc > 1 && strcmp(argv[1], FIRST_ARG) == 0)
		return first_child();
	env = getenv("MM_TEST_SCALE");
	if (env && strtod(env, NULL) >= 1)
		scale = strtod(env, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
