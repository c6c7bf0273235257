/* SPDX-License-Identifier: MIT */
/*
 * What the stress programs share: a failure must say what it was.  Their
 * output is read from CI's log, where a process that died of a signal, or
 * of mm_panic() in a build without reports, left only its exit status --
 * and a thread that could not be started was joined anyway, a crash of
 * the test's own making.  So each program:
 *
 *   - names the signal, the faulting address and the call chain when it
 *     crashes (stress_catch_crashes());
 *   - replaces mm_panic() (weak in mm) with one that says why, and which
 *     process, before it aborts;
 *   - starts its threads with stress_thread(), which retries a transient
 *     EAGAIN and otherwise stops the program with the reason;
 *   - counts a report mm made (mm_errors()) as a failure, even when every
 *     pattern held: nothing these programs do is misuse.
 *
 * One translation unit per program includes it (the definitions are here).
 */
#ifndef MM_TEST_STRESS_H
#define MM_TEST_STRESS_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mm/mm.h>
#ifdef __GLIBC__
#include <execinfo.h>
#endif

static const char *stress_name = "stress";

/* write(2) of a formatted line, nothing allocated: a crash or panic may be inside malloc. */
static __attribute__((format(printf, 1, 2))) void stress_say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (write(2, buf, (size_t)n) < 0)
		_exit(5);
}

/* The call chain, where the C library can tell it (glibc's backtrace()). */
static __attribute__((unused)) void stress_backtrace(void)
{
#ifdef __GLIBC__
	void *pcs[32];
	int n = backtrace(pcs, 32);

	backtrace_symbols_fd(pcs, n, 2);
#endif
}

static void stress_on_crash(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	stress_say("%s: signal %d at address %p in process %d\n", stress_name,
		   sig, si->si_addr, (int)getpid());
	stress_backtrace();
	/* SA_RESETHAND: the default action now, a core where they are kept. */
	raise(sig);
}

/*
 * Before the first thread.  backtrace() is called once here: its first call
 * loads libgcc's unwinder, which allocates, and must not do so in a crash.
 */
static __attribute__((unused)) void stress_catch_crashes(const char *name)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa;
	void *pc;

	stress_name = name;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return;		/* the sanitizer's own handler says more */
#endif
#ifdef __GLIBC__
	backtrace(&pc, 1);
#else
	(void)pc;
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = stress_on_crash;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (unsigned int i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

void mm_panic(const char *why)
{
	stress_say("%s: mm_panic(\"%s\") in process %d\n", stress_name, why, (int)getpid());
	stress_backtrace();
	signal(SIGABRT, SIG_DFL);
	abort();
}

/* A thread the program needs: a few tries past EAGAIN, then stop with the reason. */
static __attribute__((unused)) void stress_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = 0;

	for (int tries = 0; tries < 50; tries++) {
		err = pthread_create(t, NULL, fn, arg);
		if (err != EAGAIN)
			break;
		usleep(20000);
	}
	if (err) {
		stress_say("%s: pthread_create: %s\n", stress_name, strerror(err));
		exit(4);
	}
}

/*
 * The default arena's count of reports.  Weak: stress_mix also runs under
 * LD_PRELOAD=libmm.so, built without mm's names linked in (0 then).
 */
#pragma weak mm_arena_diag
#pragma weak mm_default_arena

static __attribute__((unused)) unsigned long mm_errors(void)
{
	struct mm_diag d;
	struct mm_arena *a;

	if (!mm_arena_diag || !mm_default_arena || !(a = mm_default_arena()))
		return 0;
	mm_arena_diag(a, &d);
	return d.error_count;
}

#endif /* MM_TEST_STRESS_H */
