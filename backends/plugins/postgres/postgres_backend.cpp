// The PostgreSQL backend, a plugin on curlcache's backend ABI (curlcache/backend.h).
//
// One cache = one table (postgres.table, else the cache name unless that is a path, else
// "curlcache"; schema-qualified allowed):
//   T          key text primary key, method, url, status, created, expires (indexed),
//              size, accessed (microseconds; indexed, for LRU), value bytea
//   T_chunks   (key, n, data bytea): the bytes after T.value of a value over 1 MiB, so
//              that no statement carries (and no side buffers) a whole 100 MiB value
//   T_meta     the schema version (2; 1 is upgraded), total bytes, entries; a table of
//              another version is refused
//   T_locks    key, owner, expires, taken: the coalescing locks' rows
// A value is T.value followed by its chunks in order. Every write runs in one transaction
// under a per-key transaction lock, and a read is one statement (one snapshot): readers
// see the old value or the new one. Accesses are collected per process and written in
// batches (one UPDATE of up to 64 keys, or at flush/eviction) that skip the rows another
// transaction holds rather than wait for them. T_meta keeps the total size
// and count, updated by every write in its transaction (usage and max_size read one row);
// eviction deletes the least recently used rows in batches found through the accessed
// index. Coalescing locks are session advisory locks on a hash of table and key, held on one
// connection of this process and released by PostgreSQL when the process dies, with a row
// in T_locks whose expiry lets a lock held past its ttl be taken over (postgres_stream.cpp).
//
// Settings ([postgres] table): url (a libpq connection string or URI; the password from it,
// PGPASSWORD or PGPASSFILE, never logged), connect_timeout and statement_timeout (ms, or
// "250ms"/"2s"), table.
#include "backends/plugins/postgres/postgres_store.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>

namespace curlcache::plugins::postgres {

int64_t now_us() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
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

int64_t int_at(const PGresult* result, int row, int column) {
    return std::strtoll(PQgetvalue(result, row, column), nullptr, 10);
}

curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error) {
    std::snprintf(error->message, sizeof error->message, "%s", failure.message.c_str());
    return failure.status;
}

namespace {

int32_t int4_binary(const PGresult* result, int row, int column) {
    uint32_t value = 0;
    std::memcpy(&value, PQgetvalue(result, row, column), sizeof value);
    return static_cast<int32_t>(ntohl(value));
}


} // namespace

} // namespace curlcache::plugins::postgres

using namespace curlcache::plugins::postgres;

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

namespace curlcache::plugins::postgres {

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
        note_access(store, k);
    }
    return status;
}

void note_access(Store* store, const std::string& key) {
    {
        std::lock_guard lock(store->touch_mutex);
        store->touches.emplace_back(key, now_us());
        if (store->touches.size() < k_touch_batch) {
            return;
        }
    }
    curlcache_backend_error ignored{};
    store->with([&](Connection& connection, Failure& failure) {
        return store->write_touches(connection, failure);
    }, &ignored);
}

// BEGIN; the key's transaction lock; the old chunks gone.
bool begin_key(Store* store, Connection& connection, const std::string& key, Failure& failure) {
    return connection.exec("BEGIN", store->statement_timeout_ms, failure) &&
           connection.run("lock_key", {text(store->names.full), text(key)}, false,
                          store->statement_timeout_ms, failure) &&
           connection.run("del_chunks", {text(key)}, false, store->statement_timeout_ms, failure);
}

// Frees `excess` bytes, least recently used first, in batches of at most 256 rows found
// through the accessed index (never ranking the whole table); adds what went to the deltas.
bool evict(Store* store, Connection& connection, const std::string& key, int64_t excess,
           int64_t& bytes_delta, int64_t& entries_delta, Failure& failure) {
    if (!store->write_touches(connection, failure)) {
        return false;
    }
    while (excess > 0) {
        const std::string need = to_text(excess);
        Result gone = connection.run("evict", {text(need), text(key)}, false,
                                     store->statement_timeout_ms, failure);
        if (!gone) {
            return false;
        }
        const int64_t freed = int_at(gone.get(), 0, 0), rows = int_at(gone.get(), 0, 1);
        if (rows == 0) {
            return true; // the rest is being written by others, or it is this key alone
        }
        excess -= freed;
        bytes_delta -= freed;
        entries_delta -= rows;
    }
    return true;
}

// The row (value = its first bytes), eviction, the totals, COMMIT. The totals row in T_meta
// is written last, so that it is locked only from there to COMMIT.
bool finish_key(Store* store, Connection& connection, const curlcache_backend_metadata& meta,
                std::string_view inline_value, Failure& failure) {
    const std::string status = to_text(meta.status), created = to_text(meta.created),
                      expires = to_text(meta.expires), size = to_text(static_cast<int64_t>(meta.size)),
                      accessed = to_text(now_us()), key = meta.key, method = meta.method, url = meta.url;
    const int64_t t = store->statement_timeout_ms;
    Result old = connection.run("old_size", {text(key)}, false, t, failure);
    if (!old || !connection.run("upsert",
                                {text(key), text(method), text(url), text(status), text(created),
                                 text(expires), text(size), text(accessed),
                                 bytes(inline_value.data(), inline_value.size())},
                                false, t, failure)) {
        return false;
    }
    const bool existed = PQntuples(old.get()) == 1;
    int64_t bytes_delta = static_cast<int64_t>(meta.size) - (existed ? int_at(old.get(), 0, 0) : 0);
    int64_t entries_delta = existed ? 0 : 1;
    if (store->max_size != 0) {
        Result total = connection.run("total", {}, false, t, failure);
        if (!total) {
            return false;
        }
        const int64_t excess =
            int_at(total.get(), 0, 0) + bytes_delta - static_cast<int64_t>(store->max_size);
        if (excess > 0 &&
            !evict(store, connection, key, excess, bytes_delta, entries_delta, failure)) {
            return false;
        }
    }
    if (bytes_delta != 0 || entries_delta != 0) {
        const std::string b = to_text(bytes_delta), e = to_text(entries_delta);
        if (!connection.run("add", {text(b), text(e)}, false, t, failure)) {
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
            return result != nullptr &&
                   connection.run("purge_locks", {}, false, store->statement_timeout_ms, failure);
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

} // namespace curlcache::plugins::postgres

namespace {

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
    .open_value = open_value,
    .read_range = read_range,
    .close_value = close_value,
};

} // namespace

extern "C" CURLCACHE_BACKEND_EXPORT const curlcache_backend_plugin* curlcache_backend_plugin_entry(void) {
    return &k_plugin;
}
