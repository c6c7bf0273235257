// SPDX-License-Identifier: MIT
/*
 * kmalloc: general-purpose allocation from size classes.
 *
 * Requests up to KMALLOC_MAX_CACHE_SIZE go to the slab cache of the
 * smallest class that holds them: powers of two from KMALLOC_MIN_SIZE,
 * plus 96 and 192 (Linux's two extra classes, which cut the waste between
 * 64 and 256 bytes).  Sizes up to 192 find their class through a table
 * indexed by (size - 1) / 8, larger ones by one bit scan.  Power-of-two
 * classes are naturally aligned (a 512-byte object is 512-aligned), which
 * serves aligned allocation without a separate mechanism.
 *
 * With CONFIG_MM_KMALLOC_FINE, three classes inside every doubling from 64
 * bytes up (5/4, 6/4 and 7/4 of the power of two: 80, 96, 112, 160, 192,
 * 224, 320, ...) join them, as jemalloc's quarter steps: with powers of
 * two alone a request of random size wastes a third of its object on
 * average, with Linux's 96 and 192 still 13% between 16 bytes and 1 KiB,
 * with quarter steps 9% -- against glibc's 6% (an 8-byte header, 16-byte
 * granules).  From 512 bytes to 4 KiB, where an object is a large part of
 * its slab, the four classes of each doubling are instead sized to fill
 * small slabs (kmalloc_fine[] below).  Sizes up to 4 KiB find their class
 * through the first table; every class above is a multiple of 128, so
 * larger sizes find theirs through a second one, indexed by
 * (size - 1) / 128.  The fine classes are not naturally aligned (16 bytes
 * at least); kmalloc_aligned() uses the powers of two only.
 *
 * With CONFIG_MM_HEAP (hosts), the classes above CONFIG_MM_HEAP_MIN get no
 * cache: their sizes, and larger ones up to CONFIG_MM_HEAP_MAX_KB, are
 * blocks of the heap (heap.c), exact to 16 bytes, merged when freed and
 * cut in place by krealloc() -- what a slab cannot do with an object whose
 * pointer must stay.  The heap's spans carry a class byte of their own, so
 * the inline paths below tell a heap block from a slab object as cheaply
 * as before, and the slow paths send it to the heap.
 *
 * The classes kept below CONFIG_MM_HEAP_MIN but all above
 * CONFIG_MM_HEAP_SPILL_MIN spill into the heap: once a class's slabs hold
 * CONFIG_MM_HEAP_SPILL_KB and none has a free object, a request takes a
 * heap block of the size asked instead of a new slab (kmalloc_spill()).
 * A class's working set keeps its magazines and slabs, and the speed that
 * made it a class; a large population -- where class rounding and the
 * free slots of partial slabs add up to megabytes -- goes where freed
 * memory merges and serves every size.  A freed heap block never enters
 * a magazine (its class byte is the heap's), so the class drifts back to
 * its slabs as their objects are freed and reused first.
 *
 * Larger requests take exactly the pages asked for -- or one more, rather
 * than leave a single free page behind (page_alloc.c, exact_end()) --
 * from the best-fitting run of free pages or from a buddy block cut down
 * (page_alloc.c, __alloc_exact): the first piece is marked LARGE in the page metadata
 * and the others LARGE_CONT, so kfree() needs no size.  A class that no small slab suits
 * (CONFIG_MM_SLAB_MAX_ORDER) is served the same way.  Beyond the largest
 * block, on hosts with the mmap backend, a direct mapping with a one-page
 * header, tracked on a list (such blocks are few and each is at least
 * MM_MAX_BLOCK big).
 *
 * kfree() finds everything from the pointer alone: the page metadata names
 * the block, the block's head names the slab, the slab names the cache.
 */
#include <string.h>
#include "kmalloc.h"

#define KMALLOC_SHIFT_LOW	CONFIG_MM_KMALLOC_SHIFT_LOW
#define KMALLOC_SHIFT_HIGH	CONFIG_MM_KMALLOC_SHIFT_HIGH
#define HAS_96_192		IS_ENABLED(CONFIG_MM_KMALLOC_96_192)

/*
 * kmalloc_caches[i]: 2^i bytes for i in [SHIFT_LOW, SHIFT_HIGH]; [1] is 96
 * and [2] is 192 when those classes exist; the fine classes follow
 * SHIFT_HIGH (slab.h).
 */
#if IS_ENABLED(CONFIG_MM_PAGE_CLASS)
/*
 * What kmalloc_caches[] names for the class bytes past the classes, the
 * heap's and a page of fresh objects (slab.h): a cache of no objects,
 * never used for allocation, whose magazines have capacity 0, so that
 * kfree()'s inline path sends such a pointer the slow way.
 */
static struct kmem_cache kmalloc_no_cache = {
	.name = "kmalloc-none",
	.slab_mask = ~(uintptr_t)0,
	.kmalloc_idx = KMALLOC_HEAP_CLASS,
};
#endif

struct kmem_cache *kmalloc_caches[KMALLOC_NR_CLASS_BYTES] = {
#if IS_ENABLED(CONFIG_MM_PAGE_CLASS)
	[KMALLOC_HEAP_CLASS] = &kmalloc_no_cache,
	[KMALLOC_FRESH_CLASS] = &kmalloc_no_cache,
#endif
};
uint8_t kmalloc_size_index[KMALLOC_SMALL_MAX / 8];	/* (size - 1) / 8 -> class */
/* (size - 1) / 128 -> class, above KMALLOC_SMALL_MAX; one byte where the fine classes are off */
uint8_t kmalloc_size_index_hi[IS_ENABLED(CONFIG_MM_KMALLOC_FINE) ? KMALLOC_MAX_CACHE_SIZE >> 7 : 1];
static int kmalloc_ready;

static const char *const kmalloc_names[] = {
	[1] = "kmalloc-96", [2] = "kmalloc-192",
	[3] = "kmalloc-8", [4] = "kmalloc-16", [5] = "kmalloc-32",
	[6] = "kmalloc-64", [7] = "kmalloc-128", [8] = "kmalloc-256",
	[9] = "kmalloc-512", [10] = "kmalloc-1k", [11] = "kmalloc-2k",
	[12] = "kmalloc-4k", [13] = "kmalloc-8k", [14] = "kmalloc-16k",
	[15] = "kmalloc-32k", [16] = "kmalloc-64k",
};

/*
 * The fine classes up to 4 KiB.  From 512 bytes up, four to a doubling,
 * each the largest multiple of 16 of which a slab of one page, 8 or 16 KiB
 * holds a whole number beside the slab's header (2032 = (8192 - 48) / 4,
 * rounded down; the counts below are for 4 KiB pages and 64-bit headers,
 * and slab.c picks the order).  The quarter steps there (640, 768, ...,
 * 3584) left up to an eighth of their slab to a tail no object fits in,
 * and so did the powers of two, whose header takes the place of an object
 * (one of 8 in a 16 KiB slab of 2048): those now hold only the sizes that
 * round up to them, the last 16 bytes below.  And the slabs are small: a class's
 * population wanders, and a slab keeps its pages until its last object
 * goes, so one of 4 KiB strands less than one of 16 or 32 (the quarter
 * steps from 512 to 1024 had 16-32 KiB slabs to meet the 1/32 waste bound
 * of slab.c).  On bench/'s mixed workload, where these sizes carry most of
 * the bytes, the anonymous memory at its peak went down by 6 % (Round 11
 * in bench/README.md).  test_kmalloc.c checks the fit.
 */
