/* SPDX-License-Identifier: MIT */
/*
 * Compiler helpers shared by every layer.  GCC and Clang only: the
 * framework relies on their builtins for bit scans and on their attributes
 * for section placement and visibility.
 */
#ifndef MM_COMPILER_H
#define MM_COMPILER_H

#include <stddef.h>
#include <stdint.h>
#include <mm/autoconf.h>
#include <mm/kconfig.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#ifndef __always_inline
#define __always_inline	inline __attribute__((always_inline))
#endif
/*
 * The allocator's fast paths: forced inline when built for speed, left to
 * the compiler under -Os, where one copy called from several places is the
 * smaller program.
 */
#if IS_ENABLED(CONFIG_OPT_SIZE)
#define __hot_inline	inline
#else
#define __hot_inline	inline __attribute__((always_inline))
#endif

#ifndef __noinline
#define __noinline	__attribute__((noinline))
#endif
#ifndef __cold
#define __cold		__attribute__((cold, noinline))
#endif
#ifndef __aligned
#define __aligned(x)	__attribute__((aligned(x)))
#endif
#ifndef __printf
#define __printf(a, b)	__attribute__((format(printf, a, b)))
#endif
#ifndef __maybe_unused
#define __maybe_unused	__attribute__((unused))
#endif
#ifndef __weak
#define __weak		__attribute__((weak))
#endif
#ifndef __alias
#define __alias(sym)	__attribute__((alias(#sym)))
#endif
#ifndef __malloc
#define __malloc	__attribute__((malloc))
#endif
/* newlib's <sys/cdefs.h> has a one-argument __alloc_size: ours takes both forms. */
#undef __alloc_size
#define __alloc_size(...) __attribute__((alloc_size(__VA_ARGS__)))

#ifndef static_assert
#define static_assert _Static_assert
#endif

/*
 * Around the declarations of every public header: C linkage for C++, and
 * default visibility, since libmm is built with -fvisibility=hidden so that
 * nothing else in libmm.so is interposable or reached through the PLT.
 */
#ifdef __cplusplus
#define MM_BEGIN_DECLS	extern "C" { _Pragma("GCC visibility push(default)")
#define MM_END_DECLS	_Pragma("GCC visibility pop") }
#else
#define MM_BEGIN_DECLS	_Pragma("GCC visibility push(default)")
#define MM_END_DECLS	_Pragma("GCC visibility pop")
#endif

/* Library-internal data referenced across files: never through the GOT. */
#define MM_INTERNAL	__attribute__((visibility("hidden")))

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Power-of-two alignment; 'a' must be a power of two. */
#define ALIGN(x, a)		(((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a)	((x) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a)	(((x) & ((__typeof__(x))(a) - 1)) == 0)
#define PTR_ALIGN(p, a)		((__typeof__(p))ALIGN((uintptr_t)(p), (a)))

#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))

#define min_t(t, a, b)	((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b)	((t)(a) > (t)(b) ? (t)(a) : (t)(b))

#endif /* MM_COMPILER_H */
