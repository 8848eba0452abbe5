// The MongoDB and GridFS backends, plugins on curlcache's backend ABI (curlcache/backend.h),
// built from the same files (CURLCACHE_MONGO_GRIDFS selects gridfs), with libmongoc.
//
// One cache = one database (mongodb.database, else the cache name unless that is a path,
// else the URL's, else "curlcache"), as requests-cache's MongoCache/GridFSCache use
// db_name. In it:
//   mongodb: "responses"           one head document per entry: _id = the key (unique),
//                                  method, url, status, created, expires, size, accessed
//                                  (µs, indexed: LRU), expire_at (a date, TTL-indexed, only
//                                  when the entry expires), value (binary), and file (a
//                                  GridFS file id) when the value did not fit in 15 MiB
//            "responses.files/.chunks"   that GridFS bucket
//   gridfs:  "fs.files/.chunks"    the bucket: every value's bytes
//            "fs.heads"            the head documents (value holds only a streamed head)
//   both:    "<collection>.locks"  coalescing locks: _id = the key, owner, until (ms)
// A value is the head's value followed by its file's bytes. Each stored version gets a
// fresh file id (never the key: aborting an upload deletes chunks by file id, and a reader
// never combines chunks of two versions); the head is switched to the new file last, in one
// findAndModify that returns the head it replaced, whose file is deleted after. A reader
// whose file vanished (replaced meanwhile) reads the head again. Expired entries are
// filtered on every read, since MongoDB's TTL monitor runs only once a minute.
//
// Settings ([mongodb] or [gridfs] table): url (mongodb:// URI; its password is never
// logged), database, collection (mongodb) or bucket (gridfs), connect_timeout ("1s": one
// server selection, then the transfer goes to the network) and operation_timeout ("5s").
#include "backends/plugins/mongodb/mongo_store.h"

#include <cstring>
#include <ctime>
#include <new>

