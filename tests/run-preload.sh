#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/run-preload.sh [path/to/libmm.so]   (default build/libmm.so)
#
# Real programs with mm as their allocator (LD_PRELOAD), each checked by its
# OUTPUT against the same program run without mm, not by exit status alone:
#
#   mm-active       mm really is the allocator of a preloaded program: malloc
#                   and libc's own strdup return blocks ksize() knows, and
#                   libmm.so is in /proc/self/maps (a preload that ld.so
#                   refuses only prints a warning and runs glibc's malloc)
#   python-alloc    dicts, lists, sets, strings, sorting, json, realloc of
#                   growing containers: checksum must match the run without
#                   mm; run with PYTHONMALLOC=malloc so every object is ours
#   python-stdlib   python3 -m test test_list test_dict test_set ... (when
#                   the test package is installed, or installable)
#   git             init, add and commit 3000 files, a second commit, log,
#                   gc, fsck: commit and tree ids must be those of the run
#                   without mm (fixed author, dates and config)
#   gcc             compile a C program: the assembly must be identical to
#                   the one gcc makes without mm, and the program's output
#                   the expected one
#   sort            sort a 600k-line file in memory and with temporary
#                   files, in parallel: cmp against sort without mm
#   mm-reports      none of the above made mm report a bad free (mm reports
#                   and carries on, so a false alarm would pass otherwise)
#
# Prints "PASS name" / "FAIL name (why)" per program (a program missing is a
# failure too: make check installs them all) and ends with "N passed, M
# failed"; exits non-zero if anything failed.  Inputs are generated
# deterministically.
set -u

