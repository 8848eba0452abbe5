// Public C API: listing, deleting, purging and copying entries; storage tiers.
#include "core/capi_internal.h"

#include "backends/tiered_storage.h"
#include "core/policy.h"

#include <algorithm>
#include <cstring>

namespace curlcache::core::capi {

namespace {

// The metadata of every entry, collected first so that no backend cursor stays open
// while the caller's callbacks or further storage calls run.
backends::Result<std::vector<backends::Metadata>> collect(backends::Storage& storage) {
    std::vector<backends::Metadata> metas;
    auto scanned = storage.scan([&](const backends::Metadata& meta) {
        metas.push_back(meta);
        return true;
    });
    if (!scanned) {
        return std::unexpected(scanned.error());
    }
    return metas;
}

// A batch of curlcache_copy(): entries, and value bytes held in memory at most. With SQLite
// rows at hashed rowids a batch dirties a page or more per entry in each index and the table:
// past ~64 entries it spills SQLite's page cache and costs more than it saves.
constexpr std::size_t k_copy_batch_entries = 64;
constexpr uint64_t k_copy_batch_bytes = 8 << 20;

bool is_glob(std::string_view text) {
    return text.find_first_of("*?") != std::string_view::npos;
}

// Keys to delete for a URL or URL glob: stored entries whose URL matches, and for a URL
// its GET key (even if the backend's scan has not caught up with it).
backends::Result<std::vector<std::string>> matching_keys(Cache& cache, std::string_view text) {
    bool glob = is_glob(text);
    auto metas = entries_for_url(cache, text, glob);
    if (!metas) {
        return std::unexpected(metas.error());
    }
    std::vector<std::string> keys;
    for (const backends::Metadata& meta : *metas) {
        keys.push_back(meta.key);
    }
    if (!glob) {
        Request request;
        request.url = std::string(text);
        std::string key = cache.key(request).hex();
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            keys.push_back(key);
        }
    }
    return keys;
}

} // namespace

backends::Result<std::vector<backends::Metadata>>
entries_for_url(Cache& cache, std::string_view text, bool glob) {
    std::string exact = redact_url(text, cache.settings());
    std::vector<backends::Metadata> found;
    auto scanned = cache.storage().scan([&](const backends::Metadata& meta) {
        if (meta.url == exact || (glob && policy::glob_match(text, meta.url))) {
            found.push_back(meta);
        }
        return true;
    });
    if (!scanned) {
        return std::unexpected(scanned.error());
    }
    return found;
}

} // namespace curlcache::core::capi

using namespace curlcache;
using core::capi::cache_of;
using core::capi::fail;
using core::capi::guarded;
using core::capi::with_cache;