namespace curlcache::plugins::mongodb {

namespace {

// The time of a put or a hit in `accessed`, in µs: in ms, a put and a hit within the same
// millisecond tied, and eviction took the entry just read for the least recently used one
// (the conformance group's LRU case, once the test server answered within a millisecond).
// Older heads hold ms, so they sort as older than any new access.
int64_t access_time() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// Not expired at `now` (seconds): expires == 0 or expires > now.
void append_fresh(bson_t* filter, int64_t now) {
    BCON_APPEND(filter, "$or", "[", "{", "expires", BCON_INT64(0), "}", "{", "expires", "{", "$gt",
                BCON_INT64(now), "}", "}", "]");
}

int64_t now_s() {
    return now_ms() / 1000;
}

std::string text_of(const bson_t* doc, const char* key) {
    bson_iter_t it;
    uint32_t length = 0;
    const char* text = bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
                           ? bson_iter_utf8(&it, &length) : "";
    return {text, length};
}

// Calls visit with the metadata of a head document.
int visit_head(const bson_t* doc, curlcache_backend_visit visit, void* context) {
    const std::string key = text_of(doc, "_id"), method = text_of(doc, "method"),
                      url = text_of(doc, "url");
    const curlcache_backend_metadata meta{key.c_str(), method.c_str(), url.c_str(),
                                          static_cast<long>(int_of(doc, "status")),
                                          int_of(doc, "created"), int_of(doc, "expires"),
                                          static_cast<uint64_t>(int_of(doc, "size"))};
    return visit(context, &meta);
}

bool write_touches(Store* store, Lease& lease, mongoc_collection_t* heads, Failure& failure) {
    std::vector<std::pair<std::string, int64_t>> batch;
    {
        std::lock_guard lock(store->touch_mutex);
        batch.swap(store->touches);
    }
    if (batch.empty()) {
        return true;
    }
    Bson opts;
    BCON_APPEND(opts.get(), "ordered", BCON_BOOL(false));
    mongoc_bulk_operation_t* bulk = mongoc_collection_create_bulk_operation_with_opts(heads, opts.get());
    for (const auto& [key, at] : batch) {
        Bson selector, update;
        BCON_APPEND(selector.get(), "_id", BCON_UTF8(key.c_str()));
        BCON_APPEND(update.get(), "$max", "{", "accessed", BCON_INT64(at), "}");
        mongoc_bulk_operation_update_one(bulk, selector.get(), update.get(), false);
    }
    bson_error_t error;
    const bool ok = mongoc_bulk_operation_execute(bulk, nullptr, &error) != 0;
    mongoc_bulk_operation_destroy(bulk);
    if (!ok) {
        failure = lease.fail(error, "recording accesses");
    }
    return ok;
}

// Removes least-recently-used entries (and their files) until the total is within max_size.
bool evict(Store* store, Lease& lease, mongoc_collection_t* heads, Failure& failure) {
    if (!write_touches(store, lease, heads, failure)) {
        return false;
    }
    Bson filter, opts;
    BCON_APPEND(opts.get(), "projection", "{", "size", BCON_INT32(1), "file", BCON_INT32(1), "}",
                "sort", "{", "accessed", BCON_INT32(-1), "_id", BCON_INT32(1), "}");
    std::vector<std::string> victims;
    uint64_t running = 0;
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(heads, filter.get(), opts.get(), nullptr);
    if (!each(lease, cursor, "eviction", failure, [&](const bson_t* doc) {
            running += static_cast<uint64_t>(int_of(doc, "size"));
            if (running > store->max_size) {
                victims.push_back(text_of(doc, "_id"));
            }
            return true;
        })) {
        return false;
    }
    for (const std::string& key : victims) {
        Bson query, fields, reply;
        BCON_APPEND(query.get(), "_id", BCON_UTF8(key.c_str()));
        BCON_APPEND(fields.get(), "file", BCON_INT32(1));
        bson_error_t error;
        if (!mongoc_collection_find_and_modify(heads, query.get(), nullptr, nullptr, fields.get(), true,
                                               false, false, reply.get(), &error)) {
            failure = lease.fail(error, "eviction");
            return false;
        }
        bson_iter_t it;
        if (bson_iter_init_find(&it, reply.get(), "value") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            bson_iter_recurse(&it, &it) && bson_iter_find(&it, "file")) {
            delete_file(store, lease, bson_iter_value(&it));
        }
    }
    return true;
}

} // namespace

bool switch_head(Store* store, Lease& lease, const curlcache_backend_metadata& meta, uint64_t total,
                 std::string_view inline_value, const bson_oid_t* file, Failure& failure) {
    mongoc_collection_t* heads = lease.collection(store->heads);
    Bson query, head, fields, reply;
    BCON_APPEND(query.get(), "_id", BCON_UTF8(meta.key));
    BCON_APPEND(head.get(), "_id", BCON_UTF8(meta.key), "method", BCON_UTF8(meta.method), "url",
                BCON_UTF8(meta.url), "status", BCON_INT32(static_cast<int32_t>(meta.status)),
                "created", BCON_INT64(meta.created), "expires", BCON_INT64(meta.expires), "size",
                BCON_INT64(static_cast<int64_t>(total)), "accessed", BCON_INT64(access_time()));
    bson_append_binary(head.get(), "value", -1, BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const uint8_t*>(inline_value.data()),
                       static_cast<uint32_t>(inline_value.size()));
    if (file != nullptr) {
        BSON_APPEND_OID(head.get(), "file", file);
    }
    if (meta.expires > 0) {
        BSON_APPEND_DATE_TIME(head.get(), "expire_at", meta.expires * 1000);
    }
    BCON_APPEND(fields.get(), "file", BCON_INT32(1));
    bson_error_t error;
    bool ok = mongoc_collection_find_and_modify(heads, query.get(), nullptr, head.get(), fields.get(),
                                                false, true, false, reply.get(), &error);
    if (!ok) {
        failure = lease.fail(error, "writing the head of " + std::string(meta.key));
    } else {
        bson_iter_t it;
        if (bson_iter_init_find(&it, reply.get(), "value") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            bson_iter_recurse(&it, &it) && bson_iter_find(&it, "file")) {
            delete_file(store, lease, bson_iter_value(&it)); // the version this one replaced
        }
        ok = store->max_size == 0 || evict(store, lease, heads, failure);
    }
    mongoc_collection_destroy(heads);
    return ok;
}

curlcache_backend_status remove_key(Store* store, const char* key, int* existed,
                                    curlcache_backend_error* error) {
    return on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
        Bson query, fields, reply;
        BCON_APPEND(query.get(), "_id", BCON_UTF8(key));
        BCON_APPEND(fields.get(), "file", BCON_INT32(1));
        bson_error_t error;
        if (!mongoc_collection_find_and_modify(heads, query.get(), nullptr, nullptr, fields.get(), true,
                                               false, false, reply.get(), &error)) {
            failure = lease.fail(error, "removing " + std::string(key));
            return false;
        }
        bson_iter_t it;
        const bool found = bson_iter_init_find(&it, reply.get(), "value") && BSON_ITER_HOLDS_DOCUMENT(&it);
        if (existed != nullptr) {
            *existed = found;
        }
        if (found && bson_iter_recurse(&it, &it) && bson_iter_find(&it, "file")) {
            delete_file(store, lease, bson_iter_value(&it));
        }
        return true;
    });
}

