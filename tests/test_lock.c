// SPDX-License-Identifier: MIT
/*
 * The host mutex and the process's thread count
 * (CONFIG_MM_LOCK_SINGLE_THREAD_ELIDE, arch/host/include/mm/arch.h):
 *
 *  - one thread: mm_lock() leaves the mutex free and says so in its flags,
 *    and so do the allocator's own locked paths -- an arena's backend grows
 *    with the arena lock held, and a backend that tries the mutex from
 *    there finds it free (the buddy slow path and the slab slow path);
 *  - a fork from the single-threaded process: the child starts two
 *    threads that allocate, and exits; another child starts four and
 *    forks grandchildren that allocate while its threads start;
 *  - a lock taken while there is one thread is released as it was taken,
 *    though a thread started in between holds the mutex by then;
 *  - with a second thread alive the mutex is taken, in mm_lock() and on
 *    the allocator's paths alike;
 *  - a fork while threads allocate: the child, with one thread again
 *    (whether or not glibc counts it so), starts two threads that
 *    allocate, and exits instead of hanging on a mutex the fork left held;
 *  - a handler of "another library", registered at the start of main()
 *    before the allocator is set up, allocates in all three of its hooks:
 *    the forks above must neither hang in the parent nor in the child
 *    although ours (arch/host/fork.c), registered later, take the locks
 *    first.
 *
 * Built without elision (other C libraries, glibc before 2.32, the option
 * off), the same tests check that the mutex is always taken.
 *
 * The tests run in this order in one process: the first three need it to
 * have had no thread yet.  MM_TEST_SCALE=N divides the operation counts by
 * N (valgrind).  Threads call nothing of CMocka's: they count errors, and
 * the main thread asserts on the counts.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "helpers.h"
#if ARCH_LOCK_ELIDES
#include <sys/single_threaded.h>
#endif

static double scale = 1.0;	/* divisor */

static long scaled(long n)
{
	long v = (long)(n / scale);

	return v < 1 ? 1 : v;
}

/* 1 if the mutex is held by somebody (this thread included). */
static int mutex_held(mm_lock_t *l)
{
	int r = pthread_mutex_trylock(l);

	if (r == 0)
		pthread_mutex_unlock(l);
	return r == EBUSY;
}

/* What the allocator does with its locks while the process has one thread. */
static int elides(void)
{
#if ARCH_LOCK_ELIDES
	return 1;
#else
	return 0;
#endif
}

static void assert_single_threaded(void)
{
#if ARCH_LOCK_ELIDES
	if (!__libc_single_threaded)
		fail_msg("the process has had a thread already: run the tests in order");
#endif
}

/* ---- A backend that looks at the arena lock it is called under --------- */

#if !IS_ENABLED(CONFIG_MM_TINY)
struct probe {
	struct mm_backend be;		/* first: the arena's backend pointer */
	struct test_static inner;
	struct mm_arena arena;
	unsigned int calls, held;	/* grow() calls, with the mutex held */
};

static void *probe_grow(struct mm_backend *be, size_t min, size_t want, size_t *got)
{
	struct probe *p = (struct probe *)be;

	p->calls++;
	p->held += mutex_held(&p->arena.lock);
	return mm_backend_grow(&p->inner.be.be, min, want, got);
}

static int probe_release(struct mm_backend *be, void *addr, size_t len)
{
	return mm_backend_release(&((struct probe *)be)->inner.be.be, addr, len);
}

static void probe_init(struct probe *p)
{
	memset(p, 0, sizeof(*p));
	test_static_init(&p->inner, 512);
	p->be.name = "probe";
	p->be.grow = probe_grow;
	p->be.release = probe_release;
	assert_int_equal(mm_arena_init(&p->arena, "probe", &p->be, 0), 0);
}

static void probe_fini(struct probe *p)
{
	int ret = mm_arena_destroy(&p->arena);

	test_static_fini(&p->inner);
	assert_int_equal(ret, 0);
}

/*
 * Allocate from empty arenas, so that the backend grows under the lock:
 * pages (the buddy slow path), then a slab object (the slab slow path).
 * Each grows once; 'held' says whether the mutex was held then.  The
 * arenas are gone before anything is asserted: one left on the list of
 * arenas would be locked by every later fork.
 */
