// SPDX-License-Identifier: MIT
/*
 * Allocator workloads for comparing malloc implementations, the ones
 * ANCHORS.md's peer numbers were measured on.  Plain malloc/free/realloc
 * only: the allocator under test comes in with LD_PRELOAD (bench/run-peers.sh).
 *
 *   workloads <name> [scale]      run one workload, print one RESULT line
 *   workloads pair64              malloc(64)+free pairs for callgrind
 *   workloads list                the names
 *
 * Every block carries a tag in its first and last byte, checked before it
 * is freed (and across realloc): an allocator that hands out overlapping
 * or corrupted memory makes the run fail instead of looking fast.
 *
 * RESULT <name> <wall s> <cpu s> <maxrss KiB> <maxrss KiB before the workload>
 *        <peak requested bytes>
 * The times cover the workload only (not start-up); cpu is user + system
 * time of all threads; the peak RSS is the process's ru_maxrss at the end.
 *
 * With RSS_SAMPLE=1 in the environment every 256th new block (of each
 * thread) also reads the resident set from /proc/self/smaps_rollup, which
 * walks the page tables, and a second line follows:
 * SAMPLED <name> <highest resident KiB> <anonymous KiB then>
 * ru_maxrss comes from the kernel's RSS counters, which since Linux 6.2
 * are per-CPU and fold in 32 pages at a time: on this machine it moved in
 * steps of 128 KiB, so that a change of 80 KiB showed as none or as 128.
 * The samples cost the run its speed (a run for memory, never one for
 * time) and miss what comes and goes between two of them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>
#include "gen.h"

static double scale = 1.0;

/* ---- The resident set, sampled (RSS_SAMPLE=1) ---------------------------- */

static int sampling;
static long sampled_rss, sampled_anon;

/* No malloc here: open, read and a static buffer (threads take turns). */
static void sample_rss(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char buf[4096];
	const char *rss, *anon;
	ssize_t n;
	int fd;

	pthread_mutex_lock(&lock);
	fd = open("/proc/self/smaps_rollup", O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = 0;
		rss = strstr(buf, "\nRss:");
		anon = strstr(buf, "\nAnonymous:");
		if (rss && atol(rss + 5) > sampled_rss) {
			sampled_rss = atol(rss + 5);
			sampled_anon = anon ? atol(anon + 11) : 0;
		}
	}
	pthread_mutex_unlock(&lock);
}

static inline void rss_tick(void)
{
	static __thread unsigned int ticks;

	if (sampling && ticks++ % 256 == 0)	/* from the first block */
		sample_rss();
}

static void die(const char *why)
{
	fprintf(stderr, "workloads: %s\n", why);
	exit(1);
}

static long iters(long n)
{
	long k = (long)(n * scale);

	return k > 0 ? k : 1;
}

/* ---- Tagged blocks ------------------------------------------------------- */

struct blk {
	unsigned char *p;
	uint32_t size;
	uint8_t tag;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("malloc failed");
	return p;
}

static void tag_block(struct blk *b, uint8_t tag)
{
	b->tag = tag;
	b->p[0] = tag;
	b->p[b->size - 1] = tag;
}

static void check_block(const struct blk *b)
{
	if (b->p[0] != b->tag || b->p[b->size - 1] != b->tag)
		die("block corrupted (tag mismatch)");
}

static void new_block(struct blk *b, size_t size, uint8_t tag)
{
	rss_tick();
	b->p = xmalloc(size);
	b->size = (uint32_t)size;
	tag_block(b, tag);
}

static void free_block(struct blk *b)
{
	if (b->p) {
		check_block(b);
		free(b->p);
		b->p = NULL;
	}
}

/* Replace a slot's block, keeping the bytes live in *live. */
static void replace_block(struct blk *b, size_t size, uint8_t tag, size_t *live)
{
	if (b->p)
		*live -= b->size;
	free_block(b);
	new_block(b, size, tag);
	*live += size;
}

static void free_slots(struct blk *slot, int k)
{
	for (int i = 0; i < k; i++)
		free_block(&slot[i]);
}

/* Write one byte per 4 KiB so the pages are really in use. */
static void touch_pages(struct blk *b)
{
	for (size_t i = 4096; i < b->size; i += 4096)
		b->p[i] = b->tag;
	b->p[b->size - 1] = b->tag;
}

/* ---- 1. Fixed-size churn: 64-byte objects, random replacement ------------ */

