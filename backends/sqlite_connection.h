// The sqlite backend's connection: one SQLite connection with its cached statements, and
// the state that the connections of one storage share. Internal to the sqlite backend
// (sqlite_storage.cpp pools these); core never sees it.
#pragma once

#include "backends/sqlite_bodies.h"
#include "backends/storage.h"

#include <sqlite3.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace curlcache::backends::sqlite {

struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
struct BlobClose {
    void operator()(sqlite3_blob* blob) const noexcept { sqlite3_blob_close(blob); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;
using BlobPtr = std::unique_ptr<sqlite3_blob, BlobClose>;

// Values above Shared::file_threshold live in body files (sqlite_bodies.h), except in an
// in-memory database. There, values up to k_inline_limit are bound in one piece; larger
// ones are streamed in through incremental blob I/O so that no second whole copy is built. Reads above
// k_read_inline_limit go straight into the returned string the same way (a column read
// would first assemble the value in SQLite's own buffer).
constexpr uint64_t k_inline_limit = 256 * 1024;
constexpr uint64_t k_read_inline_limit = 16 * 1024;
constexpr size_t k_blob_chunk = 64u << 20; // sqlite3_blob_{read,write} take an int length
constexpr size_t k_touch_batch = 1024;     // pending access times before a hit writes them
// How far a process that only read moves an entry's stored access time: its hits on entries
// used less than this long ago are not written (see write_touches_at_exit).
constexpr int64_t k_touch_resolution_us = int64_t{10} * 60 * 1000 * 1000;
constexpr int k_scan_page = 256;

enum Sql : size_t {
    sql_get,
    sql_get_by_key,
    sql_metadata,
    sql_touch,
    sql_upsert,
    sql_remove,
    sql_scan_page,
    sql_totals,
    sql_lru_page,
    sql_remove_rowid,
    sql_purge,
    sql_clear,
    sql_remove_if_body,
    sql_body_names,
    sql_begin,
    sql_commit,
    sql_rollback,
    sql_drop_collision,
    sql_rehash,
    sql_count,
};

// The rowid a row of `key` is stored under: 63 bits of the key's XXH3-64. A hit is then one
// descent of the table's B-tree by rowid instead of two (the `key` index, then the row):
// at a million entries the interior pages of both no longer fit the page cache, and a hit
// did 2-4 reads of 4 KiB pages. The `key` column keeps its unique index and every lookup
// also compares the whole key, so two keys with the same hash never read each other's row:
// storing the second replaces the first (sql_drop_collision), as an eviction would. Rows
// stored before (other rowids: older builds, and this one before the change) are found
// through the `key` index (sql_get_by_key) until vacuum moves them (sql_rehash).
int64_t key_rowid(std::string_view key);

// `text` with the characters a "file:" URI gives a meaning percent-encoded.
std::string uri_escape(std::string_view text);

inline bool is_corrupt(int rc) {
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

// A cached statement in use: reset and unbound when it goes out of scope. A statement
// whose every parameter is bound on each use (sql_get) may skip the unbinding.
class Statement {
  public:
    explicit Statement(sqlite3_stmt* stmt, bool unbind = true) : m_stmt(stmt), m_unbind(unbind) {}
    Statement(Statement&& other) noexcept
        : m_stmt(std::exchange(other.m_stmt, nullptr)), m_unbind(other.m_unbind) {}
    Statement& operator=(Statement&&) = delete;
    ~Statement() {
        if (m_stmt) {
            sqlite3_reset(m_stmt);
            if (m_unbind) {
                sqlite3_clear_bindings(m_stmt);
            }
        }
    }

    using Arg = std::variant<int64_t, std::string_view>;
    void bind(std::initializer_list<Arg> args) {
        int index = 1;
        for (const auto& arg : args) {
            if (const auto* text = std::get_if<std::string_view>(&arg)) {
                sqlite3_bind_text64(m_stmt, index++, text->data() ? text->data() : "", text->size(),
                                    SQLITE_STATIC, SQLITE_UTF8);
            } else {
                sqlite3_bind_int64(m_stmt, index++, std::get<int64_t>(arg));
            }
        }
    }
    int step() { return sqlite3_step(m_stmt); }
    int64_t integer(int column) const { return sqlite3_column_int64(m_stmt, column); }
    std::string text(int column) const {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, column));
        return text ? std::string(text, static_cast<size_t>(sqlite3_column_bytes(m_stmt, column)))
                    : std::string();
    }
    sqlite3_stmt* get() const { return m_stmt; }

  private:
    sqlite3_stmt* m_stmt;
    bool m_unbind;
};

// An access time of this process not yet written, and the one the row had when it was read.
struct Touch {
    int64_t stamp = 0;
    int64_t stored = 0;
};

// std::string keys found by std::string_view without building a string (a hit's lookup).
// An entry's key is 32 hex digits: its four 8-byte words are mixed by a few multiplications
// (std::hash of 32 bytes was ~70 instructions per hit); every bit of every byte counts, so a
// Storage user's own 32-byte keys spread too. Other lengths get std::hash.
struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const noexcept {
        if (key.size() != 32) {
            return std::hash<std::string_view>{}(key);
        }
        uint64_t words[4];
        std::memcpy(words, key.data(), sizeof words);
        constexpr uint64_t k_odd = 0x9E3779B97F4A7C15ull;
        uint64_t h = words[0] * k_odd;
        h = (h ^ words[1]) * k_odd;
        h = (h ^ words[2]) * k_odd;
        h = (h ^ words[3]) * k_odd;
        return static_cast<size_t>(h ^ (h >> 32));
    }
};
using Touches = std::unordered_map<std::string, Touch, KeyHash, std::equal_to<>>;

