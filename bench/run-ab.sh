#!/bin/sh
# bench/run-ab.sh: interleaved A/B runs of libmm.so builds on the workloads.
#
#   bench/run-ab.sh build/bench-a build/bench-b ...   (each holds a libmm.so)
#
# For a change to the allocator: each round runs every build on a workload
# back to back (the order alternates from round to round), and the table
# gives each build's median wall time and median peak RSS, and both as a
# ratio to the first build's.  The workloads program is the release
# build's (build/bench-release/bench/workloads; run bench/run-peers.sh or
# `make O=build/bench-release bench-bins` first).
#
# Environment: ROUNDS=5, SCALE=1, WORKLOADS="churn64 mixed listwalk large
# prodcons larson rss"; ASLR=0 (address randomisation off, as in run-peers.sh).
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SCALE=${SCALE:-1}
WORKLOADS=${WORKLOADS:-"churn64 mixed listwalk large prodcons larson rss"}
BIN=build/bench-release/bench/workloads
. bench/common.sh
[ -x "$BIN" ] || { echo "run-ab: no $BIN" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: run-ab.sh BUILD_DIR..." >&2; exit 2; }
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for w in $WORKLOADS; do
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		if [ $((r % 2)) = 0 ]; then order="$*"; else
			order=$(for b in "$@"; do echo "$b"; done | tac | tr '\n' ' '); fi
		for b in $order; do
			RSS_SAMPLE= LD_PRELOAD="$b/libmm.so" $NORAND "$BIN" "$w" "$SCALE" |
				awk -v b="$b" '/^RESULT/ { print $2, b, $3, $5 }' >>"$raw"
		done
		r=$((r + 1))
	done
done
first=$1
awk -v first="$first" "$MEDIAN_AWK"'
function med(s,   a, n, i) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) a[i] += 0
	return median(a, n)
}
{ t[$1 SUBSEP $2] = t[$1 SUBSEP $2] " " $3; m[$1 SUBSEP $2] = m[$1 SUBSEP $2] " " $4
  if (!($1 in seen)) { seen[$1] = 1; ws[++nw] = $1 }
  if (!($2 in seenb)) { seenb[$2] = 1; bs[++nb] = $2 } }
END {
	printf "%-10s %-28s %10s %7s %10s %7s\n", "workload", "build", "time", "ratio", "peak KiB", "ratio"
	for (i = 1; i <= nw; i++) {
		w = ws[i]; t0 = med(t[w SUBSEP first]); m0 = med(m[w SUBSEP first])
		for (j = 1; j <= nb; j++) {
			b = bs[j]; tt = med(t[w SUBSEP b]); mm = med(m[w SUBSEP b])
			printf "%-10s %-28s %10.4f %7.3f %10d %7.3f\n", w, b, tt, tt / t0, mm, mm / m0
		}
	}
}' "$raw"
