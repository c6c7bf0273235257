#!/bin/sh
# bench/run-peers.sh: libmm.so against glibc, jemalloc, mimalloc and tcmalloc.
#
# One program, bench/workloads.c, plain malloc/free, run once per workload
# and allocator: glibc without preload, the others with LD_PRELOAD.  Rounds
# are interleaved (each round runs every allocator on a workload back to
# back, in an order that rotates and alternates direction from round to
# round), so drift in the machine's load hits every allocator alike.
#
# Reported, per workload: the median over rounds of wall time / glibc's wall
# time in the same round, the median of peak RSS (ru_maxrss) / glibc's, and
# for the fluctuating 160 MiB workload peak RSS / peak requested bytes.
#
# Environment:
#   ROUNDS=7        rounds (a full run takes about 2-3 minutes on 2 cores)
#   SCALE=1         work per workload (iterations; the rss workload's live set)
#   WORKLOADS="churn64 mixed listwalk large buffers prodcons larson rss"
#   LEAN=1          also run libmm.so built from host_lean_defconfig (the
#                   heap serves everything above 512 bytes; 0: only the
#                   release configuration)
#   CALLGRIND=1     also count instructions of malloc(64)+free under callgrind
#                   for every allocator (0: skip)
#   SAMPLED=1       after the timed rounds, one run of each allocator on each
#                   workload with RSS_SAMPLE=1 (bench/workloads.c): the peak
#                   resident set read from the page tables, total and
#                   anonymous, exact where ru_maxrss moves in steps of 128
#                   KiB (0: skip)
#   ASLR=0          run the workloads without address space randomisation
#                   (setarch -R, where it works; 1: as the system does).  How
#                   many pages of the C library a run makes resident depends
#                   on where ASLR puts it -- the kernel maps up to 16 cached
#                   file pages around each fault, in windows aligned in the
#                   address space -- which moved the peak RSS of the 2 MiB
#                   workloads by 100-150 KiB from run to run; without it the
#                   same run gives the same peak.
# Results: build/bench-results/peers.md (table), peers-raw.txt (every run).
set -eu
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
SCALE=${SCALE:-1}
WORKLOADS=${WORKLOADS:-"churn64 mixed listwalk large buffers prodcons larson rss"}
LEAN=${LEAN:-1}
CALLGRIND=${CALLGRIND:-1}
SAMPLED=${SAMPLED:-1}
ASLR=${ASLR:-0}
. bench/common.sh

# ---- Build: libmm.so (release) and the workloads program -----------------
mk release host_release_defconfig >/dev/null
mk release -j"$JOBS" bench-bins
BIN=build/bench-release/bench/workloads
if [ "$LEAN" = 1 ]; then
	mk lean host_lean_defconfig >/dev/null
	mk lean -j"$JOBS" all
fi

# ---- The allocators --------------------------------------------------------
libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
find_lib() {
	for f in "$@"; do
		[ -f "$libdir/$f" ] && { echo "$libdir/$f"; return 0; }
	done
	return 1
}
peers_missing() {
	! find_lib libjemalloc.so.2 >/dev/null || ! find_lib libmimalloc.so.2 >/dev/null ||
		! find_lib libtcmalloc_minimal.so.4 >/dev/null
}
peers_missing && scripts/install-deps.sh bench || true

ALLOCS="glibc"
lib_glibc=
add_alloc() {	# name path
	[ -n "$2" ] || { echo "run-peers: $1 not found in $libdir, skipped" >&2; return 0; }
	ALLOCS="$ALLOCS $1"
	eval "lib_$1=\$2"
}
add_alloc jemalloc "$(find_lib libjemalloc.so.2 libjemalloc.so || true)"
add_alloc mimalloc "$(find_lib libmimalloc.so.2 libmimalloc.so || true)"
add_alloc tcmalloc "$(find_lib libtcmalloc_minimal.so.4 libtcmalloc_minimal.so || true)"
add_alloc mm "$PWD/build/bench-release/libmm.so"
[ "$LEAN" = 1 ] && add_alloc mm_lean "$PWD/build/bench-lean/libmm.so"
NALLOC=$(echo $ALLOCS | wc -w)