#define KMALLOC_FINE_4K(X)							\
	X(80) X(112) X(160) X(224)	/* 5/4 and 7/4 of 64 and 128 (6/4: 96, 192) */ \
	X(320) X(384) X(448)		/* 5/4, 6/4 and 7/4 of 256 */		\
	X(576) X(672) X(800) X(1008)	/* 7, 6, 5 and 4 on a page */		\
	X(1152) X(1344) X(1616) X(2032)	/* 7 in 8 KiB, 3 on a page, 5 and 4 in 8 KiB */ \
	X(2320) X(2704) X(3264) X(4064)	/* 7 in 16, 3 in 8, 5 in 16, 2 in 8 KiB */
#define FINE_ENTRY(size)	size,
static const unsigned short kmalloc_fine[] = { KMALLOC_FINE_4K(FINE_ENTRY) };
static_assert(ARRAY_SIZE(kmalloc_fine) == KMALLOC_NR_FINE_4K, "slab.h counts them");

#if IS_ENABLED(CONFIG_MM_HEAP)
/*
 * A class that holds sizes on both sides of CONFIG_MM_HEAP_MIN, or of
 * CONFIG_MM_HEAP_MAX_KB, keeps them all (kmalloc_init()): the heap serves
 * from the least class at or above HEAP_MIN to the greatest at or below
 * HEAP_MAX -- to HEAP_MAX itself where no class is larger.  Where those
 * are one class, the heap was built, and a span's worth of code and
 * tests, for no size at all (HEAP_MIN=1021 with HEAP_MAX_KB=1:
 * kmalloc-1024 holds 1021 to 1024).  Counted here, where the classes are
 * known: the powers of two, the fine ones up to 4 KiB and their quarter
 * steps above (96 and 192 lie below the least MM_HEAP_MIN, 256).  A class
 * no slab suits has no cache and leaves its sizes to the heap; that
 * depends on the slab header, and is not counted.
 */
#define __stringify_1(x)	#x
#define __stringify(x)		__stringify_1(x)
#define CLASS_IN_HEAP(size)						\
	((size) >= HEAP_MIN && (size) <= HEAP_MAX && (size) <= KMALLOC_MAX_CACHE_SIZE)
#define FINE_IN_HEAP(size)	+ CLASS_IN_HEAP(size)
#define STEPS_IN_HEAP(shift)	(CLASS_IN_HEAP(5 << ((shift) - 2)) +		\
				 CLASS_IN_HEAP(6 << ((shift) - 2)) +		\
				 CLASS_IN_HEAP(7 << ((shift) - 2)))
#define POW2_IN_HEAP(shift)	CLASS_IN_HEAP((size_t)1 << (shift))
static_assert(KMALLOC_MAX_CACHE_SIZE < HEAP_MAX ||
	      POW2_IN_HEAP(8) + POW2_IN_HEAP(9) + POW2_IN_HEAP(10) + POW2_IN_HEAP(11) +
	      POW2_IN_HEAP(12) + POW2_IN_HEAP(13) + POW2_IN_HEAP(14) + POW2_IN_HEAP(15) +
	      POW2_IN_HEAP(16) +
	      (IS_ENABLED(CONFIG_MM_KMALLOC_FINE) ?
	       0 KMALLOC_FINE_4K(FINE_IN_HEAP) + STEPS_IN_HEAP(12) + STEPS_IN_HEAP(13) +
	       STEPS_IN_HEAP(14) + STEPS_IN_HEAP(15) : 0) >= 2,
	      "CONFIG_MM_HEAP_MIN=" __stringify(CONFIG_MM_HEAP_MIN) " and CONFIG_MM_HEAP_MAX_KB="
	      __stringify(CONFIG_MM_HEAP_MAX_KB) ": the kmalloc classes that hold sizes on both"
	      " sides of them keep those sizes, and leave the heap none: lower MM_HEAP_MIN to a"
	      " class size (a power of two) or raise MM_HEAP_MAX_KB past the next class, or turn"
	      " MM_HEAP off");
#endif

/* Fine classes up to 64 KiB, the largest CONFIG_MM_KMALLOC_SHIFT_HIGH allows. */
static const char *const kmalloc_fine_names[] = {
	"kmalloc-80", "kmalloc-112", "kmalloc-160", "kmalloc-224",
	"kmalloc-320", "kmalloc-384", "kmalloc-448",
	"kmalloc-576", "kmalloc-672", "kmalloc-800", "kmalloc-1008",
	"kmalloc-1152", "kmalloc-1344", "kmalloc-1616", "kmalloc-2032",
	"kmalloc-2320", "kmalloc-2704", "kmalloc-3264", "kmalloc-4064",
	"kmalloc-5120", "kmalloc-6144",
	"kmalloc-7168", "kmalloc-10240", "kmalloc-12288", "kmalloc-14336",
	"kmalloc-20480", "kmalloc-24576", "kmalloc-28672", "kmalloc-40960",
	"kmalloc-49152", "kmalloc-57344",
};
static_assert(KMALLOC_NR_FINE <= ARRAY_SIZE(kmalloc_fine_names), "a fine class without a name");

/* Bytes of class i, any size; 0 where i is no size in this configuration. */
static size_t __class_size(unsigned int i)
{
	unsigned int f;

	if (i == 1 || i == 2)
		return HAS_96_192 ? 96 * i : 0;
	if (i <= KMALLOC_SHIFT_HIGH)
		return i >= KMALLOC_SHIFT_LOW ? (size_t)1 << i : 0;
	f = i - KMALLOC_SHIFT_HIGH - 1;
	if (f < ARRAY_SIZE(kmalloc_fine))
		return kmalloc_fine[f];
	f -= ARRAY_SIZE(kmalloc_fine);	/* 5/4, 6/4 and 7/4 of 4 KiB, of 8 KiB, ... */
	return (size_t)(5 + f % 3) << (12 + f / 3 - 2);
}

/*
 * Bytes of class i; 0 for an index that is no class in this configuration
 * -- nor for 80, 96 and 112 when the smallest class is 128: no size maps
 * to them (class_for()), and a cache of theirs cost a descriptor, a line
 * in slabinfo and a slot in every thread's cache for nothing.
 */
static size_t class_size(unsigned int i)
{
	size_t size = __class_size(i);

	return size >= KMALLOC_MIN_SIZE ? size : 0;
}

static const char *class_name(unsigned int i)
{
	return i <= KMALLOC_SHIFT_HIGH ? kmalloc_names[i]
				       : kmalloc_fine_names[i - KMALLOC_SHIFT_HIGH - 1];
}

/* The smallest class of at least 'size' bytes (up to the largest class). */
static unsigned int class_for(size_t size)
{
	unsigned int best = KMALLOC_SHIFT_HIGH;

	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		size_t cs = class_size(i);

		if (cs >= size && cs < class_size(best))
			best = i;
	}
	return best;
}

