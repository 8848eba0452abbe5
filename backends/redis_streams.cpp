// The Redis backend's values in pieces: see redis_streams.h.
#include "backends/redis_streams.h"

#include "backends/redis_layout.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace curlcache::backends {

Result<RedisReplyPtr> read_transaction(RedisConnection& conn, int queued) {
    RedisReplyPtr exec;
    std::optional<std::unexpected<Error>> refused;
    for (int i = 0; i < queued + 2; ++i) {
        auto reply = conn.read_reply();
        if (!reply) {
            return std::unexpected(reply.error());
        }
        if ((*reply)->type == REDIS_REPLY_ERROR && !refused) {
            refused = conn.reply_error(**reply);
        }
        exec = std::move(*reply);
    }
    if (refused) {
        return *refused;
    }
    return exec;
}

std::optional<RedisHashValue> parse_hash_value(const redisReply& reply) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 4) {
        return std::nullopt;
    }
    for (size_t i = 0; i < 4; ++i) {
        if (reply.element[i]->type != REDIS_REPLY_STRING) {
            return std::nullopt;
        }
    }
    RedisHashValue value;
    value.head.assign(reply.element[0]->str, reply.element[0]->len);
    value.token.assign(reply.element[1]->str, reply.element[1]->len);
    auto number = [](const redisReply* field, uint64_t& out) {
        auto [end, ec] = std::from_chars(field->str, field->str + field->len, out);
        return ec == std::errc() && end == field->str + field->len;
    };
    if (value.token.empty() || !number(reply.element[2], value.size) ||
        !number(reply.element[3], value.piece) || value.piece == 0 ||
        value.size < value.head.size()) {
        return std::nullopt;
    }
    return value;
}

namespace {

// A reader asks for about 4 MiB at a time and keeps up to 4 requests in flight while it
// reads sequentially: the process holds about two (hiredis' read buffer and the reply being
// consumed), Redis the rest in its output buffer. One round trip per MiB, each running a
// Lua script that copied the piece twice more, made a 1 GiB hit take 22-37 s (BENCHMARKS.md).
constexpr uint64_t k_read_piece = uint64_t{4} << 20;
constexpr size_t k_read_ahead = 4;

class RedisValueReader final : public ValueReader {
public:
    // `generation` is a string value's first bytes, or a hash value's token (hash = true).
    RedisValueReader(RedisPool& pool, std::string value_key, std::string generation,
                     uint64_t size, std::string head, bool hash, uint64_t field_size)
        : m_pool(pool), m_key(std::move(value_key)), m_generation(std::move(generation)),
          m_size(size), m_head(std::move(head)), m_head_size(m_head.size()), m_hash(hash),
          m_field_size(field_size) {}

    ~RedisValueReader() override { drop_connection(!m_pending.empty()); }

    uint64_t size() const override { return m_size; }

    Result<void> read(uint64_t offset, std::span<char> out) override {
        if (offset > m_size || out.size() > m_size - offset) {
            return fail("redis: read past the end of a value");
        }
        const bool sequential = offset == m_last_end;
        m_last_end = offset + out.size();
        size_t done = 0;
        bool retried = false;
        while (done < out.size()) {
            const uint64_t at = offset + done;
            if (at < m_head.size()) {
                const size_t n = std::min<uint64_t>(out.size() - done, m_head.size() - at);
                std::memcpy(out.data() + done, m_head.data() + at, n);
                done += n;
                continue;
            }
            if (const Segment* segment = find_segment(at)) {
                const size_t n =
                    std::min<uint64_t>(out.size() - done, segment->size - (at - segment->start));
                std::memcpy(out.data() + done, segment->data + (at - segment->start), n);
                done += n;
                continue;
            }
            if (sequential && !m_head.empty() && !m_hash) {
                std::string().swap(m_head); // read past it: not needed again
            }
            auto fetched = fetch(at, sequential);
            if (!fetched) {
                // A reused connection found closed (the server restarted): once more on a
                // fresh one; the pieces are checked against the generation all the same.
                const bool again = m_lost && m_reused && !retried;
                drop_connection(true);
                if (!again) {
                    return fetched;
                }
                retried = true;
            }
        }
        return {};
    }

private:
    struct Segment {
        uint64_t start;
        const char* data;
        uint64_t size;
    };

