// SQLite backend.
//
// Connections: a small pool per storage object (up to k_max_connections, opened on demand),
// each used by one thread at a time. Hits from several threads then run in parallel (WAL
// readers do not block each other): measured 1.3-2x the hits per second of one
// mutex-protected connection with 2-4 threads (bench_storage). Writers of one process queue
// on a mutex before BEGIN IMMEDIATE, so only other processes ever wait in SQLite's busy
// handler (which sleeps in steps of milliseconds).
//
// Layout: `entries` holds metadata and value; `totals` holds the entry count and byte total,
// kept by triggers, so that the max_size check is one row read instead of a SUM(). Access
// times for LRU are kept in memory and written by the next put (which holds the write lock
// anyway), so a hit never writes.
//
// Large values: a row keeps the value's first part (the entry head) and names a body file
// holding the rest (sqlite_bodies.h); `size` stays the whole value's size. A streamed body
// (begin_put) is written to its file while it arrives, holding no SQLite lock; only the
// commit takes the write lock, for one short transaction.
#include "backends/sqlite_storage.h"

#include "backends/filesystem_storage.h"
#include "backends/sqlite_bodies.h"
#include "backends/sqlite_connection.h"
#include "base/private_path.h"

#include <algorithm>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace curlcache::backends {

namespace {

using sqlite::BodyFile;
using sqlite::Connection;
using sqlite::Shared;

constexpr size_t k_max_connections = 4;

// Seconds between the sweeps for dead writers' temp files that opening the cache does.
constexpr std::time_t k_sweep_every = 60;

// put() of a large value keeps its first piece (the entry head) in the row when it is at
// most this long; a longer first piece goes to the body file with the rest.
constexpr size_t k_max_inline_head = 64 * 1024;

class SqliteStorage final : public Storage {
  public:
    SqliteStorage(std::string path, const config::Settings& settings, uint64_t file_threshold) {
        m_shared.path = std::move(path);
        m_shared.memory = settings.sqlite_use_memory;
        m_shared.bodies = m_shared.memory ? "" : sqlite::bodies_dir_for(m_shared.path);
        m_shared.file_threshold = file_threshold;
        m_shared.fast_save = settings.sqlite_fast_save;
        m_shared.busy_timeout_ms =
            std::clamp<int64_t>(settings.sqlite_busy_timeout_ms, 0, INT32_MAX);
        m_shared.max_bytes = settings.max_size;
        m_shared.readonly_mode = settings.mode == config::Mode::readonly;
        // A shared-cache in-memory database locks whole tables between connections and
        // ignores the busy timeout: one connection is the only safe choice there.
        m_max_connections = m_shared.memory ? 1 : k_max_connections;
    }

    ~SqliteStorage() override {
        if (m_shared.wrote.load()) {
            for (auto& connection : m_pool) {
                std::lock_guard lock(connection->mutex);
                connection->checkpoint_on_close(true);
            }
        }
        bool pending = false;
        {
            std::lock_guard touch(m_shared.touch_mutex);
            pending = !m_shared.touches.empty();
        }
        if (pending && !m_pool.empty()) {
            // Access times are an LRU hint: a process that only had hits writes them without
            // an fsync and without waiting for another process's write lock, so its exit
            // costs no durable I/O (measured: 3 fdatasync calls per hit process before).
            Connection& connection = *m_pool.front();
            std::lock_guard lock(connection.mutex);
            connection.write_touches_at_exit(m_shared.wrote.load());
        }
    }

    // Opens the first connection now, so that a bad path fails at open; a file that is not
    // a database (or is corrupt) is moved aside once.
    Result<void> initialize() {
        std::unique_lock<std::mutex> lock;
        auto opened = acquire(lock).open_or_recover();
        m_shared.opened = true;
        return opened;
    }

    // The database does not exist and this cache is read-only: there is nothing to open.
    bool absent() const { return m_shared.absent; }

    std::string read_only_reason() const override {
        return m_shared.read_only ? m_shared.read_only_reason : std::string();
    }

    std::string_view name() const override { return "sqlite"; }
    std::string location() const override { return m_shared.path; }

    Result<std::optional<Blob>> get(std::string_view key) override { return lookup(key, nullptr); }

