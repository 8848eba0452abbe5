#include "tests/redis/fixture.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace curlcache::tests::redis {

std::string make_scratch() {
    std::vector<std::string> names;
    for (char** env = environ; *env != nullptr; ++env) {
        if (std::strncmp(*env, "CURLCACHE_", 10) == 0) {
            std::string entry = *env;
            names.push_back(entry.substr(0, entry.find('=')));
        }
    }
    for (const auto& name : names) {
        unsetenv(name.c_str());
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/curlcache-redis-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    // The Redis back-off markers (backends/backoff.h) of a test's dead or paused servers
    // stay in its scratch folder, never in the user's cache to outlive the test.
    setenv("XDG_CACHE_HOME", pattern.c_str(), 1);
    return pattern;
}

void remove_tree(const std::string& path) {
    if (path.empty()) {
        return;
    }
    nftw(
        path.c_str(),
        [](const char* file, const struct stat*, int, struct FTW*) { return ::remove(file); }, 16,
        FTW_DEPTH | FTW_PHYS);
}

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
        std::perror("free_port");
        std::abort();
    }
    close(fd);
    return ntohs(address.sin_port);
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool await(const std::function<bool()>& ready, int64_t limit_ms) {
    int64_t deadline = now_ms() + limit_ms;
    int pause_ms = 1;
    while (!ready()) {
        if (now_ms() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
        pause_ms = std::min(pause_ms * 2, 50);
    }
    return true;
}

RedisServer::RedisServer(std::string dir, std::vector<std::string> extra, int port)
    : m_dir(std::move(dir)), m_extra(std::move(extra)), m_port(port != 0 ? port : free_port()) {
    for (size_t i = 0; i + 1 < m_extra.size(); ++i) {
        if (m_extra[i] == "--requirepass") {
            m_password = m_extra[i + 1];
        }
    }
    start();
}

RedisServer::~RedisServer() { stop(); }

std::string RedisServer::url(int db) const {
    return "redis://127.0.0.1:" + std::to_string(m_port) + "/" + std::to_string(db);
}

std::string RedisServer::unix_socket() const {
    return m_dir + "/redis-" + std::to_string(m_port) + ".sock";
}

void RedisServer::start() {
    std::vector<std::string> args{"redis-server", "--port", std::to_string(m_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                                  m_dir, "--unixsocket", unix_socket(), "--unixsocketperm",
                                  "700", "--loglevel", "warning", "--logfile",
                                  m_dir + "/redis-" + std::to_string(m_port) + ".log"};
    args.insert(args.end(), m_extra.begin(), m_extra.end());
    const pid_t parent = getpid();
    m_pid = fork();
    if (m_pid == 0) {
        // The server ends with the test process however that ends (an abort, a cmocka
        // failure that longjmps past the destructor, a ctest timeout): no orphans.
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(127);
        }
        std::vector<char*> argv;
        for (auto& arg : args) {
            argv.push_back(arg.data());
        }
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    // Ours, not another test's server that took the port meanwhile: INFO names the pid.
    const std::string our_pid = "process_id:" + std::to_string(m_pid) + "\r\n";
    bool up = await(
        [&] {
            return command({"PING"}) == "PONG" &&
                   command({"INFO", "server"}).find(our_pid) != std::string::npos;
        },
        10000);
    if (!up) {
        std::fprintf(stderr, "redis-server on port %d did not start\n", m_port);
        std::abort();
    }
}

void RedisServer::stop() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGCONT);
        ::kill(m_pid, SIGTERM);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

void RedisServer::kill9() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

void RedisServer::pause() { ::kill(m_pid, SIGSTOP); }
void RedisServer::resume() { ::kill(m_pid, SIGCONT); }

std::string RedisServer::command(const std::vector<std::string>& args) const {
    timeval limit{1, 0};
    redisContext* context = redisConnectWithTimeout("127.0.0.1", m_port, limit);
    if (context == nullptr || context->err != 0) {
        redisFree(context);
        return "(no connection)";
    }
    redisSetTimeout(context, limit);
    if (!m_password.empty()) {
        freeReplyObject(redisCommand(context, "AUTH %s", m_password.c_str()));
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    std::string text = "(no reply)";
    if (reply != nullptr) {
        switch (reply->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS: text.assign(reply->str, reply->len); break;
        case REDIS_REPLY_ERROR: text = "(error) " + std::string(reply->str, reply->len); break;
        case REDIS_REPLY_INTEGER: text = "(integer) " + std::to_string(reply->integer); break;
        case REDIS_REPLY_NIL: text = "(nil)"; break;
        default: text = "(array) " + std::to_string(reply->elements); break;
        }
        freeReplyObject(reply);
    }
    redisFree(context);
    return text;
}

Origin::Origin() {
    int out[2];
    if (pipe(out) != 0) {
        std::perror("pipe");
        std::abort();
    }
    m_pid = fork();
    if (m_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); // as for redis-server: no orphan origin
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        std::string script = std::string(CURLCACHE_SOURCE_DIR) + "/scripts/origin.py";
        execlp("python3", "python3", script.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(out[1]);
    std::FILE* ready = fdopen(out[0], "r");
    if (ready == nullptr || std::fscanf(ready, "%d", &m_port) != 1) { // awaits readiness
        std::fprintf(stderr, "scripts/origin.py did not start\n");
        std::abort();
    }
    std::fclose(ready);
}

Origin::~Origin() {
    ::kill(m_pid, SIGTERM);
    waitpid(m_pid, nullptr, 0);
}

std::string Origin::url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
}

config::Settings redis_settings(const RedisServer& server, const std::string& ns) {
    config::Settings settings;
    settings.backend = {"redis"};
    settings.name = ns;
    settings.redis_url = server.url();
    settings.redis_connect_timeout_ms = 250;
    settings.redis_command_timeout_ms = 500;
    return settings;
}

} // namespace curlcache::tests::redis
