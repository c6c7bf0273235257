// SPDX-License-Identifier: MIT
/*
 * stress_arena: private arenas set up and destroyed while another thread
 * forks.  Two users share each new arena (alloc_pages()/free_pages() with
 * a pattern checked before each free, and the heap walk at the end where
 * it is built); the list of arenas that fork()'s handlers walk changes
 * under them.
 * Usage: stress_arena [seconds] (default 1: every configuration's 'make
 * test'; make check's stress step runs it longer).  Links libmm.a.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mm/mm.h>
#include "stress.h"

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define malloc	mm_malloc
#define free	mm_free
#endif

static struct mm_arena arena;
static struct mm_backend_mmap be;
static int stop, go, errors;
static unsigned long rounds, forks;
static pthread_barrier_t bar;

/* The heap walk where the configuration has it; mm_arena_destroy() counts pages anyway. */
static int arena_invalid(struct mm_arena *a)
{
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	return mm_arena_validate(a) != 0;
#else
	(void)a;
	return 0;
#endif
}

/* Orders 0 to 2, where the largest block allows: above is misuse, reported. */
#define ORDERS		(MM_MAX_ORDER < 2 ? MM_MAX_ORDER + 1 : 3)

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static void *user(void *arg)
{
	unsigned int s = (unsigned int)(uintptr_t)arg;

	for (;;) {
		void *p[16] = { 0 };
		unsigned int ord[16];

		pthread_barrier_wait(&bar);		/* the arena is set up */
		if (LOAD(stop))
			break;
		while (LOAD(go)) {
			for (int i = 0; i < 16; i++) {
				s = s * 1103515245 + 12345;
				ord[i] = (s >> 16) % ORDERS;
				p[i] = alloc_pages(&arena, ord[i]);
				if (p[i])
					memset(p[i], i + (int)(uintptr_t)arg, (size_t)MM_PAGE_SIZE << ord[i]);
			}
			for (int i = 0; i < 16; i++) {
				unsigned char *q = p[i];

				if (!q)
					continue;
				for (size_t k = 0; k < ((size_t)MM_PAGE_SIZE << ord[i]); k += 512)
					if (q[k] != (unsigned char)(i + (int)(uintptr_t)arg)) {
						__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
						fprintf(stderr, "stress_arena: page %p overwritten\n", q);
						break;
					}
				free_pages(&arena, q, ord[i]);
			}
		}
		pthread_barrier_wait(&bar);		/* done with it */
	}
	return NULL;
}

static void *forker(void *arg)
{
	while (!LOAD(stop)) {
		pid_t pid = fork();
		int st = 0;

		if (pid == 0) {
			void *p;

			alarm(10);
			p = malloc(100);
			free(p);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
			fprintf(stderr, "stress_arena: child failed (%#x)\n", st);
		}
		forks++;
	}
	return arg;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 1;
	pthread_t u[2], f;
	time_t end = time(NULL) + secs;

	stress_catch_crashes("stress_arena");
	free(malloc(1));
	mm_backend_mmap_init(&be, 0);
	pthread_barrier_init(&bar, NULL, 3);
	stress_thread(&u[0], user, (void *)1);
	stress_thread(&u[1], user, (void *)2);
	stress_thread(&f, forker, NULL);
	while (time(NULL) < end && !LOAD(errors)) {
		if (mm_arena_init(&arena, "stress", &be.be, 1 << 20)) {
			errors++;
			break;
		}
		STORE(go, 1);
		pthread_barrier_wait(&bar);
		usleep(2000);
		STORE(go, 0);
		pthread_barrier_wait(&bar);
		if (arena.diag.error_count || arena_invalid(&arena) || mm_arena_destroy(&arena)) {
			fprintf(stderr, "stress_arena: arena invalid, pages left or errors reported\n");
			errors++;
			break;
		}
		rounds++;
	}
	STORE(stop, 1);
	pthread_barrier_wait(&bar);
	pthread_join(u[0], NULL);
	pthread_join(u[1], NULL);
	pthread_join(f, NULL);
	if (mm_errors()) {
		fprintf(stderr, "stress_arena: mm reported %lu errors\n", mm_errors());
		errors++;
	}
	printf("stress_arena: %lu arenas, %lu forks, %d errors\n", rounds, forks, errors);
	return errors ? 1 : 0;
}
