/* Between the preload stub (libcurlcache-preload.so, shim/stub.c) and the engine it loads on
 * the first libcurl call (libcurlcache-engine.so: the wrappers, core, backends). The two are
 * built and installed together; the count of entries is checked all the same. */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* The interposed functions of one libcurl build, in slot order (the stub's exports: every
 * one once per build, shim/preload.map). `fails` says what the stub returns when it must
 * pass through and the real function is missing: null (NULL, or nothing for void), easy
 * (CURLE_FAILED_INIT), multi (CURLM_INTERNAL_ERROR), with one warning; header
 * (CURLHE_NOT_BUILT_IN) and quiet (NULL) without one. */
#define CURLCACHE_STUB_EASY_FUNCTIONS(X)                                                           \
    X(0, easy_init, null)                                                                          \
    X(1, easy_setopt, easy)                                                                        \
    X(2, easy_perform, easy)                                                                       \
    X(3, easy_getinfo, easy)                                                                       \
    X(4, easy_cleanup, null)                                                                       \
    X(5, easy_reset, null)                                                                         \
    X(6, easy_duphandle, null)                                                                     \
    X(7, easy_header, header)                                                                      \
    X(8, easy_nextheader, quiet)
#define CURLCACHE_STUB_MULTI_FUNCTIONS(X)                                                          \
    X(9, multi_setopt, multi)                                                                      \
    X(10, multi_add_handle, multi)                                                                 \
    X(11, multi_remove_handle, multi)                                                              \
    X(12, multi_perform, multi)                                                                    \
    X(13, multi_info_read, null)                                                                   \
    X(14, multi_wait, multi)                                                                       \
    X(15, multi_poll, multi)                                                                       \
    X(16, multi_timeout, multi)                                                                    \
    X(17, multi_socket_action, multi)                                                          \
    X(18, multi_cleanup, multi)                                                                    \
    X(19, multi_fdset, multi)
#define CURLCACHE_STUB_FUNCTION_COUNT 20
/* Slot of function `index` of build `library` (0 OpenSSL, 1 GnuTLS, 2 NSS). */
#define CURLCACHE_STUB_SLOT(library, index) ((library) * CURLCACHE_STUB_FUNCTION_COUNT + (index))
#define CURLCACHE_STUB_SLOT_COUNT (3 * CURLCACHE_STUB_FUNCTION_COUNT)

/* What the stub lends the engine: its lookups, made from the stub, whose place in the
 * global scope is the one that counts (RTLD_NEXT from the engine, which is loaded
 * RTLD_LOCAL, would not find libcurl). */
struct curlcache_stub_services {
    unsigned size; /* sizeof(struct curlcache_stub_services) of the stub */
    void* (*real_function)(int library, const char* name); /* shim/real.h */
    void* (*real_dlopen)(const char* file, int mode);
};

/* The engine's one export. Fills entries[0..count) with its wrappers (by slot); returns 0,
 * or -1 when `count` or the services are not what this engine was built for. */
#define CURLCACHE_ENGINE_ATTACH "curlcache_engine_attach"
typedef int (*curlcache_engine_attach_fn)(const struct curlcache_stub_services* services,
                                          void** entries, unsigned count);

#ifdef __cplusplus
}
#endif
