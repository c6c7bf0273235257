// SPDX-License-Identifier: MIT
/*
 * Arenas: regions, growth, give-back, and the default arena.
 *
 * An arena starts empty or with one region and asks its backend for more
 * when the buddy allocator cannot serve a request: at least enough for an
 * aligned block of the order wanted, and on hosts at least an eighth of what
 * it already holds, so that a growing heap has few regions (region lookup is
 * a walk over them) and amortises the system calls.
 *
 * Give-back works at region edges, since a backend can only take back the
 * tail of a region or a whole one: the free blocks that end a region are
 * released, then, where the backend can discard, large free blocks in the
 * middle have their pages dropped (marked PT_CLEAN so they are not dropped
 * again).  Done automatically once free memory passes trim_high, down to
 * trim_low: the gap between the two is the hysteresis that keeps a workload
 * hovering at the threshold from returning and refetching memory on every
 * call.
 */
#include <string.h>
#include "internal.h"

struct mm_arena *mm_arenas;

static size_t meta_pages(size_t total)
{
	return DIV_ROUND_UP(sizeof(struct mm_region) + total, MM_PAGE_SIZE + 1);
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

	if ((uintptr_t)mem + len < (uintptr_t)mem || end <= base)
		return NULL;
	total = (end - base) >> MM_PAGE_SHIFT;
	m = meta_pages(total);
	if (total <= m)
		return NULL;

	r = (struct mm_region *)base;
	r->backend = be;
	r->start_pfn = addr_to_pfn((void *)base) + m;
	r->end_pfn = addr_to_pfn((void *)base) + total;
	r->len = end - base;
	memset(r->meta, 0, total - m);
	r->next = a->regions;
	__atomic_store_n(&a->regions, r, __ATOMIC_RELEASE);
	a->nr_pages += total - m;
	a->diag.nr_regions++;
	__free_range_locked(a, r, r->start_pfn, r->end_pfn);
	return r;
}

static size_t arena_held(struct mm_arena *a)
{
	size_t held = 0;

	for (struct mm_region *r = a->regions; r; r = r->next)
		held += r->len;
	return held;
}

/*
 * Grow a region of the arena's backend in place, into pages its metadata
 * already covers (those a trim gave back): no new region, and the new pages
 * merge with the region's free tail.  0, or -1 if no region could.
 */
static int region_regrow(struct mm_arena *a, size_t need, size_t want)
{
	for (struct mm_region *r = a->regions; r; r = r->next) {
		uintptr_t base = addr_to_pfn(r), end = r->end_pfn;
		size_t cap = (((r->start_pfn - base) << MM_PAGE_SHIFT) - sizeof(*r)) -
			     (r->end_pfn - r->start_pfn);
		size_t n = min_t(size_t, cap, want >> MM_PAGE_SHIFT);

		if (r->backend != a->backend || n < need ||
		    mm_backend_grow_at(a->backend, pfn_to_addr(end), n << MM_PAGE_SHIFT))
			continue;
		memset(page_meta(r, end), 0, n);
		r->len += n << MM_PAGE_SHIFT;
		r->end_pfn = end + n;
		a->nr_pages += n;
		__free_range_locked(a, r, end, end + n);
		a->diag.nr_grow++;
		return 0;
	}
	return -1;
}

