// Persistent statistics; see stats.h. The file is a few "name value" lines, written at a
// fixed width so that a rewrite never needs to shrink the file (one pwrite, no window in
// which it is empty), and readable by a human or a shell script.
#include "core/stats.h"

#include "backends/tiered_storage.h"
#include "base/fd.h"
#include "base/private_path.h"
#include "core/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>
#include <vector>

namespace curlcache::core::stats {

namespace {

// Name and member, in file order. Names never change: old files stay readable.
using Field = std::pair<const char*, uint64_t Counters::*>;
constexpr std::array<Field, 10> k_fields{{
    {"hits", &Counters::hits},
    {"misses", &Counters::misses},
    {"stores", &Counters::stores},
    {"errors", &Counters::errors},
    {"errors_timeout", &Counters::errors_timeout},
    {"corrupt", &Counters::corrupt},
    {"passthrough", &Counters::passthrough},
    {"bytes_served", &Counters::bytes_served},
    {"bytes_downloaded", &Counters::bytes_downloaded},
    {"time_saved_ms", &Counters::time_saved_ms},
}};

using AtomicField = std::atomic<uint64_t> Stats::*;
constexpr std::array<AtomicField, 10> k_atomics{
    &Stats::hits,        &Stats::misses,         &Stats::stores,
    &Stats::errors,      &Stats::errors_timeout, &Stats::corrupt,
    &Stats::passthrough, &Stats::bytes_served,   &Stats::bytes_downloaded,
    &Stats::time_saved_ms,
};

using base::Fd;

std::string errno_message(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + std::strerror(errno);
}

// Reads the whole (small) file from offset 0.
backends::Result<Counters> read_fd(int fd, const std::string& path) {
    std::string text;
    char buffer[1024];
    off_t offset = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return backends::fail(errno_message("cannot read", path));
        }
        if (n == 0 || text.size() > (1u << 16)) {
            break;
        }
        text.append(buffer, static_cast<size_t>(n));
        offset += n;
    }
    Counters counters;
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) {
            end = text.size();
        }
        std::string line = text.substr(at, end - at);
        at = end + 1;
        char name[64];
        unsigned long long value = 0;
        if (std::sscanf(line.c_str(), "%63s %llu", name, &value) != 2) {
            continue; // unknown or damaged line: skipped, the rest still counts
        }
        for (const Field& field : k_fields) {
            if (std::strcmp(field.first, name) == 0) {
                counters.*field.second = value;
            }
        }
    }
    return counters;
}

backends::Result<void> write_fd(int fd, const std::string& path, const Counters& counters) {
    std::string text;
    for (const Field& field : k_fields) {
        char line[80];
        int n = std::snprintf(line, sizeof line, "%-16s %20" PRIu64 "\n", field.first,
                              counters.*field.second);
        text.append(line, static_cast<size_t>(n));
    }
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return backends::fail_errno("cannot write " + path, errno);
        }
        done += static_cast<size_t>(n);
    }
    if (::ftruncate(fd, static_cast<off_t>(text.size())) != 0) {
        return backends::fail_errno("cannot truncate " + path, errno);
    }
    return {};
}

// Opens the file for update and takes the exclusive lock (released when fd closes). The
// folder (created when missing, as for a filesystem cache that has only missed so far) and
// the file are checked like every cache file (base/private_path.h): never through a link,
// never one another user owns or can write.
backends::Result<int> open_locked(const std::string& path) {
    size_t slash = path.rfind('/');
    std::string folder = slash == std::string::npos ? "."
                         : slash == 0               ? "/"
                                                    : path.substr(0, slash);
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    auto dir = base::open_private_dir(folder, true);
    if (!dir) {
        return std::unexpected(backends::Error{backends::ErrorKind::failure,
                                               dir.error().message, dir.error().code});
    }
    auto file = base::open_private(*dir->fd, name, O_RDWR | O_CREAT, path);
    if (!file) {
        return std::unexpected(backends::Error{backends::ErrorKind::failure,
                                               file.error().message, file.error().code});
    }
    int fd = file->release();
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            std::string message = errno_message("cannot lock", path);
            ::close(fd);
            return backends::fail(message);
        }
    }
    return fd;
}

struct Tracked {
    Stats* stats;
    std::string path;
    std::vector<std::string> run_paths;
};

struct Registry {
    std::mutex mutex;
    std::vector<Tracked> tracked;
};

// Leaked: the exit handler may run after static destructors.
Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

void flush_all_at_exit() {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (auto& tracked : r.tracked) {
        flush(*tracked.stats, tracked.path, tracked.run_paths);
    }
}

void warn_not_saved(const backends::Error& error) {
    log::warn_once(log::cause("stats", "flush", error.code).c_str(), "cannot save statistics: %s",
                   error.message.c_str());
}

void install_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        std::atexit(flush_all_at_exit);
        pthread_atfork([] { registry().mutex.lock(); }, [] { registry().mutex.unlock(); },
                       [] {
                           // The child's copies of the parent's counters are the parent's
                           // to flush: start from zero.
                           for (auto& tracked : registry().tracked) {
                               take(*tracked.stats);
                           }
                           registry().mutex.unlock();
                       });
    });
}

std::string sanitize(std::string_view name) {
    std::string out;
    for (char c : name) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.';
        out += plain ? c : '_';
    }
    if (out.empty() || out[0] == '.') {
        out.insert(out.begin(), '_');
    }
    return out;
}

// Resolved once, when the cache opens: a program that changes directory later still
// adds to the file next to its cache.
std::string absolute(const std::string& path) {
    if (path.empty() || path[0] == '/') {
        return path;
    }
    std::error_code error;
    std::filesystem::path full = std::filesystem::absolute(path, error);
    return error ? path : full.string();
}

} // namespace