    // A value in a body file above whole_limit is read from the file held open; an inline
    // one (at most the body-file threshold, or any in an in-memory database, which holds it
    // in memory anyway) is read whole.
    Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                  uint64_t whole_limit) override {
        Connection::Streamed streamed;
        streamed.whole_limit = whole_limit;
        auto value = lookup(key, &streamed);
        if (!value) {
            return std::unexpected(value.error());
        }
        if (!*value) {
            return std::optional<StoredValue>{};
        }
        return std::optional<StoredValue>{StoredValue{std::move(**value), std::move(streamed.reader)}};
    }

    Result<std::optional<Blob>> lookup(std::string_view key, Connection::Streamed* streamed) {
        std::unique_lock<std::mutex> lock;
        Connection& connection = acquire(lock);
        // A corrupt database is replaced, and then this reads as a miss.
        auto value = connection.run([&] { return connection.get(key, streamed); });
        if (value && *value && !m_shared.read_only) {
            size_t pending = 0;
            {
                std::lock_guard touch(m_shared.touch_mutex);
                sqlite::Touch now{m_shared.next_stamp_locked(), connection.stored_access()};
                if (auto found = m_shared.touches.find(key); found != m_shared.touches.end()) {
                    found->second = now; // a repeated hit: no key string built
                } else {
                    m_shared.touches.emplace(key, now);
                }
                pending = m_shared.touches.size();
            }
            if (pending >= sqlite::k_touch_batch) {
                // Rare: many distinct hits and no put. Losing them is harmless (LRU is a hint).
                (void)connection.flush_touches_without_waiting();
            }
        }
        return value;
    }

    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        return with_connection([&](Connection& c) { return c.get_metadata(key); });
    }

    Result<void> put(const Metadata& meta, Pieces value) override {
        if (m_shared.read_only) {
            return read_only_error(*this);
        }
        uint64_t total = 0;
        for (auto piece : value) {
            total += piece.size();
        }
        if (too_large(total)) {
            return remove_instead(meta.key);
        }
        if (uses_files(total)) {
            size_t first = value.size() > 1 && value[0].size() <= k_max_inline_head ? 1 : 0;
            auto file = BodyFile::create(m_shared.bodies);
            if (!file) {
                return std::unexpected(file.error());
            }
            for (size_t i = first; i < value.size(); ++i) {
                if (auto wrote = file->write(value[i]); !wrote) {
                    return wrote;
                }
            }
            return commit_file(meta, first ? value[0] : std::string_view(), total, *file);
        }
        return with_connection([&](Connection& c) { return c.put(meta, value, total); });
    }

    // Runs of values stored in the database go in one transaction each; a value for a body
    // file (or too large to keep) goes through put().
    Result<void> put_many(std::span<const PutItem> items) override {
        if (m_shared.read_only) {
            return read_only_error(*this);
        }
        auto alone = [&](const PutItem& item) {
            return too_large(item.value.size()) || uses_files(item.value.size());
        };
        for (size_t start = 0; start < items.size();) {
            if (alone(items[start])) {
                auto done = put(*items[start].meta, Pieces(&items[start].value, 1));
                if (!done) {
                    return done;
                }
                ++start;
                continue;
            }
            size_t end = start + 1;
            while (end < items.size() && !alone(items[end])) {
                ++end;
            }
            auto done = with_connection(
                [&](Connection& c) { return c.put_many(items.subspan(start, end - start)); });
            if (!done) {
                return done;
            }
            start = end;
        }
        return {};
    }

    Result<std::unique_ptr<PutStream>> begin_put(uint64_t size_hint) override;

    // Whether a value (or a stream's tail) of `size` bytes goes to a body file.
    bool uses_files(uint64_t size) const {
        return !m_shared.bodies.empty() && size > m_shared.file_threshold;
    }
    uint64_t file_threshold() const { return m_shared.file_threshold; }
    const std::string& bodies_dir() const { return m_shared.bodies; }

    // Larger than the whole cache: storing it would evict everything, itself last.
    bool too_large(uint64_t total) const {
        return m_shared.max_bytes != 0 && total > m_shared.max_bytes;
    }
    Result<void> remove_instead(std::string_view key) {
        auto removed = remove(key);
        return removed ? Result<void>{} : std::unexpected(removed.error());
    }

    Result<void> commit_file(const Metadata& meta, std::string_view head, uint64_t total,
                             BodyFile& file) {
        return with_connection([&](Connection& c) { return c.put_file(meta, head, total, file); });
    }

    Result<bool> remove(std::string_view key) override {
        if (m_shared.read_only) {
            return read_only_error(*this);
        }
        {
            std::lock_guard touch(m_shared.touch_mutex);
            if (auto found = m_shared.touches.find(key); found != m_shared.touches.end()) {
                m_shared.touches.erase(found);
            }
        }
        return with_connection([&](Connection& c) -> Result<bool> {
            int64_t changes = 0;
            auto done = c.in_transaction([&]() -> Result<void> {
                auto removed = c.execute(sqlite::sql_remove, {key});
                changes = removed ? *removed : 0;
                return removed ? Result<void>{} : std::unexpected(removed.error());
            });
            return done ? Result<bool>{changes > 0} : std::unexpected(done.error());
        });
    }

    // Reads one page of metadata at a time and visits it without holding a connection, so
    // that the visitor may call back into this storage.
    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        std::string after;
        for (;;) {
            std::vector<Metadata> page;
            auto read = with_connection([&](Connection& c) { return c.scan_page(after, page); });
            if (!read) {
                return read;
            }
            for (const auto& meta : page) {
                if (!visit(meta)) {
                    return {};
                }
            }
            if (page.size() < static_cast<size_t>(sqlite::k_scan_page)) {
                return {};
            }
            after = page.back().key;
        }
    }

    // Also sweeps body files that no row names (a writer that died between placing its
    // file and committing) and dead writers' temp files (as purge and vacuum do).
    Result<void> clear() override {
        if (m_shared.read_only) {
            return read_only_error(*this);
        }
        (void)m_shared.take_touches();
        return with_connection([&](Connection& c) -> Result<void> {
            auto done = c.in_transaction([&]() -> Result<void> {
                auto cleared = c.execute(sqlite::sql_clear);
                return cleared ? Result<void>{} : std::unexpected(cleared.error());
            });
            if (!done) {
                return done;
            }
            auto swept = c.sweep_orphans();
            return swept ? Result<void>{} : std::unexpected(swept.error());
        });
    }

    Result<Usage> usage() override {
        return with_connection([&](Connection& c) -> Result<Usage> {
            auto totals = c.totals();
            if (!totals) {
                return std::unexpected(totals.error());
            }
            // Temp files count until they go: a live writer's will be an entry soon.
            uint64_t temps = sweep_leftovers().bytes;
            return Usage{totals->first, totals->second + temps, m_shared.max_bytes};
        });
    }

    Result<uint64_t> purge_expired(int64_t now) override {
        if (m_shared.read_only) {
            return read_only_error(*this);
        }
        return with_connection([&](Connection& c) -> Result<uint64_t> {
            int64_t purged = 0;
            auto done = c.in_transaction([&]() -> Result<void> {
                auto removed = c.execute(sqlite::sql_purge, {now});
                purged = removed ? *removed : 0;
                return removed ? Result<void>{} : std::unexpected(removed.error());
            });
            if (!done) {
                return std::unexpected(done.error());
            }
            // Nothing of a dead writer stays: its temp files, the body file it placed
            // without committing its row (and rows whose files are lost).
            if (auto swept = c.sweep_orphans(); !swept) {
                return std::unexpected(swept.error());
            }
            return static_cast<uint64_t>(purged);
        });
    }

    // At open: what SIGKILLed writers left, at most once a minute per cache (sweep_due).
    void sweep_leftovers_now_and_then() {
        if (!m_shared.bodies.empty() && sqlite::sweep_due(m_shared.bodies, k_sweep_every)) {
            (void)sweep_leftovers();
        }
    }

    // Removes the temp files of dead writers (temp_files.h) and tallies the live ones.
    temp_files::Tally sweep_leftovers() {
        if (m_shared.bodies.empty() || m_shared.read_only) { // read-only: never a write
            return {};
        }
        return sqlite::sweep_temps(m_shared.bodies,
                                   std::time(nullptr) - temp_files::k_stale_unnamed_seconds);
    }

    Result<void> vacuum() override {
        if (m_shared.read_only) {
            return read_only_error(*this);
        }
        return with_connection([&](Connection& c) -> Result<void> {
            auto flushed = c.in_transaction([&] { return c.flush_touches(); });
            if (!flushed) {
                return flushed;
            }
            // Rows an older build stored move to their key's hash: one descent per hit.
            // VACUUM keeps rowids (SQLite 3.40 copies the table with its transfer
            // optimization; the SQLite docs allow a table without an INTEGER PRIMARY KEY to
            // be renumbered, which would only cost speed: rows are then found by key).
            // test_sqlite_rowids checks that every row is under its hash after vacuum.
            if (auto moved = c.rehash(); !moved) {
                return moved;
            }
            if (auto swept = c.sweep_orphans(); !swept) {
                return std::unexpected(swept.error());
            }
            std::lock_guard writer(m_shared.write_mutex);
            auto done = c.exec("VACUUM");
            if (done && !m_shared.memory) {
                done = c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
            }
            return done;
        });
    }

    // What the destructor does at exit (a WAL checkpoint if this process wrote, pending
    // access times written without waiting), with every connection left open. Never waits
    // for a connection another thread is using: exit must not hang on a busy cache.
    void flush() override {
        bool wrote = m_shared.wrote.exchange(false);
        bool pending = false;
        {
            std::lock_guard touch(m_shared.touch_mutex);
            pending = !m_shared.touches.empty();
        }
        if (!wrote && !pending) {
            return;
        }
        std::unique_lock<std::mutex> lock;
        Connection* connection = try_acquire(lock);
        if (!connection) {
            m_shared.wrote.store(wrote);
            return;
        }
        (void)connection->run([&]() -> Result<void> {
            if (pending) {
                // As in the destructor: access times are an LRU hint, written without sync.
                connection->write_touches_at_exit(wrote);
                m_shared.wrote.store(wrote); // touches alone are no reason to checkpoint
            }
            if (wrote) {
                // Leaves an empty WAL, as the last connection's close would have deleted it:
                // the next process then reads the database file alone.
                connection->checkpoint_without_waiting();
            }
            return {};
        });
    }

  private:
    // A pooled connection no other thread is using, or nullptr (never opens or waits).
    Connection* try_acquire(std::unique_lock<std::mutex>& lock) {
        std::lock_guard pool(m_pool_mutex);
        for (auto& connection : m_pool) {
            std::unique_lock attempt(connection->mutex, std::try_to_lock);
            if (attempt.owns_lock()) {
                lock = std::move(attempt);
                return connection.get();
            }
        }
        return nullptr;
    }

    template <class Op> auto with_connection(Op&& op) -> decltype(op(std::declval<Connection&>())) {
        std::unique_lock<std::mutex> lock;
        Connection& connection = acquire(lock);
        return connection.run([&] { return op(connection); });
    }

    // A connection no other thread is using, opening a new one while the pool has room;
    // when all are busy, waits for one of them. `lock` holds it on return.
    Connection& acquire(std::unique_lock<std::mutex>& lock) {
        // The first connection when it is free, without the pool's mutex (a hit of a
        // program with one thread never needs more): it never moves nor goes.
        if (Connection* first = m_first.load(std::memory_order_acquire)) {
            std::unique_lock attempt(first->mutex, std::try_to_lock);
            if (attempt.owns_lock()) {
                lock = std::move(attempt);
                return *first;
            }
        }
        Connection* chosen = nullptr;
        {
            std::lock_guard pool(m_pool_mutex);
            for (auto& connection : m_pool) {
                std::unique_lock attempt(connection->mutex, std::try_to_lock);
                if (attempt.owns_lock()) {
                    lock = std::move(attempt);
                    return *connection;
                }
            }
            if (m_pool.size() < m_max_connections) {
                m_pool.push_back(std::make_unique<Connection>(m_shared));
                lock = std::unique_lock(m_pool.back()->mutex);
                if (m_pool.size() == 1) {
                    m_first.store(m_pool.back().get(), std::memory_order_release);
                }
                return *m_pool.back();
            }
            chosen = m_pool[m_next++ % m_pool.size()].get();
        }
        lock = std::unique_lock(chosen->mutex);
        return *chosen;
    }

    Shared m_shared;
    size_t m_max_connections = 1;
    std::mutex m_pool_mutex;
    std::vector<std::unique_ptr<Connection>> m_pool; // grows only; connections never move
    std::atomic<Connection*> m_first{nullptr};       // m_pool.front() once there is one
    size_t m_next = 0;
};

