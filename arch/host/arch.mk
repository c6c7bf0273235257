# Host: the machine's gcc, position-independent so the same objects make
# libmm.a and libmm.so.
#
# -fvisibility=hidden: only what the public headers declare (between
# MM_BEGIN_DECLS and MM_END_DECLS) and the malloc facade are exported from
# libmm.so, so calls and data references inside the library are direct, not
# through the PLT and GOT.  -Bsymbolic-functions binds the library's calls
# to its own exported functions (kmalloc -> kmem_cache_alloc) directly too.
ARCH_CFLAGS := -fPIC -pthread -D_GNU_SOURCE -fvisibility=hidden -fno-semantic-interposition
ARCH_SO_LIBS := -pthread -Wl,-Bsymbolic-functions
