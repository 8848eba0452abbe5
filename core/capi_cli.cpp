// Public C API the curlcache command needs beyond the rest: storing a response under a
// recorded key (HAR import) and the URL glob of curlcache_delete (list --url). Owned by
// the command's room; built into libcurlcache.
#include "core/capi_internal.h"

#include "backends/registry.h"
#include "core/policy.h"

#include <array>
#include <optional>

using namespace curlcache;

extern "C" {

CURLCACHE_EXPORT int curlcache_glob_match(const char* pattern, const char* text) {
    if (!pattern || !text) {
        return 0;
    }
    return core::policy::glob_match(pattern, text) ? 1 : 0;
}

CURLCACHE_EXPORT curlcache_code curlcache_store_with_key(curlcache_handle* handle,
                                                         const char* key_hex,
                                                         const curlcache_request* request,
                                                         const char* headers, size_t headers_size,
                                                         const void* body, size_t body_size) {
    if (!handle || !key_hex || !request) {
        return core::capi::fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    return core::capi::guarded(handle, [&]() -> curlcache_code {
        core::Cache* cache = core::capi::cache_of(handle);
        if (!cache) {
            return CURLCACHE_E_INVALID_ARGUMENT;
        }
        std::optional<core::Key> key = core::Key::from_hex(key_hex);
        if (!key || key->hex() != key_hex) {
            return core::capi::fail(handle, CURLCACHE_E_INVALID_ARGUMENT,
                                    std::string("not a cache key: \"") + key_hex + "\"");
        }
        // The entry is built and checked by curlcache_store() itself, into a private
        // memory cache with the same settings: one definition of what storing means. Its
        // encoded value (which does not contain the key) then moves under `key`.
        config::Settings scratch_settings = cache->settings();
        scratch_settings.backend = {"memory"};
        scratch_settings.max_size = 0;
        scratch_settings.memory_max_entries = 0;
        auto storage = backends::open("memory", scratch_settings);
        if (!storage) {
            return core::capi::fail(handle, storage.error());
        }
        curlcache_handle scratch;
        scratch.cache = core::Cache::with_storage(scratch_settings, std::move(*storage));
        curlcache_code code =
            curlcache_store(&scratch, request, headers, headers_size, body, body_size);
        if (code != CURLCACHE_OK) {
            return core::capi::fail(handle, code, curlcache_errmsg(&scratch));
        }
        backends::Storage& scratch_storage = scratch.cache->storage();
        std::optional<backends::Metadata> meta;
        auto scanned = scratch_storage.scan([&](const backends::Metadata& m) {
            meta = m;
            return false;
        });
        if (!scanned) {
            return core::capi::fail(handle, scanned.error());
        }
        auto blob = meta ? scratch_storage.get(meta->key)
                         : backends::Result<std::optional<backends::Blob>>();
        if (!meta || !blob || !*blob || !**blob) {
            return core::capi::fail(handle, CURLCACHE_E_INTERNAL, "the built entry vanished");
        }
        meta->key = key->hex();
        std::array<std::string_view, 1> pieces{std::string_view(***blob)};
        auto put = cache->storage().put(*meta, pieces);
        if (!put) {
            return core::capi::fail(handle, put.error());
        }
        cache->stats().stores.fetch_add(1, std::memory_order_relaxed);
        return CURLCACHE_OK;
    });
}

} // extern "C"
