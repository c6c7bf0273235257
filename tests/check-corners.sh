#!/bin/sh
# Options a user can change in menuconfig that no defconfig changes: each
# variant of host_defconfig -- or of the defconfig named before a colon --
# must build warning-free and pass the tests it builds (a
# random-configuration campaign found each of these broken).  An option is
# turned off, or on with a leading '+', or set with '='.  The smallest
# largest block (MM_MAX_ORDER=1, the heap up to 4 KiB: MM_HEAP_MAX_KB's
# default follows it): classes no slab suits, no per-thread caches, direct
# mappings from 8 KiB; host_static at MM_MAX_ORDER=2: kfree()'s inline path
# without class bytes or magazines.
#
#   tests/check-corners.sh            every variant, JOBS (the CPUs) at a time
#   tests/check-corners.sh VARIANT    one, e.g. "MM_TRIM" or "host_static: MM_MAX_ORDER=2"
#
# The variants are independent builds, so they run side by side, each
# with one make job: the configuration steps, the links and most test
# programs are one process, which at -j2 one variant after another left
# a CPU idle through (make check runs them one at a time in the
# background instead, beside its other steps).  Each variant's output goes
# to build/check/corner-*.log; a failure prints its first errors.  What a
# variant has to show is that it builds and passes, not a long campaign
# (the defconfigs' builds run those): no debug information, and the
# randomised tests at a quarter of their rounds (MM_TEST_SCALE=4), 18 s
# a variant -> 14.
set -u
cd "$(dirname "$0")/.."

VARIANTS='MM_SLAB
MM_KMALLOC
MM_BACKEND_STATIC
MM_VALIDATE
MM_BACKEND_MMAP MM_BACKEND_SBRK MM_BACKEND_STATIC
MM_REPORTS
+MM_PANIC_ON_ERROR
MM_REPORTS +MM_PANIC_ON_ERROR
MM_LOCK_PTHREAD +MM_LOCK_NONE
MM_LOCK_PTHREAD +MM_LOCK_NONE MM_PAGE_CLASS
MM_KMALLOC_SHIFT_HIGH=6
MM_KMALLOC_SHIFT_LOW=7 MM_KMALLOC_SHIFT_HIGH=16
MM_KMALLOC_SHIFT_LOW=5 MM_KMALLOC_SHIFT_HIGH=11 MM_KMALLOC_FINE MM_SLAB_MAX_ORDER=1 MM_HEAP_MIN=1024
MM_HEAP_MIN=256 MM_SLAB_MAX_ORDER=0 MM_KMALLOC_96_192
MM_MAX_ORDER=5
MM_MAX_ORDER=18
MM_TRIM
MM_TRIM_THRESHOLD_KB=1 MM_PCP_PAGES=1
MM_LOCK_SINGLE_THREAD_ELIDE
MM_KMALLOC_SHIFT_HIGH=9 MM_HEAP
MM_CHECKS MM_FREE_MARK
MM_SLAB_MAX_EMPTY=0
MM_MAX_ORDER=1
MM_MAX_ORDER=4 MM_HEAP
MM_KMALLOC_SHIFT_LOW=7 MM_HEAP
MM_HEAP_MAX_KB=7 MM_KMALLOC_96_192
host_static: MM_MAX_ORDER=2'

corner() {
	v=$1
	base=host
	case $v in *:*) base=${v%%:*} v=${v#*: } ;; esac
	name=corner-$(echo "$v" | tr ' +=' '-p_')
	[ "$base" = host ] || name=corner-$base-${name#corner-}
	o=build/check/$name
	m="make -s O=$o KCONFIG_CONFIG=$o/.config"
	$m "${base}_defconfig" >/dev/null &&
		for opt in $v; do
			case $opt in
			+*) kconfig-tweak --file "$o/.config" --enable "${opt#+}" ;;
			*=*) kconfig-tweak --file "$o/.config" --set-val "${opt%%=*}" "${opt#*=}" ;;
			*) kconfig-tweak --file "$o/.config" --disable "$opt" ;;
			esac || return 1
		done &&
		$m olddefconfig >/dev/null &&
		$m -j1 all tests EXTRA_CFLAGS=-g0 >"$o.log" 2>&1 &&
		MM_TEST_SCALE=4 $m test TEST_JOBS=1 EXTRA_CFLAGS=-g0 >>"$o.log" 2>&1 && {
		echo "ok: ${base}_defconfig, $v"
		return 0
	}
	echo "FAILED: ${base}_defconfig, $v (off, on with +, or set with =):"
	grep -m12 "error\|FAILED\|panic\|^stress_" "$o.log"
	return 1
}

if [ $# -eq 1 ]; then
	corner "$1"
	exit
fi

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 1)}
t0=$(date +%s)
# One line per variant into xargs; each runs this script on its own, and
# its report is printed whole when it ends.
n=$(echo "$VARIANTS" | wc -l)
out=$(echo "$VARIANTS" | xargs -P "$JOBS" -I{} sh -c 'r=$(tests/check-corners.sh "$0" 2>&1); echo "$r"' {})
echo "$out"
failed=$(echo "$out" | grep -c '^FAILED')
passed=$(echo "$out" | grep -c '^ok:')
echo "corners: $passed passed, $failed failed of $n, in $(($(date +%s) - t0)) s, $JOBS at a time"
[ "$failed" -eq 0 ] && [ "$passed" -eq "$n" ]
