// The engine over one storage: find (with corruption handling), store (with policy),
// remove, and the statistics of each.
#include "core/cache.h"

#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "core/http/vary.h"
#include "core/log.h"
#include "core/policy.h"
#include "core/stats.h"

#include <ctime>
#include <new>

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
    m_run_stats_paths = stats::run_files();
    m_read_only = !m_storage->read_only_reason().empty();
    if (m_read_only) {
        serve_read_only();
    }
    if (!saved_stats_path().empty() || !m_run_stats_paths.empty()) {
        stats::track(&m_stats, saved_stats_path(), m_run_stats_paths);
    }
}

// A cache the user may read but not write (README.md, "Read-only caches"): hits are
// served, nothing is stored, and no statistics are saved (they would be a write per
// process).
void Cache::serve_read_only() {
    using config::Mode;
    const Mode mode = m_settings.mode;
    if (mode == Mode::readonly || mode == Mode::offline || mode == Mode::off) {
        return; // these never store anyway
    }
    m_unexpectedly_read_only = true;
    // Refresh would fetch everything to store it again: with nothing stored, a pass-through.
    m_settings.mode = mode == Mode::refresh ? Mode::off : Mode::readonly;
}

void Cache::warn_if_read_only() const {
    if (!m_unexpectedly_read_only) {
        return;
    }
    std::string where = std::string(m_storage->name()) + " cache " + m_storage->location();
    log::warn_once("read-only-cache",
                   "%s is read-only for you (%s): hits are served, nothing will be stored. "
                   "Set mode = \"readonly\" (CURLCACHE_MODE=readonly) if that is meant, or "
                   "make it writable (README.md, Read-only caches).",
                   where.c_str(), m_storage->read_only_reason().c_str());
}

Cache::~Cache() {
    if (!saved_stats_path().empty() || !m_run_stats_paths.empty()) {
        stats::untrack(&m_stats);
        flush_stats();
    }
}

// A read-only cache's counters are not saved beside it (that would be a write per process).
const std::string& Cache::saved_stats_path() const {
    static const std::string none;
    return m_read_only ? none : m_stats_path;
}

void Cache::flush_stats() {
    stats::flush(m_stats, saved_stats_path(), m_run_stats_paths);
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
    std::string once_key = log::cause(backend, what, error.code);
    log::warn_once(once_key.c_str(), "%.*s backend: %s failed: %s",
                   static_cast<int>(backend.size()), backend.data(), what, error.message.c_str());
}

} // namespace

backends::Result<std::optional<Entry>> Cache::find(const Key& key,
                                                   const std::vector<std::string>* request_lines,
                                                   bool streamed) {
    // Every path returns `found`, so that the entry is built where the caller receives it.
    auto found = find_one(key, streamed);
    if (!found || !*found || (*found)->vary.empty()) {
        return found;
    }
    // Stored per variant: the index at the key names the headers (variants themselves live
    // under variant_key); the request's values pick the variant's own key.
    const std::vector<std::string>& vary = (*found)->vary;
    if (request_lines == nullptr || vary.front() == "*") {
        found->reset();
        return found;
    }
    const std::string variant = http::variant_of(vary, *request_lines);
    found = find_one(variant_key(key, variant), streamed); // the index (and `vary`) go
    if (found && *found && (*found)->variant != variant) {
        found->reset(); // a collision or a stale index: never another variant
    }
    return found;
}

