# RISC-V: freestanding, no C library at all.  The toolchain may have no
# <string.h> either: the fallback after the system directories declares the
# four functions lib/string.c provides (CONFIG_MM_LIB_STRING).
ARCH_CFLAGS-$(CONFIG_RISCV_RV32IMAC) := -march=rv32imac -mabi=ilp32
ARCH_CFLAGS-$(CONFIG_RISCV_RV64IMAC) := -march=rv64imac -mabi=lp64 -mcmodel=medany
ARCH_CFLAGS := $(ARCH_CFLAGS-y) -ffreestanding -fno-asynchronous-unwind-tables \
	       -idirafter arch/riscv/include/freestanding