static size_t w_churn64(void)
{
	enum { K = 8192 };
	static struct blk slot[K];
	uint64_t s = 1;
	long n = iters(24000000);

	for (int i = 0; i < K; i++)
		new_block(&slot[i], 64, (uint8_t)i);
	for (long i = 0; i < n; i++) {
		struct blk *b = &slot[rnd(&s) % K];

		free_block(b);
		new_block(b, 64, (uint8_t)i);
	}
	free_slots(slot, K);
	return K * 64;
}

/* ---- 2. Mixed sizes 8..4096 with realloc --------------------------------- */

static size_t w_mixed(void)
{
	enum { K = MIXED_SLOTS };
	static struct blk slot[K];
	uint64_t s = MIXED_SEED;
	long n = iters(MIXED_OPS);
	size_t live = 0, peak = 0;

	for (long i = 0; i < n; i++) {
		uint64_t r = rnd(&s);
		struct blk *b = &slot[r % K];
		size_t size = rnd_size(&s, 8, 4096);

		if (b->p && (r >> 32) % 3 == 0) {
			/* realloc: the tag at the start must survive the move. */
			unsigned char *q;

			check_block(b);
			q = realloc(b->p, size);
			if (!q)
				die("realloc failed");
			if (q[0] != b->tag)
				die("realloc lost the contents");
			live += size - b->size;
			b->p = q;
			b->size = (uint32_t)size;
			tag_block(b, (uint8_t)i);
		} else {
			replace_block(b, size, (uint8_t)i, &live);
		}
		if (live > peak)
			peak = live;
	}
	free_slots(slot, K);
	return peak;
}

/* ---- 2b. A list built one malloc() at a time, thinned and walked --------- */

/*
 * GNU ed's line buffer under "g/9/d" (a campaign of real programs found it,
 * Round 17): a doubly linked list of 32-byte nodes, one malloc() each, in
 * the order the lines came; then every line whose number has a 9 is found
 * by a walk from the head, unlinked, and an undo record taken and dropped.
 * Almost all the time is the walk: the allocator's part is where it put
 * the nodes -- in the order the walk takes them, or against it.
 */
struct lnode {
	struct lnode *next, *prev;
	long pos;
	int len;
};

static int has_nine(long i)
{
	for (; i; i /= 10)
		if (i % 10 == 9)
			return 1;
	return 0;
}

static size_t w_listwalk(void)
{
	long n = iters(30000);
	struct lnode head = { &head, &head, 0, 0 }, **v = malloc(n * sizeof(*v));

	if (!v)
		die("malloc failed");
	for (long i = 0; i < n; i++) {
		struct lnode *l = malloc(sizeof(*l));

		if (!l)
			die("malloc failed");
		rss_tick();
		l->pos = i;
		l->len = (int)(i + 1);
		l->prev = head.prev;
		l->next = &head;
		head.prev->next = l;
		head.prev = l;
		v[i] = l;
	}
	for (long i = 0; i < n; i++) {
		struct lnode *l = &head;

		if (!has_nine(i + 1))
			continue;
		while (l != v[i] && (l = l->next) != &head)
			;
		if (l != v[i] || l->pos != i)
			die("the list lost a node");
		l->prev->next = l->next;
		l->next->prev = l->prev;
		free(malloc(32));		/* ed's undo record */
	}
	for (struct lnode *l = head.next, *next; l != &head; l = next) {
		next = l->next;
		free(l);
	}
	for (long i = 0; i < n; i++)
		if (has_nine(i + 1))
			free(v[i]);
	free(v);
	return (size_t)n * (sizeof(struct lnode) + sizeof(*v));
}

/* ---- 3. Large blocks 4 KiB..1 MiB, every page touched -------------------- */

static size_t w_large(void)
{
	enum { K = 32 };
	static struct blk slot[K];
	uint64_t s = 3;
	long n = iters(100000);
	size_t live = 0, peak = 0;

	for (long i = 0; i < n; i++) {
		struct blk *b = &slot[rnd(&s) % K];
		size_t size = rnd_size(&s, 4096, 1 << 20);

		replace_block(b, size, (uint8_t)i, &live);
		touch_pages(b);
		if (live > peak)
			peak = live;
	}
	free_slots(slot, K);
	return peak;
}

/* ---- 3b. Big buffers: 6 and 10 MiB taken, written and freed in turn ------ */

/*
 * Past every allocator's largest size class: a program's I/O or image
 * buffers, taken and given back every turn.  glibc raises its mmap
 * threshold after the first free and serves them from its heap; an
 * allocator that maps and unmaps each pays for every page's fault.
 */
static size_t w_buffers(void)
{
	long n = iters(200);
	struct blk a, b;

	for (long i = 0; i < n; i++) {
		new_block(&a, 6 << 20, (uint8_t)i);
		new_block(&b, 10 << 20, (uint8_t)(i + 1));
		touch_pages(&a);
		touch_pages(&b);
		free_block(&a);
		free_block(&b);
	}
	return 16 << 20;
}

