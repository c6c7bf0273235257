// SPDX-License-Identifier: MIT
/*
 * memcpy, memmove, memset and memcmp for builds with no C library
 * (CONFIG_MM_LIB_STRING, the RISC-V default).  GCC emits calls to these
 * four even in freestanding code, for struct copies and zeroing, so a
 * library that links with -nostdlib must bring them.  Word-at-a-time where
 * both pointers allow it; bytes otherwise.  Built with -fno-builtin so the
 * loops are not turned back into calls to themselves.
 */
#include <mm/compiler.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define WORD sizeof(uintptr_t)

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if ((((uintptr_t)d | (uintptr_t)s) & (WORD - 1)) == 0) {
		for (; n >= WORD; n -= WORD, d += WORD, s += WORD)
			*(uintptr_t *)(void *)d = *(const uintptr_t *)(const void *)s;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	if (((uintptr_t)d & (WORD - 1)) == 0) {
		uintptr_t w = (unsigned char)c;

		w *= (uintptr_t)-1 / 0xff;	/* the byte in every lane */
		for (; n >= WORD; n -= WORD, d += WORD)
			*(uintptr_t *)(void *)d = w;
	}
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++) {
		if (*x != *y)
			return *x - *y;
	}
	return 0;
}
