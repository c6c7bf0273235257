// SPDX-License-Identifier: MIT
/*
 * classes-bound: how little memory any size-class allocator could hold on
 * the mixed workload (workloads.c), beside what this process's malloc
 * holds on the same requests.  A model, not an allocator.
 *
 *   classes-bound [scale]
 *   LD_PRELOAD=build/libmm.so classes-bound [scale]
 *
 * First the workload's requests (gen.h: the same sizes, slots, reallocs)
 * go through malloc, and the peak growth of the resident set is printed
 * -- glibc's, or that of the allocator preloaded.  Then they are replayed
 * against ideal segregated storage for several class tables: no slab
 * header and no per-thread cache, an object taken from the fullest slab
 * of its class that has room (its lowest free slot), a slab given back
 * the moment it empties, realloc() a free and an allocation (no shrunk
 * object keeping a larger slot), and a slab's pages resident only from
 * the first use of an object on them (lazy slabs).  Classes are 16-byte
 * steps to 128 bytes, then k steps an octave; a class's slab is the 1 to
 * 2^n pages that leave the smallest tail.  What it prints for a table is
 * the peak of pages touched: no allocator with those classes holds less
 * on this workload, and a real one adds its headers, the objects its
 * threads park, and the slabs its cheaper choices leave partial.
 *
 * Then the same with mm's own classes and slabs (host_release_defconfig,
 * x86-64, as kmalloc.c and slab.c choose them; copied here, so a change
 * there must be made here too), adding mm's choices one at a time: its
 * slab headers and alignment, its next slab (the one that last stopped
 * being full, slab.c), a shrunk object keeping its class (krealloc()),
 * and its per-thread magazines (percpu.c: 16 KiB a class, refills of 2
 * KiB and at least 4 objects, a full magazine flushing its newest half).
 * The last row sends the frees of objects outside their class's active
 * slab past the magazine, as SLUB sends them past its per-CPU list: what
 * the magazines' recycling costs in slabs that never drain (Round 12).
 * The one after it keeps every free in the magazines but has a full one
 * give back the objects of its sparsest slabs instead of its newest
 * (Round 13).  The last two add jemalloc's tcache GC (Round 14): every so
 * many requests one class's magazine, in turn, gives back three quarters
 * of the objects that lay unused at its bottom since its last turn (its
 * low-water mark).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gen.h"

#define MAX_CLASSES	64
#define MAX_OBJS	256		/* per slab: the used[] bitmap */
#define PAGE		4096

struct slab {
	unsigned int inuse;
	unsigned int touched;		/* objects [0, touched) were used once */
	uint64_t used[MAX_OBJS / 64];
};

struct slot {
	size_t size;
	struct class *c;
	struct slab *s;
	unsigned int obj;
};

#define MAG_SLOTS	64		/* percpu.c's MAG_SIZE */

struct class {
	size_t size, bytes;		/* object and slab */
	unsigned int first;		/* offset of the first object (header) */
	unsigned int objs, nr;		/* per slab; slabs held */
	struct slab **slabs;
	struct slab *active;		/* RECENT: the slab allocations come from */
	struct slab **partial;		/* RECENT: a stack, the last to stop being full on top */
	unsigned int nr_partial;
	struct slot mag[MAG_SLOTS];	/* MAGAZINES: one thread's */
	unsigned int mag_count, mag_cap, mag_refill;
	unsigned int mag_low;		/* GC: the fewest objects since its last turn */
};

/* What a model run adds to ideal segregated storage. */
enum {
	RECENT = 1,		/* slab.c's next slab, not the fullest */
	KEEP_SHRUNK = 2,	/* krealloc(): a shrink to more than half stays */
	MAGAZINES = 4,		/* percpu.c's magazines in front */
	BYPASS = 8,		/* frees outside the active slab skip the magazine */
	FLUSH_SPARSE = 16,	/* a full magazine gives back its sparsest slabs' objects */
	GC_SLOW = 32,		/* low-water GC of one class every 256 requests */
	GC_FAST = 64,		/* ... every 16 */
};

struct model {
	struct class cls[MAX_CLASSES];
	unsigned int nr_classes;
	unsigned int flags;
	long pages, peak;		/* touched pages: now, highest */
	unsigned long requests;		/* GC: its clock */
	unsigned int gc_next;		/* GC: the class whose turn is next */
};

static double scale = 1.0;

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		perror("classes-bound");
		exit(1);
	}
	return p;
}

static long pages_to(const struct class *c, unsigned int objs)
{
	return objs ? (long)((c->first + objs * c->size + PAGE - 1) / PAGE) : 0;
}

