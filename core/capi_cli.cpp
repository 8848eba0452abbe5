// Public C API the curlcache command needs beyond the rest: storing a response under a
// recorded key (HAR import) and the URL glob of curlcache_delete (list --url). Owned by
// the command's room; built into libcurlcache.
#include "core/capi_internal.h"

#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "core/policy.h"
#include "core/stats.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>

using namespace curlcache;

namespace {

// Whether one tier holds stored data: a SQLite database file or a filesystem cache folder
// that exists, any remote or plugin store; never a memory tier. `missing` gets its path.
bool tier_exists(backends::Storage& tier, std::string& missing) {
    const std::string_view name = tier.name();
    if (name == "memory") {
        return false;
    }
    if (name != "sqlite" && name != "filesystem") {
        return true; // a Redis namespace, a plugin's table: empty is not missing
    }
    const std::string location = tier.location();
    struct stat st {};
    if (location.empty() || location == ":memory:" || location.starts_with("file:") ||
        ::stat(location.c_str(), &st) == 0) {
        return true;
    }
    if (missing.empty()) {
        missing = location;
    }
    return false;
}

} // namespace

extern "C" {

CURLCACHE_EXPORT curlcache_code curlcache_exists(curlcache_handle* handle) {
    return core::capi::with_cache(handle, [&](core::Cache& cache) -> curlcache_code {
        backends::Storage& storage = cache.storage();
        std::string missing;
        bool exists = false;
        if (backends::TieredStorage* tiered = backends::as_tiered(storage)) {
            for (size_t i = 0; i < tiered->tier_count() && !exists; ++i) {
                exists = tier_exists(tiered->tier(i), missing);
            }
        } else {
            exists = tier_exists(storage, missing);
        }
        if (exists) {
            return CURLCACHE_OK;
        }
        if (missing.empty()) {
            missing = std::string(storage.name()) + " (it lives only inside one process)";
        }
        return core::capi::fail(handle, CURLCACHE_E_MISS, "no cache at " + missing);
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_run_stats_begin(char* path, size_t size) {
    if (!path || size == 0) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return core::capi::guarded(nullptr, [&]() -> curlcache_code {
        auto created = core::stats::create_run_file();
        if (!created) {
            return CURLCACHE_E_IO;
        }
        if (created->size() >= size) {
            ::unlink(created->c_str());
            return CURLCACHE_E_INVALID_ARGUMENT;
        }
        std::memcpy(path, created->c_str(), created->size() + 1);
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_run_stats_end(const char* path,
                                                        curlcache_run_stats* out) {
    if (!path || !out) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return core::capi::guarded(nullptr, [&]() -> curlcache_code {
        auto read = core::stats::read_run_file(path);
        if (!read) {
            return CURLCACHE_E_IO;
        }
        const core::stats::Counters& c = *read;
        *out = curlcache_run_stats{c.hits,         c.misses,           c.stores,
                                   c.passthrough,  c.errors,           c.bytes_served,
                                   c.bytes_downloaded, c.time_saved_ms};
        return CURLCACHE_OK;
    });
}

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
