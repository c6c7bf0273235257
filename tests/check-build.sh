#!/bin/sh
# The build system keeps its promises:
#  - no configuration: a one-line error that names menuconfig/defconfig;
#  - a second make rebuilds nothing;
#  - a changed option rebuilds only the objects that mention it;
#  - savedefconfig round-trips the configuration;
#  - options Kconfig cannot compare stay consistent: a lowered MM_MAX_ORDER
#    takes MM_HEAP_MAX_KB down, and MM_HEAP_MIN stays below what a span holds;
#  - O=dir alone builds with dir/.config, configured in the same command;
#    clean and a defconfig in one command run one after the other;
#    clean keeps the configuration, mrproper removes it;
#  - allnoconfig, allyesconfig and randconfig write a configuration that
#    kconfig keeps as it is and that builds and passes its tests;
#    randconfig repeats with a seed, and KCONFIG_ALLCONFIG pins options.
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

# A lowered MM_MAX_ORDER (or a larger page with it, or a lowered span
# order) takes MM_HEAP_MAX_KB down with it, from the 64 a defconfig left
# in .config: the check of the options that Kconfig cannot compare
# (mm/config_check.c) passes.  host_release's heap starts at 4 KiB, which
# half of an 8 KiB span would not be above.
O3=build/check/kbuild-order

# tweak DEFCONFIG [kconfig-tweak options]: in $O3, the defconfig with those
# changes, as kconfig keeps them (olddefconfig).
tweak() {
	def=$1
	shift
	make -s O="$O3" "${def}_defconfig" >/dev/null &&
	kconfig-tweak --file "$O3/.config" "$@" &&
	make -s O="$O3" olddefconfig >/dev/null
}

# The check of what Kconfig cannot compare, on $O3: its first error if it fails.
config_checks() {
	out=$(make -s O="$O3" "$O3/mm/config_check.ok" 2>&1) || {
		echo "$out" | grep -m1 "error"
		return 1
	}
}

lowered=
for v in "host 12 MM_MAX_ORDER=1" "host 12 MM_MAX_ORDER=4" "host 13 MM_MAX_ORDER=2" \
	 "host 12 MM_HEAP_SPAN_ORDER=3" "host_release 12 MM_MAX_ORDER=1"; do
	set -- $v
	rm -rf "$O3"
	tweak "$1" --set-val MM_PAGE_SHIFT "$2" --set-val "${3%%=*}" "${3#*=}" &&
	grep -q "^CONFIG_$3\$" "$O3/.config" &&
	config_checks || lowered="$lowered, $*"
done
if [ -z "$lowered" ]; then
	ok "a lowered MM_MAX_ORDER takes MM_HEAP_MAX_KB's default down with it"
else
	ko "a lowered MM_MAX_ORDER takes MM_HEAP_MAX_KB's default down with it (${lowered#, })"
fi

# A heap start that menuconfig offers is one a span can serve: with spans
# of 64 KiB or less MM_HEAP_MAX_KB ends below the span, and MM_HEAP_MIN's
# range follows it, so config_check's advice to raise MM_HEAP_MAX_KB above
# MM_HEAP_MIN can be taken (MM_HEAP_MIN=65536 with 64 KiB spans could not).
bad=
for v in "12 0" "12 2" "14 2" "16 0"; do
	set -- $v
	rm -rf "$O3"
	tweak host --set-val MM_PAGE_SHIFT "$1" --set-val MM_HEAP_SPAN_ORDER "$2" \
		--set-val MM_HEAP_MIN 65536 &&
	kconfig-tweak --file "$O3/.config" --set-val MM_HEAP_MAX_KB 1024 &&
	make -s O="$O3" olddefconfig >/dev/null &&
	config_checks || bad="$bad, pages 2^$1 spans of 2^$2"
done
if [ -z "$bad" ]; then
	ok "MM_HEAP_MIN's range stays below what a small span serves"
else
	ko "MM_HEAP_MIN's range stays below what a small span serves (${bad#, })"
fi

# O=dir alone configures and builds with dir/.config (as Linux does), and
# leaves the source tree's configuration alone; a defconfig and a build in
# one command run in that order, on a directory that has no .config yet.
O2=build/check/kbuild-o
rm -rf "$O2"
before=$(cksum .config 2>/dev/null)
if make -s O="$O2" host_static_defconfig all >/dev/null && [ -f "$O2/libmm.a" ] &&
   grep -q '^CONFIG_MM_DEFAULT_BACKEND_STATIC=y' "$O2/.config" &&
   grep -q 'CONFIG_MM_DEFAULT_BACKEND_STATIC 1' "$O2/include/generated/autoconf.h" &&
   [ "$(cksum .config 2>/dev/null)" = "$before" ]; then
	ok "O=dir keeps its own configuration; defconfig and all in one command"