# ---- Interleaved rounds ----------------------------------------------------
RAW=$RES/peers-raw.txt
: > "$RAW"
echo "run-peers: $ROUNDS rounds of $WORKLOADS on: $ALLOCS" >&2
echo "run-peers: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
load0=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
r=0
while [ "$r" -lt "$ROUNDS" ]; do
	# Rotate by the round number; every other round runs the list backwards.
	order=$(echo $ALLOCS | tr ' ' '\n' | awk -v r="$r" -v n="$NALLOC" \
		'{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) {
			k = (r % 2) ? (n - 1 - i) : i; print a[(k + r) % n] } }')
	for w in $WORKLOADS; do
		for a in $order; do
			eval "lib=\$lib_$a"
			if line=$(RSS_SAMPLE= LD_PRELOAD=$lib timeout 300 $NORAND "$BIN" "$w" "$SCALE" 2>"$RES/peers-stderr.txt"); then
				echo "$r $a $line" >> "$RAW"
			else
				echo "run-peers: $a failed on $w (round $r):" >&2
				cat "$RES/peers-stderr.txt" >&2
				echo "$r $a FAIL $w" >> "$RAW"
			fi
		done
	done
	r=$((r + 1))
	echo "run-peers: round $r/$ROUNDS done ($(($(date +%s) - start)) s)" >&2
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- The peak resident set, sampled (one run each, not timed) --------------
if [ "$SAMPLED" = 1 ]; then
	for w in $WORKLOADS; do
		for a in $ALLOCS; do
			eval "lib=\$lib_$a"
			if line=$(RSS_SAMPLE=1 LD_PRELOAD=$lib timeout 600 $NORAND "$BIN" "$w" "$SCALE" \
				  2>"$RES/peers-stderr.txt" | grep '^SAMPLED'); then
				echo "S $a $line" >> "$RAW"
			else
				echo "run-peers: $a failed on $w (sampled run):" >&2
				cat "$RES/peers-stderr.txt" >&2
			fi
		done
	done
	echo "run-peers: sampled runs done ($(($(date +%s) - start)) s)" >&2
fi

# ---- Instructions of malloc(64)+free under callgrind ---------------------
CG=$RES/peers-callgrind.txt
: > "$CG"
if [ "$CALLGRIND" = 1 ] && command -v valgrind >/dev/null 2>&1; then
	for a in $ALLOCS; do
		eval "lib=\$lib_$a"
		out=$RES/cg-peer-$a
		rm -f "$out" "$out".*
		LD_PRELOAD=$lib valgrind --tool=callgrind --callgrind-out-file="$out" \
			"$BIN" pair64 >/dev/null 2>&1 || { echo "$a n/a" >> "$CG"; continue; }
		for f in "$out".*; do
			awk '/^desc: Trigger: Client Request: / { tag = $5 " " $6 }
			     /^(summary|totals):/ { tot = $2 }
			     END { if (tag != "") print tag, tot }' "$f"
		done | awk -v a="$a" '{ n[$1, ++k[$1]] = $2; i[$1, k[$1]] = $3 }
			END { for (c in k) v[c] = (i[c, 2] - i[c, 1]) / (n[c, 2] - n[c, 1]);
			      printf "%s %.1f\n", a, v["malloc64"] - v["base-pair"] }' >> "$CG"
		rm -f "$out" "$out".*
	done
fi

# ---- The tables ------------------------------------------------------------
awk -v allocs="$ALLOCS" -v workloads="$WORKLOADS" -v rounds="$ROUNDS" \
    -v load0="$load0" -v load1="$load1" -v cgfile="$CG" -v norand="${NORAND:-no}" "$MEDIAN_AWK"'
