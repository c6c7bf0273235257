// SPDX-License-Identifier: MIT
/*
 * Micro benchmarks of the hot paths, meant to run under
 * valgrind --tool=callgrind (bench/run-micro.sh does that and does the
 * arithmetic): instruction counts are stable where wall time is not.
 *
 * Every case is a loop of N alloc+free pairs.  Each loop runs twice, with N1
 * and N2 iterations, between CALLGRIND_ZERO_STATS and
 * CALLGRIND_DUMP_STATS_AT("<case> <N>"); the script takes
 * (I(N2) - I(N1)) / (N2 - N1), which cancels the constant cost of the call
 * and the client requests, and subtracts the same figure for the case's
 * baseline loop -- the identical loop (random numbers, slot array) with the
 * allocator calls taken out.  What remains is the cost of the pair
 * including argument set-up and call/return, as the peers' numbers in
 * ANCHORS.md are counted.
 *
 * Run natively, the same program prints ns per pair instead (noisy, for a
 * rough look only), and 'micro mem' measures the memory a kmem_cache of
 * 100,000 live 64-byte objects costs.
 *
 *   micro [list]          run every case (under callgrind: dump per loop)
 *   micro <case>...       run only these cases
 *   micro mem             memory overhead of 100,000 live 64-byte objects
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/callgrind.h>
#include <mm/mm.h>

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define HAVE_MALLOC 1
#define MALLOC mm_malloc
#define FREE mm_free
#elif IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
#define HAVE_MALLOC 1
#define MALLOC malloc
#define FREE free
#else
#define HAVE_MALLOC 0
#endif

#define N1 20000L
#define N2 220000L

/* Keep the compiler from seeing through an allocation. */
#define escape(p) __asm__ volatile("" : : "r"(p) : "memory")

static void die(const char *what)
{
	fprintf(stderr, "micro: %s\n", what);
	exit(1);
}

