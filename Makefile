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
config-targets := %config %_defconfig help clean mrproper distclean deps check \
		  check-% size-all install-deps
no-config := $(if $(MAKECMDGOALS),$(if $(filter-out $(config-targets),$(MAKECMDGOALS)),,1),)

# As in Linux, 'make host_defconfig all' configures and then builds: the
# build's rules are read only once a .config exists, so goals that mix
# the two run one after another, each in a make of its own.  So do a
# configuration goal with any other (two configurations, or clean, write
# and remove the same files), and clean with anything but clean: in one
# make, -j runs them at once, and 'make -j2 O=dir clean host_defconfig'
# failed ("rm: cannot remove 'dir/include'") or lost the new .config.
clean-goals := clean mrproper distclean
mixed-goals := $(if $(filter %config,$(MAKECMDGOALS)),$(word 2,$(MAKECMDGOALS)))$(strip \
	       $(if $(filter $(clean-goals),$(MAKECMDGOALS)),$(filter-out $(clean-goals),$(MAKECMDGOALS))))

ifneq ($(mixed-goals),)
$(MAKECMDGOALS): one-goal-at-a-time
	@:
one-goal-at-a-time:
	$(Q)set -e; for goal in $(MAKECMDGOALS); do $(MAKE) -f $(srctree)/Makefile $$goal; done
.PHONY: $(MAKECMDGOALS) one-goal-at-a-time
else

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

# Linux's whole-tree configurations: every option no (allnoconfig), yes
# (allyesconfig) or at random (randconfig), the choices at their defaults
# (randconfig: at random too).  As in Linux, KCONFIG_ALLCONFIG=file pins
# the options that file sets, and KCONFIG_ALLCONFIG=1 (or empty) takes
# all{no,yes,random}.config, else all.config, from the directory that holds
# the configuration (the source tree, or $(O) with O=dir); KCONFIG_SEED
# makes a randconfig reproducible, KCONFIG_PROBABILITY (percent) sets its
# odds of a yes.  What kconfig-conf 4.11 does that Linux users may not
# expect, checked on it:
#  - a KCONFIG_SEED that strtol() does not take whole ("12x", "abc", or
#    "08") is dropped silently for a seed from the clock: refused here, so
#    that a seed asked for is the seed used.  The seed used goes to
#    stderr as KCONFIG_SEED=0x...;
#  - randconfig draws bool options and choices only: every int and hex
#    option keeps its default (kconfig-tweak --set-val, then
#    olddefconfig, to draw those);
#  - kconfig-conf runs in the directory it reads all*.config from, and a
#    relative KCONFIG_ALLCONFIG would be taken from there, not from where
#    make runs: it is made absolute here;
#  - a pinned value that the configuration cannot have (out of its range,
#    or its dependencies off) is dropped without a word, and an int out of
#    range becomes the range's nearest end: scripts/allconfig-check.sh
#    warns of each such option;
#  - randconfig writes '# ... is not set' for the choice entries of an
#    architecture it did not pick; olddefconfig drops those lines, and
#    changes nothing else.
ALLCONFIG_DIR := $(dir $(KCONFIG_CONFIG_ABS))
ifeq ($(origin KCONFIG_ALLCONFIG),undefined)
allconfig-env :=
else ifeq ($(filter-out 1,$(KCONFIG_ALLCONFIG)),)
allconfig-env := KCONFIG_ALLCONFIG=$(KCONFIG_ALLCONFIG)
else
allconfig-env := KCONFIG_ALLCONFIG=$(abspath $(KCONFIG_ALLCONFIG))
endif

allnoconfig allyesconfig randconfig: kconfig-tools
	$(Q)case "$${KCONFIG_SEED-}" in \
	'' | 0 | [1-9] | [1-9]*[0-9] | 0[xX]?*) \
		case "$${KCONFIG_SEED-}" in \
		0[xX]*[!0-9a-fA-F]* | [1-9]*[!0-9]*) ;; \
		*) exit 0 ;; esac ;; \
	0[0-7]*) case "$${KCONFIG_SEED}" in *[!0-7]*) ;; *) exit 0 ;; esac ;; \
	esac; \
	echo "KCONFIG_SEED=$${KCONFIG_SEED}: not a number kconfig-conf takes (decimal, 0x hex," \
	     "0 octal); it would seed from the clock instead" >&2; exit 1
	$(Q)mkdir -p $(O) $(ALLCONFIG_DIR)
	$(Q)cd $(ALLCONFIG_DIR) && $(KCONFIG_ENV) $(allconfig-env) $(KCONF) --$@ $(srctree)/Kconfig >/dev/null
	$(Q)$(if $(allconfig-env),scripts/allconfig-check.sh $(KCONFIG_CONFIG_ABS) \
		$(if $(filter-out 1,$(KCONFIG_ALLCONFIG)),$(abspath $(KCONFIG_ALLCONFIG)), \
		$(ALLCONFIG_DIR)$(subst rand,allrandom,$(@:config=)).config $(ALLCONFIG_DIR)all.config))
	@echo "Configured $(KCONFIG_CONFIG) ($@)"

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