$3 == "FAIL" { fail[$4, $2] = 1; next }
$3 == "SAMPLED" { if ($5 > 0 && $6 > 0) { srss[$4, $2] = $5; sanon[$4, $2] = $6 }; next }
$3 == "RESULT" {
	# round alloc RESULT name wall cpu maxrss rss0 peak
	r = $1; a = $2; w = $4
	wall[w, a, r] = $5; cpu[w, a, r] = $6; rss[w, a, r] = $7; peak[w, a, r] = $9
}
END {
	na = split(allocs, A, " "); nw = split(workloads, W, " ")
	while ((getline line < cgfile) > 0) { split(line, f, " "); cg[f[1]] = f[2] }
	title["glibc"] = "glibc"; title["jemalloc"] = "jemalloc"; title["mimalloc"] = "mimalloc"
	title["tcmalloc"] = "tcmalloc"; title["mm"] = "**mm**"; title["mm_lean"] = "mm lean"

	for (t = 1; t <= 3; t++) {
		if (t == 1) print "Wall time / glibc (median over " rounds " interleaved rounds; < 1 is faster)\n"
		if (t == 2) print "\nCPU time (user + sys) / glibc (median over rounds)\n"
		if (t == 3) print "\nPeak RSS / glibc (ru_maxrss, median over rounds; < 1 is smaller)\n"
		printf "| workload | glibc |"
		for (i = 2; i <= na; i++) printf " %s |", title[A[i]]
		printf "\n|---|---:|"
		for (i = 2; i <= na; i++) printf "---:|"
		printf "\n"
		for (i = 2; i <= na; i++) { lsum[i] = 0; lcnt[i] = 0 }
		for (k = 1; k <= nw; k++) {
			w = W[k]
			n = 0
			for (r = 0; r < rounds; r++) if ((w, "glibc", r) in wall) {
				n++; g[n] = (t == 1) ? wall[w, "glibc", r] : (t == 2) ? cpu[w, "glibc", r] : rss[w, "glibc", r]
			}
			if (n == 0) { printf "| %s | FAIL |\n", w; continue }
			if (t == 3) printf "| %s | %.0f MiB |", w, median(g, n) / 1024
			else printf "| %s | %.3f s |", w, median(g, n)
			for (i = 2; i <= na; i++) {
				a = A[i]; m = 0
				for (r = 0; r < rounds; r++) if ((w, a, r) in wall && (w, "glibc", r) in wall) {
					m++
					if (t == 1) q[m] = wall[w, a, r] / wall[w, "glibc", r]
					else if (t == 2) q[m] = cpu[w, a, r] / cpu[w, "glibc", r]
					else q[m] = rss[w, a, r] / rss[w, "glibc", r]
				}
				if (m == 0 || (w, a) in fail) { printf " FAIL |"; continue }
				v = median(q, m); printf " %.2f |", v
				lsum[i] += log(v); lcnt[i]++
			}
			printf "\n"
		}
		printf "| **geomean** | 1 |"
		for (i = 2; i <= na; i++) printf (lcnt[i] ? " **%.2f** |" : " - |"), exp(lsum[i] / (lcnt[i] ? lcnt[i] : 1))
		printf "\n"
	}

	if (length(srss)) {
		print "\nPeak resident set / glibc, sampled from /proc/self/smaps_rollup (one run each; in parentheses the anonymous memory / glibc)\n"
		printf "| workload | glibc |"
		for (i = 2; i <= na; i++) printf " %s |", title[A[i]]
		printf "\n|---|---:|"
		for (i = 2; i <= na; i++) printf "---:|"
		printf "\n"
		for (i = 2; i <= na; i++) { lsum[i] = 0; lcnt[i] = 0; asum[i] = 0 }
		for (k = 1; k <= nw; k++) {
			w = W[k]
			if (!((w, "glibc") in srss)) continue
			printf "| %s | %.0f KiB |", w, srss[w, "glibc"]
			for (i = 2; i <= na; i++) {
				a = A[i]
				if (!((w, a) in srss)) { printf " - |"; continue }
				v = srss[w, a] / srss[w, "glibc"]; u = sanon[w, a] / sanon[w, "glibc"]
				printf " %.2f (%.2f) |", v, u
				lsum[i] += log(v); asum[i] += log(u); lcnt[i]++
			}
			printf "\n"
		}
		printf "| **geomean** | 1 |"
		for (i = 2; i <= na; i++)
			printf (lcnt[i] ? " **%.2f** (%.2f) |" : " - |"), exp(lsum[i] / (lcnt[i] ? lcnt[i] : 1)), exp(asum[i] / (lcnt[i] ? lcnt[i] : 1))
		printf "\n"
	}

	if (index(" " workloads " ", " rss ")) {
		print "\nFluctuating live set (rss workload): peak RSS / peak requested bytes\n"
		printf "|"; for (i = 1; i <= na; i++) printf " %s |", title[A[i]]
		printf "\n|"; for (i = 1; i <= na; i++) printf "---:|"
		printf "\n|"
		for (i = 1; i <= na; i++) {
			a = A[i]; m = 0
			for (r = 0; r < rounds; r++) if (("rss", a, r) in rss) { m++; q[m] = rss["rss", a, r] * 1024 / peak["rss", a, r] }
			printf (m ? " %.2f |" : " - |"), (m ? median(q, m) : 0)
		}
		printf "\n"
	}
	if (length(cg)) {
		print "\nInstructions per malloc(64)+free pair (callgrind, hot loop, loop overhead subtracted)\n"
		printf "|"; for (i = 1; i <= na; i++) printf " %s |", title[A[i]]
		printf "\n|"; for (i = 1; i <= na; i++) printf "---:|"
		printf "\n|"; for (i = 1; i <= na; i++) printf " %s |", (A[i] in cg) ? cg[A[i]] : "-"
		printf "\n"
	}
	print "\nLoad average before / after the timed runs: " load0 " / " load1
	print "Address space randomisation turned off by: " norand
}' "$RAW" | tee "$RES/peers.md"
echo "run-peers: $(($(date +%s) - start)) s in all; raw results in $RAW" >&2
