// Connections of the PostgreSQL plugin: each with its prepared statements and a deadline on
// every wait (connect, each statement), kept in a small per-process pool. After a failed
// connect or a timeout every operation fails at once for k_backoff (as the Redis backend
// does), so a dead or hung server costs one timeout per second, not one per transfer. A
// forked child never touches its parent's connections (it would close the parent's
// session): they are abandoned, and the child connects anew.
#pragma once

#include <curlcache/backend.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace curlcache::plugins::postgres {

using Clock = std::chrono::steady_clock;

// An error on its way to curlcache: status + one line without credentials.
struct Failure {
    curlcache_backend_status status = CURLCACHE_BACKEND_FAILURE;
    std::string message;
    bool retry = true; // false once the caller has seen part of the answer
};

struct PgResultFree {
    void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, PgResultFree>;

// One parameter of a statement: text, or binary bytes (bytea).
struct Param {
    const char* data;
    int length;
    bool binary;
};

// One statement prepared on every connection: its name and text.
struct Statement {
    const char* name;
    std::string sql;
    int params;
};

class Connection {
public:
    Connection(PGconn* conn, std::string where);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Connects within timeout_ms and prepares `statements`.
    static std::unique_ptr<Connection> connect(const std::string& conninfo, int64_t timeout_ms,
                                               const std::vector<Statement>& statements,
                                               const std::string& where, Failure& failure);

    // Runs a prepared statement and waits for its one result within timeout_ms (results in
    // binary when binary_result). Null on error, with `failure` filled in.
    Result run(const char* name, const std::vector<Param>& params, bool binary_result,
               int64_t timeout_ms, Failure& failure);
    // Runs a plain SQL command (BEGIN, COMMIT, VACUUM, schema statements).
    Result exec(const std::string& sql, int64_t timeout_ms, Failure& failure);

    // Sends a prepared statement whose rows are then read one at a time with next_row()
    // (single-row mode: a 100 MiB value in chunks is never buffered whole).
    bool send_rows(const char* name, const std::vector<Param>& params, bool binary_result,
                   Failure& failure);
    // The next row (PGRES_SINGLE_TUPLE), or null at the end (ok) or on error (failure set;
    // status stays OK at the end).
    Result next_row(int64_t timeout_ms, Failure& failure, bool& end);

    // True when the connection must not be reused (lost, timed out, mid-transaction).
    bool broken() const { return m_broken; }
    bool timed_out() const { return m_timed_out; }
    bool lost() const { return m_conn != nullptr && PQstatus(m_conn) == CONNECTION_BAD; }
    void abandon(); // forked child: forget the connection without closing the session

private:
    bool wait_readable(Clock::time_point deadline);
    bool await_result(Clock::time_point deadline, Failure& failure);
    Result get_result(Clock::time_point deadline, Failure& failure);
    bool send(const char* name, const std::vector<Param>& params, bool binary_result,
              Failure& failure);
    Failure error(const char* what, const PGresult* result = nullptr);

    PGconn* m_conn;
    std::string m_where;
    bool m_broken = false;
    bool m_timed_out = false;
};

class Pool {
public:
    static constexpr std::chrono::milliseconds k_backoff{1000};
    static constexpr size_t k_max_idle = 4;

    Pool(std::string conninfo, std::string where, int64_t connect_timeout_ms,
         std::vector<Statement> statements);
    ~Pool();

    // A connection for one operation, or the reason there is none (including the
    // back-off after a failure). Give it back with checkin().
    std::unique_ptr<Connection> checkout(Failure& failure);
    void checkin(std::unique_ptr<Connection> connection);

    const std::string& where() const { return m_where; }

private:
    std::string m_conninfo;
    std::string m_where;
    int64_t m_connect_timeout_ms;
    std::vector<Statement> m_statements;
    std::mutex m_mutex;
    uint64_t m_generation;
    std::vector<std::unique_ptr<Connection>> m_idle;
    Clock::time_point m_retry_at{};
    Failure m_last_failure;
};

// Increases in a child after fork().
uint64_t fork_generation();

} // namespace curlcache::plugins::postgres
