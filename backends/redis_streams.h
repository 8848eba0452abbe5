// The Redis backend's values in pieces (internal to the backends room): large values read
// with pipelined, version-checked reads, and values streamed in while they download.
//
// Two layouts share <ns>:e:<key>. A value stored whole by put() is a Redis string, as it
// always was (but for an empty value: a hash without pieces, so that an empty string read
// from <ns>:e:<key> always means a missing key, and a miss costs one round trip). A value
// streamed in with a tail over one piece is a Redis hash:
//   h = the head, t = a random token (the stored version), s = the value's size in bytes,
//   p = the piece size, 0, 1, ... = the tail in pieces of p bytes (the last one shorter).
// The pieces go into a temporary hash while the body downloads (memory: one piece), and
// commit renames it into place with the metadata and counters in one script: no copy of
// the value inside Redis, no command longer than one piece. (A string cannot be written in
// pieces without Redis growing it again and again: 1,024 APPENDs of 1 MiB took 23 s inside
// Redis here, and sizing it first zero-fills it in one command that blocked Redis 1.5 s.)
// Curlcache versions before this one read such an entry as an error (WRONGTYPE): one
// warning, and the transfer passes through.
#pragma once

#include "backends/redis_connection.h"
#include "backends/storage.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace curlcache::backends {

// Temporary keys of a streamed value expire after this long without a new piece, so that a
// writer that died leaves nothing behind for longer.
inline constexpr int64_t k_temp_ttl_ms = 3600 * 1000;

// The first bytes of a string value that identify the stored version (a curlcache entry's
// head checksum lies there): a reader checks every piece against them.
inline constexpr size_t k_generation_bytes = 32;

// Reads the answers to MULTI, `queued` commands and EXEC, every one of them (none is left
// unread on the connection), and returns EXEC's; an error answer becomes a failure.
Result<RedisReplyPtr> read_transaction(RedisConnection& conn, int queued);

// A hash value's fields h, t, s, p as read in one HMGET.
struct RedisHashValue {
    std::string head;
    std::string token;
    uint64_t size = 0;
    uint64_t piece = 0;
};
// From HMGET key h t s p; nullopt when the fields are not those of a streamed value.
std::optional<RedisHashValue> parse_hash_value(const redisReply& reply);

// The whole value of a hash, read a few pieces at a time (get() on such an entry).
Result<std::string> read_hash_whole(RedisConnection& conn, const std::string& value_key,
                                    const RedisHashValue& value);

// Reads a string value in pieces, each fetched atomically with the value's first
// k_generation_bytes (MULTI/EXEC) and refused unless they are `generation`; `head` is the
// value's first bytes, read at open with the same generation.
std::unique_ptr<ValueReader> redis_string_reader(RedisPool& pool, std::string value_key,
                                                 std::string generation, uint64_t size,
                                                 std::string head);
// Reads a hash value in pieces, each fetched with the token (MULTI/EXEC) and refused unless
// it is the one opened.
std::unique_ptr<ValueReader> redis_hash_reader(RedisPool& pool, std::string value_key,
                                               RedisHashValue value);

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
    // Renames the temporary hash `temp` into place as meta.key's entry of `size` bytes
    // and counts it, in one script (nothing changes unless it has `fields` fields). The
    // script is sent behind `pending` commands whose answers are still unread on `conn`
    // (the last piece's HSET): they are read first, and the first refusal among them is
    // the result.
    virtual Result<void> install(RedisConnection& conn, const Metadata& meta, uint64_t size,
                                 const std::string& temp, uint64_t fields, int pending) = 0;
};

// A tail that fits one piece never touches Redis before commit (one put(), a string).
std::unique_ptr<PutStream> redis_put_stream(RedisStreamOwner& owner);

} // namespace curlcache::backends
