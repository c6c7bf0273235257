/* SPDX-License-Identifier: MIT */
/*
 * IS_ENABLED() for kconfig-frontends' autoconf.h, which (unlike Linux's
 * generated header) has no helper of its own.  Options set to 'y' are
 * defined to 1 and options set to 'n' are absent; the placeholder trick turns
 * "defined to 1" into 1 and "undefined" into 0 inside an ordinary C
 * expression, so code can read
 *
 *	if (IS_ENABLED(CONFIG_MM_CHECKS))
 *
 * and the compiler still sees (and type-checks) both branches before
 * throwing the dead one away.
 */
#ifndef MM_KCONFIG_H
#define MM_KCONFIG_H

#define __MM_ARG_PLACEHOLDER_1 0,
#define __mm_take_second_arg(__ignored, val, ...) val
#define __mm_is_defined(x) ___mm_is_defined(x)
#define ___mm_is_defined(val) ____mm_is_defined(__MM_ARG_PLACEHOLDER_##val)
#define ____mm_is_defined(arg1_or_junk) __mm_take_second_arg(arg1_or_junk 1, 0)

/* 1 if the bool option is set to y, 0 otherwise. */
#define IS_ENABLED(option) __mm_is_defined(option)

#endif /* MM_KCONFIG_H */
