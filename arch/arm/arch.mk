# Cortex-M: Thumb, soft-float ABI (the library has no floating point, and
# soft-float objects link into hard-float applications' multilib via -mcpu).
ARCH_CFLAGS := -mcpu=$(call unquote,$(CONFIG_ARM_CPU)) -mthumb -mfloat-abi=soft
