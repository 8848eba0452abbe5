// What the MongoDB plugins' files share (the design is in mongo_backend.cpp): the store with
// its small pool of libmongoc clients, a stream, errors, and the steps every write shares.
#pragma once

#include <curlcache/backend.h>
#include <mongoc/mongoc.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace curlcache::plugins::mongodb {

inline constexpr size_t k_touch_batch = 64;        // accesses written in one bulk update
inline constexpr int64_t k_down_ms = 1000;         // after a lost server: fail at once this long
inline constexpr int32_t k_chunk = 255 * 1024;     // GridFS chunk size (the GridFS default)

// An error on its way to curlcache: status + one line without credentials.
struct Failure {
    curlcache_backend_status status = CURLCACHE_BACKEND_FAILURE;
    std::string message;
};

int64_t now_ms();
curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error);

// A pooled libmongoc client with, once used, its GridFS bucket (kept: libmongoc checks the
// bucket's indexes once per bucket object, so a new one per upload would cost a query).
struct Pooled {
    mongoc_client_t* client = nullptr;
    mongoc_gridfs_bucket_t* bucket = nullptr;
};

// A bson_t on the stack, destroyed at scope end.
struct Bson {
    bson_t doc = BSON_INITIALIZER;
    Bson() = default;
    Bson(const Bson&) = delete;
    Bson& operator=(const Bson&) = delete;
    ~Bson() { bson_destroy(&doc); }
    bson_t* get() { return &doc; }
};

} // namespace curlcache::plugins::mongodb

struct curlcache_backend_store {
    using Failure = curlcache::plugins::mongodb::Failure;

    const curlcache_backend_host* host = nullptr;
    const char* backend = "mongodb";  // the plugin's name, for messages
    mongoc_uri_t* uri = nullptr;      // owned
    std::string database, heads, locks, bucket_name;
    std::string location;             // never with credentials
    uint64_t max_size = 0;
    uint64_t inline_limit = 0;        // values up to this live in the head document
    bool always_gridfs = false;       // gridfs: every value's bytes in the bucket
    std::string owner;                // this store's coalescing-lock owner id

    std::mutex pool_mutex;
    std::vector<curlcache::plugins::mongodb::Pooled> idle;
    pid_t pid = 0;
    std::atomic<int64_t> down_until{0};

    std::mutex touch_mutex;
    std::vector<std::pair<std::string, int64_t>> touches;

    ~curlcache_backend_store();
    using Pooled = curlcache::plugins::mongodb::Pooled;
    // A client of this process (a new one when none is idle), or none with failure set
    // while the server is marked down.
    Pooled checkout(Failure& failure);
    // Back to the pool; `lost` (a network error or timeout) destroys it and marks the server
    // down for k_down_ms instead.
    void checkin(Pooled pooled, bool lost);
    // The pooled client's bucket, opened on first use; nullptr with error set.
    mongoc_gridfs_bucket_t* bucket(Pooled& pooled, bson_error_t* error);
    // The failure of a libmongoc call, classified: timeouts and lost connections are
    // `lost`.
    Failure failure_of(const bson_error_t& error, std::string_view what, bool* lost) const;
};

struct curlcache_backend_stream {
    curlcache_backend_store* store = nullptr;
    curlcache::plugins::mongodb::Pooled pooled; // held while the upload runs
    mongoc_stream_t* upload = nullptr;      // nullptr while the value fits in `buffer`
    bson_oid_t file{};
    std::string buffer;
    uint64_t tail = 0;                      // bytes appended
    bool lost = false;
    bool committed = false;
};

// A value read in pieces (ABI 1.1): its head document (the value's first bytes, or all of
// them when it has no file) and the GridFS file it opened, read chunk by chunk.
struct curlcache_backend_value {
    curlcache_backend_store* store = nullptr;
    std::string key;
    bson_t* head = nullptr;                // owned
    const uint8_t* inline_data = nullptr;  // the head's value, inside `head`
    uint32_t inline_size = 0;
    bool has_file = false;
    bson_value_t file{};                   // owned copy of the file id
    uint64_t size = 0;
    int64_t chunk_size = 0;                // the file's chunkSize
    ~curlcache_backend_value() {
        if (has_file) {
            bson_value_destroy(&file);
        }
        if (head != nullptr) {
            bson_destroy(head);
        }
    }
};