// What the connections of one storage share.
struct Shared {
    std::string path;
    bool memory = false;
    bool fast_save = false;
    int64_t busy_timeout_ms = 5000;
    uint64_t max_bytes = 0;
    std::string bodies;          // the bodies folder; "" for an in-memory database
    uint64_t file_threshold = 0; // values (stream tails) above this go to body files
    std::atomic<uint64_t> generation{0}; // bumped when a corrupt file was replaced
    // This process stored or removed something: its last connection then checkpoints the
    // WAL into the database when it closes (see Connection::open_once).
    std::atomic<bool> wrote{false};
    std::mutex write_mutex;              // one writer per process at a time

    // Read-only (README.md "Read-only caches"): decided by the first open (the storage's
    // initialize, before any other thread sees it) and kept. `absent`: read-only and the
    // database does not exist, so there is nothing to open (the storage is then empty).
    bool readonly_mode = false; // mode = "readonly": never write, even where we could
    bool opened = false;        // the first open is done: read_only no longer changes
    bool read_only = false;
    bool absent = false;
    std::string read_only_reason;

    std::mutex touch_mutex;
    Touches touches; // key -> access time not yet written
    int64_t last_stamp = 0;

    // Access stamps in microseconds, strictly increasing within this process so that LRU
    // order is exact for one process and approximate (by the clock) across processes.
    int64_t next_stamp_locked() {
        auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        last_stamp = std::max<int64_t>(now, last_stamp + 1);
        return last_stamp;
    }
    int64_t next_stamp() {
        std::lock_guard lock(touch_mutex);
        return next_stamp_locked();
    }
    Touches take_touches() {
        std::lock_guard lock(touch_mutex);
        return std::exchange(touches, {});
    }

    // Bytes of live writers' temp files in the bodies folder, for max_size; dead writers'
    // ones are removed on the way. Measured at most once a second (a readdir of the
    // bodies folder's top: up to 256 shard folders, each eviction check would pay it).
    std::atomic<int64_t> temps_measured{0}; // steady clock, milliseconds
    std::atomic<uint64_t> temps_bytes{0};
    uint64_t temp_bytes() {
        if (bodies.empty()) {
            return 0;
        }
        auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
        int64_t last = temps_measured.load();
        if (last == 0 || now - last >= 1000) {
            temps_measured.store(now);
            temps_bytes.store(
                sweep_temps(bodies, std::time(nullptr) - temp_files::k_stale_unnamed_seconds)
                    .bytes);
        }
        return temps_bytes.load();
    }
};

// One SQLite connection with its cached statements. Not thread-safe: the storage hands it
// to one thread at a time (holding `mutex`).
class Connection {
  public:
    explicit Connection(Shared& shared) : m_shared(shared) {}
    ~Connection() { abandon_if_forked(); }

    std::mutex mutex; // held by the thread using this connection

    // Runs op; when it failed because the database is corrupt, moves the file aside, starts
    // a fresh database and runs op once more.
    template <class Op> auto run(Op&& op) -> decltype(op()) {
        auto opened = ensure_open();
        if (!opened) {
            return std::unexpected(opened.error());
        }
        auto result = op();
        if (!result && is_corrupt(m_last_rc) && !m_shared.read_only) {
            auto recovered = recover();
            if (!recovered) {
                return std::unexpected(recovered.error());
            }
            result = op();
        }
        return result;
    }

