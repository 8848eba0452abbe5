// The Redis backend's values in pieces: see redis_streams.h.
#include "backends/redis_streams.h"

#include "backends/redis_layout.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace curlcache::backends {
namespace {

// A reader asks for pieces of 4 MiB and keeps up to 4 in flight while it reads sequentially:
// the process holds about two pieces (hiredis' read buffer and the reply being consumed),
// Redis the rest in its output buffer. One round trip per MiB, each running a Lua script
// that copied the piece twice more, made a 1 GiB hit take 22-37 s (BENCHMARKS.md).
constexpr uint64_t k_read_piece = uint64_t{4} << 20;
constexpr size_t k_read_ahead = 4;

class RedisValueReader final : public ValueReader {
public:
    RedisValueReader(RedisPool& pool, std::string value_key, std::string generation,
                     uint64_t size, std::string head)
        : m_pool(pool), m_key(std::move(value_key)), m_generation(std::move(generation)),
          m_size(size), m_head(std::move(head)) {}

    ~RedisValueReader() override { drop_connection(); }

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
            if (m_piece && at >= m_piece_start && at - m_piece_start < m_piece_size) {
                const size_t n =
                    std::min<uint64_t>(out.size() - done, m_piece_size - (at - m_piece_start));
                std::memcpy(out.data() + done, m_piece_data + (at - m_piece_start), n);
                done += n;
                continue;
            }
            if (sequential && !m_head.empty()) {
                std::string().swap(m_head); // read past it: not needed again
            }
            auto fetched = fetch(at, sequential);
            if (!fetched) {
                // A reused connection found closed (the server restarted): once more on a
                // fresh one; the pieces are checked against the generation all the same.
                const bool again = m_lost && m_reused && !retried;
                drop_connection();
                if (!again) {
                    return fetched;
                }
                retried = true;
            }
        }
        return {};
    }

private:
    // Makes m_piece hold the byte at `at`.
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
        }
        if (m_pending.empty() || !in_flight) {
            request();
        }
        while (sequential && m_pending.size() < k_read_ahead && m_next < m_size) {
            request();
        }
        for (;;) {
            auto piece = m_pending.front();
            m_pending.pop_front();
            auto got = read_piece(piece.second - piece.first);
            if (!got) {
                return std::unexpected(got.error());
            }
            if (at >= piece.first && at < piece.second) {
                m_piece = std::move(*got);
                m_piece_start = piece.first;
                m_piece_size = piece.second - piece.first;
                m_piece_data = m_piece->element[1]->str;
                return {};
            }
        }
    }

    // Queues the piece from m_next: its bytes and the value's first bytes in one MULTI.
    void request() {
        const uint64_t end = std::min(m_size, m_next + k_read_piece);
        const std::string first = std::to_string(m_next);
        const std::string last = std::to_string(end - 1);
        const std::string generation_last = std::to_string(m_generation.size() - 1);
        RedisConnection& conn = **m_lease;
        conn.append({"MULTI"});
        conn.append({"GETRANGE", m_key, "0", generation_last});
        conn.append({"GETRANGE", m_key, first, last});
        conn.append({"EXEC"});
        m_pending.emplace_back(m_next, end);
        m_next = end;
    }

    // Reads one queued piece's replies (+OK, QUEUED, QUEUED, then EXEC's two strings).
    Result<RedisReplyPtr> read_piece(uint64_t length) {
        RedisConnection& conn = **m_lease;
        RedisReplyPtr exec;
        for (int i = 0; i < 4; ++i) {
            auto reply = conn.read_reply();
            if (!reply) {
                m_lost = conn.lost();
                return std::unexpected(reply.error());
            }
            if ((*reply)->type == REDIS_REPLY_ERROR) {
                return conn.reply_error(**reply);
            }
            exec = std::move(*reply);
        }
        const redisReply& r = *exec;
        if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
            r.element[0]->type != REDIS_REPLY_STRING || r.element[1]->type != REDIS_REPLY_STRING) {
            return fail(conn.where() + ": unexpected reply to a piece of a value");
        }
        if (std::string_view(r.element[0]->str, r.element[0]->len) != m_generation) {
            return fail(conn.where() + ": the value was replaced or removed while it was read");
        }
        if (r.element[1]->len != length) {
            return fail(conn.where() + ": a piece of a value came back short");
        }
        return exec;
    }

    // Back to the pool, closed when replies are still unread on it.
    void drop_connection() {
        if (m_lease && !m_pending.empty()) {
            (*m_lease)->discard();
        }
        m_pending.clear();
        m_lease.reset();
        m_piece.reset();
    }

    RedisPool& m_pool;
    std::string m_key;
    std::string m_generation;
    uint64_t m_size;
    std::string m_head; // bytes [0, size) of the value, read at open
    std::optional<RedisPool::Lease> m_lease;
    bool m_reused = false;
    bool m_lost = false;
    std::deque<std::pair<uint64_t, uint64_t>> m_pending; // pieces [first, end) asked for
    uint64_t m_next = 0;                                  // where the next piece starts
    RedisReplyPtr m_piece;                                // EXEC's reply holding the piece
    uint64_t m_piece_start = 0;
    uint64_t m_piece_size = 0;
    const char* m_piece_data = nullptr;
    uint64_t m_last_end = 0;
};

