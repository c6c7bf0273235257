// SPDX-License-Identifier: MIT
/*
 * stress_first: the first allocation of a process, in one thread, racing
 * a fork() in another.  Each round is a pristine process (this program's
 * main process never allocates from mm before the rounds: the mm_ names;
 * the libc facade allocated before main() and finds the setup done).  The
 * child must allocate at once: a setup lock inherited held by the thread
 * that did not come along hangs it (an alarm, status 114).
 * Usage: stress_first [rounds] (default 300, divided by MM_TEST_SCALE).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mm/mm.h>
#include "stress.h"

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)
#define malloc	mm_malloc
#define free	mm_free
#endif

static volatile int go;

static void *first(void *arg)
{
	while (!go)
		;
	for (int i = 0; i < 100; i++)
		free(malloc(16 + i * 40));
	return arg;
}

static int one_round(int delay)
{
	pthread_t t;
	pid_t pid;
	int st;

	if (pthread_create(&t, NULL, first, NULL))
		return 10;
	go = 1;
	for (volatile int i = 0; i < delay; i++)
		;
	pid = fork();
	if (pid == 0) {
		alarm(3);
		for (int i = 0; i < 100; i++)
			free(malloc(16 + i * 40));
		_exit(0);
	}
	pthread_join(t, NULL);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 11;
	return WIFSIGNALED(st) ? 100 + WTERMSIG(st) : WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	const char *scale = getenv("MM_TEST_SCALE");	/* 10 under valgrind */
	int n = argc > 1 ? atoi(argv[1]) : 300, bad = 0;

	stress_catch_crashes("stress_first");
	if (argc <= 1 && scale && atoi(scale) > 1)
		n /= atoi(scale);

	for (int r = 0; r < n; r++) {
		pid_t pid = fork();
		int st = -1;

		if (pid == 0) {
			alarm(10);
			_exit(one_round(r * 37 % 20000));
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			if (++bad < 5)
				fprintf(stderr, "stress_first: round %d: status %#x\n", r, st);
		}
	}
	printf("stress_first: %d of %d rounds failed\n", bad, n);
	return !!bad;
}
