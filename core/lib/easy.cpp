// The exported curlcache_easy_* functions (declared in curlcache/curl.h): the engine over
// the linked libcurl. Nothing thrown inside may cross this C boundary.
#define CURLCACHE_NO_MACROS
#include "curlcache/curl.h"

#include "core/easy/engine.h"
#include "core/lib/linked_curl.h"

#include <cstdarg>

using curlcache::core::lib::linked_curl;
namespace easy = curlcache::core::easy;

extern "C" {

CURL* curlcache_easy_init(void) {
    return easy::easy_init(linked_curl());
}

CURLcode curlcache_easy_setopt(CURL* handle, CURLoption option, ...) {
    va_list args;
    va_start(args, option);
    CURLcode rc = easy::easy_setopt(linked_curl(), handle, option, args);
    va_end(args);
    return rc;
}

CURLcode curlcache_easy_perform(CURL* handle) {
    return easy::easy_perform(linked_curl(), handle);
}

CURLcode curlcache_easy_getinfo(CURL* handle, CURLINFO info, ...) {
    va_list args;
    va_start(args, info);
    CURLcode rc = easy::easy_getinfo(linked_curl(), handle, info, args);
    va_end(args);
    return rc;
}

void curlcache_easy_cleanup(CURL* handle) {
    easy::easy_cleanup(linked_curl(), handle);
}

void curlcache_easy_reset(CURL* handle) {
    easy::easy_reset(linked_curl(), handle);
}

CURL* curlcache_easy_duphandle(CURL* handle) {
    return easy::easy_duphandle(linked_curl(), handle);
}

CURLHcode curlcache_easy_header(CURL* handle, const char* name, size_t index, unsigned int origin,
                                int request, struct curl_header** hout) {
    return easy::easy_header(linked_curl(), handle, name, index, origin, request, hout);
}

struct curl_header* curlcache_easy_nextheader(CURL* handle, unsigned int origin, int request,
                                              struct curl_header* prev) {
    return easy::easy_nextheader(linked_curl(), handle, origin, request, prev);
}

} // extern "C"
