// SPDX-License-Identifier: MIT
/*
 * rssprobe.so: the resident set of a real program as it exits, read from
 * the page tables.  Preloaded after the allocator under test
 * (bench/run-programs.sh), its destructor reads /proc/self/smaps_rollup
 * and appends "<Rss KiB> <Anonymous KiB>" to $RSSPROBE_OUT -- only in the
 * process whose pid is $RSSPROBE_PID, not in the children it starts.
 *
 * At exit, not at the peak: ru_maxrss would give the peak, but on this
 * kernel it moves in steps of 128 KiB (workloads.c), more than most of
 * these programs' differences.  A program that gave memory back before
 * exiting counts without it; one whose allocator keeps freed memory for
 * reuse counts with it.  No malloc here: open, read, write.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long field(const char *buf, const char *name)
{
	const char *p = strstr(buf, name);

	return p ? atol(p + strlen(name)) : -1;
}

__attribute__((destructor)) static void rssprobe(void)
{
	static char buf[4096], line[64];
	const char *out = getenv("RSSPROBE_OUT"), *pid = getenv("RSSPROBE_PID");
	ssize_t n;
	int fd, k;

	if (!out || !pid || atol(pid) != (long)getpid())
		return;
	fd = open("/proc/self/smaps_rollup", O_RDONLY);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	k = snprintf(line, sizeof(line), "%ld %ld\n", field(buf, "\nRss:"),
		     field(buf, "\nAnonymous:"));
	fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)k) != k)
		k = 0;
	close(fd);
}