/* ---- 4. Producer/consumer: every free is a cross-thread free ------------- */

/*
 * A ring of 1024 blocks.  Each side publishes its index every BATCH objects
 * (and before it waits), so the two CPUs exchange a cache line per batch,
 * not per object.  Waiting spins briefly, then sleeps on a condition
 * variable, so a run does not measure the scheduler when a third process
 * shares the two CPUs.  A sleeper raises its flag before its last look at
 * the ring and the other side looks at the flag after publishing (both
 * seq_cst), so a wake-up cannot be lost; the timed wait is a safety net.
 */
#define RING 1024
#define BATCH 64
static struct blk ring[RING];
static struct {
	unsigned long v;
	char pad[56];
} ring_head __attribute__((aligned(64))), ring_tail __attribute__((aligned(64)));
static int prod_sleeping, cons_sleeping;
static pthread_mutex_t ring_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv = PTHREAD_COND_INITIALIZER;
static long pc_n;

static unsigned long load_idx(unsigned long *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* Publish *idx = v; wake the other side if it sleeps. */
static void publish(unsigned long *idx, unsigned long v, int *other_sleeping)
{
	__atomic_store_n(idx, v, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(other_sleeping, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&ring_mx);
		pthread_cond_broadcast(&ring_cv);
		pthread_mutex_unlock(&ring_mx);
	}
}

/* Wait until the other side's index differs from 'stale'; returns it. */
static unsigned long wait_idx(unsigned long *idx, unsigned long stale, int *my_flag)
{
	unsigned long v;

	for (int i = 0; i < 2048; i++) {
		if ((v = load_idx(idx)) != stale)
			return v;
		__builtin_ia32_pause();
	}
	pthread_mutex_lock(&ring_mx);
	__atomic_store_n(my_flag, 1, __ATOMIC_SEQ_CST);
	while ((v = load_idx(idx)) == stale) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ring_cv, &ring_mx, &ts);
	}
	__atomic_store_n(my_flag, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&ring_mx);
	return v;
}

static void *producer(void *arg)
{
	unsigned long h = 0, tail = 0;
	uint64_t s = 4;

	for (long i = 0; i < pc_n; i++) {
		while (h - tail == RING) {
			publish(&ring_head.v, h, &cons_sleeping);
			tail = wait_idx(&ring_tail.v, tail, &prod_sleeping);
		}
		new_block(&ring[h % RING], rnd_size(&s, 16, 512), (uint8_t)i);
		if (++h % BATCH == 0)
			publish(&ring_head.v, h, &cons_sleeping);
	}
	publish(&ring_head.v, h, &cons_sleeping);
	return NULL;
}

static size_t w_prodcons(void)
{
	unsigned long t = 0, head = 0;
	pthread_t th;

	pc_n = iters(4000000);
	if (pthread_create(&th, NULL, producer, NULL))
		die("pthread_create failed");
	for (long i = 0; i < pc_n; i++) {
		while (t == head) {
			publish(&ring_tail.v, t, &prod_sleeping);
			head = wait_idx(&ring_head.v, head, &cons_sleeping);
		}
		free_block(&ring[t % RING]);
		if (++t % BATCH == 0)
			publish(&ring_tail.v, t, &prod_sleeping);
	}
	pthread_join(th, NULL);
	return RING * 512;
}

/* ---- 5. Larson-like: two threads, handed-over objects, thread exit ------- */

enum { LARSON_K = 2048 };

struct lane {
	struct blk slot[LARSON_K];
	uint64_t seed;
	long ops;
};

static void *larson_thread(void *arg)
{
	struct lane *l = arg;

	for (long i = 0; i < l->ops; i++) {
		struct blk *b = &l->slot[rnd(&l->seed) % LARSON_K];

		free_block(b);
		new_block(b, rnd_size(&l->seed, 16, 512), (uint8_t)i);
	}
	return NULL;
}

/*
 * Each round two fresh threads work on the two lanes and exit; then the
 * lanes swap, so the next round's threads free what threads that have
 * since exited allocated.
 */
