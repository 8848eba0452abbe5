// A private PostgreSQL 15 for the tests of the postgres plugin: initdb into a scratch
// folder once, then postgres on a free 127.0.0.1 port (fsync off), as the user postgres
// when the test runs as root (initdb through setpriv; the server forked, made postgres and
// exec'd by us, so the PID we hold is the server's), stopped by that PID. About a second
// to ready.
#pragma once

#include "config/settings.h"

#include <string>
#include <sys/types.h>

namespace curlcache::tests::postgres {

class PgServer {
public:
    explicit PgServer(std::string dir); // initdb + start; aborts when it cannot
    ~PgServer();
    PgServer(const PgServer&) = delete;
    PgServer& operator=(const PgServer&) = delete;

    int port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    // A libpq URI of the server's "postgres" database as the user postgres.
    std::string url() const;

    void start(); // awaits readiness (PQping) of this very server (postmaster.pid)
    void stop();  // SIGINT (fast shutdown) + waitpid
    void kill9(); // SIGKILL of the server and its backends + waitpid
    void pause(); // SIGSTOP of the postmaster and its backends: nothing answers
    void resume();

    // Runs SQL on a private connection; the first value of the last result, or
    // "ERROR: ..." (for checks behind the backend's back).
    std::string sql(const std::string& text) const;

private:
    void launch(); // fork + exec of the server, as postgres when root

    std::string m_dir;
    int m_port = 0;
    pid_t m_pid = -1;
};

// The pg_config --bindir of PostgreSQL 15 (or /usr/lib/postgresql/15/bin); "" if none.
std::string bindir();

// Settings for the postgres plugin of the build tree on `server`, cache table `table`.
config::Settings postgres_settings(const PgServer& server, const std::string& table);

} // namespace curlcache::tests::postgres