Counters& Counters::operator+=(const Counters& other) {
    for (const Field& field : k_fields) {
        this->*field.second += other.*field.second;
    }
    return *this;
}

bool Counters::empty() const {
    for (const Field& field : k_fields) {
        if (this->*field.second != 0) {
            return false;
        }
    }
    return true;
}

Counters snapshot(const Stats& stats) {
    Counters out;
    for (size_t i = 0; i < k_fields.size(); ++i) {
        out.*k_fields[i].second = (stats.*k_atomics[i]).load(std::memory_order_relaxed);
    }
    return out;
}

Counters take(Stats& stats) {
    Counters out;
    for (size_t i = 0; i < k_fields.size(); ++i) {
        out.*k_fields[i].second = (stats.*k_atomics[i]).exchange(0, std::memory_order_relaxed);
    }
    return out;
}

void add(Stats& stats, const Counters& counters) {
    for (size_t i = 0; i < k_fields.size(); ++i) {
        (stats.*k_atomics[i]).fetch_add(counters.*k_fields[i].second, std::memory_order_relaxed);
    }
}

std::string file_path(const config::Settings& settings, const backends::Storage& storage) {
    // A tiered cache keeps its statistics beside its last tier, the one every write
    // reaches and the most widely shared (a SQLite file, a Redis namespace).
    if (auto* tiered = backends::as_tiered(const_cast<backends::Storage&>(storage))) {
        return file_path(settings, tiered->tier(tiered->tier_count() - 1));
    }
    std::string_view name = storage.name();
    std::string location = storage.location();
    if (name == "memory") {
        return {};
    }
    if (name == "sqlite") {
        if (settings.sqlite_use_memory || location.empty() || location == ":memory:" ||
            location.starts_with("file:")) {
            return {};
        }
        return absolute(location) + ".stats";
    }
    if (name == "filesystem") {
        return location.empty() ? std::string() : absolute(location) + "/stats";
    }
    // Owner-only, like every folder the cache creates, and checked (an error shows when the
    // file is written: open_locked checks again).
    std::string dir = base::user_cache_dir();
    (void)base::open_private_dir(dir, true);
    // The redis backend's default namespace is "curlcache"; others have no namespace.
    std::string space = !settings.name.empty() ? settings.name
                        : name == "redis"      ? std::string("curlcache")
                                               : std::string("default");
    std::string file =
        name == "redis" ? sanitize(space) : sanitize(std::string(name) + "-" + space);
    return dir + "/" + file + ".stats";
}

backends::Result<Counters> read_file(const std::string& path) {
    int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (raw < 0) {
        if (errno == ENOENT) {
            return Counters{};
        }
        return backends::fail(errno_message("cannot open", path));
    }
    Fd fd(raw);
    while (::flock(fd.get(), LOCK_SH) != 0) {
        if (errno != EINTR) {
            return backends::fail(errno_message("cannot lock", path));
        }
    }
    return read_fd(fd.get(), path);
}

backends::Result<void> add_to_file(const std::string& path, const Counters& delta) {
    auto raw = open_locked(path);
    if (!raw) {
        return std::unexpected(raw.error());
    }
    Fd fd(*raw);
    auto current = read_fd(fd.get(), path);
    if (!current) {
        return std::unexpected(current.error());
    }
    *current += delta;
    return write_fd(fd.get(), path, *current);
}

backends::Result<void> zero_file(const std::string& path) {
    auto raw = open_locked(path);
    if (!raw) {
        return std::unexpected(raw.error());
    }
    Fd fd(*raw);
    return write_fd(fd.get(), path, Counters{});
}

std::vector<std::string> run_files() {
    std::vector<std::string> paths;
    const char* value = std::getenv("CURLCACHE_RUN_STATS");
    std::string_view list = value != nullptr ? value : "";
    while (!list.empty()) {
        size_t colon = list.find(':');
        std::string_view path = list.substr(0, colon);
        if (path.starts_with('/')) { // only absolute paths: never relative to a program's cwd
            paths.emplace_back(path);
        }
        list = colon == std::string_view::npos ? std::string_view{} : list.substr(colon + 1);
    }
    return paths;
}

void flush(Stats& stats, const std::string& path, const std::vector<std::string>& run_paths) {
    Counters delta = take(stats);
    if (delta.empty()) {
        return;
    }
    for (const std::string& run_path : run_paths) {
        if (auto done = add_to_file(run_path, delta); !done) {
            warn_not_saved(done.error());
        }
    }
    if (path.empty()) {
        return;
    }
    if (auto done = add_to_file(path, delta); !done) {
        if (run_paths.empty()) {
            add(stats, delta);
        }
        warn_not_saved(done.error());
    }
}

void track(Stats* stats, const std::string& path, const std::vector<std::string>& run_paths) {
    install_handlers();
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.tracked.push_back(Tracked{stats, path, run_paths});
}

void untrack(Stats* stats) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    std::erase_if(r.tracked, [&](const Tracked& tracked) { return tracked.stats == stats; });
}

backends::Result<std::string> create_run_file() {
    auto dir = base::open_private_dir(base::private_temp_dir(), true);
    if (!dir) {
        return backends::fail(dir.error().message);
    }
    std::string path = dir->path + "/run-stats-XXXXXX";
    int fd = ::mkstemp(path.data());
    if (fd < 0) {
        return backends::fail(errno_message("cannot create", path));
    }
    Fd owned(fd);
    if (auto written = write_fd(fd, path, Counters{}); !written) {
        ::unlink(path.c_str());
        return std::unexpected(written.error());
    }
    return path;
}

backends::Result<Counters> read_run_file(const std::string& path) {
    auto counters = read_file(path);
    ::unlink(path.c_str());
    return counters;
}

} // namespace curlcache::core::stats
