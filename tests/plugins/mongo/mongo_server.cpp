#include "tests/plugins/mongo/mongo_server.h"

#include "tests/redis/fixture.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace curlcache::tests::mongo {

MongoServer::MongoServer() {
    start();
}

MongoServer::~MongoServer() {
    kill9();
}

std::string MongoServer::url() const {
    return "mongodb://127.0.0.1:" + std::to_string(m_port) + "/";
}

void MongoServer::start() {
    int out[2];
    if (pipe(out) != 0) {
        std::abort();
    }
    const pid_t parent = getpid();
    m_pid = fork();
    if (m_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); // no orphan server whatever happens to the test
        if (getppid() != parent || dup2(out[1], STDOUT_FILENO) < 0) {
            _exit(127);
        }
        close(out[0]);
        close(out[1]);
        const std::string port = std::to_string(m_port);
        execl(CURLCACHE_DEBIAN_PYTHON3, CURLCACHE_DEBIAN_PYTHON3, CURLCACHE_MONGO_SERVER, "--port",
              port.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(out[1]);
    // The server prints its port once it listens: nothing to poll.
    char line[32] = {};
    size_t got = 0;
    while (got + 1 < sizeof line) {
        const ssize_t n = read(out[0], line + got, 1);
        if (n <= 0 || line[got] == '\n') {
            break;
        }
        got += static_cast<size_t>(n);
    }
    close(out[0]);
    m_port = std::atoi(line);
    if (m_port <= 0) {
        std::fprintf(stderr, "%s did not start\n", CURLCACHE_MONGO_SERVER);
        std::abort();
    }
}

void MongoServer::kill9() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGCONT);
        ::kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

// Every thread of the server stopped (state T in /proc): SIGSTOP takes effect a moment
// after kill() returns, and a loaded machine may let a request through meanwhile.
static bool stopped(pid_t pid) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
        std::ifstream stat(task.path() / "stat");
        std::string line;
        std::getline(stat, line);
        const size_t end = line.rfind(')');
        if (end == std::string::npos || end + 2 >= line.size() || line[end + 2] != 'T') {
            return false;
        }
    }
    return !error;
}

void MongoServer::pause() {
    ::kill(m_pid, SIGSTOP);
    if (!redis::await([&] { return stopped(m_pid); }, 10000)) {
        std::fprintf(stderr, "the test server %d did not stop\n", static_cast<int>(m_pid));
        std::abort();
    }
}

void MongoServer::resume() {
    ::kill(m_pid, SIGCONT);
}

config::Settings mongo_settings(const MongoServer& server, const std::string& backend,
                                const std::string& database) {
    config::Settings settings;
    settings.backend = {backend};
    settings.plugin_dir = CURLCACHE_PLUGIN_OUTPUT_DIR;
    settings.name = database;
    // The group moves 100 MiB values through a Python server on a loaded machine: a long
    // operation timeout (timeouts have their own test).
    settings.plugin_tables[backend] = {{"url", server.url()},
                                       {"connect_timeout", "2000"},
                                       {"operation_timeout", "60s"}};
    return settings;
}

} // namespace curlcache::tests::mongo
