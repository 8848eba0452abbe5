// What the PostgreSQL plugin's files share: the store, a stream, the table names, the
// parameter helpers and the steps of a write (the design is in postgres_backend.cpp).
#pragma once

#include "backends/plugins/postgres/pg_pool.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace curlcache::plugins::postgres {

inline constexpr size_t k_chunk = 1 << 20; // bytes per chunk row; values up to this are inline
inline constexpr size_t k_touch_batch = 64; // accesses written in one UPDATE
inline constexpr int k_schema_version = 2;  // 2: totals in T_meta, T_locks

struct Names {
    std::string table;  // "s"."t" or "t", quoted
    std::string chunks; // ... "t_chunks"
    std::string meta;   // ... "t_meta": version, total bytes, entries
    std::string locks;  // ... "t_locks": coalescing locks' owners and expiry
    std::string bare;   // the last part, unquoted: index names
    std::string full;   // as given: lock hashes and messages
};

int64_t now_us();
std::string to_text(int64_t value);
Param text(const std::string& value);
Param bytes(const char* data, size_t size);
int64_t int_at(const PGresult* result, int row, int column);
curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error);

} // namespace curlcache::plugins::postgres

struct curlcache_backend_store {
    using Names = curlcache::plugins::postgres::Names;
    using Pool = curlcache::plugins::postgres::Pool;
    using Connection = curlcache::plugins::postgres::Connection;
    using Failure = curlcache::plugins::postgres::Failure;

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
    struct Holding {
        std::string owner; // its name in T_locks
        bool advisory;     // lock_connection holds the key's advisory lock
    };
    std::map<std::string, Holding> held; // the locks this process holds, by key

    // Runs fn(Connection&) -> bool on a pooled connection; a reused connection that turns
    // out lost (the server restarted) is replaced once.
    template <class Fn> curlcache_backend_status with(Fn&& fn, curlcache_backend_error* error);
    bool write_touches(Connection& connection, Failure& failure);
};

struct curlcache_backend_stream {
    using Connection = curlcache::plugins::postgres::Connection;

    curlcache_backend_store* store = nullptr;
    std::unique_ptr<Connection> connection; // holds the open transaction
    std::string id;                         // the chunks' key until commit
    std::string buffer;
    int32_t chunks = 0;
};

// A value read in pieces (ABI 1.1): its layout (the inline part, then 1 MiB chunk rows)
// and the generation it was opened at.
struct curlcache_backend_value {
    curlcache_backend_store* store = nullptr;
    std::string key;
    uint64_t size = 0;
    uint64_t inline_size = 0;
    std::string generation; // xmin of chunk row 1
};

namespace curlcache::plugins::postgres {

using Store = curlcache_backend_store;
using Stream = curlcache_backend_stream;

// postgres_open.cpp
curlcache_backend_status open_store(const curlcache_backend_host* host, Store** out,
                                    curlcache_backend_error* error);

// postgres_backend.cpp: the steps of a write, in one transaction on one connection.
bool begin_key(Store* store, Connection& connection, const std::string& key, Failure& failure);
bool finish_key(Store* store, Connection& connection, const curlcache_backend_metadata& meta,
                std::string_view inline_value, Failure& failure);
bool put_chunk(Store* store, Connection& connection, const std::string& key, int32_t n,
               std::string_view data, Failure& failure);
curlcache_backend_status remove_key(Store* store, const char* key, int* existed,
                                    curlcache_backend_error* error);
curlcache_backend_status get(Store* store, const char* key, const curlcache_backend_sink* sink,
                             int* found, curlcache_backend_error* error);
// Notes an access for LRU (written in batches).
void note_access(Store* store, const std::string& key);

// postgres_read.cpp: values read in pieces (ABI 1.1).
curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found,
                                    uint64_t* size, curlcache_backend_value** value,
                                    curlcache_backend_error* error);
curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error);
void close_value(curlcache_backend_value* value);

// postgres_stream.cpp: streamed values and coalescing locks.
curlcache_backend_status begin_put(Store* store, uint64_t size_hint, Stream** out,
                                   curlcache_backend_error* error);
curlcache_backend_status append(Stream* stream, const char* data, size_t size,
                                curlcache_backend_error* error);
curlcache_backend_status commit(Stream* stream, const curlcache_backend_metadata* meta,
                                const char* head, size_t head_size, curlcache_backend_error* error);
void close_stream(Stream* stream);
curlcache_backend_status try_lock(Store* store, const char* key, int64_t ttl_ms, int* acquired,
                                  curlcache_backend_error* error);
curlcache_backend_status unlock(Store* store, const char* key, curlcache_backend_error* error);

} // namespace curlcache::plugins::postgres

template <class Fn>
inline curlcache_backend_status curlcache_backend_store::with(Fn&& fn, curlcache_backend_error* error) {
    for (int attempt = 0;; ++attempt) {
        Failure failure;
        std::unique_ptr<Connection> connection = pool->checkout(failure);
        if (!connection) {
            return curlcache::plugins::postgres::report(failure, error);
        }
        const bool ok = fn(*connection, failure);
        const bool lost = connection->lost();
        pool->checkin(std::move(connection));
        if (ok) {
            return CURLCACHE_BACKEND_OK;
        }
        if (!lost || !failure.retry || attempt > 0) {
            return curlcache::plugins::postgres::report(failure, error);
        }
    }
}
