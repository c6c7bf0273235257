// SPDX-License-Identifier: MIT
/*
 * The program-break backend.
 *
 * grow() moves the break up with sbrk(), first by whatever it takes to bring
 * the break to a page boundary.  The break is shared with anyone else in the
 * process who calls sbrk() (an older malloc, a runtime); when it is not
 * where our last region ended, someone moved it, and the new memory is
 * simply a region of its own: regions are never assumed contiguous.
 *
 * release() lowers the break, and only when the pages given back end exactly
 * at the current break: memory someone else took above ours pins ours.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include "internal.h"

static void *sbrk_grow(struct mm_backend *be, size_t min, size_t want, size_t *got)
{
	struct mm_backend_sbrk *s = container_of(be, struct mm_backend_sbrk, be);
	uintptr_t cur = (uintptr_t)sbrk(0);
	size_t pad = ALIGN(cur, MM_PAGE_SIZE) - cur;
	size_t len = want;
	int saved = errno;
	void *p;

	if (cur == (uintptr_t)-1)
		return NULL;
	if (s->last_end && cur != s->last_end)
		s->nr_foreign++;
	/* Try what we want, fall back to the minimum. */
	for (int i = 0; i < 2; i++, len = min) {
		uintptr_t start;

		if (len > (size_t)PTRDIFF_MAX - pad)
			continue;
		p = sbrk((intptr_t)(len + pad));
		if (p == (void *)-1)
			continue;
		/* If someone moved the break since sbrk(0), realign or retry. */
		start = ALIGN((uintptr_t)p, MM_PAGE_SIZE);
		if (start + len > (uintptr_t)p + len + pad) {
			sbrk(-(intptr_t)(len + pad));
			continue;
		}
		*got = len;
		s->last_end = (uintptr_t)p + len + pad;
		errno = saved;		/* a refusal of 'want' on the way is no failure */
		return (void *)start;
	}
	errno = ENOMEM;
	return NULL;
}

static int __sbrk_release(struct mm_backend *be, void *addr, size_t len)
{
	struct mm_backend_sbrk *s = container_of(be, struct mm_backend_sbrk, be);
	uintptr_t end = (uintptr_t)addr + len;

	if ((uintptr_t)sbrk(0) != end || len > (size_t)PTRDIFF_MAX)
		return -1;
	if (sbrk(-(intptr_t)len) == (void *)-1)
		return -1;
	if (s->last_end == end)
		s->last_end = (uintptr_t)addr;
	return 0;
}

/* Reached from free(), which must leave errno as it found it. */
static int sbrk_release(struct mm_backend *be, void *addr, size_t len)
{
	int saved = errno, ret = __sbrk_release(be, addr, len);

	errno = saved;
	return ret;
}

/* A refusal is no failure of the request (a new region serves it): errno stays. */
static int sbrk_grow_at(struct mm_backend *be, void *addr, size_t len)
{
	struct mm_backend_sbrk *s = container_of(be, struct mm_backend_sbrk, be);
	int saved = errno;
	void *p;

	if (sbrk(0) != addr || len > (size_t)PTRDIFF_MAX)
		return -1;
	p = sbrk((intptr_t)len);
	errno = saved;
	if (p == (void *)-1)
		return -1;
	if (p != addr) {		/* raced with another sbrk() caller */
		sbrk(-(intptr_t)len);
		return -1;
	}
	s->last_end = (uintptr_t)addr + len;
	return 0;
}

void mm_backend_sbrk_init(struct mm_backend_sbrk *s)
{
	*s = (struct mm_backend_sbrk){
		.be = {
			.name = "sbrk",
			.grow = sbrk_grow,
			.release = sbrk_release,
			.grow_at = sbrk_grow_at,
		},
	};
}

#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_SBRK)
struct mm_backend *mm_default_backend(void)
{
	static struct mm_backend_sbrk s;

	if (!s.be.grow)
		mm_backend_sbrk_init(&s);
	return &s.be;
}
#endif
