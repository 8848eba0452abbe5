// Temp files of dead writers (see temp_files.h).
#include "backends/temp_files.h"

#include "base/fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

namespace curlcache::backends::temp_files {

namespace {

struct ProcState {
    char state = '?';
    uint64_t start = 0;
};

// State and start time (field 22, clock ticks after boot) of `pid` from /proc/<pid>/stat;
// nullopt when it cannot be read (errno tells why).
std::optional<ProcState> read_proc_stat(pid_t pid) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    base::Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    char buf[1024];
    ssize_t n;
    do {
        n = ::read(*fd, buf, sizeof buf - 1);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        errno = n == 0 ? ESRCH : errno;
        return std::nullopt;
    }
    std::string_view text(buf, static_cast<size_t>(n));
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    size_t close = text.rfind(')');
    if (close == std::string_view::npos) {
        errno = EINVAL;
        return std::nullopt;
    }
    text.remove_prefix(close + 1);
    ProcState out;
    for (int field = 3; field <= 22; ++field) {
        while (!text.empty() && text.front() == ' ') {
            text.remove_prefix(1);
        }
        size_t end = std::min(text.find(' '), text.size());
        std::string_view token = text.substr(0, end);
        if (field == 3 && !token.empty()) {
            out.state = token.front();
        } else if (field == 22) {
            std::from_chars(token.data(), token.data() + token.size(), out.start);
        }
        text.remove_prefix(end);
    }
    return out;
}

struct Writer {
    pid_t pid = 0;
    uint64_t start = 0;
};

// "p<pid>s<start>" at the front of `id`; nullopt for a name without one.
std::optional<Writer> parse_writer(std::string_view id) {
    if (id.size() < 4 || id.front() != 'p') {
        return std::nullopt;
    }
    Writer writer;
    const char* end = id.data() + id.size();
    auto [after_pid, pid_error] = std::from_chars(id.data() + 1, end, writer.pid);
    if (pid_error != std::errc{} || after_pid == end || *after_pid != 's' || writer.pid <= 0) {
        return std::nullopt;
    }
    auto [after_start, start_error] = std::from_chars(after_pid + 1, end, writer.start);
    if (start_error != std::errc{} || (after_start != end && *after_start != '-')) {
        return std::nullopt;
    }
    return writer;
}

struct DirClose {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};

} // namespace

std::string writer_id() {
    // Read once per process: two threads racing here compute the same values.
    static std::atomic<pid_t> cached_pid{0};
    static std::atomic<uint64_t> cached_start{0};
    pid_t pid = ::getpid();
    uint64_t start = cached_start.load(std::memory_order_acquire);
    if (cached_pid.load(std::memory_order_acquire) != pid) {
        auto self = read_proc_stat(pid);
        start = self ? self->start : 0;
        cached_start.store(start, std::memory_order_release);
        cached_pid.store(pid, std::memory_order_release);
    }
    return "p" + std::to_string(pid) + "s" + std::to_string(start);
}

bool hold(int fd) {
    // Never waits: a sweep checking this very file holds its lock for a few system calls,
    // but a sweep that is stopped (SIGSTOP) would hold it for as long as it likes.
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            return true;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
        ::sched_yield();
    }
    return false;
}

bool process_alive(pid_t pid, uint64_t start) {
    if (auto proc = read_proc_stat(pid)) {
        if (proc->state == 'Z' || proc->state == 'X') {
            return false;
        }
        return start == 0 || proc->start == start;
    }
    if (errno == ENOENT || errno == ESRCH) {
        // Gone - if /proc is there at all; without it only kill(2) can tell.
        if (::access("/proc/self/stat", R_OK) == 0) {
            return false;
        }
    }
    return ::kill(pid, 0) == 0 || errno == EPERM;
}

bool remove_if_dead(int dir_fd, const char* name, std::string_view id, std::time_t mtime,
                    std::time_t stale_before) {
    auto writer = parse_writer(id);
    if (!writer) {
        return mtime < stale_before && ::unlinkat(dir_fd, name, 0) == 0;
    }
    base::Fd fd(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        return false;
    }
    if (::flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        return false; // held: its writer is alive (or checked by another sweep right now)
    }
    if (process_alive(writer->pid, writer->start)) {
        return false; // not locked yet, or closed and about to be renamed
    }
    // Removed while we hold its lock: no writer can have it (names are never reused).
    return ::unlinkat(dir_fd, name, 0) == 0;
}

Tally sweep(const std::string& dir, std::string_view prefix, std::time_t stale_before) {
    Tally tally;
    std::unique_ptr<DIR, DirClose> folder(::opendir(dir.c_str()));
    if (!folder) {
        return tally;
    }
    int dir_fd = ::dirfd(folder.get());
    while (const dirent* entry = ::readdir(folder.get())) {
        std::string_view name = entry->d_name;
        if (!name.starts_with(prefix) ||
            (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN)) {
            continue;
        }
        struct stat st {};
        if (::fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
            continue;
        }
        auto bytes = static_cast<uint64_t>(st.st_size);
        if (remove_if_dead(dir_fd, entry->d_name, name.substr(prefix.size()), st.st_mtime,
                           stale_before)) {
            ++tally.removed;
            tally.removed_bytes += bytes;
        } else {
            ++tally.files;
            tally.bytes += bytes;
        }
    }
    return tally;
}

} // namespace curlcache::backends::temp_files