    Result<void> open_or_recover();

    // A value in a body file above `whole_limit` bytes is not read: get() then returns a
    // null Blob and sets `reader` to a reader over the file, held open (file_reader.h).
    struct Streamed {
        uint64_t whole_limit = UINT64_MAX;
        std::unique_ptr<ValueReader> reader;
    };
    Result<std::optional<Blob>> get(std::string_view key, Streamed* streamed = nullptr);
    // The access time stored in the row the last get() found.
    int64_t stored_access() const { return m_stored_access; }

    // Moves rows stored under another rowid to their key's hash (see key_rowid), for vacuum.
    Result<void> rehash();

    Result<std::optional<Metadata>> get_metadata(std::string_view key);

    Result<void> put(const Metadata& meta, Pieces value, uint64_t total);
    // put() of each value (all stored in the database, not in body files), in one transaction.
    Result<void> put_many(std::span<const Storage::PutItem> items);

    // Stores a value whose first part `head` goes in the row and whose rest is `file`: the
    // file is renamed into place inside the transaction (so that a sweep, which holds the
    // write lock, never sees it unnamed) and kept once the row is committed.
    Result<void> put_file(const Metadata& meta, std::string_view head, uint64_t total,
                          BodyFile& file);

    // Removes body files no row names and stale temp files, under the write lock.
    Result<uint64_t> sweep_orphans();

    Result<int64_t> execute(Sql id, std::initializer_list<Statement::Arg> args = {});

    Result<void> scan_page(const std::string& after, std::vector<Metadata>& page);

    Result<std::pair<uint64_t, uint64_t>> totals();

    // Writes the access times of hits since the last write (inside the caller's transaction).
    Result<void> flush_touches();

    // The same in a transaction of its own, for a hit: gives up (dropping the times) rather
    // than wait when another process holds the write lock.
    Result<void> flush_touches_without_waiting();

    // What a process's exit writes of its pending access times, with synchronous = OFF (an
    // LRU hint costs no fsync; the connection's own setting is restored after): all of them
    // when it stored something (`wrote`), else only those that move an entry's stored time
    // (as the hit read it) by k_touch_resolution_us or more, dropping the rest. Most hit
    // processes then write nothing at all: no WAL frames for the next process to read back
    // (each process's first connection re-reads the whole WAL into the -shm, so a WAL that
    // hit processes keep growing made every later process slower), and no statement or
    // pragma runs. LRU order is exact within a process and that coarse across processes.
    void write_touches_at_exit(bool wrote);

    // Runs body inside BEGIN IMMEDIATE ... COMMIT, rolling back when it fails. Writers of
    // this process take turns here rather than in SQLite's sleeping busy handler.
    // Body files of rows deleted or replaced in the transaction are unlinked after COMMIT.
    template <class Body> Result<void> in_transaction(Body&& body) {
        if (!m_triggers) { // every write runs here: the triggers are set up before the first
            if (auto installed = install_body_triggers(); !installed) {
                return installed;
            }
        }
        if (!m_writes_prepared) {
            if (auto prepared = prepare_writes(); !prepared) {
                return prepared;
            }
        }
        if (m_in_transaction) {
            return body(); // a put() of put_many(): the outer transaction commits
        }
        std::lock_guard writer(m_shared.write_mutex);
        m_gone.clear();
        auto begun = execute(sql_begin);
        if (!begun) {
            return std::unexpected(begun.error());
        }
        m_in_transaction = true;
        Result<void> done = body();
        m_in_transaction = false;
        if (done) {
            auto committed = execute(sql_commit);
            done = committed ? Result<void>{} : std::unexpected(committed.error());
            if (done) {
                m_shared.wrote.store(true, std::memory_order_relaxed);
            }
        }
        if (!done) {
            (void)execute(sql_rollback);
        }
        finish_gone(done.has_value());
        return done;
    }

    // Copies the WAL into the database and truncates it, as closing the last connection
    // would, without waiting: when another connection is busy it does what it can.
    void checkpoint_without_waiting();

    Result<void> exec(const char* sql);

