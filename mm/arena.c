// SPDX-License-Identifier: MIT
/*
 * Arenas: regions, growth, give-back, and the default arena.
 *
 * An arena starts empty or with one region and asks its backend for more
 * when the buddy allocator cannot serve a request: at least enough for an
 * aligned block of the order wanted, and on hosts as much as it already
 * holds (it doubles), so that a growing heap has few, large regions: buddy
 * blocks never merge across regions, region lookup is a walk over them, and
 * the system calls are amortised.
 *
 * Giving memory back is trim.c's business, checking every invariant
 * validate.c's.
 */
#include <stddef.h>
#include <string.h>
#include "internal.h"

/*
 * A host backend's system calls set errno when they refuse; bare-metal
 * backends make none (and the RISC-V build links no C library).
 */
#if IS_ENABLED(CONFIG_ARCH_HOST)
#include <errno.h>

static inline int errno_save(void)
{
	return errno;
}

static inline void errno_restore(int err)
{
	errno = err;
}
#else
static inline int errno_save(void)
{
	return 0;
}

static inline void errno_restore(int err)
{
}
#endif

struct mm_arena *mm_arenas;
/*
 * Orders changes to mm_arenas (mm_arena_init(), mm_arena_destroy()) with
 * fork()'s handlers, which walk it three times and must find the same
 * arenas each time: one linked between prepare and parent had its lock,
 * which prepare never took, released by parent under the thread that held
 * it, and two threads went on in its buddy lists at once.  Taken by
 * prepare after the setups' locks (the default arena's setup holds
 * setup_lock while it links the arena) and before the arena locks; no
 * lock is taken while it is held.
 */
static mm_lock_t arenas_lock = MM_LOCK_INIT;

static size_t meta_pages(size_t total)
{
	return DIV_ROUND_UP(sizeof(struct mm_region) + total * MM_META_BYTES,
			    MM_PAGE_SIZE + MM_META_BYTES);
}

/*
 * Lay a region over [mem, mem + len) and give its pages to the free lists.
 * Lock held.  NULL if the range cannot hold its own metadata and a page.
 */
static struct mm_region *region_add(struct mm_arena *a, void *mem, size_t len,
				    struct mm_backend *be)
{
	uintptr_t base = ALIGN((uintptr_t)mem, MM_PAGE_SIZE);
	uintptr_t end = ALIGN_DOWN((uintptr_t)mem + len, MM_PAGE_SIZE);
	struct mm_region *r;
	size_t total, m;

	/* A header at address 0 would read as NULL, this function's failure. */
	if ((uintptr_t)mem + len < (uintptr_t)mem || end <= base || !base)
		return NULL;
	total = (end - base) >> MM_PAGE_SHIFT;
	m = meta_pages(total);
	if (total <= m)
		return NULL;

	r = (struct mm_region *)base;
	r->backend = be;
	r->start_pfn = addr_to_pfn((void *)base) + m;
	r->nr_pages = total - m;
	r->max_pages = ((m << MM_PAGE_SHIFT) - sizeof(*r)) / MM_META_BYTES;
	r->len = end - base;
	r->no_regrow = 0;
	/* All of it: kfree() looks up to max_pages without the lock (kmalloc.h). */
	memset(r->meta, 0, r->max_pages * MM_META_BYTES);
	r->next = a->regions;
	__atomic_store_n(&a->regions, r, __ATOMIC_RELEASE);
	arena_regions_changed(a);
	a->nr_pages += total - m;
	a->diag.nr_regions++;
	/*
	 * Pages of a backend that can discard are untouched until used:
	 * clean, so the buddy allocator hands out resident ones first.
	 */
	__free_range_type(a, r, r->start_pfn, mm_region_end(r),
			  IS_ENABLED(CONFIG_MM_PREFER_RESIDENT) && be && be->discard ?
			  PT_CLEAN : PT_FREE);
	__arena_trim_adapt(a);
	return r;
}

static size_t arena_held(struct mm_arena *a)
{
	size_t held = 0;

	for (struct mm_region *r = a->regions; r; r = r->next)
		held += r->len;
	return held;
}

