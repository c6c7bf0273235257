// SPDX-License-Identifier: MIT
/*
 * A firmware-shaped application on mm: a sensor-to-radio message pipeline.
 *
 *	sample --> packet --> filter --> text --> queue --> transmit --> free
 *	           (kmem_cache            (kmalloc,         (printf, a batched
 *	            "packet")              krealloc)         frame from malloc)
 *
 * Four simulated sensors are sampled in bursts of random length; every
 * sample becomes a packet from a slab cache with a constructor, gets a
 * smoothed value and a line of text in a kmalloc'd string, and waits in a
 * queue that the "radio" drains at its own random pace, so allocations and
 * frees interleave the way they do in a real device.  Every few packets the
 * radio batches lines into one frame grown with realloc(), and every printf
 * runs through newlib's stdio, whose buffers come from mm's malloc facade.
 *
 * The program checks its own results -- every packet arrives intact and in
 * order, constructed state survives, nothing overlaps, nothing leaks, the
 * heap validates -- prints mm's buddyinfo and slabinfo while the queue is
 * full and after it drained, and exits 0 only if every check held.  The
 * same source runs under QEMU on the MPS2 boards (mps2/: AN386 Cortex-M4,
 * also AN385 Cortex-M3 and AN500 Cortex-M7) and on a Linux host (host.c).
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mm/mm.h>
#include "platform.h"
#ifdef __NEWLIB__
#include <reent.h>
#endif

#if !IS_ENABLED(CONFIG_MM_KMALLOC)
#error "the firmware example needs CONFIG_MM_SLAB and CONFIG_MM_KMALLOC"
#endif
/* On the board newlib's own malloc has no heap (_sbrk refuses): mm must be it. */
#if IS_ENABLED(CONFIG_ARCH_ARM) && !IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
#error "the firmware example on Cortex-M needs the libc facade (CONFIG_MM_MALLOC_LIBC)"
#endif

/* The C allocator: mm's through the libc facade where it is built. */
#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
#define app_realloc(p, n)	realloc(p, n)
#define app_free(p)		free(p)
#else
#define app_realloc(p, n)	krealloc(p, n)
#define app_free(p)		kfree(p)
#endif

#define NR_SENSORS	4
#define NR_SAMPLES	300
#define QUEUE_MAX	40
#define REPORT_AT	(QUEUE_MAX * 3 / 4)	/* queue depth for the mid-run report */
#define FRAME_EVERY	25			/* packets per radio frame */
#define PACKET_MAGIC	0x5041434bu		/* "PACK", set by the constructor */

struct packet {
	uint32_t magic;			/* constructed state: must survive free/alloc */
	uint32_t seq;
	struct packet *next;
	char *text;			/* kmalloc'd line */
	size_t text_len;
	int32_t value;			/* filtered reading, centi-units */
	uint16_t sensor;
	uint8_t raw[18];		/* the "ADC frame", a pattern of seq */
};

static struct kmem_cache *packet_cache;
static unsigned long ctor_calls;

static unsigned int checks, failures;

static void check(int ok, const char *what)
{
	checks++;
	if (!ok) {
		failures++;
		printf("check FAILED: %s\n", what);
	}
}

/* Print a report of mm's through the output hook, after stdio's pending text. */
static void report(const char *title, struct mm_arena *a)
{
	printf("---- %s\n", title);
	fflush(stdout);
	mm_buddyinfo(a);
	mm_slabinfo(a);
}

static uint32_t rng = 12345;

static unsigned int rnd(unsigned int n)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 16) % n;
}

static void packet_ctor(void *obj)
{
	struct packet *p = obj;

	memset(p, 0, sizeof(*p));
	p->magic = PACKET_MAGIC;
	ctor_calls++;
}

static uint8_t raw_byte(uint32_t seq, unsigned int i)
{
	return (uint8_t)(seq * 31u + i * 7u + 1u);
}

/* ---- the pipeline ---------------------------------------------------- */

