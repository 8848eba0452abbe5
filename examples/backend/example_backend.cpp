// An example curlcache backend plugin: a bounded in-memory store with least-recently-used
// eviction, written against the installed <curlcache/backend.h> only. It passes the same
// conformance group as curlcache's built-in backends (tests/plugins/).
//
// Build it with the CMakeLists.txt beside it:
//     cmake -S . -B build -DCMAKE_PREFIX_PATH=/where/curlcache/is/installed
//     cmake --build build
// and use it with
//     backend = "plugin:/path/to/build/libcurlcache-backend-example.so"
//     [example]
//     greeting = "hello"      # the plugin's own settings; this one is only logged
// or copy the .so into <libdir>/curlcache/backends/ and write backend = "example".
//
// Everything a plugin needs: a static table of function pointers and one exported entry
// point that returns it. Errors are status codes plus a message; nothing throws across
// the C boundary (every entry point catches).
#include <curlcache/backend.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unistd.h>

namespace {

struct Entry {
    std::string method, url;
    long status = 0;
    int64_t created = 0, expires = 0;
    std::shared_ptr<const std::string> value; // shared: get() copies out without the lock
    std::list<std::string>::iterator lru;     // position in Store::lru (front = newest)
};

} // namespace

// The plugin's own store type, opaque to curlcache.
struct curlcache_backend_store {
    const curlcache_backend_host* host = nullptr;
    std::string location;
    uint64_t max_size = 0;
    std::mutex mutex;
    std::map<std::string, Entry> entries;
    std::list<std::string> lru;
    uint64_t bytes = 0;
};

// A value being read in pieces (ABI 1.1): it holds the value it opened, which a put or a
// remove meanwhile never changes (values are immutable and shared).
struct curlcache_backend_value {
    std::shared_ptr<const std::string> value;
};

// A value being streamed in: the tail grows until commit() puts head + tail.
struct curlcache_backend_stream {
    curlcache_backend_store* store = nullptr;
    std::string tail;
};