// A streamed value: the tail is buffered in memory while it is small and goes to a temp
// body file once it passes the file threshold (at once when the size hint says it will).
// Holds no connection and no lock while bytes arrive.
class SqlitePutStream final : public PutStream {
  public:
    explicit SqlitePutStream(SqliteStorage& storage) : m_storage(storage) {}

    Result<void> start(uint64_t size_hint) {
        if (m_storage.uses_files(size_hint)) {
            return to_file();
        }
        try {
            // Up to the threshold (then a file takes over), or the whole hint in memory
            // (never more than k_max_reserve: a hint is a promise from the network).
            uint64_t cap =
                m_storage.bodies_dir().empty() ? k_max_reserve : m_storage.file_threshold();
            m_tail.reserve(std::min(size_hint, cap));
        } catch (const std::bad_alloc&) {
            return fail("out of memory while keeping a response body");
        }
        return {};
    }

    Result<void> append(std::string_view bytes) override {
        if (m_file) {
            return m_file->write(bytes);
        }
        try {
            m_tail.append(bytes);
        } catch (const std::bad_alloc&) {
            return fail("out of memory while keeping a response body");
        }
        if (m_storage.uses_files(m_tail.size())) {
            return to_file();
        }
        return {};
    }

    Result<void> commit(const Metadata& meta, std::string_view head) override {
        uint64_t total = head.size() + (m_file ? m_file->size() : m_tail.size());
        if (m_storage.too_large(total)) {
            m_file.reset();
            return m_storage.remove_instead(meta.key);
        }
        if (m_file) {
            auto done = m_storage.commit_file(meta, head, total, *m_file);
            m_file.reset(); // unlinks the file unless the committed row now owns it
            return done;
        }
        const std::string_view pieces[] = {head, m_tail};
        return m_storage.put(meta, pieces);
    }

