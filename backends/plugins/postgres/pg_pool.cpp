#include "backends/plugins/postgres/pg_pool.h"

#include <atomic>
#include <poll.h>
#include <pthread.h>

namespace curlcache::plugins::postgres {

namespace {

std::atomic<uint64_t> g_generation{0};

void on_fork_child() {
    g_generation.fetch_add(1, std::memory_order_relaxed);
}

// libpq's messages end in a newline and may span lines; curlcache wants one line.
std::string one_line(const char* text) {
    std::string line = text != nullptr ? text : "";
    for (char& c : line) {
        if (c == '\n' || c == '\r' || c == '\t') {
            c = ' ';
        }
    }
    while (!line.empty() && line.back() == ' ') {
        line.pop_back();
    }
    return line;
}

Clock::time_point deadline_after(int64_t ms) {
    return Clock::now() + std::chrono::milliseconds(ms);
}

} // namespace

uint64_t fork_generation() {
    static const bool registered = pthread_atfork(nullptr, nullptr, on_fork_child) == 0;
    (void)registered;
    return g_generation.load(std::memory_order_relaxed);
}

Connection::Connection(PGconn* conn, std::string where) : m_conn(conn), m_where(std::move(where)) {}

Connection::~Connection() {
    if (m_conn != nullptr) {
        PQfinish(m_conn);
    }
}

void Connection::abandon() {
    m_conn = nullptr; // the parent's session: never closed or written to from here
}

Failure Connection::error(const char* what, const PGresult* result) {
    m_broken = true;
    const char* detail = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(m_conn);
    return {CURLCACHE_BACKEND_FAILURE, m_where + ": " + what + ": " + one_line(detail)};
}

bool Connection::wait_readable(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
        return false;
    }
    pollfd fd{PQsocket(m_conn), POLLIN, 0};
    return ::poll(&fd, 1, static_cast<int>(left)) > 0;
}

std::unique_ptr<Connection> Connection::connect(const std::string& conninfo, int64_t timeout_ms,
                                                const std::vector<Statement>& statements,
                                                const std::string& where, Failure& failure) {
    const Clock::time_point deadline = deadline_after(timeout_ms);
    auto connection = std::make_unique<Connection>(PQconnectStart(conninfo.c_str()), where);
    PGconn* conn = connection->m_conn;
    if (conn == nullptr) {
        failure = {CURLCACHE_BACKEND_FAILURE, where + ": out of memory"};
        return nullptr;
    }
    if (PQstatus(conn) == CONNECTION_BAD) {
        failure = connection->error("cannot connect");
        return nullptr;
    }
    // libpq's own connect_timeout counts whole seconds; this deadline is the config's.
    for (PostgresPollingStatusType state = PGRES_POLLING_WRITING;;) {
        if (state == PGRES_POLLING_OK) {
            break;
        }
        if (state == PGRES_POLLING_FAILED) {
            failure = connection->error("cannot connect");
            return nullptr;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd fd{PQsocket(conn), static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        if (left <= 0 || ::poll(&fd, 1, static_cast<int>(left)) <= 0) {
            failure = {CURLCACHE_BACKEND_TIMEOUT,
                       where + ": no connection within " + std::to_string(timeout_ms) + " ms"};
            return nullptr;
        }
        state = PQconnectPoll(conn);
    }
    // The server's notices ("relation ... already exists, skipping") would go to stderr:
    // the program's, which the shim must never write to.
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    if (PQsetnonblocking(conn, 1) != 0) {
        failure = connection->error("cannot connect");
        return nullptr;
    }
    for (const Statement& statement : statements) {
        if (PQsendPrepare(conn, statement.name, statement.sql.c_str(), statement.params, nullptr) != 1) {
            failure = connection->error("prepare");
            return nullptr;
        }
        Result prepared = connection->get_result(deadline, failure);
        if (!prepared) {
            return nullptr;
        }
    }
    return connection;
}

// Sends what is queued and reads until a result is complete, within the deadline.
bool Connection::await_result(Clock::time_point deadline, Failure& failure) {
    while (PQflush(m_conn) == 1 || PQisBusy(m_conn)) {
        if (!wait_readable(deadline)) {
            m_broken = true;
            m_timed_out = true;
            failure = {CURLCACHE_BACKEND_TIMEOUT, m_where + ": no answer in time"};
            return false;
        }
        if (PQconsumeInput(m_conn) != 1) {
            failure = error("connection lost");
            return false;
        }
    }
    return true;
}

// Waits for every result of what was sent last; returns the last one, or null (with
// `failure`) when any failed.
Result Connection::get_result(Clock::time_point deadline, Failure& failure) {
    Result last;
    Failure first_error;
    for (;;) {
        if (!await_result(deadline, failure)) {
            return nullptr;
        }
        Result result(PQgetResult(m_conn));
        if (!result) {
            break;
        }
        const ExecStatusType status = PQresultStatus(result.get());
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && first_error.message.empty()) {
            first_error = error("statement failed", result.get());
        }
        last = std::move(result);
    }
    if (!first_error.message.empty()) {
        failure = first_error;
        return nullptr;
    }
    if (!last) {
        failure = error("no result");
        return nullptr;
    }
    return last;
}

bool Connection::send(const char* name, const std::vector<Param>& params, bool binary_result,
                      Failure& failure) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& param : params) {
        values.push_back(param.data);
        lengths.push_back(param.length);
        formats.push_back(param.binary ? 1 : 0);
    }
    if (PQsendQueryPrepared(m_conn, name, static_cast<int>(params.size()), values.data(),
                            lengths.data(), formats.data(), binary_result ? 1 : 0) != 1) {
        failure = error("send");
        return false;
    }
    return true;
}