namespace {

using Store = curlcache_backend_store;

curlcache_backend_status failed(curlcache_backend_error* error, const char* what) {
    std::snprintf(error->message, sizeof error->message, "example: %s", what);
    return CURLCACHE_BACKEND_FAILURE;
}

// Removes one entry; the caller holds the lock.
void erase(Store& store, std::map<std::string, Entry>::iterator it) {
    store.bytes -= it->second.value->size();
    store.lru.erase(it->second.lru);
    store.entries.erase(it);
}

// Stores a whole value, evicting the least recently used entries to make room.
void store_value(Store& store, const curlcache_backend_metadata& meta, std::string value) {
    std::lock_guard lock(store.mutex);
    if (auto old = store.entries.find(meta.key); old != store.entries.end()) {
        erase(store, old);
    }
    if (store.max_size != 0 && value.size() > store.max_size) {
        return; // larger than the whole cache: not stored, nothing evicted
    }
    while (store.max_size != 0 && store.bytes + value.size() > store.max_size) {
        erase(store, store.entries.find(store.lru.back()));
    }
    store.lru.push_front(meta.key);
    Entry& entry = store.entries[meta.key];
    entry = Entry{meta.method, meta.url, meta.status, meta.created, meta.expires,
                  std::make_shared<const std::string>(std::move(value)), store.lru.begin()};
    store.bytes += entry.value->size();
}

curlcache_backend_metadata describe(const std::string& key, const Entry& entry) {
    return {key.c_str(), entry.method.c_str(), entry.url.c_str(), entry.status,
            entry.created, entry.expires, entry.value->size()};
}

curlcache_backend_status open_store(const curlcache_backend_host* host, Store** out,
                                    curlcache_backend_error* error) try {
    auto store = std::make_unique<Store>();
    store->host = host;
    store->max_size = host->max_size;
    store->location = std::string("memory of process ") + std::to_string(::getpid());
    if (const char* greeting = curlcache_backend_setting_get(host, "greeting")) {
        if (host->log_enabled(CURLCACHE_BACKEND_LOG_INFO)) {
            host->log(host, CURLCACHE_BACKEND_LOG_INFO, greeting);
        }
    }
    *out = store.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return failed(error, "out of memory");
}

void close_store(Store* store) {
    delete store;
}

const char* location(Store* store) {
    return store->location.c_str();
}

curlcache_backend_status get(Store* store, const char* key, const curlcache_backend_sink* sink,
                             int* found, curlcache_backend_error* error) {
    std::shared_ptr<const std::string> value;
    {
        std::lock_guard lock(store->mutex);
        auto it = store->entries.find(key);
        if (it == store->entries.end()) {
            *found = 0;
            return CURLCACHE_BACKEND_OK;
        }
        store->lru.splice(store->lru.begin(), store->lru, it->second.lru); // now the newest
        value = it->second.value;
    }
    // Handed over in pieces, as a plugin reading from a socket or a file would.
    constexpr size_t k_piece = 1 << 20;
    sink->size_hint(sink->context, value->size());
    for (size_t at = 0; at < value->size(); at += k_piece) {
        const size_t size = std::min(k_piece, value->size() - at);
        if (sink->write(sink->context, value->data() + at, size) != 0) {
            return failed(error, "the host refused the value");
        }
    }
    *found = 1;
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status put(Store* store, const curlcache_backend_metadata* meta,
                             const curlcache_backend_bytes* pieces, size_t count,
                             curlcache_backend_error* error) try {
    std::string value;
    for (size_t i = 0; i < count; ++i) {
        value.append(pieces[i].data, pieces[i].size);
    }
    store_value(*store, *meta, std::move(value));
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return failed(error, "out of memory");
}

curlcache_backend_status remove(Store* store, const char* key, int* existed,
                                curlcache_backend_error* /*error*/) {
    std::lock_guard lock(store->mutex);
    auto it = store->entries.find(key);
    *existed = it != store->entries.end();
    if (*existed) {
        erase(*store, it);
    }
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status scan(Store* store, curlcache_backend_visit visit, void* context,
                              curlcache_backend_error* /*error*/) {
    std::lock_guard lock(store->mutex); // a real backend would page without holding a lock
    for (const auto& [key, entry] : store->entries) {
        const curlcache_backend_metadata meta = describe(key, entry);
        if (visit(context, &meta) == 0) {
            break;
        }
    }
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status clear(Store* store, curlcache_backend_error* /*error*/) {
    std::lock_guard lock(store->mutex);
    store->entries.clear();
    store->lru.clear();
    store->bytes = 0;
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status usage(Store* store, curlcache_backend_usage* usage,
                               curlcache_backend_error* /*error*/) {
    std::lock_guard lock(store->mutex);
    *usage = {store->entries.size(), store->bytes, store->max_size};
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status purge_expired(Store* store, int64_t now, uint64_t* removed,
                                       curlcache_backend_error* /*error*/) {
    std::lock_guard lock(store->mutex);
    *removed = 0;
    for (auto it = store->entries.begin(); it != store->entries.end();) {
        auto next = std::next(it);
        if (it->second.expires > 0 && it->second.expires <= now) {
            erase(*store, it);
            ++*removed;
        }
        it = next;
    }
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status get_metadata(Store* store, const char* key,
                                      curlcache_backend_visit visit, void* context,
                                      curlcache_backend_error* /*error*/) {
    std::lock_guard lock(store->mutex);
    if (auto it = store->entries.find(key); it != store->entries.end()) {
        const curlcache_backend_metadata meta = describe(it->first, it->second);
        visit(context, &meta);
    }
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status begin_put(Store* store, uint64_t size_hint,
                                   curlcache_backend_stream** out,
                                   curlcache_backend_error* error) try {
    auto stream = std::make_unique<curlcache_backend_stream>();
    stream->store = store;
    stream->tail.reserve(size_hint);
    *out = stream.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return failed(error, "out of memory");
}

curlcache_backend_status append(curlcache_backend_stream* stream, const char* data, size_t size,
                                curlcache_backend_error* error) try {
    stream->tail.append(data, size);
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return failed(error, "out of memory");
}

curlcache_backend_status commit(curlcache_backend_stream* stream,
                                const curlcache_backend_metadata* meta, const char* head,
                                size_t head_size, curlcache_backend_error* error) try {
    stream->tail.insert(0, head, head_size);
    store_value(*stream->store, *meta, std::move(stream->tail));
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return failed(error, "out of memory");
}

void close_stream(curlcache_backend_stream* stream) {
    delete stream;
}

// ABI 1.1: a small value goes whole into the sink (one call); a larger one is read later,
// a range at a time, through the reader.
curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found,
                                    uint64_t* size, curlcache_backend_value** value,
                                    curlcache_backend_error* error) {
    std::shared_ptr<const std::string> held;
    {
        std::lock_guard lock(store->mutex);
        auto it = store->entries.find(key);
        if (it == store->entries.end()) {
            *found = 0;
            return CURLCACHE_BACKEND_OK;
        }
        store->lru.splice(store->lru.begin(), store->lru, it->second.lru);
        held = it->second.value;
    }
    *found = 1;
    *size = held->size();
    if (held->size() <= whole_limit) {
        if (sink->write(sink->context, held->data(), held->size()) != 0) {
            std::snprintf(error->message, sizeof error->message, "the host gave up the value");
            return CURLCACHE_BACKEND_FAILURE;
        }
        return CURLCACHE_BACKEND_OK;
    }
    try {
        *value = new curlcache_backend_value{std::move(held)};
    } catch (const std::bad_alloc&) {
        std::snprintf(error->message, sizeof error->message, "out of memory");
        return CURLCACHE_BACKEND_FAILURE;
    }
    return CURLCACHE_BACKEND_OK;
}

curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error) {
    if (offset > value->value->size() || size > value->value->size() - offset) {
        std::snprintf(error->message, sizeof error->message, "read past the end of a value");
        return CURLCACHE_BACKEND_FAILURE;
    }
    std::memcpy(into, value->value->data() + offset, size);
    return CURLCACHE_BACKEND_OK;
}

void close_value(curlcache_backend_value* value) {
    delete value;
}

// Designated initializers keep the members in the header's order.
const curlcache_backend_plugin k_plugin = {
    .abi_major = CURLCACHE_BACKEND_ABI_MAJOR,
    .abi_minor = CURLCACHE_BACKEND_ABI_MINOR,
    .size = sizeof(curlcache_backend_plugin),
    .name = "example",
    .version = "1.0.0",
    .description = "in-memory LRU store (the example of README's \"Writing a backend\")",
    .open = open_store,
    .close = close_store,
    .location = location,
    .get = get,
    .put = put,
    .remove = remove,
    .scan = scan,
    .clear = clear,
    .usage = usage,
    .purge_expired = purge_expired,
    .flush = nullptr,  // nothing deferred
    .vacuum = nullptr, // nothing to reclaim
    .try_lock = nullptr, // no shared lock: one process's memory is never shared
    .unlock = nullptr,
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