backends::Result<bool> Cache::read_entry(std::string_view hex, bool streamed,
                                         std::optional<Entry>& entry, bool& corrupt) {
    entry.reset();
    corrupt = false;
    backends::Blob whole;
    std::unique_ptr<backends::ValueReader> reader;
    if (!streamed) {
        auto got = m_storage->get(hex);
        if (!got) {
            return std::unexpected(got.error());
        }
        if (!*got) {
            return false;
        }
        whole = std::move(**got);
    } else {
        auto opened = m_storage->open_value(hex, m_stream_threshold);
        if (!opened) {
            return std::unexpected(opened.error());
        }
        if (!*opened) {
            return false;
        }
        whole = std::move((*opened)->whole);
        reader = std::move((*opened)->reader);
    }
    if (!reader) {
        if (!decode(std::move(whole), entry.emplace())) {
            entry.reset();
            corrupt = true;
            return false;
        }
        return true;
    }
    auto streamed_entry = decode_streamed(std::move(reader));
    if (!streamed_entry) {
        return std::unexpected(streamed_entry.error());
    }
    if (!*streamed_entry) {
        corrupt = true;
        return false;
    }
    if (StoredBody* body = (*streamed_entry)->stored_body.get()) {
        body->key = std::string(hex);
        if (body->size > 0) {
            auto good = body->read_chunk(0, body->first_chunk);
            if (!good) {
                return std::unexpected(good.error());
            }
            if (!*good) {
                corrupt = true;
                return false;
            }
        }
    }
    entry = std::move(*streamed_entry);
    return true;
}

backends::Result<std::optional<Entry>> Cache::find_one(const Key& key, bool streamed) {
    // Every path returns `out`, so that the entry is decoded where the caller receives it.
    backends::Result<std::optional<Entry>> out{std::in_place};
    const std::array<char, 32> digits = key.hex_digits(); // no allocation per lookup
    const std::string_view hex(digits.data(), digits.size());
    bool corrupt = false;
    auto got = read_entry(hex, streamed, *out, corrupt);
    if (!got) {
        count_error(m_stats, got.error(), "get", m_storage->name());
        out = std::unexpected(got.error());
        return out;
    }
    if (corrupt) {
        count_corrupt(std::string(hex));
        // A writer may have replaced the value since it was read: look once more, so that
        // a good entry stored meanwhile is served rather than removed.
        if (auto again = read_entry(hex, streamed, *out, corrupt); again && *again) {
            return out;
        }
        out->reset();
        remove_corrupt(std::string(hex));
    }
    return out;
}

void Cache::drop_corrupt(const std::string& hex) {
    count_corrupt(hex);
    remove_corrupt(hex);
}

void Cache::count_corrupt(const std::string& hex) {
    m_stats.corrupt.fetch_add(1, std::memory_order_relaxed);
    log::warn_once("corrupt-entry",
                   "removing corrupt cache entry %s (checksum, length or "
                   "format version did not match); further ones are counted silently",
                   hex.c_str());
}

void Cache::remove_corrupt(const std::string& hex) {
    if (m_read_only) {
        return; // not ours to remove
    }
    if (auto removed = m_storage->remove(hex); !removed) {
        count_error(m_stats, removed.error(), "remove", m_storage->name());
    }
}

namespace {

backends::Metadata metadata_of(const Key& key, const Entry& entry, uint64_t size) {
    backends::Metadata meta;
    meta.key = key.hex();
    meta.method = entry.method;
    meta.url = entry.url;
    meta.status = entry.status;
    meta.created = entry.created;
    meta.expires = entry.expires;
    meta.size = size;
    return meta;
}

} // namespace

// Policy, then created/freshness/expires; true when the entry may be stored.
bool Cache::admit(Entry& entry, uint64_t body_size, const StoreContext& context) {
    entry.url = redact_url(entry.url, m_settings); // no credentials at rest, whatever came in
    http::Storable why = http::Storable::ok;
    policy::Verdict verdict = policy::store(m_settings, entry, body_size, context.request, &why);
    if (verdict != policy::Verdict::ok) {
        CURLCACHE_LOG(debug, "not storing %s %s: %s", entry.method.c_str(), entry.url.str().c_str(),
                      verdict == policy::Verdict::http ? http::describe(why)
                                                       : policy::describe(verdict));
        return false;
    }
    entry.created = now_seconds();
    policy::stamp_freshness(m_settings, entry);
    entry.vary.clear();
    entry.variant.clear();
    if (!entry.header_blocks.empty()) {
        entry.vary = http::vary_names(entry.header_blocks.back());
        std::erase_if(entry.vary, [&](const std::string& name) {
            return name != "*" && key_covers_header(name, m_settings);
        });
        if (!entry.vary.empty() && (entry.vary.front() == "*" || !context.request_lines)) {
            CURLCACHE_LOG(debug, "not storing %s %s: Vary: * (or no request headers known)",
                          entry.method.c_str(), entry.url.str().c_str());
            return false;
        }
    }
    return true;
}

