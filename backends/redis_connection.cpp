// hiredis connections: URL parsing, connect/AUTH/SELECT, commands with timeouts, error
// classification (failure / timeout / server gone), and the connection pool.
#include "backends/redis_connection.h"

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <atomic>
#include <cstring>
#include <memory>
#include <new>
#include <sys/socket.h>
#include <unistd.h>

namespace curlcache::backends {
namespace {

timeval to_timeval(int64_t ms) {
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

std::string first_line(const char* text, size_t size) {
    std::string_view view(text, size);
    return std::string(view.substr(0, view.find_first_of("\r\n")));
}

// A GET of a large value would otherwise be copied twice: hiredis copies it from its read
// buffer into the reply, and the backend copied the reply into the std::string a Blob
// holds. Our reader builds a top-level bulk string directly as a std::string (its pointer
// kept in the otherwise unused `integer` field), which get() then moves into the Blob.
redisReplyObjectFunctions* g_default_functions = nullptr;

void* create_owned_string(const redisReadTask* task, char* text, size_t size) {
    if (task->parent != nullptr || task->type != REDIS_REPLY_STRING) {
        return g_default_functions->createString(task, text, size);
    }
    auto* reply = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
    if (reply == nullptr) {
        return nullptr;
    }
    std::string* owner = nullptr;
    try {
        owner = new std::string(text, size);
    } catch (...) {
        std::free(reply);
        return nullptr; // hiredis reports out of memory
    }
    reply->type = REDIS_REPLY_STRING;
    reply->str = owner->data();
    reply->len = size;
    reply->integer = static_cast<long long>(reinterpret_cast<intptr_t>(owner));
    return reply;
}

void free_object(void* reply) { free_redis_reply(static_cast<redisReply*>(reply)); }

void use_owned_strings(redisContext& context) {
    static redisReplyObjectFunctions functions = [&] {
        g_default_functions = context.reader->fn;
        redisReplyObjectFunctions ours = *context.reader->fn;
        ours.createString = create_owned_string;
        ours.freeObject = free_object;
        return ours;
    }();
    context.reader->fn = &functions;
}

std::string* owned_string(const redisReply& reply) {
    if (reply.type != REDIS_REPLY_STRING || reply.integer == 0) {
        return nullptr;
    }
    return reinterpret_cast<std::string*>(static_cast<intptr_t>(reply.integer));
}

} // namespace

void free_redis_reply(redisReply* reply) {
    if (reply == nullptr) {
        return;
    }
    if (std::string* owner = owned_string(*reply)) {
        delete owner;
        std::free(reply);
        return;
    }
    freeReplyObject(reply);
}

std::string take_reply_string(redisReply& reply) {
    if (std::string* owner = owned_string(reply)) {
        std::string out = std::move(*owner);
        owner->clear();
        reply.str = owner->data();
        reply.len = 0;
        return out;
    }
    return std::string(reply.str, reply.len);
}

Result<std::unique_ptr<RedisConnection>>
RedisConnection::connect(const RedisEndpoint& endpoint, int64_t connect_timeout_ms,
                         int64_t command_timeout_ms, bool& reached) {
    reached = false;
    std::string where = "redis " + endpoint.display();
    redisContext* raw = nullptr;
    if (connect_timeout_ms > 0) {
        timeval limit = to_timeval(connect_timeout_ms);
        raw = endpoint.socket_path.empty()
                  ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, limit)
                  : redisConnectUnixWithTimeout(endpoint.socket_path.c_str(), limit);
    } else {
        raw = endpoint.socket_path.empty() ? redisConnect(endpoint.host.c_str(), endpoint.port)
                                           : redisConnectUnix(endpoint.socket_path.c_str());
    }
    if (raw == nullptr) {
        return fail(where + ": out of memory");
    }
    std::unique_ptr<redisContext, RedisContextFree> context(raw);
    if (context->err == 0) {
        use_owned_strings(*context);
    }
    if (context->err != 0) {
        int saved = errno;
        std::string reason = context->errstr;
        if (saved == ETIMEDOUT || reason.find("timed out") != std::string::npos) {
            return backends::timed_out(where + ": no connection within " + std::to_string(connect_timeout_ms) +
                             " ms");
        }
        return fail(where + ": cannot connect: " + reason);
    }
    reached = true;
    if (command_timeout_ms > 0 && redisSetTimeout(context.get(), to_timeval(command_timeout_ms)) != REDIS_OK) {
        return fail(where + ": cannot set the command timeout");
    }
    std::unique_ptr<RedisConnection> connection(new RedisConnection(std::move(context), where));
    if (!endpoint.password.empty()) {
        if (endpoint.user.empty()) {
            connection->append({"AUTH", endpoint.password});
        } else {
            connection->append({"AUTH", endpoint.user, endpoint.password});
        }
        auto reply = connection->read_reply();
        if (!reply) {
            return std::unexpected(reply.error());
        }
        if ((*reply)->type == REDIS_REPLY_ERROR) {
            return fail(where + ": authentication failed (" +
                        first_line((*reply)->str, (*reply)->len) + ")");
        }
    }
    if (endpoint.db != 0) {
        auto reply = connection->command({"SELECT", std::to_string(endpoint.db)});
        if (!reply) {
            return std::unexpected(reply.error());
        }
    }
    return connection;
}

void RedisConnection::append(std::initializer_list<std::string_view> args) {
    constexpr size_t k_most = 24; // our commands have at most 18 arguments
    if (args.size() > k_most) {
        m_broken = true;
        return;
    }
    const char* argv[k_most];
    size_t lengths[k_most];
    int count = 0;
    for (auto arg : args) {
        argv[count] = arg.data();
        lengths[count] = arg.size();
        ++count;
    }
    if (redisAppendCommandArgv(m_context.get(), count, argv, lengths) != REDIS_OK) {
        m_broken = true;
    }
}

void RedisConnection::append_raw(std::string_view bytes) {
    if (redisAppendFormattedCommand(m_context.get(), bytes.data(), bytes.size()) != REDIS_OK) {
        m_broken = true;
    }
}

// hiredis sends with write(2): a server that went away would raise SIGPIPE and kill the
// host program. We send the output buffer ourselves with MSG_NOSIGNAL (no signal-mask
// syscalls per command); redisGetReply then finds it empty and only reads.
Result<void> RedisConnection::flush() {
    if (m_broken) {
        return fail(m_where + ": out of memory");
    }
    sds out = m_context->obuf;
    size_t size = sdslen(out);
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = ::send(m_context->fd, out + sent, size - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return send_error(n < 0 ? errno : EPIPE);
        }
    }
    if (size > (64u << 10)) {
        sdsfree(out); // do not keep a large value's buffer on an idle connection
        m_context->obuf = sdsempty();
        if (m_context->obuf == nullptr) {
            m_broken = true;
            return fail(m_where + ": out of memory");
        }
    } else {
        sdsclear(out);
    }
    return {};
}