extern "C" {

CURLCACHE_EXPORT curlcache_code curlcache_scan(curlcache_handle* handle, curlcache_scan_callback cb,
                                               void* userp) {
    if (!handle || !cb) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    return with_cache(handle, [&](core::Cache& cache) {
        auto scanned = cache.storage().scan([&](const backends::Metadata& meta) {
            curlcache_meta out{meta.key.c_str(), meta.method.c_str(), meta.url.c_str(), meta.status,
                               meta.created,     meta.expires,        meta.size};
            return cb(&out, userp) == 0;
        });
        return scanned ? CURLCACHE_OK : fail(handle, scanned.error());
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_delete(curlcache_handle* handle,
                                                 const char* key_url_or_glob, uint64_t* removed) {
    if (removed) {
        *removed = 0;
    }
    if (!handle || !key_url_or_glob || !key_url_or_glob[0]) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL or empty key, URL or glob");
    }
    return with_cache(handle, [&](core::Cache& cache) {
        std::vector<std::string> keys;
        if (auto key = core::Key::from_hex(key_url_or_glob)) {
            keys.push_back(key->hex());
        } else {
            auto matched = core::capi::matching_keys(cache, key_url_or_glob);
            if (!matched) {
                return fail(handle, matched.error());
            }
            keys = std::move(*matched);
        }
        uint64_t count = 0;
        for (const std::string& key : keys) {
            auto gone = cache.storage().remove(key);
            if (!gone) {
                if (removed) {
                    *removed = count;
                }
                return fail(handle, gone.error());
            }
            count += *gone ? 1 : 0;
        }
        if (removed) {
            *removed = count;
        }
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_clear(curlcache_handle* handle) {
    return with_cache(handle, [&](core::Cache& cache) {
        auto cleared = cache.storage().clear();
        return cleared ? CURLCACHE_OK : fail(handle, cleared.error());
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_purge(curlcache_handle* handle, uint64_t* removed) {
    if (removed) {
        *removed = 0;
    }
    return with_cache(handle, [&](core::Cache& cache) {
        auto purged = cache.storage().purge_expired(core::capi::now_seconds());
        if (!purged) {
            return fail(handle, purged.error());
        }
        if (removed) {
            *removed = *purged;
        }
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_vacuum(curlcache_handle* handle) {
    return with_cache(handle, [&](core::Cache& cache) {
        auto done = cache.storage().vacuum();
        return done ? CURLCACHE_OK : fail(handle, done.error());
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_count(curlcache_handle* handle, uint64_t* entries,
                                                uint64_t* bytes) {
    return with_cache(handle, [&](core::Cache& cache) {
        auto usage = cache.storage().usage();
        if (!usage) {
            return fail(handle, usage.error());
        }
        if (entries) {
            *entries = usage->entries;
        }
        if (bytes) {
            *bytes = usage->bytes;
        }
        return CURLCACHE_OK;
    });
}

// Copies stored values as they are (same format, same keys). Each value is verified
// before it is copied, so a corrupt entry is skipped rather than spread. A failure is
// reported on both handles.
CURLCACHE_EXPORT curlcache_code curlcache_copy(curlcache_handle* from, curlcache_handle* to,
                                               curlcache_progress_callback progress, void* userp,
                                               uint64_t* copied) {
    if (copied) {
        *copied = 0;
    }
    if (!from || !to) {
        fail(from, CURLCACHE_E_INVALID_ARGUMENT, "NULL handle");
        return fail(to, CURLCACHE_E_INVALID_ARGUMENT, "NULL handle");
    }
    if (from == to) {
        return fail(from, CURLCACHE_E_INVALID_ARGUMENT, "cannot copy a cache onto itself");
    }
    core::capi::clear_message(to);
    return guarded(from, [&] {
        core::Cache* source = cache_of(from);
        core::Cache* target = cache_of(to);
        if (!source || !target) {
            return CURLCACHE_E_INVALID_ARGUMENT;
        }
        auto both = [&](const backends::Error& error) {
            fail(to, error);
            return fail(from, error);
        };
        auto metas = core::capi::collect(source->storage());
        if (!metas) {
            return both(metas.error());
        }
        // Values go to the target in batches (put_many: one transaction each in SQLite
        // instead of one per entry), reported to `progress` as each batch lands.
        uint64_t done = 0;
        const uint64_t total = metas->size();
        std::vector<backends::Blob> values;
        std::vector<backends::Storage::PutItem> batch;
        uint64_t batch_bytes = 0;
        auto flush = [&]() -> backends::Result<bool> {
            if (batch.empty()) {
                return true;
            }
            auto put = target->storage().put_many(batch);
            if (!put) {
                return std::unexpected(put.error());
            }
            const uint64_t first = done;
            done += batch.size();
            if (copied) {
                *copied = done;
            }
            bool go_on = true;
            for (uint64_t n = first + 1; n <= done && go_on && progress; ++n) {
                go_on = progress(n, total, userp) == 0;
            }
            batch.clear();
            values.clear();
            batch_bytes = 0;
            return go_on;
        };
        for (const backends::Metadata& meta : *metas) {
            auto value = source->storage().get(meta.key);
            if (!value) {
                return both(value.error());
            }
            if (!*value || !core::decode(**value)) {
                continue; // gone since the scan, or corrupt: nothing worth copying
            }
            values.push_back(std::move(**value));
            batch.push_back({&meta, std::string_view(*values.back())});
            batch_bytes += values.back()->size();
            if (batch.size() >= core::capi::k_copy_batch_entries ||
                batch_bytes >= core::capi::k_copy_batch_bytes) {
                auto flushed = flush();
                if (!flushed) {
                    return both(flushed.error());
                }
                if (!*flushed) {
                    return CURLCACHE_OK;
                }
            }
        }
        auto flushed = flush();
        if (!flushed) {
            return both(flushed.error());
        }
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT size_t curlcache_tier_count(curlcache_handle* handle) {
    return handle && handle->cache ? handle->tiers.size() : 0;
}

CURLCACHE_EXPORT curlcache_code curlcache_tier_get(curlcache_handle* handle, size_t index,
                                                   curlcache_tier* tier) {
    if (!handle || !tier) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    return with_cache(handle, [&](core::Cache& cache) {
        if (index >= handle->tiers.size()) {
            return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "no such tier");
        }
        backends::TieredStorage* tiered = backends::as_tiered(cache.storage());
        backends::Storage& storage = tiered ? tiered->tier(index) : cache.storage();
        auto usage = storage.usage();
        if (!usage) {
            return fail(handle, usage.error());
        }
        tier->backend = handle->tiers[index].first.c_str();
        tier->location = handle->tiers[index].second.c_str();
        tier->entries = usage->entries;
        tier->bytes = usage->bytes;
        tier->max_bytes = usage->max_bytes;
        return CURLCACHE_OK;
    });
}

} // extern "C"