int __arena_grow(struct mm_arena *a, unsigned int order)
{
	size_t need = (size_t)2 << order;	/* an aligned 2^order inside */
	size_t min = (need + meta_pages(need) + 1) << MM_PAGE_SHIFT;
	size_t want = SIZE_MAX, got;
	void *mem;
	int err;

	if (!a->backend)
		return -1;
	if (IS_ENABLED(CONFIG_ARCH_HOST)) {
		/*
		 * Double: the regions stay few and large, so blocks merge
		 * and region lookup stays short; mapped pages cost nothing
		 * until they are touched.
		 */
		size_t chunk = (size_t)CONFIG_MM_GROW_MIN_KB << 10;
		size_t held = a->nr_pages << MM_PAGE_SHIFT;

		want = ALIGN(max_t(size_t, min, max_t(size_t, chunk, held)), MM_PAGE_SIZE);
	}
	if (a->limit_pages) {
		size_t held = arena_held(a) >> MM_PAGE_SHIFT;
		size_t room = a->limit_pages > held ? (a->limit_pages - held) << MM_PAGE_SHIFT : 0;

		if (room < min)
			return -1;
		if (want > room)
			want = room;
	}
	if (__region_regrow(a, need, want == SIZE_MAX ? min : want) == 0)
		return 0;
	/*
	 * A growth refused is not yet the request's failure -- a reclaim
	 * may serve it -- and a malloc() that succeeds leaves errno alone;
	 * the one that fails says ENOMEM itself.
	 */
	err = errno_save();
	mem = mm_backend_grow(a->backend, min, want, &got);
	errno_restore(err);
	if (!mem)
		return -1;
	if (!region_add(a, mem, got, a->backend)) {
		mm_backend_release(a->backend, mem, got);
		return -1;
	}
	a->diag.nr_grow++;
	return 0;
}

/* Take every block of [pfn, end) off the free lists (all must be free). */
void __unlink_free_range(struct mm_arena *a, struct mm_region *r,
			      uintptr_t pfn, uintptr_t end)
{
	while (pfn < end) {
		unsigned int o = meta_order(*page_meta(r, pfn));

		__del_free_block(a, r, pfn);
		pfn += (uintptr_t)1 << o;
	}
}

void __region_unlink(struct mm_arena *a, struct mm_region *r)
{
	struct mm_region **pp = &a->regions;

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	arena_regions_changed(a);
	a->nr_pages -= r->nr_pages;
	a->diag.nr_regions--;
}

/*
 * Where the run of free blocks that ends region r begins, not going below
 * 'floor' free pages for the arena.
 */
uintptr_t __free_tail_start(struct mm_arena *a, struct mm_region *r, size_t floor)
{
	uintptr_t cut = mm_region_end(r);
	size_t nr_free = a->nr_free;

	while (cut > r->start_pfn) {
		uintptr_t h = block_head(r, cut - 1);
		uint8_t m = h ? *page_meta(r, h) : 0;
		size_t n = (size_t)1 << meta_order(m);

		if (!h || !meta_is_free(m) || nr_free - n < floor)
			break;
		nr_free -= n;
		cut = h;
	}
	return cut;
}

#if IS_ENABLED(CONFIG_MM_CHECKS)
/* Is a on mm_arenas?  For a handle whose fields may be anything (slab.c). */
int __arena_is_live(const struct mm_arena *a)
{
	mm_flags_t flags = mm_lock(&arenas_lock);
	struct mm_arena *x = mm_arenas;

	while (x && x != a)
		x = x->next_arena;
	mm_unlock(&arenas_lock, flags);
	return x != NULL;
}
#endif

