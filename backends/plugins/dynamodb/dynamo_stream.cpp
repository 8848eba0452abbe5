// The DynamoDB plugin's streamed values and coalescing locks.
//
// A stream writes its tail as chunk items of a fresh version id while the download runs
// (350 KB each, so at most one chunk is held); commit writes the rest and the head last,
// with the head bytes inline. A stream closed without commit deletes its chunks (a
// crashed writer's are removed by purge once they are an hour old).
//
// A lock is an item "KEY#lock" put only if it is not there or its holder's expiry has
// passed (a dead holder's lock is taken over); unlock deletes it only if it is still ours.
#include "backends/plugins/dynamodb/dynamo_store.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace curlcache::plugins::dynamodb {

namespace {

bool flush_chunk(Stream* stream, Failure& failure) {
    if (!put_chunk(stream->store, stream->version, stream->chunks + 1, stream->buffer, failure)) {
        return false;
    }
    ++stream->chunks;
    stream->buffer.clear();
    return true;
}

} // namespace

curlcache_backend_status begin_put(Store* store, uint64_t, Stream** out,
                                   curlcache_backend_error* error) try {
    auto stream = std::make_unique<Stream>();
    stream->store = store;
    stream->version = new_version();
    *out = stream.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

curlcache_backend_status append(Stream* stream, const char* data, size_t size,
                                curlcache_backend_error* error) try {
    std::string_view rest(data, size);
    Failure failure;
    while (!rest.empty()) {
        const size_t take = std::min(rest.size(), k_chunk - stream->buffer.size());
        stream->buffer.append(rest.substr(0, take));
        rest.remove_prefix(take);
        if (stream->buffer.size() == k_chunk && !flush_chunk(stream, failure)) {
            return report(failure, error);
        }
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

curlcache_backend_status commit(Stream* stream, const curlcache_backend_metadata* meta,
                                const char* head, size_t head_size, curlcache_backend_error* error) try {
    Store* store = stream->store;
    Failure failure;
    const uint64_t total = head_size + stream->chunks * k_chunk + stream->buffer.size();
    if (store->max_size != 0 && total > store->max_size) {
        return remove_key(store, meta->key, nullptr, error); // not stored; no stale value left
    }
    const size_t url_size = meta->url != nullptr ? std::strlen(meta->url) : 0;
    std::string first(head, head_size);
    if (stream->chunks == 0 && total + url_size <= k_chunk) {
        first += stream->buffer; // small: all of it in the head item
        stream->buffer.clear();
    } else if (!stream->buffer.empty() && !flush_chunk(stream, failure)) {
        return report(failure, error);
    }
    if (first.size() + url_size > k_chunk) {
        return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: an entry head of " +
                                                      std::to_string(first.size()) + " bytes does not fit an item", ""},
                      error);
    }
    if (!put_head(store, *meta, stream->version, stream->chunks, first, total, failure)) {
        return report(failure, error);
    }
    stream->committed = true;
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

void close_stream(Stream* stream) {
    if (!stream->committed) {
        drop_chunks(stream->store, stream->version, stream->chunks);
    }
    delete stream;
}

curlcache_backend_status try_lock(Store* store, const char* key, int64_t ttl_ms, int* acquired,
                                  curlcache_backend_error* error) try {
    const int64_t now = now_ms();
    Json response;
    Failure failure;
    *acquired = 0;
    const bool put = store->call(
        "PutItem",
        {{"Item",
          {{"k", text(lock_key(key))},
           {"t", text("l")},
           {"x", number(now + ttl_ms)},
           {"o", text(store->owner)},
           {"ttl", number((now + ttl_ms) / 1000 + 1)}}},
         {"ConditionExpression", "attribute_not_exists(#k) OR #x < :now"},
         {"ExpressionAttributeNames", {{"#k", "k"}, {"#x", "x"}}},
         {"ExpressionAttributeValues", {{":now", number(now)}}}},
        response, failure);
    if (put) {
        *acquired = 1;
        return CURLCACHE_BACKEND_OK;
    }
    return failure.type == "ConditionalCheckFailedException" ? CURLCACHE_BACKEND_OK
                                                              : report(failure, error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

curlcache_backend_status unlock(Store* store, const char* key, curlcache_backend_error* error) try {
    Json response;
    Failure failure;
    const bool deleted = store->call("DeleteItem",
                                     {{"Key", {{"k", text(lock_key(key))}}},
                                      {"ConditionExpression", "#o = :o"},
                                      {"ExpressionAttributeNames", {{"#o", "o"}}},
                                      {"ExpressionAttributeValues", {{":o", text(store->owner)}}}},
                                     response, failure);
    return deleted || failure.type == "ConditionalCheckFailedException" ? CURLCACHE_BACKEND_OK
                                                                         : report(failure, error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

} // namespace curlcache::plugins::dynamodb