/* A block of 4 pages, or of the largest order where that is less. */
#define PROBE_ORDER	(MM_MAX_ORDER < 2 ? MM_MAX_ORDER : 2)

static void check_locked_paths(int held)
{
	static struct probe p;
	unsigned int calls[2], nheld[2];
	struct kmem_cache *c;
	void *obj;
	int ok[2];

	probe_init(&p);
	obj = alloc_pages(&p.arena, PROBE_ORDER);
	ok[0] = obj != NULL;
	calls[0] = p.calls;
	nheld[0] = p.held;
	if (obj)
		free_pages(&p.arena, obj, PROBE_ORDER);
	probe_fini(&p);

	probe_init(&p);
	c = kmem_cache_create_arena(&p.arena, "probe", 200, 0, 0, NULL);
	obj = c ? kmem_cache_alloc(c) : NULL;
	ok[1] = obj != NULL;
	calls[1] = p.calls;
	nheld[1] = p.held;
	if (obj)
		kmem_cache_free(c, obj);
	if (c)
		kmem_cache_destroy(c);
	probe_fini(&p);

	for (int i = 0; i < 2; i++) {
		assert_true(ok[i]);
		assert_int_equal(calls[i], 1);
		assert_int_equal(nheld[i], held);
	}
}
#else
static void check_locked_paths(int held)
{
	/* The tiny core has one arena, and no hook runs under its lock. */
}
#endif

/* ---- Threads ------------------------------------------------------------ */

/* A thread that takes 'lock' (if any), says so, and waits to be let go. */
struct parked {
	pthread_t thread;
	mm_lock_t *lock;
	mm_flags_t flags;
	sem_t ready, go;
};

static void *parked_main(void *arg)
{
	struct parked *p = arg;

	if (p->lock)
		p->flags = mm_lock(p->lock);
	sem_post(&p->ready);
	while (sem_wait(&p->go) && errno == EINTR)
		;
	if (p->lock)
		mm_unlock(p->lock, p->flags);
	return NULL;
}

static void park(struct parked *p, mm_lock_t *lock)
{
	p->lock = lock;
	p->flags = 0;
	assert_int_equal(sem_init(&p->ready, 0, 0), 0);
	assert_int_equal(sem_init(&p->go, 0, 0), 0);
	assert_int_equal(pthread_create(&p->thread, NULL, parked_main, p), 0);
	while (sem_wait(&p->ready) && errno == EINTR)
		;
}

static void unpark(struct parked *p)
{
	sem_post(&p->go);
	assert_int_equal(pthread_join(p->thread, NULL), 0);
	sem_destroy(&p->ready);
	sem_destroy(&p->go);
}

/*
 * Allocate and free through every lock the allocator has: small objects
 * (magazines, their refills and flushes, the slab slow path), large blocks
 * (the buddy allocator), direct mappings (kmalloc's own lock).  Each block
 * carries its size in its first and last byte; a wrong one, or a small
 * request refused, counts as an error.
 */
#define LIVE 64

struct churn {
	pthread_t thread;
	long ops;			/* < 0: until 'stop' */
	uint64_t seed;
	unsigned long errors;
	int running;			/* churn_main() has been entered */
};

static int stop;

static size_t churn_size(uint64_t *s)
{
	uint64_t r = xorshift64s(s);

	switch (r % 64) {
	case 0:
		return MM_MAX_BLOCK + (r >> 40) % MM_MAX_BLOCK;	/* direct mapping */
	case 1 ... 4:
		return 16384 + (r >> 32) % (256 * 1024);	/* large block */
	default:
		return 1 + (r >> 32) % 1024;
	}
}

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	unsigned char *live[LIVE] = { 0 };
	size_t len[LIVE] = { 0 };

	__atomic_store_n(&c->running, 1, __ATOMIC_RELEASE);

	for (long i = 0; c->ops < 0 ? !__atomic_load_n(&stop, __ATOMIC_RELAXED) : i < c->ops; i++) {
		unsigned int k = (unsigned int)(xorshift64s(&c->seed) % LIVE);

		if (live[k]) {
			if (live[k][0] != (unsigned char)len[k] ||
			    live[k][len[k] - 1] != (unsigned char)len[k])
				c->errors++;
			kfree(live[k]);
			live[k] = NULL;
			continue;
		}
		len[k] = churn_size(&c->seed);
		live[k] = kmalloc(len[k]);
		if (!live[k]) {
			c->errors += len[k] <= 1024;	/* big ones may not fit (tiny) */
			continue;
		}
		live[k][0] = live[k][len[k] - 1] = (unsigned char)len[k];
	}
	for (unsigned int k = 0; k < LIVE; k++)
		kfree(live[k]);
	return NULL;
}

