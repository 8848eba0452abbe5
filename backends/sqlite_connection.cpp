// The sqlite backend's connection (see sqlite_connection.h): opening with the pragmas and
// schema, recovery from a corrupt file, and the statements behind each Storage operation.
#include "backends/sqlite_connection.h"

#include "backends/file_reader.h"
#include <sys/stat.h>

#include "base/private_path.h"
#include "core/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>
#include <unordered_set>

namespace curlcache::backends::sqlite {

namespace {

// 1: entries with inline values. 2: `body` names the file holding the rest of a large
// value (migrated by adding the column; rows of version 1 keep a NULL body).
constexpr int k_schema_version = 2;

// Run inside migrate()'s transaction; every statement may run again on an existing schema.
constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    size INTEGER NOT NULL,
    accessed INTEGER NOT NULL,
    value BLOB NOT NULL,
    body TEXT);
CREATE INDEX IF NOT EXISTS entries_accessed ON entries(accessed);
CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires) WHERE expires > 0;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_resize AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 0;
END;
)sql";

constexpr const char* k_body_index =
    "CREATE INDEX IF NOT EXISTS entries_body ON entries(body) WHERE body IS NOT NULL";

// Per connection: every statement that deletes a row or replaces its body file reports the
// file (curlcache_body_gone), and the transaction unlinks it once committed. Triggers
// catch every path (remove, eviction, purge, clear, upsert) without a SELECT before each.
constexpr const char* k_body_triggers = R"sql(
CREATE TEMP TRIGGER IF NOT EXISTS entries_body_deleted AFTER DELETE ON main.entries
WHEN OLD.body IS NOT NULL BEGIN SELECT curlcache_body_gone(OLD.body); END;
CREATE TEMP TRIGGER IF NOT EXISTS entries_body_replaced AFTER UPDATE OF body ON main.entries
WHEN OLD.body IS NOT NULL AND OLD.body IS NOT NEW.body
BEGIN SELECT curlcache_body_gone(OLD.body); END;
)sql";

// sql_get and sql_get_by_key: the value when it is at most k_read_inline_limit bytes (a
// literal: one bind less per hit) or the head of a value in a body file; also the stored
// access time, so that a process that only had hits decides at exit which times are worth
// writing without reading the rows again.
#define CURLCACHE_SQLITE_GET_COLUMNS                                                               \
    "SELECT rowid, size, CASE WHEN size <= 16384 OR body IS NOT NULL THEN value END, body, "       \
    "accessed FROM entries "
static_assert(k_read_inline_limit == 16384, "the literal in CURLCACHE_SQLITE_GET_COLUMNS");
constexpr std::array<const char*, sql_count> k_sql = {
    CURLCACHE_SQLITE_GET_COLUMNS "WHERE rowid = ?2 AND key = ?1",
    CURLCACHE_SQLITE_GET_COLUMNS "WHERE key = ?1",
    "SELECT key, method, url, status, created, expires, size FROM entries WHERE key = ?1",
    "UPDATE entries SET accessed = ?2 WHERE key = ?1 AND accessed < ?2",
    "INSERT INTO entries (rowid, key, method, url, status, created, expires, size, accessed, "
    "value, body) VALUES (?11, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (key) DO "
    "UPDATE SET rowid = ?11, method = excluded.method, url = excluded.url, status = excluded.status, "
    "created = excluded.created, expires = excluded.expires, size = excluded.size, "
    "accessed = excluded.accessed, value = excluded.value, body = excluded.body "
    "RETURNING rowid",
    "DELETE FROM entries WHERE key = ?1",
    "SELECT key, method, url, status, created, expires, size FROM entries WHERE key > ?1 "
    "ORDER BY key LIMIT ?2",
    "SELECT entries, bytes FROM totals WHERE id = 0",
    "SELECT rowid, size FROM entries ORDER BY accessed LIMIT 64",
    "DELETE FROM entries WHERE rowid = ?1",
    "DELETE FROM entries WHERE expires > 0 AND expires <= ?1",
    "DELETE FROM entries",
    "DELETE FROM entries WHERE key = ?1 AND body = ?2",
    "SELECT body FROM entries WHERE body IS NOT NULL",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "DELETE FROM entries WHERE rowid = ?1 AND key <> ?2",
    // The rows to move are found by a scan of the `key` index alone (SQLite 3.40 plans the
    // subquery as a covering index scan), not of every row's value.
    "UPDATE OR IGNORE entries SET rowid = curlcache_key_rowid(key) WHERE rowid IN ("
    "SELECT rowid FROM entries WHERE rowid <> curlcache_key_rowid(key))",
};

// What a database file's header says (https://sqlite.org/fileformat2.html#the_database_header):
// WAL when the file format's write and read versions (bytes 18 and 19) are both 2, and the
// user_version (bytes 60-63, big-endian). A new, short or foreign file says neither. The
// file alone, not its WAL: a user_version written since the last checkpoint is not seen.
struct Header {
    bool wal = false;
    int64_t user_version = -1;
};
Header read_header(int fd) {
    unsigned char bytes[100];
    static constexpr char k_magic[] = "SQLite format 3";
    if (::pread(fd, bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes) ||
        std::memcmp(bytes, k_magic, sizeof k_magic) != 0) {
        return {};
    }
    return Header{bytes[18] == 2 && bytes[19] == 2,
                  (int64_t{bytes[60]} << 24) | (int64_t{bytes[61]} << 16) |
                      (int64_t{bytes[62]} << 8) | int64_t{bytes[63]}};
}

