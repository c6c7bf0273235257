#!/bin/sh
# size-all.sh: the footprint table, one line per cross configuration.
#
# Each configs/<name>_defconfig that is not a host one is built in
# build/size/<name>; for each the table gives
#   lib .text      the whole libmm.a (size -t): every function, used or not
#   linked flash   code + constants a program using a slab cache, kmalloc
#                  and malloc links from libmm.a (--gc-sections; 'make footprint')
#   static RAM     .data + .bss of the library, the static heap array excluded
#   heap           bytes of heap (the static array, or "linker" for a region
#                  from the linker script)
# Environment: O (default build/size); CHECK=1 makes the exit status say
# whether every configuration keeps the README's budgets below (sizes are
# deterministic, unlike times, so they may fail a check).
set -u
cd "$(dirname "$0")/.."
O=${O:-build/size}
CHECK=${CHECK:-0}
over=0

# config, library .text limit (bytes, - for none), static RAM limit
budget() {
	case $1 in
	cortex_m4_min) echo 2048 128 ;;
	cortex_m4) echo 4096 128 ;;
	cortex_m0plus|cortex_m4_debug) echo - 128 ;;
	*) echo - - ;;
	esac
}

printf "%-16s %-22s %9s %12s %10s %8s\n" config target "lib .text" "linked flash" "static RAM" heap
for cfg in configs/*_defconfig; do
	name=$(basename "$cfg" _defconfig)
	case $name in host*) continue ;; esac
	o=$O/$name
	mkdir -p "$o"
	if ! make -s O="$o" KCONFIG_CONFIG="$o/.config" "${name}_defconfig" >/dev/null ||
	   ! make -s O="$o" KCONFIG_CONFIG="$o/.config" all >/dev/null 2>&1; then
		printf "%-16s build failed\n" "$name"
		continue
	fi
	cross=$(sed -n 's/^CONFIG_CROSS_COMPILE="\(.*\)"/\1/p' "$o/.config")
	target=$(sed -n 's/^CONFIG_ARM_CPU="\(.*\)"/\1/p' "$o/.config")
	grep -q '^CONFIG_RISCV_RV32IMAC=y' "$o/.config" && target=rv32imac
	grep -q '^CONFIG_RISCV_RV64IMAC=y' "$o/.config" && target=rv64imac
	opt=$(grep -q '^CONFIG_OPT_SIZE=y' "$o/.config" && echo -Os || echo -O2)
	if grep -q '^CONFIG_MM_STATIC_LINKER_REGION=y' "$o/.config"; then
		heap=0 heapname=linker
	else
		heap=$(sed -n 's/^CONFIG_MM_STATIC_SIZE=//p' "$o/.config")
		heap=${heap:-0} heapname=$heap
	fi
	set -- $("${cross}size" -t "$o/libmm.a" | tail -n 1)
	text=$1 ram=$(($2 + $3 - heap))
	linked=$(make -s O="$o" KCONFIG_CONFIG="$o/.config" footprint 2>/dev/null |
		 awk '/^linked from libmm/ { print $6 }')
	printf "%-16s %-22s %9s %12s %10s %8s\n" "$name" "$target $opt" "$text" "${linked:-?}" "$ram" "$heapname"
	set -- $(budget "$name")
	if [ "$1" != - ] && [ "$text" -gt "$1" ]; then
		echo "size-all: $name: library .text $text bytes, over its budget of $1" >&2
		over=1
	fi
	if [ "$2" != - ] && [ "$ram" -gt "$2" ]; then
		echo "size-all: $name: static RAM $ram bytes, over its budget of $2" >&2
		over=1
	fi
done
[ "$CHECK" = 0 ] || [ "$over" = 0 ]
