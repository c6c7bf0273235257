// SPDX-License-Identifier: MIT
/*
 * The system calls newlib's stdio and exit() need, on a board with nothing
 * but a semihosting console.  There is deliberately no heap here: _sbrk()
 * refuses and counts, so with the mm malloc facade linked in, every
 * allocation newlib makes (stdio buffers, the reent structures) must come
 * from mm, and the firmware checks that _sbrk was never called.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include "semihost.h"

#undef errno
extern int errno;

unsigned long sbrk_calls;

/* Declared here: newlib's headers do not prototype the raw system calls. */
void *_sbrk(ptrdiff_t incr);
int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _lseek(int fd, int off, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _kill(int pid, int sig);
int _getpid(void);
void _exit(int status) __attribute__((noreturn));

void *_sbrk(ptrdiff_t incr)
{
	sbrk_calls++;
	errno = ENOMEM;
	return (void *)-1;
}

int _write(int fd, const char *buf, int len)
{
	if (fd != 1 && fd != 2) {
		errno = EBADF;
		return -1;
	}
	semihost_write(buf, (size_t)len);
	return len;
}

int _read(int fd, char *buf, int len)
{
	return 0;	/* no input: end of file */
}

int _close(int fd)
{
	errno = EBADF;
	return -1;
}

int _lseek(int fd, int off, int whence)
{
	errno = ESPIPE;
	return -1;
}

int _fstat(int fd, struct stat *st)
{
	st->st_mode = S_IFCHR;	/* a terminal: line-buffered stdout */
	return 0;
}

int _isatty(int fd)
{
	return fd >= 0 && fd <= 2;
}

int _kill(int pid, int sig)
{
	semihost_exit(128 + sig);	/* abort() raises SIGABRT */
}

int _getpid(void)
{
	return 1;
}

void _exit(int status)
{
	semihost_exit(status);
}