ino_t inode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A row of "SELECT key, method, url, status, created, expires, size".
Metadata metadata_of(const Statement& row) {
    return Metadata{row.text(0),
                    row.text(1),
                    row.text(2),
                    static_cast<long>(row.integer(3)),
                    row.integer(4),
                    row.integer(5),
                    static_cast<uint64_t>(row.integer(6))};
}

// SQL function curlcache_key_rowid(key), for sql_rehash.
void key_rowid_function(sqlite3_context* context, int argc, sqlite3_value** argv) {
    if (argc != 1 || sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_null(context);
        return;
    }
    const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    sqlite3_result_int64(context, key_rowid(std::string_view(
                                      text, static_cast<size_t>(sqlite3_value_bytes(argv[0])))));
}

} // namespace

int64_t key_rowid(std::string_view key) {
    return static_cast<int64_t>(XXH3_64bits(key.data(), key.size()) & uint64_t{INT64_MAX});
}

std::string uri_escape(std::string_view text) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (c == '%' || c == '?' || c == '#' || c == '&' || c == '=' || c < 0x21 || c > 0x7e) {
            out += '%';
            out += k_hex[c >> 4];
            out += k_hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

Result<void> Connection::open_or_recover() {
    m_last_rc = SQLITE_OK;
    auto opened = open();
    if (!opened && is_corrupt(m_last_rc) && !m_shared.memory && !m_shared.read_only) {
        return recover();
    }
    return opened;
}

Result<std::optional<Blob>> Connection::get(std::string_view key, Streamed* streamed) {
    bool found = false;
    {
        // Every parameter is bound on each use: no unbinding after (see Statement).
        auto stmt = statement(sql_get, false);
        if (!stmt) {
            return std::unexpected(stmt.error());
        }
        sqlite3_stmt* raw = stmt->get();
        sqlite3_bind_text64(raw, 1, key.data() ? key.data() : "", key.size(), SQLITE_STATIC,
                            SQLITE_UTF8);
        sqlite3_bind_int64(raw, 2, key_rowid(key));
        auto value = read_row(*stmt, key, streamed, found);
        if (!value || found) {
            return value;
        }
    }
    // Not under its hash: a row stored under another rowid (see key_rowid), or none.
    auto stmt = statement(sql_get_by_key);
    if (!stmt) {
        return std::unexpected(stmt.error());
    }
    stmt->bind({key});
    return read_row(*stmt, key, streamed, found);
}

Result<std::optional<Blob>> Connection::read_row(Statement& stmt, std::string_view key,
                                                 Streamed* streamed, bool& found) {
    int rc = stmt.step();
    found = rc == SQLITE_ROW;
    if (rc == SQLITE_DONE) {
        return std::optional<Blob>{};
    }
    if (rc != SQLITE_ROW) {
        return std::unexpected(error(rc, "get"));
    }
    m_stored_access = stmt.integer(4);
    if (sqlite3_column_type(stmt.get(), 3) != SQLITE_NULL) {
        const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt.get(), 2));
        std::string head(bytes ? bytes : "",
                         static_cast<size_t>(sqlite3_column_bytes(stmt.get(), 2)));
        std::string name = stmt.text(3);
        auto total = static_cast<uint64_t>(stmt.integer(1));
        { auto done = std::move(stmt); } // reset: no read transaction while reading the file
        return read_file_value(key, head, name, total, streamed);
    }
    std::shared_ptr<std::string> value;
    if (static_cast<uint64_t>(stmt.integer(1)) <= k_read_inline_limit) {
        const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt.get(), 2));
        const auto length = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), 2));
        value = value_buffer();
        value->assign(bytes ? bytes : "", length);
    } else {
        // The statement stays open, so the blob is read from the same snapshot.
        auto read = read_blob(stmt.integer(0));
        if (!read) {
            return std::unexpected(read.error());
        }
        value = std::move(*read);
    }
    return std::optional<Blob>{std::move(value)};
}

Result<std::optional<Metadata>> Connection::get_metadata(std::string_view key) {
    auto stmt = statement(sql_metadata);
    if (!stmt) {
        return std::unexpected(stmt.error());
    }
    stmt->bind({key});
    int rc = stmt->step();
    if (rc == SQLITE_DONE) {
        return std::optional<Metadata>{};
    }
    if (rc != SQLITE_ROW) {
        return std::unexpected(error(rc, "get metadata"));
    }
    return std::optional<Metadata>{metadata_of(*stmt)};
}