/* xorshift32: a few instructions, the same in a case and its baseline. */
static inline uint32_t rnd(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* ---- State the loops work on ------------------------------------------ */

static struct mm_backend_mmap hot_be, split_be, mixed_be, pcp_be;
static struct mm_arena hot_arena, split_arena, mixed_arena, pcp_arena;
static struct kmem_cache *cache64;

#define MIXED_SLOTS 256			/* live blocks of orders 0..4 */
static void *mixed_slot[MIXED_SLOTS];
static unsigned char mixed_order[MIXED_SLOTS];
static uint32_t mixed_seed = 0x12345678;

#define KSLOTS 4096			/* live 64-byte objects */
static void *kslot[KSLOTS];
static uint32_t kslot_seed = 0x9abcdef1;

static void arena_setup(struct mm_arena *a, struct mm_backend_mmap *be, const char *name,
			size_t bytes)
{
	mm_backend_mmap_init(be, 0);
	if (mm_arena_init(a, name, &be->be, bytes))
		die("mm_arena_init failed");
}

/*
 * buddy-hot: the smallest list holds an order-0 block whose buddy is in
 * use, so the pair neither splits nor merges (the common case once a heap
 * has seen some churn).
 */
static void setup_buddy_hot(void)
{
	void *p[4];
	int u = -1, v = -1;

	arena_setup(&hot_arena, &hot_be, "bench-hot", 8 << 20);
	for (int i = 0; i < 4; i++)
		if (!(p[i] = alloc_pages(&hot_arena, 0)))
			die("alloc_pages failed");
	for (int i = 0; i < 4 && u < 0; i++)
		for (int j = 0; j < 4; j++)
			if ((addr_to_pfn(p[i]) ^ addr_to_pfn(p[j])) == 1) {
				u = i;
				v = j;
				break;
			}
	if (u < 0)
		die("no buddy pair among four order-0 pages");
	for (int i = 0; i < 4; i++)
		if (i != u && i != v)
			free_pages(&hot_arena, p[i], 0);
	free_pages(&hot_arena, p[v], 0);	/* last: the head of free_area[0] */
}

/*
 * buddy-pcp: the same pair through the arena's order-0 page cache (what the
 * default arena does with CONFIG_MM_PCP_PAGES; others opt in).
 */
static void setup_buddy_pcp(void)
{
	void *p;

	arena_setup(&pcp_arena, &pcp_be, "bench-pcp", 8 << 20);
	mm_arena_set_pcp(&pcp_arena, CONFIG_MM_PCP_PAGES);
	if (!(p = alloc_pages(&pcp_arena, 0)))
		die("alloc_pages failed");
	free_pages(&pcp_arena, p, 0);
}

/*
 * buddy-split: only blocks of the largest order are free, so every order-0
 * allocation splits MM_MAX_ORDER times and its free merges as often: the
 * worst case of the pair.
 */
static void setup_buddy_split(void)
{
	arena_setup(&split_arena, &split_be, "bench-split", 8 << 20);
	for (unsigned int o = 0; o < MM_MAX_ORDER; o++)
		while (mm_arena_nr_free_order(&split_arena, o))
			if (!alloc_pages(&split_arena, o))
				die("alloc_pages failed");
	if (!mm_arena_nr_free_order(&split_arena, MM_MAX_ORDER))
		die("no free block of the largest order");
}

/* buddy-mixed: MIXED_SLOTS live blocks of random orders 0..4, replaced at random. */
static void setup_buddy_mixed(void)
{
	arena_setup(&mixed_arena, &mixed_be, "bench-mixed", 16 << 20);
	for (int i = 0; i < MIXED_SLOTS; i++) {
		mixed_order[i] = (unsigned char)(rnd(&mixed_seed) % 5);
		if (!(mixed_slot[i] = alloc_pages(&mixed_arena, mixed_order[i])))
			die("alloc_pages failed");
	}
}

static void setup_cache(void)
{
	cache64 = kmem_cache_create("bench-64", 64, 0, 0, NULL);
	if (!cache64)
		die("kmem_cache_create failed");
}

static void *cslot[KSLOTS];

static void setup_cslots(void)
{
	if (!cache64)
		setup_cache();
	for (int i = 0; i < KSLOTS; i++)
		if (!(cslot[i] = kmem_cache_alloc(cache64)))
			die("kmem_cache_alloc failed");
}

static void setup_kslots(void)
{
	for (int i = 0; i < KSLOTS; i++)
		if (!(kslot[i] = kmalloc(64)))
			die("kmalloc failed");
}

/* ---- The loops ---------------------------------------------------------- */

#define LOOP __attribute__((noinline, noclone))

LOOP static void base_pair(long n)
{
	for (long i = 0; i < n; i++)
		__asm__ volatile("" ::: "memory");
}

/* One order-0 alloc+free pair per iteration on arena a (inlined per case). */
static __always_inline void buddy_pairs(struct mm_arena *a, long n)
{
	for (long i = 0; i < n; i++) {
		void *p = alloc_pages(a, 0);

		escape(p);
		free_pages(a, p, 0);
	}
}

LOOP static void loop_buddy_pcp(long n)
{
	buddy_pairs(&pcp_arena, n);
}

LOOP static void loop_buddy_hot(long n)
{
	buddy_pairs(&hot_arena, n);
}

LOOP static void loop_buddy_split(long n)
{
	buddy_pairs(&split_arena, n);
}

LOOP static void loop_buddy_mixed(long n)
{
	uint32_t s = mixed_seed;

	for (long i = 0; i < n; i++) {
		uint32_t x = rnd(&s);
		unsigned int k = x % MIXED_SLOTS, o = (x >> 8) % 5;

		free_pages(&mixed_arena, mixed_slot[k], mixed_order[k]);
		mixed_slot[k] = alloc_pages(&mixed_arena, o);
		mixed_order[k] = (unsigned char)o;
	}
	mixed_seed = s;
}

LOOP static void base_buddy_mixed(long n)
{
	static void *sink_slot[MIXED_SLOTS];
	static unsigned char sink_order[MIXED_SLOTS];
	uint32_t s = mixed_seed;

	for (long i = 0; i < n; i++) {
		uint32_t x = rnd(&s);
		unsigned int k = x % MIXED_SLOTS, o = (x >> 8) % 5;

		escape(sink_slot[k]);
		escape(sink_order[k]);
		sink_slot[k] = (void *)(uintptr_t)x;
		sink_order[k] = (unsigned char)o;
	}
	escape(s);
}

LOOP static void loop_cache(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = kmem_cache_alloc(cache64);

		escape(p);
		kmem_cache_free(cache64, p);
	}
}

