// SPDX-License-Identifier: MIT
/*
 * A guided tour of mm on the host: what 'make run' shows.
 *
 *   1. the default arena as the backend handed it over (buddyinfo)
 *   2. a named slab cache with a constructor, and a few hundred objects
 *   3. kmalloc of sizes from 1 byte to past the largest class
 *   4. buddyinfo, slabinfo and the page map with all of that live
 *   5. everything freed, the caches shrunk: the same pages free as at the
 *      start -- nothing lost.
 *
 * The reports go through mm's output hook, here to standard output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mm/mm.h>

#if !IS_ENABLED(CONFIG_MM_KMALLOC)
#error "the demo needs CONFIG_MM_SLAB and CONFIG_MM_KMALLOC"
#endif

struct point {
	double x, y, z;
	unsigned int id;
	char tag[12];
};

static unsigned long ctor_calls;

static void point_ctor(void *obj)
{
	struct point *p = obj;

	memset(p, 0, sizeof(*p));
	strcpy(p->tag, "fresh");
	ctor_calls++;
}

static void to_stdout(const char *buf, size_t len, void *ctx)
{
	fflush(stdout);
	if (write(1, buf, len) < 0)
		return;
}

static void section(const char *title)
{
	printf("\n== %s\n", title);
	fflush(stdout);
}

#if IS_ENABLED(CONFIG_MM_LOCK_USER)
#include <pthread.h>

/* CONFIG_MM_LOCK_USER: the application's lock hooks (here one recursive mutex). */
static pthread_mutex_t mm_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void mm_user_lock(void *lock)
{
	pthread_mutex_lock(lock ? lock : &mm_mutex);
}

void mm_user_unlock(void *lock)
{
	pthread_mutex_unlock(lock ? lock : &mm_mutex);
}
#endif

#define NR_POINTS 500

int main(void)
{
	static const size_t sizes[] = { 1, 8, 13, 24, 64, 90, 100, 150, 200, 256,
					500, 1000, 3000, 8192, 10000, 70000 };
	void *blocks[ARRAY_SIZE(sizes)];
	struct point *points[NR_POINTS];
	struct mm_diag start, end;
	struct kmem_cache *cache;
	struct mm_arena *a;
	int bad = 0;

	mm_set_output(to_stdout, NULL);
	printf("mm %s demo: page %zu bytes, largest buddy block %zu KiB, kmalloc classes %zu..%zu\n",
	       MM_VERSION, MM_PAGE_SIZE, MM_MAX_BLOCK >> 10, KMALLOC_MIN_SIZE,
	       KMALLOC_MAX_CACHE_SIZE);
	if (mm_init() || !(a = mm_default_arena())) {
		fprintf(stderr, "mm_init failed\n");
		return 1;
	}
	/*
	 * This thread's cache of kmalloc objects (CONFIG_MM_PERCPU_CACHE) is
	 * pages of the arena, made at its first kmalloc and kept while the
	 * thread lives: made before the measurement, or it would count as
	 * lost at the end (the firmware example does the same).
	 */
	kfree(kmalloc(1));
	mm_percpu_drain();
	kmem_cache_reap(a);
	mm_arena_diag(a, &start);

	section("1. the default arena at start (free blocks per order)");
	mm_buddyinfo(a);

	section("2. a slab cache of struct point, with a constructor");
	cache = kmem_cache_create("point", sizeof(struct point), 0, SLAB_HWCACHE_ALIGN, point_ctor);
	if (!cache) {
		fprintf(stderr, "kmem_cache_create failed\n");
		return 1;
	}
	for (int i = 0; i < NR_POINTS; i++) {
		points[i] = kmem_cache_alloc(cache);
		if (!points[i] || strcmp(points[i]->tag, "fresh")) {
			fprintf(stderr, "kmem_cache_alloc gave a bad object\n");
			return 1;
		}
		points[i]->id = (unsigned int)i;
		points[i]->x = i * 0.5;
	}
	printf("%d points allocated, constructor ran %lu times (once per object of each new slab)\n",
	       NR_POINTS, ctor_calls);

	section("3. kmalloc: each size lands in a class, or in whole pages above the largest");
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		blocks[i] = kmalloc(sizes[i]);
		if (!blocks[i]) {
			printf("  kmalloc(%6zu) = NULL\n", sizes[i]);
			continue;
		}
		memset(blocks[i], 0xab, sizes[i]);
		printf("  kmalloc(%6zu) = %p, ksize %6zu\n", sizes[i], blocks[i], ksize(blocks[i]));
	}

	section("4. buddyinfo, slabinfo and the page map with everything live");
	mm_buddyinfo(a);
	mm_slabinfo(a);
	mm_page_map(a);

	section("5. free everything, shrink the caches");
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		kfree(blocks[i]);
	for (int i = 0; i < NR_POINTS; i++) {
		bad |= points[i]->id != (unsigned int)i;
		kmem_cache_free(cache, points[i]);
	}
	if (kmem_cache_destroy(cache))
		bad = 1;
	mm_percpu_drain();
	kmem_cache_reap(a);
	mm_buddyinfo(a);
	mm_slabinfo(a);

	mm_arena_diag(a, &end);
	bad |= end.allocated != start.allocated || end.error_count;
#if IS_ENABLED(CONFIG_MM_VALIDATE)	/* not in the tiny core */
	bad |= mm_arena_validate(a) != 0;
#endif
	printf("\nallocated: %zu bytes at start, %zu at the end (peak %zu): %s\n",
	       start.allocated, end.allocated, end.peak_allocated,
	       bad ? "SOMETHING WAS LOST" : "nothing lost");
	return bad;
}