    const Segment* find_segment(uint64_t at) const {
        for (const auto& segment : m_segments) {
            if (at >= segment.start && at - segment.start < segment.size) {
                return &segment;
            }
        }
        return nullptr;
    }

    // Makes m_segments hold the byte at `at`.
    Result<void> fetch(uint64_t at, bool sequential) {
        m_lost = false;
        if (!m_lease) {
            auto lease = m_pool.lease();
            if (!lease) {
                return std::unexpected(lease.error());
            }
            m_reused = lease->reused();
            m_lease.emplace(std::move(*lease));
        }
        const bool in_flight = std::any_of(m_pending.begin(), m_pending.end(), [&](auto& piece) {
            return at >= piece.first && at < piece.second;
        });
        if (!in_flight) {
            m_next = at; // a jump: what is in flight is read and dropped below
            request();
        }
        while (sequential && m_pending.size() < k_read_ahead && m_next < m_size) {
            request();
        }
        for (;;) {
            auto piece = m_pending.front();
            m_pending.pop_front();
            auto got = read_piece(piece.first, piece.second);
            if (!got) {
                return got;
            }
            if (at >= piece.first && at < piece.second) {
                return {};
            }
        }
    }

    // Queues the piece that holds m_next, in one MULTI with the version it must be of.
    void request() {
        RedisConnection& conn = **m_lease;
        conn.append({"MULTI"});
        uint64_t first = m_next;
        uint64_t end = 0;
        if (m_hash) {
            const uint64_t index = (m_next - m_head_size) / m_field_size;
            const uint64_t fields = std::max<uint64_t>(1, k_read_piece / m_field_size);
            const uint64_t count = (m_size - m_head_size + m_field_size - 1) / m_field_size;
            const uint64_t last = std::min(count, index + fields);
            first = m_head_size + index * m_field_size;
            end = std::min(m_size, m_head_size + last * m_field_size);
            conn.append({"HGET", m_key, "t"});
            std::vector<std::string> args{"HMGET", m_key};
            for (uint64_t i = index; i < last; ++i) {
                args.push_back(std::to_string(i));
            }
            conn.append(args);
        } else {
            end = std::min(m_size, first + k_read_piece);
            conn.append({"GETRANGE", m_key, "0", std::to_string(m_generation.size() - 1)});
            conn.append({"GETRANGE", m_key, std::to_string(first), std::to_string(end - 1)});
        }
        conn.append({"EXEC"});
        m_pending.emplace_back(first, end);
        m_next = end;
    }

    // Reads one queued piece's replies (+OK, QUEUED, QUEUED, then EXEC's answers).
    Result<void> read_piece(uint64_t first, uint64_t end) {
        RedisConnection& conn = **m_lease;
        auto exec = read_transaction(conn, 2);
        if (!exec) {
            m_lost = conn.lost();
            return std::unexpected(exec.error());
        }
        const redisReply& r = **exec;
        if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
            r.element[0]->type != REDIS_REPLY_STRING ||
            std::string_view(r.element[0]->str, r.element[0]->len) != m_generation) {
            return fail(conn.where() + ": the value was replaced or removed while it was read");
        }
        m_segments.clear();
        const redisReply& bytes = *r.element[1];
        if (bytes.type == REDIS_REPLY_STRING && !m_hash && bytes.len == end - first) {
            m_segments.push_back({first, bytes.str, bytes.len});
        } else if (bytes.type == REDIS_REPLY_ARRAY && m_hash) {
            uint64_t at = first;
            for (size_t i = 0; i < bytes.elements; ++i) {
                const redisReply& field = *bytes.element[i];
                const uint64_t expected = std::min(m_field_size, end - at);
                if (field.type != REDIS_REPLY_STRING || field.len != expected) {
                    m_segments.clear();
                    break;
                }
                m_segments.push_back({at, field.str, field.len});
                at += field.len;
            }
            if (at != end) {
                m_segments.clear();
            }
        }
        if (m_segments.empty()) {
            return fail(conn.where() + ": a piece of a value came back short");
        }
        m_piece = std::move(*exec);
        return {};
    }

    // Back to the pool; closed instead when replies may still be unread on it (`unclean`).
    void drop_connection(bool unclean) {
        if (m_lease && unclean) {
            (*m_lease)->discard();
        }
        m_pending.clear();
        m_lease.reset();
        m_segments.clear();
        m_piece.reset();
    }

