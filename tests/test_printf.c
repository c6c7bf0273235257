// SPDX-License-Identifier: MIT
/* lib/printf.c: the formatter behind every report. */
#include "helpers.h"

static void check(const char *want, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = mm_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_integers(void **state)
{
	check("0 -1 42 4294967295", "%d %d %u %u", 0, -1, 42u, 4294967295u);
	check("-9223372036854775808", "%lld", (long long)(-9223372036854775807LL - 1));
	check("18446744073709551615", "%llu", 18446744073709551615ULL);
	check("ff FF 0x10", "%x %X %p", 255u, 255u, (void *)16);
	check("123456789012", "%zu", (size_t)123456789012ULL);
}

static void test_width_and_flags(void **state)
{
	check("   42|42   |00042|-0042", "%5d|%-5d|%05d|%05d", 42, 42, 42, -42);
	check("  abc|abc  |x", "%5s|%-5s|%c", "abc", "abc", 'x');
	check("(null) 100%", "%s 100%%", (char *)NULL);
}

static void test_truncation(void **state)
{
	char buf[8];
	int n = mm_snprintf(buf, sizeof(buf), "%s", "0123456789");

	assert_int_equal(n, 10);	/* what it would have printed */
	assert_string_equal(buf, "0123456");
	assert_int_equal(mm_snprintf(buf, 0, "abc"), 3);
}

static void test_output_hook_streams_long_lines(void **state)
{
	char longs[300];

	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	capture_start();
	assert_int_equal(mm_printf("<%s>", longs), 301);
	capture_stop();
	assert_int_equal(strlen(capture_text()), 301);
	assert_true(captured("aaa>"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_width_and_flags),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_output_hook_streams_long_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
