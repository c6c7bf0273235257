// SPDX-License-Identifier: MIT
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "helpers.h"

/*
 * Shared with the children of misuse(): what one printed before it stopped
 * is in the parent's capture.  Room for the reports of a few thousand
 * misuses in one capture; pages never written cost nothing.
 */
struct capture {
	size_t len;
	size_t lost;		/* bytes that found no room: captured() fails */
	char buf[1 << 20];
};

static int cap_active;		/* this process's hook is cap_out() */
static unsigned int cap_stops;	/* children stopped since capture_start() */

static struct capture *cap(void)
{
	static struct capture *c;

	if (!c) {
		c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		assert_true(c != MAP_FAILED);
	}
	return c;
}

static void cap_out(const char *buf, size_t len, void *ctx)
{
	struct capture *c = cap();

	if (c->len + len >= sizeof(c->buf)) {
		c->lost += len - (sizeof(c->buf) - 1 - c->len);
		len = sizeof(c->buf) - 1 - c->len;
	}
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	c->buf[c->len] = '\0';
}

void capture_start(void)
{
	struct capture *c = cap();

	c->len = 0;
	c->lost = 0;
	c->buf[0] = '\0';
	cap_active = 1;
	cap_stops = 0;
	mm_set_output(cap_out, NULL);
}

const char *capture_stop(void)
{
	mm_set_output(NULL, NULL);
	cap_active = 0;
	return cap()->buf;
}

void check_report(struct mm_arena *a, unsigned long errors_before,
		  const char *t1, const char *t2)
{
	const char *text = capture_stop();

	/* Without reports there is no text: the count says it all. */
	if (IS_ENABLED(CONFIG_MM_REPORTS)) {
		if (!strstr(text, t1) || (t2 && !strstr(text, t2)))
			print_message("report was:\n%s\n", text);
		assert_non_null(strstr(text, t1));
		if (t2)
			assert_non_null(strstr(text, t2));
		assert_non_null(strstr(text, "BUG "));
	}
	assert_reported(a, errors_before, 1);
}

void assert_reported(struct mm_arena *a, unsigned long errors_before, unsigned int n)
{
	if (a)
		assert_int_equal(a->diag.error_count, errors_before + counted(n));
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR))
		assert_int_equal(cap_stops, n);
}

const char *capture_text(void)
{
	return cap()->buf;
}

/*
 * A capture cut short would miss what comes late in a report -- the page
 * map prints a character per page of every region -- and so answer by
 * chance: fail instead.
 */
int captured(const char *s)
{
	if (cap()->lost)
		fail_msg("the capture lost %zu bytes past its %zu", cap()->lost, sizeof(cap()->buf));
	return strstr(cap()->buf, s) != NULL;
}

/* The child's exit status when the call it ran came back. */
#define STOP_MISSED	0x5e

int stop_fork(void)
{
	int status;
	pid_t pid;

	cap();
	fflush(NULL);		/* or the child's exit would print it twice */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const int crashes[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS };

		/*
		 * A crash kills the child, for the parent to tell, rather than
		 * going to CMocka's handler, which would run the remaining
		 * tests here.  A lock left held must fail the test, not hang it.
		 */
		for (size_t i = 0; i < ARRAY_SIZE(crashes); i++)
			signal(crashes[i], SIG_DFL);
		alarm(60);
		if (!cap_active)
			capture_start();
		return 0;
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
		return 1;
	if (IS_ENABLED(CONFIG_MM_REPORTS))
		print_message("the child printed:\n%s\n", cap()->buf);
	if (WIFEXITED(status) && WEXITSTATUS(status) == STOP_MISSED)
		fail_msg("the process went on: mm did not stop it");
	if (WIFSIGNALED(status))
		fail_msg("the process died of signal %d, not SIGABRT", WTERMSIG(status));
	fail_msg("the process exited with status %d (an assertion failed in it?)",
		 WEXITSTATUS(status));
	return 1;
}

void stop_missed(void)
{
	_exit(STOP_MISSED);
}

/* Occurrences of s at the start of a line of text. */
static unsigned int lines_starting(const char *text, const char *s)
{
	unsigned int n = 0;

	for (const char *t = text; (t = strstr(t, s)) != NULL; t++)
		n += t == text || t[-1] == '\n';
	return n;
}

/*
 * The child stopped (stop_fork()): with reports, after exactly one, whose
 * subject the panic names in the last line it printed.
 */