    // Runs op with SQLite's busy handler off: a lock another process holds makes it fail
    // at once instead of sleeping up to busy_timeout (for work a hit or exit may skip).
    template <class Op> auto without_waiting(Op&& op) -> decltype(op()) {
        sqlite3_busy_timeout(m_db.get(), 0);
        auto result = op();
        sqlite3_busy_timeout(m_db.get(), static_cast<int>(m_shared.busy_timeout_ms));
        return result;
    }
    // Whether closing this connection, if it is the database's last, checkpoints the WAL.
    void checkpoint_on_close(bool enabled);

  private:
    // The row `stmt` (sql_get or sql_get_by_key, bound) finds; `found` says whether it found one.
    Result<std::optional<Blob>> read_row(Statement& stmt, std::string_view key,
                                         Streamed* streamed, bool& found);

    Result<std::shared_ptr<std::string>> read_blob(int64_t rowid);
    std::shared_ptr<std::string> value_buffer();

    // The rest of a value from its body file, after `head`; an empty optional when the file
    // is gone (its row is then removed, unless it was replaced meanwhile).
    Result<std::optional<Blob>> read_file_value(std::string_view key, std::string_view head,
                                                const std::string& name, uint64_t total,
                                                Streamed* streamed);
    // A body file that is missing: a miss, and its row goes (see read_file_value).
    Result<std::optional<Blob>> body_missing(std::string_view key, const std::string& name);

    // Called by the temp triggers (SQL function curlcache_body_gone) for every body file
    // whose row a statement deleted or replaced.
    static void body_gone(sqlite3_context* context, int argc, sqlite3_value** argv);
    void finish_gone(bool committed);
    Result<void> install_body_triggers();
    // The per-connection settings only writes need (journal_size_limit, synchronous): set by
    // the first write, so a connection that only reads never parses them.
    Result<void> prepare_writes();
    Result<void> migrate();

    Result<void> write_blob(int64_t rowid, Pieces value);

    // Deletes least-recently-used entries until the byte total is within max_size. The
    // entry just written carries the newest access time, so it goes last.
    Result<void> evict();

    Result<Statement> statement(Sql id, bool unbind = true);
    Result<Statement> upsert(const Metadata& meta, uint64_t total);

    Error error(int rc, std::string_view what);

    // Opens the connection when there is none, when this process is a fork of the one that
    // opened it, or when another connection has replaced a corrupt file since.
    Result<void> ensure_open();

    // A SQLite connection must not be used across fork: the child abandons its copy (never
    // closes it, which could drop the parent's locks) and opens its own.
    void abandon_if_forked();

    Result<void> recover();

    void close();

    // What check_files() found: the name to give SQLite; for a read-only open, whether it
    // must be immutable=1 (see check_files); for a writable one, whether the file's header
    // says WAL already, and also this build's schema version (user_version).
    struct Target {
        std::string name;
        bool immutable = false;
        bool wal = false;
        bool current = false;
    };

    Result<void> open();
    Result<void> open_once();
    // `current`: the file's header says this schema version; it is not read again.
    Result<void> connect(const std::string& name, int flags, bool immutable, bool current = false);
    Result<Target> check_files(const std::string& path);
    // Why the user cannot write the database in checked folder `dir` (or a sibling), or "".
    std::string why_not_writable(int dir, const std::string& dir_path, const std::string& name);

    // PRAGMA user_version; the first read of the file, so NOTADB and I/O errors fail here.
    Result<int> read_schema_version();

    Shared& m_shared;
    DbPtr m_db; // declared before m_stmts: statements are finalized first
    std::array<StmtPtr, sql_count> m_stmts;
    int m_last_rc = SQLITE_OK;
    ino_t m_inode = 0;
    uint64_t m_fork_generation = 0; // fork_generation() when m_db was opened
    uint64_t m_generation = 0; // Shared::generation when m_db was opened
    std::string m_joined;      // reused buffer for small multi-piece values
    std::vector<std::string> m_gone; // body files of rows the open transaction removed
    bool m_triggers = false; // install_body_triggers() ran on this m_db
    bool m_writes_prepared = false; // prepare_writes() ran on this m_db
    int m_schema_version = -1;      // read by connect()
    int64_t m_stored_access = 0;    // see stored_access()
    // Strings of small values handed out (Blob), reused once their last reader let go: a
    // hit then allocates nothing for its value (at most 2 x k_read_inline_limit kept).
    std::array<std::shared_ptr<std::string>, 2> m_spares;
    size_t m_next_spare = 0;
    bool m_in_transaction = false; // inside in_transaction()'s body
};

} // namespace curlcache::backends::sqlite
