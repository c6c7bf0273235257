#!/bin/sh
# bench/run-programs.sh: what LD_PRELOAD=libmm.so costs a real program in
# resident memory -- small programs above all, where an allocator's fixed
# costs are most of the difference.
#
#   bench/run-programs.sh [BUILD_DIR]      (default build/bench-release)
#
# Each program runs under glibc's malloc and under BUILD_DIR/libmm.so, with
# bench/rssprobe.c's probe preloaded after the allocator: the resident set
# (and its anonymous part) read from the page tables as the program exits;
# rssprobe.c says why at exit.  Address randomisation off (common.sh).
# ROUNDS=3 rounds, medians.  A report, never a test.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
BUILD=${1:-build/bench-release}
ROUNDS=${ROUNDS:-3}
[ -f "$BUILD/libmm.so" ] || mk release host_release_defconfig all
LIBMM=$PWD/$BUILD/libmm.so
PROBE=$PWD/$RES/rssprobe.so
${CC:-cc} -O2 -Wall -Wextra -Werror -shared -fPIC -o "$PROBE" bench/rssprobe.c

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq 1 200000 | awk '{ print ($1 * 7919) % 200003 }' >"$tmp/numbers"
cat >"$tmp/json.py" <<'EOF'
import json
d = [{"k": i, "v": str(i) * 5} for i in range(100000)]
print(len(json.dumps(d)))
EOF
# One big block, built and dropped: is its memory given back?
cat >"$tmp/str.py" <<'EOF'
s = "x" * 5_000_000
del s
EOF

# One run: the probe's line for the program itself (the shell execs it).
run() {
	pre=$1
	shift
	rm -f "$tmp/out"
	RSSPROBE_OUT="$tmp/out" LD_PRELOAD="$pre${pre:+ }$PROBE" \
		sh -c 'RSSPROBE_PID=$$ exec '"$NORAND"' "$@"' sh "$@" >/dev/null 2>&1 || true
	cat "$tmp/out" 2>/dev/null || echo "0 0"
}

raw=$RES/programs-raw.txt
: >"$raw"
n=0
while read -r name cmd; do
	n=$((n + 1))
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		# shellcheck disable=SC2086
		echo "$n $name glibc $(run "" $cmd)" >>"$raw"
		# shellcheck disable=SC2086
		echo "$n $name mm $(run "$LIBMM" $cmd)" >>"$raw"
		r=$((r + 1))
	done
done <<EOF
sleep sleep 0
ls ls -la /usr/lib
sort sort $tmp/numbers -o $tmp/sorted
awk awk {s+=\$1}END{print(s)} $tmp/numbers
git-status git status --short
git-log git log --oneline -n 2000
python3 python3 -c pass
python3-json python3 $tmp/json.py
python3-str python3 $tmp/str.py
EOF

awk "$MEDIAN_AWK"'
function med(s,   a, k, i) { k = split(s, a, " "); for (i = 1; i <= k; i++) a[i] += 0; return median(a, k) }
{ key = $1 " " $2; rss[key, $3] = rss[key, $3] " " $4; anon[key, $3] = anon[key, $3] " " $5
  if (!(key in seen)) { seen[key] = 1; keys[++nk] = key } }
END {
	printf "| program | glibc KiB (anon) | mm KiB (anon) | mm - glibc | ratio |\n|---|---:|---:|---:|---:|\n"
	for (i = 1; i <= nk; i++) {
		k = keys[i]; split(k, f, " ")
		g = med(rss[k, "glibc"]); ga = med(anon[k, "glibc"])
		m = med(rss[k, "mm"]); ma = med(anon[k, "mm"])
		printf "| %s | %d (%d) | %d (%d) | %+d | %.2f |\n", f[2], g, ga, m, ma, m - g, g ? m / g : 0
	}
}' "$raw" | tee "$RES/programs.md"