static void model_init(struct model *m, unsigned int steps, unsigned int max_pages)
{
	memset(m, 0, sizeof(*m));
	for (size_t s = 16; s <= 128; s += 16)
		m->cls[m->nr_classes++].size = s;
	for (size_t o = 128; o < 4096; o *= 2) {
		for (unsigned int k = 1; k <= steps; k++) {
			size_t s = (o + o * k / steps) / 16 * 16;

			if (s > m->cls[m->nr_classes - 1].size)
				m->cls[m->nr_classes++].size = s;
		}
	}
	for (unsigned int i = 0; i < m->nr_classes; i++) {
		struct class *c = &m->cls[i];
		double best = 1.0;

		for (size_t b = PAGE; b <= (size_t)max_pages * PAGE && b / c->size <= MAX_OBJS;
		     b *= 2) {
			double tail = (double)(b % c->size) / (double)b;

			/* A larger slab only for a tail smaller by 1% of it. */
			if (!c->bytes || tail < best - 0.01) {
				c->bytes = b;
				best = tail;
			}
		}
		c->objs = (unsigned int)(c->bytes / c->size);
	}
}

/*
 * mm's classes up to 4 KiB and the order of each one's slabs (x86-64,
 * host_release_defconfig); objects start after a 40-byte header, aligned
 * to the largest power of two dividing their size (natural alignment for
 * the powers of two).
 */
static void model_init_mm(struct model *m)
{
	static const unsigned short size[] = {
		16, 32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448,
		512, 576, 672, 800, 1008, 1024, 1152, 1344, 1616, 2032, 2048,
		2320, 2704, 3264, 4064, 4096,
	};
	static const unsigned char order[] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0,
		2, 0, 0, 0, 0, 3, 1, 0, 1, 1, 2,
		2, 1, 2, 1, 3,
	};

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < sizeof(size) / sizeof(size[0]); i++) {
		struct class *c = &m->cls[m->nr_classes++];
		unsigned int align = size[i] & -size[i];

		c->size = size[i];
		c->bytes = (size_t)PAGE << order[i];
		c->first = (40 + align - 1) / align * align;
		c->objs = (unsigned int)((c->bytes - c->first) / c->size);
	}
}

static void model_alloc_lists(struct model *m, unsigned int flags)
{
	m->flags = flags;
	for (unsigned int i = 0; i < m->nr_classes; i++) {
		struct class *c = &m->cls[i];
		unsigned int cap = 16384 / (unsigned int)c->size, refill = 2048 / (unsigned int)c->size;

		c->slabs = xcalloc((size_t)MIXED_SLOTS + MAG_SLOTS + 1, sizeof(*c->slabs));
		c->partial = xcalloc((size_t)MIXED_SLOTS + MAG_SLOTS + 1, sizeof(*c->partial));
		/* percpu_mag_cap() and percpu_mag_refill(), at full capacity. */
		c->mag_cap = cap > MAG_SLOTS ? MAG_SLOTS : cap < 2 ? 2 : cap;
		refill = refill < 4 ? 4 : refill > MAG_SLOTS ? MAG_SLOTS : refill;
		c->mag_refill = refill < c->mag_cap / 2 ? refill : c->mag_cap / 2;
	}
}

static void model_fini(struct model *m)
{
	for (unsigned int i = 0; i < m->nr_classes; i++) {
		for (unsigned int j = 0; j < m->cls[i].nr; j++)
			free(m->cls[i].slabs[j]);
		free(m->cls[i].slabs);
		free(m->cls[i].partial);
	}
}

static struct slab *new_slab(struct class *c)
{
	struct slab *s = xcalloc(1, sizeof(*s));

	c->slabs[c->nr++] = s;
	return s;
}

/* The slab the next object of c comes from, by the model's rule. */
static struct slab *pick_slab(const struct model *m, struct class *c)
{
	struct slab *s = NULL;

	if (m->flags & RECENT) {
		if (!c->active || c->active->inuse == c->objs)
			c->active = c->nr_partial ? c->partial[--c->nr_partial] : new_slab(c);
		return c->active;
	}
	for (unsigned int j = 0; j < c->nr; j++) {
		if (c->slabs[j]->inuse < c->objs && (!s || c->slabs[j]->inuse > s->inuse))
			s = c->slabs[j];
	}
	return s ? s : new_slab(c);
}

/* An object of class c, its lowest free slot in the slab picked. */
static void take_object(struct model *m, struct class *c, struct slot *sl, size_t size)
{
	struct slab *s = pick_slab(m, c);
	unsigned int obj = 0;

	while (s->used[obj / 64] >> (obj % 64) & 1)
		obj++;
	s->used[obj / 64] |= (uint64_t)1 << (obj % 64);
	s->inuse++;
	if (obj + 1 > s->touched) {
		m->pages += pages_to(c, obj + 1) - pages_to(c, s->touched);
		s->touched = obj + 1;
	}
	if (m->pages > m->peak)
		m->peak = m->pages;
	*sl = (struct slot){ size, c, s, obj };
}