/* The natural alignment of the class of 'size' bytes: its lowest set bit. */
static size_t class_align(size_t size)
{
	size_t cs = class_size(class_for(size));

	return cs & -cs;
}

/* The largest class below 'size' bytes (0 if none): a class holds (floor, size]. */
static size_t class_floor(size_t size)
{
	size_t best = 0;

	for (unsigned int i = 1; i < KMALLOC_NR_CLASSES; i++) {
		size_t cs = class_size(i);

		if (cs < size && cs > best)
			best = cs;
	}
	return best;
}

/*
 * Does the class of 'size' spill into the heap (CONFIG_MM_HEAP_SPILL_KB)?
 * Every size of it must be above CONFIG_MM_HEAP_SPILL_MIN.
 */
static int class_spills(size_t size)
{
	return IS_ENABLED(CONFIG_MM_HEAP) && SPILL_BYTES != 0 &&
	       class_floor(size) >= SPILL_MIN;
}

/* The slabs a spilling class holds before it takes heap blocks: one at least. */
static unsigned long spill_slabs(const struct kmem_cache *c)
{
	return max_t(unsigned long, 1, SPILL_BYTES >> (MM_PAGE_SHIFT + c->order));
}

/*
 * Held across fork(): the setup holds it while it takes the arena lock for
 * each class, and a child that inherited it held (a fork while another
 * thread made the first kmalloc()) waited for ever at its own first.
 */
static mm_lock_t init_lock = MM_LOCK_INIT;

__attribute__((constructor)) static void init_lock_register(void)
{
	__mm_fork_lock(&init_lock, MM_FORK_INIT);
}

static __noinline int kmalloc_init(void)
{
	struct mm_arena *a = mm_default_arena();
	mm_flags_t flags;
	int ok = 1;

	if (!a)
		return 0;
	flags = mm_lock(&init_lock);
	if (!kmalloc_ready) {
		/* Read meanwhile by other threads' inline paths (kmalloc.h). */
		for (unsigned int s = 8; s <= KMALLOC_SMALL_MAX; s += 8)
			__atomic_store_n(&kmalloc_size_index[(s - 1) / 8], (uint8_t)class_for(s),
					 __ATOMIC_RELAXED);
		for (size_t s = 128; IS_ENABLED(CONFIG_MM_KMALLOC_FINE) &&
				     s <= KMALLOC_MAX_CACHE_SIZE; s += 128)
			__atomic_store_n(&kmalloc_size_index_hi[(s - 1) / 128], (uint8_t)class_for(s),
					 __ATOMIC_RELAXED);
		for (unsigned int i = 1; i < KMALLOC_NR_CLASSES && ok; i++) {
			size_t size = class_size(i), align;
			struct kmem_cache *c;

			/*
			 * No cache for a class whose every size the heap
			 * serves (heap.c); one that straddles CONFIG_MM_HEAP_MIN
			 * keeps its cache and serves its sizes itself.
			 */
			if (!size || (heap_serves(size) && heap_serves(class_floor(size) + 1)))
				continue;
			/* Natural alignment for powers of two, 32/64 for 96/192. */
			align = size & -size;
			/*
			 * NULL for a class no small slab suits (large objects
			 * on small pages): kmalloc serves it with buddy blocks.
			 */
			c = kmem_cache_create_arena(a, class_name(i), size, align,
						    SLAB_KMALLOC, NULL);
			if (c) {
				c->kmalloc_idx = (uint8_t)i;
				c->mag_cap = (uint8_t)percpu_mag_cap(c);
				c->mag_refill = (uint8_t)percpu_mag_refill(c);
				if (class_spills(size))
					c->spill_slabs = spill_slabs(c);
			}
			/*
			 * Published whole: other threads' first kmalloc() reads
			 * the pointer without the lock (a weakly ordered CPU
			 * could otherwise see it before the fields above).
			 */
			__atomic_store_n(&kmalloc_caches[i], c, __ATOMIC_RELEASE);
		}
		ok = kmalloc_caches[KMALLOC_SHIFT_LOW] != NULL;
		if (ok)
			percpu_init();
		__atomic_store_n(&kmalloc_ready, ok, __ATOMIC_RELEASE);
	}
	mm_unlock(&init_lock, flags);
	return ok;
}

struct kmem_cache *kmalloc_cache_index(unsigned int i)
{
	return i < KMALLOC_NR_CLASSES ? kmalloc_caches[i] : NULL;
}

struct kmem_cache *kmalloc_slab(size_t size)
{
	if (size > KMALLOC_MAX_CACHE_SIZE)
		return NULL;
	if (unlikely(!__atomic_load_n(&kmalloc_ready, __ATOMIC_ACQUIRE)) && !kmalloc_init())
		return NULL;
	return kmalloc_cache(size ? size : 1);	/* NULL where the heap serves */
}

/* ---- Direct mappings beyond the largest buddy block ------------------- */

#if IS_ENABLED(CONFIG_MM_BACKEND_MMAP)
struct huge_block {
	struct huge_block *next, *prev;
	void *map;			/* what the backend returned */
	size_t map_len;
	void *ptr;			/* what the caller got */
};

static struct huge_block huge_list = { .next = &huge_list, .prev = &huge_list };
/* The mappings in use and their bytes, now and at most (malloc_stats()). */
static struct huge_count {
	size_t nr, bytes;
} huge_now, huge_max;
static struct mm_backend_mmap huge_backend;
static mm_lock_t huge_lock = MM_LOCK_INIT;

/*
 * fork() holds huge_lock across the call (arena.c) from before any thread
 * can take it: registered at the first direct mapping, it was unprotected
 * until then, and a fork while another thread held it for malloc_trim()
 * or a bad free left the child a lock that nobody would release.
 */
__attribute__((constructor)) static void huge_lock_register(void)
{
	__mm_fork_lock(&huge_lock, MM_FORK_HUGE);
}

/*
 * Freed direct mappings are kept for the next requests they hold without
 * wasting half -- up to HUGE_CACHE_SLOTS, each of at most HUGE_CACHE_MAX
 * bytes, twice that in all.  Kept, a program taking and freeing an 8 MiB
 * buffer in a loop costs no system call; unkept, it mapped, faulted in
 * and unmapped 2048 pages every time, a hundred times glibc's time (one
 * of two buffers, 6 and 10 MiB, twenty times with a single slot).
 *
 * But kept for good, every program that took one big block -- a file read
 * whole, a string built once -- held its pages to the end: a Python
 * script that built and dropped a 5 MB string ended with 10.9 MiB
 * anonymous where glibc has 5.6 (glibc gives back the first such block
 * and raises its mmap threshold to keep the next ones).  So until the
 * program shows that it takes such blocks again, what is kept is on
 * probation: a request it holds (reuse) ends the probation for good, and
 * HUGE_PROBATION refills or flushes of any thread's magazines without one
 * unmap it -- the program went on to take or give back small blocks by
 * the batch.  Few: a program that takes the block again after some work
 * loses it once, and the size remembered (below) then ends the
 * probation.  A program that does neither -- nothing, heap blocks only,
 * or small blocks its magazines absorb -- keeps the block meanwhile.
 * With no magazines compiled in, a block is unmapped at its free until a
 * reuse is seen.  Either way the last sizes unmapped are remembered
 * (huge_gone), and a request one of them would have held also ends the
 * probation.  malloc_trim() unmaps everything kept and starts a
 * probation again.  A request none of the kept ones holds unmaps those
 * smaller than it: they would serve nothing it leaves, and the new
 * mapping takes their place in memory.
 *
 * Both lists remember the block each mapping held, so a second free of a
 * block is known to be one while either still names it.
 */
