#!/bin/sh
# The build system keeps its promises:
#  - no configuration: a one-line error that names menuconfig/defconfig;
#  - a second make rebuilds nothing;
#  - a changed option rebuilds only the objects that mention it;
#  - savedefconfig round-trips the configuration;
#  - O=dir alone builds with dir/.config.
set -u
cd "$(dirname "$0")/.."
O=build/check/kbuild
M="make O=$O KCONFIG_CONFIG=$O/.config"
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }

rm -rf "$O"
out=$(make O="$O" KCONFIG_CONFIG="$O/none" all 2>&1)
if [ $? -ne 0 ] && [ "$(echo "$out" | grep -c 'make menuconfig')" -eq 1 ]; then
	ok "no configuration: one clear error"
else
	ko "no configuration: one clear error"; echo "$out"
fi

$M -s host_sbrk_defconfig >/dev/null && $M -s all >/dev/null || { ko "first build"; exit 1; }

out=$($M all 2>&1)
if echo "$out" | grep -q ' CC '; then ko "second make rebuilds nothing"; echo "$out"; else ok "second make rebuilds nothing"; fi

# CONFIG_MM_SLAB_MAX_EMPTY is read by mm/slab.c alone.
kconfig-tweak --file "$O/.config" --set-val MM_SLAB_MAX_EMPTY 5
out=$($M all 2>&1)
rebuilt=$(echo "$out" | awk '$1 == "CC" { print $2 }' | sed "s|^$O/||" | sort | tr '\n' ' ')
if [ "$rebuilt" = "mm/slab.o " ] && grep -q 'CONFIG_MM_SLAB_MAX_EMPTY 5' "$O/include/generated/autoconf.h"; then
	ok "changed option rebuilds only its readers ($rebuilt)"
else
	ko "changed option rebuilds only its readers (rebuilt: $rebuilt)"
fi

# An option every layer reads (page size) rebuilds them all.
kconfig-tweak --file "$O/.config" --set-val MM_PAGE_SHIFT 13
out=$($M all 2>&1)
n=$(echo "$out" | grep -c ' CC ')
if [ "$n" -ge 8 ]; then ok "page size change rebuilds the layers ($n objects)"; else ko "page size change rebuilds the layers ($n objects)"; fi

$M -s savedefconfig >/dev/null
if grep -q 'CONFIG_MM_PAGE_SHIFT=13' "$O/defconfig" && grep -q 'CONFIG_MM_DEFAULT_BACKEND_SBRK=y' "$O/defconfig"; then
	ok "savedefconfig keeps the changes"
else
	ko "savedefconfig keeps the changes"
fi

# O=dir alone configures and builds with dir/.config (as Linux does), and
# leaves the source tree's configuration alone.
O2=build/check/kbuild-o
rm -rf "$O2"
before=$(cksum .config 2>/dev/null)
if make -s O="$O2" host_static_defconfig >/dev/null && make -s O="$O2" all >/dev/null &&
   grep -q '^CONFIG_MM_DEFAULT_BACKEND_STATIC=y' "$O2/.config" &&
   grep -q 'CONFIG_MM_DEFAULT_BACKEND_STATIC 1' "$O2/include/generated/autoconf.h" &&
   [ "$(cksum .config 2>/dev/null)" = "$before" ]; then
	ok "O=dir keeps its own configuration"
else
	ko "O=dir keeps its own configuration"
fi

echo "build system: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
