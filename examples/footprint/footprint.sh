#!/bin/sh
# footprint.sh ELF MAP LIBMM_A CROSS_COMPILE
#
# What a linked program (built with --gc-sections) took from libmm.a, per
# object, from the linker map: code (.text), constants (.rodata: strings,
# tables), their sum (flash), .data and .bss.  The static heap array of the static backend is shown apart, since
# it is the heap itself and not the allocator's overhead.
set -e
printf "%-18s %7s %7s %7s %7s %7s\n" object code rodata flash data bss
elf=$1 map=$2 lib=$3 cross=$4
libname=$(basename "$lib")

awk -v lib="$libname" '
function hex(s,    i, c, v) {
	v = 0
	s = tolower(s); sub(/^0x/, "", s)
	for (i = 1; i <= length(s); i++) {
		c = index("0123456789abcdef", substr(s, i, 1)) - 1
		v = v * 16 + c
	}
	return v
}
# Input sections appear as " .text.foo  0xADDR  0xSIZE  path/libmm.a(obj.o)",
# or with the name alone on a line when it is long and the rest on the next.
function account(sec, size, file,    obj, kind) {
	if (index(file, lib "(") == 0)
		return
	obj = file
	sub(/.*\(/, "", obj); sub(/\).*/, "", obj)
	if (sec ~ /^\.text/) kind = "text"
	else if (sec ~ /^\.s?rodata/) kind = "rodata"
	else if (sec ~ /^\.(s?data)/) kind = "data"
	else if (sec ~ /^\.(s?bss|COMMON)/) kind = "bss"
	else return
	if (sec ~ /static_heap/) { heap += size; return }
	sz[obj, kind] += size
	objs[obj] = 1
}
/^Discarded input sections/ { skip = 1 }
/^Memory Configuration/ { skip = 1 }
/^Linker script and memory map/ { skip = 0; next }
skip { next }
/^ [.A-Za-z_][^ ]*$/ { pending = $1; next }
pending != "" && $1 ~ /^0x/ && NF >= 3 { account(pending, hex($2), $3); pending = ""; next }
{ pending = "" }
/^ [.A-Za-z_]/ && $2 ~ /^0x/ && NF >= 4 { account($1, hex($3), $4) }
END {
	for (o in objs) {
		printf "%-18s %7d %7d %7d %7d %7d\n", o, sz[o, "text"], sz[o, "rodata"],
			sz[o, "text"] + sz[o, "rodata"], sz[o, "data"], sz[o, "bss"] | "sort"
		t += sz[o, "text"]; r += sz[o, "rodata"]; d += sz[o, "data"]; b += sz[o, "bss"]
	}
	close("sort")
	printf "%-18s %7d %7d %7d %7d %7d\n", "linked from libmm", t, r, t + r, d, b
	if (heap)
		printf "(static heap array: %d bytes of .bss, not counted)\n", heap
}' "$map"
echo "whole program: $(${cross}size "$elf" | awk 'NR == 2 { print $1 " text, " $2 " data, " $3 " bss" }')"
