#!/bin/sh
# bench/run-micro.sh [case...]: instruction counts of the hot paths.
#
# Builds bench/micro in five configurations, each in its own directory
# with its own KCONFIG_CONFIG, runs it under callgrind and prints a
# markdown table of instructions per alloc+free pair:
#
#   nolock    configs/host_release_defconfig tweaked with kconfig-tweak:
#             MM_LOCK_NONE, no MM_PERCPU_CACHE, MM_MALLOC_PREFIXED, no
#             MM_FREE_MARK (the bare single-thread paths the targets are
#             set for)
#   nolock-mark  the same with MM_FREE_MARK, as release has it: what the
#             double-free mark costs the locked paths
#   release   configs/host_release_defconfig as is: pthread lock,
#             per-thread magazines, the free mark instead of the checks,
#             no statistics
#   spin      the same with MM_LOCK_SPIN instead of the pthread mutex
#   default   configs/host_defconfig: checks and statistics on
#
# Then 'micro mem' (natively) for the memory overhead of 100,000 live
# 64-byte objects.  Results also go to build/bench-results/micro.md.
#
# Environment: CONFIGS="nolock release default" to choose, KEEP=1 to keep
# the callgrind output files, CHECK=1 to fail (exit 1) when the nolock
# configuration misses a target below -- instruction counts, unlike
# times, are the same from run to run, so they may guard against a
# regression ('make check' runs CONFIGS=nolock CHECK=1).
set -eu
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null 2>&1 && test -f /usr/include/valgrind/callgrind.h ||
	scripts/install-deps.sh bench
command -v kconfig-tweak >/dev/null 2>&1 || scripts/install-deps.sh config

CONFIGS=${CONFIGS:-"nolock nolock-mark release spin default"}
CHECK=${CHECK:-0}
. bench/common.sh

# The targets, for the nolock configuration: instructions a pair (the
# issues' figures), and the memory of 100,000 live 64-byte objects.
target() {
	case $1 in
	buddy-pcp) echo "< 80" ;;
	buddy-mixed) echo "< 200" ;;
	cache64) echo "<= 30" ;;
	kmalloc64) echo "<= 45" ;;
	esac
}
MEM_TARGET=1.05

# configure NAME: (re)create build/bench-NAME/.config
configure() {
	o=build/bench-$1
	case $1 in
	nolock|nolock-mark)
		mk "$1" host_release_defconfig >/dev/null
		kconfig-tweak --file "$o/.config" \
			--disable MM_LOCK_PTHREAD --enable MM_LOCK_NONE \
			--disable MM_PERCPU_CACHE \
			--disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED
		[ "$1" = nolock ] && kconfig-tweak --file "$o/.config" --disable MM_FREE_MARK
		mk "$1" olddefconfig
		if [ "$1" = nolock ]; then
			! grep -q '^CONFIG_MM_FREE_MARK=y' "$o/.config"
		else
			grep -q '^CONFIG_MM_FREE_MARK=y' "$o/.config"
		fi || { echo "run-micro: MM_FREE_MARK did not stick in $o/.config" >&2; exit 1; }
		for opt in MM_LOCK_NONE MM_MALLOC_PREFIXED; do
			grep -q "^CONFIG_$opt=y" "$o/.config" ||
				{ echo "run-micro: CONFIG_$opt did not stick in $o/.config" >&2; exit 1; }
		done
		! grep -q '^CONFIG_MM_PERCPU_CACHE=y' "$o/.config" ||
			{ echo "run-micro: MM_PERCPU_CACHE still on in $o/.config" >&2; exit 1; }
		;;
	release) mk "$1" host_release_defconfig >/dev/null ;;
	spin)
		mk "$1" host_release_defconfig >/dev/null
		kconfig-tweak --file "$o/.config" --disable MM_LOCK_PTHREAD --enable MM_LOCK_SPIN
		mk "$1" olddefconfig
		grep -q '^CONFIG_MM_LOCK_SPIN=y' "$o/.config" ||
			{ echo "run-micro: CONFIG_MM_LOCK_SPIN did not stick in $o/.config" >&2; exit 1; }
		;;
	default) mk "$1" host_defconfig >/dev/null ;;
	*) echo "run-micro: unknown configuration $1" >&2; exit 2 ;;
	esac
}

# Instructions per iteration of each case, from the per-dump totals:
# (I(N2) - I(N1)) / (N2 - N1).  Prints "case value" lines.
per_iter() {
	for f in "$1".*; do
		awk '/^desc: Trigger: Client Request: / { tag = $5 " " $6 }
		     /^(summary|totals):/ { tot = $2 }
		     END { if (tag != "") print tag, tot }' "$f"
	done | awk '{ n[$1, ++k[$1]] = $2; i[$1, k[$1]] = $3 }
		END { for (c in k) if (k[c] == 2) {
			d = (n[c, 2] > n[c, 1]) ? 2 : 1; e = 3 - d
			printf "%s %.3f\n", c, (i[c, d] - i[c, e]) / (n[c, d] - n[c, e]) } }'
}

