// Fixture of the engine tests (see easy_support.h).
#include "tests/easy/easy_support.h"

#include "core/easy/cache_access.h"

#include <curl/curl.h>

#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

pid_t g_origin_pid = -1;
int g_origin_port = -1;
std::string g_scratch;

void clear_curlcache_env() {
    for (;;) {
        std::string name;
        for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
            if (std::strncmp(*env, "CURLCACHE_", 10) == 0) {
                const char* eq = std::strchr(*env, '=');
                name.assign(*env, eq ? static_cast<size_t>(eq - *env) : std::strlen(*env));
                break;
            }
        }
        if (name.empty()) {
            return;
        }
        unsetenv(name.c_str());
    }
}

size_t collect(char* ptr, size_t size, size_t count, void* userdata) {
    static_cast<std::string*>(userdata)->append(ptr, size * count);
    return size * count;
}

} // namespace

extern "C" int origin_start(void) {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        return -1;
    }
    std::string script = std::string(CURLCACHE_SOURCE_DIR) + "/tests/easy/origin.py";
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execlp("python3", "python3", script.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(pipe_fds[1]);
    // The origin prints its port once it listens: reading the line awaits readiness.
    char line[32] = {0};
    size_t used = 0;
    while (used + 1 < sizeof line) {
        ssize_t got = read(pipe_fds[0], line + used, 1);
        if (got <= 0 || line[used] == '\n') {
            break;
        }
        used += static_cast<size_t>(got);
    }
    close(pipe_fds[0]);
    g_origin_pid = pid;
    g_origin_port = std::atoi(line);
    if (g_origin_port <= 0) {
        origin_stop();
        return -1;
    }
    return g_origin_port;
}

extern "C" void origin_stop(void) {
    if (g_origin_pid > 0) {
        kill(g_origin_pid, SIGTERM);
        waitpid(g_origin_pid, nullptr, 0);
    }
    g_origin_pid = -1;
}

extern "C" long origin_count(void) {
    CURL* curl = curl_easy_init(); // plain libcurl: never through the cache
    if (curl == nullptr) {
        return -1;
    }
    std::string body;
    std::string url = "http://127.0.0.1:" + std::to_string(g_origin_port) + "/__count";
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? std::atol(body.c_str()) : -1;
}

extern "C" int origin_port(void) {
    return g_origin_port;
}

extern "C" const char* origin_url(int slot, const char* path_format, ...) {
    static char urls[4][512];
    char path[400];
    va_list args;
    va_start(args, path_format);
    std::vsnprintf(path, sizeof path, path_format, args);
    va_end(args);
    char* url = urls[slot & 3];
    std::snprintf(url, sizeof urls[0], "http://127.0.0.1:%d%s", g_origin_port, path);
    return url;
}

extern "C" int scratch_begin(const char* backend) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/curlcache-easy-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
        return -1;
    }
    g_scratch = pattern;
    clear_curlcache_env();
    setenv("XDG_CONFIG_HOME", (g_scratch + "/config").c_str(), 1);
    setenv("XDG_CACHE_HOME", (g_scratch + "/cache").c_str(), 1);
    setenv("HOME", g_scratch.c_str(), 1);
    setenv("CURLCACHE_BACKEND", backend, 1);
    // These tests are about the engine's mechanics (replay, tee, getinfo, modes) against an
    // origin that mostly sends no freshness: the config decides, as it did before HTTP
    // caching rules came in. tests/shim/http_semantics*.py test the rules themselves.
    setenv("CURLCACHE_HERMETIC", "1", 1);
    if (std::strcmp(backend, "sqlite") == 0) {
        setenv("CURLCACHE_NAME", (g_scratch + "/cache.sqlite").c_str(), 1);
    }
    curlcache::core::easy::close_process_cache();
    return 0;
}

extern "C" void scratch_end(void) {
    curlcache::core::easy::close_process_cache();
    clear_curlcache_env();
    std::error_code ignored;
    if (!g_scratch.empty()) {
        std::filesystem::remove_all(g_scratch, ignored);
    }
    g_scratch.clear();
}

extern "C" const char* scratch_dir(void) {
    return g_scratch.c_str();
}

extern "C" void engine_reopen_cache(void) {
    curlcache::core::easy::close_process_cache();
}
