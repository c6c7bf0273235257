# make install / make uninstall: headers, libraries and a pkg-config file.
# Included by the top Makefile with the configuration loaded, so what is
# installed is the current configuration's: its libmm.a (and libmm.so on
# hosts), its <mm/autoconf.h> and its architecture's <mm/arch.h>.
#
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]
#	$(DESTDIR)$(PREFIX)/include/mm/*.h		public headers, arch.h, autoconf.h
#	$(DESTDIR)$(PREFIX)/lib/libmm.a, libmm.so	the libraries
#	$(DESTDIR)$(PREFIX)/lib/pkgconfig/mm.pc	pkg-config --cflags --libs mm
#
# INCLUDEDIR, LIBDIR and PKGCONFIGDIR may be set on their own.  mm.pc names
# the final locations (without DESTDIR); to build against a staged install
# set PKG_CONFIG_SYSROOT_DIR=$(DESTDIR) (scripts/check-install.sh does).

PREFIX ?= /usr/local
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR ?= $(PREFIX)/lib
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install

MM_PC := $(O)/mm.pc
MM_PC_VERSION := $(shell sed -n 's/^\#define MM_VERSION "\(.*\)"/\1/p' include/mm/mm.h)
MM_PUBLIC_HEADERS := $(wildcard include/mm/*.h)

# On newlib targets with the libc facade, these make the linker take the
# _malloc_r family from libmm.a even when only newlib calls it.
MM_PC_LIBS := -L$${libdir} -lmm
ifeq ($(CONFIG_ARCH_ARM)$(CONFIG_MM_MALLOC_LIBC),yy)
MM_PC_LIBS += -Wl,-u,_malloc_r -Wl,-u,_free_r -Wl,-u,_calloc_r -Wl,-u,_realloc_r \
	      -Wl,-u,_memalign_r
endif
MM_PC_PRIVATE := $(if $(CONFIG_ARCH_HOST),-pthread)
# Targets: the flags the library was built with decide the ABI (-mcpu,
# -march/-mabi); an application must use the same.
MM_PC_CFLAGS := -I$${includedir} $(if $(CONFIG_ARCH_HOST),,$(filter -mcpu=% -mthumb -mfloat-abi=% -march=% -mabi=% -mcmodel=%,$(ARCH_CFLAGS)))

# A path under PREFIX is written relative to ${prefix}, so the file stays
# right if the tree is moved.
pc-rel = $(patsubst $(PREFIX)%,$${prefix}%,$(1))

$(MM_PC): FORCE
	$(Q)mkdir -p $(@D)
	$(Q){ \
	echo 'prefix=$(PREFIX)'; \
	echo 'includedir=$(call pc-rel,$(INCLUDEDIR))'; \
	echo 'libdir=$(call pc-rel,$(LIBDIR))'; \
	echo; \
	echo 'Name: mm'; \
	echo 'Description: Linux kernel-style memory management for embedded C: buddy pages, slab caches, kmalloc, malloc facade'; \
	echo 'Version: $(MM_PC_VERSION)'; \
	echo 'Cflags: $(MM_PC_CFLAGS)'; \
	echo 'Libs: $(MM_PC_LIBS)'; \
	$(if $(MM_PC_PRIVATE),echo 'Libs.private: $(MM_PC_PRIVATE)';) \
	echo '# configuration: $(ARCH) $(call unquote,$(CONFIG_ARM_CPU))$(if $(CONFIG_RISCV_RV32IMAC),rv32imac)$(if $(CONFIG_RISCV_RV64IMAC),rv64imac)'; \
	} > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

install: $(libs) $(O)/include/mm/autoconf.h $(MM_PC)
	$(quiet) INSTALL "$(DESTDIR)$(PREFIX)"
	$(Q)$(INSTALL) -d "$(DESTDIR)$(INCLUDEDIR)/mm" "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(PKGCONFIGDIR)"
	$(Q)$(INSTALL) -m 644 $(MM_PUBLIC_HEADERS) arch/$(ARCH)/include/mm/arch.h \
		$(O)/include/mm/autoconf.h "$(DESTDIR)$(INCLUDEDIR)/mm/"
	$(Q)$(INSTALL) -m 644 $(LIBMM_A) "$(DESTDIR)$(LIBDIR)/"
	$(if $(CONFIG_ARCH_HOST),$(Q)$(INSTALL) -m 755 $(LIBMM_SO) "$(DESTDIR)$(LIBDIR)/")
	$(Q)$(INSTALL) -m 644 $(MM_PC) "$(DESTDIR)$(PKGCONFIGDIR)/mm.pc"

uninstall:
	$(quiet) UNINST "$(DESTDIR)$(PREFIX)"
	$(Q)rm -f $(addprefix "$(DESTDIR)$(INCLUDEDIR)/mm/",$(notdir $(MM_PUBLIC_HEADERS)) arch.h autoconf.h)
	$(Q)rmdir "$(DESTDIR)$(INCLUDEDIR)/mm" 2>/dev/null || true
	$(Q)rm -f "$(DESTDIR)$(LIBDIR)/libmm.a" "$(DESTDIR)$(LIBDIR)/libmm.so" \
		"$(DESTDIR)$(PKGCONFIGDIR)/mm.pc"

.PHONY: install uninstall