.PHONY: kconfig-tools olddefconfig alldefconfig savedefconfig menuconfig nconfig \
	allnoconfig allyesconfig randconfig

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

# As in Linux: clean removes what the build made and keeps the
# configuration, also one that O=dir keeps in dir/.config; mrproper removes
# that too; distclean every build directory and the tree's .config.
clean:
	$(Q)if [ -d $(O) ]; then \
		find $(O) -mindepth 1 -maxdepth 1 ! -name .config ! -name .config.old -exec rm -rf {} +; \
		rmdir $(O) 2>/dev/null || :; \
	fi

mrproper: clean
	$(Q)rm -f $(KCONFIG_CONFIG) $(KCONFIG_CONFIG).old
	$(Q)if [ -d $(O) ]; then rmdir $(O) 2>/dev/null || :; fi

distclean: mrproper
	$(Q)rm -rf build .config .config.old

help:
	@echo 'Configuration:'
	@echo '  menuconfig       - edit the configuration in a terminal menu'
	@echo '  nconfig          - the same, ncurses-style'
	@echo '  olddefconfig     - update .config after a Kconfig change, new options at default'
	@echo '  savedefconfig    - write the minimal configuration to $$(O)/defconfig'
	@echo '  allnoconfig      - every option off that can be (choices at their default)'
	@echo '  allyesconfig     - every option on that can be (choices at their default)'
	@echo '  randconfig       - options and choices at random (ints at their default);'
	@echo '                     KCONFIG_SEED=n repeats one, KCONFIG_PROBABILITY=percent'
	@echo '  KCONFIG_ALLCONFIG=file pins what file sets in the three above; =1 reads'
	@echo '                     all{no,yes,random}.config or all.config beside the .config'
	@echo '  <name>_defconfig - configure for a board; one of:'
	@$(foreach d,$(DEFCONFIGS),echo '      $(d)';)
	@echo 'Build (needs a configuration):'
	@echo '  all              - build $$(O)/libmm.a (and libmm.so on hosts) [default]'
	@echo '  run              - build and run the demo (host) or firmware in QEMU (Cortex-M4);'
	@echo '                     configures host_defconfig first if there is no .config'
	@echo '  test             - build and run the unit tests of the current configuration,'
	@echo '                     TEST_JOBS at a time (default: the CPUs), under TEST_WRAPPER'
	@echo '  fuzz             - build the fuzzer, tests/fuzz_mm.c (CC=clang, the sanitizers'
	@echo '                     in EXTRA_CFLAGS): tests/fuzz.sh DEFCONFIG does it all'
	@echo '  size             - .text/.data/.bss of each object and the whole library'
	@echo '  size-all         - the footprint table of every cross configuration'
	@echo '  install          - install headers, libraries and mm.pc (PREFIX, DESTDIR)'
	@echo 'Whole suite:'
	@echo '  check            - every host configuration, ASan+UBSan, Valgrind, the fuzzer,'
	@echo '                     cross builds, firmware in QEMU and real programs under LD_PRELOAD'
	@echo '  install-deps     - apt-get what the build and the tests need'
	@echo 'Housekeeping:'
	@echo '  clean            - remove what the build made in $$(O); the configuration stays'
	@echo '  mrproper         - clean, and remove the configuration too'
	@echo '  distclean        - remove build/ and .config'
	@echo 'Variables: O=dir (build directory, default build), V=1 (show commands),'
	@echo '  CROSS_COMPILE=prefix, KCONFIG_CONFIG=file (default .config, or dir/.config'
	@echo '  with O=dir)'

.PHONY: install-deps check size-all clean mrproper distclean help
FORCE:

endif # mixed-goals
