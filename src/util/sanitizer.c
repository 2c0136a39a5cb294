/*
 * sanitizer.c - what a sanitizer build tells the AddressSanitizer runtime
 * before it starts (empty in every other build).
 *
 * The runtimes of GCC up to 13 and LLVM up to 16 guess where a thread's
 * dynamic TLS block lies from the glibc of 2014: a block whose address is
 * 16 bytes into a page is taken to carry a header, and the two words
 * before it are read as the block's start and size. Since glibc 2.25 those
 * blocks come from malloc and carry no such header, so one that lands 16
 * bytes into a page by chance gives LeakSanitizer a range of garbage, and
 * its tracer dies at exit ("Tracer caught signal 11", exit 134). Every
 * library a module pulls in with dlopen (util/module.c) keeps its TLS in
 * such blocks: libvirt's did this in `providers exec --threads`, for some
 * layouts of the heap and not others.
 *
 * The runtime's __tls_get_addr interception exists only to record those
 * blocks, and on this glibc it records every one either as empty or as
 * garbage, so turning it off loses no leak check: the blocks are heap
 * chunks LeakSanitizer scans like any other. The environment's
 * ASAN_OPTIONS still override this. Fixed in LLVM 17 ("Fix tls_get_addr
 * handling for glibc >=2.25", google/sanitizers#1409) and GCC 14, whose
 * runtimes get no such default.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PV_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PV_ASAN 1
#endif

#if defined(__clang__)
#define PV_ASAN_TLS_GUESS (__clang_major__ < 17)
#else
#define PV_ASAN_TLS_GUESS (__GNUC__ < 14)
#endif

#if defined(PV_ASAN) && PV_ASAN_TLS_GUESS
const char *__asan_default_options(void);

__attribute__((used, visibility("default"))) const char *__asan_default_options(void)
{
	return "intercept_tls_get_addr=0";
}
#endif
