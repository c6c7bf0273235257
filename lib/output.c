// SPDX-License-Identifier: MIT
/*
 * The output hook, and the printf that streams into it in 64-byte pieces: a
 * report of any length costs no heap and little stack, which matters when the
 * report is about a heap in trouble.
 */
#include <mm/report.h>

#if IS_ENABLED(CONFIG_ARCH_HOST)
#include <errno.h>
#include <unistd.h>

/* Reports come from inside free(), which must leave errno alone. */
static void output_stderr(const char *buf, size_t len, void *ctx)
{
	int saved = errno;

	while (len) {
		ssize_t n = write(2, buf, len);

		if (n <= 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	errno = saved;
}
#define DEFAULT_OUTPUT output_stderr
#else
#define DEFAULT_OUTPUT NULL
#endif

static mm_output_t output_fn = DEFAULT_OUTPUT;
static void *output_ctx;

mm_output_t mm_set_output(mm_output_t fn, void *ctx)
{
	mm_output_t old = output_fn;

	output_fn = fn;
	output_ctx = ctx;
	return old;
}

int mm_vprintf(const char *fmt, va_list ap)
{
	if (!output_fn)
		return 0;
	return mm_vcbprintf(output_fn, output_ctx, fmt, ap);
}

int mm_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = mm_vprintf(fmt, ap);
	va_end(ap);
	return n;
}