Result<void> Connection::put(const Metadata& meta, Pieces value, uint64_t total) {
    return in_transaction([&]() -> Result<void> {
        auto flushed = flush_touches();
        if (!flushed) {
            return flushed;
        }
        bool stream = total > k_inline_limit;
        if (stream) {
            // An upsert over an existing row would expand the zeroblob in memory.
            auto removed = execute(sql_remove, {meta.key});
            if (!removed) {
                return std::unexpected(removed.error());
            }
        }
        auto stmt = upsert(meta, total);
        if (!stmt) {
            return std::unexpected(stmt.error());
        }
        if (stream) {
            sqlite3_bind_zeroblob64(stmt->get(), 9, total);
        } else if (value.size() == 1) {
            sqlite3_bind_blob64(stmt->get(), 9, value[0].data() ? value[0].data() : "", total,
                                SQLITE_STATIC);
        } else {
            m_joined.clear();
            for (auto piece : value) {
                m_joined.append(piece);
            }
            sqlite3_bind_blob64(stmt->get(), 9, m_joined.data(), total, SQLITE_STATIC);
        }
        int rc = stmt->step();
        if (rc != SQLITE_ROW) {
            return std::unexpected(error(rc, "put"));
        }
        int64_t rowid = stmt->integer(0);
        while ((rc = stmt->step()) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) {
            return std::unexpected(error(rc, "put"));
        }
        if (stream) {
            auto written = write_blob(rowid, value);
            if (!written) {
                return written;
            }
        }
        return m_shared.max_bytes != 0 ? evict() : Result<void>{};
    });
}

Result<void> Connection::put_many(std::span<const Storage::PutItem> items) {
    return in_transaction([&]() -> Result<void> {
        for (const Storage::PutItem& item : items) {
            auto done = put(*item.meta, Pieces(&item.value, 1), item.value.size());
            if (!done) {
                return done;
            }
        }
        return {};
    });
}

Result<void> Connection::put_file(const Metadata& meta, std::string_view head, uint64_t total,
                                  BodyFile& file) {
    auto done = in_transaction([&]() -> Result<void> {
        auto flushed = flush_touches();
        if (!flushed) {
            return flushed;
        }
        auto name = file.place(meta.key);
        if (!name) {
            return std::unexpected(name.error());
        }
        auto stmt = upsert(meta, total);
        if (!stmt) {
            return std::unexpected(stmt.error());
        }
        sqlite3_bind_blob64(stmt->get(), 9, head.data() ? head.data() : "", head.size(),
                            SQLITE_STATIC);
        sqlite3_bind_text64(stmt->get(), 10, name->data(), name->size(), SQLITE_STATIC,
                            SQLITE_UTF8);
        int rc;
        while ((rc = stmt->step()) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) {
            return std::unexpected(error(rc, "put"));
        }
        return m_shared.max_bytes != 0 ? evict() : Result<void>{};
    });
    if (done) {
        file.keep();
    }
    return done;
}

// The upsert statement with the metadata bound; the caller binds value (9) and body (10).
// Another key's row under this key's rowid (a 63-bit hash collision) is replaced first.
Result<Statement> Connection::upsert(const Metadata& meta, uint64_t total) {
    const int64_t rowid = key_rowid(meta.key);
    if (auto dropped = execute(sql_drop_collision, {rowid, meta.key}); !dropped) {
        return std::unexpected(dropped.error());
    }
    auto stmt = statement(sql_upsert);
    if (stmt) {
        stmt->bind({meta.key, meta.method, meta.url, static_cast<int64_t>(meta.status),
                    meta.created, meta.expires, static_cast<int64_t>(total),
                    m_shared.next_stamp()});
        sqlite3_bind_int64(stmt->get(), 11, rowid);
    }
    return stmt;
}

Result<void> Connection::rehash() {
    int rc = sqlite3_create_function_v2(m_db.get(), "curlcache_key_rowid", 1,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                        &key_rowid_function, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, "register curlcache_key_rowid"));
    }
    return in_transaction([&]() -> Result<void> {
        auto moved = execute(sql_rehash);
        return moved ? Result<void>{} : std::unexpected(moved.error());
    });
}

Result<uint64_t> Connection::sweep_orphans() {
    uint64_t swept = 0;
    if (m_shared.bodies.empty()) {
        return swept;
    }
    auto done = in_transaction([&]() -> Result<void> {
        // The body files rows name, from a small index rather than a scan of every row (at
        // a million entries: 3 s per purge). A database an older version created gets the
        // index here, once (migrate() makes it for new ones; no schema version change, so
        // that older builds and read-only openers still read the file).
        if (auto indexed = exec(k_body_index); !indexed) {
            return indexed;
        }
        std::unordered_set<std::string> named;
        auto stmt = statement(sql_body_names);
        if (!stmt) {
            return std::unexpected(stmt.error());
        }
        int rc;
        while ((rc = stmt->step()) == SQLITE_ROW) {
            named.insert(stmt->text(0));
        }
        if (rc != SQLITE_DONE) {
            return std::unexpected(error(rc, "list body files"));
        }
        swept = sweep_bodies(m_shared.bodies, named,
                             std::time(nullptr) - temp_files::k_stale_unnamed_seconds);
        // A row whose file is gone (lost in a power cut: the rename is not synced) would
        // only turn into a miss when read; its bytes count against max_size until then.
        for (const auto& name : named) {
            if (body_file_missing(m_shared.bodies, name)) {
                auto removed =
                    execute(sql_remove_if_body, {std::string(key_of_body_name(name)), name});
                if (!removed) {
                    return std::unexpected(removed.error());
                }
            }
        }
        return {};
    });
    return done ? Result<uint64_t>{swept} : std::unexpected(done.error());
}