static int churn_start(struct churn *c, long ops, uint64_t seed)
{
	c->ops = ops;
	c->seed = seed;
	c->errors = 0;
	c->running = 0;
	return pthread_create(&c->thread, NULL, churn_main, c);
}

/*
 * Wait until c's thread runs its own code.  A thread starting under ASan
 * (GCC 12's runtime) allocates and frees with ASan's malloc before it
 * gets there, and that runtime keeps none of its locks across fork(): a
 * fork at that moment leaves the child an ASan allocator that hangs its
 * first thread.  Not ours to test, so forks wait for this.
 */
static void churn_wait_running(struct churn *c)
{
	while (!__atomic_load_n(&c->running, __ATOMIC_ACQUIRE))
		usleep(100);
}

/* ---- fork ---------------------------------------------------------------- */

#define CHILD_OPS	20000
#define CHILD_TIMEOUT	60	/* seconds: a hung child, not a slow one */

/*
 * The child: allocate on its own, then from two threads at once.  Exit
 * status 0, or what went wrong.
 */
static int child_main(void)
{
	struct churn c[2];
	unsigned long errors = 0;
	void *p = kmalloc(100);

	if (!p)
		return 2;
	kfree(p);
	for (int i = 0; i < 2; i++) {
		if (churn_start(&c[i], scaled(CHILD_OPS), 0x9e3779b97f4a7c15ull * (i + 7)))
			return 3;
	}
	for (int i = 0; i < 2; i++) {
		if (pthread_join(c[i].thread, NULL))
			return 4;
		errors += c[i].errors;
	}
	return errors ? 5 : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Wait for child pid: its exit status, 128 + a signal, or -1 if it hung
 * past CHILD_TIMEOUT (then it is killed).  Calls nothing of CMocka's, so
 * that a child may wait for its own children.
 */
static int wait_child(pid_t pid)
{
	double deadline = now() + CHILD_TIMEOUT;
	int status = 0;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now() < deadline)
		usleep(1000);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	if (r != pid)
		return -2;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Fork, run body in the child, and wait for it with a timeout. */
static void fork_and_check(int (*body)(void))
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(body());
	st = wait_child(pid);
	if (st == -1)
		fail_msg("child %d hung for %d s (a lock left held across fork?)",
			 (int)pid, CHILD_TIMEOUT);
	if (st != 0)
		fail_msg("child %d: status %d", (int)pid, st);
}

static void fork_child_threads(void)
{
	fork_and_check(child_main);
}

/*
 * Whole pages, under the arena lock: 3 pages, or the largest block where
 * that is less and no direct mapping can serve more -- the tiny core, or
 * no mmap backend: a kmalloc(3 pages) with MM_MAX_ORDER=1 failed there,
 * and the child said its fork handlers had.
 */
#define LOCKED_BYTES	(3 * MM_PAGE_SIZE <= MM_MAX_BLOCK ||				\
			 (IS_ENABLED(CONFIG_MM_BACKEND_MMAP) && !IS_ENABLED(CONFIG_MM_TINY)) ? \
			 3 * MM_PAGE_SIZE : MM_MAX_BLOCK)

/* A grandchild: the allocator works, pages (the arena lock) included. */
static int grandchild_main(void)
{
	void *p = kmalloc(100), *q = kmalloc(LOCKED_BYTES);

	kfree(p);
	kfree(q);
	return p && q ? 0 : 6;
}

/*
 * A child of a process that never had a thread: its threads start and
 * take their first locks while it forks grandchildren that allocate.
 */
static int threads_start_main(void)
{
	enum { THREADS = 4, GRANDCHILDREN = 6 };
	struct churn c[THREADS];
	unsigned long errors = 0;
	int bad = 0;

	for (int i = 0; i < THREADS; i++) {
		if (churn_start(&c[i], scaled(4000), 0x9e3779b97f4a7c15ull * (i + 3)))
			return 3;
	}
	for (int i = 0; i < GRANDCHILDREN; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 7;
		if (pid == 0)
			_exit(grandchild_main());
		bad |= wait_child(pid) != 0;
	}
	for (int i = 0; i < THREADS; i++) {
		if (pthread_join(c[i].thread, NULL))
			return 4;
		errors += c[i].errors;
	}
	return bad ? 8 : errors ? 5 : 0;
}