#define HUGE_CACHE_MAX		((size_t)32 << 20)
#define HUGE_CACHE_SLOTS	4
#define HUGE_PROBATION		16
struct huge_cached {
	void *map;
	size_t len;
	const void *ptr;		/* the block it held: freed twice, it is known */
};
static struct huge_cached huge_cache[HUGE_CACHE_SLOTS];	/* newest first, the used ones */
static unsigned int huge_cached;
static struct huge_cached huge_gone[HUGE_CACHE_SLOTS];	/* unmapped: len and ptr only */
static unsigned int huge_gone_next;
static int huge_keep;					/* a reuse was seen */
MM_INTERNAL unsigned int kmalloc_huge_probation;	/* ticks left; written under the lock */

/* A mapping of 'len' bytes came (n 1), went (n -1) or changed size (n 0). */
static void huge_count(int n, ptrdiff_t len)
{
	huge_now.nr += (size_t)n;		/* -1 wraps to one less */
	huge_now.bytes += (size_t)len;
	huge_max.nr = max_t(size_t, huge_max.nr, huge_now.nr);
	huge_max.bytes = max_t(size_t, huge_max.bytes, huge_now.bytes);
}

/* Would a mapping of l bytes hold a request of len without wasting half? */
static inline int huge_fits(size_t l, size_t len)
{
	return l >= len && l / 2 < len;
}

static inline void huge_set_probation(unsigned int ticks)
{
	__atomic_store_n(&kmalloc_huge_probation, ticks, __ATOMIC_RELAXED);
}

/* Reuse seen: keep freed mappings from now on. */
static inline void huge_end_probation(void)
{
	huge_keep = 1;
	huge_set_probation(0);
}

/* Slot i's mapping out of the cache (not unmapped); lock held. */
static struct huge_cached huge_cache_take(unsigned int i)
{
	struct huge_cached c = huge_cache[i];

	huge_cached--;
	memmove(&huge_cache[i], &huge_cache[i + 1], (huge_cached - i) * sizeof(c));
	return c;
}

/* Unmap a freed mapping, remembering its size and block: 0, or -1.  Lock held. */
static int huge_unmap(void *map, size_t len, const void *ptr)
{
	if (mm_backend_release(&huge_backend.be, map, len))
		return -1;
	huge_gone[huge_gone_next].len = len;
	huge_gone[huge_gone_next].ptr = ptr;
	huge_gone_next = (huge_gone_next + 1) % HUGE_CACHE_SLOTS;
	return 0;
}

/* Unmap the cached mappings of fewer than 'below' bytes; their bytes. */
static size_t huge_cache_drop(size_t below)
{
	size_t done = 0;

	for (unsigned int i = huge_cached; i-- > 0;) {
		/* One the system would not unmap stays kept, not lost. */
		if (huge_cache[i].len < below &&
		    huge_unmap(huge_cache[i].map, huge_cache[i].len, huge_cache[i].ptr) == 0) {
			done += huge_cache[i].len;
			huge_cache_take(i);
		}
	}
	return done;
}

/*
 * Keep [map, map + len), freed, newest first: the oldest go past the
 * slots or the bytes; a probation starts if no reuse was seen.  Unmapped
 * instead if too large, or if there is no probation to age it.  Lock held.
 */
static void huge_cache_put(void *map, size_t len, const void *ptr)
{
	size_t total = len;
	unsigned int n = 1;

	if (len > HUGE_CACHE_MAX || (!huge_keep && !IS_ENABLED(CONFIG_MM_PERCPU_CACHE))) {
		huge_unmap(map, len, ptr);
		return;
	}
	for (; n <= huge_cached && n < HUGE_CACHE_SLOTS; n++) {
		if (total + huge_cache[n - 1].len > 2 * HUGE_CACHE_MAX)
			break;
		total += huge_cache[n - 1].len;
	}
	while (huge_cached >= n) {
		struct huge_cached c = huge_cache_take(huge_cached - 1);

		huge_unmap(c.map, c.len, c.ptr);
	}
	memmove(&huge_cache[1], &huge_cache[0], huge_cached * sizeof(huge_cache[0]));
	huge_cache[0].map = map;
	huge_cache[0].len = len;
	huge_cache[0].ptr = ptr;
	huge_cached++;
	if (!huge_keep)
		huge_set_probation(HUGE_PROBATION);
}

#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
/* A refill or a flush while mappings are kept on probation. */
void __kmalloc_huge_age(void)
{
	mm_flags_t flags = mm_lock(&huge_lock);
	unsigned int left = __atomic_load_n(&kmalloc_huge_probation, __ATOMIC_RELAXED);

	if (left && !huge_keep) {
		huge_set_probation(left - 1);
		if (left == 1)
			huge_cache_drop(SIZE_MAX);
	}
	mm_unlock(&huge_lock, flags);
}
#endif

/* Was p a direct mapping's block, freed (its mapping kept or not)? */
static int huge_was_freed(const void *p)
{
	mm_flags_t flags = mm_lock(&huge_lock);
	int found = 0;

	for (unsigned int i = 0; i < HUGE_CACHE_SLOTS; i++)
		found |= (i < huge_cached && huge_cache[i].ptr == p) || huge_gone[i].ptr == p;
	mm_unlock(&huge_lock, flags);
	return found;
}

/*
 * The cached mapping that best holds 'len' bytes, or -1.  Either that or
 * a size given back that would have held it is a reuse.
 */
static int huge_cache_find(size_t len)
{
	int best = -1;

	for (unsigned int i = 0; i < huge_cached; i++) {
		size_t l = huge_cache[i].len;

		if (huge_fits(l, len) && (best < 0 || l < huge_cache[best].len))
			best = (int)i;
	}
	for (unsigned int i = 0; !huge_keep && i < HUGE_CACHE_SLOTS; i++) {
		if (best >= 0 || huge_fits(huge_gone[i].len, len))
			huge_end_probation();
	}
	return best;
}

/*
 * Lay a huge block for 'size' bytes aligned to 'head' over the mapping
 * [map, map + len), lock held: its pointer, or NULL if it does not fit.
 * The pointer is the first 'head' boundary at least a page in: map + head
 * when the mapping is aligned to it (a new one is, up to MM_MAX_BLOCK).
 */
static void *huge_link(void *map, size_t len, size_t size, size_t head)
{
	char *ptr = (char *)ALIGN((uintptr_t)map + MM_PAGE_SIZE, head);
	struct huge_block *h = (struct huge_block *)(void *)ptr - 1;

	if (ptr + size > (char *)map + len || ptr + size < ptr)
		return NULL;
	h->map = map;
	h->map_len = len;
	h->ptr = ptr;
	h->next = huge_list.next;
	h->prev = &huge_list;
	huge_list.next->prev = h;
	huge_list.next = h;
	huge_count(1, (ptrdiff_t)len);
	return ptr;
}