static struct class *class_for(struct model *m, size_t size)
{
	struct class *c = m->cls;

	while (c->size < size)
		c++;
	return c;
}

/* The object back to its slab; an empty slab goes (the active one stays). */
static void put_object(struct model *m, struct slot *sl)
{
	struct class *c = sl->c;
	struct slab *s = sl->s;
	int was_full = s->inuse == c->objs;

	s->used[sl->obj / 64] &= ~((uint64_t)1 << (sl->obj % 64));
	s->inuse--;
	if (m->flags & RECENT) {
		if (s == c->active)
			return;
		if (was_full && s->inuse) {
			c->partial[c->nr_partial++] = s;
			return;
		}
		if (s->inuse)
			return;
		for (unsigned int j = 0; j < c->nr_partial; j++) {
			if (c->partial[j] == s) {
				memmove(&c->partial[j], &c->partial[j + 1],
					(c->nr_partial - j - 1) * sizeof(*c->partial));
				c->nr_partial--;
				break;
			}
		}
	} else if (s->inuse) {
		return;
	}
	m->pages -= pages_to(c, s->touched);
	for (unsigned int j = 0; j < c->nr; j++) {
		if (c->slabs[j] == s) {
			c->slabs[j] = c->slabs[--c->nr];
			break;
		}
	}
	free(s);
}

/* malloc(): from the magazine, refilled when empty, if there is one. */
static void model_alloc(struct model *m, struct slot *sl, size_t size)
{
	struct class *c = class_for(m, size);

	if (!(m->flags & MAGAZINES)) {
		take_object(m, c, sl, size);
		return;
	}
	while (c->mag_count < c->mag_refill)
		take_object(m, c, &c->mag[c->mag_count++], c->size);
	*sl = c->mag[--c->mag_count];
	if (c->mag_count < c->mag_low)
		c->mag_low = c->mag_count;
	sl->size = size;
}

/*
 * GC: the next class's objects that no request needed since its last turn
 * -- three quarters of them, from the bottom, the longest unused -- go back.
 */
static void model_gc(struct model *m)
{
	struct class *c = &m->cls[m->gc_next];
	unsigned int n = c->mag_low - c->mag_low / 4;

	m->gc_next = (m->gc_next + 1) % m->nr_classes;
	for (unsigned int j = 0; j < n; j++)
		put_object(m, &c->mag[j]);
	memmove(c->mag, c->mag + n, (c->mag_count - n) * sizeof(c->mag[0]));
	c->mag_count -= n;
	c->mag_low = c->mag_count;
}

/*
 * FLUSH_SPARSE: a full magazine's objects in eighths of their slab's
 * occupancy, the densest at the bottom, so that the half that goes back is
 * that of the sparsest slabs (a counting sort, as a flush could afford).
 */
static void sort_sparse_top(struct class *c)
{
	struct slot tmp[MAG_SLOTS];
	unsigned int pos[10] = { 0 }, key[MAG_SLOTS];

	for (unsigned int i = 0; i < c->mag_count; i++) {
		key[i] = 8 - c->mag[i].s->inuse * 8 / c->objs;
		pos[key[i] + 1]++;
	}
	for (unsigned int k = 1; k < 10; k++)
		pos[k] += pos[k - 1];
	for (unsigned int i = 0; i < c->mag_count; i++)
		tmp[pos[key[i]]++] = c->mag[i];
	memcpy(c->mag, tmp, c->mag_count * sizeof(*tmp));
}

/* free(): into the magazine, whose newest half goes back when it is full. */
static void model_free(struct model *m, struct slot *sl)
{
	struct class *c = sl->c;

	if (!(m->flags & MAGAZINES) ||
	    ((m->flags & BYPASS) && (m->flags & RECENT) && sl->s != c->active)) {
		put_object(m, sl);
		return;
	}
	if (c->mag_count == c->mag_cap) {
		if (m->flags & FLUSH_SPARSE)
			sort_sparse_top(c);
		for (unsigned int j = 0; j < c->mag_cap / 2; j++)
			put_object(m, &c->mag[--c->mag_count]);
		if (c->mag_count < c->mag_low)
			c->mag_low = c->mag_count;
	}
	c->mag[c->mag_count++] = *sl;
}

/* The resident set in KiB (/proc/self/statm). */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (PAGE / 1024);
}