static void check_stopped_report(const char *text)
{
	const char *bug = strstr(text, "BUG "), *end;
	char panic[128];
	size_t len;

	assert_true(cap()->len < sizeof(cap()->buf) - 1);	/* not cut short */
	if (lines_starting(text, "BUG ") != 1)
		print_message("the child printed:\n%s\n", text);
	assert_int_equal(lines_starting(text, "BUG "), 1);
	bug += 4;
	end = strstr(bug, " (mm): ");
	assert_non_null(end);
	snprintf(panic, sizeof(panic), "mm: panic: %.*s\n", (int)(end - bug), bug);
	len = strlen(panic);
	assert_true(strlen(text) >= len);
	if (strcmp(text + strlen(text) - len, panic) != 0)
		print_message("the child printed:\n%s\n", text);
	assert_string_equal(text + strlen(text) - len, panic);
}

int misuse_fork(void)
{
	size_t from = cap_active ? cap()->len : 0;

	if (stop_fork() == 0)
		return 0;
	if (IS_ENABLED(CONFIG_MM_REPORTS))
		check_stopped_report(cap()->buf + from);
	cap_stops++;
	return 1;
}

#if !IS_ENABLED(CONFIG_MM_TINY) && IS_ENABLED(CONFIG_MM_BACKEND_STATIC)
/*
 * The buffer comes from mmap, not malloc: with the libc facade malloc is mm
 * itself, and a test of a backend should not stand on what it tests.
 */
void test_static_init(struct test_static *t, size_t pages)
{
	/*
	 * mmap() aligns to the MMU page, which may be smaller than
	 * MM_PAGE_SIZE: map a page more and unmap the slack on both sides.
	 */
	size_t span;
	char *p;

	t->size = pages * MM_PAGE_SIZE;
	span = t->size + MM_PAGE_SIZE;
	p = mmap(NULL, span, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	t->mem = (void *)ALIGN((uintptr_t)p, MM_PAGE_SIZE);
	if ((char *)t->mem > p)
		munmap(p, (size_t)((char *)t->mem - p));
	if ((char *)t->mem + t->size < p + span)
		munmap((char *)t->mem + t->size, (size_t)(p + span - ((char *)t->mem + t->size)));
	assert_int_equal(mm_backend_static_init(&t->be, t->mem, t->size), 0);
}

void test_static_fini(struct test_static *t)
{
	munmap(t->mem, t->size);
}
#endif

size_t in_use(void)
{
	struct mm_diag d;

	mm_arena_diag(mm_default_arena(), &d);
	return d.allocated;
}

size_t arena_room(void)
{
	struct mm_arena *a = mm_default_arena();
	size_t free_bytes = mm_arena_free_pages(a) * MM_PAGE_SIZE, room = SIZE_MAX;

#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC)
	room = free_bytes / 2;
#if !IS_ENABLED(CONFIG_MM_TINY) && !IS_ENABLED(CONFIG_MM_STATIC_LINKER_REGION)
	/*
	 * And half of what the array has yet to give: malloc_trim() hands
	 * the free pages at its top back to it, for the arena to take again.
	 */
	room += (CONFIG_MM_STATIC_SIZE - mm_default_backend()->held) / 2;
#endif
#endif
#if !IS_ENABLED(CONFIG_MM_TINY)
	if (CONFIG_MM_ARENA_LIMIT_KB) {
		size_t lim = (size_t)CONFIG_MM_ARENA_LIMIT_KB << 10, cap;
		struct mm_diag d;

		mm_arena_diag(a, &d);
		cap = lim > d.capacity ? lim - d.capacity : 0;
		room = min_t(size_t, room, (cap + free_bytes) / 2);
	}
#endif
	return room;
}

#if IS_ENABLED(CONFIG_MM_KMALLOC) && (!IS_ENABLED(CONFIG_MM_TINY) || IS_ENABLED(CONFIG_MM_STATS))
/*
 * Every class of the layout, the fine ones too: the cache of each size up
 * to the largest class, counted once (a size's class is never below the
 * one of the size before; the heap's sizes have none).
 */
unsigned long live_objects(void)
{
	struct kmem_cache_info info;
	struct kmem_cache *last = NULL;
	unsigned long n = 0;

	for (size_t size = 1; size <= KMALLOC_MAX_CACHE_SIZE; size++) {
		struct kmem_cache *c = kmalloc_slab(size);

		if (!c || c == last)
			continue;
		kmem_cache_info(c, &info);
		n += info.active_objs;
		last = c;
	}
	return n;
}
#endif
