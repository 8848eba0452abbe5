// The one interface every storage backend implements: bytes in, bytes out, plus the small
// metadata needed to list, expire and evict. Backends know storage, not HTTP: the value is
// an opaque, already-serialised entry (see core/entry.h) whose checksum the core verifies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::backends {

// Why an operation failed. A miss is never an error: get() returns an empty optional.
enum class ErrorKind {
    failure, // the backend answered with an error, or an I/O error happened
    timeout, // the backend did not answer in time (busy database, slow network)
};

struct Error {
    ErrorKind kind = ErrorKind::failure;
    std::string message; // one line, no "curlcache: " prefix, never contains credentials
    int code = 0;        // the errno of a failed system call, 0 when none (core::log::cause)
};

template <class T> using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string message) {
    return std::unexpected(Error{ErrorKind::failure, std::move(message)});
}
inline std::unexpected<Error> timed_out(std::string message) {
    return std::unexpected(Error{ErrorKind::timeout, std::move(message)});
}
// A failed system call: "<message>: <strerror(code)>", keeping `code` so that one cause (a
// full disk, a folder where a file belongs) warns once whichever operation or file met it.
inline std::unexpected<Error> fail_errno(std::string message, int code) {
    return std::unexpected(
        Error{ErrorKind::failure, std::move(message) + ": " + std::strerror(code), code});
}

// A stored value. Shared and immutable so that the memory backend can hand out its copy
// without copying it again on every hit.
using Blob = std::shared_ptr<const std::string>;

// The metadata stored beside each value, enough to list, expire and evict without
// reading (or parsing) the value itself.
struct Metadata {
    std::string key;     // 32 lower-case hex digits (core::Key::hex())
    std::string method;  // "GET"
    std::string url;     // redacted: no credentials, ignored parameters removed
    long status = 0;     // final HTTP status of the stored response
    int64_t created = 0; // unix seconds
    int64_t expires = 0; // unix seconds; 0 = never expires
    uint64_t size = 0;   // bytes of the stored value (filled in by the backend on scan)
};

// What put() writes: the value as a sequence of byte ranges written one after another,
// so that a large body is never concatenated into a second in-memory copy.
using Pieces = std::span<const std::string_view>;

// A value written while it is produced, for a response body that streams in during the
// transfer: the tail arrives piece by piece through append(); the head, known only at the
// end, comes with commit(). The stored value is head + tail, with put()'s guarantees (the
// old value or the new one, never a torn one). Destroying a stream that was not committed
// discards what it wrote. One thread uses a stream at a time.
class PutStream {
public:
    virtual ~PutStream() = default;
    virtual Result<void> append(std::string_view bytes) = 0;
    virtual Result<void> commit(const Metadata& meta, std::string_view head) = 0;
};

// A stored value read in pieces, for a large hit streamed to the program (the core reads the
// entry's head, then its body chunk by chunk, each checked against its stored checksum before
// it is delivered). A reader sees one version of the value from open to destruction: a value
// replaced or removed meanwhile either stays readable as it was (an open file keeps its
// inode) or makes read() fail - never a mix of the old value and the new one. One thread
// uses a reader at a time; it may outlive nothing: the storage must outlive it.
class ValueReader {
public:
    virtual ~ValueReader() = default;
    virtual uint64_t size() const = 0;
    // Fills `out` with the value's bytes from `offset` (offset + out.size() <= size()).
    // An error when they cannot all be read, or the value is no longer the one opened.
    virtual Result<void> read(uint64_t offset, std::span<char> out) = 0;
};

// What open_value() found: the value whole (small values: one read, as get()) or a reader.
struct StoredValue {
    Blob whole;                          // set when the value was read whole
    std::unique_ptr<ValueReader> reader; // set otherwise
};

// A reader over a value held in memory (the default open_value, the memory backend).
std::unique_ptr<ValueReader> blob_reader(Blob blob);

struct Usage {
    uint64_t entries = 0;
    uint64_t bytes = 0;     // bytes of stored values (what max_size limits)
    uint64_t max_bytes = 0; // 0 = unbounded
};

// Every method is thread-safe. Backends that live in a file (sqlite, filesystem) are also
// safe to use from many processes at once.
class Storage {
public:
    virtual ~Storage() = default;

    // The backend's registered name ("sqlite") and where its data lives, for messages.
    virtual std::string_view name() const = 0;
    virtual std::string location() const = 0;

