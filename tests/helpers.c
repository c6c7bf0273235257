// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <sys/mman.h>
#include "helpers.h"

static char cap_buf[1 << 16];
static size_t cap_len;

static void cap_out(const char *buf, size_t len, void *ctx)
{
	if (cap_len + len >= sizeof(cap_buf))
		len = sizeof(cap_buf) - 1 - cap_len;
	memcpy(cap_buf + cap_len, buf, len);
	cap_len += len;
	cap_buf[cap_len] = '\0';
}

void capture_start(void)
{
	cap_len = 0;
	cap_buf[0] = '\0';
	mm_set_output(cap_out, NULL);
}

const char *capture_stop(void)
{
	mm_set_output(NULL, NULL);
	return cap_buf;
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
	assert_int_equal(a->diag.error_count, errors_before + 1);
}

const char *capture_text(void)
{
	return cap_buf;
}

int captured(const char *s)
{
	return strstr(cap_buf, s) != NULL;
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

#if IS_ENABLED(CONFIG_MM_KMALLOC)
unsigned long live_objects(void)
{
	static const size_t odd[] = { 96, 192 };
	struct kmem_cache_info info;
	unsigned long n = 0;

	for (size_t size = KMALLOC_MIN_SIZE; size <= KMALLOC_MAX_CACHE_SIZE; size <<= 1) {
		struct kmem_cache *c = kmalloc_slab(size);

		if (c) {
			kmem_cache_info(c, &info);
			n += info.active_objs;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
		struct kmem_cache *c = kmalloc_slab(odd[i]);

		if (!c || c == kmalloc_slab(odd[i] + 1))
			continue;	/* no such class: counted above */
		kmem_cache_info(c, &info);
		n += info.active_objs;
	}
	return n;
}
#endif
