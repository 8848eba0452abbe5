// Values in GridFS (libmongoc's mongoc_gridfs_bucket_*): uploads under a fresh file id,
// written at most one chunk per call (a failed chunk insert inside a larger write was seen
// to make the client retry forever), downloads streamed into the host's sink, deletion by
// file id; and streamed values, buffered while they fit in a head document.
#include "backends/plugins/mongodb/mongo_store.h"

#include <algorithm>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace curlcache::plugins::mongodb {

namespace {

bson_value_t id_value(const bson_oid_t& oid) {
    bson_value_t id{};
    id.value_type = BSON_TYPE_OID;
    bson_oid_copy(&oid, &id.value.v_oid);
    return id;
}

// Writes `data` into an upload stream, one chunk at most per call.
bool write_chunks(mongoc_stream_t* upload, const char* data, size_t size, bson_error_t* error) {
    while (size > 0) {
        const size_t take = std::min(size, static_cast<size_t>(k_chunk));
        if (mongoc_stream_write(upload, const_cast<char*>(data), take, 0) != static_cast<ssize_t>(take)) {
            mongoc_gridfs_bucket_stream_error(upload, error);
            return false;
        }
        data += take;
        size -= take;
    }
    return true;
}

mongoc_stream_t* open_upload(mongoc_gridfs_bucket_t* bucket, const bson_oid_t& file, bson_error_t* error) {
    const bson_value_t id = id_value(file);
    char name[25];
    bson_oid_to_string(&file, name);
    return mongoc_gridfs_bucket_open_upload_stream_with_id(bucket, &id, name, nullptr, error);
}

// Finishes an upload (the files document is written by close); false when any chunk or the
// files document failed.
bool finish_upload(mongoc_stream_t* upload, bson_error_t* error) {
    if (mongoc_stream_close(upload) != 0) {
        mongoc_gridfs_bucket_stream_error(upload, error);
        return false;
    }
    return true;
}

} // namespace

bool upload_file(Store* store, Lease& lease, const curlcache_backend_bytes* pieces, size_t count,
                 bson_oid_t* file, Failure& failure) {
    bson_oid_init(file, nullptr);
    bson_error_t error;
    mongoc_gridfs_bucket_t* bucket = lease.bucket(&error);
    if (bucket == nullptr) {
        failure = lease.fail(error, "opening the GridFS bucket " + store->bucket_name);
        return false;
    }
    mongoc_stream_t* upload = open_upload(bucket, *file, &error);
    bool ok = upload != nullptr;
    for (size_t i = 0; ok && i < count; ++i) {
        ok = write_chunks(upload, pieces[i].data, pieces[i].size, &error);
    }
    if (upload != nullptr) {
        if (!ok) {
            mongoc_gridfs_bucket_abort_upload(upload); // deletes the chunks by file id
        } else {
            ok = finish_upload(upload, &error);
        }
        mongoc_stream_destroy(upload);
    }
    if (!ok) {
        failure = lease.fail(error, "uploading into GridFS");
        if (!lease.lost()) {
            const bson_value_t id = id_value(*file);
            delete_file(store, lease, &id);
        }
    }
    return ok;
}

bool download_file(Store* store, Lease& lease, const bson_value_t* file,
                   const curlcache_backend_sink* sink, bool* missing, Failure& failure) {
    *missing = false;
    bson_error_t error;
    mongoc_gridfs_bucket_t* bucket = lease.bucket(&error);
    if (bucket == nullptr) {
        failure = lease.fail(error, "opening the GridFS bucket " + store->bucket_name);
        return false;
    }
    mongoc_stream_t* download = mongoc_gridfs_bucket_open_download_stream(bucket, file, &error);
    bool ok = download != nullptr, refused = false, wrote = false;
    if (ok) {
        std::vector<char> buffer(static_cast<size_t>(k_chunk));
        for (;;) {
            const ssize_t got = mongoc_stream_read(download, buffer.data(), buffer.size(), 1, 0);
            if (got == 0) {
                break;
            }
            if (got < 0) {
                mongoc_gridfs_bucket_stream_error(download, &error);
                ok = false;
                break;
            }
            wrote = true;
            if (sink->write(sink->context, buffer.data(), static_cast<size_t>(got)) != 0) {
                ok = false;
                refused = true;
                break;
            }
        }
        mongoc_stream_destroy(download);
    }
    if (refused) {
        failure = {CURLCACHE_BACKEND_FAILURE, std::string(store->backend) + ": the host refused the value"};
    } else if (!ok) {
        // Deleted under us: the head was switched to a newer version meanwhile.
        *missing = !wrote && error.domain == MONGOC_ERROR_GRIDFS;
        failure = lease.fail(error, "reading from GridFS");
    }
    return ok;
}

