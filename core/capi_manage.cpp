// Public C API: listing, deleting, purging and copying entries; storage tiers.
#include "core/capi_internal.h"

#include "backends/tiered_storage.h"
#include "core/policy.h"

#include "base/meta_record.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

namespace curlcache::core::capi {

namespace {

// The metadata of every entry in scan order, gathered before any value is read so that no
// backend cursor stays open while further storage calls and the caller's callbacks run. Up
// to k_in_memory entries are held in memory; past that they all go to an anonymous temporary
// file and are read back in order, so that copying a million entries holds a few thousand
// records, not every one (282 MiB at a million entries when they were all in memory).
class MetaSpool {
  public:
    static constexpr std::size_t k_in_memory = 4096;

    void add(const backends::Metadata& meta) {
        ++m_count;
        if (m_file) {
            write(meta);
            return;
        }
        m_memory.push_back(meta);
        if (m_memory.size() >= k_in_memory && !m_memory_only) {
            spill();
        }
    }

    uint64_t size() const { return m_count; }

    // Calls visit for each entry in the order added until it returns false; fails when the
    // temporary file could not be written or read back whole (a full temporary folder).
    backends::Result<void> each(const std::function<bool(const backends::Metadata&)>& visit) {
        if (!m_file) {
            for (const backends::Metadata& meta : m_memory) {
                if (!visit(meta)) {
                    break;
                }
            }
            return {};
        }
        if (m_write_error == 0 && std::fflush(m_file.get()) != 0) {
            m_write_error = errno;
        }
        if (m_write_error != 0) {
            return backends::fail_errno("cannot write the list of entries to a temporary file",
                                        m_write_error);
        }
        std::rewind(m_file.get());
        backends::Metadata meta;
        for (uint64_t n = 0; n < m_count; ++n) {
            if (!base::read_meta_record(m_file.get(), meta)) {
                return backends::fail("cannot read back the temporary list of entries");
            }
            if (!visit(meta)) {
                break;
            }
        }
        return {};
    }

  private:
    struct FileClose {
        void operator()(std::FILE* file) const noexcept { std::fclose(file); }
    };

    void write(const backends::Metadata& meta) {
        if (m_write_error == 0 && !base::write_meta_record(m_file.get(), meta)) {
            m_write_error = errno != 0 ? errno : EIO;
        }
    }

    void spill() {
        m_file.reset(std::tmpfile());
        if (!m_file) {
            m_memory_only = true; // no temporary file: everything stays in memory
            return;
        }
        for (const backends::Metadata& meta : m_memory) {
            write(meta);
        }
        m_memory.clear();
        m_memory.shrink_to_fit();
    }

    std::vector<backends::Metadata> m_memory;
    std::unique_ptr<std::FILE, FileClose> m_file;
    uint64_t m_count = 0;
    int m_write_error = 0; // the errno of the first failed write
    bool m_memory_only = false;
};

backends::Result<void> collect(backends::Storage& storage, MetaSpool& spool) {
    return storage.scan([&](const backends::Metadata& meta) {
        spool.add(meta);
        return true;
    });
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
        core::capi::MetaSpool metas;
        if (auto scanned = core::capi::collect(source->storage(), metas); !scanned) {
            return both(scanned.error());
        }
        // Values go to the target in batches (put_many: one transaction each in SQLite
        // instead of one per entry), reported to `progress` as each batch lands.
        uint64_t done = 0;
        const uint64_t total = metas.size();
        // A batch: its entries' metadata (copied: the spool reuses its record) and values.
        std::vector<backends::Metadata> batch_metas;
        std::vector<backends::Blob> values;
        std::vector<backends::Storage::PutItem> batch;
        uint64_t batch_bytes = 0;
        auto flush = [&]() -> backends::Result<bool> {
            if (batch_metas.empty()) {
                return true;
            }
            for (std::size_t i = 0; i < batch_metas.size(); ++i) {
                batch.push_back({&batch_metas[i], std::string_view(*values[i])});
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
            batch_metas.clear();
            values.clear();
            batch_bytes = 0;
            return go_on;
        };
        std::optional<backends::Error> error;
        bool stopped = false;
        auto each = metas.each([&](const backends::Metadata& meta) {
            auto value = source->storage().get(meta.key);
            if (!value) {
                error = value.error();
                return false;
            }
            if (!*value || !core::decode(**value)) {
                return true; // gone since the scan, or corrupt: nothing worth copying
            }
            values.push_back(std::move(**value));
            batch_metas.push_back(meta);
            batch_bytes += values.back()->size();
            if (batch_metas.size() >= core::capi::k_copy_batch_entries ||
                batch_bytes >= core::capi::k_copy_batch_bytes) {
                auto flushed = flush();
                if (!flushed) {
                    error = flushed.error();
                    return false;
                }
                stopped = !*flushed;
                return !stopped;
            }
            return true;
        });
        if (!each) {
            return both(each.error());
        }
        if (error) {
            return both(*error);
        }
        if (stopped) {
            return CURLCACHE_OK;
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