else
	ko "O=dir keeps its own configuration; defconfig and all in one command"
fi

# clean and a defconfig in one command run one after the other, -j or not:
# in one make, -j2 ran rm -rf of the built directory while kconfig wrote
# into it ("cannot remove 'dir/include'", or no .config left).
if make -s -j2 O="$O2" clean host_static_defconfig >/dev/null 2>&1 &&
   [ -f "$O2/.config" ] && [ ! -e "$O2/libmm.a" ]; then
	ok "clean and a defconfig in one command, with -j2"
else
	ko "clean and a defconfig in one command, with -j2"
fi

# As in Linux, clean keeps the configuration (O=dir's own too), so a make
# after it builds the same one again; mrproper removes it.
cp "$O2/.config" "$O2.config-kept"
left=
make -s O="$O2" all >/dev/null && make -s O="$O2" clean &&
	left=$(ls -A "$O2" | grep -v '^\.config\.old$' | tr '\n' ' ')
if [ "$left" = ".config " ] &&
   make -s O="$O2" all >/dev/null && [ -f "$O2/libmm.a" ] &&
   cmp -s "$O2/.config" "$O2.config-kept" &&
   make -s O="$O2" mrproper && [ ! -e "$O2" ]; then
	ok "clean keeps the configuration, mrproper removes it"
else
	ko "clean keeps the configuration, mrproper removes it"; echo "left by clean: $left"
fi

# The whole-tree configurations, with O=dir as every other target.  A
# configuration is valid if olddefconfig leaves it as it is; it must then
# build warning-free (-Werror) and pass the tests it builds.  randconfig
# with a fixed seed, the host pinned by a KCONFIG_ALLCONFIG fragment named
# relative to where make runs (the cross toolchains are the cross builds'
# business): the same seed twice is the same configuration.
all_config() {
	ac_dir=build/check/kbuild-$1
	rm -rf "$ac_dir"
	make -s O="$ac_dir" "$@" >"$ac_dir.log" 2>&1 &&
	cp "$ac_dir/.config" "$ac_dir/.config.$1" &&
	make -s O="$ac_dir" olddefconfig >>"$ac_dir.log" 2>&1 &&
	diff -u "$ac_dir/.config.$1" "$ac_dir/.config" >>"$ac_dir.log" &&
	grep -q '^CONFIG_ARCH_HOST=y$' "$ac_dir/.config" &&
	make -s O="$ac_dir" -j2 all tests >>"$ac_dir.log" 2>&1 &&
	make -s O="$ac_dir" test >>"$ac_dir.log" 2>&1
}
SEED=0x5eed
printf 'CONFIG_ARCH_HOST=y\n' > build/check/kbuild-host.config
for t in allnoconfig allyesconfig "randconfig KCONFIG_SEED=$SEED KCONFIG_ALLCONFIG=build/check/kbuild-host.config"; do
	# shellcheck disable=SC2086
	if all_config $t; then
		ok "$t: a valid configuration that builds and passes its tests"
	else
		ko "$t: a valid configuration that builds and passes its tests"
		tail -5 "build/check/kbuild-${t%% *}.log"
	fi
done
R=build/check/kbuild-randconfig
if make -s O="$R-again" randconfig KCONFIG_SEED=$SEED \
	KCONFIG_ALLCONFIG=build/check/kbuild-host.config >/dev/null 2>&1 &&
   cmp -s "$R/.config.randconfig" "$R-again/.config"; then
	ok "randconfig: KCONFIG_SEED=$SEED again, the same configuration"
else
	ko "randconfig: KCONFIG_SEED=$SEED again, the same configuration"
fi
# kconfig-conf would take a seed it cannot read for no seed (the clock's).
if ! make -s O="$R-again" randconfig KCONFIG_SEED=12x >/dev/null 2>&1 &&
   cmp -s "$R/.config.randconfig" "$R-again/.config"; then
	ok "randconfig: a seed that is no number is refused"
else
	ko "randconfig: a seed that is no number is refused"
fi
# Pinned on top of allnoconfig: the fragment's options, and nothing else on.
printf 'CONFIG_MM_SLAB=y\nCONFIG_MM_KMALLOC=y\n' > "$R-again/allno.config"
if make -s O="$R-again" allnoconfig KCONFIG_ALLCONFIG=1 >/dev/null 2>&1 &&
   grep -q '^CONFIG_MM_KMALLOC=y$' "$R-again/.config" &&
   ! grep -q '^CONFIG_MM_CHECKS=y$' "$R-again/.config"; then
	ok "allnoconfig: KCONFIG_ALLCONFIG=1 pins what O/allno.config sets"
else
	ko "allnoconfig: KCONFIG_ALLCONFIG=1 pins what O/allno.config sets"
fi

echo "build system: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
