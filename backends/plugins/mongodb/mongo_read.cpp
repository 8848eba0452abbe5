// Values read in pieces (backend ABI 1.1), so that a large hit streams with bounded memory.
// A value is its head document's bytes followed by its GridFS file's. A reader keeps the
// head it found and reads the file it names a range at a time: one find on the chunks
// collection by files_id and n (GridFS's unique index on both), about four 255 KiB chunks
// per range. Every stored version has a fresh file id, and the file of a replaced or removed
// value is deleted after its head was switched, so a reader of a replaced value finds chunks
// missing and fails: it never returns bytes of the new one. A value without a file lives in
// its head document (mongodb, up to 15 MiB): that document is the reader's, read once.
#include "backends/plugins/mongodb/mongo_store.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace curlcache::plugins::mongodb {

namespace {

Failure replaced(const curlcache_backend_value& value) {
    return {CURLCACHE_BACKEND_FAILURE,
            value.store->location + ": " + value.key + " was replaced while it was read"};
}

// The length and chunk size of the reader's file into `value`; *missing when the file is
// gone (the value was replaced since its head was read).
bool find_file(Lease& lease, curlcache_backend_value& value, bool* missing, Failure& failure) {
    Store* store = value.store;
    mongoc_collection_t* files = lease.collection(store->bucket_name + ".files");
    Bson filter, opts;
    BSON_APPEND_VALUE(filter.get(), "_id", &value.file);
    BCON_APPEND(opts.get(), "projection", "{", "length", BCON_INT32(1), "chunkSize", BCON_INT32(1),
                "}", "limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true));
    mongoc_cursor_t* cursor =
        mongoc_collection_find_with_opts(files, filter.get(), opts.get(), nullptr);
    int64_t length = -1;
    const bool ok = each(lease, cursor, "reading from GridFS", failure, [&](const bson_t* doc) {
        length = int_of(doc, "length");
        value.chunk_size = int_of(doc, "chunkSize");
        return false;
    });
    mongoc_collection_destroy(files);
    *missing = ok && length < 0;
    if (!ok || *missing) {
        return false;
    }
    if (value.chunk_size <= 0 || static_cast<uint64_t>(length) + value.inline_size != value.size) {
        failure = {CURLCACHE_BACKEND_FAILURE, store->location + ": the GridFS file of " +
                                                  value.key + " does not match its head"};
        return false;
    }
    return true;
}

} // namespace

curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found, uint64_t* size,
                                    curlcache_backend_value** value,
                                    curlcache_backend_error* error) {
    *found = 0;
    std::unique_ptr<curlcache_backend_value> opened;
    const auto status =
        on(store, store->heads, error,
           [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
               // Twice at most: a file deleted under us means a newer head to read.
               for (int attempt = 0; attempt < 2; ++attempt) {
                   bson_t* head = nullptr;
                   if (!find_head(lease, heads, key, &head, failure)) {
                       return false;
                   }
                   if (head == nullptr) {
                       return true; // a miss
                   }
                   auto reader = std::make_unique<curlcache_backend_value>();
                   reader->head = head;
                   reader->size = static_cast<uint64_t>(int_of(head, "size"));
                   bool missing = false;
                   if (reader->size <= whole_limit) {
                       const bool ok =
                           deliver_whole(store, lease, head, key, sink, &missing, failure);
                       if (missing) {
                           continue;
                       }
                       *found = ok ? 1 : 0;
                       return ok;
                   }
                   reader->store = store;
                   reader->key = key;
                   binary_of(head, "value", &reader->inline_data, &reader->inline_size);
                   bson_iter_t it;
                   if (bson_iter_init_find(&it, head, "file")) {
                       bson_value_copy(bson_iter_value(&it), &reader->file);
                       reader->has_file = true;
                       if (!find_file(lease, *reader, &missing, failure)) {
                           if (missing) {
                               continue;
                           }
                           return false;
                       }
                   } else if (reader->inline_size != reader->size) {
                       failure = {CURLCACHE_BACKEND_FAILURE,
                                  store->location + ": the head of " + reader->key + " is corrupt"};
                       return false;
                   }
                   opened = std::move(reader);
                   *found = 1;
                   return true;
               }
               return true; // replaced twice while we looked: a miss
           });
    if (status != CURLCACHE_BACKEND_OK || *found == 0) {
        return status;
    }
    note_access(store, key);
    if (opened) {
        *size = opened->size;
        *value = opened.release();
    }
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error) {
    Store* store = value->store;
    if (offset > value->size || size > value->size - offset) {
        return report({CURLCACHE_BACKEND_FAILURE,
                       std::string(store->backend) + ": read past the end of a value"},
                      error);
    }
    const uint64_t end = offset + size, head = value->inline_size;
    uint64_t at = offset;
    if (at < head) {
        const uint64_t n = std::min(end, head) - at;
        std::memcpy(into, value->inline_data + at, n);
        at += n;
    }
    if (at == end) {
        return CURLCACHE_BACKEND_OK;
    }
    const auto chunk = static_cast<uint64_t>(value->chunk_size);
    const uint64_t length = value->size - head; // of the file
    const uint64_t first = (at - head) / chunk, last = (end - 1 - head) / chunk;
    return on(
        store, store->bucket_name + ".chunks", error,
        [&](Lease& lease, mongoc_collection_t* chunks, Failure& failure) {
            Bson filter, opts;
            BSON_APPEND_VALUE(filter.get(), "files_id", &value->file);
            BCON_APPEND(filter.get(), "n", "{", "$gte", BCON_INT64(static_cast<int64_t>(first)),
                        "$lte", BCON_INT64(static_cast<int64_t>(last)), "}");
            BCON_APPEND(opts.get(), "sort", "{", "n", BCON_INT32(1), "}", "projection", "{", "n",
                        BCON_INT32(1), "data", BCON_INT32(1), "}");
            mongoc_cursor_t* cursor =
                mongoc_collection_find_with_opts(chunks, filter.get(), opts.get(), nullptr);
            uint64_t expected = first;
            bool intact = true;
            const bool ok =
                each(lease, cursor, "reading from GridFS", failure, [&](const bson_t* doc) {
                    uint32_t got = 0;
                    const uint8_t* data = nullptr;
                    binary_of(doc, "data", &data, &got);
                    const uint64_t chunk_at = expected * chunk;
                    const uint64_t want = std::min(chunk, length - chunk_at);
                    if (static_cast<uint64_t>(int_of(doc, "n")) != expected || data == nullptr ||
                        got != want) {
                        intact = false;
                        return false;
                    }
                    const uint64_t from = std::max(at, head + chunk_at),
                                   to = std::min(end, head + chunk_at + want);
                    std::memcpy(into + (from - offset), data + (from - head - chunk_at), to - from);
                    ++expected;
                    return true;
                });
            if (ok && (!intact || expected != last + 1)) {
                failure = replaced(*value); // a chunk gone, or of another length: not this version
                return false;
            }
            return ok;
        });
}

void close_value(curlcache_backend_value* value) {
    delete value;
}

} // namespace curlcache::plugins::mongodb