struct queue {
	struct packet *head, *tail;
	unsigned int len, peak;
};

static int32_t ema[NR_SENSORS];			/* smoothed value per sensor */
static const int32_t base[NR_SENSORS] = { 2150, -480, 10132, 998 };
static const char *const sensor_names[NR_SENSORS] = {
	"temp", "accel-z", "pressure", "humidity",
};

static uint32_t sum_made, sum_sent;		/* checksums of the values */
static unsigned int nr_made, nr_sent, nr_alarms;

static struct packet *acquire(uint32_t seq)
{
	struct packet *p = kmem_cache_alloc(packet_cache);
	unsigned int s = seq % NR_SENSORS;
	int32_t sample;
	int len;

	if (!p)
		return NULL;
	check(p->magic == PACKET_MAGIC, "a packet keeps its constructed state");
	check(((uintptr_t)p & (sizeof(void *) - 1)) == 0, "packets are pointer-aligned");

	p->seq = seq;
	p->sensor = (uint16_t)s;
	for (unsigned int i = 0; i < sizeof(p->raw); i++)
		p->raw[i] = raw_byte(seq, i);

	/* The filter: an exponential moving average, alpha = 1/4. */
	sample = base[s] + (int32_t)rnd(401) - 200;
	ema[s] = nr_made < NR_SENSORS ? sample : ema[s] + (sample - ema[s]) / 4;
	p->value = ema[s];

	len = snprintf(NULL, 0, "#%04lu %-8s %6ld.%02lu", (unsigned long)seq, sensor_names[s],
		       (long)(p->value / 100), (unsigned long)(labs(p->value) % 100));
	p->text = kmalloc((size_t)len + 1);
	if (!p->text) {
		kmem_cache_free(packet_cache, p);
		return NULL;
	}
	snprintf(p->text, (size_t)len + 1, "#%04lu %-8s %6ld.%02lu", (unsigned long)seq,
		 sensor_names[s], (long)(p->value / 100), (unsigned long)(labs(p->value) % 100));
	p->text_len = (size_t)len;
	check(ksize(p->text) >= (size_t)len + 1, "ksize covers the kmalloc request");

	/* Out-of-range readings get a longer line: grow it in place or move it. */
	if (s == 0 && p->value > base[0] + 60) {
		static const char alarm[] = " ALARM high";
		char *t = krealloc(p->text, p->text_len + sizeof(alarm));

		if (t) {
			memcpy(t + p->text_len, alarm, sizeof(alarm));
			p->text = t;
			p->text_len += sizeof(alarm) - 1;
			nr_alarms++;
		}
	}
	sum_made += (uint32_t)p->value;
	nr_made++;
	return p;
}

static void enqueue(struct queue *q, struct packet *p)
{
	p->next = NULL;
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	if (++q->len > q->peak)
		q->peak = q->len;
}

static struct packet *dequeue(struct queue *q)
{
	struct packet *p = q->head;

	if (p) {
		q->head = p->next;
		if (!q->head)
			q->tail = NULL;
		q->len--;
	}
	return p;
}

/* The radio's frame: lines batched into one buffer grown with realloc(). */
static char *frame;
static size_t frame_len;
static unsigned int frame_lines, nr_frames;

static void frame_add(const struct packet *p)
{
	char *f = app_realloc(frame, frame_len + p->text_len + 2);

	check(f != NULL, "the radio frame can grow");
	if (!f)
		return;
	memcpy(f + frame_len, p->text, p->text_len);
	frame_len += p->text_len;
	f[frame_len++] = '\n';
	f[frame_len] = 0;
	frame = f;
	frame_lines++;
}

static void frame_send(void)
{
	if (!frame)
		return;
	if (nr_frames < 2) {
		printf("radio frame %u: %u lines, %lu bytes:\n%s", nr_frames, frame_lines,
		       (unsigned long)frame_len, frame);
	}
	app_free(frame);
	frame = NULL;
	frame_len = 0;
	frame_lines = 0;
	nr_frames++;
}

