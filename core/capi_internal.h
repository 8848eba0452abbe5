// What the public C API's opaque handles hold, and the boundary helpers every
// core/capi*.cpp uses: no exception ever leaves an exported function, and each handle
// keeps its last detailed message.
//
// Messages are kept per handle *and per thread* (a map from thread id, under the handle's
// mutex): a call on one thread never overwrites or clears the message another thread is
// about to read, and curlcache_errmsg() returns a pointer that stays valid until the
// calling thread's next call on that handle, as the header promises.
#pragma once

#ifndef CURLCACHE_NO_SHORT_HANDLE_NAME
#define CURLCACHE_NO_SHORT_HANDLE_NAME
#endif
#include "core/cache.h"

#include <curlcache/curlcache.h>

#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct curlcache_handle {
    std::unique_ptr<curlcache::core::Cache> cache; // null when open failed
    mutable std::mutex mutex;
    mutable std::unordered_map<std::thread::id, std::string> messages;
    // curlcache_tier_get()'s strings, which live as long as the handle.
    std::vector<std::pair<std::string, std::string>> tiers;
};

struct curlcache_request {
    curlcache::core::Request request;
};

struct curlcache_entry {
    curlcache::core::Entry entry;
    std::string key;
    std::string url; // entry.url, NUL-terminated
    std::string effective_url;
    std::string content_type;
    bool has_content_type = false;
    std::string freshness; // curlcache_entry_freshness(), made when first asked
    // curlcache_entry_key_part(): what entered the key (core::key_parts()), then the
    // variant's header values ("vary NAME").
    std::vector<std::pair<std::string, std::string>> key_parts;
};

namespace curlcache::core::capi {

// Clears this thread's message on `handle` (may be null).
void clear_message(curlcache_handle* handle) noexcept;

// Records `message` for this thread on `handle` (may be null) and returns `code`.
curlcache_code fail(curlcache_handle* handle, curlcache_code code,
                    const std::string& message) noexcept;

// The code and message for a backend error.
curlcache_code fail(curlcache_handle* handle, const backends::Error& error) noexcept;

// Runs `body` (returning curlcache_code) with the message cleared first, turning any
// exception into CURLCACHE_E_OUT_OF_MEMORY or CURLCACHE_E_INTERNAL with its message.
template <class Body> curlcache_code guarded(curlcache_handle* handle, Body&& body) noexcept {
    try {
        clear_message(handle);
        return body();
    } catch (const std::bad_alloc&) {
        return fail(handle, CURLCACHE_E_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        return fail(handle, CURLCACHE_E_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(handle, CURLCACHE_E_INTERNAL, "internal error: unknown exception");
    }
}

// The open cache of a handle, or null (after recording why) when the handle is null or
// its open failed.
Cache* cache_of(curlcache_handle* handle) noexcept;

// guarded() for a function on an open cache: `body` gets the Cache; a null handle, or
// one whose open failed, is CURLCACHE_E_INVALID_ARGUMENT.
template <class Body> curlcache_code with_cache(curlcache_handle* handle, Body&& body) noexcept {
    return guarded(handle, [&] {
        Cache* cache = cache_of(handle);
        return cache ? body(*cache) : CURLCACHE_E_INVALID_ARGUMENT;
    });
}

int64_t now_seconds() noexcept;

// Stored entries whose URL is `text` (normalised and redacted as stored URLs are) or, when
// `glob`, matches `text` as a glob (core/policy.h glob_match). Scans the whole cache.
backends::Result<std::vector<backends::Metadata>> entries_for_url(Cache& cache,
                                                                  std::string_view text, bool glob);

// curlcache_open()'s NULL-terminated "key=value" array (or NULL): the special key
// "config" names the file to read; the rest go to config::load as arguments.
struct Arguments {
    std::vector<std::string> settings;
    std::string config_file;
};
Arguments split_arguments(const char* const* arguments);

} // namespace curlcache::core::capi