int mm_arena_init(struct mm_arena *a, const char *name, struct mm_backend *be,
		  size_t initial)
{
	mm_lock_t lock_init = MM_LOCK_INIT;
	mm_flags_t flags = mm_lock(&arenas_lock);

	/*
	 * An arena on the list is live: set up again, it forgot the pages
	 * and caches it had, in use some of them, and linked itself a second
	 * time -- a loop, which fork()'s handlers walked for ever.
	 */
	for (struct mm_arena *x = mm_arenas; x; x = x->next_arena) {
		if (x == a) {
			mm_report_bug(a, "mm_arena_init", "arena %s is live (mm_arena_destroy() it first)",
				      a->name);
			mm_unlock(&arenas_lock, flags);
			return -1;
		}
	}
	mm_unlock(&arenas_lock, flags);
	memset(&a->first + 1, 0, sizeof(*a) - sizeof(a->first));
	a->first = &mm_region_none;
	a->name = name ? name : "arena";
	a->backend = be;
	a->lock = lock_init;
	mm_lock_init(&a->lock);
#if IS_ENABLED(CONFIG_MM_SLAB)
	INIT_LIST_HEAD(&a->caches);
#endif
#if IS_ENABLED(CONFIG_MM_TRIM)
	/* Up: a threshold below a page is one page, not 0 ("never"). */
	a->trim_base = DIV_ROUND_UP((size_t)CONFIG_MM_TRIM_THRESHOLD_KB << 10, MM_PAGE_SIZE);
	a->trim_adaptive = 1;
	__arena_trim_adapt(a);
#endif
	if (CONFIG_MM_ARENA_LIMIT_KB)
		a->limit_pages = ((size_t)CONFIG_MM_ARENA_LIMIT_KB << 10) >> MM_PAGE_SHIFT;

	if (initial) {
		/*
		 * At least 'initial' bytes (the backend's wrapper refuses an
		 * absurd size), or at least the two pages a region needs when
		 * SIZE_MAX asks for everything.
		 */
		size_t min = initial == SIZE_MAX ? 2 * MM_PAGE_SIZE :
			     initial > SIZE_MAX / 2 ? SIZE_MAX :
			     max_t(size_t, 2 * MM_PAGE_SIZE, ALIGN(initial, MM_PAGE_SIZE));
		size_t got = 0;
		void *mem = be ? mm_backend_grow(be, min, initial == SIZE_MAX ? SIZE_MAX : min,
						 &got) : NULL;

		if (!mem || !region_add(a, mem, got, be)) {
			if (mem)
				mm_backend_release(be, mem, got);
			mm_report_bug(a, "mm_arena_init", "arena %s: %s could not provide %zu bytes",
				      a->name, be ? be->name : "no backend", initial);
			return -1;
		}
	}
	flags = mm_lock(&arenas_lock);
	a->next_arena = mm_arenas;
	mm_arenas = a;
	mm_unlock(&arenas_lock, flags);
	return 0;
}

/*
 * A region of a that [mem, mem + len) overlaps, lock held, or NULL.  The
 * same bank added twice (or a part of it) laid a second region's metadata
 * over pages the first one had handed out, and then handed every page
 * out again.
 */
static struct mm_region *region_overlapping(struct mm_arena *a, void *mem, size_t len)
{
	uintptr_t lo = (uintptr_t)mem, hi = lo + len;

	if (hi < lo)
		return NULL;		/* wraps: region_add() refuses it */
	for (struct mm_region *r = a->regions; r; r = r->next) {
		if (lo < (uintptr_t)r + r->len && (uintptr_t)r < hi)
			return r;
	}
	return NULL;
}

int mm_arena_add_region(struct mm_arena *a, void *mem, size_t len)
{
	mm_flags_t flags = arena_lock(a);
	struct mm_region *r = region_overlapping(a, mem, len);

	if (r) {
		mm_report_bug(a, "mm_arena_add_region", "%zu bytes at %p overlap region %p of arena %s",
			      len, mem, (void *)r, a->name);
		arena_unlock(a, flags);
		return -1;
	}
	r = region_add(a, mem, len, NULL);
	arena_unlock(a, flags);
	if (!r) {
		mm_report_bug(a, "mm_arena_add_region",
			      "%zu bytes at %p cannot hold their own metadata and a page",
			      len, mem);
		return -1;
	}
	return 0;
}

int mm_arena_destroy(struct mm_arena *a)
{
	struct mm_region *r, *next, *kept = NULL;
	mm_flags_t flags;
	int ret = 0;

#if IS_ENABLED(CONFIG_MM_SLAB)
	if (!list_empty(&a->caches)) {
		mm_report_bug(a, "mm_arena_destroy", "arena %s still has slab caches", a->name);
		return -1;
	}
#endif
	__pcp_drain(a, UINT32_MAX);
	for (r = a->regions; r; r = next) {
		next = r->next;
		if (__free_tail_start(a, r, 0) != r->start_pfn) {
			r->next = kept;		/* pages in use: keep it */
			kept = r;
			ret = -1;
			continue;
		}
		__unlink_free_range(a, r, r->start_pfn, mm_region_end(r));
		a->nr_pages -= r->nr_pages;
		a->diag.nr_regions--;
		if (r->backend)
			mm_backend_release(r->backend, r, r->len);
	}
	a->regions = kept;
	arena_regions_changed(a);
	if (ret) {
		mm_report_bug(a, "mm_arena_destroy", "arena %s still has %zu pages in use",
			      a->name, a->nr_pages - a->nr_free);
		return ret;
	}
	flags = mm_lock(&arenas_lock);
	for (struct mm_arena **pp = &mm_arenas; *pp; pp = &(*pp)->next_arena) {
		if (*pp == a) {
			*pp = a->next_arena;
			break;
		}
	}
	mm_unlock(&arenas_lock, flags);
	return 0;
}

