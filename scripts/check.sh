#!/bin/sh
# scripts/check.sh: what 'make check' runs.  Every step runs even when an
# earlier one failed; the summary counts them and the exit status is
# non-zero if any failed.
#
#  1. unit tests of every host configuration in configs/, each in its own
#     build directory (build/check/<name>); host_defconfig's and
#     host_release_defconfig's also built with clang (build/check/clang*)
#  2. the same tests once more under AddressSanitizer + UBSan (host, sbrk,
#     tiny and release: the checks, the tiny core, the free mark; the tiny
#     core also as cortex_m4 and cortex_m4_min build it), and with 64 KiB
#     pages (host, release, static)
#  3. and under Valgrind memcheck (host, static, tiny, release), and the
#     threaded ones under ThreadSanitizer (release); the stress programs
#     for longer than 'make test' runs them; the fuzzer (libFuzzer)
#     for 4000 runs from its seed corpus (debug, host, release, tiny; two
#     at a time)
#  4. the README's quick start ('make run' from no configuration), the
#     demo and the firmware example of every host configuration;
#     host_defconfig with options changed that no defconfig changes (in
#     the background from the start, reported last);
#     the build system: a second 'make' does nothing, a changed option
#     rebuilds only what reads it
#  5. every cross configuration builds warning-free and keeps the README's
#     code size and RAM budgets; RISC-V links with no C library; the hot
#     paths keep their instruction-count targets (callgrind: the same
#     count every run, unlike a time)
#  6. the firmware example under QEMU (Cortex-M4, mps2-an386)
#  7. real programs under LD_PRELOAD=libmm.so
#  8. make install + an application built with pkg-config
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh check || exit 1

JOBS=$(nproc 2>/dev/null || echo 2)
check_t0=$(date +%s)
passed=0
failed=0
failures=

# The steps' functions share the shell's variables: step's own carry its
# prefix (demo_runs' $name once took the place of the step's in the log).
step() {
	step_name=$1
	shift
	echo
	echo "### $step_name"
	step_t0=$(date +%s)
	if "$@"; then
		passed=$((passed + 1))
		echo "### ok: $step_name ($(($(date +%s) - step_t0)) s)"
	else
		failed=$((failed + 1))
		failures="$failures
  $step_name"
		echo "### FAILED: $step_name ($(($(date +%s) - step_t0)) s)"
	fi
}

# build NAME DEFCONFIG [make args...]: configure and build into build/check/NAME
mk() {
	o=build/check/$1
	shift
	make -s O="$o" KCONFIG_CONFIG="$o/.config" "$@"
}

configure() {
	mk "$1" "$2" >/dev/null
}

unit_tests() {
	configure "$1" "$1_defconfig" && mk "$1" -j"$JOBS" all tests && mk "$1" test
}

# Sanitizers need the prefixed facade: ASan brings its own malloc.
sanitized() {
	o=build/check/$1
	configure "$1" "$2" &&
	kconfig-tweak --file "$o/.config" --disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED &&
	mk "$1" olddefconfig >/dev/null &&
	mk "$1" -j"$JOBS" tests EXTRA_CFLAGS="$3" EXTRA_LDFLAGS="$3" &&
	mk "$1" test EXTRA_CFLAGS="$3" EXTRA_LDFLAGS="$3"
}

# The tiny core as the Cortex-M defconfigs build it, without reports:
# cortex_m4's checks and statistics, and cortex_m4_min's neither, each held
# to what it promises without the other options.  tiny_as_mcu NAME FLAGS
# [TWEAK...] (kconfig-tweak's arguments).
tiny_as_mcu() {
	tm_dir=$1
	tm_flags=$2
	o=build/check/$1
	configure "$1" host_tiny_defconfig &&
	shift 2 &&
	kconfig-tweak --file "$o/.config" --disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED \
		--disable MM_REPORTS "$@" &&
	mk "$tm_dir" olddefconfig >/dev/null &&
	mk "$tm_dir" -j"$JOBS" tests EXTRA_CFLAGS="$tm_flags" EXTRA_LDFLAGS="$tm_flags" &&
	mk "$tm_dir" test EXTRA_CFLAGS="$tm_flags" EXTRA_LDFLAGS="$tm_flags"
}