backends::Result<Key> Cache::vary_target(const Key& key, Entry& entry,
                                         const StoreContext& context) {
    if (entry.vary.empty()) {
        return key;
    }
    entry.variant = http::variant_of(entry.vary, *context.request_lines);
    Entry index;
    index.method = entry.method;
    index.url = entry.url;
    index.created = entry.created;
    index.vary = entry.vary;
    Encoded encoded = encode(index);
    auto pieces = encoded.pieces();
    auto meta = metadata_of(key, index, encoded.head.size());
    if (auto put = m_storage->put(meta, pieces); !put) {
        count_error(m_stats, put.error(), "put", m_storage->name());
        return std::unexpected(put.error());
    }
    return variant_key(key, entry.variant);
}

backends::Result<bool> Cache::store(const Key& key, Entry& entry, const StoreContext& context) {
    if (entry.stored_body) {
        return false; // its body is in storage, not in memory: nothing to write it from
    }
    if (!admit(entry, entry.body.size(), context)) {
        return false;
    }
    auto target = vary_target(key, entry, context);
    if (!target) {
        return std::unexpected(target.error());
    }
    Encoded encoded = encode(entry);
    auto pieces = encoded.pieces();
    auto meta = metadata_of(*target, entry, encoded.head.size() + encoded.body.size());
    if (auto put = m_storage->put(meta, pieces); !put) {
        count_error(m_stats, put.error(), "put", m_storage->name());
        return std::unexpected(put.error());
    }
    m_stats.stores.fetch_add(1, std::memory_order_relaxed);
    return true;
}

BodySink::BodySink(Cache& cache, std::unique_ptr<backends::PutStream> stream)
    : m_cache(cache), m_stream(std::move(stream)) {}

BodySink::~BodySink() = default;

bool BodySink::append(std::string_view bytes) {
    if (m_failed) {
        return false;
    }
    m_digest.update(bytes);
    m_size += bytes.size();
    if (auto added = m_stream->append(bytes); !added) {
        m_failed = true;
        m_stream.reset(); // discards what was written
        count_error(m_cache.m_stats, added.error(), "put", m_cache.m_storage->name());
        return false;
    }
    return true;
}

std::unique_ptr<BodySink> Cache::begin_body(uint64_t size_hint) {
    auto stream = m_storage->begin_put(size_hint);
    if (!stream) {
        count_error(m_stats, stream.error(), "put", m_storage->name());
        return nullptr;
    }
    try {
        return std::unique_ptr<BodySink>(new BodySink(*this, std::move(*stream)));
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

backends::Result<bool> Cache::store(const Key& key, Entry& entry, BodySink& body,
                                    const StoreContext& context) {
    if (body.m_failed || !body.m_stream) {
        return false;
    }
    if (!admit(entry, body.m_size, context)) {
        return false;
    }
    auto target = vary_target(key, entry, context);
    if (!target) {
        return std::unexpected(target.error());
    }
    std::string head = encode_head(entry, body.m_size, body.m_digest.chunks());
    auto meta = metadata_of(*target, entry, head.size() + body.m_size);
    auto committed = body.m_stream->commit(meta, head);
    body.m_stream.reset();
    if (!committed) {
        count_error(m_stats, committed.error(), "put", m_storage->name());
        return std::unexpected(committed.error());
    }
    m_stats.stores.fetch_add(1, std::memory_order_relaxed);
    return true;
}

backends::Result<bool> Cache::remove(const Key& key) {
    if (m_read_only) {
        return false; // nothing in a read-only cache can be invalidated (warned about once)
    }
    auto removed = m_storage->remove(key.hex());
    if (!removed) {
        count_error(m_stats, removed.error(), "remove", m_storage->name());
    }
    return removed;
}

} // namespace curlcache::core