for cfg in $CONFIGS; do
	configure "$cfg"
	mk "$cfg" -j"$JOBS" bench-bins
	out=$RES/cg-$cfg
	rm -f "$out" "$out".*
	echo "callgrind: $cfg" >&2
	valgrind --tool=callgrind --callgrind-out-file="$out" \
		build/bench-"$cfg"/bench/micro "$@" >/dev/null 2>"$RES/valgrind-$cfg.log" ||
		{ cat "$RES/valgrind-$cfg.log" >&2; exit 1; }
	per_iter "$out" > "$RES/iter-$cfg.txt"
	[ "${KEEP:-0}" = 1 ] || rm -f "$out" "$out".*
	build/bench-"$cfg"/bench/micro mem > "$RES/mem-$cfg.txt"
done

# The table: pair cost = case per iteration - its baseline per iteration.
list=build/bench-$(set -- $CONFIGS; echo "$1")/bench/micro
{
	echo "Instructions per alloc+free pair (callgrind, x86-64; loop and baseline subtracted)"
	echo
	printf '| case | what |'
	for cfg in $CONFIGS; do printf ' %s |' "$cfg"; done
	printf ' target |\n|---|---|'
	for cfg in $CONFIGS; do printf -- '---:|'; done
	printf -- '---|\n'
	"$list" list | while read -r name base what; do
		[ "$base" = - ] && continue
		printf '| %s | %s |' "$name" "$what"
		for cfg in $CONFIGS; do
			awk -v c="$name" -v b="$base" '$1 == c { v = $2 } $1 == b { w = $2 }
				END { if (v == "") printf " n/a |"; else printf " %.1f |", v - w }' \
				"$RES/iter-$cfg.txt"
		done
		printf ' %s |\n' "$(target "$name")"
	done
	echo
	echo "Memory: 100,000 live 64-byte objects in a kmem_cache, bytes / 6,400,000"
	echo
	echo "| config | objects per slab | slabs | slab pages | slab pages + metadata | whole default arena held |"
	echo "|---|---:|---:|---:|---:|---:|"
	for cfg in $CONFIGS; do
		awk -v cfg="$cfg" '
			/^cache / { ops = $9 " per " $12 }
			/^live objects/ { sl = $4; sub(/\(/, "", sl) }
			/^slab pages/ { a = $NF }
			/^slabs \+ page metadata/ { b = $NF }
			/^whole arena held/ { c = $7 }
			END { printf "| %s | %s | %s | %s | **%s** | %s |\n", cfg, ops, sl, a, b, c }' \
			"$RES/mem-$cfg.txt"
	done
	echo
	echo "(metadata: MM_META_BYTES per page, 2 on hosts; slab headers are inside the slabs. The last"
	echo "column is everything the default arena took from its backend, free pages"
	echo "kept by the growth policy and other users of the arena included.)"
} | tee "$RES/micro.md"

[ "$CHECK" = 1 ] || exit 0
case " $CONFIGS " in
*" nolock "*) ;;
*) echo "run-micro: CHECK=1 needs the nolock configuration" >&2; exit 2 ;;
esac
missed=0
"$list" list | while read -r name base what; do
	[ "$base" = - ] && continue
	t=$(target "$name")
	[ -n "$t" ] || continue
	awk -v c="$name" -v b="$base" -v t="$t" '$1 == c { v = $2 } $1 == b { w = $2 }
		END { if (v == "" || w == "") { print "MISSED " c ": no result"; exit 1 }
		      split(t, a, " "); x = v - w
		      ok = a[1] == "<" ? x < a[2] : x <= a[2]
		      printf "%s %s: %.1f instructions a pair (target %s)\n",
			     ok ? "ok" : "MISSED", c, x, t
		      exit !ok }' "$RES/iter-nolock.txt" || echo missed
done | tee "$RES/check-micro.txt"
mem=$(awk '/^slabs \+ page metadata/ { print $NF }' "$RES/mem-nolock.txt")
if [ -n "$mem" ] && awk -v m="$mem" -v t="$MEM_TARGET" 'BEGIN { exit !(m + 0 <= t + 0) }'; then
	echo "ok memory: 100,000 live 64-byte objects cost $mem x their size (target <= $MEM_TARGET)"
else
	echo "MISSED memory: 100,000 live 64-byte objects cost $mem x their size (target <= $MEM_TARGET)"
	missed=1
fi
grep -q '^missed$' "$RES/check-micro.txt" && missed=1
# Every target was looked at: a case that vanished from 'micro list' is a miss.
[ "$(grep -c '^ok ' "$RES/check-micro.txt")" = 4 ] || {
	echo "run-micro: $(grep -c '^ok ' "$RES/check-micro.txt") of 4 targets met or measured" >&2
	missed=1
}
[ "$missed" = 0 ]
