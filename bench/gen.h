/* SPDX-License-Identifier: MIT */
/*
 * The workloads' random numbers, shared by workloads.c and classes-bound.c
 * so that the model replays exactly the requests the benchmark makes.
 */
#ifndef BENCH_GEN_H
#define BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * Log-uniform in [lo, hi) for powers of two lo < hi: as many 8-16 B
 * requests as 2-4 KiB ones, uniform inside each octave.
 */
static inline size_t rnd_size(uint64_t *s, size_t lo, size_t hi)
{
	uint64_t r = rnd(s);
	unsigned int octaves = 63 - __builtin_clzll(hi / lo);
	size_t base = lo << (r % octaves);

	return base + (r >> 8) % base;
}

/* The mixed workload: how many slots, and the seed of its generator. */
#define MIXED_SLOTS	4096
#define MIXED_SEED	2
#define MIXED_OPS	6000000

#endif /* BENCH_GEN_H */