static void *huge_alloc(size_t size, size_t align)
{
	size_t head = max_t(size_t, MM_PAGE_SIZE, align);
	size_t len, got;
	mm_flags_t flags;
	void *map, *ptr = NULL;
	int i;

	if (size > SIZE_MAX / 4 || align > SIZE_MAX / 4)
		return NULL;
	/*
	 * At least one page after the pointer: a block of 0 bytes aligned to
	 * its mapping would otherwise point at the mapping's end, with a
	 * usable size of 0 that realloc() takes for a bad pointer.
	 */
	len = ALIGN(size ? size : 1, MM_PAGE_SIZE) + head;
	flags = mm_lock(&huge_lock);
	if (!huge_backend.be.grow) {
		mm_backend_mmap_init(&huge_backend, 0);
		/*
		 * Not MAP_NORESERVE: a direct mapping is the size the program
		 * asked for, and the kernel's overcommit check must be able to
		 * refuse an absurd one (malloc(64 TiB) succeeded, and the
		 * program was killed when it used it, where glibc says ENOMEM).
		 */
		huge_backend.commit = 1;
	}
	i = huge_cache_find(len);
	if (i >= 0) {
		ptr = huge_link(huge_cache[i].map, huge_cache[i].len, size, head);
		if (ptr)
			huge_cache_take((unsigned int)i);
	}
	if (!ptr) {
		huge_cache_drop(len);
		map = mm_backend_grow(&huge_backend.be, len, len, &got);
		if (map)
			ptr = huge_link(map, got, size, head);
	}
	mm_unlock(&huge_lock, flags);
	return ptr;
}

/* The huge block at p, or NULL. */
static struct huge_block *huge_find(const void *p)
{
	for (struct huge_block *h = huge_list.next; h != &huge_list; h = h->next) {
		if (h->ptr == p)
			return h;
	}
	return NULL;
}

static int huge_free(const void *p)
{
	mm_flags_t flags = mm_lock(&huge_lock);
	struct huge_block *h = huge_find(p);

	if (h) {
		void *map = h->map;
		size_t len = h->map_len;

		h->prev->next = h->next;
		h->next->prev = h->prev;
		huge_count(-1, -(ptrdiff_t)len);
		huge_cache_put(map, len, p);
	}
	mm_unlock(&huge_lock, flags);
	return h ? 0 : -1;
}

/*
 * The direct mapping at p resized for 'size' bytes, moved by the kernel
 * if it must be, without a copy (glibc's realloc of a mapped chunk does
 * the same): the new pointer, or NULL if p is no direct mapping or the
 * system refuses.
 */
static void *huge_resize(const void *p, size_t size)
{
	mm_flags_t flags = mm_lock(&huge_lock);
	struct huge_block *h = huge_find(p);
	void *ptr = NULL;

	if (h && size <= SIZE_MAX / 4) {
		size_t off = (size_t)((char *)p - (char *)h->map);
		size_t len = off + ALIGN(size, MM_PAGE_SIZE), old = h->map_len;
		char *map = mm_backend_mmap_remap(&huge_backend, h->map, old, len);

		if (map) {
			huge_count(0, (ptrdiff_t)len - (ptrdiff_t)old);	/* h may be gone */
			/* The header moved with the mapping: its neighbours' links did not. */
			h = (struct huge_block *)(void *)(map + off) - 1;
			h->map = map;
			h->map_len = len;
			h->ptr = ptr = map + off;
			h->prev->next = h;
			h->next->prev = h;
		}
	}
	mm_unlock(&huge_lock, flags);
	return ptr;
}

/* Unmap the direct mappings kept, and start a probation again; their bytes. */
size_t __kmalloc_trim_huge(void)
{
	mm_flags_t flags = mm_lock(&huge_lock);
	size_t len = huge_cache_drop(SIZE_MAX);

	/* Learn again: forget the sizes, not the blocks (double frees). */
	for (unsigned int i = 0; i < HUGE_CACHE_SLOTS; i++)
		huge_gone[i].len = 0;
	huge_keep = 0;
	huge_set_probation(0);
	mm_unlock(&huge_lock, flags);
	return len;
}

/*
 * The direct mappings in use and their bytes (mallinfo2()'s hblks,
 * hblkhd), and the most there have been (malloc_stats()'s max mmap).
 */
void __kmalloc_huge_stats(size_t *nr, size_t *bytes, size_t *max_nr, size_t *max_bytes)
{
	mm_flags_t flags = mm_lock(&huge_lock);

	*nr = huge_now.nr;
	*bytes = huge_now.bytes;
	*max_nr = huge_max.nr;
	*max_bytes = huge_max.bytes;
	mm_unlock(&huge_lock, flags);
}

static size_t huge_size(const void *p)
{
	mm_flags_t flags = mm_lock(&huge_lock);
	struct huge_block *h = huge_find(p);
	size_t n = h ? h->map_len - (size_t)((char *)p - (char *)h->map) : 0;

	mm_unlock(&huge_lock, flags);
	return n;
}

/* kzalloc() of direct mapping p: a new one reads zero already, a reused one not. */
static void huge_zero(void *p, size_t len)
{
	mm_backend_zero(&huge_backend.be, p, len);
}
#else
static void *huge_alloc(size_t size, size_t align) { return NULL; }
static int huge_free(const void *p) { return -1; }
static int huge_was_freed(const void *p) { return 0; }
static void *huge_resize(const void *p, size_t size) { return NULL; }
static size_t huge_size(const void *p) { return 0; }
static void huge_zero(void *p, size_t len) { memset(p, 0, len); }
size_t __kmalloc_trim_huge(void) { return 0; }
void __kmalloc_huge_stats(size_t *nr, size_t *bytes, size_t *max_nr, size_t *max_bytes)
{
	*nr = *bytes = *max_nr = *max_bytes = 0;
}
#endif

/* ---- Allocation -------------------------------------------------------- */

static __noinline void *kmalloc_large(size_t size, size_t align)
{
	struct mm_arena *a = mm_default_arena();
	unsigned int order;
	mm_flags_t flags;
	void *p = NULL;

	if (!a)
		return NULL;
	if (size <= SIZE_MAX / 2) {
		order = get_order(max_t(size_t, size, align));
		if (order <= MM_MAX_ORDER) {
			size_t n = size ? DIV_ROUND_UP(size, MM_PAGE_SIZE) : 1;

			/* Exact pages; an alignment beyond a page from a whole block. */
			return __alloc_exact(a, n, align > MM_PAGE_SIZE ? get_order(align) : 0,
					     PT_LARGE, PT_CONT);
		}
		p = huge_alloc(size, align);
	}
	if (!p && !oom_quiet()) {
		/* An impossible size, or no mapping: a failed request all the same. */
		flags = arena_lock(a);
		a->diag.oom_count++;
		arena_unlock(a, flags);
	}
	return p;
}

