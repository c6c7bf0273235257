#!/bin/sh
# check-riscv-link.sh: libmm.a on bare-metal RISC-V with no C library.
#
# For riscv32_defconfig (rv32imac) and riscv64_defconfig (rv64imac), each in
# its own build directory: link examples/riscv (a bare _start, -nostdlib
# -ffreestanding, libmm.a and libgcc only) and fail on any undefined
# symbol; then run it on QEMU's virt machine (qemu-system-riscv32/64, from
# Debian's qemu-system-misc; -bios none, semihosting) with a timeout and
# require exit status 0 and "riscv: PASS".
#
# Environment: O (default build/check-riscv), TIMEOUT (seconds, 60).
set -u
cd "$(dirname "$0")/.."
O=${O:-build/check-riscv}
TIMEOUT=${TIMEOUT:-60}

for tool in riscv64-unknown-elf-gcc kconfig-conf qemu-system-riscv32 qemu-system-riscv64; do
	command -v "$tool" >/dev/null 2>&1 || scripts/install-deps.sh check || exit 1
done

failed=0
fail() {
	echo "check-riscv-link: FAILED: $*" >&2
	failed=$((failed + 1))
}

for xlen in 32 64; do
	o=$O/rv$xlen
	mkdir -p "$o"
	echo "== riscv${xlen}_defconfig"
	if ! make -s O="$o" KCONFIG_CONFIG="$o/.config" riscv${xlen}_defconfig >/dev/null ||
	   ! make -s O="$o" KCONFIG_CONFIG="$o/.config" riscv-link; then
		fail "rv$xlen: libmm.a does not link without a C library"
		continue
	fi
	qemu=qemu-system-riscv$xlen
	if ! command -v "$qemu" >/dev/null 2>&1; then
		fail "$qemu not installed (Debian: qemu-system-misc)"
		continue
	fi
	elf=$o/examples/riscv/baremetal.elf
	echo "  QEMU     $elf"
	timeout "$TIMEOUT" "$qemu" -M virt -bios none -nographic \
		-semihosting-config enable=on,target=native -kernel "$elf" \
		</dev/null >"$o/riscv.out" 2>&1
	status=$?
	[ "$status" = 0 ] || fail "rv$xlen: exit status $status$([ "$status" = 124 ] && echo ' (timeout)')"
	grep -q "^riscv: PASS" "$o/riscv.out" || fail "rv$xlen: no 'riscv: PASS' in $o/riscv.out"
	grep -q "^Node 0, zone" "$o/riscv.out" || fail "rv$xlen: no buddyinfo in $o/riscv.out"
	[ "$failed" -eq 0 ] || tail -n 20 "$o/riscv.out"
done

if [ "$failed" -ne 0 ]; then
	echo "check-riscv-link: $failed failure(s)"
	exit 1
fi
echo "check-riscv-link: ok"