# Pages of 64 KiB, sixteen of the MMU's, for the whole suite: the mmap
# backend's zero() reads mincore()'s answer for each of them (it overran
# its buffer once), and the automatic trim unmapped a freed buffer at
# every free (trim.c, with blocks of 64 MiB).  Also the release build (no
# checks, the free mark) and the static array (no class bytes, no heap:
# sizes past 8 KiB are whole 64 KiB pages), which needs four such blocks
# for the tests (tests/helpers.h).  big_pages NAME DEFCONFIG FLAGS [TWEAK...]
big_pages() {
	bp_dir=$1
	bp_flags=$3
	o=build/check/$1
	configure "$1" "$2" &&
	shift 3 &&
	kconfig-tweak --file "$o/.config" --disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED \
		--set-val MM_PAGE_SHIFT 16 "$@" &&
	mk "$bp_dir" olddefconfig >/dev/null &&
	grep -q '^CONFIG_MM_PAGE_SHIFT=16$' "$o/.config" &&
	mk "$bp_dir" -j"$JOBS" tests EXTRA_CFLAGS="$bp_flags" EXTRA_LDFLAGS="$bp_flags" &&
	mk "$bp_dir" test EXTRA_CFLAGS="$bp_flags" EXTRA_LDFLAGS="$bp_flags"
}

# Valgrind runs one thread at a time; --fair-sched=yes keeps a busy thread
# from starving the others (seen: the fork test's main thread never got to
# fork while its workers ran on).  mm, not valgrind, is the allocator under
# test: --soname-synonyms=somalloc=nouserintercepts.
# The binaries are step 1's own (build/check/NAME): a build of the same
# configuration again would be the same programs.
valgrind_tests() {
	mk "$1" -j"$JOBS" tests &&
	MM_TEST_SCALE=10 mk "$1" test \
		TEST_WRAPPER="valgrind -q --error-exitcode=99 --track-origins=no --fair-sched=yes --soname-synonyms=somalloc=nouserintercepts"
}

# ThreadSanitizer on the threaded unit tests (prefixed facade, as for ASan,
# and classes spilling into the heap past 64 KiB, so that threads meet
# there too),
# without address randomisation where setarch can turn it off: the TSan of
# gcc 12 cannot map its shadow memory under a kernel's wider mmap
# randomisation.  test_lock's fork tests stay with ASan and Valgrind: a
# child re-initialises the locks its parent held across fork(), which TSan
# takes for double locks.
tsan_run() {
	echo "== TSan: $*"
	# shellcheck disable=SC2086
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $norand "$@" >"$o/tsan.log" 2>&1 ||
		{ cat "$o/tsan.log"; return 1; }
	tail -1 "$o/tsan.log"
}

tsan_tests() {
	o=build/check/$1
	norand=
	setarch -R true 2>/dev/null && norand="setarch -R"
	configure "$1" "$2" &&
	kconfig-tweak --file "$o/.config" --disable MM_MALLOC_LIBC --enable MM_MALLOC_PREFIXED \
		--set-val MM_HEAP_SPILL_KB 64 &&
	mk "$1" olddefconfig >/dev/null &&
	mk "$1" -j"$JOBS" tests EXTRA_CFLAGS="$TSAN" EXTRA_LDFLAGS="$TSAN" &&
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" TEST_WRAPPER="$norand" \
		scripts/run-tests.sh 900 "$JOBS" "$o/tests/test_kmalloc" "$o/tests/test_heap" \
		"$o/tests/test_malloc" "$o/tests/test_slab" "$o/tests/test_threads" &&
	tsan_run "$o/tests/test_lock" "test_contended*"
}