int __arena_grow(struct mm_arena *a, unsigned int order)
{
	size_t need = (size_t)2 << order;	/* an aligned 2^order inside */
	size_t min = (need + meta_pages(need) + 1) << MM_PAGE_SHIFT;
	size_t want = SIZE_MAX, got;
	void *mem;

	if (!a->backend)
		return -1;
	if (IS_ENABLED(CONFIG_ARCH_HOST)) {
		size_t chunk = (size_t)CONFIG_MM_GROW_MIN_KB << 10;
		size_t eighth = (a->nr_pages << MM_PAGE_SHIFT) / 8;

		want = ALIGN(max_t(size_t, min, max_t(size_t, chunk, eighth)), MM_PAGE_SIZE);
	}
	if (a->limit_pages) {
		size_t held = arena_held(a) >> MM_PAGE_SHIFT;
		size_t room = a->limit_pages > held ? (a->limit_pages - held) << MM_PAGE_SHIFT : 0;

		if (room < min)
			return -1;
		if (want > room)
			want = room;
	}
	if (a->backend->grow_at && region_regrow(a, need, want == SIZE_MAX ? min : want) == 0)
		return 0;
	mem = mm_backend_grow(a->backend, min, want, &got);
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
static void unlink_free_range(struct mm_arena *a, struct mm_region *r,
			      uintptr_t pfn, uintptr_t end)
{
	while (pfn < end) {
		unsigned int o = meta_order(*page_meta(r, pfn));

		__del_free_block(a, r, pfn);
		pfn += (uintptr_t)1 << o;
	}
}

static void region_unlink(struct mm_arena *a, struct mm_region *r)
{
	struct mm_region **pp = &a->regions;

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	a->nr_pages -= r->end_pfn - r->start_pfn;
	a->diag.nr_regions--;
}

/*
 * Where the run of free blocks that ends region r begins, not going below
 * 'floor' free pages for the arena.
 */
static uintptr_t free_tail_start(struct mm_arena *a, struct mm_region *r, size_t floor)
{
	uintptr_t cut = r->end_pfn;
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

/* Release free region edges, then discard large free blocks.  Lock held. */
static size_t __arena_trim(struct mm_arena *a, size_t keep)
{
	struct mm_region *r, *next;
	size_t done = 0;

	for (r = a->regions; r; r = next) {
		uintptr_t cut, end = r->end_pfn;
		uintptr_t base = (uintptr_t)r;
		size_t len;

		next = r->next;
		if (!r->backend || !r->backend->release || a->nr_free <= keep)
			continue;
		cut = free_tail_start(a, r, keep);
		unlink_free_range(a, r, cut, end);
		/*
		 * The free block below the cut is larger than what may still
		 * go before 'keep' is reached: give back its top part, so that
		 * a trim lands on 'keep' rather than up to a block above it
		 * (above trim_high, even, when high - low is less than the
		 * block, and then every free would trim again in vain).
		 */
		if (cut > r->start_pfn && a->nr_free > keep) {
			uintptr_t h = block_head(r, cut - 1);

			if (h && meta_is_free(*page_meta(r, h))) {
				uintptr_t split = cut - (a->nr_free - keep);

				__del_free_block(a, r, h);
				__free_range_locked(a, r, h, split);
				cut = split;
			}
		}
		if (cut == end)
			continue;
		/*
		 * With per-thread caches, kfree() walks the region list without
		 * the lock, so a region header is never unmapped: an entirely
		 * free region gives back all but its metadata pages, and grows
		 * back in place later (region_regrow).
		 */
		if (cut == r->start_pfn && !IS_ENABLED(CONFIG_MM_PERCPU_CACHE)) {
			/* The whole region is free: give it all back. */
			len = r->len;
			region_unlink(a, r);
			if (mm_backend_release(r->backend, r, len) == 0) {
				done += len;
				a->diag.nr_trim++;
				continue;
			}
			r->next = a->regions;	/* refused: take it back */
			a->regions = r;
			a->nr_pages += end - r->start_pfn;
			a->diag.nr_regions++;
		} else {
			len = (end - cut) << MM_PAGE_SHIFT;
			if (mm_backend_release(r->backend, pfn_to_addr(cut), len) == 0) {
				r->end_pfn = cut;
				r->len = (cut << MM_PAGE_SHIFT) - base;
				a->nr_pages -= end - cut;
				done += len;
				a->diag.nr_trim++;
				continue;
			}
		}
		__free_range_locked(a, r, cut, end);
	}

	/*
	 * Discard the pages of large free blocks, all but the first which
	 * holds the free-list node.  64 KiB and up: below that the system call
	 * costs more than the memory is worth.
	 */
	if (!a->backend || !a->backend->discard)
		return done;
	for (int o = MM_MAX_ORDER; o >= 0 && ((size_t)MM_PAGE_SIZE << o) >= 65536; o--) {
		for (struct hlist_node *h = a->free_area[o].first; h; h = h->next) {
			uintptr_t pfn = addr_to_pfn(h);
			struct mm_region *rr = region_of(a, pfn);
			uint8_t *m = page_meta(rr, pfn);
			size_t len = ((size_t)MM_PAGE_SIZE << o) - MM_PAGE_SIZE;

			if (a->nr_free - a->nr_clean <= keep)
				return done;
			if (meta_type(*m) != PT_FREE || rr->backend != a->backend)
				continue;
			if (mm_backend_discard(a->backend, (char *)h + MM_PAGE_SIZE, len) == 0) {
				*m = PAGE_META(PT_CLEAN, o);
				a->nr_clean += (size_t)1 << o;
				done += len;
			}
		}
	}
	return done;
}

void __arena_maybe_trim(struct mm_arena *a)
{
	if (a->trim_high && unlikely(a->nr_free - a->nr_clean > a->trim_high))
		__arena_trim(a, a->trim_low);
}

size_t mm_arena_trim(struct mm_arena *a, size_t keep)
{
	mm_flags_t flags = arena_lock(a);
	size_t done = __arena_trim(a, keep >> MM_PAGE_SHIFT);

	arena_unlock(a, flags);
	return done;
}

int mm_arena_init(struct mm_arena *a, const char *name, struct mm_backend *be,
		  size_t initial)
{
	mm_lock_t lock_init = MM_LOCK_INIT;

	memset(a, 0, sizeof(*a));
	a->name = name ? name : "arena";
	a->backend = be;
	a->lock = lock_init;
	mm_lock_init(&a->lock);
#if IS_ENABLED(CONFIG_MM_SLAB)
	INIT_LIST_HEAD(&a->caches);
#endif
	if (IS_ENABLED(CONFIG_ARCH_HOST)) {
		a->trim_high = ((size_t)CONFIG_MM_TRIM_THRESHOLD_KB << 10) >> MM_PAGE_SHIFT;
		a->trim_low = a->trim_high / 2;
	}
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
	a->next_arena = mm_arenas;
	mm_arenas = a;
	return 0;
}

int mm_arena_add_region(struct mm_arena *a, void *mem, size_t len)
{
	mm_flags_t flags = arena_lock(a);
	struct mm_region *r = region_add(a, mem, len, NULL);

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
	int ret = 0;

#if IS_ENABLED(CONFIG_MM_SLAB)
	if (!list_empty(&a->caches)) {
		mm_report_bug(a, "mm_arena_destroy", "arena %s still has slab caches", a->name);
		return -1;
	}
#endif
	for (r = a->regions; r; r = next) {
		next = r->next;
		if (free_tail_start(a, r, 0) != r->start_pfn) {
			r->next = kept;		/* pages in use: keep it */
			kept = r;
			ret = -1;
			continue;
		}
		unlink_free_range(a, r, r->start_pfn, r->end_pfn);
		a->nr_pages -= r->end_pfn - r->start_pfn;
		a->diag.nr_regions--;
		if (r->backend)
			mm_backend_release(r->backend, r, r->len);
	}
	a->regions = kept;
	if (ret) {
		mm_report_bug(a, "mm_arena_destroy", "arena %s still has %zu pages in use",
			      a->name, a->nr_pages - a->nr_free);
		return ret;
	}
	for (struct mm_arena **pp = &mm_arenas; *pp; pp = &(*pp)->next_arena) {
		if (*pp == a) {
			*pp = a->next_arena;
			break;
		}
	}
	return 0;
}

void mm_arena_set_limit(struct mm_arena *a, size_t bytes)
{
	a->limit_pages = bytes >> MM_PAGE_SHIFT;
}

void mm_arena_set_trim(struct mm_arena *a, size_t high, size_t low)
{
	mm_flags_t flags = arena_lock(a);

	a->trim_high = high >> MM_PAGE_SHIFT;
	a->trim_low = min_t(size_t, low, high) >> MM_PAGE_SHIFT;
	arena_unlock(a, flags);
}

void mm_arena_set_oom_hook(struct mm_arena *a, mm_oom_hook_t hook, void *ctx)
{
	a->oom_hook = hook;
	a->oom_ctx = ctx;
}

void mm_arena_diag(struct mm_arena *a, struct mm_diag *out)
{
	mm_flags_t flags = arena_lock(a);

	*out = a->diag;
	out->capacity = a->nr_pages << MM_PAGE_SHIFT;
	out->allocated = (a->nr_pages - a->nr_free) << MM_PAGE_SHIFT;
	if (!IS_ENABLED(CONFIG_MM_STATS))
		out->peak_allocated = 0;
	arena_unlock(a, flags);
}

/*
 * Check every invariant: blocks tile each region exactly, heads are aligned,
 * interior pages are 0, every free block is on the list of its order and
 * every list entry is a free block, no two free buddies are left unmerged,
 * and the counters agree with what is there.
 */
int mm_arena_validate(struct mm_arena *a)
{
	size_t free_pages = 0, clean = 0, pages = 0, listed = 0, free_blocks = 0;
	mm_flags_t flags = arena_lock(a);
	const char *why = NULL;
	uintptr_t at = 0;

	for (struct mm_region *r = a->regions; r && !why; r = r->next) {
		pages += r->end_pfn - r->start_pfn;
		for (uintptr_t pfn = r->start_pfn; pfn < r->end_pfn && !why; ) {
			uint8_t m = *page_meta(r, pfn);
			uintptr_t n = (uintptr_t)1 << meta_order(m);

			at = pfn;
			if (!m || meta_type(m) > PT_CLEAN)
				why = "page is not a block head where one must start";
			else if (pfn & (n - 1))
				why = "block head not aligned to its order";
			else if (pfn + n > r->end_pfn)
				why = "block runs past its region";
			for (uintptr_t i = 1; i < n && !why; i++) {
				if (*page_meta(r, pfn + i))
					why = "head byte inside a block";
			}
			if (!why && meta_is_free(m)) {
				uintptr_t buddy = pfn ^ n;

				free_pages += n;
				free_blocks++;
				if (meta_type(m) == PT_CLEAN)
					clean += n;
				if (meta_order(m) < MM_MAX_ORDER && region_contains(r, buddy) &&
				    meta_is_free(*page_meta(r, buddy)) &&
				    meta_order(*page_meta(r, buddy)) == meta_order(m))
					why = "two free buddies left unmerged";
			}
			pfn += n;
		}
	}
	for (unsigned int o = 0; o <= MM_MAX_ORDER && !why; o++) {
		size_t count = 0;

		if (!!a->free_area[o].first != !!(a->free_mask & (1u << o)))
			why = "free_mask disagrees with the lists";
		for (struct hlist_node *h = a->free_area[o].first; h && !why; h = h->next) {
			uintptr_t pfn = addr_to_pfn(h);
			struct mm_region *r = region_of(a, pfn);

			at = pfn;
			count++;
			if (!r || !meta_is_free(*page_meta(r, pfn)) ||
			    meta_order(*page_meta(r, pfn)) != o)
				why = "free list entry is not a free block of its order";
		}
		listed += count;
#if IS_ENABLED(CONFIG_MM_STATS)
		if (!why && count != a->nr_free_order[o])
			why = "per-order free count is wrong";
#endif
	}
	if (!why && listed != free_blocks)
		why = "free blocks missing from the lists";
	if (!why && (free_pages != a->nr_free || clean != a->nr_clean || pages != a->nr_pages))
		why = "page counters disagree with the blocks";
	arena_unlock(a, flags);
	if (why) {
		mm_report_bug(a, "mm_arena_validate", "%s (pfn %#lx)", why, (unsigned long)at);
		return -1;
	}
	return 0;
}

/* ---- The default arena ---------------------------------------------- */

static struct mm_arena default_arena = { .lock = MM_LOCK_INIT };
static int default_state;		/* 0 not yet, 1 ready, -1 failed */

#if IS_ENABLED(CONFIG_ARCH_HOST) && !IS_ENABLED(CONFIG_MM_LOCK_NONE) && \
	!IS_ENABLED(CONFIG_MM_LOCK_USER)
#include <pthread.h>

/*
 * fork() in a threaded program: hold every lock the allocator has across the
 * fork, so the child never inherits one that another thread held mid-update.
 * Arenas are found on mm_arenas; other layers' locks (kmalloc's direct
 * mappings) are registered with __mm_fork_lock().  Those are taken first:
 * no path holds an arena lock while taking one of them.
 */
static mm_lock_t *fork_locks[4];
static mm_flags_t fork_flags, fork_lock_flags[4];

void __mm_fork_lock(mm_lock_t *lock)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks); i++) {
		if (!fork_locks[i] || fork_locks[i] == lock) {
			fork_locks[i] = lock;
			return;
		}
	}
	mm_panic("__mm_fork_lock: too many locks");
}

