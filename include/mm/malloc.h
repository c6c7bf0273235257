/* SPDX-License-Identifier: MIT */
/*
 * The malloc facade (CONFIG_MM_MALLOC_PREFIXED or CONFIG_MM_MALLOC_LIBC).
 *
 * With the prefixed facade these are mm_malloc(), mm_free(), ...  With the
 * libc facade they are the C library's own names, declared by <stdlib.h> and
 * <malloc.h>; nothing is declared here then.
 *
 * Semantics follow C17, POSIX and glibc: every block of at least
 * alignof(max_align_t) bytes is aligned to it; malloc(0) returns a unique
 * pointer; failures return NULL with errno = ENOMEM; calloc() checks n * size
 * for overflow; realloc() keeps the pointer while the block still fits
 * (krealloc()), leaves the old block intact when it fails and frees it for
 * size 0 (returning NULL, as glibc does); posix_memalign()
 * returns EINVAL for an alignment that is not a power-of-two multiple of
 * sizeof(void *).
 */
#ifndef MM_MALLOC_H
#define MM_MALLOC_H

#include <mm/compiler.h>

MM_BEGIN_DECLS

#if IS_ENABLED(CONFIG_MM_MALLOC_PREFIXED)

/* glibc's struct mallinfo2, under our own name. */
struct mm_mallinfo2 {
	size_t arena;		/* bytes of pages held from backends */
	size_t ordblks;		/* free buddy blocks */
	size_t smblks;		/* empty slabs kept */
	size_t hblks;		/* direct mappings */
	size_t hblkhd;		/* bytes in direct mappings */
	size_t usmblks;		/* peak bytes allocated */
	size_t fsmblks;
	size_t uordblks;	/* bytes allocated */
	size_t fordblks;	/* bytes free in the arena */
	size_t keepcost;
};

void *mm_malloc(size_t size) __malloc __alloc_size(1);
void mm_free(void *p);
void *mm_calloc(size_t n, size_t size) __malloc __alloc_size(1, 2);
void *mm_realloc(void *p, size_t size) __alloc_size(2);
void *mm_reallocarray(void *p, size_t n, size_t size) __alloc_size(2, 3);
void *mm_aligned_alloc(size_t align, size_t size) __malloc __alloc_size(2);
int mm_posix_memalign(void **out, size_t align, size_t size);
void *mm_memalign(size_t align, size_t size) __malloc __alloc_size(2);
size_t mm_malloc_usable_size(void *p);
#if IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
void *mm_valloc(size_t size) __malloc __alloc_size(1);
void *mm_pvalloc(size_t size) __malloc;
int mm_malloc_trim(size_t pad);
void mm_malloc_stats(void);
struct mm_mallinfo2 mm_mallinfo2(void);
#endif

#endif

MM_END_DECLS

#endif /* MM_MALLOC_H */