void mm_arena_set_limit(struct mm_arena *a, size_t bytes)
{
	a->limit_pages = bytes >> MM_PAGE_SHIFT;
}

void mm_arena_set_oom_hook(struct mm_arena *a, mm_oom_hook_t hook, void *ctx)
{
	a->oom_hook = hook;
	a->oom_ctx = ctx;
}

void mm_arena_diag(struct mm_arena *a, struct mm_diag *out)
{
	mm_flags_t flags = arena_lock(a);

	/*
	 * Field by field: error_count is counted without the lock
	 * (report.c), and read here as it is written, atomically.  A field
	 * added to struct mm_diag must be added here too.
	 */
	static_assert(sizeof(struct mm_diag) == 3 * sizeof(size_t) + 5 * sizeof(unsigned long),
		      "mm_arena_diag() copies every field of struct mm_diag");
	*out = (struct mm_diag){
		.capacity = a->nr_pages << MM_PAGE_SHIFT,
		.allocated = (a->nr_pages - a->nr_free) << MM_PAGE_SHIFT,
		.peak_allocated = IS_ENABLED(CONFIG_MM_STATS) ? a->diag.peak_allocated : 0,
		.nr_regions = a->diag.nr_regions,
		.nr_grow = a->diag.nr_grow,
		.nr_trim = a->diag.nr_trim,
		.oom_count = a->diag.oom_count,
		.error_count = __atomic_load_n(&a->diag.error_count, __ATOMIC_RELAXED),
	};
	arena_unlock(a, flags);
}

/* ---- The default arena ---------------------------------------------- */

/* Not static: kfree()'s inline fast path looks at it directly. */
static_assert(offsetof(struct mm_arena, first) == 0,
	      "mm_arena_init() keeps the first member, and only it");

const struct mm_region mm_region_none;	/* in ROM on MCUs: never written */
struct mm_arena mm_arena_default = { .first = &mm_region_none, .lock = MM_LOCK_INIT };
static int default_state;		/* 0 not yet, 1 ready, -1 failed */
static mm_lock_t setup_lock = MM_LOCK_INIT;	/* held across fork() */

#if IS_ENABLED(CONFIG_ARCH_HOST) && !IS_ENABLED(CONFIG_MM_LOCK_NONE) && \
	!IS_ENABLED(CONFIG_MM_LOCK_USER)
#include <pthread.h>

/*
 * fork() in a threaded program: hold every lock the allocator has across the
 * fork, so the child never inherits one that another thread held mid-update.
 * Arenas are found on mm_arenas; other layers' locks are registered with
 * __mm_fork_lock() and taken by rank (internal.h): first those held while
 * an arena lock is taken (the setups' locks) or that no path takes with an
 * arena lock held (kmalloc's direct mappings), then the arenas, then those
 * taken with the arena lock held (percpu.c's list of live caches, which
 * the slab's checks look at with the arena lock held, and whose holders
 * take no arena lock).  In any other order a thread that holds one lock
 * and waits for the other meets a fork that holds the other and waits for
 * the first, for ever.  A lock left out is inherited held by a child whose
 * thread that held it did not come along.
 *
 * The mutexes themselves (mm_lock_raw()), not mm_lock(), which skips them
 * while the process is single-threaded: a mutex taken here is released in
 * the parent and reset in the child, and none of the three steps may
 * depend on what the thread count says at that moment (glibc may count the
 * child of a threaded parent as single-threaded again).
 */
static mm_lock_t *fork_locks[8];
static uint8_t fork_lock_rank[8];
static mm_flags_t fork_flags, fork_arenas_flags, fork_lock_flags[8];