namespace {

void flush(Store* store) {
    curlcache_backend_error ignored{};
    on(store, store->heads, &ignored, [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
        return write_touches(store, lease, heads, failure);
    });
}

void close_store(Store* store) {
    flush(store);
    delete store;
}

const char* location(Store* store) {
    return store->location.c_str();
}

} // namespace

bool find_head(Lease& lease, mongoc_collection_t* heads, const char* key, bson_t** head,
               Failure& failure) {
    *head = nullptr;
    Bson filter, opts;
    BCON_APPEND(filter.get(), "_id", BCON_UTF8(key));
    append_fresh(filter.get(), now_s());
    BCON_APPEND(opts.get(), "limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true));
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(heads, filter.get(), opts.get(), nullptr);
    return each(lease, cursor, "reading " + std::string(key), failure, [&](const bson_t* doc) {
        *head = bson_copy(doc);
        return false;
    });
}

bool deliver_whole(Store* store, Lease& lease, const bson_t* head, const char* key,
                   const curlcache_backend_sink* sink, bool* missing, Failure& failure) {
    *missing = false;
    uint32_t length = 0;
    const uint8_t* bytes = nullptr;
    binary_of(head, "value", &bytes, &length);
    bson_iter_t it;
    bson_value_t file{};
    const bool has_file = bson_iter_init_find(&it, head, "file");
    if (has_file) {
        bson_value_copy(bson_iter_value(&it), &file);
    }
    if (sink->size_hint != nullptr) {
        sink->size_hint(sink->context, static_cast<uint64_t>(int_of(head, "size")));
    }
    bool ok = true;
    if (has_file && length == 0) { // nothing delivered yet: a vanished file is retried
        ok = download_file(store, lease, &file, sink, missing, failure);
    } else {
        ok = sink->write(sink->context, reinterpret_cast<const char*>(bytes), length) == 0;
        if (!ok) {
            failure = {CURLCACHE_BACKEND_FAILURE, std::string(store->backend) +
                                                      ": the host refused the value"};
        } else if (has_file) {
            ok = download_file(store, lease, &file, sink, missing, failure);
            if (*missing) {
                failure = {CURLCACHE_BACKEND_FAILURE, store->location + ": " + key +
                                                          " was replaced while it was read"};
                *missing = false;
                ok = false;
            }
        }
    }
    if (has_file) {
        bson_value_destroy(&file);
    }
    return ok;
}

void note_access(Store* store, const char* key) {
    if (store->max_size == 0) {
        return;
    }
    bool full = false;
    {
        std::lock_guard lock(store->touch_mutex);
        store->touches.emplace_back(key, access_time());
        full = store->touches.size() >= k_touch_batch;
    }
    if (full) {
        flush(store);
    }
}

namespace {

// A hit read whole: open_value with no limit on what it delivers whole.
curlcache_backend_status get(Store* store, const char* key, const curlcache_backend_sink* sink, int* found,
                             curlcache_backend_error* error) {
    uint64_t size = 0;
    curlcache_backend_value* value = nullptr;
    return open_value(store, key, UINT64_MAX, sink, found, &size, &value, error);
}

curlcache_backend_status put(Store* store, const curlcache_backend_metadata* meta,
                             const curlcache_backend_bytes* pieces, size_t count,
                             curlcache_backend_error* error) {
    uint64_t total = 0;
    for (size_t i = 0; i < count; ++i) {
        total += pieces[i].size;
    }
    if (store->max_size != 0 && total > store->max_size) {
        return remove_key(store, meta->key, nullptr, error); // not stored; no stale value left
    }
    return on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t*, Failure& failure) {
        if (!store->always_gridfs && total <= store->inline_limit) {
            std::string value;
            value.reserve(total);
            for (size_t i = 0; i < count; ++i) {
                value.append(pieces[i].data, pieces[i].size);
            }
            return switch_head(store, lease, *meta, total, value, nullptr, failure);
        }
        bson_oid_t file;
        if (!upload_file(store, lease, pieces, count, &file, failure)) {
            return false;
        }
        if (!switch_head(store, lease, *meta, total, {}, &file, failure)) {
            bson_value_t id{};
            id.value_type = BSON_TYPE_OID;
            bson_oid_copy(&file, &id.value.v_oid);
            delete_file(store, lease, &id); // never referenced
            return false;
        }
        return true;
    });
}