// The tail goes to Redis in pieces of 1 MiB while the download runs (at most one SET
// unanswered); commit moves them, inside Redis, behind the head.
constexpr size_t k_stream_piece = size_t{1} << 20;

class RedisPutStream final : public PutStream {
public:
    explicit RedisPutStream(RedisStreamOwner& owner)
        : m_owner(owner), m_token(redis_layout::random_token()) {}

    ~RedisPutStream() override {
        try {
            clean_up();
        } catch (...) {
            // Nothing may escape a destructor; the keys expire by themselves.
        }
    }

    Result<void> append(std::string_view bytes) override {
        m_tail_size += bytes.size();
        try {
            while (!bytes.empty()) {
                const size_t n = std::min(bytes.size(), k_stream_piece - m_batch.size());
                if (m_batch.capacity() < k_stream_piece) {
                    m_batch.reserve(k_stream_piece);
                }
                m_batch.append(bytes.substr(0, n));
                bytes.remove_prefix(n);
                if (m_batch.size() == k_stream_piece && !bytes.empty()) {
                    if (auto sent = send_piece(); !sent) {
                        return sent;
                    }
                }
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
        auto done = gather(meta, head, total);
        if (done) {
            m_pieces = 0; // moved into the entry: nothing left to clean up
            m_gathered = false;
        }
        return done;
    }

private:
    std::string piece_key(uint64_t n) const {
        return m_owner.temp_item(m_token + '-' + std::to_string(n));
    }
    std::string gathered_key() const { return m_owner.temp_item(m_token + "-v"); }

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

    // Reads the answer to the SET sent last, if any.
    Result<void> settle() {
        if (!m_unanswered) {
            return {};
        }
        RedisConnection& conn = **m_lease;
        auto reply = conn.read_reply();
        if (!reply) {
            return std::unexpected(reply.error());
        }
        m_unanswered = false;
        if ((*reply)->type == REDIS_REPLY_ERROR) {
            return conn.reply_error(**reply);
        }
        return {};
    }

    // Sends the full batch as the next piece; its answer is read before the next one's.
    Result<void> send_piece() {
        if (auto leased = lease(); !leased) {
            return leased;
        }
        if (auto settled = settle(); !settled) {
            return settled;
        }
        RedisConnection& conn = **m_lease;
        static const std::string ttl = std::to_string(k_temp_ttl_ms);
        conn.append({"SET", piece_key(m_pieces), m_batch, "PX", ttl});
        ++m_pieces; // from here on it may exist: cleaned up if not committed
        if (auto sent = conn.flush(); !sent) {
            return sent;
        }
        m_unanswered = true;
        m_batch.clear();
        return {};
    }

    // head, then the pieces at their offsets, then the rest of the tail, into one temporary
    // value (sized once, so Redis never grows it piece by piece), then installed.
    Result<void> gather(const Metadata& meta, std::string_view head, uint64_t total) {
        if (auto leased = lease(); !leased) {
            return leased;
        }
        if (auto settled = settle(); !settled) {
            return settled;
        }
        RedisConnection& conn = **m_lease;
        const std::string gathered = gathered_key();
        static const std::string ttl = std::to_string(k_temp_ttl_ms);
        m_gathered = true;
        conn.append({"SET", gathered, head, "PX", ttl});
        const uint64_t rest_at = head.size() + m_pieces * k_stream_piece;
        if (m_batch.empty()) {
            conn.append({"SETRANGE", gathered, std::to_string(total - 1), std::string_view("", 1)});
        } else {
            conn.append({"SETRANGE", gathered, std::to_string(rest_at), m_batch});
        }
        if (auto sent = conn.flush(); !sent) {
            return sent;
        }
        for (int i = 0; i < 2; ++i) {
            auto reply = conn.read_reply();
            if (!reply) {
                return std::unexpected(reply.error());
            }
            if ((*reply)->type == REDIS_REPLY_ERROR) {
                return conn.reply_error(**reply); // e.g. over proto-max-bulk-len
            }
        }
        // The moves, 64 at a time in flight.
        constexpr uint64_t k_batch = 64;
        for (uint64_t first = 0; first < m_pieces; first += k_batch) {
            const uint64_t last = std::min(m_pieces, first + k_batch);
            for (uint64_t n = first; n < last; ++n) {
                conn.append({"EVAL", redis_layout::k_move_piece_script, "2", gathered,
                             piece_key(n), std::to_string(head.size() + n * k_stream_piece)});
            }
            bool all_there = true;
            for (uint64_t n = first; n < last; ++n) {
                auto reply = conn.read_reply();
                if (!reply) {
                    return std::unexpected(reply.error());
                }
                if ((*reply)->type == REDIS_REPLY_ERROR) {
                    return conn.reply_error(**reply);
                }
                all_there = all_there && (*reply)->type == REDIS_REPLY_INTEGER &&
                            (*reply)->integer == 1;
            }
            if (!all_there) {
                return fail(conn.where() + ": a piece of a streamed value expired before commit");
            }
        }
        return m_owner.install(conn, meta, total, gathered);
    }

    // Deletes what an uncommitted stream wrote (best effort: the keys expire anyway).
    void clean_up() {
        if (m_pieces == 0 && !m_gathered) {
            return;
        }
        if (m_lease && m_unanswered) {
            (*m_lease)->discard();
        }
        m_lease.reset();
        std::vector<std::string> args{"DEL", gathered_key()};
        for (uint64_t n = 0; n < m_pieces; ++n) {
            args.push_back(piece_key(n));
        }
        (void)m_owner.pool().run<void>([&](RedisConnection& conn) -> Result<void> {
            auto reply = conn.command(args);
            return reply ? Result<void>{} : std::unexpected(reply.error());
        });
        m_pieces = 0;
        m_gathered = false;
    }

    RedisStreamOwner& m_owner;
    std::string m_token;
    std::string m_batch;
    uint64_t m_tail_size = 0;
    uint64_t m_pieces = 0; // pieces sent to Redis
    bool m_gathered = false;
    bool m_unanswered = false;
    std::optional<RedisPool::Lease> m_lease;
};

} // namespace

std::unique_ptr<ValueReader> redis_value_reader(RedisPool& pool, std::string value_key,
                                                std::string generation, uint64_t size,
                                                std::string head) {
    return std::make_unique<RedisValueReader>(pool, std::move(value_key), std::move(generation),
                                              size, std::move(head));
}

std::unique_ptr<PutStream> redis_put_stream(RedisStreamOwner& owner) {
    return std::make_unique<RedisPutStream>(owner);
}

} // namespace curlcache::backends
