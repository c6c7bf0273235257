#!/bin/sh
# check-firmware.sh: the firmware example on Cortex-M under QEMU.
#
#  1. build it from cortex_m4_debug_defconfig (the tiny core with reports;
#     then cortex_m4_defconfig, without) in its own build directory and run it
#     on the MPS2 AN386 (qemu-system-arm -M mps2-an386, semihosting) with a
#     timeout: exit status 0, and the output must show the pipeline, mm's
#     buddyinfo and slabinfo, "nothing lost" and "firmware: PASS";
#  2. a variant built to fail (FIRMWARE_FORCE_FAIL) must exit non-zero, so a
#     broken exit path cannot pass for a success;
#  3. the debug firmware with CONFIG_MM_LOCK_USER (the application's lock
#     hooks, as an RTOS would provide) instead of PRIMASK masking;
#  4. cortex_m4_min_defconfig (no reports, stats or checks: the firmware
#     still runs, silently), cortex_m3_defconfig on the AN385 (and again
#     with CONFIG_MM_MALLOC_EXTRAS: newlib's valloc, mallinfo, mallopt and
#     malloc_trim must link and answer from mm) and cortex_m7_defconfig on
#     the AN500;
#  5. Cortex-M0+ (ARMv6-M, no exclusive loads): libmm.a asks nothing of
#     libatomic (no __atomic_*/__sync_* calls).
#
# Environment: O (default build/check-firmware), TIMEOUT (seconds, 60),
# QEMU_ARM (qemu-system-arm).
set -u
cd "$(dirname "$0")/.."
O=${O:-build/check-firmware}
TIMEOUT=${TIMEOUT:-60}
QEMU_ARM=${QEMU_ARM:-qemu-system-arm}
QEMU_FLAGS="-nographic -semihosting-config enable=on,target=native"

for tool in arm-none-eabi-gcc "$QEMU_ARM" kconfig-conf timeout; do
	command -v "$tool" >/dev/null 2>&1 || scripts/install-deps.sh check || exit 1
done

failed=0
fail() {
	echo "check-firmware: FAILED: $*" >&2
	failed=$((failed + 1))
}

mk() {
	o=$1
	shift
	make -s O="$o" KCONFIG_CONFIG="$o/.config" "$@"
}

# run MACHINE ELF OUT: run in QEMU, output to OUT; prints the exit status.
run() {
	timeout "$TIMEOUT" $QEMU_ARM -M "$1" $QEMU_FLAGS -kernel "$2" </dev/null >"$3" 2>&1
	echo $?
}

expect() {
	out=$1
	shift
	for pattern in "$@"; do
		grep -q -- "$pattern" "$out" || fail "$out: no line matching '$pattern'"
	done
}

# firmware DIR DEFCONFIG MACHINE [kconfig-tweak args]: configure (+ tweaks),
# build the firmware and its must-fail variant, run both.
firmware() {
	o=$1 defconfig=$2 machine=$3
	shift 3
	before=$failed
	mkdir -p "$o"
	mk "$o" "$defconfig" >/dev/null || { fail "$o: configure"; return; }
	if [ $# -gt 0 ]; then
		kconfig-tweak --file "$o/.config" "$@" && mk "$o" olddefconfig >/dev/null ||
			{ fail "$o: kconfig-tweak $*"; return; }
	fi
	mk "$o" firmware firmware-fail || { fail "$o: build"; return; }

	elf=$o/examples/firmware/firmware.elf
	echo "  QEMU     $elf"
	status=$(run "$machine" "$elf" "$o/firmware.out")
	if [ "$status" = 124 ]; then
		fail "$elf: no exit within ${TIMEOUT}s"
	elif [ "$status" != 0 ]; then
		fail "$elf: exit status $status"
	fi
	expect "$o/firmware.out" \
		"firmware example on $machine" \
		"^#0000 temp" \
		"sent 300 of 300 packets" \
		"newlib never called _sbrk.*: ok" \
		"^nothing lost: [0-9]* checks, 0 failed" \
		"^firmware: PASS"
	grep -q "^CONFIG_MM_REPORTS=y" "$o/.config" && expect "$o/firmware.out" \
		"^Node 0, zone  *default" \
		"^slabinfo - version: 2.1" \
		"^packet  " \
		"^kmalloc-32 "
	if grep -q "FAILED\|BUG " "$o/firmware.out"; then
		fail "$elf: the output reports a failure"
	fi
	[ "$failed" -eq "$before" ] || { echo "---- $o/firmware.out (end)"; tail -n 30 "$o/firmware.out"; }

	elf=$o/examples/firmware/firmware-fail.elf
	echo "  QEMU     $elf (must fail)"
	status=$(run "$machine" "$elf" "$o/firmware-fail.out")
	if [ "$status" = 0 ] || [ "$status" = 124 ]; then
		fail "$elf: a failing firmware exited with status $status"
	fi
	expect "$o/firmware-fail.out" "^firmware: FAIL"
}

echo "== firmware, cortex_m4_debug_defconfig on mps2-an386 (PRIMASK lock, heap from the linker script, reports)"
firmware "$O/m4-debug" cortex_m4_debug_defconfig mps2-an386
echo "== firmware, cortex_m4_defconfig on mps2-an386 (checks and statistics, no reports)"
firmware "$O/m4" cortex_m4_defconfig mps2-an386
echo "== firmware, cortex_m4_debug_defconfig + CONFIG_MM_LOCK_USER (application lock hooks)"
firmware "$O/m4-lock-user" cortex_m4_debug_defconfig mps2-an386 --disable MM_LOCK_IRQ --enable MM_LOCK_USER
echo "== firmware, cortex_m4_min_defconfig on mps2-an386 (16 KiB static heap, no reports)"
firmware "$O/m4-min" cortex_m4_min_defconfig mps2-an386
echo "== firmware, cortex_m3_defconfig on mps2-an385"
firmware "$O/m3" cortex_m3_defconfig mps2-an385
echo "== firmware, cortex_m7_defconfig on mps2-an500"
firmware "$O/m7" cortex_m7_defconfig mps2-an500
echo "== firmware, cortex_m3_defconfig + CONFIG_MM_MALLOC_EXTRAS (newlib's valloc, mallinfo ... from mm)"
firmware "$O/m3-extras" cortex_m3_defconfig mps2-an385 --enable MM_MALLOC_EXTRAS
expect "$O/m3-extras/firmware.out" "^extras from mm: valloc, pvalloc, malloc_trim, mallinfo, mallopt"

echo "== Cortex-M0+: no libatomic"
o=$O/m0plus
mkdir -p "$o"
if mk "$o" cortex_m0plus_defconfig >/dev/null && mk "$o" all; then
	atomics=$(arm-none-eabi-nm -u "$o/libmm.a" | grep -E '__(atomic|sync)_' | sort -u)
	[ -z "$atomics" ] || fail "cortex_m0plus libmm.a needs libatomic:" $atomics
else
	fail "$o: build"
fi

if [ "$failed" -ne 0 ]; then
	echo "check-firmware: $failed failure(s)"
	exit 1
fi
echo "check-firmware: ok"