Result<std::optional<Blob>> Connection::read_file_value(std::string_view key,
                                                        std::string_view head,
                                                        const std::string& name, uint64_t total,
                                                        Streamed* streamed) {
    if (m_shared.bodies.empty()) {
        return fail("sqlite " + m_shared.path + ": an in-memory entry names a body file");
    }
    if (streamed != nullptr && total > streamed->whole_limit && head.size() <= total) {
        std::string problem;
        base::Fd fd;
        BodyRead opened = open_body(m_shared.bodies, name, fd, problem);
        if (opened == BodyRead::failed) {
            return fail(problem);
        }
        if (opened == BodyRead::missing) {
            return body_missing(key, name);
        }
        struct stat st {};
        const uint64_t tail = total - head.size();
        if (::fstat(*fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != tail) {
            // Cut short (or grown): the head alone fails the entry's length check, and the
            // entry is then removed as corrupt.
            return std::optional<Blob>{std::make_shared<const std::string>(head)};
        }
        streamed->reader = file_reader(std::move(fd), "sqlite body file " + name, std::string(head),
                                       {FileSpan{0, tail}});
        return std::optional<Blob>{Blob{}};
    }
    auto value = std::make_shared<std::string>();
    BodyRead read = BodyRead::ok;
    std::string problem;
    // One allocation of the whole value and read(2) straight into it, without zero-filling.
    value->resize_and_overwrite(total, [&](char* into, size_t length) {
        size_t first = std::min(head.size(), length);
        std::memcpy(into, head.data(), first);
        uint64_t got = 0;
        read = read_body(m_shared.bodies, name, into + first, length - first, got, problem);
        return first + static_cast<size_t>(got);
    });
    if (read == BodyRead::failed) {
        return fail(problem);
    }
    if (read == BodyRead::missing && m_shared.read_only) {
        return std::optional<Blob>{}; // a miss; the row is not ours to remove
    }
    if (read == BodyRead::missing) {
        return body_missing(key, name);
    }
    return std::optional<Blob>{std::move(value)};
}

Result<std::optional<Blob>> Connection::body_missing(std::string_view key, const std::string& name) {
    if (m_shared.read_only) {
        return std::optional<Blob>{}; // a miss; the row is not ours to remove
    }
    // Its row was replaced or removed after we read it (a miss), or the file was lost:
    // then the row goes too, unless it names another file by now. Never waited for:
    // this is a lookup, and another process's write lock may be held for seconds.
    (void)without_waiting([&] {
        return in_transaction([&]() -> Result<void> {
            auto removed = execute(sql_remove_if_body, {key, name});
            return removed ? Result<void>{} : std::unexpected(removed.error());
        });
    });
    return std::optional<Blob>{};
}

void Connection::body_gone(sqlite3_context* context, int argc, sqlite3_value** argv) {
    auto* self = static_cast<Connection*>(sqlite3_user_data(context));
    if (argc == 1 && sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
        try {
            self->m_gone.emplace_back(text, static_cast<size_t>(sqlite3_value_bytes(argv[0])));
        } catch (const std::bad_alloc&) {
            sqlite3_result_error_nomem(context);
            return;
        }
    }
    sqlite3_result_null(context);
}

void Connection::finish_gone(bool committed) {
    if (committed) {
        for (const auto& name : m_gone) {
            unlink_body(m_shared.bodies, name);
        }
    }
    m_gone.clear();
}

Result<void> Connection::install_body_triggers() {
    int rc = sqlite3_create_function_v2(m_db.get(), "curlcache_body_gone", 1, SQLITE_UTF8, this,
                                        &Connection::body_gone, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, "register curlcache_body_gone"));
    }
    // Not temp_store = MEMORY: VACUUM builds its copy of the database in the temp store.
    // The temp schema is a few pages that stay in the page cache (no temp file is opened).
    auto done = exec(k_body_triggers);
    m_triggers = done.has_value();
    return done;
}

Result<void> Connection::prepare_writes() {
    // journal_size_limit trims a WAL after a large entry. synchronous: NORMAL (or OFF with
    // fast_save) instead of SQLite's FULL, which syncs the WAL at every commit.
    auto done = m_shared.memory ? Result<void>{} : exec("PRAGMA journal_size_limit = 16777216");
    if (done) {
        done =
            exec(m_shared.fast_save ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = NORMAL");
    }
    m_writes_prepared = done.has_value();
    return done;
}

// Creates the schema or brings an older one up to date, in one write transaction so that
// processes opening the file at the same moment take turns. Whether the body column
// exists is checked, not inferred from user_version (an older build may have reset it).
Result<void> Connection::migrate() {
    auto done = exec("BEGIN IMMEDIATE");
    if (!done) {
        return done;
    }
    done = exec(k_schema);
    if (done) {
        sqlite3_stmt* raw = nullptr;
        bool has_body =
            sqlite3_prepare_v2(m_db.get(), "SELECT body FROM entries LIMIT 0", -1, &raw,
                               nullptr) == SQLITE_OK;
        StmtPtr probe(raw);
        if (!has_body) {
            done = exec("ALTER TABLE entries ADD COLUMN body TEXT");
        }
    }
    if (done) {
        done = exec(k_body_index);
    }
    if (done) {
        done = exec(("PRAGMA user_version = " + std::to_string(k_schema_version)).c_str());
    }
    if (done) {
        done = exec("COMMIT");
    }
    if (!done) {
        int last = m_last_rc;
        (void)exec("ROLLBACK");
        m_last_rc = last;
    }
    return done;
}

Result<int64_t> Connection::execute(Sql id, std::initializer_list<Statement::Arg> args) {
    auto stmt = statement(id);
    if (!stmt) {
        return std::unexpected(stmt.error());
    }
    stmt->bind(args);
    int rc = stmt->step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return std::unexpected(error(rc, k_sql[id]));
    }
    return sqlite3_changes64(m_db.get());
}

Result<void> Connection::scan_page(const std::string& after, std::vector<Metadata>& page) {
    auto stmt = statement(sql_scan_page);
    if (!stmt) {
        return std::unexpected(stmt.error());
    }
    stmt->bind({after, int64_t{k_scan_page}});
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        page.push_back(metadata_of(*stmt));
    }
    if (rc != SQLITE_DONE) {
        page.clear();
        return std::unexpected(error(rc, "scan"));
    }
    return {};
}

Result<std::pair<uint64_t, uint64_t>> Connection::totals() {
    auto stmt = statement(sql_totals);
    if (!stmt) {
        return std::unexpected(stmt.error());
    }
    int rc = stmt->step();
    if (rc != SQLITE_ROW) {
        return std::unexpected(error(rc, "read totals"));
    }
    return std::pair{static_cast<uint64_t>(std::max<int64_t>(0, stmt->integer(0))),
                     static_cast<uint64_t>(std::max<int64_t>(0, stmt->integer(1)))};
}

// Writes the access times of hits since the last write (inside the caller's transaction).
Result<void> Connection::flush_touches() {
    auto touches = m_shared.take_touches();
    for (const auto& [key, touch] : touches) {
        auto done = execute(sql_touch, {key, touch.stamp});
        if (!done) {
            return std::unexpected(done.error());
        }
    }
    return {};
}

Result<void> Connection::flush_touches_without_waiting() {
    auto done = without_waiting([&] { return in_transaction([&] { return flush_touches(); }); });
    if (!done) {
        (void)m_shared.take_touches(); // or every following hit would try again
    }
    return done;
}

void Connection::write_touches_at_exit(bool wrote) {
    if (!wrote) {
        std::lock_guard lock(m_shared.touch_mutex);
        std::erase_if(m_shared.touches, [](const auto& entry) {
            return entry.second.stamp - entry.second.stored < k_touch_resolution_us;
        });
        if (m_shared.touches.empty()) {
            return; // the common exit of a hit process: nothing to write, no statement run
        }
    }
    if (!m_writes_prepared && !prepare_writes()) {
        (void)m_shared.take_touches();
        return;
    }
    (void)exec("PRAGMA synchronous = OFF");
    (void)flush_touches_without_waiting();
    (void)exec(m_shared.fast_save ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = NORMAL");
}

void Connection::checkpoint_without_waiting() {
    if (!m_db || m_shared.memory) {
        return;
    }
    (void)without_waiting([&] {
        return sqlite3_wal_checkpoint_v2(m_db.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                         nullptr, nullptr);
    });
}

void Connection::checkpoint_on_close(bool enabled) {
    if (enabled && m_db && !m_writes_prepared) {
        (void)prepare_writes(); // the checkpoint syncs as this storage's writes do
    }
    if (m_db) {
        sqlite3_db_config(m_db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, enabled ? 0 : 1, nullptr);
    }
}

Result<void> Connection::exec(const char* sql) {
    int rc = sqlite3_exec(m_db.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, sql));
    }
    return {};
}

Result<std::shared_ptr<std::string>> Connection::read_blob(int64_t rowid) {
    sqlite3_blob* raw = nullptr;
    int rc = sqlite3_blob_open(m_db.get(), "main", "entries", "value", rowid, 0, &raw);
    BlobPtr blob(raw);
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, "open value"));
    }
    auto value =
        std::make_shared<std::string>(static_cast<size_t>(sqlite3_blob_bytes(blob.get())), '\0');
    for (size_t done = 0; done < value->size();) {
        int chunk = static_cast<int>(std::min(k_blob_chunk, value->size() - done));
        rc = sqlite3_blob_read(blob.get(), value->data() + done, chunk, static_cast<int>(done));
        if (rc != SQLITE_OK) {
            return std::unexpected(error(rc, "read value"));
        }
        done += static_cast<size_t>(chunk);
    }
    return value;
}

Result<void> Connection::write_blob(int64_t rowid, Pieces value) {
    sqlite3_blob* raw = nullptr;
    int rc = sqlite3_blob_open(m_db.get(), "main", "entries", "value", rowid, 1, &raw);
    BlobPtr blob(raw);
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, "open value for writing"));
    }
    size_t offset = 0;
    for (auto piece : value) {
        for (size_t done = 0; done < piece.size();) {
            int chunk = static_cast<int>(std::min(k_blob_chunk, piece.size() - done));
            rc = sqlite3_blob_write(blob.get(), piece.data() + done, chunk,
                                    static_cast<int>(offset));
            if (rc != SQLITE_OK) {
                return std::unexpected(error(rc, "write value"));
            }
            done += static_cast<size_t>(chunk);
            offset += static_cast<size_t>(chunk);
        }
    }
    rc = sqlite3_blob_close(blob.release());
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, "write value"));
    }
    return {};
}

// Deletes least-recently-used entries until the byte total is within max_size. The
// entry just written carries the newest access time, so it goes last.
Result<void> Connection::evict() {
    for (;;) {
        auto totals = this->totals();
        if (!totals) {
            return std::unexpected(totals.error());
        }
        // Live writers' temp files count too (dead writers' ones go here, temp_files.h).
        uint64_t bytes = totals->second + m_shared.temp_bytes();
        if (bytes <= m_shared.max_bytes || totals->first <= 1) {
            return {}; // never the entry just written for another writer's temp file
        }
        uint64_t excess = bytes - m_shared.max_bytes;
        std::vector<int64_t> victims;
        {
            auto stmt = statement(sql_lru_page);
            if (!stmt) {
                return std::unexpected(stmt.error());
            }
            uint64_t freed = 0;
            int rc = SQLITE_ROW;
            while (freed < excess && (rc = stmt->step()) == SQLITE_ROW) {
                victims.push_back(stmt->integer(0));
                freed += static_cast<uint64_t>(stmt->integer(1));
            }
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                return std::unexpected(error(rc, "find entries to evict"));
            }
        }
        if (victims.empty()) {
            return {}; // the totals row disagrees with the table; nothing left to evict
        }
        for (int64_t rowid : victims) {
            auto removed = execute(sql_remove_rowid, {rowid});
            if (!removed) {
                return std::unexpected(removed.error());
            }
        }
    }
}

// A string for a small value: one of the last two this connection returned when no one else
// holds it any longer (no allocation for the string nor its bytes), else a new one.
std::shared_ptr<std::string> Connection::value_buffer() {
    for (auto& spare : m_spares) {
        if (spare && spare.use_count() == 1) {
            // The last other owner released it (an acq_rel decrement); see its writes.
            std::atomic_thread_fence(std::memory_order_acquire);
            return spare;
        }
    }
    auto fresh = std::make_shared<std::string>();
    m_spares[m_next_spare++ % m_spares.size()] = fresh;
    return fresh;
}

Result<Statement> Connection::statement(Sql id, bool unbind) {
    if (!m_stmts[id]) {
        sqlite3_stmt* raw = nullptr;
        int rc =
            sqlite3_prepare_v3(m_db.get(), k_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        m_stmts[id].reset(raw);
        if (rc != SQLITE_OK) {
            return std::unexpected(error(rc, "prepare"));
        }
    }
    return Statement(m_stmts[id].get(), unbind);
}

Error Connection::error(int rc, std::string_view what) {
    m_last_rc = rc;
    std::string message = "sqlite " + m_shared.path + ": " + std::string(what) + ": " +
                          (m_db ? sqlite3_errmsg(m_db.get()) : sqlite3_errstr(rc));
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        message += " (busy timeout " + std::to_string(m_shared.busy_timeout_ms) + " ms)";
        return Error{ErrorKind::timeout, std::move(message)};
    }
    return Error{ErrorKind::failure, std::move(message)};
}

// Opens the connection when there is none, when this process is a fork of the one that
// opened it, or when another connection has replaced a corrupt file since.
Result<void> Connection::ensure_open() {
    abandon_if_forked();
    if (m_db && m_generation != m_shared.generation.load()) {
        close();
    }
    return m_db ? Result<void>{} : open_or_recover();
}

// A SQLite connection must not be used across fork: the child abandons its copy (never
// closes it, which could drop the parent's locks) and opens its own.
void Connection::abandon_if_forked() {
    if (m_db && m_fork_generation != fork_generation()) {
        for (auto& stmt : m_stmts) {
            (void)stmt.release();
        }
        (void)m_db.release();
    }
}

Result<void> Connection::recover() {
    close();
    const std::string& path = m_shared.path;
    if (!m_shared.memory && m_inode != 0 && inode_of(path) == m_inode) {
        // Only the file found corrupt is moved: another process may have replaced it.
        std::string aside = path + ".corrupt-" + std::to_string(std::time(nullptr));
        if (::rename(path.c_str(), aside.c_str()) != 0) {
            return fail("sqlite " + path +
                        ": cannot move the corrupt database aside: " + std::strerror(errno));
        }
        (void)::rename((path + "-wal").c_str(), (aside + "-wal").c_str());
        (void)::unlink((path + "-shm").c_str());
        // The body files belong to the rows of the file moved aside: they go along with it.
        (void)::rename(m_shared.bodies.c_str(), bodies_dir_for(aside).c_str());
        m_shared.generation.fetch_add(1);
        CURLCACHE_LOG(warning,
                      "sqlite cache %s is not a valid database (corrupt); moved it to %s and "
                      "started a fresh one",
                      path.c_str(), aside.c_str());
    }
    m_last_rc = SQLITE_OK;
    return open();
}

void Connection::close() {
    for (auto& stmt : m_stmts) {
        stmt.reset(); // statements before their connection
    }
    m_db.reset();
    m_triggers = false;
    m_writes_prepared = false;
    m_schema_version = -1;
}

