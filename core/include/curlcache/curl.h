/*
 * curlcache/curl.h: cached libcurl transfers for a program that links libcurlcache.
 *
 * Include it after <curl/curl.h> and link with -lcurlcache (and -lcurl):
 *
 *     #include <curl/curl.h>
 *     #include <curlcache/curl.h>
 *
 * curl_easy_init, curl_easy_setopt, curl_easy_perform, curl_easy_getinfo, curl_easy_cleanup,
 * curl_easy_reset, curl_easy_duphandle, curl_easy_header and curl_easy_nextheader then go
 * through the curlcache_easy_* functions below (define CURLCACHE_NO_MACROS to call them by
 * their own names only). They behave as the libcurl functions of the same name, except that
 * a repeated request is answered from the process-wide cache, opened lazily from the
 * standard configuration (see curlcache_open()), without opening a socket: the program's
 * callbacks receive exactly what they received when the response was recorded, and
 * getinfo/header answer from the entry. Any cache problem makes the transfer run exactly as
 * libcurl alone would run it (one warning on stderr or the configured log file).
 *
 * Thread safety is libcurl's: a handle is used by one thread at a time; different handles
 * may be used from different threads at once.
 *
 * Handles must be created with curlcache_easy_init() or curlcache_easy_duphandle() (or
 * with curl_easy_init() while the macros are in effect) and freed with
 * curlcache_easy_cleanup(). Options set directly through libcurl's own curl_easy_setopt
 * bypass the cache's bookkeeping and must not be mixed in.
 *
 * The multi interface is not covered here (the preload shim covers it): a handle driven
 * by curl_multi_* runs uncached, and must not be one whose last transfer went through
 * curlcache_easy_perform, or getinfo would still answer for that earlier transfer.
 *
 * On a replayed transfer a write callback that returns CURL_WRITEFUNC_PAUSE is treated as
 * a pause that ends at once: the same bytes are delivered again (after a progress callback
 * call, where programs usually unpause), as libcurl does after an unpause.
 */
#ifndef CURLCACHE_CURL_H
#define CURLCACHE_CURL_H

#include <curl/curl.h>
#include <curlcache/curlcache.h>

#ifdef __cplusplus
extern "C" {
#endif

CURLCACHE_EXPORT CURL *curlcache_easy_init(void);
CURLCACHE_EXPORT CURLcode curlcache_easy_setopt(CURL *handle, CURLoption option, ...);
/* Returns the result libcurl would return; a replayed transfer can fail with the codes a
 * real one fails with when a callback refuses data (CURLE_WRITE_ERROR, CURLE_ABORTED_BY_
 * CALLBACK, CURLE_HTTP_RETURNED_ERROR under FAILONERROR); in offline mode a request that is
 * not cached fails with CURLE_COULDNT_CONNECT and the error buffer reads
 * "curlcache: offline and not cached: <url>". */
CURLCACHE_EXPORT CURLcode curlcache_easy_perform(CURL *handle);
CURLCACHE_EXPORT CURLcode curlcache_easy_getinfo(CURL *handle, CURLINFO info, ...);
CURLCACHE_EXPORT void curlcache_easy_cleanup(CURL *handle);
CURLCACHE_EXPORT void curlcache_easy_reset(CURL *handle);
CURLCACHE_EXPORT CURL *curlcache_easy_duphandle(CURL *handle);
CURLCACHE_EXPORT CURLHcode curlcache_easy_header(CURL *handle, const char *name, size_t index,
                                                 unsigned int origin, int request,
                                                 struct curl_header **hout);
CURLCACHE_EXPORT struct curl_header *curlcache_easy_nextheader(CURL *handle, unsigned int origin,
                                                               int request,
                                                               struct curl_header *prev);

#ifdef __cplusplus
}
#endif

#ifndef CURLCACHE_NO_MACROS
/* libcurl's gcc type-checking wrappers are macros of the same names: replace them. */
#undef curl_easy_init
#undef curl_easy_setopt
#undef curl_easy_perform
#undef curl_easy_getinfo
#undef curl_easy_cleanup
#undef curl_easy_reset
#undef curl_easy_duphandle
#undef curl_easy_header
#undef curl_easy_nextheader
#define curl_easy_init curlcache_easy_init
#define curl_easy_setopt curlcache_easy_setopt
#define curl_easy_perform curlcache_easy_perform
#define curl_easy_getinfo curlcache_easy_getinfo
#define curl_easy_cleanup curlcache_easy_cleanup
#define curl_easy_reset curlcache_easy_reset
#define curl_easy_duphandle curlcache_easy_duphandle
#define curl_easy_header curlcache_easy_header
#define curl_easy_nextheader curlcache_easy_nextheader
#endif

#endif /* CURLCACHE_CURL_H */