static void fork_prepare(void)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks) && fork_locks[i]; i++)
		fork_lock_flags[i] = mm_lock(fork_locks[i]);
	for (struct mm_arena *a = mm_arenas; a; a = a->next_arena)
		fork_flags = arena_lock(a);
}

static void fork_parent(void)
{
	for (struct mm_arena *a = mm_arenas; a; a = a->next_arena)
		arena_unlock(a, fork_flags);
	for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks) && fork_locks[i]; i++)
		mm_unlock(fork_locks[i], fork_lock_flags[i]);
}

static void fork_child(void)
{
	for (struct mm_arena *a = mm_arenas; a; a = a->next_arena)
		mm_lock_init(&a->lock);
	for (unsigned int i = 0; i < ARRAY_SIZE(fork_locks) && fork_locks[i]; i++)
		mm_lock_init(fork_locks[i]);
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
#else
static void register_atfork(void)
{
}

void __mm_fork_lock(mm_lock_t *lock)
{
}
#endif

static __noinline struct mm_arena *default_arena_setup(void)
{
	static mm_lock_t setup_lock = MM_LOCK_INIT;
	mm_flags_t flags = mm_lock(&setup_lock);
	int state = __atomic_load_n(&default_state, __ATOMIC_ACQUIRE);

	if (state == 0) {
		struct mm_backend *be = mm_default_backend();

		state = be && mm_arena_init(&default_arena, "default", be,
					    IS_ENABLED(CONFIG_ARCH_HOST) ? 0 : SIZE_MAX) == 0 ? 1 : -1;
		__atomic_store_n(&default_state, state, __ATOMIC_RELEASE);
		/* May allocate; the arena is ready, so that is fine. */
		if (state == 1)
			register_atfork();
	}
	mm_unlock(&setup_lock, flags);
	return state == 1 ? &default_arena : NULL;
}

struct mm_arena *mm_default_arena(void)
{
	if (likely(__atomic_load_n(&default_state, __ATOMIC_ACQUIRE) == 1))
		return &default_arena;
	return default_arena_setup();
}
