// The easy-handle engine: follows each CURL handle's options, answers a transfer from the
// cache (replaying the recorded response into the program's callbacks) or runs it for real
// with the callbacks teed into a new entry. It serves both the preload shim (shim/) and
// programs that link libcurlcache directly (core/lib/). It never links libcurl: every real
// call goes through the CurlApi table of the library the handle belongs to.
//
// Every function here is exception-free and fails open: a cache problem makes the transfer
// run exactly as libcurl alone would run it.
#pragma once

#include <curl/curl.h>

#include <cstdarg>
#include <cstdint>
#include <optional>

namespace curlcache::core::easy {

// The real libcurl functions of one library (libcurl.so.4, libcurl-gnutls.so.4, or the
// one libcurlcache is linked with). Any pointer may be null if the library lacks it.
struct CurlApi {
    const char* library = "";
    CURL* (*easy_init)() = nullptr;
    CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
    CURLcode (*easy_perform)(CURL*) = nullptr;
    CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
    void (*easy_cleanup)(CURL*) = nullptr;
    void (*easy_reset)(CURL*) = nullptr;
    CURL* (*easy_duphandle)(CURL*) = nullptr;
    CURLHcode (*easy_header)(CURL*, const char*, size_t, unsigned int, int,
                             struct curl_header**) = nullptr;
    struct curl_header* (*easy_nextheader)(CURL*, unsigned int, int, struct curl_header*) = nullptr;
    const char* (*easy_strerror)(CURLcode) = nullptr;
    CURLMcode (*multi_add_handle)(CURLM*, CURL*) = nullptr;
    CURLMcode (*multi_remove_handle)(CURLM*, CURL*) = nullptr;
    CURLMcode (*multi_perform)(CURLM*, int*) = nullptr;
    CURLMsg* (*multi_info_read)(CURLM*, int*) = nullptr;
    CURLMcode (*multi_wait)(CURLM*, struct curl_waitfd*, unsigned int, int, int*) = nullptr;
    CURLMcode (*multi_poll)(CURLM*, struct curl_waitfd*, unsigned int, int, int*) = nullptr;
    CURLMcode (*multi_fdset)(CURLM*, fd_set*, fd_set*, fd_set*, int*) = nullptr;
    CURLMcode (*multi_timeout)(CURLM*, long*) = nullptr;
    CURLMcode (*multi_socket_action)(CURLM*, curl_socket_t, int, int*) = nullptr;
    CURLMcode (*multi_cleanup)(CURLM*) = nullptr;
};

// Drop-in replacements for the libcurl functions of the same name. `args` holds the one
// argument libcurl's variadic function would read (its type follows the option's number).
CURL* easy_init(const CurlApi& api);
CURLcode easy_setopt(const CurlApi& api, CURL* handle, CURLoption option, va_list args);
CURLcode easy_perform(const CurlApi& api, CURL* handle);
CURLcode easy_getinfo(const CurlApi& api, CURL* handle, CURLINFO info, va_list args);
void easy_cleanup(const CurlApi& api, CURL* handle);
void easy_reset(const CurlApi& api, CURL* handle);
CURL* easy_duphandle(const CurlApi& api, CURL* handle);
CURLHcode easy_header(const CurlApi& api, CURL* handle, const char* name, size_t index,
                      unsigned int origin, int request, struct curl_header** hout);
struct curl_header* easy_nextheader(const CurlApi& api, CURL* handle, unsigned int origin,
                                    int request, struct curl_header* prev);

// The phases of one transfer, for drivers other than curl_easy_perform (the multi
// interface). easy_perform() is begin_transfer + (replay | real perform + end_transfer).
enum class Begin {
    passthrough, // the cache does not touch this transfer: run it for real, call nothing else
    hit,         // answer it with replay(); no socket is opened
    miss,        // run it for real (callbacks are teed), then call end_transfer()
};
Begin begin_transfer(const CurlApi& api, CURL* handle);
// Delivers the entry to the program's callbacks; returns the CURLcode the program sees.
CURLcode replay(const CurlApi& api, CURL* handle);
// The same in pieces, for a multi driver: delivers the headers (on the first call) and up to
// about `budget` body bytes, and returns nullopt while more remain; the CURLcode once done.
// A large body streamed from storage is then spread over several rounds of the program's
// loop instead of holding one round for all of it.
std::optional<CURLcode> replay_some(const CurlApi& api, CURL* handle, uint64_t budget);
// After a real transfer that began as a miss: restores the program's callbacks, records the
// transfer facts and stores the entry when the result and the policy allow. Returns the
// CURLcode the program sees: `result`, except when a revalidation got a 304, which is
// answered by replaying the refreshed entry (the program then sees the replay's result).
CURLcode end_transfer(const CurlApi& api, CURL* handle, CURLcode result);

} // namespace curlcache::core::easy
