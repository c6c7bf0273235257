// SPDX-License-Identifier: MIT
/*
 * libmm on bare-metal RISC-V with no C library at all: built with
 * -ffreestanding, linked with -nostdlib against libmm.a and libgcc only.
 * Linking proves the library needs nothing else (lib/string.c brings
 * memcpy and friends, lib/printf.c the formatter); running it under
 * qemu-system-riscv32/64 -M virt -bios none with semihosting proves it
 * works: a slab cache, kmalloc of every class, krealloc, the reports, and
 * "nothing lost" at the end.  The exit status says whether every check held.
 */
#include <string.h>
#include <mm/mm.h>

#define SYS_OPEN		0x01
#define SYS_WRITE0		0x04
#define SYS_WRITE		0x05
#define SYS_EXIT		0x18
#define SYS_EXIT_EXTENDED	0x20
#define ADP_Stopped_ApplicationExit 0x20026

long semihost_call(long op, const void *arg);	/* start.S */
void semihost_exit(int status) __attribute__((noreturn));
int main(void);

static long console = -2;

static void console_write(const char *buf, size_t len, void *ctx)
{
	if (console == -2) {
		static const char tt[] = ":tt";
		const uintptr_t args[3] = { (uintptr_t)tt, 4, 3 };

		console = semihost_call(SYS_OPEN, args);
	}
	if (console >= 0) {
		const uintptr_t args[3] = { (uintptr_t)console, (uintptr_t)buf, len };

		semihost_call(SYS_WRITE, args);
	} else {
		char chunk[65];

		while (len) {
			size_t n = len < 64 ? len : 64;

			for (size_t i = 0; i < n; i++)
				chunk[i] = buf[i];
			chunk[n] = 0;
			semihost_call(SYS_WRITE0, chunk);
			buf += n;
			len -= n;
		}
	}
}

void semihost_exit(int status)
{
	const uintptr_t block[2] = { ADP_Stopped_ApplicationExit, (uintptr_t)status };

	if (sizeof(long) == 8)		/* RV64: SYS_EXIT takes a parameter block */
		semihost_call(SYS_EXIT, block);
	else if (status == 0)		/* RV32: the reason itself */
		semihost_call(SYS_EXIT, (const void *)ADP_Stopped_ApplicationExit);
	semihost_call(SYS_EXIT_EXTENDED, block);
	for (;;)
		__asm__ volatile("wfi");
}

static unsigned int checks, failures;

static void check(int ok, const char *what)
{
	checks++;
	if (!ok) {
		failures++;
		mm_printf("check FAILED: %s\n", what);
	}
}

struct node {
	struct node *next;
	unsigned long key;
	unsigned char payload[20];
};

#define NR_NODES 120

int main(void)
{
	static void *blocks[24];
	struct mm_diag start, end;
	struct kmem_cache *cache;
	struct mm_arena *a;
	struct node *list = NULL;
	unsigned long sum = 0;
	unsigned int n;

	mm_set_output(console_write, NULL);
	mm_printf("mm %s on bare-metal RISC-V (%s), no C library\n", MM_VERSION,
		  sizeof(long) == 8 ? "rv64imac" : "rv32imac");
	if (mm_init() || !(a = mm_default_arena())) {
		mm_printf("mm_init failed\nriscv: FAIL\n");
		return 1;
	}
	mm_arena_diag(a, &start);

	/* Sizes all over the classes, one past the largest (a buddy block). */
	for (n = 0; n < ARRAY_SIZE(blocks); n++) {
		size_t size = 1 + n * 53 % 700;

		blocks[n] = kmalloc(size);
		check(blocks[n] && ksize(blocks[n]) >= size, "kmalloc/ksize");
		if (blocks[n])
			memset(blocks[n], (int)n, size);
	}
	{
		void *grown = krealloc(blocks[7], 1500);	/* to a buddy block */

		check(grown && ((unsigned char *)grown)[0] == 7, "krealloc keeps the contents");
		if (grown)
			blocks[7] = grown;
	}

	cache = kmem_cache_create("node", sizeof(struct node), 0, 0, NULL);
	check(cache != NULL, "kmem_cache_create");
	for (n = 0; cache && n < NR_NODES; n++) {
		struct node *x = kmem_cache_alloc(cache);

		check(x != NULL, "kmem_cache_alloc");
		if (!x)
			break;
		x->key = n * 2654435761u;
		x->payload[0] = (unsigned char)n;
		x->next = list;
		list = x;
	}
	mm_printf("---- with %u nodes and %u kmalloc blocks live\n", NR_NODES,
		  (unsigned int)ARRAY_SIZE(blocks));
	mm_buddyinfo(a);
	mm_slabinfo(a);

	for (n = 0; n < ARRAY_SIZE(blocks); n++)
		kfree(blocks[n]);
	while (list) {
		struct node *x = list;

		list = x->next;
		sum += x->payload[0];
		kmem_cache_free(cache, x);
	}
	check(sum == (unsigned long)NR_NODES * (NR_NODES - 1) / 2, "every node came back");
	check(kmem_cache_destroy(cache) == 0, "kmem_cache_destroy");
	kmem_cache_reap(a);

	mm_printf("---- after freeing everything\n");
	mm_buddyinfo(a);
	mm_arena_diag(a, &end);
	check(end.allocated == start.allocated, "nothing lost");
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	check(mm_arena_validate(a) == 0, "mm_arena_validate");
#endif
	check(end.error_count == 0, "no misuse reported");
	mm_printf("%u checks, %u failed\nriscv: %s\n", checks, failures, failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
