// The engine over one storage: find (with corruption handling), store (with policy),
// remove, and the statistics of each.
#include "core/cache.h"

#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "core/log.h"
#include "core/policy.h"
#include "core/stats.h"

#include <ctime>

namespace curlcache::core {

namespace {

int64_t now_seconds() {
    return static_cast<int64_t>(std::time(nullptr));
}

} // namespace

std::expected<std::unique_ptr<Cache>, std::string> Cache::open(config::Settings settings) {
    if (settings.backend.empty()) {
        return std::unexpected(std::string("no backend configured"));
    }
    // Several backend names make a tiered cache (backends/tiered_storage.h); one name opens
    // that backend alone. Each tier is opened through the registry.
    auto storage = backends::open_tiered(
        settings, [](std::string_view name, const config::Settings& tier_settings) {
            return backends::open(name, tier_settings);
        });
    if (!storage) {
        return std::unexpected(storage.error().message);
    }
    return with_storage(std::move(settings), std::move(*storage));
}

std::unique_ptr<Cache> Cache::with_storage(config::Settings settings,
                                           std::unique_ptr<backends::Storage> storage) {
    return std::unique_ptr<Cache>(new Cache(std::move(settings), std::move(storage)));
}

Cache::Cache(config::Settings settings, std::unique_ptr<backends::Storage> storage)
    : m_settings(std::move(settings)), m_storage(std::move(storage)) {
    m_stats_path = stats::file_path(m_settings, *m_storage);
    if (!m_stats_path.empty()) {
        stats::track(&m_stats, m_stats_path);
    }
}

Cache::~Cache() {
    if (!m_stats_path.empty()) {
        stats::untrack(&m_stats);
        flush_stats();
    }
}

void Cache::flush_stats() {
    if (m_stats_path.empty()) {
        return;
    }
    stats::Counters delta = stats::take(m_stats);
    if (delta.empty()) {
        return;
    }
    if (auto done = stats::add_to_file(m_stats_path, delta); !done) {
        stats::add(m_stats, delta);
        log::warn_once("stats-flush", "cannot save statistics: %s", done.error().message.c_str());
    }
}

bool Cache::request_cacheable(const Request& request) const {
    return policy::request(m_settings, request.method, request.url) == policy::Verdict::ok;
}

namespace {

void count_error(Stats& stats, const backends::Error& error, const char* what,
                 std::string_view backend) {
    stats.errors.fetch_add(1, std::memory_order_relaxed);
    if (error.kind == backends::ErrorKind::timeout) {
        stats.errors_timeout.fetch_add(1, std::memory_order_relaxed);
    }
    std::string once_key = std::string("backend-") + what;
    log::warn_once(once_key.c_str(), "%.*s backend: %s failed: %s",
                   static_cast<int>(backend.size()), backend.data(), what, error.message.c_str());
}

} // namespace

backends::Result<std::optional<Entry>> Cache::find(const Key& key) {
    std::string hex = key.hex();
    auto got = m_storage->get(hex);
    if (!got) {
        count_error(m_stats, got.error(), "get", m_storage->name());
        return std::unexpected(got.error());
    }
    if (!*got) {
        return std::optional<Entry>();
    }
    std::optional<Entry> entry = decode(std::move(**got));
    if (!entry) {
        m_stats.corrupt.fetch_add(1, std::memory_order_relaxed);
        log::warn_once("corrupt-entry",
                       "removing corrupt cache entry %s (checksum, length or "
                       "format version did not match); further ones are counted silently",
                       hex.c_str());
        // A writer may have replaced the value since it was read: look once more, so that
        // a good entry stored meanwhile is served rather than removed.
        if (auto again = m_storage->get(hex); again && *again) {
            if (std::optional<Entry> replaced = decode(std::move(**again))) {
                return replaced;
            }
        }
        if (auto removed = m_storage->remove(hex); !removed) {
            count_error(m_stats, removed.error(), "remove", m_storage->name());
        }
        return std::optional<Entry>();
    }
    return entry;
}

backends::Result<bool> Cache::store(const Key& key, Entry& entry) {
    entry.url = redact_url(entry.url, m_settings); // no credentials at rest, whatever came in
    policy::Verdict verdict = policy::store(m_settings, entry);
    if (verdict != policy::Verdict::ok) {
        CURLCACHE_LOG(debug, "not storing %s %s: %s", entry.method.c_str(), entry.url.c_str(),
                      policy::describe(verdict));
        return false;
    }
    entry.created = now_seconds();
    entry.expires = policy::expires_at(m_settings, entry.url, entry.created);
    Encoded encoded = encode(entry);
    backends::Metadata meta;
    meta.key = key.hex();
    meta.method = entry.method;
    meta.url = entry.url;
    meta.status = entry.status;
    meta.created = entry.created;
    meta.expires = entry.expires;
    meta.size = encoded.head.size() + encoded.body.size();
    auto pieces = encoded.pieces();
    if (auto put = m_storage->put(meta, pieces); !put) {
        count_error(m_stats, put.error(), "put", m_storage->name());
        return std::unexpected(put.error());
    }
    m_stats.stores.fetch_add(1, std::memory_order_relaxed);
    return true;
}

backends::Result<bool> Cache::remove(const Key& key) {
    auto removed = m_storage->remove(key.hex());
    if (!removed) {
        count_error(m_stats, removed.error(), "remove", m_storage->name());
    }
    return removed;
}

} // namespace curlcache::core