    // A stored value, or an empty optional on a miss. May count the access for LRU
    // eviction, cheaply (a coarse timestamp, not a write per hit).
    virtual Result<std::optional<Blob>> get(std::string_view key) = 0;

    // The value for reading in pieces, or an empty optional on a miss. A value of at most
    // `whole_limit` bytes may be (and should be, in one read) returned whole; a larger one
    // comes as a reader that holds at most a bounded buffer. Counts the access as get()
    // does. The default returns get()'s value whole: right for a backend that holds values
    // in memory, and a fallback (the whole value in memory) for the others.
    virtual Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                          uint64_t whole_limit);

    // Stores (or atomically replaces) the value under meta.key. Readers see the old value
    // or the new one, never a torn one. May evict least-recently-used entries to stay
    // within max_size.
    virtual Result<void> put(const Metadata& meta, Pieces value) = 0;

    // One value of put_many().
    struct PutItem {
        const Metadata* meta;
        std::string_view value;
    };

    // Stores several values as put() stores each, in as few writes as the backend allows
    // (SQLite: one transaction), for bulk copies (`curlcache export`/`import`). Each value
    // is stored whole or not at all; after a failure some of the batch may be stored. The
    // default calls put() for each.
    virtual Result<void> put_many(std::span<const PutItem> items);

    // Starts a value whose tail streams in; size_hint is the expected tail size (0 when
    // unknown). The default keeps the tail in memory and calls put() at commit; a backend
    // that can write while the tail arrives overrides it.
    virtual Result<std::unique_ptr<PutStream>> begin_put(uint64_t size_hint);

    // Removes one entry; true when it existed.
    virtual Result<bool> remove(std::string_view key) = 0;

    // Calls visit for every entry's metadata (size filled in) until it returns false.
    // Entries added or removed during a scan may or may not be visited.
    virtual Result<void> scan(const std::function<bool(const Metadata&)>& visit) = 0;

    // Removes every entry of this cache (only this cache: a Redis namespace, one file).
    virtual Result<void> clear() = 0;

    virtual Result<Usage> usage() = 0;

    // Removes entries whose expires is in (0, now]; returns how many. The default scans
    // (and fails at once on a read-only cache, whether or not anything has expired).
    virtual Result<uint64_t> purge_expired(int64_t now);

    // Writes what this process deferred (access times for LRU, a WAL checkpoint) without
    // closing anything. Called at process exit, where the storage object is deliberately
    // never destroyed because other threads may still be using it. The default does nothing.
    virtual void flush() {}

    // Reclaims space after deletions (SQLite VACUUM). The default does nothing (and fails
    // on a read-only cache, as the command's other writes do).
    virtual Result<void> vacuum();

    // Cross-process lock for request coalescing (issue 4): true when this caller now holds
    // the lock for `key` (held at most ttl_ms, then it may be taken over). The default has
    // no shared lock and always grants it.
    virtual Result<bool> try_lock(std::string_view key, int64_t ttl_ms);
    virtual Result<void> unlock(std::string_view key);

    // The metadata of one entry (size filled in) without reading its value, when the
    // backend can read it cheaply (one indexed lookup); an empty optional on a miss. The
    // tiered wrapper uses it to fill upper tiers on a hit with the same URL and expiry.
    // The default answers empty (unknown) rather than scanning every entry: override it.
    virtual Result<std::optional<Metadata>> get_metadata(std::string_view /*key*/) {
        return std::optional<Metadata>{};
    }

    // Why nothing can be stored in this cache, or "" when it is writable. A cache the user
    // may read but not write (a read-only volume, a shared cache root owns, the "readonly"
    // mode) is opened read-only: get, get_metadata, scan and usage work; every write fails
    // with this reason, and nothing is written on a hit (no access times, no statistics).
    virtual std::string read_only_reason() const { return {}; }
};

// The error every write to a read-only storage fails with: its name, location and reason.
std::unexpected<Error> read_only_error(const Storage& storage);

// A read-only cache with nothing in it yet (its file or folder does not exist and may not
// be created): every lookup misses, every write fails with `reason`.
std::unique_ptr<Storage> empty_read_only(std::string name, std::string location, uint64_t max_bytes,
                                         std::string reason);

// Increases in a child after fork(): connections and locks of an older generation belong
// to the parent. (getpid() is a system call on every use; this is one atomic load.)
uint64_t fork_generation();

} // namespace curlcache::backends