# clang as well as gcc: the library and the unit tests of a configuration
# built with clang, warnings errors as with gcc (clang warns where gcc
# does not, and the other way round).  CC=clang goes to every make: .cflags
# names the compiler, so a make without it would rebuild everything with
# gcc and test that instead; the grep makes sure it did not.
clang_tests() {
	o=build/check/$1
	configure "$1" "$2" &&
	mk "$1" -j"$JOBS" CC=clang all tests &&
	{ grep -q '^clang ' "$o/.cflags" || { echo "not built with clang: $(cat "$o/.cflags")"; false; }; } &&
	mk "$1" CC=clang test
}

cross_build() {
	configure "$1" "$1_defconfig" && mk "$1" -j"$JOBS" all && mk "$1" size
}

# Options a user can change in menuconfig that no defconfig changes: each
# variant must build warning-free and pass its tests (the list is in
# tests/check-corners.sh).  Two dozen builds that nothing else waits for:
# they run in the background from the start, one at a time, on the CPU
# that the steps below leave idle through their links, configurations,
# one-thread programs, QEMU and valgrind.  Their report is the last step.
# In a session of their own, so that an interrupted check takes the whole
# group down: a background job of a script ignores the terminal's ^C.
mkdir -p build/check
rm -f build/check/corners.out build/check/corners.status
setsid -w sh -c 'JOBS=1 tests/check-corners.sh >build/check/corners.out 2>&1
	      echo $? >build/check/corners.status' &
corners_pid=$!
trap 'kill -TERM -"$corners_pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
corners_report() {
	wait "$corners_pid"
	cat build/check/corners.out
	[ "$(cat build/check/corners.status 2>/dev/null)" = 0 ]
}

for cfg in configs/host*_defconfig; do
	name=$(basename "$cfg" _defconfig)
	step "unit tests: $name" unit_tests "$name"
done
step "unit tests: host, built with clang" clang_tests clang host_defconfig
step "unit tests: host_release, built with clang" clang_tests clang-release host_release_defconfig

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
step "ASan+UBSan: host (mmap)" sanitized asan-mmap host_defconfig "$SAN"
step "ASan+UBSan: host_sbrk" sanitized asan-sbrk host_sbrk_defconfig "$SAN"
step "Valgrind: host (libc facade)" valgrind_tests host
step "Valgrind: host_static" valgrind_tests host_static
step "ASan+UBSan: host_tiny" sanitized asan-tiny host_tiny_defconfig "$SAN"
step "Valgrind: host_tiny" valgrind_tests host_tiny
step "ASan+UBSan: host_tiny as cortex_m4 (checks, statistics)" tiny_as_mcu asan-tiny-m4 "$SAN"
step "ASan+UBSan: host_tiny as cortex_m4_min (no checks, no statistics)" tiny_as_mcu asan-tiny-min "$SAN" \
	--disable MM_CHECKS --disable MM_STATS
step "ASan+UBSan: host_release (free mark)" sanitized asan-release host_release_defconfig "$SAN"
step "ASan+UBSan: host, 64 KiB pages" big_pages asan-p16 host_defconfig "$SAN"
step "ASan+UBSan: host_release, 64 KiB pages" big_pages asan-p16-release host_release_defconfig "$SAN"
step "ASan+UBSan: host_static, 64 KiB pages" big_pages asan-p16-static host_static_defconfig "$SAN" \
	--set-val MM_STATIC_SIZE 268435456
step "Valgrind: host_release (free mark)" valgrind_tests host_release
TSAN="-fsanitize=thread -fno-omit-frame-pointer"
step "TSan: host_release (threads, magazines, lock-free kfree)" tsan_tests tsan-release host_release_defconfig

