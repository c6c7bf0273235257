# SPDX-License-Identifier: MIT
#
# mm top-level Makefile.
#
# Kbuild in miniature: kconfig-frontends turn .config into
# $(O)/include/generated/autoconf.h and $(O)/include/config/auto.conf, each
# directory's Makefile lists its objects as obj-$(CONFIG_FOO) += foo.o, and
# scripts/fixdep rewrites gcc's dependency files so an object depends on the
# per-option stamp files of the options it mentions, not on autoconf.h: a
# changed option rebuilds only what reads it, an unchanged one nothing.
#
#   make help            targets and defconfigs
#   make O=dir ...       build elsewhere, with dir/.config (default build/
#                        with ./.config)
#   make V=1 ...         show the commands

srctree := $(CURDIR)
# As in Linux: a build directory named with O= keeps its own .config, so
# two of them never share (or fight over) one configuration.  The default
# build/ is the in-tree build, configured by the source tree's .config.
ifneq ($(filter command line environment,$(origin O)),)
KCONFIG_CONFIG ?= $(patsubst %/,%,$(O))/.config
endif
O ?= build
override O := $(patsubst %/,%,$(O))
objtree := $(abspath $(O))
KCONFIG_CONFIG ?= .config
export KCONFIG_CONFIG_ABS := $(abspath $(KCONFIG_CONFIG))

ifeq ($(V),1)
Q :=
quiet = @:
else
Q := @
quiet = @printf '  %-8s %s\n'
MAKEFLAGS += --no-print-directory
endif