/*
 * A class that spills into the heap (class_spills()), its magazine empty:
 * the magazine refilled or an object from its slabs if they have one or
 * may grow; past the bound a heap block of the size asked -- aligned to
 * that size if it is a power of two, as kmalloc() promises (and Linux),
 * else to 16 bytes as the heap's blocks are -- or a slab after all if no
 * span can be had.
 */
static __noinline void *kmalloc_spill(struct kmem_cache *c, size_t size)
{
	struct mm_arena *a = c->arena;
	mm_flags_t flags;
	void *p;

	if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
		p = percpu_alloc(c);
	} else {
		flags = arena_lock(a);
		p = __slab_alloc_bounded(c);
		arena_unlock(a, flags);
	}
	if (!p)
		p = heap_alloc(a, size, is_power_of_2(size) ? size : 0);
	return p ? p : kmem_cache_alloc(c);
}

/*
 * One try of kmalloc()'s slow path -- everything but a class whose cache
 * exists: first use, 0, heap and large sizes.  'align' is unused, for
 * alloc_or_drain()'s shape.
 */
static void *kmalloc_any(size_t size, size_t align)
{
	/* Sets everything up on first use; NULL for the heap's classes. */
	struct kmem_cache *c = kmalloc_slab(size);

	if (likely(c)) {
		if (IS_ENABLED(CONFIG_MM_HEAP) && c->spill_slabs != ~0UL)
			return kmalloc_spill(c, size);
		if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
			void *p = percpu_alloc(c);	/* refills an empty magazine */

			if (likely(p))
				return p;
		}
		return kmem_cache_alloc(c);
	}
	if (heap_serves(size)) {
		struct mm_arena *a = mm_default_arena();
		void *p = a ? heap_alloc(a, size, 0) : NULL;

		/* No span to be had: pages, if there are any. */
		if (p)
			return p;
	}
	/*
	 * Large, a class no slab suits, or no span.  A class's sizes keep
	 * its natural alignment when pages serve them: kmalloc(8192) with
	 * a largest block of 8 KiB, where kmalloc-8k has no slab, was only
	 * page-aligned.
	 */
	return kmalloc_large(size, size <= KMALLOC_MAX_CACHE_SIZE ? class_align(size) : 0);
}

/*
 * alloc(size, align), and out of memory once more with what this thread's
 * magazines held back in the slabs.  The first try is quiet (oom_quiet()):
 * the OOM hook runs and the failure is counted at the last try only, as
 * the hook is called when nothing else can serve the request (a request
 * served after the drain was counted as failed, and one that failed
 * twice, with the hook called twice).  Here, not in the arena's reclaim:
 * that runs under the lock in the midst of a refill of one of these very
 * magazines, whose slots the drain would pull from under it.  Another
 * thread's magazines are that thread's alone.
 */
static void *alloc_or_drain(void *(*alloc)(size_t, size_t), size_t size, size_t align)
{
#if IS_ENABLED(CONFIG_MM_PERCPU_CACHE)
	int quiet = mm_oom_quiet;	/* nested: pthread_setspecific()'s calloc() */
	void *p;

	mm_oom_quiet = 1;
	p = alloc(size, align);
	mm_oom_quiet = quiet;
	if (likely(p))
		return p;
	mm_percpu_drain();
#endif
	return alloc(size, align);
}

void *__kmalloc_slow(size_t size)
{
	return alloc_or_drain(kmalloc_any, size, 0);
}

void *kmalloc(size_t size)
{
	return kmalloc_fast(size, __kmalloc_slow);
}

/*
 * kzalloc(): from this size on kmalloc() returns whole pages -- a large
 * block or a direct mapping -- and their backend zeroes them
 * (mm_backend_zero()): the mmap backend clears the pages resident and has
 * the kernel drop the others, which then read zero untouched.  A calloc()
 * of memory fresh from the system, or of a table the program fills
 * sparsely, costs no resident memory until it is written, as glibc's
 * mapped chunks do (GCC turns malloc() and memset(0) into calloc(), so
 * such calls are commoner than the source says).  A calloc() of 20 MiB
 * made 20 MiB resident before.
 */
/*
 * Past the largest block a class has no slab either (a slab is a buddy
 * block) and the heap no span: with MM_MAX_ORDER=1 and classes up to
 * 64 KiB, a calloc() of 16 KiB, a direct mapping, was cleared by memset().
 */
#define KZALLOC_PAGES_MIN	min_t(size_t, max_t(size_t, HEAP_MAX, KMALLOC_MAX_CACHE_SIZE), \
				      MM_MAX_BLOCK)

void *kzalloc(size_t size)
{
	void *p = kmalloc(size);

	if (!p)
		return NULL;
	/* Only anonymous mappings know a better way (mm_backend_zero()). */
	if (!IS_ENABLED(CONFIG_MM_BACKEND_MMAP) || size <= KZALLOC_PAGES_MIN) {
		memset(p, 0, size);
	} else {
		struct mm_arena *a = mm_default_arena();
		struct mm_region *r = region_of(a, addr_to_pfn(p));

		if (r)
			mm_backend_zero(r->backend, p, ALIGN(size, MM_PAGE_SIZE));
		else
			huge_zero(p, ALIGN(size, MM_PAGE_SIZE));
	}
	return p;
}

static void *kmalloc_aligned_any(size_t size, size_t align)
{
	struct kmem_cache *c;
	size_t need;

	/*
	 * A power-of-two class at least as big as the alignment is aligned.
	 * (Bounds first: roundup_pow_of_two() of a huge size overflows.)
	 */
	if (size <= KMALLOC_MAX_CACHE_SIZE && align <= KMALLOC_MAX_CACHE_SIZE) {
		need = roundup_pow_of_two(max_t(size_t, size ? size : 1, align));
		c = kmalloc_slab(need);
		if (c)
			return kmem_cache_alloc(c);
	}
	/* Where the heap has taken the class, the heap cuts an aligned block. */
	if (IS_ENABLED(CONFIG_MM_HEAP) && size <= HEAP_MAX && align < MM_PAGE_SIZE) {
		struct mm_arena *a = mm_default_arena();
		void *p = a ? heap_alloc(a, size ? size : 1, align) : NULL;

		if (p)
			return p;
	}
	return kmalloc_large(size, align);
}

void *kmalloc_aligned(size_t size, size_t align)
{
	if (!align || (align & (align - 1)))
		return NULL;
	if (align <= sizeof(void *))
		return kmalloc(size);
	return alloc_or_drain(kmalloc_aligned_any, size, align);
}

/* ---- Freeing and sizing ------------------------------------------------ */

/*
 * A large block is a head piece (PT_LARGE) and the pieces that follow it
 * (PT_CONT), each a buddy block: the binary digits of its page count.
 * Lock held.
 */
static size_t large_pages(struct mm_region *r, uintptr_t pfn, unsigned int order)
{
	size_t n = (size_t)1 << order;

	for (pfn += n; region_contains(r, pfn); pfn += (uintptr_t)1 << order) {
		uint8_t m = *page_meta(r, pfn);

		if (meta_type(m) != PT_CONT)
			break;
		order = meta_order(m);
		n += (size_t)1 << order;
	}
	return n;
}