    RedisPool& m_pool;
    std::string m_key;
    std::string m_generation;
    uint64_t m_size;
    std::string m_head; // the value's first bytes, read at open (a hash's head: all of it)
    uint64_t m_head_size;
    bool m_hash;
    uint64_t m_field_size;
    std::optional<RedisPool::Lease> m_lease;
    bool m_reused = false;
    bool m_lost = false;
    std::deque<std::pair<uint64_t, uint64_t>> m_pending; // pieces [first, end) asked for
    uint64_t m_next = 0;                                  // where the next piece starts
    RedisReplyPtr m_piece;                                // EXEC's reply holding the piece
    std::vector<Segment> m_segments;                      // its bytes
    uint64_t m_last_end = 0;
};

// The tail goes to a temporary hash in fields of 1 MiB while the download runs (at most one
// piece unanswered); commit adds the head, token and sizes and renames it into place.
constexpr size_t k_stream_piece = size_t{1} << 20;

class RedisPutStream final : public PutStream {
public:
    explicit RedisPutStream(RedisStreamOwner& owner)
        : m_owner(owner), m_token(redis_layout::random_token()) {}

    ~RedisPutStream() override {
        try {
            clean_up();
        } catch (...) {
            // Nothing may escape a destructor; the key expires by itself.
        }
    }

    Result<void> append(std::string_view bytes) override {
        m_tail_size += bytes.size();
        try {
            while (!bytes.empty()) {
                if (m_batch.size() == k_stream_piece) {
                    if (auto sent = send_piece(); !sent) {
                        return sent;
                    }
                }
                const size_t n = std::min(bytes.size(), k_stream_piece - m_batch.size());
                if (m_batch.capacity() < k_stream_piece) {
                    m_batch.reserve(k_stream_piece);
                }
                m_batch.append(bytes.substr(0, n));
                bytes.remove_prefix(n);
            }
        } catch (const std::bad_alloc&) {
            return fail("redis: out of memory while keeping a response body");
        }
        return {};
    }

    Result<void> commit(const Metadata& meta, std::string_view head) override {
        const uint64_t total = head.size() + m_tail_size;
        if (m_owner.max_size() > 0 && total > m_owner.max_size()) {
            clean_up(); // as put(): not stored, and the older value goes
            auto removed = m_owner.remove(meta.key);
            return removed ? Result<void>{} : std::unexpected(removed.error());
        }
        if (m_pieces == 0) {
            const std::string_view pieces[] = {head, m_batch};
            return m_owner.put(meta, pieces);
        }
        auto done = finish(meta, head, total);
        if (done) {
            m_pieces = 0; // renamed into the entry: nothing left to clean up
        } else if (m_lease) {
            (*m_lease)->discard(); // it may have answers still unread
        }
        m_lease.reset();
        return done;
    }

private:
    std::string temp_key() const { return m_owner.temp_item(m_token); }

    Result<void> lease() {
        if (m_lease) {
            return {};
        }
        auto lease = m_owner.pool().lease();
        if (!lease) {
            return std::unexpected(lease.error());
        }
        m_lease.emplace(std::move(*lease));
        return {};
    }

    // Reads the answers to the piece sent last, if any (HSET, PEXPIRE).
    Result<void> settle() {
        std::optional<std::unexpected<Error>> refused;
        for (; m_unanswered > 0; --m_unanswered) {
            RedisConnection& conn = **m_lease;
            auto reply = conn.read_reply();
            if (!reply) {
                return std::unexpected(reply.error());
            }
            if ((*reply)->type == REDIS_REPLY_ERROR && !refused) {
                refused = conn.reply_error(**reply);
            }
        }
        if (refused) {
            return *refused;
        }
        return {};
    }

    // Sends the full batch as the next field (and keeps the hash from expiring while the
    // download goes on); its answers are read before the next piece's.
    Result<void> send_piece() {
        if (auto leased = lease(); !leased) {
            return leased;
        }
        if (auto settled = settle(); !settled) {
            return settled;
        }
        RedisConnection& conn = **m_lease;
        static const std::string ttl = std::to_string(k_temp_ttl_ms);
        const std::string key = temp_key();
        conn.append({"HSET", key, std::to_string(m_pieces), m_batch});
        conn.append({"PEXPIRE", key, ttl});
        ++m_pieces; // from here on it may exist: cleaned up if not committed
        if (auto sent = conn.flush(); !sent) {
            return sent;
        }
        m_unanswered = 2;
        m_batch.clear();
        return {};
    }