LIB=${1:-build/libmm.so}
case $LIB in /*) ;; *) LIB=$PWD/$LIB ;; esac

passed=0
failed=0

pass() {
	echo "PASS $1"
	passed=$((passed + 1))
}

fail() {
	echo "FAIL $1${2:+ ($2)}"
	failed=$((failed + 1))
}

# A program the check needs and cannot have: a failure, never a skip.
missing() {
	fail "$1" "cannot run: $2"
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

if [ ! -f "$LIB" ]; then
	fail "libmm.so" "no such file: $LIB"
	finish
fi

WORK=$(mktemp -d) || exit 1
trap 'rm -rf "$WORK"' EXIT

# Run a command with mm preloaded.  ld.so only warns when it cannot load
# the library, so its stderr is checked for that by the callers (bad_ld).
# A command that hangs (a deadlock under mm) is killed after PRELOAD_TIMEOUT
# seconds and fails its check, rather than holding CI to its own limit.
pre() {
	timeout -k 10 "${PRELOAD_TIMEOUT:-600}" env LD_PRELOAD="$LIB" "$@"
}

bad_ld() {
	grep -q "ld.so: object .* cannot be preloaded" "$@" 2>/dev/null
}

# ---- mm-active -----------------------------------------------------------

cat >"$WORK/active.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	size_t (*ksize)(const void *) = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "ksize");
	char line[4096];
	int mapped = 0;
	FILE *f;
	void *p;
	char *s;

	if (!ksize) {
		puts("no ksize symbol: mm not loaded");
		return 1;
	}
	p = malloc(100);
	s = strdup("a string from libc");
	if (ksize(p) < 100 || ksize(p) != malloc_usable_size(p)) {
		printf("malloc is not mm's (ksize %zu)\n", ksize(p));
		return 1;
	}
	if (ksize(s) < strlen(s) + 1) {
		puts("libc's strdup does not allocate from mm");
		return 1;
	}
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		mapped |= strstr(line, "libmm.so") != NULL;
	if (f)
		fclose(f);
	free(s);
	free(p);
	puts(mapped ? "mm active" : "libmm.so not mapped");
	return !mapped;
}
EOF
if ! gcc -O1 -o "$WORK/active" "$WORK/active.c" -ldl 2>"$WORK/active.err"; then
	fail mm-active "cannot compile the probe: $(head -1 "$WORK/active.err")"
	finish
fi
out=$(pre "$WORK/active" 2>"$WORK/active.err")
if [ "$out" = "mm active" ] && ! bad_ld "$WORK/active.err"; then
	pass mm-active
else
	fail mm-active "$out $(head -1 "$WORK/active.err")"
	finish		# nothing below would be testing mm
fi

# ---- python --------------------------------------------------------------

# The interpreter itself, not a wrapper script (pyenv shims are shell).
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)

cat >"$WORK/alloc.py" <<'EOF'
import hashlib, json, sys

h = hashlib.sha256()
seed = 12345
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed

# Dicts of strings growing and shrinking (resizes, many small objects).
d = {}
for i in range(200000):
    k = "key%d-%s" % (rnd() % 50000, "x" * (rnd() % 40))
    if rnd() % 4 == 0 and d:
        d.pop(k, None)
    else:
        d[k] = [i, str(i) * (1 + rnd() % 5)]
for k in sorted(d):
    h.update(k.encode())
    h.update(d[k][1].encode())

# Lists that grow by append (realloc) and big slices.
big = []
for i in range(300000):
    big.append(rnd() % 1000003)
big.sort()
h.update(repr(big[::997]).encode())
chunks = [bytes(rnd() % 256 for _ in range(rnd() % 3000)) for _ in range(2000)]
h.update(b"".join(chunks))

# Sets, string building, json round trips.
s = set()
for i in range(100000):
    s.add((rnd() % 70000, "v%d" % (rnd() % 100)))
h.update(repr(sorted(s)[:5000]).encode())
txt = "".join(chr(32 + rnd() % 90) for _ in range(500000))
h.update(txt.upper().replace("A", "bb").encode())
doc = [{"id": i, "name": "n%d" % i, "tags": ["t%d" % j for j in range(i % 7)]} for i in range(20000)]
h.update(json.dumps(json.loads(json.dumps(doc, sort_keys=True)), sort_keys=True).encode())

# Big buffers (beyond the largest buddy block: direct mappings).
b = bytearray(12 * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = i % 251
h.update(hashlib.sha256(b).digest())
b = b * 2
h.update(hashlib.sha256(b).digest())

print(h.hexdigest())
EOF

if [ -z "$PY" ]; then
	missing python-alloc "no python3"
else
	want=$("$PY" "$WORK/alloc.py" 2>&1)
	got=$(PYTHONMALLOC=malloc pre "$PY" "$WORK/alloc.py" 2>"$WORK/py.err")
	if bad_ld "$WORK/py.err"; then
		fail python-alloc "libmm.so not preloaded"
	elif [ -n "$want" ] && [ "$got" = "$want" ]; then
		pass python-alloc
	else
		fail python-alloc "checksum $got, want $want; $(tail -1 "$WORK/py.err")"
	fi
	# And with Python's own small-object allocator in front of mm.
	got=$(pre "$PY" "$WORK/alloc.py" 2>"$WORK/py.err")
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		pass python-alloc-pymalloc
	else
		fail python-alloc-pymalloc "checksum $got, want $want; $(tail -1 "$WORK/py.err")"
	fi
fi

# The stdlib's own tests; Debian ships them in libpython3.X-testsuite.
PYTESTS="test_list test_dict test_set test_sort test_json test_re test_deque"
if [ -n "$PY" ] && ! "$PY" -c 'import test.test_list' 2>/dev/null; then
	ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	case $PY in
	/usr/bin/*)
		"$(dirname "$0")/../scripts/install-deps.sh" packages "libpython$ver-testsuite" || true
		;;
	esac
fi
if [ -z "$PY" ]; then
	missing python-stdlib "no python3"
elif ! "$PY" -c 'import test.test_list' 2>/dev/null; then
	missing python-stdlib "the test package of $PY is not installed (Debian: libpython3.X-testsuite)"
else
	# shellcheck disable=SC2086 # a list of module names
	PYTHONMALLOC=malloc pre "$PY" -m test $PYTESTS >"$WORK/pytest.out" 2>&1
	rc=$?
	# The last line says it: "Result: SUCCESS" in newer Pythons (3.11.7),
	# "Tests result: SUCCESS" before (Debian 12's 3.11.2); the count is
	# "run=N" in the newer summary, "All N tests OK." in both.
	if [ $rc -eq 0 ] && grep -Eq "^(Tests r|R)esult: SUCCESS$" "$WORK/pytest.out" &&
	   ! bad_ld "$WORK/pytest.out"; then
		pass "python-stdlib ($(grep -Eo '^All [0-9]+ tests OK' "$WORK/pytest.out" | tail -1))"
	else
		fail python-stdlib "exit $rc: $(grep -E '[Rr]esult|failed|FAIL' "$WORK/pytest.out" | head -3 | tr '\n' ' ')"
	fi
fi

# ---- git -----------------------------------------------------------------

# Everything that could make two runs differ is fixed.
git_run() {
	dir=$1
	shift
	mkdir -p "$dir" && cd "$dir" || return 1
	export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
		GIT_AUTHOR_NAME=mm GIT_AUTHOR_EMAIL=mm@example.com \
		GIT_COMMITTER_NAME=mm GIT_COMMITTER_EMAIL=mm@example.com \
		GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
	"$@" git -c init.defaultBranch=main init -q . &&
	"$PY" "$WORK/gen_tree.py" 1 &&
	"$@" git add -A &&
	"$@" git commit -q -m "3000 files" &&
	"$PY" "$WORK/gen_tree.py" 2 &&
	"$@" git add -A &&
	"$@" git commit -q -m "changes" &&
	"$@" git -c gc.auto=0 gc -q &&
	"$@" git fsck --full --strict --no-progress &&
	{
		"$@" git log --oneline | wc -l
		"$@" git rev-parse HEAD "HEAD^{tree}" "HEAD~1^{tree}"
		"$@" git ls-files | wc -l
		"$@" git diff --stat HEAD~1 | tail -1
		"$@" git cat-file -p HEAD:dir17/file0707.txt | sha256sum
	}
}

cat >"$WORK/gen_tree.py" <<'EOF'
import os, sys
gen = int(sys.argv[1])
seed = 4242 + gen
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed
for i in range(3000):
    if gen == 2 and i % 7:
        continue
    d = "dir%d" % (i % 30)
    os.makedirs(d, exist_ok=True)
    n = 50 + rnd() % 4000
    words = " ".join("w%d" % (rnd() % 5000) for _ in range(n // 6))
    with open(os.path.join(d, "file%04d.txt" % i), "w") as f:
        f.write("generation %d file %d\n%s\n" % (gen, i, words))
EOF

if ! command -v git >/dev/null; then
	missing git "no git"
elif [ -z "$PY" ]; then
	missing git "no python3 to make the files"
else
	want=$( (git_run "$WORK/git-ref") 2>&1)
	got=$( (git_run "$WORK/git-mm" pre) 2>&1)
	if [ -n "$want" ] && [ "$got" = "$want" ] && ! echo "$got" | grep -q "ld.so"; then
		pass "git ($(echo "$got" | sed -n 2p | cut -c1-12))"
	else
		fail git "got [$(echo "$got" | tr '\n' ' ' | cut -c1-200)], want [$(echo "$want" | tr '\n' ' ' | cut -c1-200)]"
	fi
fi

# ---- gcc -----------------------------------------------------------------

cat >"$WORK/prog.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *l, *r; unsigned key; };

static struct node *insert(struct node *t, unsigned key)
{
	if (!t) {
		t = calloc(1, sizeof(*t));
		t->key = key;
		return t;
	}
	if (key < t->key)
		t->l = insert(t->l, key);
	else if (key > t->key)
		t->r = insert(t->r, key);
	return t;
}

static unsigned long walk(struct node *t, unsigned long h)
{
	if (!t)
		return h;
	h = walk(t->l, h);
	h = h * 31 + t->key;
	h = walk(t->r, h);
	free(t);
	return h;
}

static int cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	enum { N = 1000000 };
	unsigned *v = malloc(N * sizeof(*v)), s = 1, primes = 0;
	char *sieve = calloc(N, 1);
	struct node *t = NULL;
	unsigned long h = 0;

	for (unsigned i = 0; i < N; i++)
		v[i] = s = s * 1103515245u + 12345u;
	qsort(v, N, sizeof(*v), cmp);
	for (unsigned i = 0; i < N; i += 1000)
		h = h * 131 + v[i];
	for (unsigned i = 2; i < N; i++) {
		if (sieve[i])
			continue;
		primes++;
		for (unsigned long j = (unsigned long)i * i; j < N; j += i)
			sieve[j] = 1;
	}
	for (unsigned i = 0; i < 100000; i++)
		t = insert(t, v[(i * 7919u) % N] % 1000003u);
	printf("%lu %u %lu\n", h, primes, walk(t, 0));
	free(sieve);
	free(v);
	return 0;
}
EOF

if ! command -v gcc >/dev/null; then
	missing gcc "no gcc"
else
	(cd "$WORK" && gcc -O2 -S -o ref.s prog.c && gcc -O2 -o prog-ref prog.c) 2>"$WORK/gcc-ref.err"
	(cd "$WORK" && pre gcc -O2 -S -o mm.s prog.c && pre gcc -O2 -o prog-mm prog.c) 2>"$WORK/gcc-mm.err"
	want=$("$WORK/prog-ref" 2>&1)
	got=$("$WORK/prog-mm" 2>&1)
	got_pre=$(pre "$WORK/prog-mm" 2>&1)
	if [ ! -s "$WORK/mm.s" ] || bad_ld "$WORK/gcc-mm.err"; then
		fail gcc "compiling with mm failed: $(head -2 "$WORK/gcc-mm.err" | tr '\n' ' ')"
	elif ! cmp -s "$WORK/ref.s" "$WORK/mm.s"; then
		fail gcc "assembly differs from gcc without mm"
	elif [ -z "$want" ] || [ "$got" != "$want" ] || [ "$got_pre" != "$want" ]; then
		fail gcc "program printed [$got] / under mm [$got_pre], want [$want]"
	else
		pass gcc
	fi
fi

# ---- sort ----------------------------------------------------------------

if [ -z "$PY" ]; then
	missing sort "no python3 to make the input"
else
	"$PY" - "$WORK/lines.txt" <<'EOF'
import sys
seed = 777
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed
with open(sys.argv[1], "w") as f:
    for i in range(600000):
        f.write("%08d %s %d\n" % (rnd() % 100000000, "z" * (rnd() % 60), rnd() % 1000))
EOF
	export LC_ALL=C
	sort -k2,2 -k1,1n "$WORK/lines.txt" >"$WORK/sorted-ref"
	pre sort -k2,2 -k1,1n "$WORK/lines.txt" >"$WORK/sorted-mm" 2>"$WORK/sort.err"
	ok=$?
	# A small buffer forces temporary files and merging; threads too.
	pre sort --parallel=4 -S 2M -T "$WORK" -k2,2 -k1,1n "$WORK/lines.txt" \
		>"$WORK/sorted-mm2" 2>>"$WORK/sort.err"
	ok2=$?
	if [ $ok -ne 0 ] || [ $ok2 -ne 0 ] || bad_ld "$WORK/sort.err"; then
		fail sort "exit $ok/$ok2: $(head -1 "$WORK/sort.err")"
	elif [ ! -s "$WORK/sorted-ref" ] || ! cmp -s "$WORK/sorted-ref" "$WORK/sorted-mm" ||
	     ! cmp -s "$WORK/sorted-ref" "$WORK/sorted-mm2"; then
		fail sort "output differs from sort without mm"
	else
		pass sort
	fi
fi

# ---- mm-reports ----------------------------------------------------------

reports=$(grep -h '^BUG [^ ]* (mm): ' "$WORK"/*.err "$WORK"/*.out 2>/dev/null | head -3)
if [ -n "$reports" ]; then
	fail mm-reports "$reports"
else
	pass mm-reports
fi

finish