/* The workload through malloc: peak resident growth in KiB, sampled. */
static long run_malloc(long n, size_t *peak_live)
{
	static struct { unsigned char *p; size_t size; } slot[MIXED_SLOTS];
	uint64_t s = MIXED_SEED;
	size_t live = 0;
	long rss0, peak = 0;

	memset(slot, 0, sizeof(slot));		/* resident before the baseline */
	rss0 = rss_kib();
	for (long i = 0; i < n; i++) {
		uint64_t r = rnd(&s);
		size_t k = r % MIXED_SLOTS, size = rnd_size(&s, 8, 4096);
		unsigned char *p;

		if (slot[k].p && (r >> 32) % 3 == 0) {
			p = realloc(slot[k].p, size);
		} else {
			free(slot[k].p);
			p = malloc(size);
		}
		if (!p) {
			fprintf(stderr, "classes-bound: out of memory\n");
			exit(1);
		}
		live += size - (slot[k].p ? slot[k].size : 0);
		p[0] = p[size - 1] = (unsigned char)i;	/* as workloads.c touches them */
		slot[k].p = p;
		slot[k].size = size;
		if (live > *peak_live)
			*peak_live = live;
		if (i % 4096 == 0 || i == n - 1) {
			long grown = rss_kib() - rss0;

			if (grown > peak)
				peak = grown;
		}
	}
	for (size_t k = 0; k < MIXED_SLOTS; k++)
		free(slot[k].p);
	return peak;
}

/* steps 0: mm's classes (model_init_mm()); flags: what the run adds. */
static long run_model(long n, unsigned int steps, unsigned int max_pages,
		      unsigned int flags, unsigned int *nr_classes)
{
	static struct slot slot[MIXED_SLOTS];
	struct model *m = xcalloc(1, sizeof(*m));
	uint64_t s = MIXED_SEED;
	long peak;

	memset(slot, 0, sizeof(slot));
	if (steps)
		model_init(m, steps, max_pages);
	else
		model_init_mm(m);
	model_alloc_lists(m, flags);
	for (long i = 0; i < n; i++) {
		uint64_t r = rnd(&s);
		size_t k = r % MIXED_SLOTS, size = rnd_size(&s, 8, 4096);

		/* workloads.c's realloc(), as krealloc() serves it. */
		if ((flags & KEEP_SHRUNK) && slot[k].size && (r >> 32) % 3 == 0 &&
		    size <= slot[k].c->size && size > slot[k].c->size / 2) {
			slot[k].size = size;
			continue;
		}
		if (slot[k].size)
			model_free(m, &slot[k]);
		model_alloc(m, &slot[k], size);
		if ((flags & (GC_SLOW | GC_FAST)) &&
		    ++m->requests % (flags & GC_FAST ? 16 : 256) == 0)
			model_gc(m);
	}
	peak = m->peak * (PAGE / 1024);
	*nr_classes = m->nr_classes;
	model_fini(m);
	free(m);
	return peak;
}

int main(int argc, char **argv)
{
	static const unsigned int tables[][2] = {
		{ 2, 4 }, { 3, 4 }, { 4, 1 }, { 4, 2 }, { 4, 4 }, { 4, 8 }, { 8, 4 },
	};
	static const struct { unsigned int flags; const char *what; } mm_runs[] = {
		{ 0, "mm's classes, headers and slabs, fullest slab first" },
		{ RECENT, "  and mm's next slab (the last to stop being full)" },
		{ RECENT | KEEP_SHRUNK, "  and a shrunk object keeping its class" },
		{ RECENT | KEEP_SHRUNK | MAGAZINES, "  and mm's magazines" },
		{ RECENT | KEEP_SHRUNK | MAGAZINES | BYPASS,
		  "  with frees outside the active slab past them" },
		{ RECENT | KEEP_SHRUNK | MAGAZINES | FLUSH_SPARSE,
		  "  with full magazines flushing their sparsest slabs' objects" },
		{ RECENT | KEEP_SHRUNK | MAGAZINES | GC_SLOW,
		  "  with a low-water GC of one class every 256 requests" },
		{ RECENT | KEEP_SHRUNK | MAGAZINES | GC_FAST,
		  "  with a low-water GC of one class every 16 requests" },
	};
	size_t peak_live = 0;
	long n, grown;

	if (argc > 1)
		scale = atof(argv[1]);
	n = (long)(MIXED_OPS * scale);
	if (n < 1)
		n = 1;
	grown = run_malloc(n, &peak_live);
	printf("mixed workload, %ld requests, peak requested %zu KiB\n", n, peak_live >> 10);
	printf("  malloc of this process: resident set grew by %ld KiB at most\n", grown);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		unsigned int nr;
		long kib = run_model(n, tables[t][0], tables[t][1], 0, &nr);

		printf("  ideal classes, %u an octave (%u classes), slabs of up to %u pages: %ld KiB\n",
		       tables[t][0], nr, tables[t][1], kib);
	}
	for (size_t t = 0; t < sizeof(mm_runs) / sizeof(mm_runs[0]); t++) {
		unsigned int nr;
		long kib = run_model(n, 0, 0, mm_runs[t].flags, &nr);

		printf("  %s: %ld KiB\n", mm_runs[t].what, kib);
	}
	return 0;
}