std::unexpected<Error> RedisConnection::send_error(int error) {
    m_broken = true;
    m_timed_out = error == EAGAIN || error == EWOULDBLOCK;
    m_lost = error == EPIPE || error == ECONNRESET;
    if (m_timed_out) {
        return backends::timed_out(m_where + ": no answer within the command timeout");
    }
    return fail(m_where + ": " + (m_lost ? std::string("connection lost") : std::strerror(error)));
}

Result<RedisReplyPtr> RedisConnection::read_reply() {
    if (m_broken) {
        return fail(m_where + ": out of memory");
    }
    if (auto flushed = flush(); !flushed) {
        return std::unexpected(flushed.error());
    }
    // hiredis' redisGetReply reads 16 KiB per recv(2): 65,536 system calls for a GiB of a
    // large hit. Replies are read here 256 KiB at a time into one buffer per thread.
    constexpr size_t k_read_size = 256 * 1024;
    thread_local std::unique_ptr<char[]> buffer;
    redisReader* reader = m_context->reader;
    for (;;) {
        void* reply = nullptr;
        if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
            m_broken = true;
            return fail(m_where + ": protocol error: " + reader->errstr);
        }
        if (reply != nullptr) {
            return RedisReplyPtr(static_cast<redisReply*>(reply));
        }
        if (!buffer) {
            buffer.reset(new (std::nothrow) char[k_read_size]);
            if (!buffer) {
                m_broken = true;
                return fail(m_where + ": out of memory");
            }
        }
        ssize_t n = ::recv(m_context->fd, buffer.get(), k_read_size, 0);
        if (n > 0) {
            if (redisReaderFeed(reader, buffer.get(), static_cast<size_t>(n)) != REDIS_OK) {
                m_broken = true;
                return fail(m_where + ": out of memory");
            }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return receive_error(n == 0 ? 0 : errno);
        }
    }
}

