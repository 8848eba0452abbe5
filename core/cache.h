// The engine behind all three faces: lookup, store, delete, iterate and statistics over
// one (possibly tiered) storage, with the policy of the settings.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"
#include "core/entry.h"
#include "core/key.h"
#include "core/request.h"

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace curlcache::core {

struct Stats {
    std::atomic<uint64_t> hits{0}, misses{0}, stores{0}, errors{0}, errors_timeout{0},
        corrupt{0}, passthrough{0}, bytes_served{0}, bytes_downloaded{0};
};

class Cache {
public:
    // Opens the storage the settings name. Fails with a one-line message.
    static std::expected<std::unique_ptr<Cache>, std::string> open(config::Settings settings);
    // Wraps storage that is already open (a tiered wrapper, a test's own backend).
    static std::unique_ptr<Cache> with_storage(config::Settings settings,
                                               std::unique_ptr<backends::Storage> storage);
    ~Cache();

    const config::Settings& settings() const { return m_settings; }
    backends::Storage& storage() { return *m_storage; }

    Key key(const Request& request) const { return make_key(request, m_settings); }

    // Policy: may this request be answered from / stored in the cache at all?
    bool request_cacheable(const Request& request) const;

    // The stored entry for `key`, fresh or stale (the caller checks Entry::fresh and may
    // revalidate); nullopt on a miss. A corrupt entry is removed, counted, and a miss.
    // Does not count hits or misses: the caller does, once it knows what it served.
    backends::Result<std::optional<Entry>> find(const Key& key);

    // Stores the entry if policy allows (method, status, size, urls_expire_after);
    // fills in created/expires. Returns false when policy declined.
    backends::Result<bool> store(const Key& key, Entry& entry);

    backends::Result<bool> remove(const Key& key);

    Stats& stats() { return m_stats; }

    // Statistics persistence (core/stats.h). The file this cache's counters are added to,
    // or "" when they are not persisted (memory backend). flush_stats() adds the counters
    // not yet saved to it and zeroes them in memory; the destructor and process exit do
    // it too. Failures are logged once and the counters kept for the next flush.
    const std::string& stats_path() const { return m_stats_path; }
    void flush_stats();

private:
    explicit Cache(config::Settings settings, std::unique_ptr<backends::Storage> storage);
    config::Settings m_settings;
    std::unique_ptr<backends::Storage> m_storage;
    Stats m_stats;
    std::string m_stats_path;
};

} // namespace curlcache::core
