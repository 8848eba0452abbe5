// One hiredis connection with timeouts and error classification, and the small pool the
// Redis backend draws connections from. Internal to the backends room.
#pragma once

#include "backends/backoff.h"
#include "backends/redis_storage.h"
#include "backends/storage.h"

// hiredis 0.14's sds.h (included by hiredis.h) declares its functions without extern "C".
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace curlcache::backends {

struct RedisContextFree {
    void operator()(redisContext* context) const { redisFree(context); }
};
// Replies of our connections may hold their top-level string in a std::string (see
// redis_connection.cpp): free them with this, never with freeReplyObject.
void free_redis_reply(redisReply* reply);
struct RedisReplyFree {
    void operator()(redisReply* reply) const { free_redis_reply(reply); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

// The bytes of a string reply as a std::string, moved out without copying when the reader
// built it as one (a top-level bulk string, i.e. a GET's value).
std::string take_reply_string(redisReply& reply);

class RedisConnection {
public:
    // Connects, authenticates and selects the database. AUTH failure says so plainly.
    // `reached` becomes true once the server accepted the connection (a failure after that
    // is the server's answer, not its absence).
    static Result<std::unique_ptr<RedisConnection>>
    connect(const RedisEndpoint& endpoint, int64_t connect_timeout_ms, int64_t command_timeout_ms,
            bool& reached);

    // Sends one command and reads its reply; an error reply becomes a failure.
    Result<RedisReplyPtr> command(std::initializer_list<std::string_view> args);
    Result<RedisReplyPtr> command(const std::vector<std::string>& args);

    // Pipelining: queue commands (or raw protocol bytes), flush, then read the replies
    // one by one. read_reply() returns error replies as replies (type REDIS_REPLY_ERROR).
    void append(std::initializer_list<std::string_view> args);
    void append(const std::vector<std::string>& args);
    void append_raw(std::string_view bytes);
    Result<void> flush();
    Result<RedisReplyPtr> read_reply();

    // The connection is unusable (I/O error, timeout, protocol error): drop it.
    bool broken() const { return m_broken; }
    // Closes it when it goes back to the pool (replies still unread on it, e.g. pieces
    // read ahead by a reader that stopped early), without blaming the server.
    void discard() { m_broken = true; }
    // It broke because the server went away (EOF, reset): a fresh connection may work.
    bool lost() const { return m_lost; }
    // It broke on a timeout.
    bool timed_out() const { return m_timed_out; }

    // "redis 127.0.0.1:6379", for messages.
    const std::string& where() const { return m_where; }

    // Turns an error reply into a failure with a clear message.
    std::unexpected<Error> reply_error(const redisReply& reply) const;

private:
    RedisConnection(std::unique_ptr<redisContext, RedisContextFree> context, std::string where)
        : m_context(std::move(context)), m_where(std::move(where)) {}
    std::unexpected<Error> receive_error(int error); // errno of recv(2), 0 at EOF
    std::unexpected<Error> send_error(int error);

    std::unique_ptr<redisContext, RedisContextFree> m_context;
    std::string m_where;
    bool m_broken = false;
    bool m_lost = false;
    bool m_timed_out = false;
};

// Idle connections kept for reuse; a new one is made when none is idle. After a failed
// connect or a timeout, every operation fails at once until the backoff has passed, so a
// dead or hung server costs one timeout per k_retry_backoff, not one per operation. A
// forked child never reuses its parent's sockets. Such failures, and the first success
// after them, are also reported to the back-off shared with other processes (backoff.h).
class RedisPool {
public:
    static constexpr std::chrono::milliseconds k_retry_backoff{1000};

    RedisPool(RedisEndpoint endpoint, int64_t connect_timeout_ms, int64_t command_timeout_ms,
              std::shared_ptr<SharedBackoff> shared);
    RedisPool(RedisPool&&) noexcept;
    ~RedisPool();

    const RedisEndpoint& endpoint() const;

    // Runs fn(RedisConnection&) -> Result<T> on a connection. A reused connection that
    // turns out lost (the server restarted) is replaced and fn runs once more.
    template <class T, class Fn> Result<T> run(Fn&& fn) {
        for (int attempt = 0;; ++attempt) {
            bool reused = false;
            auto connection = checkout(reused);
            if (!connection) {
                return std::unexpected(connection.error());
            }
            Result<T> result = fn(**connection);
            bool retry = (*connection)->lost() && reused && attempt == 0;
            checkin(std::move(*connection));
            if (!retry) {
                return result;
            }
        }
    }

    // A connection held for a while (a value read or written in pieces with commands in
    // flight); back to the pool when the lease ends.
    class Lease {
    public:
        Lease(RedisPool& pool, std::unique_ptr<RedisConnection> connection, bool reused)
            : m_pool(&pool), m_connection(std::move(connection)), m_reused(reused) {}
        Lease(Lease&& other) noexcept = default;
        Lease& operator=(Lease&& other) noexcept {
            release();
            m_pool = other.m_pool;
            m_connection = std::move(other.m_connection);
            m_reused = other.m_reused;
            return *this;
        }
        ~Lease() { release(); }
        RedisConnection& operator*() const { return *m_connection; }
        RedisConnection* operator->() const { return m_connection.get(); }
        // It had served someone before (so a lost connection may be the server restarting).
        bool reused() const { return m_reused; }

    private:
        void release() {
            if (m_connection) {
                m_pool->checkin(std::move(m_connection));
            }
        }
        RedisPool* m_pool;
        std::unique_ptr<RedisConnection> m_connection;
        bool m_reused;
    };
    Result<Lease> lease() {
        bool reused = false;
        auto connection = checkout(reused);
        if (!connection) {
            return std::unexpected(connection.error());
        }
        return Lease(*this, std::move(*connection), reused);
    }

private:
    struct State;
    Result<std::unique_ptr<RedisConnection>> checkout(bool& reused);
    void checkin(std::unique_ptr<RedisConnection> connection);

    std::unique_ptr<State> m_state;
};

} // namespace curlcache::backends
