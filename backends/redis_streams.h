// The Redis backend's values in pieces (internal to the backends room): a large value read
// with pipelined, version-checked GETRANGEs, and a value streamed in as it is downloaded.
#pragma once

#include "backends/redis_connection.h"
#include "backends/storage.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace curlcache::backends {

// Temporary keys of a streamed value expire after this long, so that a writer that died
// leaves nothing behind for longer (a download that outlasts it is not stored).
inline constexpr int64_t k_temp_ttl_ms = 3600 * 1000;

// The first bytes of a value that identify the stored version (a curlcache entry's head
// checksum lies there): a reader checks every piece against them.
inline constexpr size_t k_generation_bytes = 32;

// Reads the value at `value_key` in pieces, each fetched atomically with the value's first
// k_generation_bytes (MULTI/EXEC) and refused unless they are `generation`: a value
// replaced meanwhile fails the read, never mixes. `head` is the value's first bytes, read
// at open with the same generation (served from memory). Sequential reads keep a few
// pieces in flight on one connection held by the reader.
std::unique_ptr<ValueReader> redis_value_reader(RedisPool& pool, std::string value_key,
                                                std::string generation, uint64_t size,
                                                std::string head);

// What a streamed value needs from the storage it goes into.
class RedisStreamOwner {
public:
    virtual ~RedisStreamOwner() = default;
    virtual RedisPool& pool() = 0;
    // "<ns>:t:<name>"
    virtual std::string temp_item(std::string_view name) const = 0;
    virtual uint64_t max_size() const = 0;
    virtual Result<void> put(const Metadata& meta, Pieces value) = 0;
    virtual Result<bool> remove(std::string_view key) = 0;
    // Renames the gathered value `gathered` into place as meta.key's entry of `size` bytes
    // and counts it, in one script (nothing changes when `gathered` is gone).
    virtual Result<void> install(RedisConnection& conn, const Metadata& meta, uint64_t size,
                                 const std::string& gathered) = 0;
};

// The tail is sent in pieces of k_stream_piece bytes to temporary keys while it arrives
// (memory: one piece); commit gathers head + pieces into one temporary value inside Redis
// (a script moves each piece to its offset and deletes it) and renames it into place with
// the metadata and counters in one script: readers see the old value or the new one. A
// tail that fits one piece never touches Redis before commit (one put()).
std::unique_ptr<PutStream> redis_put_stream(RedisStreamOwner& owner);

} // namespace curlcache::backends