# The fuzzer (tests/fuzz_mm.c): libFuzzer with ASan and UBSan, 4000 runs
# with a fixed seed, the seed corpus tests/fuzz-corpus first, on one
# thread and two in lockstep.  With the checks and every VM_BUG_ON (debug),
# the checks and magazines (host), the free mark and magazines (release),
# and the tiny core with its checks over its static array (tiny).
# Each run is one process on one CPU (the input's two threads take
# turns), so they go two at a time: the second of a pair in the
# background, its output shown when its step's turn comes.
fuzz() {
	env FUZZ_DIR="build/check/fuzz-$1" tests/fuzz.sh "$1"
}
fuzz_bg() {
	(fuzz "$1" >"build/check/fuzz-$1.log" 2>&1; echo $? >"build/check/fuzz-$1.status") &
	fuzz_pid=$!
}
fuzz_wait() {
	wait "$1"
	cat "build/check/fuzz-$2.log"
	[ "$(cat "build/check/fuzz-$2.status" 2>/dev/null)" = 0 ]
}
for pair in "host_debug host" "host_release host_tiny"; do
	set -- $pair
	fuzz_bg "$2"
	step "fuzz: $1 (libFuzzer, ASan+UBSan, 4000 runs)" fuzz "$1"
	step "fuzz: $2 (libFuzzer, ASan+UBSan, 4000 runs; beside $1)" fuzz_wait "$fuzz_pid" "$2"
done

# The stress programs (tests/stress_*.c) run a second in every
# configuration's 'make test'; here longer, in the builds of step 1 that
# hold the locks in the most ways: the pthread mutex with the checks
# (host) and with the free mark (release), the spinlock (static), and the
# spinlock with every VM_BUG_ON (debug).  A hang is the timeout's.
stress_runs() {
	for cfg in host host_release host_static host_debug; do
		d=build/check/$cfg/tests
		for t in "stress_mix 8" "stress_arena 5" "stress_first 600"; do
			[ -x "$d/${t%% *}" ] || continue
			echo "== $cfg: $t"
			# shellcheck disable=SC2086
			timeout -k 10 120 $d/$t || { echo "FAILED: $cfg: $t"; return 1; }
		done
	done
}
step "stress: threads, forks, trims and private arenas at once (longer runs)" stress_runs

# The README's quick start: 'make run' from no configuration at all (it
# configures the host default itself), then the demo and the firmware
# example of every host configuration.  Their own verdicts are what count:
# they validate the arena and pass only if every page came back.
demo_runs() {
	rm -rf build/check/quickstart
	mk quickstart run >build/check/quickstart.log 2>&1 &&
		grep -q "nothing lost" build/check/quickstart.log || {
		tail -5 build/check/quickstart.log
		return 1
	}
	# In step 1's build directories: the same configurations.
	for cfg in configs/host*_defconfig; do
		name=$(basename "$cfg" _defconfig)
		log=build/check/demo-$name.log
		mk "$name" -j"$JOBS" run >"$log" 2>&1 &&
			grep -q "nothing lost" "$log" &&
			mk "$name" run-firmware >>"$log" 2>&1 &&
			grep -q "firmware: PASS" "$log" || {
			echo "$name:"
			tail -5 "$log"
			return 1
		}
	done
}
step "README quick start (make run), every host demo and firmware" demo_runs

step "build system" tests/check-build.sh
step "menuconfig in a terminal" tests/check-menuconfig.sh

for cfg in configs/*_defconfig; do
	name=$(basename "$cfg" _defconfig)
	case $name in host*) continue ;; esac
	step "cross build: $name" cross_build "$name"
done
step "code size and RAM budgets (README)" env O=build/check CHECK=1 scripts/size-all.sh
step "hot-path instruction targets (callgrind)" env CONFIGS=nolock CHECK=1 bench/run-micro.sh
[ -x scripts/check-riscv-link.sh ] && step "RISC-V: links without a C library, runs in QEMU" scripts/check-riscv-link.sh
[ -x scripts/check-firmware.sh ] && step "firmware in QEMU (mps2-an386)" scripts/check-firmware.sh
[ -x tests/run-preload.sh ] && step "real programs under LD_PRELOAD" tests/run-preload.sh build/check/host/libmm.so
[ -x tests/run-preload.sh ] && step "real programs under LD_PRELOAD (release)" tests/run-preload.sh build/check/host_release/libmm.so
[ -x scripts/check-install.sh ] && step "make install + pkg-config" scripts/check-install.sh
step "options no defconfig changes (off, on, or set; run in the background)" corners_report

echo
if [ "$failed" -ne 0 ]; then
	echo "Failed steps:$failures"
fi
echo "check: $passed passed, $failed failed in $(($(date +%s) - check_t0)) s"
[ "$failed" -eq 0 ]