  private:
    Result<void> to_file() {
        auto file = BodyFile::create(m_storage.bodies_dir());
        if (!file) {
            return std::unexpected(file.error());
        }
        m_file.emplace(std::move(*file));
        auto wrote = m_file->write(m_tail);
        std::string().swap(m_tail);
        return wrote;
    }

    static constexpr uint64_t k_max_reserve = uint64_t{1} << 30;
    SqliteStorage& m_storage;
    std::string m_tail;
    std::optional<BodyFile> m_file;
};

Result<std::unique_ptr<PutStream>> SqliteStorage::begin_put(uint64_t size_hint) {
    if (m_shared.read_only) {
        return read_only_error(*this);
    }
    std::unique_ptr<SqlitePutStream> stream;
    try {
        stream = std::make_unique<SqlitePutStream>(*this);
    } catch (const std::bad_alloc&) {
        return fail("out of memory while starting a response body");
    }
    auto started = stream->start(size_hint);
    if (!started) {
        return std::unexpected(started.error());
    }
    return std::unique_ptr<PutStream>(std::move(stream));
}

} // namespace

std::string sqlite_bodies_path(const std::string& database_path) {
    return sqlite::bodies_dir_for(database_path);
}

std::string sqlite_database_path(const config::Settings& settings) {
    std::string name = settings.name.empty() ? "http_cache" : settings.name;
    if (settings.sqlite_use_memory) {
        return "file:" + sqlite::uri_escape(name) + "?mode=memory&cache=shared";
    }
    std::filesystem::path path(name);
    if (!path.has_extension()) {
        path += ".sqlite";
    }
    if (path.is_relative()) {
        if (settings.sqlite_use_temp) {
            // Never a shared name in /tmp: another user could create it first and fill it.
            path = std::filesystem::path(base::private_temp_dir()) / path;
        } else if (settings.sqlite_use_cache_dir || settings.name.empty()) {
            path = std::filesystem::path(user_cache_dir()) / path;
        }
    }
    return path.string();
}

Result<std::unique_ptr<Storage>> open_sqlite(const config::Settings& settings) {
    return open_sqlite(settings, k_sqlite_body_file_threshold);
}

Result<std::unique_ptr<Storage>> open_sqlite(const config::Settings& settings,
                                             uint64_t body_file_threshold) {
    auto storage = std::make_unique<SqliteStorage>(sqlite_database_path(settings), settings,
                                                   body_file_threshold);
    auto opened = storage->initialize();
    if (!opened && storage->absent()) {
        // Read-only and nothing stored yet: an empty cache, not an error.
        return empty_read_only("sqlite", storage->location(), settings.max_size,
                               storage->read_only_reason());
    }
    if (!opened) {
        return std::unexpected(opened.error());
    }
    if (storage->read_only_reason().empty()) { // read-only (or mode readonly): never a write
        storage->sweep_leftovers_now_and_then();
    }
    return storage;
}

} // namespace curlcache::backends