static void transmit(struct packet *p, uint32_t expect_seq)
{
	int intact = p->magic == PACKET_MAGIC && p->seq == expect_seq;

	for (unsigned int i = 0; i < sizeof(p->raw); i++)
		intact &= p->raw[i] == raw_byte(p->seq, i);
	intact &= strlen(p->text) == p->text_len;
	check(intact, "a packet arrives intact and in order");

	frame_add(p);
	if (frame_lines == FRAME_EVERY)
		frame_send();

	sum_sent += (uint32_t)p->value;
	nr_sent++;
	kfree(p->text);
	p->text = NULL;		/* keep the constructed state: magic stays */
	kmem_cache_free(packet_cache, p);
}

/* ---- main -------------------------------------------------------------- */

int main(void)
{
	struct mm_diag start, end;
	unsigned long refused = 0;	/* requests failed on purpose */
	struct mm_arena *arena;
	struct queue q = { 0 };
	uint32_t seq = 0, next_sent = 0;
	int reported = 0;

	mm_set_output(platform_write, NULL);
	printf("mm %s firmware example on %s: %d samples from %d sensors\n",
	       MM_VERSION, platform_name, NR_SAMPLES, NR_SENSORS);
	fflush(stdout);

	if (mm_init() || !(arena = mm_default_arena())) {
		printf("mm_init failed\nfirmware: FAIL\n");
		return 1;
	}
	/*
	 * The baseline: stdio's buffers exist, no empty slab is kept, and
	 * this thread's magazines (CONFIG_MM_PERCPU_CACHE: pages of their
	 * own until the thread exits) are set up.
	 */
	kfree(kmalloc(1));
	mm_percpu_drain();
	kmem_cache_reap(arena);
	mm_arena_diag(arena, &start);
	printf("heap: %lu bytes in %lu region(s), %lu allocated at start\n",
	       (unsigned long)start.capacity, start.nr_regions, (unsigned long)start.allocated);

	packet_cache = kmem_cache_create("packet", sizeof(struct packet), 0, 0, packet_ctor);
	check(packet_cache != NULL, "kmem_cache_create(\"packet\")");
	if (!packet_cache) {
		printf("firmware: FAIL\n");
		return 1;
	}

	while (seq < NR_SAMPLES || q.len) {
		unsigned int burst = 1 + rnd(12), drain = 1 + rnd(10);

		while (burst-- && seq < NR_SAMPLES && q.len < QUEUE_MAX) {
			struct packet *p = acquire(seq);

			check(p != NULL, "a packet can be allocated");
			if (!p)
				break;
			enqueue(&q, p);
			seq++;
		}
		if (!reported && q.len >= REPORT_AT) {
			char what[48];

			snprintf(what, sizeof(what), "mm with %u packets queued", q.len);
			report(what, arena);
			reported = 1;
		}
		while (drain-- && q.len)
			transmit(dequeue(&q), next_sent++);
	}
	frame_send();

	printf("sent %u of %u packets in %u frames, %u alarms, queue peak %u, %lu constructor calls\n",
	       nr_sent, nr_made, nr_frames, nr_alarms, q.peak, ctor_calls);
	check(reported, "the queue filled up far enough for the mid-run report");
	check(nr_sent == NR_SAMPLES && nr_made == NR_SAMPLES, "every sample was sent");
	check(sum_sent == sum_made, "the values sent are the values made");
	{
		/*
		 * Once per object of each slab made: fewer calls than
		 * allocations -- or, where one slab holds more objects than
		 * the run allocates (64 KiB pages: 1023 packets a slab), a
		 * whole number of slabs' worth.
		 */
		unsigned long per_slab = 0;
#if !IS_ENABLED(CONFIG_MM_TINY) || IS_ENABLED(CONFIG_MM_STATS)
		struct kmem_cache_info info;

		kmem_cache_info(packet_cache, &info);
		per_slab = info.objs_per_slab;
#endif
		check(ctor_calls > 0 && (ctor_calls < nr_made ||
					 (per_slab && ctor_calls % per_slab == 0)),
		      "constructors ran once per object per slab, not per allocation");
	}

#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
	{
		void *p = malloc(40);

		check(p && ksize(p) >= 40, "malloc() is mm's");
		free(p);
	}
#endif
#if IS_ENABLED(CONFIG_MM_NEWLIB_REENT_ERRNO) && defined(__NEWLIB__)
	{
		/* newlib's _r forms tell a failure in the struct _reent given. */
		static struct _reent other;
		struct mm_diag d0, d1;
		void *p = malloc(8);

		mm_arena_diag(arena, &d0);
		check(!_malloc_r(&other, SIZE_MAX) && other._errno == ENOMEM,
		      "_malloc_r() sets the errno of the struct _reent it is given");
		other._errno = 0;
		check(!_calloc_r(&other, SIZE_MAX, 2) && other._errno == ENOMEM,
		      "_calloc_r() sets it on overflow");
		other._errno = 0;
		check(p && !_realloc_r(&other, p, SIZE_MAX) && other._errno == ENOMEM,
		      "_realloc_r() sets it, the block kept");
		other._errno = 0;
		check(!_memalign_r(&other, 8, SIZE_MAX) && other._errno == ENOMEM,
		      "_memalign_r() sets it");
		mm_arena_diag(arena, &d1);
		refused = d1.oom_count - d0.oom_count;	/* these, not the queue's */
		free(p);
	}
#endif
#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC) && IS_ENABLED(CONFIG_MM_MALLOC_EXTRAS)
	{
		/*
		 * The extras are mm's too -- on newlib, one of them missing
		 * linked newlib's allocator in beside mm's, and the link failed.
		 */
		void *v = valloc(100), *pv = pvalloc(5000);

		check(v && ((uintptr_t)v & 4095) == 0 && ksize(v) >= 100,
		      "valloc() is mm's, page-aligned");
		check(pv && ((uintptr_t)pv & 4095) == 0 && ksize(pv) >= 8192,
		      "pvalloc() is mm's, in whole pages");
#ifdef __NEWLIB__
		{
			struct mallinfo mi = mallinfo();

			check(mi.arena && mi.uordblks >= 8192 + 100 && mi.uordblks <= mi.arena,
			      "mallinfo() counts mm's arena");
			check(mallopt(1, 0) == 0, "mallopt() tunes nothing (Kconfig does)");
		}
#endif
		free(pv);
		free(v);
		malloc_trim(0);
#ifdef __NEWLIB__
		printf("extras from mm: valloc, pvalloc, malloc_trim, mallinfo, mallopt\n");
#else
		printf("extras from mm: valloc, pvalloc, malloc_trim\n");
#endif
	}
#endif

	check(kmem_cache_destroy(packet_cache) == 0, "kmem_cache_destroy: no packet left behind");
	fflush(stdout);
	mm_percpu_drain();
	kmem_cache_reap(arena);
	report("mm after the queue drained", arena);

	mm_arena_diag(arena, &end);
	printf("heap: %lu bytes allocated at the end, %lu at start; peak %lu\n",
	       (unsigned long)end.allocated, (unsigned long)start.allocated,
	       (unsigned long)end.peak_allocated);
	check(end.allocated == start.allocated, "nothing lost: every page came back");
#if IS_ENABLED(CONFIG_MM_VALIDATE)
	check(mm_arena_validate(arena) == 0, "mm_arena_validate");
#endif
	check(end.error_count == 0 && end.oom_count == refused, "mm saw no misuse and never ran out");
	failures += (unsigned int)platform_checks();
#ifdef FIRMWARE_FORCE_FAIL
	/* A build that must fail: proves a failure reaches the exit status. */
	check(0, "FIRMWARE_FORCE_FAIL is defined");
#endif

	printf("%s: %u checks, %u failed\nfirmware: %s\n",
	       failures ? "not everything held" : "nothing lost", checks, failures,
	       failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
