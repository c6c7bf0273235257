// SPDX-License-Identifier: MIT
/*
 * Error reports in SLUB's shape, so that anyone who has read a Linux
 * "BUG kmalloc-64 (Not tainted): Object already free" knows where to look:
 * a ruler, the subject and what went wrong, a ruler, then INFO lines from
 * the caller.  Every report is counted in the arena's diag.error_count
 * whether or not reports are compiled in, so tests and watchdogs can see
 * misuse on a target with no output at all; several threads reporting at
 * once each count theirs (count_one()).
 */
#include <mm/mm.h>

/*
 * One more in *n, which mm_arena_diag() reads without the lock.  The full
 * core reports from any thread, with the arena lock held or not (a bad
 * cache handle, an order above MM_MAX_ORDER, kfree()'s and krealloc()'s
 * unlocked paths), and two reports at once lost a count to a plain ++.
 * So: a relaxed atomic add where the target has one (lock add on x86,
 * ldrex/strex on ARMv7-M, amoadd on RISC-V).  ARMv6-M (Cortex-M0+) has
 * none, and bare-metal toolchains no libatomic to call instead: there its
 * one core masks interrupts around a load and a store, as its lock does
 * (CONFIG_MM_LOCK_IRQ; with no lock there is one context, and with an
 * RTOS's, two of its threads could still interleave them).  The tiny core
 * reports with its lock held, every time (the *_tiny.c files): the lock
 * orders the counts, and a relaxed load and store -- no more code than the
 * ++, where the budget is counted in bytes -- keep the reader race-free.
 */
static __always_inline void count_one(unsigned long *n)
{
#if !IS_ENABLED(CONFIG_MM_TINY) && __GCC_ATOMIC_LONG_LOCK_FREE == 2
	__atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
#elif !IS_ENABLED(CONFIG_MM_TINY) && IS_ENABLED(CONFIG_MM_LOCK_IRQ)
	arch_lock_t irq = ARCH_LOCK_INIT;
	unsigned long flags = arch_lock(&irq);

	__atomic_store_n(n, __atomic_load_n(n, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
	arch_unlock(&irq, flags);
#else
	__atomic_store_n(n, __atomic_load_n(n, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
#endif
}

void __mm_count_error(struct mm_arena *a, const char *what)
{
	if (a)
		count_one(&a->diag.error_count);
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