Result Connection::run(const char* name, const std::vector<Param>& params, bool binary_result,
                       int64_t timeout_ms, Failure& failure) {
    if (!send(name, params, binary_result, failure)) {
        return nullptr;
    }
    return get_result(deadline_after(timeout_ms), failure);
}

Result Connection::exec(const std::string& sql, int64_t timeout_ms, Failure& failure) {
    if (PQsendQuery(m_conn, sql.c_str()) != 1) {
        failure = error("send");
        return nullptr;
    }
    return get_result(deadline_after(timeout_ms), failure);
}

bool Connection::send_rows(const char* name, const std::vector<Param>& params, bool binary_result,
                           Failure& failure) {
    if (!send(name, params, binary_result, failure)) {
        return false;
    }
    if (PQsetSingleRowMode(m_conn) != 1) {
        failure = error("single-row mode");
        return false;
    }
    return true;
}

Result Connection::next_row(int64_t timeout_ms, Failure& failure, bool& end) {
    end = false;
    const Clock::time_point deadline = deadline_after(timeout_ms);
    if (!await_result(deadline, failure)) {
        return nullptr;
    }
    Result result(PQgetResult(m_conn));
    if (!result) {
        end = true;
        return nullptr;
    }
    switch (PQresultStatus(result.get())) {
    case PGRES_SINGLE_TUPLE:
        return result;
    case PGRES_TUPLES_OK: // the end: drain the terminating null result
        while (Result rest{PQgetResult(m_conn)}) {
        }
        end = true;
        return nullptr;
    default:
        failure = error("statement failed", result.get());
        while (Result rest{PQgetResult(m_conn)}) {
        }
        return nullptr;
    }
}

Pool::Pool(std::string conninfo, std::string where, int64_t connect_timeout_ms,
           std::vector<Statement> statements)
    : m_conninfo(std::move(conninfo)), m_where(std::move(where)),
      m_connect_timeout_ms(connect_timeout_ms), m_statements(std::move(statements)),
      m_generation(fork_generation()) {}

Pool::~Pool() {
    if (m_generation != fork_generation()) {
        for (auto& connection : m_idle) {
            connection->abandon();
        }
    }
}

std::unique_ptr<Connection> Pool::checkout(Failure& failure) {
    {
        std::lock_guard lock(m_mutex);
        if (m_generation != fork_generation()) {
            for (auto& connection : m_idle) {
                connection->abandon();
            }
            m_idle.clear();
            m_generation = fork_generation();
        }
        if (!m_idle.empty()) {
            auto connection = std::move(m_idle.back());
            m_idle.pop_back();
            return connection;
        }
        if (Clock::now() < m_retry_at) {
            failure = m_last_failure;
            return nullptr;
        }
    }
    auto connection =
        Connection::connect(m_conninfo, m_connect_timeout_ms, m_statements, m_where, failure);
    if (!connection) {
        std::lock_guard lock(m_mutex);
        m_retry_at = Clock::now() + k_backoff;
        m_last_failure = failure;
    }
    return connection;
}

void Pool::checkin(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(m_mutex);
    if (m_generation != fork_generation()) {
        connection->abandon();
        return;
    }
    if (connection->broken()) {
        // A lost or hung server: the idle ones talk to it too. After a timeout, back off.
        m_idle.clear();
        if (connection->timed_out()) {
            m_retry_at = Clock::now() + k_backoff;
            m_last_failure = {CURLCACHE_BACKEND_TIMEOUT, m_where + ": not answering; retrying later"};
        }
        return;
    }
    if (m_idle.size() < k_max_idle) {
        m_idle.push_back(std::move(connection));
    }
}

} // namespace curlcache::plugins::postgres
