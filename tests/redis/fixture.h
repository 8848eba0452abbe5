// Shared helpers of the tests in tests/redis/: a scratch directory with a clean CURLCACHE_*
// environment, free loopback ports, and a private redis-server started and stopped by PID.
#pragma once

#include "config/settings.h"

#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace curlcache::tests::redis {

// mkdtemp under $TMPDIR (or /tmp) and unsetenv of every CURLCACHE_* variable.
std::string make_scratch();
void remove_tree(const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int free_port();

// Milliseconds on the monotonic clock.
int64_t now_ms();

// Polls `ready` with a short, growing pause until it holds or `limit_ms` passes.
bool await(const std::function<bool()>& ready, int64_t limit_ms);

class RedisServer {
public:
    // Starts redis-server on a free port (or `port`), persistence off, data in `dir`.
    // `extra` are more arguments ("--requirepass", "x"). Awaits PING; aborts the test
    // process when the server does not come up within 10 s.
    RedisServer(std::string dir, std::vector<std::string> extra = {}, int port = 0);
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    int port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    std::string url(int db = 0) const;          // redis://127.0.0.1:port/db
    std::string unix_socket() const;            // path of its Unix socket

    void stop();    // SIGTERM + waitpid
    void kill9();   // SIGKILL + waitpid
    void start();   // again, same port and socket
    void pause();   // SIGSTOP: the server stops answering
    void resume();  // SIGCONT

    // Runs a command through a private connection (for checks behind the backend's back);
    // returns the reply as text, "(nil)", "(integer) N" or "(error) ...".
    std::string command(const std::vector<std::string>& args) const;

private:
    std::string m_dir;
    std::vector<std::string> m_extra;
    std::string m_password;
    int m_port = 0;
    pid_t m_pid = -1;
};

// scripts/origin.py (the project's test origin) on a free loopback port; the constructor
// returns once it accepts connections (it prints its port then), the destructor stops it.
class Origin {
public:
    Origin();
    ~Origin();
    Origin(const Origin&) = delete;
    Origin& operator=(const Origin&) = delete;
    int port() const { return m_port; }
    std::string url(const std::string& path) const; // "http://127.0.0.1:PORT" + path

private:
    pid_t m_pid = -1;
    int m_port = 0;
};

// Settings for the Redis backend against `server` with cache name `ns`.
config::Settings redis_settings(const RedisServer& server, const std::string& ns);

} // namespace curlcache::tests::redis