// The files document first (a reader then fails to open the file rather than reading a
// part of it), then the chunks; also for chunks whose upload never finished.
void delete_file(Store* store, Lease& lease, const bson_value_t* file) {
    for (auto [suffix, field] : {std::pair{".files", "_id"}, std::pair{".chunks", "files_id"}}) {
        mongoc_collection_t* collection = lease.collection(store->bucket_name + suffix);
        Bson selector;
        BSON_APPEND_VALUE(selector.get(), field, file);
        bson_error_t error;
        if (!mongoc_collection_delete_many(collection, selector.get(), nullptr, nullptr, &error)) {
            lease.fail(error, "deleting a GridFS file"); // left for a later clear
        }
        mongoc_collection_destroy(collection);
    }
}

curlcache_backend_status begin_put(Store* store, uint64_t /*size_hint*/, Stream** out,
                                   curlcache_backend_error* error) try {
    auto stream = std::make_unique<Stream>();
    stream->store = store;
    *out = stream.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, std::string(store->backend) + ": out of memory"}, error);
}

curlcache_backend_status append(Stream* stream, const char* data, size_t size,
                                curlcache_backend_error* error) try {
    Store* store = stream->store;
    stream->tail += size;
    if (stream->upload == nullptr && !store->always_gridfs &&
        stream->buffer.size() + size <= store->inline_limit) {
        stream->buffer.append(data, size);
        return CURLCACHE_BACKEND_OK;
    }
    bson_error_t bson_error;
    if (stream->upload == nullptr) { // the value goes to GridFS from here on
        Failure failure;
        stream->pooled = store->checkout(failure);
        if (stream->pooled.client == nullptr) {
            return report(failure, error);
        }
        bson_oid_init(&stream->file, nullptr);
        mongoc_gridfs_bucket_t* bucket = store->bucket(stream->pooled, &bson_error);
        stream->upload = bucket != nullptr ? open_upload(bucket, stream->file, &bson_error) : nullptr;
        if (stream->upload == nullptr ||
            !write_chunks(stream->upload, stream->buffer.data(), stream->buffer.size(), &bson_error)) {
            bool lost = false;
            const Failure failed = store->failure_of(bson_error, "uploading into GridFS", &lost);
            stream->lost = lost;
            return report(failed, error);
        }
        std::string().swap(stream->buffer);
    }
    if (!write_chunks(stream->upload, data, size, &bson_error)) {
        bool lost = false;
        const Failure failed = store->failure_of(bson_error, "uploading into GridFS", &lost);
        stream->lost = lost;
        return report(failed, error);
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, std::string(stream->store->backend) + ": out of memory"}, error);
}

curlcache_backend_status commit(Stream* stream, const curlcache_backend_metadata* meta, const char* head,
                                size_t head_size, curlcache_backend_error* error) try {
    Store* store = stream->store;
    const uint64_t total = head_size + stream->tail;
    if (store->max_size != 0 && total > store->max_size) {
        return remove_key(store, meta->key, nullptr, error); // close_stream drops the upload
    }
    if (stream->upload == nullptr) {
        Lease lease(store);
        Failure failure;
        std::string value(head, head_size);
        value += stream->buffer;
        if (!lease.acquire(failure) || !switch_head(store, lease, *meta, total, value, nullptr, failure)) {
            return report(failure, error);
        }
        stream->committed = true;
        return CURLCACHE_BACKEND_OK;
    }
    bson_error_t bson_error;
    const bool uploaded = finish_upload(stream->upload, &bson_error);
    mongoc_stream_destroy(stream->upload);
    stream->upload = nullptr;
    Lease lease(store, stream->pooled);
    stream->pooled = {};
    stream->committed = true; // from here on, the file is this function's to delete
    Failure failure;
    if (!uploaded) {
        failure = lease.fail(bson_error, "uploading into GridFS");
    }
    if (!uploaded || !switch_head(store, lease, *meta, total, std::string_view(head, head_size),
                                  &stream->file, failure)) {
        if (!lease.lost()) {
            const bson_value_t id = id_value(stream->file);
            delete_file(store, lease, &id);
        }
        return report(failure, error);
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, std::string(stream->store->backend) + ": out of memory"}, error);
}

void close_stream(Stream* stream) {
    if (stream->upload != nullptr) {
        if (!stream->committed && !stream->lost) {
            mongoc_gridfs_bucket_abort_upload(stream->upload); // its chunks, by file id
        }
        mongoc_stream_destroy(stream->upload);
    }
    if (stream->pooled.client != nullptr) {
        stream->store->checkin(stream->pooled, stream->lost);
    }
    delete stream;
}

} // namespace curlcache::plugins::mongodb
