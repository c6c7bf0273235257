# Host: the machine's gcc, position-independent so the same objects make
# libmm.a and libmm.so.
ARCH_CFLAGS := -fPIC -pthread -D_GNU_SOURCE
ARCH_SO_LIBS := -pthread