curlcache_backend_status scan(Store* store, curlcache_backend_visit visit, void* context,
                              curlcache_backend_error* error) {
    return on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
        Bson filter, opts;
        append_fresh(filter.get(), now_s());
        BCON_APPEND(opts.get(), "projection", "{", "value", BCON_INT32(0), "}");
        mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(heads, filter.get(), opts.get(), nullptr);
        return each(lease, cursor, "scan", failure,
                    [&](const bson_t* doc) { return visit_head(doc, visit, context) != 0; });
    });
}

curlcache_backend_status get_metadata(Store* store, const char* key, curlcache_backend_visit visit,
                                      void* context, curlcache_backend_error* error) {
    return on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
        Bson filter, opts;
        BCON_APPEND(filter.get(), "_id", BCON_UTF8(key));
        append_fresh(filter.get(), now_s());
        BCON_APPEND(opts.get(), "projection", "{", "value", BCON_INT32(0), "}", "limit", BCON_INT64(1),
                    "singleBatch", BCON_BOOL(true));
        mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(heads, filter.get(), opts.get(), nullptr);
        return each(lease, cursor, "reading " + std::string(key), failure, [&](const bson_t* doc) {
            visit_head(doc, visit, context);
            return false;
        });
    });
}

// Deletes every document of the collections `names`.
curlcache_backend_status delete_all(Store* store, std::vector<std::string> names,
                                    curlcache_backend_error* error) {
    return on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t*, Failure& failure) {
        for (const std::string& name : names) {
            mongoc_collection_t* collection = lease.collection(name);
            Bson all;
            bson_error_t error;
            const bool ok = mongoc_collection_delete_many(collection, all.get(), nullptr, nullptr, &error);
            mongoc_collection_destroy(collection);
            if (!ok) {
                failure = lease.fail(error, "clearing " + name);
                return false;
            }
        }
        return true;
    });
}

curlcache_backend_status clear(Store* store, curlcache_backend_error* error) {
    {
        std::lock_guard lock(store->touch_mutex);
        store->touches.clear();
    }
    // Heads first: a reader then finds no head rather than a head without its file.
    return delete_all(store, {store->heads, store->bucket_name + ".files", store->bucket_name + ".chunks"}, error);
}

curlcache_backend_status usage(Store* store, curlcache_backend_usage* usage,
                               curlcache_backend_error* error) {
    *usage = {0, 0, store->max_size};
    return on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
        bson_t match;
        bson_init(&match);
        append_fresh(&match, now_s());
        Bson full;
        BCON_APPEND(full.get(), "pipeline", "[", "{", "$match", BCON_DOCUMENT(&match), "}", "{", "$group",
                    "{", "_id", BCON_NULL, "n", "{", "$sum", BCON_INT32(1), "}", "bytes", "{", "$sum",
                    BCON_UTF8("$size"), "}", "}", "}", "]");
        bson_destroy(&match);
        mongoc_cursor_t* cursor = mongoc_collection_aggregate(heads, MONGOC_QUERY_NONE, full.get(), nullptr,
                                                              nullptr);
        return each(lease, cursor, "usage", failure, [&](const bson_t* doc) {
            *usage = {static_cast<uint64_t>(int_of(doc, "n")), static_cast<uint64_t>(int_of(doc, "bytes")),
                      store->max_size};
            return false;
        });
    });
}

