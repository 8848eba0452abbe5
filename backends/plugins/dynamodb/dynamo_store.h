// What the DynamoDB plugin's files share: the store, a stream, the item layout's helpers
// and the steps of a write (the design is in dynamo_backend.cpp).
#pragma once

#include "backends/plugins/dynamodb/dynamo_client.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::plugins::dynamodb {

// Bytes per chunk item, and the most a head item carries inline (with the URL): DynamoDB
// items are limited to 400 KB, attribute names and the other attributes included.
inline constexpr size_t k_chunk = 350 * 1000;
// A chunk item without a head of its version is a crashed writer's (or a stream still being
// written, which takes at most a download's time) once it is this old: purge removes it.
inline constexpr int64_t k_orphan_seconds = 3600;
// max_size: a Scan of the heads re-counts the table at least this often while writing.
inline constexpr int64_t k_recount_ms = 30000;

int64_t now_ms();
int64_t now_us();
Json text(std::string_view value);  // {"S": value}
Json number(int64_t value);         // {"N": "value"}
Json binary(std::string_view bytes); // {"B": base64}
std::string text_of(const Json& item, const char* name);  // "" when absent
int64_t number_of(const Json& item, const char* name);    // 0 when absent
bool binary_of(const Json& item, const char* name, std::string& out); // false when corrupt
// A chunk's key names its version alone (a stream learns its cache key only at commit):
// "VERSION#N", unique because versions are random 64-bit ids.
std::string chunk_key(std::string_view version, uint64_t n);
std::string lock_key(std::string_view key);
std::string new_version(); // 16 random hex digits
curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error);

} // namespace curlcache::plugins::dynamodb

struct curlcache_backend_store {
    using Client = curlcache::plugins::dynamodb::Client;
    using Failure = curlcache::plugins::dynamodb::Failure;
    using Json = curlcache::plugins::dynamodb::Json;

    const curlcache_backend_host* host = nullptr;
    std::unique_ptr<Client> client;
    std::string table;
    std::string location;
    uint64_t max_size = 0;
    std::string owner; // this process's coalescing locks carry it

    std::mutex size_mutex; // max_size: this process's estimate of the table's value bytes
    int64_t estimate = -1; // -1: unknown, count with a Scan
    int64_t counted_at_ms = 0;

    // Calls `op` on this store's table (TableName added to `request`).
    bool call(const char* op, Json request, Json& response, Failure& failure);
};

struct curlcache_backend_stream {
    curlcache_backend_store* store = nullptr;
    std::string version;
    std::string buffer;
    uint64_t chunks = 0;
    bool committed = false;
};

// A value read in pieces (ABI 1.1): the version it opened, its inline bytes, and the chunk
// item read last (a range of about 1 MiB spans three or four 350 KB chunks; the next range
// starts in the last one).
struct curlcache_backend_value {
    curlcache_backend_store* store = nullptr;
    std::string key;
    std::string version;
    std::string inline_bytes; // the head's b: the value's first bytes
    uint64_t size = 0;
    uint64_t chunks = 0;
    uint64_t cached_n = 0; // 0: none
    std::string cached;
};

namespace curlcache::plugins::dynamodb {

using Store = curlcache_backend_store;
using Stream = curlcache_backend_stream;

// dynamo_open.cpp
curlcache_backend_status open_store(const curlcache_backend_host* host, Store** out,
                                    curlcache_backend_error* error);

// dynamo_backend.cpp: the steps of a write.
bool put_chunk(Store* store, std::string_view version, uint64_t n, std::string_view data,
               Failure& failure);
// Writes the head item last (inline: the value's first bytes, or all of it), then removes
// the chunks of the version it replaced; counts the value for max_size.
bool put_head(Store* store, const curlcache_backend_metadata& meta, std::string_view version,
              uint64_t chunks, std::string_view inline_bytes, uint64_t size, Failure& failure);
// Deletes items by key, 25 per BatchWriteItem.
bool delete_keys(Store* store, const std::vector<std::string>& keys, Failure& failure);
void drop_chunks(Store* store, std::string_view version, uint64_t chunks);
curlcache_backend_status remove_key(Store* store, const char* key, int* existed,
                                    curlcache_backend_error* error);
// Removes the head only while it is still `version` (an eviction or purge that raced a
// new write leaves the new value alone); true when it went.
bool remove_version(Store* store, const std::string& key, const std::string& version,
                    Failure& failure);

// dynamo_backend.cpp: the steps of a read.
// The head item of `key`, or an empty object on a miss (absent, not a head, expired).
bool read_head(Store* store, const std::string& key, Json& head, Failure& failure);
// Chunk n of a version: true with its bytes, true with `gone` when the item is not there.
bool read_chunk(Store* store, const std::string& version, uint64_t n, std::string& bytes, bool& gone,
                Failure& failure);
// Records an access for LRU eviction (only while the head is still `version`).
void touch(Store* store, const std::string& key, const std::string& version);
// get(), starting from the head `read` when given (else it reads the head itself).
curlcache_backend_status get_whole(Store* store, const char* key, const Json* read,
                                   const curlcache_backend_sink* sink, int* found,
                                   curlcache_backend_error* error);

// dynamo_read.cpp: values read in pieces (ABI 1.1).
curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found,
                                    uint64_t* size, curlcache_backend_value** value,
                                    curlcache_backend_error* error);
curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error);
void close_value(curlcache_backend_value* value);

// dynamo_scan.cpp: every item of the table (a Scan, page by page) through fn until it
// returns false; scan, clear, usage, purge and eviction.
bool scan_items(Store* store, const Json& parameters, const std::function<bool(const Json&)>& fn,
                Failure& failure);
bool evict(Store* store, uint64_t incoming, Failure& failure);
curlcache_backend_status scan(Store* store, curlcache_backend_visit visit, void* context,
                              curlcache_backend_error* error);
curlcache_backend_status clear(Store* store, curlcache_backend_error* error);
curlcache_backend_status usage(Store* store, curlcache_backend_usage* usage,
                               curlcache_backend_error* error);
curlcache_backend_status purge_expired(Store* store, int64_t now, uint64_t* removed,
                                       curlcache_backend_error* error);

// dynamo_stream.cpp: streamed values and coalescing locks.
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

} // namespace curlcache::plugins::dynamodb
