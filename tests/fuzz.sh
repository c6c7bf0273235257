#!/bin/sh
# tests/fuzz.sh: build the fuzzer (tests/fuzz_mm.c) for a configuration and
# run it.
#
#   tests/fuzz.sh [DEFCONFIG] [libFuzzer option or path...]
#
# DEFCONFIG is a host configuration (host_debug, the default: the checks
# and the allocator's own assertions), switched to the prefixed facade --
# the sanitizers bring their own malloc -- and built into
# build/fuzz/DEFCONFIG with clang, libFuzzer, AddressSanitizer and UBSan.
# Without more arguments it runs make check's way: 4000 runs with a fixed
# seed, the seed corpus tests/fuzz-corpus first, then inputs mutated from
# it (which ones still depends a little on where the kernel puts the
# mappings).  Other arguments go to libFuzzer instead: for example
# '-max_total_time=600 DIR tests/fuzz-corpus' for a campaign that keeps
# what it finds in the directory DIR (make it first), or a crash file to
# replay.  FUZZ_DIR=dir builds there instead.
set -eu
def=host_debug
case ${1:-} in -*|*/*|'') ;; *) [ -e "$1" ] || { def=$1; shift; } ;; esac
# Paths are the caller's: made absolute before the cd below.
n=$#
for a in "$@"; do
	case $a in -*|/*) ;; *) a=$PWD/$a ;; esac
	set -- "$@" "$a"
done
shift "$n"
cd "$(dirname "$0")/.."
o=${FUZZ_DIR:-build/fuzz/$def}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
flags="$flags -fsanitize-coverage-ignorelist=$PWD/tests/fuzz-nocov.txt"

scripts/install-deps.sh fuzz
mk() { make -s O="$o" KCONFIG_CONFIG="$o/.config" CC=clang "$@"; }
mk "${def}_defconfig" >/dev/null
kconfig-tweak --file "$o/.config" --disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED \
	--disable MM_PANIC_ON_ERROR
mk olddefconfig >/dev/null
mk -j"$(nproc 2>/dev/null || echo 2)" fuzz EXTRA_CFLAGS="$flags" EXTRA_LDFLAGS="$flags"

# ASan's own checks of the heap stay out of mm's way: mm is not ASan's malloc.
# Nor does libFuzzer look for leaks: it would run an input that starts a
# thread a second time (pthread_create's allocations), from the state the
# first run left.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
if [ $# -eq 0 ]; then
	# What the run adds goes to a directory of its own, emptied first, so
	# that every run starts from the seed corpus alone.  Inputs as long
	# as the longest seed: libFuzzer cuts a seed to -max_len.
	rm -rf "$o/corpus-run"
	mkdir -p "$o/corpus-run"
	exec "$o/tests/fuzz_mm" -artifact_prefix="$o/" -detect_leaks=0 -runs=4000 -max_len=2048 -seed=1 \
		-print_final_stats=1 "$o/corpus-run" tests/fuzz-corpus
fi
exec "$o/tests/fuzz_mm" -artifact_prefix="$o/" -detect_leaks=0 "$@"