std::unexpected<Error> RedisConnection::receive_error(int error) {
    m_broken = true;
    m_timed_out = error == EAGAIN || error == EWOULDBLOCK || error == ETIMEDOUT;
    m_lost = error == 0 || error == ECONNRESET || error == EPIPE;
    if (m_timed_out) {
        return backends::timed_out(m_where + ": no answer within the command timeout");
    }
    return fail(m_where + ": " + (m_lost ? std::string("connection lost") : std::strerror(error)));
}

Result<RedisReplyPtr> RedisConnection::command(std::initializer_list<std::string_view> args) {
    append(args);
    auto reply = read_reply();
    if (reply && (*reply)->type == REDIS_REPLY_ERROR) {
        return reply_error(**reply);
    }
    return reply;
}

void RedisConnection::append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(m_context.get(), static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
        m_broken = true;
    }
}

Result<RedisReplyPtr> RedisConnection::command(const std::vector<std::string>& args) {
    append(args);
    auto reply = read_reply();
    if (reply && (*reply)->type == REDIS_REPLY_ERROR) {
        return reply_error(**reply);
    }
    return reply;
}

std::unexpected<Error> RedisConnection::reply_error(const redisReply& reply) const {
    std::string text = first_line(reply.str, reply.len);
    if (text.starts_with("NOAUTH")) {
        return fail(m_where + ": authentication required (put the password in redis.url)");
    }
    if (text.starts_with("WRONGPASS")) {
        return fail(m_where + ": authentication failed");
    }
    return fail(m_where + ": " + text);
}

struct RedisPool::State {
    RedisEndpoint endpoint;
    int64_t connect_timeout_ms = 0;
    int64_t command_timeout_ms = 0;
    std::mutex mutex;
    uint64_t generation = fork_generation();
    std::vector<std::unique_ptr<RedisConnection>> idle;
    std::chrono::steady_clock::time_point retry_at{};
    Error last_error;
    std::shared_ptr<SharedBackoff> shared; // may be null
};

RedisPool::RedisPool(RedisEndpoint endpoint, int64_t connect_timeout_ms, int64_t command_timeout_ms,
                     std::shared_ptr<SharedBackoff> shared)
    : m_state(std::make_unique<State>()) {
    m_state->shared = std::move(shared);
    m_state->endpoint = std::move(endpoint);
    m_state->connect_timeout_ms = connect_timeout_ms;
    m_state->command_timeout_ms = command_timeout_ms;
}
RedisPool::RedisPool(RedisPool&&) noexcept = default;
RedisPool::~RedisPool() = default;

const RedisEndpoint& RedisPool::endpoint() const { return m_state->endpoint; }

Result<std::unique_ptr<RedisConnection>> RedisPool::checkout(bool& reused) {
    State& state = *m_state;
    {
        std::lock_guard guard(state.mutex);
        if (state.generation != fork_generation()) {
            state.idle.clear(); // closes the child's copies of the parent's sockets
            state.generation = fork_generation();
        }
        if (!state.idle.empty()) {
            auto connection = std::move(state.idle.back());
            state.idle.pop_back();
            reused = true;
            return connection;
        }
        if (std::chrono::steady_clock::now() < state.retry_at) {
            return std::unexpected(state.last_error);
        }
    }
    reused = false;
    bool reached = false;
    auto connection = RedisConnection::connect(state.endpoint, state.connect_timeout_ms,
                                               state.command_timeout_ms, reached);
    if (!connection) {
        // Down or hung: not a refused password, which the next process should see at once.
        if (state.shared && (!reached || connection.error().kind == ErrorKind::timeout)) {
            state.shared->failed();
        }
        std::lock_guard guard(state.mutex);
        state.retry_at = std::chrono::steady_clock::now() + k_retry_backoff;
        state.last_error = connection.error();
    }
    return connection;
}

void RedisPool::checkin(std::unique_ptr<RedisConnection> connection) {
    State& state = *m_state;
    if (state.shared) {
        if (connection->timed_out()) {
            state.shared->failed();
        } else if (!connection->broken()) {
            state.shared->succeeded();
        }
    }
    std::lock_guard guard(state.mutex);
    if (connection->broken()) {
        if (connection->lost() || connection->timed_out()) {
            state.idle.clear(); // the others talk to the same dead or hung server
        }
        if (connection->timed_out()) {
            state.retry_at = std::chrono::steady_clock::now() + k_retry_backoff;
            state.last_error = Error{ErrorKind::timeout,
                                     connection->where() + ": not answering (timeout); retrying later"};
        }
        return;
    }
    if (state.generation == fork_generation() && state.idle.size() < 16) {
        state.idle.push_back(std::move(connection));
    }
}

} // namespace curlcache::backends
