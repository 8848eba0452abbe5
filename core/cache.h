// The engine behind all three faces: lookup, store, delete, iterate and statistics over
// one (possibly tiered) storage, with the policy of the settings.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"
#include "core/entry.h"
#include "core/key.h"
#include "core/policy.h"
#include "core/request.h"

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace curlcache::core {

struct Stats {
    std::atomic<uint64_t> hits{0}, misses{0}, stores{0}, errors{0}, errors_timeout{0}, corrupt{0},
        passthrough{0}, bytes_served{0}, bytes_downloaded{0},
        time_saved_ms{0}; // the recorded transfer times of the responses served as hits
};

class Cache;

// A miss's body on its way into the storage while the transfer runs: hashed and handed to
// the backend piece by piece, so that storing it at the end needs no second pass over it
// and no second copy in memory (see Cache::begin_body and Cache::store).
class BodySink {
  public:
    ~BodySink();
    BodySink(const BodySink&) = delete;
    BodySink& operator=(const BodySink&) = delete;

    // Adds the next bytes of the body. false once the backend has failed (counted and
    // warned about once): the sink then drops everything and store() declines it.
    bool append(std::string_view bytes);
    uint64_t size() const { return m_size; }
    bool failed() const { return m_failed; }

  private:
    friend class Cache;
    BodySink(Cache& cache, std::unique_ptr<backends::PutStream> stream);
    Cache& m_cache;
    std::unique_ptr<backends::PutStream> m_stream;
    BodyDigest m_digest;
    uint64_t m_size = 0;
    bool m_failed = false;
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
    // The same key, with the URL's parts already worked out (url_parts(request.url)).
    Key key(const Request& request, const UrlParts& url) const {
        return make_key(request, m_settings, url);
    }

    // Policy: may this request be answered from / stored in the cache at all?
    bool request_cacheable(const Request& request) const;

    // The stored entry for `key`, fresh or stale (the caller checks Entry::fresh and may
    // revalidate); nullopt on a miss. A corrupt entry is removed, counted, and a miss.
    // Does not count hits or misses: the caller does, once it knows what it served.
    // Responses stored per variant (Vary) are found with the request's header lines, as
    // the origin received them (`request_lines`; nullptr = none): one more lookup, only
    // for them. Without the lines a variant index is a miss.
    // With `streamed`, a value over stream_threshold() is not read whole: the entry's
    // head is read and checked, and so is its first body chunk (a corrupt one is a miss
    // like any corrupt entry); the rest stays in storage (Entry::stored_body), to be read
    // and checked chunk by chunk while it is delivered.
    backends::Result<std::optional<Entry>> find(const Key& key,
                                                const std::vector<std::string>* request_lines,
                                                bool streamed = false);
    backends::Result<std::optional<Entry>> find(const Key& key) { return find(key, nullptr); }

    // Values up to this many bytes are read whole by find(): one read, as fast as before
    // streaming existed; larger ones are streamed. Tests lower it.
    uint64_t stream_threshold() const { return m_stream_threshold; }
    void set_stream_threshold(uint64_t bytes) { m_stream_threshold = bytes; }

    // A streamed body failed its checksum while it was delivered: counted as corrupt,
    // warned about once, and the entry (storage key `hex`) removed.
    void drop_corrupt(const std::string& hex);

    // What a store needs to know of the request: its Cache-Control and credentials (for
    // the HTTP rules) and its header lines (for Vary).
    struct StoreContext {
        policy::StoreRequest request;
        const std::vector<std::string>* request_lines = nullptr;
    };

    // Stores the entry if policy allows (method, status, size, urls_expire_after, the HTTP
    // rules); fills in created, freshness and expires (entry.freshness.request_time and
    // response_time may be set by the caller). A response with Vary is stored under its
    // variant's key and a variant index under `key`. Returns false when policy declined.
    backends::Result<bool> store(const Key& key, Entry& entry, const StoreContext& context);
    backends::Result<bool> store(const Key& key, Entry& entry) { return store(key, entry, {}); }

    // A sink for a body that streams in (size_hint: Content-Length, 0 when unknown), then
    // store() with it: the same policy and result, with the body taken from the sink
    // (entry.body is ignored). A sink that is dropped, failed or declined stores nothing.
    // nullptr when the backend cannot start one (counted and warned about once).
    std::unique_ptr<BodySink> begin_body(uint64_t size_hint);
    backends::Result<bool> store(const Key& key, Entry& entry, BodySink& body,
                                 const StoreContext& context);
    backends::Result<bool> store(const Key& key, Entry& entry, BodySink& body) {
        return store(key, entry, body, {});
    }

    backends::Result<bool> remove(const Key& key);

    Stats& stats() { return m_stats; }

    // A cache the user may only read (README.md, "Read-only caches") serves hits and
    // stores nothing; in normal or refresh mode, which expect to store, this says so once
    // per process. The engine calls it when it opens the process's cache; the command does
    // not (its writes fail saying "read-only").
    void warn_if_read_only() const;

    // Statistics persistence (core/stats.h). The file this cache's counters are added to,
    // or "" when they are not persisted (memory backend). flush_stats() adds the counters
    // not yet saved to it and zeroes them in memory; the destructor and process exit do
    // it too. Failures are logged once and the counters kept for the next flush.
    // Under `curlcache run --stats` the counters also go to that run's own files
    // (stats::run_files()), read-only cache or not.
    const std::string& stats_path() const { return m_stats_path; }
    void flush_stats();

  private:
    friend class BodySink;
    explicit Cache(config::Settings settings, std::unique_ptr<backends::Storage> storage);
    bool admit(Entry& entry, uint64_t body_size, const StoreContext& context);
    backends::Result<std::optional<Entry>> find_one(const Key& key, bool streamed);
    // One read of `hex` into `entry` (left empty unless found good): false on a miss or when
    // corrupt, and `corrupt` says which.
    backends::Result<bool> read_entry(std::string_view hex, bool streamed,
                                      std::optional<Entry>& entry, bool& corrupt);
    void serve_read_only();
    const std::string& saved_stats_path() const;
    void count_corrupt(const std::string& hex);
    void remove_corrupt(const std::string& hex);
    // For a Vary response: the key its variant goes under, after the index is written.
    backends::Result<Key> vary_target(const Key& key, Entry& entry, const StoreContext& context);
    config::Settings m_settings;
    std::unique_ptr<backends::Storage> m_storage;
    Stats m_stats;
    std::string m_stats_path;
    std::vector<std::string> m_run_stats_paths;
    uint64_t m_stream_threshold = uint64_t{4} << 20;
    bool m_read_only = false;              // storage().read_only_reason() is not empty
    bool m_unexpectedly_read_only = false; // read-only in a mode that would store
};

} // namespace curlcache::core