static size_t w_larson(void)
{
	static struct lane lane[2];
	int rounds = 20;
	long ops = iters(400000);

	lane[0].seed = 5;
	lane[1].seed = 6;
	for (int r = 0; r < rounds; r++) {
		pthread_t t[2];
		struct blk tmp[LARSON_K];

		for (int i = 0; i < 2; i++) {
			lane[i].ops = ops;
			if (pthread_create(&t[i], NULL, larson_thread, &lane[i]))
				die("pthread_create failed");
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		memcpy(tmp, lane[0].slot, sizeof(tmp));
		memcpy(lane[0].slot, lane[1].slot, sizeof(tmp));
		memcpy(lane[1].slot, tmp, sizeof(tmp));
	}
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < LARSON_K; k++)
			free_block(&lane[i].slot[k]);
	return 2 * LARSON_K * 512;
}

/* ---- 6. Peak RSS: a live set fluctuating up to 160 MiB ------------------- */

/*
 * Six cycles: fill to 160 MiB, with small objects (16 B..1 KiB) on even
 * cycles and larger ones (1..64 KiB) on odd ones, every byte written; then
 * free random objects down to 40 MiB.  What survives a drain is scattered
 * over the memory, which is what makes the next fill's footprint depend on
 * how well the allocator reuses holes and gives memory back.
 */
static size_t w_rss(void)
{
	const size_t high = (size_t)(160.0 * scale * (1 << 20)), low = high / 4;
	size_t cap = high / 128 + 1, n = 0, live = 0, peak = 0;
	struct blk *v = xmalloc(cap * sizeof(*v));
	uint64_t s = 7;

	memset(v, 0, cap * sizeof(*v));
	for (int c = 0; c < 6; c++) {
		while (live < high) {
			size_t size = c % 2 ? rnd_size(&s, 1024, 65536) : rnd_size(&s, 16, 1024);
			struct blk *b = &v[n++];

			if (n > cap)
				die("rss: slot array too small");
			new_block(b, size, (uint8_t)n);
			memset(b->p, b->tag, size);
			live += size;
		}
		if (live > peak)
			peak = live;
		while (live > low) {
			size_t k = rnd(&s) % n;

			live -= v[k].size;
			free_block(&v[k]);
			v[k] = v[--n];
		}
	}
	while (n)
		free_block(&v[--n]);
	free(v);
	return peak;
}

/* ---- Callgrind: malloc(64)+free pairs ------------------------------------ */

#define escape(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline)) static void pair_loop(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = malloc(64);

		escape(p);
		free(p);
	}
}

__attribute__((noinline)) static void pair_base(long n)
{
	for (long i = 0; i < n; i++)
		__asm__ volatile("" ::: "memory");
}

static void pair_run(const char *name, void (*fn)(long))
{
	static const long n[2] = { 20000, 220000 };
	char tag[2][64];

	snprintf(tag[0], sizeof(tag[0]), "%s %ld", name, n[0]);
	snprintf(tag[1], sizeof(tag[1]), "%s %ld", name, n[1]);
	fn(n[0]);
	for (int i = 0; i < 2; i++) {
		CALLGRIND_ZERO_STATS;
		fn(n[i]);
		CALLGRIND_DUMP_STATS_AT(tag[i]);
	}
}

/* ---- Driver --------------------------------------------------------------- */

static const struct {
	const char *name;
	size_t (*fn)(void);
} workloads[] = {
	{ "churn64", w_churn64 },
	{ "mixed", w_mixed },
	{ "listwalk", w_listwalk },
	{ "large", w_large },
	{ "buffers", w_buffers },
	{ "prodcons", w_prodcons },
	{ "larson", w_larson },
	{ "rss", w_rss },
};

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: workloads <name>|pair64|list [scale]\n");
		return 2;
	}
	if (argc > 2)
		scale = atof(argv[2]);
	if (!strcmp(argv[1], "list")) {
		for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
			printf("%s\n", workloads[i].name);
		return 0;
	}
	if (!strcmp(argv[1], "pair64")) {
		pair_run("base-pair", pair_base);
		pair_run("malloc64", pair_loop);
		return 0;
	}
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		if (!strcmp(argv[1], workloads[i].name)) {
			const char *rs = getenv("RSS_SAMPLE");
			long rss0 = maxrss_kib();
			double c0, t0, t, c;
			size_t peak;

			sampling = rs && !strcmp(rs, "1");
			c0 = cpu_seconds();
			t0 = now();
			peak = workloads[i].fn();
			t = now() - t0;
			c = cpu_seconds() - c0;
			printf("RESULT %s %.6f %.6f %ld %ld %zu\n", workloads[i].name, t, c,
			       maxrss_kib(), rss0, peak);
			if (sampling)
				printf("SAMPLED %s %ld %ld\n", workloads[i].name, sampled_rss,
				       sampled_anon);
			return 0;
		}
	}
	fprintf(stderr, "workloads: unknown workload %s\n", argv[1]);
	return 2;
}
