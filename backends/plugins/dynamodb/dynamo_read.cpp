// Values read in pieces (backend ABI 1.1), so that a large hit streams with bounded memory.
// A value is its head's inline bytes (b) followed by its chunk items "VERSION#1..n" of
// k_chunk bytes each (the last one shorter). A reader remembers the version its head named
// and reads only that version's chunk items: a version id is never reused, and a put that
// replaces the value deletes the old version's chunks after switching the head, so a
// replaced or removed value makes the read fail (a chunk is gone) and never returns bytes of
// the new one. The reader holds the inline bytes and the last chunk it read (350 KB each at
// most): a range of about 1 MiB costs three or four GetItems.
#include "backends/plugins/dynamodb/dynamo_store.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace curlcache::plugins::dynamodb {

namespace {

curlcache_backend_status out_of_memory(curlcache_backend_error* error) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

Failure replaced(const std::string& key) {
    return {CURLCACHE_BACKEND_FAILURE, "dynamodb: " + key + " was replaced while it was read", ""};
}

// Chunk n of the reader's version into value->cached; false (failure set) when it is gone
// (*gone set too) or is not as long as the value's layout says.
bool load_chunk(curlcache_backend_value* value, uint64_t n, Failure& failure,
                bool* gone = nullptr) {
    if (value->cached_n == n) {
        return true;
    }
    value->cached_n = 0;
    bool missing = false;
    if (!read_chunk(value->store, value->version, n, value->cached, missing, failure)) {
        return false;
    }
    if (gone != nullptr) {
        *gone = missing;
    }
    if (missing) {
        failure = replaced(value->key);
        return false;
    }
    const uint64_t tail = value->size - value->inline_bytes.size();
    const uint64_t expected = n < value->chunks ? k_chunk : tail - (value->chunks - 1) * k_chunk;
    if (value->cached.size() != expected) {
        failure = {CURLCACHE_BACKEND_FAILURE,
                   "dynamodb: chunk item " + chunk_key(value->version, n) + " is corrupt", ""};
        return false;
    }
    value->cached_n = n;
    return true;
}

} // namespace

curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found, uint64_t* size,
                                    curlcache_backend_value** value,
                                    curlcache_backend_error* error) try {
    const std::string k = key;
    *found = 0;
    Failure failure;
    // A value replaced between its head and its first chunk is opened again from its new
    // head (nothing was delivered yet); a head whose first chunk is missing twice in a row
    // is get()'s to remove.
    for (int attempt = 0; attempt < 2; ++attempt) {
        Json head;
        if (!read_head(store, k, head, failure)) {
            return report(failure, error);
        }
        if (head.empty()) {
            return CURLCACHE_BACKEND_OK;
        }
        auto opened = std::make_unique<curlcache_backend_value>();
        opened->store = store;
        opened->key = k;
        opened->version = text_of(head, "v");
        opened->size = static_cast<uint64_t>(number_of(head, "z"));
        opened->chunks = static_cast<uint64_t>(number_of(head, "n"));
        if (opened->chunks == 0 || opened->size <= whole_limit) {
            return get_whole(store, key, &head, sink, found, error);
        }
        if (!binary_of(head, "b", opened->inline_bytes) ||
            opened->size <= opened->inline_bytes.size() ||
            opened->size - opened->inline_bytes.size() > opened->chunks * k_chunk ||
            opened->size - opened->inline_bytes.size() <= (opened->chunks - 1) * k_chunk) {
            return report(
                {CURLCACHE_BACKEND_FAILURE, "dynamodb: head item " + k + " is corrupt", ""}, error);
        }
        head = Json(); // its inline bytes are copied
        bool gone = false;
        if (!load_chunk(opened.get(), 1, failure, &gone)) {
            if (gone) {
                if (attempt == 0) {
                    continue;
                }
                return get_whole(store, key, nullptr, sink, found, error); // removes a broken head
            }
            return report(failure, error);
        }
        if (store->max_size != 0) {
            touch(store, k, opened->version);
        }
        *found = 1;
        *size = opened->size;
        *value = opened.release();
        return CURLCACHE_BACKEND_OK;
    }
    return report(replaced(k), error);
} catch (const std::bad_alloc&) {
    return out_of_memory(error);
}

curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error) try {
    if (offset > value->size || size > value->size - offset) {
        return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: read past the end of a value", ""},
                      error);
    }
    const uint64_t end = offset + size, head = value->inline_bytes.size();
    uint64_t at = offset;
    if (at < head) {
        const uint64_t n = std::min(end, head) - at;
        std::memcpy(into, value->inline_bytes.data() + at, n);
        at += n;
    }
    Failure failure;
    while (at < end) {
        const uint64_t n = (at - head) / k_chunk + 1; // the chunk holding byte `at`
        if (!load_chunk(value, n, failure)) {
            return report(failure, error);
        }
        const uint64_t chunk_at = head + (n - 1) * k_chunk;
        const uint64_t take = std::min(end, chunk_at + value->cached.size()) - at;
        std::memcpy(into + (at - offset), value->cached.data() + (at - chunk_at), take);
        at += take;
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return out_of_memory(error);
}

void close_value(curlcache_backend_value* value) {
    delete value;
}

} // namespace curlcache::plugins::dynamodb
