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

struct class {
	size_t size, bytes;		/* object and slab */
	unsigned int objs, nr;		/* per slab; slabs held */
	struct slab **slabs;
};

struct model {
	struct class cls[MAX_CLASSES];
	unsigned int nr_classes;
	long pages, peak;		/* touched pages: now, highest */
};

struct slot {
	size_t size;
	struct class *c;
	struct slab *s;
	unsigned int obj;
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
	return (long)((objs * c->size + PAGE - 1) / PAGE);
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
		c->slabs = xcalloc((size_t)MIXED_SLOTS + 1, sizeof(*c->slabs));
	}
}

static void model_fini(struct model *m)
{
	for (unsigned int i = 0; i < m->nr_classes; i++) {
		for (unsigned int j = 0; j < m->cls[i].nr; j++)
			free(m->cls[i].slabs[j]);
		free(m->cls[i].slabs);
	}
}

static void model_alloc(struct model *m, struct slot *sl, size_t size)
{
	struct class *c = m->cls;
	struct slab *s = NULL;
	unsigned int obj = 0;

	while (c->size < size)
		c++;
	for (unsigned int j = 0; j < c->nr; j++) {
		if (c->slabs[j]->inuse < c->objs && (!s || c->slabs[j]->inuse > s->inuse))
			s = c->slabs[j];
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		c->slabs[c->nr++] = s;
	}
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

static void model_free(struct model *m, struct slot *sl)
{
	struct class *c = sl->c;
	struct slab *s = sl->s;

	s->used[sl->obj / 64] &= ~((uint64_t)1 << (sl->obj % 64));
	if (--s->inuse)
		return;
	m->pages -= pages_to(c, s->touched);
	for (unsigned int j = 0; j < c->nr; j++) {
		if (c->slabs[j] == s) {
			c->slabs[j] = c->slabs[--c->nr];
			break;
		}
	}
	free(s);
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

static long run_model(long n, unsigned int steps, unsigned int max_pages,
		      unsigned int *nr_classes)
{
	static struct slot slot[MIXED_SLOTS];
	struct model *m = xcalloc(1, sizeof(*m));
	uint64_t s = MIXED_SEED;
	long peak;

	memset(slot, 0, sizeof(slot));
	model_init(m, steps, max_pages);
	for (long i = 0; i < n; i++) {
		uint64_t r = rnd(&s);
		size_t k = r % MIXED_SLOTS, size = rnd_size(&s, 8, 4096);

		if (slot[k].size)
			model_free(m, &slot[k]);
		model_alloc(m, &slot[k], size);
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
		long kib = run_model(n, tables[t][0], tables[t][1], &nr);

		printf("  ideal classes, %u an octave (%u classes), slabs of up to %u pages: %ld KiB\n",
		       tables[t][0], nr, tables[t][1], kib);
	}
	return 0;
}