KCONF := kconfig-conf
KMCONF := kconfig-mconf
KNCONF := kconfig-nconf
KCONFIG_ENV := srctree=$(srctree) KCONFIG_CONFIG=$(KCONFIG_CONFIG_ABS)
KCONFIG_DEPS := Kconfig $(wildcard */Kconfig arch/*/Kconfig)
DEFCONFIGS := $(sort $(notdir $(wildcard configs/*_defconfig)))

# Targets that only touch the configuration (or nothing) must not need one.
config-targets := %config %_defconfig help clean distclean deps check \
		  check-% size-all install-deps
no-config := $(if $(MAKECMDGOALS),$(if $(filter-out $(config-targets),$(MAKECMDGOALS)),,1),)

.DEFAULT_GOAL := all
.PHONY: all FORCE

# ---------------------------------------------------------------------------
# Configuration

define kconf
	$(Q)mkdir -p $(O)/include/config $(O)/include/generated
	$(Q)cd $(O) && $(KCONFIG_ENV) $(KCONF) $(1) $(srctree)/Kconfig $(2)
endef

scripts/.deps-ok:
	@:

# kconfig-frontends is a build dependency: fetch it on first use.
kconfig-tools:
	$(Q)command -v $(KCONF) >/dev/null 2>&1 || scripts/install-deps.sh config

%_defconfig: kconfig-tools
	$(Q)test -f configs/$@ || { echo "No such defconfig: configs/$@ (see 'make help')" >&2; exit 1; }
	$(call kconf,--defconfig=$(srctree)/configs/$@,>/dev/null)
	@echo "Configured $(KCONFIG_CONFIG) from configs/$@"

olddefconfig: kconfig-tools
	$(call kconf,--olddefconfig,>/dev/null)

alldefconfig: kconfig-tools
	$(call kconf,--alldefconfig,>/dev/null)

savedefconfig: kconfig-tools
	$(call kconf,--savedefconfig=$(objtree)/defconfig)
	@echo "Minimal configuration written to $(O)/defconfig"

menuconfig: kconfig-tools
	$(Q)command -v $(KMCONF) >/dev/null || scripts/install-deps.sh config
	$(Q)mkdir -p $(O)
	$(Q)cd $(O) && $(KCONFIG_ENV) $(KMCONF) $(srctree)/Kconfig

nconfig: kconfig-tools
	$(Q)mkdir -p $(O)
	$(Q)cd $(O) && $(KCONFIG_ENV) $(KNCONF) $(srctree)/Kconfig

.PHONY: kconfig-tools olddefconfig alldefconfig savedefconfig menuconfig nconfig

# 'make run' on a fresh clone configures the host default first.
ifeq ($(wildcard $(KCONFIG_CONFIG)),)
ifeq ($(MAKECMDGOALS),run)
no-config := 1
run:
	$(Q)$(MAKE) host_defconfig
	$(Q)$(MAKE) run
endif
endif

ifeq ($(no-config),)
ifeq ($(wildcard $(KCONFIG_CONFIG)),)
$(error No configuration ($(KCONFIG_CONFIG)). Run 'make menuconfig' or 'make <name>_defconfig' (see 'make help'); 'make run' and 'make check' configure themselves)
endif

AUTOCONF := $(O)/include/generated/autoconf.h

# silentoldconfig rewrites its outputs every time, so it runs only when
# .config or a Kconfig file is newer than auto.conf.
$(O)/include/config/auto.conf: $(KCONFIG_CONFIG) $(KCONFIG_DEPS) | kconfig-tools
	$(quiet) KCONFIG $(KCONFIG_CONFIG)
	$(Q)mkdir -p $(O)/include/config $(O)/include/generated
	$(Q)cd $(O) && $(KCONFIG_ENV) $(KCONF) --olddefconfig $(srctree)/Kconfig >/dev/null
	$(Q)cd $(O) && $(KCONFIG_ENV) $(KCONF) -s --silentoldconfig $(srctree)/Kconfig </dev/null
	$(Q)touch $@

$(AUTOCONF): $(O)/include/config/auto.conf
	@:

# The public headers include <mm/autoconf.h>: a copy that changes only when
# the configuration does, and that 'make install' installs beside them.
$(O)/include/mm/autoconf.h: $(AUTOCONF)
	$(Q)mkdir -p $(@D)
	$(Q)cmp -s $< $@ || cp $< $@

-include $(O)/include/config/auto.conf

unquote = $(patsubst "%",%,$(1))
ARCH := $(call unquote,$(CONFIG_ARCH))
CROSS_COMPILE ?= $(call unquote,$(CONFIG_CROSS_COMPILE))

CC := $(CROSS_COMPILE)gcc
AR := $(CROSS_COMPILE)ar
SIZE := $(CROSS_COMPILE)size

# ---------------------------------------------------------------------------
# Flags

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-align \
	    -Wstrict-prototypes -Wmissing-prototypes -Wundef -Wvla \
	    -Wwrite-strings -Wno-unused-parameter
OPTFLAGS-$(CONFIG_OPT_SIZE) := -Os
OPTFLAGS-$(CONFIG_OPT_SPEED) := -O2
CFLAGS_MM := -std=c11 $(OPTFLAGS-y) -g $(WARNINGS) \
	     -ffunction-sections -fdata-sections -fno-builtin \
	     -fno-strict-aliasing -fno-common \
	     -Iinclude -I$(O)/include -Iarch/$(ARCH)/include

ifneq ($(ARCH),)
include arch/$(ARCH)/arch.mk
endif

CFLAGS_MM += $(ARCH_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_MM := $(ARCH_LDFLAGS) $(EXTRA_LDFLAGS)

# Flags are part of what an object depends on: rebuild everything when they
# change (a new toolchain, -O level, sanitizer).
$(O)/.cflags: FORCE
	$(Q)mkdir -p $(O)
	$(Q)echo '$(CC) $(CFLAGS_MM) $(LDFLAGS_MM)' > $@.tmp
	$(Q)cmp -s $@ $@.tmp && rm -f $@.tmp || mv -f $@.tmp $@

# ---------------------------------------------------------------------------
# Objects, Kbuild style

define collect-dir
obj-y :=
include $(1)/Makefile
objs += $$(addprefix $(O)/$(1)/,$$(obj-y))
endef
objs :=
# Before auto.conf exists ARCH is empty; make builds auto.conf and restarts.
ifneq ($(ARCH),)
$(foreach d,lib mm arch/$(ARCH),$(eval $(call collect-dir,$(d))))
endif

LIBMM_A := $(O)/libmm.a
LIBMM_SO := $(O)/libmm.so
libs := $(LIBMM_A) $(if $(CONFIG_ARCH_HOST),$(LIBMM_SO))

# Constraints between options that Kconfig cannot state (bytes against KiB,
# KiB against pages): mm/config_check.c asserts them.  Every object waits
# for it, so a configuration that breaks one fails with that one message
# before anything else is compiled; warnings are off there, as what it
# includes may trip over the very value it is about to refuse.
CONFIG_CHECK := $(O)/mm/config_check.ok

$(CONFIG_CHECK): mm/config_check.c $(O)/.cflags | $(O)/include/mm/autoconf.h
	$(quiet) CHECK $(KCONFIG_CONFIG)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_MM) -w -fsyntax-only -MMD -MP -MT $@ -MF $(@:.ok=.d.raw) $<
	$(Q)scripts/fixdep $(@:.ok=.d.raw) $(O) > $(@:.ok=.d) && rm -f $(@:.ok=.d.raw)
	$(Q)touch $@

$(O)/%.o: %.c $(O)/.cflags | $(O)/include/mm/autoconf.h $(CONFIG_CHECK)
	$(quiet) CC $@
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_MM) $(ARCH_PIC) -MMD -MP -MF $(@:.o=.d.raw) -c $< -o $@
	$(Q)scripts/fixdep $(@:.o=.d.raw) $(O) > $(@:.o=.d) && rm -f $(@:.o=.d.raw)

$(LIBMM_A): $(objs)
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(LIBMM_SO): $(objs)
	$(quiet) LD $@
	$(Q)$(CC) -shared -Wl,-soname,libmm.so -Wl,--gc-sections -o $@ $^ $(LDFLAGS_MM) $(ARCH_SO_LIBS)

all: $(libs)

-include $(objs:.o=.d) $(CONFIG_CHECK:.ok=.d)

# Sub-makes for what is built on top of the library.
-include examples/Makefile
-include tests/Makefile
-include bench/Makefile
-include scripts/install.mk

size: $(LIBMM_A)
	@echo "Code size of libmm for $(ARCH) $(call unquote,$(CONFIG_ARM_CPU))$(if $(CONFIG_RISCV_RV32IMAC),rv32imac)$(if $(CONFIG_RISCV_RV64IMAC),rv64imac) ($(OPTFLAGS-y)):"
	$(Q)$(SIZE) -t $(LIBMM_A) | sed -e 's|(ex $(LIBMM_A))||'

.PHONY: size
endif # config needed

# ---------------------------------------------------------------------------
# Test matrix and housekeeping (no configuration needed)

install-deps:
	$(Q)scripts/install-deps.sh all

check:
	$(Q)scripts/check.sh

size-all:
	$(Q)scripts/size-all.sh

clean:
	$(Q)rm -rf $(O)

distclean: clean
	$(Q)rm -rf build .config .config.old

help:
	@echo 'Configuration:'
	@echo '  menuconfig       - edit the configuration in a terminal menu'
	@echo '  nconfig          - the same, ncurses-style'
	@echo '  olddefconfig     - update .config after a Kconfig change, new options at default'
	@echo '  savedefconfig    - write the minimal configuration to $$(O)/defconfig'
	@echo '  <name>_defconfig - configure for a board; one of:'
	@$(foreach d,$(DEFCONFIGS),echo '      $(d)';)
	@echo 'Build (needs a configuration):'
	@echo '  all              - build $$(O)/libmm.a (and libmm.so on hosts) [default]'
	@echo '  run              - build and run the demo (host) or firmware in QEMU (Cortex-M4);'
	@echo '                     configures host_defconfig first if there is no .config'
	@echo '  test             - build and run the unit tests of the current configuration'
	@echo '  size             - .text/.data/.bss of each object and the whole library'
	@echo '  size-all         - the footprint table of every cross configuration'
	@echo '  install          - install headers, libraries and mm.pc (PREFIX, DESTDIR)'
	@echo 'Whole suite:'
	@echo '  check            - every host configuration, ASan+UBSan, Valgrind, cross builds,'
	@echo '                     firmware in QEMU and real programs under LD_PRELOAD'
	@echo '  install-deps     - apt-get what the build and the tests need'
	@echo 'Housekeeping:'
	@echo '  clean            - remove $$(O)'
	@echo '  distclean        - remove build/ and .config'
	@echo 'Variables: O=dir (build directory, default build), V=1 (show commands),'
	@echo '  CROSS_COMPILE=prefix, KCONFIG_CONFIG=file (default .config, or dir/.config'
	@echo '  with O=dir)'

.PHONY: install-deps check size-all clean distclean help
FORCE:
