// The PostgreSQL backend, a plugin on curlcache's backend ABI (curlcache/backend.h).
//
// One cache = one table (postgres.table, else the cache name unless that is a path, else
// "curlcache"; schema-qualified allowed):
//   T          key text primary key, method, url, status, created, expires (indexed),
//              size, accessed (microseconds; indexed, for LRU), value bytea
//   T_chunks   (key, n, data bytea): the bytes after T.value of a value over 1 MiB, so
//              that no statement carries (and no side buffers) a whole 100 MiB value
//   T_meta     the schema version (1); a table of another version is refused
// A value is T.value followed by its chunks in order. Every write runs in one transaction
// under a per-key transaction lock, and a read is one statement (one snapshot): readers
// see the old value or the new one. Accesses are collected per process and written in
// batches (one UPDATE of up to 64 keys, or at flush/eviction). Coalescing locks are session
// advisory locks on a hash of table and key, held on one connection of this process and
// released by PostgreSQL when the process dies.
//
// Settings ([postgres] table): url (a libpq connection string or URI; the password from it,
// PGPASSWORD or PGPASSFILE, never logged), connect_timeout and statement_timeout (ms, or
// "250ms"/"2s"), table.
#include "backends/plugins/postgres/pg_pool.h"

#include <arpa/inet.h>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>
#include <atomic>
#include <algorithm>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace curlcache::plugins::postgres {

namespace {

constexpr size_t k_chunk = 1 << 20;      // bytes per chunk row; values up to this are inline
constexpr size_t k_touch_batch = 64;      // accesses written in one UPDATE
constexpr int k_schema_version = 1;

int64_t now_us() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// "250", "250ms", "2s" -> milliseconds; -1 when malformed.
int64_t parse_ms(const char* text) {
    char* end = nullptr;
    const long long value = std::strtoll(text, &end, 10);
    if (end == text || value < 0) {
        return -1;
    }
    const std::string unit = end;
    return unit.empty() || unit == "ms" ? value : unit == "s" ? value * 1000 : -1;
}

bool is_identifier(const std::string& part) {
    if (part.empty() || part.size() > 50 || std::isdigit(static_cast<unsigned char>(part[0]))) {
        return false;
    }
    for (char c : part) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
            return false;
        }
    }
    return true;
}

std::string to_text(int64_t value) {
    return std::to_string(value);
}

Param text(const std::string& value) {
    return {value.c_str(), static_cast<int>(value.size()), false};
}

// Never a null pointer: libpq would send SQL NULL instead of an empty value.
Param bytes(const char* data, size_t size) {
    return {data != nullptr ? data : "", static_cast<int>(size), true};
}

struct Names {
    std::string table;  // "s"."t" or "t", quoted
    std::string chunks; // ... "t_chunks"
    std::string meta;   // ... "t_meta"
    std::string bare;   // the last part, unquoted: index names
    std::string full;   // as given: lock hashes and messages
};

std::vector<Statement> statements(const Names& n) {
    return {
        {"get", "SELECT 0 AS n, value FROM " + n.table + " WHERE key = $1 UNION ALL SELECT n, data FROM " +
                    n.chunks + " WHERE key = $1 ORDER BY 1", 1},
        {"meta", "SELECT method, url, status, created, expires, size FROM " + n.table +
                     " WHERE key = $1", 1},
        {"lock_key", "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", 2},
        {"del_chunks", "DELETE FROM " + n.chunks + " WHERE key = $1", 1},
        {"chunk", "INSERT INTO " + n.chunks + " (key, n, data) VALUES ($1, $2, $3)", 3},
        {"move_chunks", "UPDATE " + n.chunks + " SET key = $1 WHERE key = $2", 2},
        {"upsert", "INSERT INTO " + n.table +
                       " (key, method, url, status, created, expires, size, accessed, value)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO UPDATE SET"
                       " method = EXCLUDED.method, url = EXCLUDED.url, status = EXCLUDED.status,"
                       " created = EXCLUDED.created, expires = EXCLUDED.expires,"
                       " size = EXCLUDED.size, accessed = EXCLUDED.accessed, value = EXCLUDED.value", 9},
        {"evict", "WITH ranked AS (SELECT key, sum(size) OVER (ORDER BY accessed DESC, key) AS"
                  " running FROM " + n.table + "), gone AS (DELETE FROM " + n.table +
                      " WHERE key IN (SELECT key FROM ranked WHERE running > $1) RETURNING key)"
                      " DELETE FROM " + n.chunks + " WHERE key IN (SELECT key FROM gone)", 1},
        {"remove", "WITH gone AS (DELETE FROM " + n.table + " WHERE key = $1 RETURNING key),"
                   " c AS (DELETE FROM " + n.chunks + " WHERE key IN (SELECT key FROM gone))"
                   " SELECT count(*) FROM gone", 1},
        {"purge", "WITH gone AS (DELETE FROM " + n.table + " WHERE expires > 0 AND expires <= $1"
                  " RETURNING key), c AS (DELETE FROM " + n.chunks +
                      " WHERE key IN (SELECT key FROM gone)) SELECT count(*) FROM gone", 1},
        {"usage", "SELECT count(*), coalesce(sum(size), 0) FROM " + n.table, 0},
        {"scan", "SELECT key, method, url, status, created, expires, size FROM " + n.table, 0},
        {"touch", "UPDATE " + n.table + " AS t SET accessed = a.at FROM unnest($1::text[],"
                  " $2::int8[]) AS a(key, at) WHERE t.key = a.key AND t.accessed < a.at", 2},
        {"clear", "WITH c AS (DELETE FROM " + n.chunks + ") DELETE FROM " + n.table, 0},
        {"try_lock", "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1},
        {"unlock", "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1},
    };
}

std::string schema_sql(const Names& n) {
    return "BEGIN; SELECT pg_advisory_xact_lock(hashtext('curlcache schema'));"
           " CREATE TABLE IF NOT EXISTS " + n.table + " (key text PRIMARY KEY, method text NOT NULL,"
           " url text NOT NULL, status integer NOT NULL, created bigint NOT NULL,"
           " expires bigint NOT NULL, size bigint NOT NULL, accessed bigint NOT NULL,"
           " value bytea NOT NULL);"
           " CREATE INDEX IF NOT EXISTS " + n.bare + "_expires ON " + n.table +
           " (expires) WHERE expires > 0;"
           " CREATE INDEX IF NOT EXISTS " + n.bare + "_accessed ON " + n.table + " (accessed);"
           " CREATE TABLE IF NOT EXISTS " + n.chunks + " (key text NOT NULL, n integer NOT NULL,"
           " data bytea NOT NULL, PRIMARY KEY (key, n));"
           " CREATE TABLE IF NOT EXISTS " + n.meta + " (version integer NOT NULL);"
           " INSERT INTO " + n.meta + " SELECT " + std::to_string(k_schema_version) +
           " WHERE NOT EXISTS (SELECT 1 FROM " + n.meta + ");"
           " COMMIT; SELECT version FROM " + n.meta + ";";
}

int64_t int_at(const PGresult* result, int row, int column) {
    return std::strtoll(PQgetvalue(result, row, column), nullptr, 10);
}

int32_t int4_binary(const PGresult* result, int row, int column) {
    uint32_t value = 0;
    std::memcpy(&value, PQgetvalue(result, row, column), sizeof value);
    return static_cast<int32_t>(ntohl(value));
}

} // namespace

} // namespace curlcache::plugins::postgres

using namespace curlcache::plugins::postgres;

struct curlcache_backend_store {
    const curlcache_backend_host* host = nullptr;
    Names names;
    std::string location;
    uint64_t max_size = 0;
    int64_t statement_timeout_ms = 5000;
    std::unique_ptr<Pool> pool;

    std::mutex touch_mutex;
    std::vector<std::pair<std::string, int64_t>> touches;

    std::mutex lock_mutex; // coalescing locks live on one session of this process
    std::unique_ptr<Connection> lock_connection;
    uint64_t lock_generation = 0;

    // Runs fn(Connection&) -> bool on a pooled connection; a reused connection that turns
    // out lost (the server restarted) is replaced once.
    template <class Fn> curlcache_backend_status with(Fn&& fn, curlcache_backend_error* error);
    bool write_touches(Connection& connection, Failure& failure);
};

struct curlcache_backend_stream {
    curlcache_backend_store* store = nullptr;
    std::unique_ptr<Connection> connection; // holds the open transaction
    std::string id;                         // the chunks' key until commit
    std::string buffer;
    int32_t chunks = 0;
};

namespace {

using Store = curlcache_backend_store;

curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error) {
    std::snprintf(error->message, sizeof error->message, "%s", failure.message.c_str());
    return failure.status;
}

} // namespace

template <class Fn>
curlcache_backend_status curlcache_backend_store::with(Fn&& fn, curlcache_backend_error* error) {
    for (int attempt = 0;; ++attempt) {
        Failure failure;
        std::unique_ptr<Connection> connection = pool->checkout(failure);
        if (!connection) {
            return report(failure, error);
        }
        const bool ok = fn(*connection, failure);
        const bool lost = connection->lost();
        pool->checkin(std::move(connection));
        if (ok) {
            return CURLCACHE_BACKEND_OK;
        }
        if (!lost || !failure.retry || attempt > 0) {
            return report(failure, error);
        }
    }
}

bool curlcache_backend_store::write_touches(Connection& connection, Failure& failure) {
    std::vector<std::pair<std::string, int64_t>> batch;
    {
        std::lock_guard lock(touch_mutex);
        batch.swap(touches);
    }
    if (batch.empty()) {
        return true;
    }
    std::string keys = "{", times = "{";
    for (const auto& [key, at] : batch) {
        keys += (keys.size() > 1 ? "," : "") + key;
        times += (times.size() > 1 ? "," : "") + std::to_string(at);
    }
    keys += "}";
    times += "}";
    return connection.run("touch", {text(keys), text(times)}, false, statement_timeout_ms, failure) !=
           nullptr;
}

namespace {

// The parts of a connection string that say where, never the password.
std::string describe(const std::string& url, const std::string& table) {
    char* message = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &message);
    PQfreemem(message);
    std::string host = "localhost", port = "5432", db;
    for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
        if (o->val == nullptr || *o->val == '\0') {
            continue;
        }
        const std::string keyword = o->keyword;
        if (keyword == "host" || keyword == "hostaddr") {
            host = o->val;
        } else if (keyword == "port") {
            port = o->val;
        } else if (keyword == "dbname") {
            db = o->val;
        }
    }
    PQconninfoFree(options);
    return "postgres://" + host + ":" + port + "/" + db + " table " + table;
}

curlcache_backend_status open_store(const curlcache_backend_host* host, Store** out,
                                    curlcache_backend_error* error) try {
    auto store = std::make_unique<Store>();
    store->host = host;
    store->max_size = host->max_size;
    const char* url = curlcache_backend_setting_get(host, "url");
    int64_t connect_timeout_ms = 1000;
    for (auto [key, target] : {std::pair{"connect_timeout", &connect_timeout_ms},
                               std::pair{"statement_timeout", &store->statement_timeout_ms}}) {
        if (const char* value = curlcache_backend_setting_get(host, key)) {
            *target = parse_ms(value);
            if (*target <= 0) {
                return report({CURLCACHE_BACKEND_FAILURE, std::string("postgres.") + key + ": bad "
                               "timeout \"" + value + "\" (milliseconds, \"250ms\", \"2s\")"}, error);
            }
        }
    }
    // postgres.table, else the cache name when it is a table name (in tiers such as
    // "sqlite,postgres" the name is sqlite's file), else "curlcache".
    const char* table = curlcache_backend_setting_get(host, "table");
    std::string name = table != nullptr ? table : host->cache_name;
    if (table == nullptr && (name.empty() || name.find('/') != std::string::npos)) {
        name = "curlcache";
    }
    const size_t dot = name.find('.');
    const std::string schema = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string bare = dot == std::string::npos ? name : name.substr(dot + 1);
    if ((dot != std::string::npos && !is_identifier(schema)) || !is_identifier(bare)) {
        return report({CURLCACHE_BACKEND_FAILURE, "cache name \"" + name + "\" is not a table name"
                       " (letters, digits, '_', optionally schema.table)"}, error);
    }
    const std::string prefix = schema.empty() ? "" : "\"" + schema + "\".";
    store->names = {prefix + "\"" + bare + "\"", prefix + "\"" + bare + "_chunks\"",
                    prefix + "\"" + bare + "_meta\"", bare, name};
    const std::string conninfo = url != nullptr ? url : "";
    store->location = describe(conninfo, name);
    // The pool's connections prepare the statements on the tables created below.
    Failure failure;
    auto first = Connection::connect(conninfo, connect_timeout_ms, {}, store->location, failure);
    if (!first) {
        return report(failure, error);
    }
    Result version = first->exec(schema_sql(store->names), store->statement_timeout_ms, failure);
    if (!version) {
        return report(failure, error);
    }
    if (PQntuples(version.get()) != 1 || int_at(version.get(), 0, 0) != k_schema_version) {
        return report({CURLCACHE_BACKEND_FAILURE, store->location + ": schema version " +
                       (PQntuples(version.get()) == 1 ? PQgetvalue(version.get(), 0, 0) : "?") +
                       ", this plugin reads " + std::to_string(k_schema_version)}, error);
    }
    store->pool = std::make_unique<Pool>(conninfo, store->location, connect_timeout_ms,
                                         statements(store->names));
    *out = store.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

} // namespace

