// SPDX-License-Identifier: MIT
/*
 * Error reports in SLUB's shape, so that anyone who has read a Linux
 * "BUG kmalloc-64 (Not tainted): Object already free" knows where to look:
 * a ruler, the subject and what went wrong, a ruler, then INFO lines from
 * the caller.  Every report is counted in the arena's diag.error_count
 * whether or not reports are compiled in, so tests and watchdogs can see
 * misuse on a target with no output at all.
 */
#include <mm/mm.h>

void __mm_count_error(struct mm_arena *a, const char *what)
{
	if (a)
		a->diag.error_count++;
}

#if IS_ENABLED(CONFIG_MM_REPORTS)
/* A line of 77 c's, made when needed: two constant rulers were 156 bytes of flash. */
static void ruler(char c)
{
	char line[78];

	for (unsigned int i = 0; i < 77; i++)
		line[i] = c;
	line[77] = '\0';
	mm_printf("%s\n", line);
}

static void report_vbegin(struct mm_arena *a, const char *what, const char *fmt, va_list ap)
{
	ruler('=');
	mm_printf("BUG %s (mm): ", what);
	mm_vprintf(fmt, ap);
	mm_printf("\n");
	ruler('-');
	__mm_count_error(a, what);
}

void mm_report_bug(struct mm_arena *a, const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_vbegin(a, what, fmt, ap);
	va_end(ap);
	mm_report_end(what);
}

#if IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR)
void mm_report_begin(struct mm_arena *a, const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_vbegin(a, what, fmt, ap);
	va_end(ap);
}
#else
/* Without the panic the end is nothing: no second copy in flash. */
void mm_report_begin(struct mm_arena *a, const char *what, const char *fmt, ...)
	__alias(mm_report_bug);
#endif
#endif

#if IS_ENABLED(CONFIG_ARCH_HOST)
#include <stdlib.h>

__weak void mm_panic(const char *why)
{
	mm_printf("mm: panic: %s\n", why);
	abort();
}
#else
__weak void mm_panic(const char *why)
{
	mm_printf("mm: panic: %s\n", why);
	for (;;)
		__asm__ volatile("" ::: "memory");
}
#endif
