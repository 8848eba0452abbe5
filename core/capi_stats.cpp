// Public C API: statistics (persisted counters plus this process's unflushed ones).
#include "core/capi_internal.h"

#include "core/stats.h"

using namespace curlcache;
using core::capi::fail;
using core::capi::guarded;
using core::capi::with_cache;

extern "C" {

CURLCACHE_EXPORT curlcache_code curlcache_stats_get(curlcache_handle* handle,
                                                    curlcache_stats* out) {
    if (!handle || !out) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    return with_cache(handle, [&](core::Cache& cache) {
        core::stats::Counters total = core::stats::snapshot(cache.stats());
        if (!cache.stats_path().empty()) {
            // A read-only cache's saved counters may be unreadable (0600): its entries show.
            auto persisted = core::stats::read_file(cache.stats_path());
            if (persisted) {
                total += *persisted;
            } else if (cache.storage().read_only_reason().empty()) {
                return fail(handle, CURLCACHE_E_IO, persisted.error().message);
            }
        }
        *out = curlcache_stats{total.hits,        total.misses,         total.stores,
                               total.errors,      total.errors_timeout, total.corrupt,
                               total.passthrough, total.bytes_served,   total.bytes_downloaded};
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_stats_zero(curlcache_handle* handle) {
    return with_cache(handle, [&](core::Cache& cache) {
        if (std::string why = cache.storage().read_only_reason(); !why.empty()) {
            return fail(handle, CURLCACHE_E_BACKEND,
                        cache.stats_path() + ": the cache is read-only (" + why + ")");
        }
        core::stats::take(cache.stats());
        if (!cache.stats_path().empty()) {
            if (auto zeroed = core::stats::zero_file(cache.stats_path()); !zeroed) {
                return fail(handle, CURLCACHE_E_IO, zeroed.error().message);
            }
        }
        return CURLCACHE_OK;
    });
}

} // extern "C"