static void free_large_locked(struct mm_arena *a, struct mm_region *r, uintptr_t pfn,
			      unsigned int order)
{
	for (;;) {
		uintptr_t next = pfn + ((uintptr_t)1 << order);
		uint8_t m = region_contains(r, next) ? *page_meta(r, next) : 0;

		/* The next piece is allocated, so this free cannot merge into it. */
		__free_pages_locked(a, r, pfn, order);
		if (meta_type(m) != PT_CONT)
			break;
		pfn = next;
		order = meta_order(m);
	}
	__arena_maybe_trim(a);
}

enum kobj_kind { KOBJ_BAD, KOBJ_SLAB, KOBJ_LARGE, KOBJ_HUGE, KOBJ_HEAP };

/*
 * What p is, from the page metadata of the default arena: an object of a
 * slab (*slab set), a large block (*order set), a block of the heap (which
 * the heap checks), a direct mapping, or nothing we handed out.  Lock
 * held, or p a live object of a slab (whose metadata cannot change under
 * it).
 */
static __hot_inline enum kobj_kind classify(struct mm_arena *a, const void *p,
					       struct slab **slab, struct mm_region **region,
					       unsigned int *order)
{
	uintptr_t pfn = addr_to_pfn(p), head;
	struct mm_region *r = region_of(a, pfn);
	uint8_t m;

	if (unlikely(!r))
		return KOBJ_HUGE;
	*region = r;
	if (page_in_heap(r, pfn))
		return KOBJ_HEAP;
	m = *page_meta(r, pfn);
	head = pfn;
	if (unlikely(!m)) {
		head = block_head(r, pfn);
		m = head ? *page_meta(r, head) : 0;
	}
	*order = meta_order(m);
	if (likely(meta_type(m) == PT_SLAB)) {
		*slab = pfn_to_addr(head);
		return KOBJ_SLAB;
	}
	if (meta_type(m) == PT_LARGE && p == pfn_to_addr(head))
		return KOBJ_LARGE;
	return KOBJ_BAD;
}

static __cold void report_bad_kfree(struct mm_arena *a, const void *p)
{
	uintptr_t pfn = addr_to_pfn(p);
	struct mm_region *r = region_of(a, pfn);
	uintptr_t head = r ? block_head(r, pfn) : 0;
	uint8_t m = head ? *page_meta(r, head) : 0;
	const char *what = !r ? (huge_was_freed(p) ? "already free (double free)" :
				 "not allocated by kmalloc") :
			   meta_is_free(m) ? "already free (double free)" :
			   meta_type(m) != PT_PAGES ? "not the start of a kmalloc block" :
			   head == pfn && percpu_is_cache(p) ?
				"a thread's object cache (a stale pointer freed again?)" :
			   "a page block (use free_pages)";

	mm_report_bug(a, "kfree", "%p is %s", p, what);
}

/* Everything __kfree() does not do inline. */
void __kfree_slow(const void *p)
{
	struct mm_arena *a;
	struct mm_region *r;
	struct slab *s;
	unsigned int order;
	mm_flags_t flags;

	if (unlikely(!p))
		return;
	a = mm_default_arena();
	if (unlikely(!a))
		return;
	/*
	 * A heap block has no magazine to go to: the lock, without first
	 * looking for a slab (the class byte of the newest regions says it).
	 */
	if (IS_ENABLED(CONFIG_MM_HEAP) && kmalloc_class_of(p) == KMALLOC_HEAP_CLASS) {
		flags = arena_lock(a);
		__heap_free_locked(a, (void *)p);
		arena_unlock(a, flags);
		return;
	}
	/*
	 * A kmalloc object into this thread's cache, without the lock -- not
	 * one never handed out, which the locked path reports.
	 */
	if (IS_ENABLED(CONFIG_MM_PERCPU_CACHE) &&
	    classify(a, p, &s, &r, &order) == KOBJ_SLAB && s->cache->kmalloc_idx &&
	    !slab_obj_fresh(s->cache, s, p) && percpu_free(s->cache, s, (void *)p))
		return;
	flags = arena_lock(a);
	switch (classify(a, p, &s, &r, &order)) {
	case KOBJ_SLAB:
		/*
		 * A cache's descriptor, still on its arena's list: freed, the
		 * list broke.  A pointer into one is a stray (a block's start
		 * less a few bytes, in the page before it), not a cache.
		 */
		if (unlikely(s->cache == &kmem_cache_boot))
			mm_report_bug(a, "kfree", slab_is_obj_start(s->cache, p) ?
				      "%p is a kmem_cache (use kmem_cache_destroy)" :
				      "%p points into a kmem_cache, and is no kmalloc block", p);
		else if (slab_free_checked(s->cache, s, p, "kfree"))
			slab_free_fast(s->cache, s, (void *)p);
		break;
	case KOBJ_LARGE:
		free_large_locked(a, r, addr_to_pfn(p), order);
		break;
	case KOBJ_HEAP:
		__heap_free_locked(a, (void *)p);
		break;
	case KOBJ_HUGE:
		arena_unlock(a, flags);
		if (huge_free(p))
			report_bad_kfree(a, p);
		return;
	default:
		report_bad_kfree(a, p);
		break;
	}
	arena_unlock(a, flags);
}

void kfree(const void *p)
{
	kfree_fast(p, __kfree_slow);
}

/*
 * Is p an object's start that was handed out at some time?  One beyond its
 * slab's fresh index never was (kfree() reports it as freed already): no
 * block either, so ksize() says 0 -- and krealloc(), which asks ksize(),
 * reports it and fails instead of keeping it where the slab hands it out
 * again, or copying it.  Objects found from their page's class byte on the
 * inline paths are never fresh (slab_move_fresh()).  Nor is a cache's
 * descriptor a block: krealloc() would free it as kfree() must not.
 */
static __always_inline int slab_obj_live_start(const struct kmem_cache *c, const struct slab *s,
					       const void *p)
{
	return slab_is_obj_start(c, p) && !slab_obj_fresh(c, s, p) && c != &kmem_cache_boot;
}

/* Everything ksize() does not do inline: out of line, so that it stays a leaf. */
static __noinline size_t ksize_slow(const void *p)
{
	struct mm_arena *a = mm_default_arena();
	struct mm_region *r;
	struct slab *s;
	unsigned int order;
	mm_flags_t flags;
	size_t n = 0;

	if (!p || !a)
		return 0;
	/*
	 * A slab object's size needs no lock: while the object is live its
	 * slab and cache cannot change (kfree's slow path relies on the
	 * same), and realloc() asks on every call.
	 */
	if (likely(classify(a, p, &s, &r, &order) == KOBJ_SLAB))
		return slab_obj_live_start(s->cache, s, p) ? s->cache->object_size : 0;
	flags = arena_lock(a);
	switch (classify(a, p, &s, &r, &order)) {
	case KOBJ_SLAB:
		/* Not an object's start: a bad pointer, 0 as documented. */
		if (slab_obj_live_start(s->cache, s, p))
			n = s->cache->object_size;
		break;
	case KOBJ_LARGE:
		n = large_pages(r, addr_to_pfn(p), order) << MM_PAGE_SHIFT;
		break;
	case KOBJ_HEAP:
		n = heap_usable_size(p);
		break;
	case KOBJ_HUGE:
		arena_unlock(a, flags);
		return huge_size(p);
	default:
		break;
	}
	arena_unlock(a, flags);
	return n;
}

