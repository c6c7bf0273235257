// SPDX-License-Identifier: MIT
/*
 * A printf small enough for a Cortex-M0+ and good enough for reports.
 *
 * Reports are tables of integers and names (buddyinfo, slabinfo) and error
 * messages with addresses, so the formatter knows integers, strings,
 * characters and pointers with width, '-', '0' and '#' flags, and nothing of
 * floating point.  It writes into a caller's buffer (mm_vsnprintf) or, in
 * chunks of a small stack buffer, to the output hook (mm_vprintf), so it
 * needs neither a heap nor a C library.
 */
#include <mm/report.h>

struct sink {
	char *buf;
	size_t size;		/* capacity of buf, the terminating NUL included */
	size_t pos;		/* bytes written into buf */
	int total;		/* characters produced */
	mm_output_t emit;	/* streaming: where a full buffer goes */
	void *ctx;
};

static void sink_flush(struct sink *s)
{
	if (s->emit && s->pos)
		s->emit(s->buf, s->pos, s->ctx);
	s->pos = 0;
}

static void sink_put(struct sink *s, char c)
{
	if (s->pos + 1 >= s->size && s->emit)
		sink_flush(s);
	if (s->pos + 1 < s->size)
		s->buf[s->pos++] = c;
	s->total++;
}

static void sink_pad(struct sink *s, char c, int n)
{
	while (n-- > 0)
		sink_put(s, c);
}

static int format_ull(char *tmp, unsigned long long v, unsigned int base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	return n;
}

static void sink_vformat(struct sink *s, const char *fmt, va_list ap)
{
	char tmp[24];

	for (; *fmt; fmt++) {
		int left = 0, zero = 0, alt = 0, width = 0, lng = 0, n;
		const char *prefix = "";
		unsigned long long v;
		const char *str;

		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		for (fmt++; *fmt == '-' || *fmt == '0' || *fmt == '#'; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '#')
				alt = 1;
			else
				zero = 1;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l' || *fmt == 'z'; fmt++)
			lng += *fmt == 'z' ? (sizeof(size_t) > sizeof(int)) : 1;

		switch (*fmt) {
		case 'd':
		case 'i': {
			long long sv = lng >= 2 ? va_arg(ap, long long) :
				       lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
			if (sv < 0)
				prefix = "-";
			v = sv < 0 ? 0ULL - (unsigned long long)sv : (unsigned long long)sv;
			n = format_ull(tmp, v, 10, 0);
			goto emit_number;
		}
		case 'u':
		case 'x':
		case 'X':
			v = lng >= 2 ? va_arg(ap, unsigned long long) :
			    lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			n = format_ull(tmp, v, *fmt == 'u' ? 10 : 16, *fmt == 'X');
			if (alt && v && *fmt != 'u')
				prefix = *fmt == 'X' ? "0X" : "0x";
			goto emit_number;
		case 'p':
			v = (uintptr_t)va_arg(ap, void *);
			n = format_ull(tmp, v, 16, 0);
			prefix = "0x";
			goto emit_number;
		case 'c':
			if (!left)
				sink_pad(s, ' ', width - 1);
			sink_put(s, (char)va_arg(ap, int));
			if (left)
				sink_pad(s, ' ', width - 1);
			continue;
		case 's':
			str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			for (n = 0; str[n]; n++)
				;
			if (!left)
				sink_pad(s, ' ', width - n);
			while (*str)
				sink_put(s, *str++);
			if (left)
				sink_pad(s, ' ', width - n);
			continue;
		case '%':
			sink_put(s, '%');
			continue;
		default:		/* unknown conversion: show it */
			sink_put(s, '%');
			if (!*fmt)
				return;
			sink_put(s, *fmt);
			continue;
		}
emit_number:
		/* Sign or 0x first, then zeros (C's order), or spaces before both. */
		width -= n;
		for (const char *c = prefix; *c; c++)
			width--;
		if (!left && !zero)
			sink_pad(s, ' ', width);
		while (*prefix)
			sink_put(s, *prefix++);
		if (!left && zero)
			sink_pad(s, '0', width);
		for (int i = n - 1; i >= 0; i--)
			sink_put(s, tmp[i]);
		if (left)
			sink_pad(s, ' ', width);
	}
}

int mm_vcbprintf(mm_output_t emit, void *ctx, const char *fmt, va_list ap)
{
	char buf[64];
	struct sink s = { .buf = buf, .size = sizeof(buf), .emit = emit, .ctx = ctx };

	sink_vformat(&s, fmt, ap);
	sink_flush(&s);
	return s.total;
}

int mm_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .size = size };

	sink_vformat(&s, fmt, ap);
	if (size)
		buf[s.pos] = '\0';
	return s.total;
}

int mm_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = mm_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
