#!/bin/sh
# check-install.sh: 'make install' into a staging directory, then an
# application outside the tree built with nothing but pkg-config.
#
#  1. host_defconfig in its own build directory; make install DESTDIR=...
#     PREFIX=/usr/local: headers (with arch.h and autoconf.h), libmm.a,
#     libmm.so and lib/pkgconfig/mm.pc must be there;
#  2. an application in a temporary directory (not under the source tree)
#     compiled with `pkg-config --cflags --libs mm` against the staged
#     install (PKG_CONFIG_SYSROOT_DIR), linked once to libmm.so and once to
#     libmm.a, and run: it uses a slab cache, kmalloc and malloc;
#  3. with arm-none-eabi-gcc present, the same for cortex_m4_defconfig: the
#     installed headers compile for the target and the application links
#     against the installed libmm.a;
#  4. make uninstall leaves nothing behind.
#
# Environment: O (default build/check-install).
set -u
cd "$(dirname "$0")/.."
src=$(pwd)
O=${O:-build/check-install}
PREFIX=/usr/local

command -v pkg-config >/dev/null 2>&1 || { echo "check-install: pkg-config is missing" >&2; exit 1; }
command -v kconfig-conf >/dev/null 2>&1 || scripts/install-deps.sh config || exit 1

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

failed=0
fail() {
	echo "check-install: FAILED: $*" >&2
	failed=$((failed + 1))
}

cat > "$tmp/app.c" <<'APP'
/* An application that knows mm only through pkg-config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mm/mm.h>

struct msg { int id; char body[20]; };

int main(void)
{
	struct kmem_cache *c = kmem_cache_create("msg", sizeof(struct msg), 0, 0, NULL);
	struct msg *m = c ? kmem_cache_alloc(c) : NULL;
	char *s = kmalloc(100);
	int ok;

	if (!m || !s)
		return 2;
	m->id = 42;
	strcpy(s, "hello from an installed mm");
	ok = ksize(s) >= 100 && m->id == 42;
	kfree(s);
	kmem_cache_free(c, m);
	ok &= kmem_cache_destroy(c) == 0;
#if IS_ENABLED(CONFIG_MM_MALLOC_LIBC)
	{
		char *p = malloc(64);	/* the facade: mm's malloc */

		ok &= p != NULL && ksize(p) >= 64;
		free(p);
	}
#endif
	printf("mm %s installed: %s\n", MM_VERSION, ok ? "ok" : "FAIL");
	return ok ? 0 : 1;
}
APP

# stage NAME DEFCONFIG: configure, build and install into $tmp/NAME.
stage() {
	o=$O/$1
	dest=$tmp/$1
	mkdir -p "$o"
	make -s O="$o" KCONFIG_CONFIG="$o/.config" "$2" >/dev/null &&
	make -s O="$o" KCONFIG_CONFIG="$o/.config" all &&
	make -s O="$o" KCONFIG_CONFIG="$o/.config" install DESTDIR="$dest" PREFIX="$PREFIX"
}

need() {
	for f in "$@"; do
		[ -e "$f" ] || fail "not installed: $f"
	done
}

# pc NAME ARGS...: pkg-config against the staged install of NAME.
pc() {
	name=$1
	shift
	PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$tmp/$name$PREFIX/lib/pkgconfig" \
		PKG_CONFIG_SYSROOT_DIR="$tmp/$name" pkg-config "$@"
}

echo "== host_defconfig: make install DESTDIR=... PREFIX=$PREFIX"
if stage host host_defconfig; then
	root=$tmp/host$PREFIX
	need "$root/include/mm/mm.h" "$root/include/mm/slab.h" "$root/include/mm/arch.h" \
	     "$root/include/mm/autoconf.h" "$root/include/mm/arch-generic-lock.h" \
	     "$root/lib/libmm.a" "$root/lib/libmm.so" "$root/lib/pkgconfig/mm.pc"
	grep -q '^prefix=/usr/local$' "$root/lib/pkgconfig/mm.pc" ||
		fail "mm.pc does not name the final prefix (DESTDIR leaked into it?)"
	pc host --exists mm || fail "pkg-config does not find mm"
	echo "  pkg-config --cflags --libs mm: $(pc host --cflags --libs mm)"
	# Out of the tree: the compiler must not see the source headers.
	cd "$tmp"
	if cc -std=c11 -Wall -Werror -o app-shared app.c $(pc host --cflags --libs mm); then
		LD_LIBRARY_PATH="$root/lib" ./app-shared || fail "host app (libmm.so) failed"
		LD_LIBRARY_PATH="$root/lib" ldd ./app-shared | grep -q "$root/lib/libmm.so" ||
			fail "host app is not linked to the installed libmm.so"
	else
		fail "host app does not build with pkg-config --cflags --libs mm (shared)"
	fi
	if cc -std=c11 -Wall -Werror -o app-static app.c $(pc host --cflags mm) \
	      "$root/lib/libmm.a" $(pc host --static --libs-only-other mm); then
		./app-static || fail "host app (libmm.a) failed"
	else
		fail "host app does not build against the installed libmm.a"
	fi
	cd "$src"
	make -s O="$O/host" KCONFIG_CONFIG="$O/host/.config" uninstall DESTDIR="$tmp/host" PREFIX="$PREFIX"
	left=$(find "$tmp/host" -type f | head -5)
	[ -z "$left" ] || fail "make uninstall left: $left"
else
	fail "host: make install"
fi

if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
	echo "== cortex_m4_defconfig: make install, then a target application via pkg-config"
	if stage m4 cortex_m4_defconfig; then
		root=$tmp/m4$PREFIX
		need "$root/include/mm/arch.h" "$root/include/mm/autoconf.h" "$root/lib/libmm.a"
		[ ! -e "$root/lib/libmm.so" ] || fail "libmm.so installed for a target"
		echo "  pkg-config --cflags --libs mm: $(pc m4 --cflags --libs mm)"
		cd "$tmp"
		# Link only (no startup code): the heap symbols the linker script
		# would provide are given on the command line.
		arm-none-eabi-gcc -std=gnu11 -Os -Wall -Werror --specs=nano.specs --specs=nosys.specs \
			-o app-m4.elf app.c $(pc m4 --cflags --libs mm) \
			-Wl,--defsym=__mm_heap_start=0x20001000 -Wl,--defsym=__mm_heap_end=0x20009000 ||
			fail "cortex-m4 app does not build with pkg-config --cflags --libs mm"
		if [ -e app-m4.elf ] && arm-none-eabi-nm app-m4.elf | grep -q '__malloc_av_\|__malloc_free_list'; then
			fail "cortex-m4 app links newlib's allocator beside mm's"
		fi
		cd "$src"
	else
		fail "cortex_m4: make install"
	fi
fi

if [ "$failed" -ne 0 ]; then
	echo "check-install: $failed failure(s)"
	exit 1
fi
echo "check-install: ok"