LOOP static void loop_kmalloc(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = kmalloc(64);

		escape(p);
		kfree(p);
	}
}

LOOP static void loop_kslots(long n)
{
	uint32_t s = kslot_seed;

	for (long i = 0; i < n; i++) {
		unsigned int k = rnd(&s) % KSLOTS;

		kfree(kslot[k]);
		kslot[k] = kmalloc(64);
	}
	kslot_seed = s;
}

/* Frees land on slabs other than the active one: kmem_cache_free()'s page lookup. */
LOOP static void loop_cslots(long n)
{
	uint32_t s = kslot_seed;

	for (long i = 0; i < n; i++) {
		unsigned int k = rnd(&s) % KSLOTS;

		kmem_cache_free(cache64, cslot[k]);
		cslot[k] = kmem_cache_alloc(cache64);
	}
	kslot_seed = s;
}

LOOP static void base_kslots(long n)
{
	static void *sink[KSLOTS];
	uint32_t s = kslot_seed;

	for (long i = 0; i < n; i++) {
		unsigned int k = rnd(&s) % KSLOTS;

		escape(sink[k]);
		sink[k] = (void *)(uintptr_t)s;
	}
	escape(s);
}

#if HAVE_MALLOC
LOOP static void loop_malloc(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = MALLOC(64);

		escape(p);
		FREE(p);
	}
}
#endif

struct bcase {
	const char *name;
	void (*setup)(void);
	void (*loop)(long n);
	const char *base;		/* baseline case, subtracted by the script */
	const char *what;
};

static const struct bcase cases[] = {
	{ "base-pair", NULL, base_pair, NULL, "empty loop" },
	{ "base-buddy-mixed", NULL, base_buddy_mixed, NULL, "mixed loop without the calls" },
	{ "base-kslots", NULL, base_kslots, NULL, "slot loop without the calls" },
	{ "buddy-hot", setup_buddy_hot, loop_buddy_hot, "base-pair",
	  "alloc_pages(0)+free_pages, no split/merge" },
	{ "buddy-pcp", setup_buddy_pcp, loop_buddy_pcp, "base-pair",
	  "alloc_pages(0)+free_pages, order-0 page cache" },
	{ "buddy-mixed", setup_buddy_mixed, loop_buddy_mixed, "base-buddy-mixed",
	  "alloc_pages(0..4)+free_pages, 256 live blocks" },
	{ "buddy-split", setup_buddy_split, loop_buddy_split, "base-pair",
	  "alloc_pages(0)+free_pages, split/merge 10 orders" },
	{ "cache64", setup_cache, loop_cache, "base-pair",
	  "kmem_cache_alloc+kmem_cache_free, 64 B" },
	{ "cache64-slots", setup_cslots, loop_cslots, "base-kslots",
	  "kmem_cache_free+alloc, 64 B, 4096 live, random slot" },
	{ "kmalloc64", NULL, loop_kmalloc, "base-pair", "kmalloc(64)+kfree" },
	{ "kmalloc64-slots", setup_kslots, loop_kslots, "base-kslots",
	  "kfree+kmalloc(64), 4096 live, random slot" },
#if HAVE_MALLOC
	{ "malloc64", NULL, loop_malloc, "base-pair", "malloc(64)+free (facade)" },
#endif
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double run_case(const struct bcase *c)
{
	char tag[2][64];
	long n[2] = { N1, N2 };
	double t = 0;

	snprintf(tag[0], sizeof(tag[0]), "%s %ld", c->name, n[0]);
	snprintf(tag[1], sizeof(tag[1]), "%s %ld", c->name, n[1]);
	if (c->setup)
		c->setup();
	c->loop(N1);			/* warm up: growth, first slabs, caches */
	for (int i = 0; i < 2; i++) {
		double t0 = now();

		CALLGRIND_ZERO_STATS;
		c->loop(n[i]);
		CALLGRIND_DUMP_STATS_AT(tag[i]);
		t = now() - t0;
	}
	return t * 1e9 / N2;
}

static const struct bcase *find_case(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

static void run_cases(int argc, char **argv)
{
	double ns[ARRAY_SIZE(cases)];
	int all = argc == 0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int want = all;

		for (int j = 0; j < argc; j++) {
			const struct bcase *b = find_case(argv[j]);

			if (!b)
				die("unknown case (try 'micro list')");
			if (b == &cases[i] || (b->base && !strcmp(b->base, cases[i].name)))
				want = 1;
		}
		ns[i] = want ? run_case(&cases[i]) : -1;
	}
	if (RUNNING_ON_VALGRIND)
		return;
	printf("%-18s %9s  %s\n", "case", "ns/pair", "(native wall time, rough)");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct bcase *b = cases[i].base ? find_case(cases[i].base) : NULL;
		double base = b ? ns[b - cases] : 0;

		if (ns[i] >= 0 && cases[i].base)
			printf("%-18s %9.2f  %s\n", cases[i].name, ns[i] - base, cases[i].what);
	}
}

