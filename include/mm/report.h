/* SPDX-License-Identifier: MIT */
/*
 * Where mm's words go.  Reports (buddyinfo, slabinfo, the page map) and
 * error reports are formatted by a small freestanding printf and handed to
 * one output hook, so a target without stdio prints through its UART or
 * semihosting and a test captures them in a buffer.  The host default
 * writes to standard error; other targets print nothing until a hook is set.
 */
#ifndef MM_REPORT_H
#define MM_REPORT_H

#include <stdarg.h>
#include <mm/compiler.h>

MM_BEGIN_DECLS

typedef void (*mm_output_t)(const char *buf, size_t len, void *ctx);

#if IS_ENABLED(CONFIG_MM_REPORTS)
/* Set the output hook (NULL: discard).  Returns the previous one. */
mm_output_t mm_set_output(mm_output_t fn, void *ctx);

/*
 * printf subset: %d %i %u %x %X %p %s %c %%, flags '-' '0' '#', width, and the
 * l, z and ll length modifiers.  Returns the characters produced.
 */
int mm_printf(const char *fmt, ...) __printf(1, 2);
int mm_vprintf(const char *fmt, va_list ap);
int mm_snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
int mm_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
/* Format and stream the result to 'emit' in pieces (no buffer limit). */
int mm_vcbprintf(mm_output_t emit, void *ctx, const char *fmt, va_list ap);
#else
/* Without CONFIG_MM_REPORTS every report compiles to nothing. */
static inline mm_output_t mm_set_output(mm_output_t fn, void *ctx) { return NULL; }
static inline __printf(1, 2) int mm_printf(const char *fmt, ...) { return 0; }
static inline int mm_vprintf(const char *fmt, va_list ap) { return 0; }
#endif

/* Called on unrecoverable errors; weak, so an application can replace it. */
void mm_panic(const char *why);

/*
 * Report misuse, SLUB style:
 *
 *	=============================================================
 *	BUG kmalloc-64 (mm): Object already free
 *	-------------------------------------------------------------
 *	INFO: ...
 *
 * and count it in the arena's diag.error_count.  With CONFIG_MM_PANIC_ON_ERROR
 * mm_panic() follows.  A report with INFO lines is mm_report_begin(), the
 * lines, then mm_report_end(), so that the panic comes after all of it; FIX
 * lines, which say how mm carries on, come after the end.
 */
struct mm_arena;
void __mm_count_error(struct mm_arena *arena, const char *what);
#if IS_ENABLED(CONFIG_MM_REPORTS)
void mm_report_begin(struct mm_arena *arena, const char *what, const char *fmt, ...) __printf(3, 4);
void mm_report_bug(struct mm_arena *arena, const char *what, const char *fmt, ...) __printf(3, 4);
#else
/* Without reports the message and its strings compile away; the count stays. */
static inline __printf(3, 4) void mm_report_begin(struct mm_arena *arena, const char *what,
						  const char *fmt, ...)
{
	__mm_count_error(arena, what);
}

static inline __printf(3, 4) void mm_report_bug(struct mm_arena *arena, const char *what,
						const char *fmt, ...)
{
	__mm_count_error(arena, what);
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR))
		mm_panic(what);
}
#endif

static inline void mm_report_end(const char *what)
{
	if (IS_ENABLED(CONFIG_MM_PANIC_ON_ERROR))
		mm_panic(what);
}

MM_END_DECLS

#endif /* MM_REPORT_H */
