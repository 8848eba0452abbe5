// Values read in pieces (backend ABI 1.1), so that a large hit streams with bounded memory.
// A value is its inline part (T.value) followed by its 1 MiB chunk rows; a reader remembers
// that layout and the generation it opened: the xmin of chunk row 1, which a put or a
// streamed commit writes anew (every chunk row of a value is written by one transaction)
// and an access-time update never touches. Each read is one statement that also checks the
// generation, so a value replaced or removed meanwhile fails the read instead of mixing.
#include "backends/plugins/postgres/postgres_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

namespace curlcache::plugins::postgres {

namespace {

Failure replaced() {
    return {CURLCACHE_BACKEND_FAILURE, "postgres: the value was replaced while it was read"};
}

// Copies the part [from, from + size) of the bytes of one result cell that start at value
// offset `cell_at`, into `into` (at value offset `at`); returns how many it copied.
size_t copy_overlap(const PGresult* row, int r, uint64_t cell_at, uint64_t at, char* into,
                    size_t size) {
    const auto length = static_cast<uint64_t>(PQgetlength(row, r, 0));
    const uint64_t begin = std::max(cell_at, at), end = std::min(cell_at + length, at + size);
    if (begin >= end) {
        return 0;
    }
    std::memcpy(into + (begin - at), PQgetvalue(row, r, 0) + (begin - cell_at), end - begin);
    return static_cast<size_t>(end - begin);
}

} // namespace

curlcache_backend_status open_value(Store* store, const char* key, uint64_t whole_limit,
                                    const curlcache_backend_sink* sink, int* found,
                                    uint64_t* size, curlcache_backend_value** value,
                                    curlcache_backend_error* error) try {
    const std::string k = key, limit = to_text(static_cast<int64_t>(
                                   std::min<uint64_t>(whole_limit, INT64_MAX)));
    auto opened = std::make_unique<curlcache_backend_value>();
    bool whole_inline = false;
    bool sink_failed = false;
    *found = 0;
    auto status = store->with(
        [&](Connection& connection, Failure& failure) {
            Result row = connection.run("open", {text(k), text(limit)}, false,
                                        store->statement_timeout_ms, failure);
            if (!row) {
                return false;
            }
            if (PQntuples(row.get()) == 0) {
                return true;
            }
            *found = 1;
            opened->size = static_cast<uint64_t>(int_at(row.get(), 0, 0));
            opened->inline_size = static_cast<uint64_t>(int_at(row.get(), 0, 1));
            opened->generation = PQgetvalue(row.get(), 0, 2);
            if (!PQgetisnull(row.get(), 0, 3)) {
                // The whole value, inline and small: handed over now (text format: unescape).
                size_t length = 0;
                unsigned char* bytes = PQunescapeBytea(
                    reinterpret_cast<const unsigned char*>(PQgetvalue(row.get(), 0, 3)), &length);
                if (bytes == nullptr) {
                    failure = {CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"};
                    return false;
                }
                whole_inline = true;
                sink_failed = sink->write(sink->context, reinterpret_cast<const char*>(bytes),
                                          length) != 0;
                PQfreemem(bytes);
            }
            return true;
        },
        error);
    if (status != CURLCACHE_BACKEND_OK || *found == 0) {
        return status;
    }
    if (sink_failed) {
        return report({CURLCACHE_BACKEND_FAILURE, "postgres: the host refused the value"}, error);
    }
    *size = opened->size;
    if (whole_inline) {
        note_access(store, k);
        return CURLCACHE_BACKEND_OK;
    }
    if (opened->size <= whole_limit || opened->generation.empty()) {
        return get(store, key, sink, found, error); // a chunked value of a few MiB: whole
    }
    note_access(store, k);
    opened->store = store;
    opened->key = k;
    *value = opened.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

curlcache_backend_status read_range(curlcache_backend_value* value, uint64_t offset, char* into,
                                    size_t size, curlcache_backend_error* error) try {
    if (offset > value->size || size > value->size - offset) {
        return report({CURLCACHE_BACKEND_FAILURE, "postgres: read past the end of a value"}, error);
    }
    Store* store = value->store;
    const uint64_t end = offset + size;
    return store->with(
        [&](Connection& connection, Failure& failure) {
            size_t copied = 0;
            if (offset < value->inline_size) {
                const uint64_t n = std::min(end, value->inline_size) - offset;
                const std::string from = to_text(static_cast<int64_t>(offset + 1)),
                                  count = to_text(static_cast<int64_t>(n));
                Result row = connection.run("range_inline",
                                            {text(value->key), text(from), text(count),
                                             text(value->generation)},
                                            true, store->statement_timeout_ms, failure);
                if (!row) {
                    return false;
                }
                if (PQntuples(row.get()) != 1) {
                    failure = replaced();
                    return false;
                }
                copied += copy_overlap(row.get(), 0, offset, offset, into, size);
            }
            if (end > value->inline_size) {
                const uint64_t first = std::max(offset, value->inline_size) - value->inline_size;
                const uint64_t last = end - 1 - value->inline_size;
                const int64_t first_n = static_cast<int64_t>(first / k_chunk) + 1;
                const int64_t last_n = static_cast<int64_t>(last / k_chunk) + 1;
                Result rows = connection.run("range_chunks",
                                             {text(value->key), text(to_text(first_n)),
                                              text(to_text(last_n)), text(value->generation)},
                                             true, store->statement_timeout_ms, failure);
                if (!rows) {
                    return false;
                }
                if (PQntuples(rows.get()) != last_n - first_n + 1) {
                    failure = replaced();
                    return false;
                }
                for (int r = 0; r < PQntuples(rows.get()); ++r) {
                    const uint64_t cell_at =
                        value->inline_size + static_cast<uint64_t>(first_n - 1 + r) * k_chunk;
                    copied += copy_overlap(rows.get(), r, cell_at, offset, into, size);
                }
            }
            if (copied != size) {
                failure = replaced();
                return false;
            }
            return true;
        },
        error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

void close_value(curlcache_backend_value* value) {
    delete value;
}

} // namespace curlcache::plugins::postgres
