/* The real libcurl functions and libc's dlopen, found from the object that interposes them
 * (C, so that the preload stub, shim/stub.c, needs no libstdc++). On x86-64 the stub
 * (libcurlcache-preload.so) does the lookups and lends them to the engine
 * (shim/stub_abi.h); the one-library build (other architectures) calls them directly. */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* The libcurl builds the shim tells apart (shim/library.h), in this order: OpenSSL, GnuTLS,
 * NSS. `version` is the GNU symbol version of the build's public functions. */
struct curlcache_shim_library {
    const char* version;
    const char* soname;
};
#define CURLCACHE_SHIM_LIBRARY_COUNT 3
extern const struct curlcache_shim_library curlcache_shim_libraries[CURLCACHE_SHIM_LIBRARY_COUNT];

/* The function `name` of libcurl build `library`, never one of this object's own; NULL when
 * that build is not loaded (and cannot be) or lacks it. The first call per build finds where
 * the build lives, under pthread_once: dlvsym(RTLD_NEXT) with its version; else the library
 * already loaded, through dlopen(RTLD_NOLOAD) (a libcurl that came in RTLD_LOCAL, as under
 * pycurl); else, for OpenSSL, an unversioned libcurl; else the library loaded by name (a
 * program linked -lcurlcache-preload -lcurl under --as-needed). The library is then pinned:
 * the pointers stay valid even if the program dlcloses what brought it in. */
void* curlcache_shim_real_function(int library, const char* name);

/* libc's dlopen (resolved once; NULL if it cannot be found), and a call of it. */
void* curlcache_shim_real_dlopen_function(void);
void* curlcache_shim_real_dlopen(const char* file, int mode);

/* CURLCACHE_DISABLE set to 1/true/yes/on, any case, blanks around (the config loader's
 * reading: config::parse_bool). Read once; a malformed value is not "disabled": the engine
 * reports it and fails open. */
int curlcache_shim_disabled(void);

/* Writes the pieces (NULL-terminated) as one line to stderr. */
void curlcache_shim_warn(const char* const* pieces);

#ifdef __cplusplus
}
#endif
