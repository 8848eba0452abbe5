// Logging: one mutex-protected sink (stderr or an append-only, owner-only log file), a
// level checked before formatting (see CURLCACHE_LOG), and once-only warnings.
//
// Each message is formatted into one buffer and handed to the kernel in a single write(2)
// on an O_APPEND descriptor, so lines from several processes sharing a log file do not
// interleave. stdout is never used: the shim must not pollute the program's output.
#include "core/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

namespace curlcache::core::log {

std::atomic<int> g_level{static_cast<int>(config::LogLevel::warning)};

namespace {

constexpr const char* k_prefix = "curlcache: ";

struct Sink {
    std::mutex mutex;
    int fd = STDERR_FILENO;       // owned when != STDERR_FILENO
    std::string path;             // "" = stderr
    std::set<std::string> warned; // once_keys already seen
};

// Leaked on purpose: logging must keep working from atexit handlers and static
// destructors of other translation units, whatever the destruction order.
Sink& sink() {
    static Sink* s = new Sink;
    return *s;
}

// A child forked while another thread held the mutex would deadlock on its first message:
// hold the mutex across fork() and release it on both sides.
void install_fork_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        pthread_atfork([] { sink().mutex.lock(); }, [] { sink().mutex.unlock(); },
                       [] { sink().mutex.unlock(); });
    });
}

const char* level_name(config::LogLevel level) {
    switch (level) {
    case config::LogLevel::error:
        return "error: ";
    case config::LogLevel::warning:
        return "warning: ";
    case config::LogLevel::info:
        return "";
    case config::LogLevel::debug:
        return "debug: ";
    }
    return "";
}

void write_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; // nowhere left to report a logging failure
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
}

// Formats "curlcache: <level>message\n" and writes it; the caller holds no lock.
void emit(config::LogLevel level, const char* format, va_list args) {
    std::string line = k_prefix;
    line += level_name(level);
    char small[512];
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(small, sizeof small, format, copy);
    va_end(copy);
    if (n < 0) {
        line += "(unprintable message)";
    } else if (static_cast<size_t>(n) < sizeof small) {
        line.append(small, static_cast<size_t>(n));
    } else {
        size_t at = line.size();
        line.resize(at + static_cast<size_t>(n) + 1);
        std::vsnprintf(line.data() + at, static_cast<size_t>(n) + 1, format, args);
        line.resize(at + static_cast<size_t>(n));
    }
    if (line.empty() || line.back() != '\n') {
        line += '\n';
    }
    Sink& s = sink();
    std::lock_guard lock(s.mutex);
    write_all(s.fd, line.data(), line.size());
}

} // namespace

void configure(config::LogLevel level, const std::string& path) {
    install_fork_handlers();
    g_level.store(static_cast<int>(level), std::memory_order_relaxed);
    Sink& s = sink();
    std::lock_guard lock(s.mutex);
    if (path == s.path) {
        return;
    }
    int fd = STDERR_FILENO;
    if (!path.empty()) {
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            int saved = errno;
            std::string line = std::string(k_prefix) + "warning: cannot open log file " + path +
                               ": " + std::strerror(saved) + "; logging to stderr\n";
            write_all(s.fd, line.data(), line.size());
            return;
        }
    }
    if (s.fd != STDERR_FILENO) {
        ::close(s.fd);
    }
    s.fd = fd;
    s.path = fd == STDERR_FILENO ? std::string() : path;
}

void write(config::LogLevel level, const char* format, ...) {
    va_list args;
    va_start(args, format);
    emit(level, format, args);
    va_end(args);
}

std::string cause(std::string_view room, std::string_view operation, int code) {
    switch (code) {
    case ENOSPC:
    case EDQUOT:
        return "no-space";
    case EISDIR:
    case ENOTDIR:
    case ENOTEMPTY:
    case EEXIST:
        return std::string(room) + ":not-a-file";
    case EACCES:
    case EPERM:
    case EROFS:
        return std::string(room) + ":permission";
    default:
        return std::string(room) + ":" + std::string(operation);
    }
}

void warn_once(const char* once_key, const char* format, ...) {
    if (!enabled(config::LogLevel::warning)) {
        return;
    }
    {
        Sink& s = sink();
        std::lock_guard lock(s.mutex);
        if (!s.warned.insert(once_key ? once_key : "").second) {
            return;
        }
    }
    va_list args;
    va_start(args, format);
    emit(config::LogLevel::warning, format, args);
    va_end(args);
}

} // namespace curlcache::core::log
