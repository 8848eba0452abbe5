// The libcurl builds the shim tells apart, and the wrappers' common helpers.
//
// Debian ships libcurl builds that a process may load side by side: libcurl.so.4 (OpenSSL,
// symbols versioned CURL_OPENSSL_4; the curl CLI), libcurl-gnutls.so.4 (GnuTLS,
// CURL_GNUTLS_3; pycurl, git) and libcurl-nss.so.4 (NSS, CURL_NSS_3). The shim exports every
// wrapper once per build with that build's symbol version, so the dynamic loader binds each
// caller to the wrapper that knows its library: no per-handle bookkeeping is needed to pick
// the right real function.
#pragma once

#include "shim/real.h"

#include <cstddef>

namespace curlcache::shim {

enum class Library : int { openssl = 0, gnutls = 1, nss = 2 };
inline constexpr std::size_t k_library_count = CURLCACHE_SHIM_LIBRARY_COUNT;

// Its GNU symbol version and soname (the table is shim/real.c's, shared with the stub).
using LibraryInfo = curlcache_shim_library;
inline const LibraryInfo& info(Library library) {
    return curlcache_shim_libraries[static_cast<int>(library)];
}

} // namespace curlcache::shim

// Declares `ret name_<tag>(args)` exported as `curl_name@<version>` for one library. The
// OpenSSL build gets the default version (@@), which also binds unversioned references:
// a program linked with -lcurlcache-preload, or against an unversioned libcurl. In the
// engine of the split build (x86-64) the wrappers stay hidden: the stub exports those
// names and jumps to the wrappers (shim/stub.c, shim/engine_entry.cpp).
#if CURLCACHE_SHIM_SPLIT
#define CURLCACHE_SHIM_EXPORT(tag, name) extern "C" __attribute__((visibility("hidden"), used))
#else
#define CURLCACHE_SHIM_SYMVER_openssl(name) #name "@@CURL_OPENSSL_4"
#define CURLCACHE_SHIM_SYMVER_gnutls(name) #name "@CURL_GNUTLS_3"
#define CURLCACHE_SHIM_SYMVER_nss(name) #name "@CURL_NSS_3"
#define CURLCACHE_SHIM_EXPORT(tag, name)                                                           \
    extern "C"                                                                                     \
        __attribute__((visibility("default"), used, symver(CURLCACHE_SHIM_SYMVER_##tag(name))))
#endif

// Split build: stores the wrappers of curl_<name> of the three builds in entries[] at their
// slots (an X of CURLCACHE_STUB_*_FUNCTIONS, shim/stub_abi.h).
#define CURLCACHE_SHIM_ENTRY(index, name, fails)                                                   \
    entries[CURLCACHE_STUB_SLOT(0, index)] = reinterpret_cast<void*>(&curlcache_shim_openssl_##name); \
    entries[CURLCACHE_STUB_SLOT(1, index)] = reinterpret_cast<void*>(&curlcache_shim_gnutls_##name); \
    entries[CURLCACHE_STUB_SLOT(2, index)] = reinterpret_cast<void*>(&curlcache_shim_nss_##name);

// Runs the body of a macro once per library: X(tag, Library::value).
#define CURLCACHE_SHIM_FOR_EACH_LIBRARY(X)                                                         \
    X(openssl, ::curlcache::shim::Library::openssl)                                                \
    X(gnutls, ::curlcache::shim::Library::gnutls)                                                  \
    X(nss, ::curlcache::shim::Library::nss)