namespace {

void close_store(Store* store) {
    if (store->pool) {
        Failure ignored;
        if (auto connection = store->pool->checkout(ignored)) {
            store->write_touches(*connection, ignored);
            store->pool->checkin(std::move(connection));
        }
    }
    if (store->lock_connection && store->lock_generation != fork_generation()) {
        store->lock_connection->abandon();
    }
    delete store;
}

const char* location(Store* store) {
    return store->location.c_str();
}

curlcache_backend_status get(Store* store, const char* key, const curlcache_backend_sink* sink,
                             int* found, curlcache_backend_error* error) {
    const std::string k = key;
    auto status = store->with(
        [&](Connection& connection, Failure& failure) {
            *found = 0;
            if (!connection.send_rows("get", {text(k)}, true, failure)) {
                return false;
            }
            bool ok = true;
            for (bool end = false; !end;) {
                Result row = connection.next_row(store->statement_timeout_ms, failure, end);
                if (!row) {
                    failure.retry = *found == 0; // a value half delivered is not asked again
                    return end && ok;
                }
                if (int4_binary(row.get(), 0, 0) == 0) {
                    *found = 1;
                }
                if (ok && sink->write(sink->context, PQgetvalue(row.get(), 0, 1),
                                      static_cast<size_t>(PQgetlength(row.get(), 0, 1))) != 0) {
                    ok = false; // read the rest, so that the connection can be reused
                    failure = {CURLCACHE_BACKEND_FAILURE, "postgres: the host refused the value"};
                }
            }
            return ok;
        },
        error);
    if (status == CURLCACHE_BACKEND_OK && *found != 0) {
        std::lock_guard lock(store->touch_mutex);
        store->touches.emplace_back(k, now_us());
        if (store->touches.size() < k_touch_batch) {
            return status;
        }
    } else {
        return status;
    }
    curlcache_backend_error ignored{};
    store->with([&](Connection& connection, Failure& failure) {
        return store->write_touches(connection, failure);
    }, &ignored);
    return status;
}

// BEGIN; the key's transaction lock; the old chunks gone.
bool begin_key(Store* store, Connection& connection, const std::string& key, Failure& failure) {
    return connection.exec("BEGIN", store->statement_timeout_ms, failure) &&
           connection.run("lock_key", {text(store->names.full), text(key)}, false,
                          store->statement_timeout_ms, failure) &&
           connection.run("del_chunks", {text(key)}, false, store->statement_timeout_ms, failure);
}

// The row (value = its first bytes), eviction, COMMIT.
bool finish_key(Store* store, Connection& connection, const curlcache_backend_metadata& meta,
                std::string_view inline_value, Failure& failure) {
    const std::string status = to_text(meta.status), created = to_text(meta.created),
                      expires = to_text(meta.expires), size = to_text(static_cast<int64_t>(meta.size)),
                      accessed = to_text(now_us()), key = meta.key, method = meta.method, url = meta.url;
    const int64_t t = store->statement_timeout_ms;
    if (!connection.run("upsert", {text(key), text(method), text(url), text(status), text(created),
                                   text(expires), text(size), text(accessed),
                                   bytes(inline_value.data(), inline_value.size())},
                        false, t, failure)) {
        return false;
    }
    if (store->max_size != 0) {
        const std::string max = to_text(static_cast<int64_t>(store->max_size));
        if (!store->write_touches(connection, failure) ||
            !connection.run("evict", {text(max)}, false, t, failure)) {
            return false;
        }
    }
    return connection.exec("COMMIT", t, failure) != nullptr;
}

bool put_chunk(Store* store, Connection& connection, const std::string& key, int32_t n,
               std::string_view data, Failure& failure) {
    const std::string number = to_text(n);
    return connection.run("chunk", {text(key), text(number), bytes(data.data(), data.size())},
                          false, store->statement_timeout_ms, failure) != nullptr;
}

curlcache_backend_status remove_key(Store* store, const char* key, int* existed,
                                    curlcache_backend_error* error) {
    const std::string k = key;
    return store->with(
        [&](Connection& connection, Failure& failure) {
            Result result = connection.run("remove", {text(k)}, false, store->statement_timeout_ms, failure);
            if (existed != nullptr && result) {
                *existed = int_at(result.get(), 0, 0) > 0;
            }
            return result != nullptr;
        },
        error);
}

curlcache_backend_status put(Store* store, const curlcache_backend_metadata* meta,
                             const curlcache_backend_bytes* pieces, size_t count,
                             curlcache_backend_error* error) try {
    uint64_t total = 0;
    for (size_t i = 0; i < count; ++i) {
        total += pieces[i].size;
    }
    if (store->max_size != 0 && total > store->max_size) {
        return remove_key(store, meta->key, nullptr, error); // not stored; no stale value left
    }
    curlcache_backend_metadata whole = *meta;
    whole.size = total;
    const std::string key = meta->key;
    return store->with(
        [&](Connection& connection, Failure& failure) {
            if (!begin_key(store, connection, key, failure)) {
                return false;
            }
            std::string buffer;
            buffer.reserve(std::min<uint64_t>(total, k_chunk));
            if (total <= k_chunk) {
                for (size_t i = 0; i < count; ++i) {
                    buffer.append(pieces[i].data, pieces[i].size);
                }
                return finish_key(store, connection, whole, buffer, failure);
            }
            int32_t n = 0;
            for (size_t i = 0; i < count; ++i) {
                std::string_view rest(pieces[i].data, pieces[i].size);
                while (!rest.empty()) {
                    const size_t take = std::min(rest.size(), k_chunk - buffer.size());
                    buffer.append(rest.substr(0, take));
                    rest.remove_prefix(take);
                    if (buffer.size() == k_chunk) {
                        if (!put_chunk(store, connection, key, ++n, buffer, failure)) {
                            return false;
                        }
                        buffer.clear();
                    }
                }
            }
            if (!buffer.empty() && !put_chunk(store, connection, key, ++n, buffer, failure)) {
                return false;
            }
            return finish_key(store, connection, whole, {}, failure);
        },
        error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

curlcache_backend_metadata row_meta(const PGresult* row, int r, int first_column, const char* key) {
    return {key, PQgetvalue(row, r, first_column), PQgetvalue(row, r, first_column + 1),
            static_cast<long>(int_at(row, r, first_column + 2)), int_at(row, r, first_column + 3),
            int_at(row, r, first_column + 4), static_cast<uint64_t>(int_at(row, r, first_column + 5))};
}

curlcache_backend_status scan(Store* store, curlcache_backend_visit visit, void* context,
                              curlcache_backend_error* error) {
    return store->with(
        [&](Connection& connection, Failure& failure) {
            if (!connection.send_rows("scan", {}, false, failure)) {
                return false;
            }
            bool more = true;
            for (bool end = false; !end;) {
                Result row = connection.next_row(store->statement_timeout_ms, failure, end);
                if (!row) {
                    return end;
                }
                if (more) { // after a stop, the rest is read and dropped
                    const curlcache_backend_metadata meta =
                        row_meta(row.get(), 0, 1, PQgetvalue(row.get(), 0, 0));
                    more = visit(context, &meta) != 0;
                }
            }
            return true;
        },
        error);
}

curlcache_backend_status get_metadata(Store* store, const char* key, curlcache_backend_visit visit,
                                      void* context, curlcache_backend_error* error) {
    const std::string k = key;
    return store->with(
        [&](Connection& connection, Failure& failure) {
            Result result = connection.run("meta", {text(k)}, false, store->statement_timeout_ms, failure);
            if (result && PQntuples(result.get()) == 1) {
                const curlcache_backend_metadata meta = row_meta(result.get(), 0, 0, key);
                visit(context, &meta);
            }
            return result != nullptr;
        },
        error);
}

// Runs one statement without parameters and ignores its rows.
curlcache_backend_status simple(Store* store, const char* name, curlcache_backend_error* error) {
    return store->with(
        [&](Connection& connection, Failure& failure) {
            return connection.run(name, {}, false, store->statement_timeout_ms, failure) != nullptr;
        },
        error);
}

curlcache_backend_status clear(Store* store, curlcache_backend_error* error) {
    {
        std::lock_guard lock(store->touch_mutex);
        store->touches.clear();
    }
    return simple(store, "clear", error);
}

curlcache_backend_status usage(Store* store, curlcache_backend_usage* usage,
                               curlcache_backend_error* error) {
    return store->with(
        [&](Connection& connection, Failure& failure) {
            Result result = connection.run("usage", {}, false, store->statement_timeout_ms, failure);
            if (result) {
                *usage = {static_cast<uint64_t>(int_at(result.get(), 0, 0)),
                          static_cast<uint64_t>(int_at(result.get(), 0, 1)), store->max_size};
            }
            return result != nullptr;
        },
        error);
}

curlcache_backend_status purge_expired(Store* store, int64_t now, uint64_t* removed,
                                       curlcache_backend_error* error) {
    const std::string at = to_text(now);
    return store->with(
        [&](Connection& connection, Failure& failure) {
            Result result = connection.run("purge", {text(at)}, false, store->statement_timeout_ms, failure);
            if (result) {
                *removed = static_cast<uint64_t>(int_at(result.get(), 0, 0));
            }
            return result != nullptr;
        },
        error);
}

void flush(Store* store) {
    curlcache_backend_error ignored{};
    store->with([&](Connection& connection, Failure& failure) {
        return store->write_touches(connection, failure);
    }, &ignored);
}

curlcache_backend_status vacuum(Store* store, curlcache_backend_error* error) {
    const std::string sql = "VACUUM " + store->names.table + ", " + store->names.chunks;
    return store->with(
        [&](Connection& connection, Failure& failure) {
            return connection.exec(sql, store->statement_timeout_ms * 60, failure) != nullptr;
        },
        error);
}

// Coalescing locks: session advisory locks on this process's one lock connection.
curlcache_backend_status lock_call(Store* store, const char* name, const char* key, int* answer,
                                   curlcache_backend_error* error) {
    const std::string id = store->names.full + ":" + key;
    std::lock_guard lock(store->lock_mutex);
    if (store->lock_connection && store->lock_generation != fork_generation()) {
        store->lock_connection->abandon(); // the parent's session and its locks
        store->lock_connection.reset();
    }
    Failure failure;
    if (!store->lock_connection) {
        store->lock_connection = store->pool->checkout(failure);
        store->lock_generation = fork_generation();
        if (!store->lock_connection) {
            return report(failure, error);
        }
    }
    Result result = store->lock_connection->run(name, {text(id)}, false,
                                                store->statement_timeout_ms, failure);
    if (!result) {
        store->lock_connection.reset(); // its locks went with the session
        return report(failure, error);
    }
    *answer = std::strcmp(PQgetvalue(result.get(), 0, 0), "t") == 0;
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status try_lock(Store* store, const char* key, int64_t /*ttl_ms*/, int* acquired,
                                  curlcache_backend_error* error) {
    // Held until unlock or until this process's session ends (PostgreSQL releases it then).
    return lock_call(store, "try_lock", key, acquired, error);
}

curlcache_backend_status unlock(Store* store, const char* key, curlcache_backend_error* error) {
    int released = 0;
    return lock_call(store, "unlock", key, &released, error);
}

// Streamed values: one transaction on one connection from begin_put to commit; the tail
// goes into chunk rows under a private id, renamed to the key at commit.
curlcache_backend_status begin_put(Store* store, uint64_t /*size_hint*/,
                                   curlcache_backend_stream** out,
                                   curlcache_backend_error* error) try {
    auto stream = std::make_unique<curlcache_backend_stream>();
    stream->store = store;
    Failure failure;
    stream->connection = store->pool->checkout(failure);
    if (!stream->connection || !stream->connection->exec("BEGIN", store->statement_timeout_ms, failure)) {
        if (stream->connection) {
            store->pool->checkin(std::move(stream->connection));
        }
        return report(failure, error);
    }
    static std::atomic<uint64_t> counter{0};
    stream->id = "stream:" + std::to_string(getpid()) + ":" + std::to_string(now_us()) + ":" +
                 std::to_string(counter.fetch_add(1));
    *out = stream.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

curlcache_backend_status append(curlcache_backend_stream* stream, const char* data, size_t size,
                                curlcache_backend_error* error) try {
    Failure failure;
    std::string_view rest(data, size);
    while (!rest.empty()) {
        const size_t take = std::min(rest.size(), k_chunk - stream->buffer.size());
        stream->buffer.append(rest.substr(0, take));
        rest.remove_prefix(take);
        if (stream->buffer.size() == k_chunk) {
            if (!put_chunk(stream->store, *stream->connection, stream->id, ++stream->chunks,
                           stream->buffer, failure)) {
                return report(failure, error);
            }
            stream->buffer.clear();
        }
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

curlcache_backend_status commit(curlcache_backend_stream* stream, const curlcache_backend_metadata* meta,
                                const char* head, size_t head_size,
                                curlcache_backend_error* error) try {
    Store* store = stream->store;
    Connection& connection = *stream->connection;
    Failure failure;
    const uint64_t total = head_size + static_cast<uint64_t>(stream->chunks) * k_chunk + stream->buffer.size();
    if (store->max_size != 0 && total > store->max_size) {
        connection.exec("ROLLBACK", store->statement_timeout_ms, failure);
        stream->id.clear();
        return remove_key(store, meta->key, nullptr, error);
    }
    curlcache_backend_metadata whole = *meta;
    whole.size = total;
    const std::string key = meta->key;
    const bool ok =
        (stream->buffer.empty() ||
         put_chunk(store, connection, stream->id, ++stream->chunks, stream->buffer, failure)) &&
        connection.run("lock_key", {text(store->names.full), text(key)}, false,
                       store->statement_timeout_ms, failure) &&
        connection.run("del_chunks", {text(key)}, false, store->statement_timeout_ms, failure) &&
        connection.run("move_chunks", {text(key), text(stream->id)}, false,
                       store->statement_timeout_ms, failure) &&
        finish_key(store, connection, whole, std::string_view(head, head_size), failure);
    stream->buffer.clear();
    if (!ok) {
        return report(failure, error);
    }
    stream->id.clear(); // committed
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

void close_stream(curlcache_backend_stream* stream) {
    if (stream->connection) {
        Failure ignored;
        if (!stream->id.empty()) { // not committed: nothing stays behind
            stream->connection->exec("ROLLBACK", stream->store->statement_timeout_ms, ignored);
        }
        stream->store->pool->checkin(std::move(stream->connection));
    }
    delete stream;
}

const curlcache_backend_plugin k_plugin = {
    .abi_major = CURLCACHE_BACKEND_ABI_MAJOR,
    .abi_minor = CURLCACHE_BACKEND_ABI_MINOR,
    .size = sizeof(curlcache_backend_plugin),
    .name = "postgres",
    .version = CURLCACHE_POSTGRES_VERSION,
    .description = "PostgreSQL (libpq)",
    .open = open_store,
    .close = close_store,
    .location = location,
    .get = get,
    .put = put,
    .remove = remove_key,
    .scan = scan,
    .clear = clear,
    .usage = usage,
    .purge_expired = purge_expired,
    .flush = flush,
    .vacuum = vacuum,
    .try_lock = try_lock,
    .unlock = unlock,
    .get_metadata = get_metadata,
    .begin_put = begin_put,
    .append = append,
    .commit = commit,
    .close_stream = close_stream,
};

} // namespace

extern "C" CURLCACHE_BACKEND_EXPORT const curlcache_backend_plugin* curlcache_backend_plugin_entry(void) {
    return &k_plugin;
}