/* ---- Memory: 100,000 live 64-byte objects ------------------------------- */

#define MEM_OBJS 100000
static void *mem_obj[MEM_OBJS];

static int run_mem(void)
{
	struct mm_arena *a = mm_default_arena();
	struct kmem_cache_info info;
	struct mm_diag d0, d1;
	struct kmem_cache *c;
	double want = (double)MEM_OBJS * 64;
	size_t slab_bytes, slab_pages, used, held;

	if (!a)
		die("no default arena");
	c = kmem_cache_create("bench-mem-64", 64, 0, 0, NULL);
	if (!c)
		die("kmem_cache_create failed");
	mm_arena_diag(a, &d0);
	for (int i = 0; i < MEM_OBJS; i++)
		if (!(mem_obj[i] = kmem_cache_alloc(c)))
			die("kmem_cache_alloc failed");
	mm_arena_diag(a, &d1);
	kmem_cache_info(c, &info);

	slab_pages = info.num_slabs * info.pages_per_slab;
	slab_bytes = slab_pages * MM_PAGE_SIZE;
	/* MM_META_BYTES per page, and the slab headers are inside the slabs. */
	used = slab_bytes + slab_pages * MM_META_BYTES;
	held = d1.capacity + d1.capacity / MM_PAGE_SIZE * MM_META_BYTES;

	printf("cache %s: object %zu B, stride %zu B, %u objects per %u-page slab\n",
	       info.name, info.object_size, info.size, info.objs_per_slab,
	       info.pages_per_slab);
	printf("live objects              %lu (%lu slabs)\n", info.active_objs,
	       info.num_slabs);
	printf("requested bytes           %.0f\n", want);
	printf("slab pages                %zu B  ratio %.4f\n", slab_bytes, slab_bytes / want);
	printf("slabs + page metadata     %zu B  ratio %.4f\n", used, used / want);
	printf("arena pages allocated     %zu B  ratio %.4f (delta of mm_diag.allocated)\n",
	       d1.allocated - d0.allocated, (d1.allocated - d0.allocated) / want);
	printf("whole arena held          %zu B  ratio %.4f (all the default arena holds from\n"
	       "                          its backend, free pages and other users included)\n",
	       held, held / want);
	for (int i = 0; i < MEM_OBJS; i++)
		kmem_cache_free(c, mem_obj[i]);
	if (kmem_cache_destroy(c))
		die("kmem_cache_destroy failed");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "mem"))
		return run_mem();
	if (argc > 1 && !strcmp(argv[1], "list")) {
		for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
			printf("%-18s %-18s %s\n", cases[i].name,
			       cases[i].base ? cases[i].base : "-", cases[i].what);
		return 0;
	}
	run_cases(argc - 1, argv + 1);
	return 0;
}