    // The last piece with the head, token and sizes, then the rename into place, in one
    // round trip.
    Result<void> finish(const Metadata& meta, std::string_view head, uint64_t total) {
        if (auto leased = lease(); !leased) {
            return leased;
        }
        if (auto settled = settle(); !settled) {
            return settled;
        }
        RedisConnection& conn = **m_lease;
        const std::string key = temp_key();
        const std::string size = std::to_string(total);
        const std::string piece = std::to_string(k_stream_piece);
        uint64_t fields = m_pieces + 4;
        if (m_batch.empty()) {
            conn.append({"HSET", key, "h", head, "t", m_token, "s", size, "p", piece});
        } else {
            conn.append({"HSET", key, std::to_string(m_pieces), m_batch, "h", head, "t", m_token,
                         "s", size, "p", piece});
            ++fields;
        }
        // The commit script goes in the same round trip: it installs nothing unless the
        // hash has every field, so a refused HSET leaves the old entry in place.
        return m_owner.install(conn, meta, total, key, fields, 1);
    }

    // Deletes what an uncommitted stream wrote (best effort: the key expires anyway).
    void clean_up() {
        if (m_pieces == 0) {
            return;
        }
        if (m_lease && m_unanswered > 0) {
            (*m_lease)->discard();
        }
        m_lease.reset();
        const std::string key = temp_key();
        (void)m_owner.pool().run<void>([&](RedisConnection& conn) -> Result<void> {
            auto reply = conn.command({"DEL", key});
            return reply ? Result<void>{} : std::unexpected(reply.error());
        });
        m_pieces = 0;
    }

    RedisStreamOwner& m_owner;
    std::string m_token;
    std::string m_batch;
    uint64_t m_tail_size = 0;
    uint64_t m_pieces = 0; // pieces sent to Redis
    int m_unanswered = 0;
    std::optional<RedisPool::Lease> m_lease;
};

} // namespace

Result<std::string> read_hash_whole(RedisConnection& conn, const std::string& value_key,
                                    const RedisHashValue& value) {
    const uint64_t count = (value.size - value.head.size() + value.piece - 1) / value.piece;
    std::string out;
    out.reserve(value.size);
    out = value.head;
    constexpr uint64_t k_fields = 8;
    for (uint64_t first = 0; first < count; first += k_fields) {
        conn.append({"MULTI"});
        conn.append({"HGET", value_key, "t"});
        std::vector<std::string> args{"HMGET", value_key};
        for (uint64_t i = first; i < std::min(count, first + k_fields); ++i) {
            args.push_back(std::to_string(i));
        }
        conn.append(args);
        conn.append({"EXEC"});
        auto exec = read_transaction(conn, 2);
        if (!exec) {
            return std::unexpected(exec.error());
        }
        const redisReply& r = **exec;
        if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
            r.element[0]->type != REDIS_REPLY_STRING ||
            std::string_view(r.element[0]->str, r.element[0]->len) != value.token ||
            r.element[1]->type != REDIS_REPLY_ARRAY) {
            return fail(conn.where() + ": the value was replaced or removed while it was read");
        }
        for (size_t i = 0; i < r.element[1]->elements; ++i) {
            const redisReply& field = *r.element[1]->element[i];
            if (field.type != REDIS_REPLY_STRING) {
                return fail(conn.where() + ": a piece of a value is missing");
            }
            out.append(field.str, field.len);
        }
    }
    if (out.size() != value.size) {
        return fail(conn.where() + ": a value's pieces do not add up to its size");
    }
    return out;
}

std::unique_ptr<ValueReader> redis_string_reader(RedisPool& pool, std::string value_key,
                                                 std::string generation, uint64_t size,
                                                 std::string head) {
    return std::make_unique<RedisValueReader>(pool, std::move(value_key), std::move(generation),
                                              size, std::move(head), false, 0);
}

std::unique_ptr<ValueReader> redis_hash_reader(RedisPool& pool, std::string value_key,
                                               RedisHashValue value) {
    return std::make_unique<RedisValueReader>(pool, std::move(value_key), std::move(value.token),
                                              value.size, std::move(value.head), true,
                                              value.piece);
}

std::unique_ptr<PutStream> redis_put_stream(RedisStreamOwner& owner) {
    return std::make_unique<RedisPutStream>(owner);
}

} // namespace curlcache::backends