void __mm_fork_lock(mm_lock_t *lock, int rank)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks); i++) {
		if (!fork_locks[i] || fork_locks[i] == lock) {
			fork_lock_rank[i] = (uint8_t)rank;
			fork_locks[i] = lock;
			return;
		}
	}
	mm_panic("__mm_fork_lock: too many locks");
}

/* The registered locks of ranks [from, to), rank by rank. */
static void fork_lock_all(int from, int to)
{
	for (int rank = from; rank < to; rank++) {
		for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks) && fork_locks[i]; i++) {
			if (fork_lock_rank[i] == rank)
				fork_lock_flags[i] = mm_lock_raw(fork_locks[i]);
		}
	}
}

static void fork_unlock_all(int from, int to)
{
	for (int rank = to - 1; rank >= from; rank--) {
		for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks) && fork_locks[i]; i++) {
			if (fork_lock_rank[i] == rank)
				mm_unlock_raw(fork_locks[i], fork_lock_flags[i]);
		}
	}
}

static void fork_prepare(void)
{
	fork_lock_all(0, MM_FORK_INNER);
	/* After setup_lock, which is held while mm_arena_init() takes it. */
	fork_arenas_flags = mm_lock_raw(&arenas_lock);
	for (struct mm_arena *a = mm_arenas; a; a = a->next_arena)
		fork_flags = mm_lock_raw(&a->lock);
	fork_lock_all(MM_FORK_INNER, MM_FORK_RANKS);
}

static void fork_parent(void)
{
	fork_unlock_all(MM_FORK_INNER, MM_FORK_RANKS);
	for (struct mm_arena *a = mm_arenas; a; a = a->next_arena)
		mm_unlock_raw(&a->lock, fork_flags);
	mm_unlock_raw(&arenas_lock, fork_arenas_flags);
	fork_unlock_all(0, MM_FORK_INNER);
}

static void fork_child(void)
{
	mm_lock_init(&arenas_lock);
	for (struct mm_arena *a = mm_arenas; a; a = a->next_arena)
		mm_lock_init(&a->lock);
	for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks) && fork_locks[i]; i++)
		mm_lock_init(fork_locks[i]);
	__percpu_fork_child();
}

/*
 * At load time, before main() and any thread: a fork handler registered
 * only when the default arena was set up (its first allocation) came too
 * late for a fork that another thread made during that setup -- the child
 * inherited setup_lock held by a thread it did not have, and its first
 * allocation waited for ever (test_threads' test_fork_during_setup).
 * Registered first, mm's prepare handler also runs after those of the
 * libraries that register later, which may allocate.
 */
__attribute__((constructor)) static void register_atfork(void)
{
	__mm_fork_lock(&setup_lock, MM_FORK_SETUP);
	arch_atfork(fork_prepare, fork_parent, fork_child);
}
#else
void __mm_fork_lock(mm_lock_t *lock, int rank)
{
}
#endif

static __noinline struct mm_arena *default_arena_setup(void)
{
	mm_flags_t flags = mm_lock(&setup_lock);
	int state = __atomic_load_n(&default_state, __ATOMIC_ACQUIRE);

	if (state == 0) {
		struct mm_backend *be = mm_default_backend();

		/* A static array is taken whole; other backends grow on demand. */
		state = be && mm_arena_init(&mm_arena_default, "default", be,
					    IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC) ?
					    SIZE_MAX : 0) == 0 ? 1 : -1;
		if (state == 1)
			mm_arena_set_pcp(&mm_arena_default, CONFIG_MM_PCP_PAGES);
		/* Nobody else draws on the default array: no point giving back. */
		if (state == 1 && IS_ENABLED(CONFIG_MM_DEFAULT_BACKEND_STATIC))
			mm_arena_set_trim(&mm_arena_default, 0, 0);
		__atomic_store_n(&default_state, state, __ATOMIC_RELEASE);
	}
	mm_unlock(&setup_lock, flags);
	return state == 1 ? &mm_arena_default : NULL;
}

struct mm_arena *mm_default_arena(void)
{
	if (likely(__atomic_load_n(&default_state, __ATOMIC_ACQUIRE) == 1))
		return &mm_arena_default;
	return default_arena_setup();
}