namespace curlcache::plugins::mongodb {

using Store = curlcache_backend_store;
using Stream = curlcache_backend_stream;

// RAII lease of a pooled client.
class Lease {
public:
    explicit Lease(Store* store, Pooled adopted = {}) : m_store(store), m_pooled(adopted) {}
    ~Lease() {
        if (m_pooled.client != nullptr) {
            m_store->checkin(m_pooled, m_lost);
        }
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    bool acquire(Failure& failure) { return (m_pooled = m_store->checkout(failure)).client != nullptr; }
    mongoc_client_t* client() const { return m_pooled.client; }
    mongoc_gridfs_bucket_t* bucket(bson_error_t* error) { return m_store->bucket(m_pooled, error); }
    mongoc_collection_t* collection(const std::string& name) const {
        return mongoc_client_get_collection(m_pooled.client, m_store->database.c_str(), name.c_str());
    }
    // Records a libmongoc failure (and whether it cost the connection).
    bool lost() const { return m_lost; }
    Failure fail(const bson_error_t& error, std::string_view what) {
        bool lost = false;
        Failure failure = m_store->failure_of(error, what, &lost);
        m_lost = m_lost || lost;
        return failure;
    }

private:
    Store* m_store;
    Pooled m_pooled;
    bool m_lost = false;
};

inline int64_t int_of(const bson_t* doc, const char* key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

// The bytes of the binary field `key` (none: data nullptr, length 0).
inline void binary_of(const bson_t* doc, const char* key, const uint8_t** data, uint32_t* length) {
    bson_iter_t it;
    bson_subtype_t subtype;
    *data = nullptr;
    *length = 0;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BINARY(&it)) {
        bson_iter_binary(&it, &subtype, length, data);
    }
}

// Runs fn(collection) -> bool on a leased client's collection `name`.
template <class Fn>
curlcache_backend_status on(Store* store, const std::string& name, curlcache_backend_error* error,
                            Fn&& fn) try {
    Lease lease(store);
    Failure failure;
    if (!lease.acquire(failure)) {
        return report(failure, error);
    }
    mongoc_collection_t* collection = lease.collection(name);
    const bool ok = fn(lease, collection, failure);
    mongoc_collection_destroy(collection);
    return ok ? CURLCACHE_BACKEND_OK : report(failure, error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, std::string(store->backend) + ": out of memory"}, error);
}

// Iterates a cursor; false (failure set) when it failed.
template <class Fn>
bool each(Lease& lease, mongoc_cursor_t* cursor, std::string_view what, Failure& failure, Fn&& fn) {
    const bson_t* doc = nullptr;
    bool more = true;
    while (more && mongoc_cursor_next(cursor, &doc)) {
        more = fn(doc);
    }
    bson_error_t error;
    const bool ok = !mongoc_cursor_error(cursor, &error);
    if (!ok) {
        failure = lease.fail(error, what);
    }
    mongoc_cursor_destroy(cursor);
    return ok;
}

// mongo_open.cpp
curlcache_backend_status open_store(const curlcache_backend_host* host, bool gridfs, Store** out,
                                    curlcache_backend_error* error);

// mongo_files.cpp: values in GridFS and streamed values.
// Uploads `pieces` into a new file (at most one chunk per write); its id in *file.
bool upload_file(Store* store, Lease& lease, const curlcache_backend_bytes* pieces, size_t count,
                 bson_oid_t* file, Failure& failure);
// Streams the file's bytes into the sink; *missing when it is gone (replaced meanwhile).
bool download_file(Store* store, Lease& lease, const bson_value_t* file,
                   const curlcache_backend_sink* sink, bool* missing, Failure& failure);
void delete_file(Store* store, Lease& lease, const bson_value_t* file);
curlcache_backend_status begin_put(Store* store, uint64_t size_hint, Stream** out,
                                   curlcache_backend_error* error);
curlcache_backend_status append(Stream* stream, const char* data, size_t size,
                                curlcache_backend_error* error);
curlcache_backend_status commit(Stream* stream, const curlcache_backend_metadata* meta,
                                const char* head, size_t head_size, curlcache_backend_error* error);
void close_stream(Stream* stream);

// mongo_backend.cpp: the last step of every write. Replaces the head document of meta->key
// (value = `inline_value`, then the bytes of `file` when given), deletes the file of the
// head it replaced, and evicts beyond max_size.
bool switch_head(Store* store, Lease& lease, const curlcache_backend_metadata& meta,
                 uint64_t total, std::string_view inline_value, const bson_oid_t* file,
                 Failure& failure);
curlcache_backend_status remove_key(Store* store, const char* key, int* existed,
                                    curlcache_backend_error* error);
// The steps of a read. The fresh head document of `key` in *head (a copy, the caller's to
// bson_destroy), nullptr on a miss.
bool find_head(Lease& lease, mongoc_collection_t* heads, const char* key, bson_t** head,
               Failure& failure);
// The value `head` names (its bytes, then its file's) into the sink; *missing when its file
// vanished before anything was delivered (replaced meanwhile: read the head again).
bool deliver_whole(Store* store, Lease& lease, const bson_t* head, const char* key,
                   const curlcache_backend_sink* sink, bool* missing, Failure& failure);
// Notes a hit for LRU eviction (written in batches).
void note_access(Store* store, const char* key);

// mongo_read.cpp: values read in pieces (ABI 1.1).
curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found,
                                    uint64_t* size, curlcache_backend_value** value,
                                    curlcache_backend_error* error);
curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error);
void close_value(curlcache_backend_value* value);

} // namespace curlcache::plugins::mongodb
