// Streamed values (one transaction on one connection from begin_put to commit; the tail
// goes into chunk rows under a private id, renamed to the key at commit) and coalescing
// locks (session advisory locks on this process's one lock connection, with a row each for
// their ttl).
#include "backends/plugins/postgres/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <unistd.h>

namespace curlcache::plugins::postgres {

namespace {

// This process's lock session (a new one after a fork, or once lost: its advisory locks
// went with it), under store->lock_mutex.
Connection* lock_session(Store* store, Failure& failure) {
    if (store->lock_connection && store->lock_generation != fork_generation()) {
        store->lock_connection->abandon(); // the parent's session and its locks
        store->lock_connection.reset();
    }
    if (!store->lock_connection) {
        store->held.clear();
        store->lock_connection = store->pool->checkout(failure);
        store->lock_generation = fork_generation();
    }
    return store->lock_connection.get();
}

// One statement on the lock session; a failure drops the session.
Result lock_run(Store* store, const char* name, const std::vector<Param>& params,
                Failure& failure) {
    Result result =
        store->lock_connection->run(name, params, false, store->statement_timeout_ms, failure);
    if (!result) {
        store->lock_connection.reset();
        store->held.clear();
    }
    return result;
}

std::string new_owner() {
    static std::atomic<uint64_t> counter{0};
    return std::to_string(getpid()) + "-" + std::to_string(now_us()) + "-" +
           std::to_string(++counter);
}

} // namespace

// Coalescing locks: a session advisory lock on a hash of table and key (released by
// PostgreSQL when the process dies) and a row in T_locks that names the holder and when its
// ttl ends. The advisory lock alone says "free" at once when its holder dies; the row lets a
// lock held past its ttl by a live but stuck holder be taken over (taken = true, without the
// advisory lock), as Redis's SET NX PX does. A taker that dies holds it until its ttl ends.
curlcache_backend_status try_lock(Store* store, const char* key, int64_t ttl_ms, int* acquired,
                                  curlcache_backend_error* error) try {
    const std::string k = key, id = store->names.full + ":" + key,
                      ttl = to_text(std::max<int64_t>(ttl_ms, 1)), owner = new_owner();
    std::lock_guard lock(store->lock_mutex);
    Failure failure;
    *acquired = 0;
    if (!lock_session(store, failure)) {
        return report(failure, error);
    }
    const auto mine = store->held.find(k); // held by another thread of this process
    if (mine == store->held.end()) {
        Result advisory = lock_run(store, "try_lock", {text(id)}, failure);
        if (!advisory) {
            return report(failure, error);
        }
        if (std::strcmp(PQgetvalue(advisory.get(), 0, 0), "t") == 0) {
            Result row = lock_run(store, "lock_row", {text(k), text(owner), text(ttl)}, failure);
            if (!row) {
                return report(failure, error);
            }
            if (PQntuples(row.get()) == 1) {
                store->held[k] = {owner, true};
                *acquired = 1;
                return CURLCACHE_BACKEND_OK;
            }
            // A live taker's row: give the advisory lock back.
            if (!lock_run(store, "unlock", {text(id)}, failure)) {
                return report(failure, error);
            }
            return CURLCACHE_BACKEND_OK;
        }
    }
    Result taken = lock_run(store, "take_row", {text(k), text(owner), text(ttl)}, failure);
    if (!taken) {
        return report(failure, error);
    }
    if (PQntuples(taken.get()) == 1) {
        const bool advisory = mine != store->held.end() && mine->second.advisory;
        store->held[k] = {owner, advisory};
        *acquired = 1;
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

curlcache_backend_status unlock(Store* store, const char* key, curlcache_backend_error* error) try {
    const std::string k = key, id = store->names.full + ":" + key;
    std::lock_guard lock(store->lock_mutex);
    Failure failure;
    if (!lock_session(store, failure)) {
        return report(failure, error);
    }
    const auto mine = store->held.find(k);
    if (mine == store->held.end()) {
        return CURLCACHE_BACKEND_OK; // never ours, or gone with a lost session
    }
    const Store::Holding holding = mine->second;
    store->held.erase(mine);
    // The row only while it is still ours (a taker's stays), then the advisory lock.
    if (!lock_run(store, "unlock_row", {text(k), text(holding.owner)}, failure) ||
        (holding.advisory && !lock_run(store, "unlock", {text(id)}, failure))) {
        return report(failure, error);
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
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

} // namespace curlcache::plugins::postgres