size_t ksize(const void *p)
{
	unsigned int k = kmalloc_class_of(p);	/* 0 for NULL */

	/*
	 * A kmalloc object by its class byte: no call, no lock.  A heap
	 * block, an object on a page of fresh ones, and anything not in the
	 * newest regions go the slow way.
	 */
	if (likely(k - 1 < KMALLOC_HEAP_CLASS - 1)) {
		struct kmem_cache *c = kmalloc_caches[k];

		return likely(slab_is_obj_start(c, p)) ? c->object_size : 0;
	}
	return ksize_slow(p);
}

/*
 * A large block at p resized in place for 'size' bytes (__resize_exact()):
 * 1, or 0 if p is no large block or it cannot grow where it is.
 */
static int resize_large(struct mm_arena *a, void *p, size_t size)
{
	mm_flags_t flags;
	struct mm_region *r;
	struct slab *s;
	unsigned int order;
	int ok = 0;

	if (size > MM_MAX_BLOCK || kmalloc_class_of(p))
		return 0;
	flags = arena_lock(a);
	if (classify(a, p, &s, &r, &order) == KOBJ_LARGE) {
		uintptr_t pfn = addr_to_pfn(p);

		ok = __resize_exact(a, r, pfn, large_pages(r, pfn, order),
				    DIV_ROUND_UP(size, MM_PAGE_SIZE)) == 0;
		__arena_maybe_trim(a);
	}
	arena_unlock(a, flags);
	return ok;
}

/*
 * p, of 'old' usable bytes, moved to a new block for 'size': from 'alloc'
 * to grow, NULL if there is none, p as it was; from kmalloc to shrink,
 * which keeps p if there is none -- a shrink never fails, and must not
 * leave errno set as malloc()'s failure does.  __krealloc() calls it for
 * a slab object, the slow path for everything that moves.
 */
void *__krealloc_move(void *p, size_t old, size_t size, void *(*alloc)(size_t))
{
	int shrink = size < old;
	void *q = shrink ? kmalloc(size) : alloc(size);

	if (unlikely(!q))
		return shrink ? p : NULL;
	memcpy(q, p, min_t(size_t, size, old));
	kfree_fast(p, __kfree_slow);
	return q;
}

/*
 * A heap block resized: in place if it can be (a shrink always can), else
 * moved -- all under one lock but the move; NULL for a bad pointer.
 */
static void *krealloc_heap(struct mm_arena *a, void *p, size_t size)
{
	mm_flags_t flags = arena_lock(a);
	int done = __heap_resize_locked(a, p, size);
	size_t old = done == 0 ? heap_usable_size(p) : 0;

	arena_unlock(a, flags);
	if (done)
		return done > 0 ? p : NULL;
	return __krealloc_move(p, old, size, kmalloc);
}

/*
 * krealloc() of p, a slab object of class k (0: ask the page metadata), if
 * it looks free: is it, in a magazine or on its slab's free list?  Then it
 * is reported (a use after free: keeping it would hand out an object that
 * another allocation gets too, moving it would free it twice) and
 * krealloc() fails.  An object of any cache of the default arena, and of
 * any size: kfree() and ksize() take those too.
 */
static __cold int krealloc_of_free(void *p, unsigned int k)
{
	struct mm_arena *a = mm_default_arena();
	struct kmem_cache *c;
	struct mm_region *r;
	struct slab *s;
	unsigned int order;
	const char *who;
	mm_flags_t flags;
	int on_slab;

	if (k) {
		c = kmalloc_caches[k];
	} else {
		if (!a || classify(a, p, &s, &r, &order) != KOBJ_SLAB)
			return 0;
		c = s->cache;
	}
	if (!kobj_looks_free(c, p))
		return 0;
	who = percpu_holding(c, p);
	if (!who) {
		flags = arena_lock(c->arena);
		on_slab = __slab_freelist_contains(c, obj_to_slab(c, p), p);
		arena_unlock(c->arena, flags);
		if (!on_slab)
			return 0;
	}
	mm_report_begin(c->arena, c->name, "Object already free");
	if (who)
		mm_printf("INFO: krealloc of %p: object is in %s cache\n", p, who);
	else
		mm_printf("INFO: krealloc of %p: object is on its slab's free list\n", p);
	mm_report_end(c->name);
	return 1;
}

/* Everything __krealloc() does not do inline. */
void *__krealloc_slow(void *p, size_t new_size)
{
	unsigned int k;
	size_t old;
	void *q;

	if (!p)
		return kmalloc(new_size);
	if (!new_size) {
		kfree(p);
		return NULL;
	}
	/*
	 * The class byte: a slab object's class, the heap's, or 0 for
	 * anything else -- and for any object of a region older than the
	 * few kmalloc_class_of() looks at, where the heap is asked apart.
	 */
	k = kmalloc_class_of(p);
	if (IS_ENABLED(CONFIG_MM_HEAP)) {
		struct mm_arena *a;
		struct mm_region *r;

		if (k == KMALLOC_HEAP_CLASS)
			return krealloc_heap(mm_default_arena(), p, new_size);
		if (!k && (a = mm_default_arena()) != NULL &&
		    (r = region_of(a, addr_to_pfn(p))) != NULL && page_in_heap(r, addr_to_pfn(p)))
			return krealloc_heap(a, p, new_size);
	}
	old = ksize(p);
	if (!old) {
		struct mm_arena *a = mm_default_arena();

		if (a)
			report_bad_kfree(a, p);
		return NULL;
	}
	/* A slab object that is free already. */
	if (krealloc_of_free(p, k < KMALLOC_HEAP_CLASS ? k : 0))
		return NULL;
	/*
	 * A shrink keeps the pointer for a block that still fits, and never
	 * fails: a large block gives its tail pages back in place, a direct
	 * mapping its tail; a slab object, which cannot be cut, moves to a
	 * smaller class when it would keep twice what is asked
	 * (krealloc_shrinks_away()) and there is room.  Growing, a large block
	 * takes the free pages after it, a direct mapping that stays one is
	 * moved without a copy.
	 */
	if (new_size <= old) {
		if (!k && resize_large(mm_default_arena(), p, new_size))
			return p;
		if (!k && huge_size(p)) {
			huge_resize(p, new_size);
			return p;
		}
		/* A slab object (k is 0 for one without CONFIG_MM_PAGE_CLASS). */
		return krealloc_shrinks_away(old, new_size) ?
		       __krealloc_move(p, old, new_size, kmalloc) : p;
	}
	if (new_size > MM_MAX_BLOCK && old > MM_MAX_BLOCK && (q = huge_resize(p, new_size)))
		return q;
	if (!k && resize_large(mm_default_arena(), p, new_size))
		return p;
	return __krealloc_move(p, old, new_size, kmalloc);
}

void *krealloc(void *p, size_t new_size)
{
	return krealloc_fast(p, new_size, __krealloc_slow, kmalloc);
}