curlcache_backend_status purge_expired(Store* store, int64_t now, uint64_t* removed,
                                       curlcache_backend_error* error) {
    *removed = 0;
    std::vector<std::string> keys;
    auto status = on(store, store->heads, error, [&](Lease& lease, mongoc_collection_t* heads, Failure& failure) {
        Bson filter, opts;
        BCON_APPEND(filter.get(), "expires", "{", "$gt", BCON_INT64(0), "$lte", BCON_INT64(now), "}");
        BCON_APPEND(opts.get(), "projection", "{", "_id", BCON_INT32(1), "}");
        mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(heads, filter.get(), opts.get(), nullptr);
        return each(lease, cursor, "purge", failure, [&](const bson_t* doc) {
            keys.push_back(text_of(doc, "_id"));
            return true;
        });
    });
    for (const std::string& key : keys) {
        int existed = 0;
        if (status == CURLCACHE_BACKEND_OK) {
            status = remove_key(store, key.c_str(), &existed, error);
            *removed += existed != 0;
        }
    }
    return status;
}

// Coalescing locks: a document per key with an owner and an expiry; a lock whose holder
// died is taken over once its time has passed.
curlcache_backend_status try_lock(Store* store, const char* key, int64_t ttl_ms, int* acquired,
                                  curlcache_backend_error* error) {
    *acquired = 0;
    return on(store, store->locks, error, [&](Lease& lease, mongoc_collection_t* locks, Failure& failure) {
        const int64_t now = now_ms();
        Bson lock;
        BCON_APPEND(lock.get(), "_id", BCON_UTF8(key), "owner", BCON_UTF8(store->owner.c_str()), "until",
                    BCON_INT64(now + ttl_ms));
        bson_error_t error;
        if (mongoc_collection_insert_one(locks, lock.get(), nullptr, nullptr, &error)) {
            *acquired = 1;
            return true;
        }
        if (error.code != 11000) {
            failure = lease.fail(error, "locking " + std::string(key));
            return false;
        }
        Bson query, update, reply;
        BCON_APPEND(query.get(), "_id", BCON_UTF8(key), "until", "{", "$lt", BCON_INT64(now), "}");
        BCON_APPEND(update.get(), "$set", "{", "owner", BCON_UTF8(store->owner.c_str()), "until",
                    BCON_INT64(now + ttl_ms), "}");
        if (!mongoc_collection_find_and_modify(locks, query.get(), nullptr, update.get(), nullptr, false,
                                               false, false, reply.get(), &error)) {
            failure = lease.fail(error, "locking " + std::string(key));
            return false;
        }
        bson_iter_t it;
        *acquired = bson_iter_init_find(&it, reply.get(), "value") && BSON_ITER_HOLDS_DOCUMENT(&it);
        return true;
    });
}

curlcache_backend_status unlock(Store* store, const char* key, curlcache_backend_error* error) {
    return on(store, store->locks, error, [&](Lease& lease, mongoc_collection_t* locks, Failure& failure) {
        Bson selector;
        BCON_APPEND(selector.get(), "_id", BCON_UTF8(key), "owner", BCON_UTF8(store->owner.c_str()));
        bson_error_t error;
        if (!mongoc_collection_delete_one(locks, selector.get(), nullptr, nullptr, &error)) {
            failure = lease.fail(error, "unlocking " + std::string(key));
            return false;
        }
        return true;
    });
}

#ifdef CURLCACHE_MONGO_GRIDFS
constexpr bool k_gridfs = true;
#else
constexpr bool k_gridfs = false;
#endif

curlcache_backend_status open(const curlcache_backend_host* host, Store** out, curlcache_backend_error* error) {
    return open_store(host, k_gridfs, out, error);
}

const curlcache_backend_plugin k_plugin = {
    .abi_major = CURLCACHE_BACKEND_ABI_MAJOR,
    .abi_minor = CURLCACHE_BACKEND_ABI_MINOR,
    .size = sizeof(curlcache_backend_plugin),
    .name = k_gridfs ? "gridfs" : "mongodb",
    .version = CURLCACHE_MONGODB_VERSION,
    .description = k_gridfs ? "MongoDB GridFS (libmongoc " MONGOC_VERSION_S ")"
                            : "MongoDB (libmongoc " MONGOC_VERSION_S ")",
    .open = open,
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
    .vacuum = nullptr,
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

} // namespace curlcache::plugins::mongodb

extern "C" CURLCACHE_BACKEND_EXPORT const curlcache_backend_plugin* curlcache_backend_plugin_entry(void) {
    return &curlcache::plugins::mongodb::k_plugin;
}