// Processes that open a new database at the same moment race to switch it to WAL, and
// SQLite answers some of them SQLITE_BUSY at once, without the busy handler (to avoid a
// deadlock): such an open is retried, with short growing pauses, within the busy timeout.
Result<void> Connection::open() {
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(m_shared.busy_timeout_ms);
    for (int pause_ms = 1;; pause_ms = std::min(pause_ms * 2, 50)) {
        auto opened = open_once();
        if (opened || (m_last_rc & 0xff) != SQLITE_BUSY ||
            std::chrono::steady_clock::now() >= deadline) {
            return opened;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
}

// Before SQLite opens anything: the database's folder, the database and every file SQLite
// or curlcache keeps beside it must be the user's alone and no symbolic link
// (base/private_path.h), so that no one else's database is served and no link makes us
// write where another user points. The database is created here, 0600, so that SQLite,
// which gives -wal and -shm the database's mode, never makes anything readable by others.
//
// A cache the user may read but not write (a folder or file that is not writable, a
// read-only volume, one root owns and only root may write: base::Trust::read) is opened
// read-only instead, and so is every cache in mode "readonly". How, measured on Debian 12's
// SQLite 3.40.1 with a WAL database filled as root and read as nobody from a root-owned
// 0755/0644 folder, and as root and nobody through a read-only bind mount (rows seen of 2;
// tests/shim/readonly.py makes each of these states):
//   -wal and -shm                      SQLITE_OPEN_READONLY      immutable=1
//   absent (clean close)               fails (cannot make -shm)  right (1 of 1)
//   both present, WAL empty            right                     right
//   both present, WAL with commits     right                     stale: misses the WAL's
//   -wal with commits, -shm missing    fails (cannot open)       stale: misses the WAL's
// and with the folder writable by the reader (the database root's, 0644), READONLY read
// right in both failing states, making the missing -wal/-shm itself.
// So: SQLITE_OPEN_READONLY when both files are there (it also reads safely while a writer
// works) or when the folder is writable (SQLite then makes -shm itself); otherwise, or when
// that open fails (a -shm we may not read), immutable=1, which takes no locks and reads the
// database file alone: right whenever nothing is left in the WAL (every clean close leaves
// it so), else the cache as of its last checkpoint - entries stored since are misses, ones
// replaced since may be served in their older, still checksummed, version.
// Returns the name to give SQLite: the checked folder with every link resolved.
Result<Connection::Target> Connection::check_files(const std::string& path) {
    std::filesystem::path full(path);
    std::string folder = full.parent_path().string();
    std::string name = full.filename().string();
    if (folder.empty()) {
        folder = ".";
    }
    // Checked as a folder to read from; whether we may also write is worked out below.
    auto dir = base::open_private_dir(folder, !m_shared.readonly_mode, base::Trust::read);
    if (!dir) {
        if (dir.error().code == ENOENT && m_shared.readonly_mode && !m_shared.opened) {
            m_shared.read_only = m_shared.absent = true;
            m_shared.read_only_reason = "mode is \"readonly\"";
        }
        return fail("sqlite " + path + ": " + dir.error().message);
    }
    for (const char* suffix : {"-wal", "-shm", "-journal", ".bodies", ".locks", ".stats"}) {
        auto checked =
            base::check_private_entry(*dir->fd, name + suffix, path + suffix, base::Trust::read);
        if (!checked) {
            return fail("sqlite " + path + ": " + checked.error().message);
        }
    }
    std::string open_name = (dir->path == "/" ? "" : dir->path) + "/" + name;
    std::string why = why_not_writable(*dir->fd, dir->path, name);
    if (m_shared.readonly_mode) {
        why = "mode is \"readonly\"";
    }
    if (!why.empty() && !m_shared.read_only) {
        if (m_shared.opened) {
            return fail("sqlite " + path + ": " + why); // it was writable when opened
        }
        m_shared.read_only = true;
        m_shared.read_only_reason = why;
    }
    if (!m_shared.read_only) {
        auto file = base::open_private(*dir->fd, name, O_RDWR | O_CREAT, path);
        if (!file) {
            return fail("sqlite " + path + ": " + file.error().message);
        }
        struct stat st {};
        m_inode = ::fstat(file->get(), &st) == 0 ? st.st_ino : 0;
        Header header = read_header(file->get());
        return Target{std::move(open_name), false, header.wal,
                      header.wal && header.user_version == k_schema_version};
    }
    auto file = base::open_private(*dir->fd, name, O_RDONLY, path, base::Trust::read);
    if (!file) {
        if (file.error().code == ENOENT && !m_shared.opened) {
            m_shared.absent = true;
        }
        return fail("sqlite " + path + ": " + file.error().message);
    }
    auto exists = [&](const std::string& sibling) {
        struct stat st {};
        return ::fstatat(*dir->fd, sibling.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    };
    bool shared_memory = exists(name + "-wal") && exists(name + "-shm");
    return Target{std::move(open_name), !shared_memory && !base::writable(*dir->fd, ".")};
}

std::string Connection::why_not_writable(int dir, const std::string& dir_path,
                                         const std::string& name) {
    struct stat st {};
    if (::fstat(dir, &st) == 0) {
        if (std::string why = base::untrusted(st, base::Trust::own); !why.empty()) {
            return "folder " + dir_path + ": " + why;
        }
    }
    if (!base::writable(dir, ".")) {
        return "cannot write in folder " + dir_path + ": " + std::strerror(errno);
    }
    for (const char* suffix : {"", "-wal", "-shm", "-journal", ".bodies", ".locks", ".stats"}) {
        std::string entry = name + suffix;
        if (::fstatat(dir, entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue; // missing: we would create it
        }
        std::string shown = dir_path + "/" + entry;
        if (std::string why = base::untrusted(st, base::Trust::own); !why.empty()) {
            return shown + ": " + why;
        }
        if (!base::writable(dir, entry)) {
            return "cannot write " + shown + ": " + std::strerror(errno);
        }
    }
    return {};
}

// Opens `name` (immutable=1: through a "file:" URI saying so) and reads from it once, so
// that a file that is not a database (NOTADB) or cannot be read fails here.
Result<void> Connection::connect(const std::string& name, int flags, bool immutable,
                                 bool current) {
    close();
    std::string uri = immutable ? "file:" + uri_escape(name) + "?immutable=1" : name;
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(uri.c_str(), &raw, flags | (immutable ? SQLITE_OPEN_URI : 0), nullptr);
    m_db.reset(raw);
    if (rc != SQLITE_OK) {
        auto failure = error(rc, "open");
        close();
        return std::unexpected(failure);
    }
    m_fork_generation = fork_generation();
    sqlite3_extended_result_codes(m_db.get(), 1);
    sqlite3_busy_timeout(m_db.get(), static_cast<int>(m_shared.busy_timeout_ms));
    if (current) {
        // The header said so: the file is then read first by the statement open_once
        // prepares (a file that is not a database fails there, still at open).
        m_schema_version = k_schema_version;
        return {};
    }
    auto version = read_schema_version();
    if (!version) {
        return std::unexpected(version.error());
    }
    m_schema_version = *version;
    return {};
}

Result<void> Connection::open_once() {
    close();
    const std::string& path = m_shared.path;
    std::string open_path = path;
    m_generation = m_shared.generation.load();
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    bool immutable = false;
    bool wal = false;
    bool header_current = false; // the file's header says WAL and this schema version
    if (m_shared.memory) {
        flags |= SQLITE_OPEN_URI;
    } else {
        auto checked = check_files(path);
        if (!checked) {
            return std::unexpected(checked.error());
        }
        open_path = std::move(checked->name);
        wal = checked->wal;
        header_current = checked->current;
        if (m_shared.read_only) {
            flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
            immutable = checked->immutable;
        }
        // SQLite refuses a link anywhere in the (resolved) name, should one appear after
        // the check; SQLite opens -wal and -shm itself, in the folder checked private.
        flags |= SQLITE_OPEN_NOFOLLOW;
    }
    auto done = connect(open_path, flags, immutable, header_current && !m_shared.read_only);
    if (!done && m_shared.read_only && !immutable) {
        // A -shm we may not read, say: the database file alone then.
        done = connect(open_path, flags, true);
    }
    if (m_shared.read_only) {
        // Nothing to set up: no journal mode, no schema change, no triggers (nothing is
        // deleted). A schema this build cannot read as it is stays unread.
        if (done && m_schema_version != k_schema_version) {
            done = fail("sqlite " + path + ": read-only and its schema is version " +
                        std::to_string(m_schema_version) + ", not " +
                        std::to_string(k_schema_version) +
                        "; open it once with write access to bring it up to date");
        }
        if (!done) {
            int last = m_last_rc;
            close();
            m_last_rc = last;
        }
        return done;
    }
    const bool current = m_schema_version == k_schema_version;
    if (done && !m_shared.memory) {
        // WAL is a property of the file (its header says so, and every connection then
        // opens it in WAL mode): set once, when the header does not say it yet.
        if (!wal || !current) {
            done = exec("PRAGMA journal_mode = WAL");
        }
        // The last connection to close checkpoints the WAL (fsync of WAL and database) and
        // deletes it. A process that only had hits - one curl hit - must not pay for that
        // durable I/O, so checkpoint-on-close is off until the process writes (the storage
        // turns it back on at close then).
        checkpoint_on_close(false);
    }
    // Deliberately no mmap_size: memory-mapping made 1 MiB hits ~5x faster (bench_storage),
    // but a file truncated behind our back or an I/O error (NFS home folders) then raises
    // SIGBUS in the user's program instead of an error we can fail open on. Nor a larger
    // page_size: 16 KiB pages halved large reads but pushed 1 KiB puts past 100 µs.
    // synchronous and journal_size_limit matter to writes alone: the first write sets them
    // (prepare_writes), here only when the schema is written now.
    if (done && !current) {
        done = prepare_writes();
        if (done) {
            done = migrate();
        }
    }
    // The schema is parsed here (once per connection, by the first statement a hit needs
    // anyway), so that a file whose schema is corrupt fails at open as before.
    if (done) {
        auto prepared = statement(sql_get);
        done = prepared ? Result<void>{} : std::unexpected(prepared.error());
    }
    // The body triggers are set up by the first write (in_transaction): parsing them was a
    // third of what opening cost a process that only reads (368k of 822k instructions).
    if (!done) {
        int last = m_last_rc;
        close();
        m_last_rc = last;
    }
    return done;
}

Result<int> Connection::read_schema_version() {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(m_db.get(), "PRAGMA user_version", -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) {
        return std::unexpected(error(rc, "PRAGMA user_version"));
    }
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW) {
        return std::unexpected(error(rc, "PRAGMA user_version"));
    }
    return sqlite3_column_int(stmt.get(), 0);
}

} // namespace curlcache::backends::sqlite