/*
 * Another library's fork handlers, registered before any of ours: each
 * allocates and frees, as some do (the forking thread, in the child too).
 */
static unsigned long other_runs[3], other_fails;

static void other_handler(int which)
{
	/* A small object may come from the thread's magazine; pages take the arena lock. */
	void *p = kmalloc(200), *q = kmalloc(LOCKED_BYTES);

	if (!p || !q)
		other_fails++;
	kfree(p);
	kfree(q);
	/*
	 * Between our prepare handler and our parent or child handler the
	 * fork holds every lock, and this thread's locks above took none:
	 * their unlocks must let none go either.  The arena's mutex is still
	 * held.  Without MM_LOCK_SINGLE_THREAD_ELIDE an unlock once released
	 * it mid-fork, other threads got in, and the parent's handler then
	 * unlocked a mutex one of them held.
	 */
	if (__atomic_load_n(&__mm_fork_state, __ATOMIC_ACQUIRE) == ARCH_FORK_HELD &&
	    !mutex_held(&mm_default_arena()->lock))
		other_fails++;
	other_runs[which]++;
}

static void other_prepare(void)
{
	other_handler(0);
}

static void other_parent(void)
{
	other_handler(1);
}

static void other_child(void)
{
	other_handler(2);
	if (other_fails)
		_exit(3);
}

/* Ours registered, and no fork under way (arch/host/fork.c). */
static int fork_handlers_registered(void)
{
	return __atomic_load_n(&__mm_fork_state, __ATOMIC_ACQUIRE) == ARCH_FORK_READY;
}

/* ---- Tests --------------------------------------------------------------- */

static void test_single_thread_skips_mutex(void **state)
{
	mm_lock_t l = MM_LOCK_INIT;
	mm_flags_t flags;
	void *p;

	assert_single_threaded();
	flags = mm_lock(&l);
	assert_int_equal(flags != 0, !elides());
	assert_int_equal(mutex_held(&l), !elides());
	mm_unlock(&l, flags);
	assert_false(mutex_held(&l));

	/* The default arena's lock (kmalloc sets the arena up). */
	p = kmalloc(100);
	assert_non_null(p);
	flags = mm_lock(&mm_default_arena()->lock);
	assert_int_equal(mutex_held(&mm_default_arena()->lock), !elides());
	mm_unlock(&mm_default_arena()->lock, flags);
	kfree(p);

	check_locked_paths(!elides());
	assert_single_threaded();
	/* Registered when the default arena was set up. */
	assert_true(fork_handlers_registered());
}

static void test_fork_single_child_threads(void **state)
{
	assert_single_threaded();
	for (int i = 0; i < 2; i++)
		fork_child_threads();
	assert_single_threaded();
	assert_false(mutex_held(&mm_default_arena()->lock));
	assert_int_equal(other_fails, 0);
}

static void test_fork_while_threads_start(void **state)
{
	assert_single_threaded();
	for (int i = 0; i < (int)scaled(10) + 2; i++)
		fork_and_check(threads_start_main);
	assert_single_threaded();
}

static __maybe_unused void test_unlock_follows_lock_flags(void **state)
{
	static mm_lock_t l = MM_LOCK_INIT;
	static struct parked t;		/* it outlives a failed assert */
	mm_flags_t flags;

	assert_single_threaded();
	flags = mm_lock(&l);
	assert_int_equal(flags, 0);
	/* A thread starts and takes the lock for real: the mutex is its. */
	park(&t, &l);
	assert_int_not_equal(t.flags, 0);
	assert_true(mutex_held(&l));
	/* Our unlock skips the mutex, as our lock did: still the thread's. */
	mm_unlock(&l, flags);
	assert_true(mutex_held(&l));
	unpark(&t);
	assert_false(mutex_held(&l));
}

static void test_threads_take_mutex(void **state)
{
	mm_lock_t l = MM_LOCK_INIT;
	static struct parked t;		/* it outlives a failed assert */
	mm_flags_t flags;

	park(&t, NULL);		/* alive: two threads now */
	flags = mm_lock(&l);
	assert_int_not_equal(flags, 0);
	assert_true(mutex_held(&l));
	mm_unlock(&l, flags);
	assert_false(mutex_held(&l));
	assert_true(fork_handlers_registered());
	check_locked_paths(1);
	unpark(&t);
}

