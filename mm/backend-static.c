// SPDX-License-Identifier: MIT
/*
 * The static backend: pages from a fixed array, or from the RAM between two
 * linker symbols, with no system call anywhere -- the only backend on bare
 * metal.
 *
 * It is a bump allocator over its range: grow() hands out the next pages
 * (as many as asked for, up to all that is left), release() takes back only
 * the pages at the top.  An arena asks for everything at once, so the usual
 * picture is one region covering the whole array.
 */
#include "internal.h"

static void *static_grow(struct mm_backend *be, size_t min, size_t want, size_t *got)
{
	struct mm_backend_static *s = container_of(be, struct mm_backend_static, be);
	size_t left = s->end - s->top;
	void *mem;

	if (left < min)
		return NULL;
	*got = want < left ? want : left;
	mem = (void *)s->top;
	s->top += *got;
	return mem;
}

static int static_release(struct mm_backend *be, void *addr, size_t len)
{
	struct mm_backend_static *s = container_of(be, struct mm_backend_static, be);

	if ((uintptr_t)addr + len != s->top || (uintptr_t)addr < s->base)
		return -1;
	s->top = (uintptr_t)addr;
	return 0;
}

static int static_grow_at(struct mm_backend *be, void *addr, size_t len)
{
	struct mm_backend_static *s = container_of(be, struct mm_backend_static, be);

	if ((uintptr_t)addr != s->top || s->end - s->top < len)
		return -1;
	s->top += len;
	return 0;
}

int mm_backend_static_init(struct mm_backend_static *s, void *mem, size_t size)
{
	uintptr_t base = ALIGN((uintptr_t)mem, MM_PAGE_SIZE);
	uintptr_t end = ALIGN_DOWN((uintptr_t)mem + size, MM_PAGE_SIZE);

	*s = (struct mm_backend_static){
		.be = {
			.name = "static",
			.grow = static_grow,
			.release = static_release,
			.grow_at = static_grow_at,
		},
	};
	if ((uintptr_t)mem + size < (uintptr_t)mem || end <= base)
		return -1;
	s->base = s->top = base;
	s->end = end;
	return 0;
}

#if IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC)
#if IS_ENABLED(CONFIG_MM_STATIC_LINKER_REGION)
extern char __mm_heap_start[], __mm_heap_end[];
#define HEAP_START ((void *)__mm_heap_start)
#define HEAP_SIZE ((size_t)(__mm_heap_end - __mm_heap_start))
#else
/*
 * On a host, aligned to the largest block so every order is available from
 * the array's start; on a target only to the page, since the linker would
 * pad RAM to reach a larger alignment.
 */
static char static_heap[CONFIG_MM_STATIC_SIZE]
	__aligned(IS_ENABLED(CONFIG_ARCH_HOST) ? MM_MAX_BLOCK : MM_PAGE_SIZE);
#define HEAP_START ((void *)static_heap)
#define HEAP_SIZE sizeof(static_heap)
#endif

struct mm_backend *mm_default_backend(void)
{
	static struct mm_backend_static s;

	if (!s.be.grow && mm_backend_static_init(&s, HEAP_START, HEAP_SIZE))
		return NULL;
	return &s.be;
}
#endif
