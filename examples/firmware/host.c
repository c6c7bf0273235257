// SPDX-License-Identifier: MIT
/* The firmware example as a Linux process: the console is file descriptor 1. */
#include <unistd.h>
#include <mm/mm.h>
#include "platform.h"

const char platform_name[] = "host";

void platform_write(const char *buf, size_t len, void *ctx)
{
	while (len) {
		ssize_t n = write(1, buf, len);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

int platform_checks(void)
{
	return 0;
}

#if IS_ENABLED(CONFIG_MM_LOCK_USER)
#include <pthread.h>

/*
 * CONFIG_MM_LOCK_USER: the application's lock hooks.  The default arena's
 * lock object starts NULL, so one process-wide mutex serves it here; it is
 * recursive because mm's setup lock and the arena's lock are then the same.
 */
static pthread_mutex_t mm_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void mm_user_lock(void *lock)
{
	pthread_mutex_lock(lock ? lock : &mm_mutex);
}

void mm_user_unlock(void *lock)
{
	pthread_mutex_unlock(lock ? lock : &mm_mutex);
}
#endif
