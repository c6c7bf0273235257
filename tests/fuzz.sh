#!/bin/sh
# tests/fuzz.sh: build the fuzzer (tests/fuzz_mm.c) for a configuration and
# run it.
#
#   tests/fuzz.sh [DEFCONFIG [libFuzzer option...]]
#
# DEFCONFIG is a host configuration (host_debug: the checks and the
# allocator's own assertions), switched to the prefixed facade -- the
# sanitizers bring their own malloc -- and built into build/fuzz/DEFCONFIG
# with clang, libFuzzer, AddressSanitizer and UBSan.  Without options it
# runs make check's way: the seed corpus tests/fuzz-corpus, then 10000
# inputs of up to 512 bytes mutated from it with a fixed seed (which
# inputs still depends a little on where the kernel puts the mappings).
# Any options go to libFuzzer instead: for example -max_total_time=600
# DIR for a campaign that keeps what it finds in DIR, or a crash file to
# replay.  FUZZ_DIR=dir builds there instead.
set -eu
cd "$(dirname "$0")/.."
def=${1:-host_debug}
[ $# -gt 0 ] && shift
o=${FUZZ_DIR:-build/fuzz/$def}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
flags="$flags -fsanitize-coverage-ignorelist=$PWD/tests/fuzz-nocov.txt"

command -v clang >/dev/null || scripts/install-deps.sh check
command -v kconfig-tweak >/dev/null || scripts/install-deps.sh check
mk() { make -s O="$o" KCONFIG_CONFIG="$o/.config" CC=clang "$@"; }
mk "${def}_defconfig" >/dev/null
kconfig-tweak --file "$o/.config" --disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED \
	--disable MM_PANIC_ON_ERROR
mk olddefconfig >/dev/null
mk -j"$(nproc 2>/dev/null || echo 2)" fuzz EXTRA_CFLAGS="$flags" EXTRA_LDFLAGS="$flags"

# ASan's own checks of the heap stay out of mm's way: mm is not ASan's malloc.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
if [ $# -eq 0 ]; then
	# What the run adds goes to a directory of its own, emptied first, so
	# that every run starts from the seed corpus alone.
	rm -rf "$o/corpus-run"
	mkdir -p "$o/corpus-run"
	exec "$o/tests/fuzz_mm" -artifact_prefix="$o/" -runs=10000 -max_len=512 -seed=1 \
		-print_final_stats=1 "$o/corpus-run" tests/fuzz-corpus
fi
exec "$o/tests/fuzz_mm" -artifact_prefix="$o/" "$@"
