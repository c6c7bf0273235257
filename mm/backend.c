// SPDX-License-Identifier: MIT
/*
 * What every backend shares: argument checks and counters around the
 * kind-specific operations, and the choice of the default arena's backend.
 *
 * The checks live here so that a backend an application writes gets them
 * too: sizes are multiples of the page, zero and absurd requests never reach
 * the backend, and whatever comes back is checked for alignment before the
 * buddy allocator builds on it.
 */
#include <string.h>
#include "internal.h"

void *mm_backend_grow(struct mm_backend *be, size_t min, size_t want, size_t *got)
{
	void *mem;

	*got = 0;
	if (!min || (min & (MM_PAGE_SIZE - 1)) || min > SIZE_MAX / 2) {
		be->nr_fail++;
		return NULL;
	}
	if (want < min)
		want = min;
	else if (want != SIZE_MAX)
		want = ALIGN_DOWN(want, MM_PAGE_SIZE);
	mem = be->grow(be, min, want, got);
	if (!mem) {
		be->nr_fail++;
		return NULL;
	}
	if (((uintptr_t)mem & (MM_PAGE_SIZE - 1)) || *got < min ||
	    (*got & (MM_PAGE_SIZE - 1))) {
		mm_report_bug(NULL, be->name, "grow returned %p, %zu bytes: not page-aligned or short",
			      mem, *got);
		be->nr_fail++;
		*got = 0;
		return NULL;
	}
	be->held += *got;
	be->nr_grow++;
	return mem;
}

int mm_backend_release(struct mm_backend *be, void *addr, size_t len)
{
	if (!be->release || !len || ((uintptr_t)addr | len) & (MM_PAGE_SIZE - 1) ||
	    len > be->held || be->release(be, addr, len)) {
		be->nr_fail++;
		return -1;
	}
	be->held -= len;
	be->nr_release++;
	return 0;
}

int mm_backend_discard(struct mm_backend *be, void *addr, size_t len)
{
	if (!be->discard || !len)
		return -1;
	return be->discard(be, addr, len);
}

int mm_backend_grow_at(struct mm_backend *be, void *addr, size_t len)
{
	if (!be->grow_at || !len || ((uintptr_t)addr | len) & (MM_PAGE_SIZE - 1) ||
	    (uintptr_t)addr + len < (uintptr_t)addr || be->grow_at(be, addr, len)) {
		be->nr_fail++;
		return -1;
	}
	be->held += len;
	be->nr_grow++;
	return 0;
}

void mm_backend_zero(struct mm_backend *be, void *addr, size_t len)
{
	/* No backend: a region the application added (mm_arena_add_region()). */
	if (!be || !be->zero || ((uintptr_t)addr | len) & (MM_PAGE_SIZE - 1) || be->zero(be, addr, len))
		memset(addr, 0, len);
}

int mm_backend_sync(struct mm_backend *be, void *addr, size_t len)
{
	return be->sync ? be->sync(be, addr, len) : 0;
}