static void test_fork_threaded_child_threads(void **state)
{
	enum { WORKERS = 2 };
	static struct churn w[WORKERS];	/* they outlive a failed assert */
	unsigned long errors = 0;
	int forks = (int)scaled(8) < 2 ? 2 : (int)scaled(8);
	unsigned long runs0 = other_runs[0];

	/* A prepare handler waiting on our locks would hang the parent. */
	alarm(120);
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(churn_start(&w[i], -1, 0x2545f4914f6cdd1dull * (i + 1)), 0);
	for (int i = 0; i < WORKERS; i++)
		churn_wait_running(&w[i]);
	for (int i = 0; i < forks; i++) {
		/* Let the workers get going between forks. */
		usleep(2000);
		fork_child_threads();
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_join(w[i].thread, NULL), 0);
		errors += w[i].errors;
	}
	alarm(0);
	assert_int_equal(errors, 0);
	/* The other library's handlers ran at every fork, and allocated. */
	assert_int_equal(other_runs[0] - runs0, (unsigned long)forks);
	assert_int_equal(other_runs[1], other_runs[0]);
	assert_int_equal(other_fails, 0);
}

/*
 * A held mutex is watched CONFIG_MM_LOCK_SPIN_COUNT times, then slept on
 * (arch/host/lock.c): either way one holder at a time.  Threads bump a
 * plain counter inside the lock, some holding it only for the bump (the
 * waiters get it while they spin) and some for 2 ms (they sleep).
 */
struct contender {
	pthread_t thread;
	mm_lock_t *lock;
	long *counter;
	long ops;
	int long_holds;
	unsigned long overlaps;
};

static int inside;

static void *contend(void *arg)
{
	struct contender *c = arg;

	for (long i = 0; i < c->ops; i++) {
		mm_flags_t flags = mm_lock(c->lock);

		if (__atomic_fetch_add(&inside, 1, __ATOMIC_RELAXED) != 0)
			c->overlaps++;
		(*(volatile long *)c->counter)++;
		if (c->long_holds && i % 64 == 0)
			usleep(2000);
		__atomic_fetch_sub(&inside, 1, __ATOMIC_RELAXED);
		mm_unlock(c->lock, flags);
	}
	return NULL;
}

static void test_contended_mutex_excludes(void **state)
{
	enum { THREADS = 4 };
	static mm_lock_t l = MM_LOCK_INIT;
	static struct contender c[THREADS];
	static long counter;
	long want = 0;
	unsigned long overlaps = 0;

	/* Set up, so that mm_lock() is the fork-ready path (arch_lock()). */
	kfree(kmalloc(1));
	assert_true(fork_handlers_registered());
	for (int i = 0; i < THREADS; i++) {
		c[i] = (struct contender){ .lock = &l, .counter = &counter,
					   .ops = i ? scaled(200000) : scaled(640), .long_holds = !i };
		want += c[i].ops;
		assert_int_equal(pthread_create(&c[i].thread, NULL, contend, &c[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(c[i].thread, NULL), 0);
		overlaps += c[i].overlaps;
	}
	assert_int_equal(overlaps, 0);
	assert_int_equal(counter, want);
	assert_false(mutex_held(&l));
}

/* argv[1], if given, is a CMocka test-name filter ("test_fork*"). */
int main(int argc, char **argv)
{
	const char *env = getenv("MM_TEST_SCALE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_thread_skips_mutex),
		cmocka_unit_test(test_fork_single_child_threads),
		cmocka_unit_test(test_fork_while_threads_start),
#if ARCH_LOCK_ELIDES	/* else the mutex is taken: the thread would wait */
		cmocka_unit_test(test_unlock_follows_lock_flags),
#endif
		cmocka_unit_test(test_threads_take_mutex),
		cmocka_unit_test(test_fork_threaded_child_threads),
		cmocka_unit_test(test_contended_mutex_excludes),
	};

	if (env && strtod(env, NULL) >= 1)
		scale = strtod(env, NULL);
	/* Before anything of ours: "another library" loaded first. */
	pthread_atfork(other_prepare, other_parent, other_child);
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
