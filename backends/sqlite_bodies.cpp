// The sqlite backend's body files (see sqlite_bodies.h).
#include "backends/sqlite_bodies.h"

#include "backends/filesystem_storage.h"
#include "backends/temp_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

namespace curlcache::backends::sqlite {

namespace {

constexpr std::string_view k_temp_prefix = "tmp-";

// 16 hex digits that no other writer (thread, process, machine sharing the folder) picks.
std::string random_suffix() {
    uint64_t bits = 0;
    if (::getrandom(&bits, sizeof bits, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bits)) {
        static std::atomic<uint64_t> counter{0};
        bits = (static_cast<uint64_t>(::getpid()) << 40) ^
               (static_cast<uint64_t>(std::time(nullptr)) << 16) ^ counter.fetch_add(1);
    }
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, bits >>= 4) {
        out[static_cast<size_t>(i)] = k_hex[bits & 15];
    }
    return out;
}

std::string describe(const std::string& path, const char* what) {
    return "sqlite body file " + path + ": " + what + ": " + std::strerror(errno);
}

struct DirClose {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

} // namespace

std::string bodies_dir_for(const std::string& database) {
    return database + ".bodies";
}

Result<BodyFile> BodyFile::create(const std::string& dir) {
    for (int attempt = 0;; ++attempt) {
        std::string path = dir + '/' + std::string(k_temp_prefix) + temp_files::writer_id() +
                           '-' + random_suffix();
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            (void)temp_files::hold(fd); // until closed: a sweep then knows it is being written
            return BodyFile(dir, std::move(path), fd);
        }
        if (errno == ENOENT && attempt == 0) {
            if (auto made = make_private_dirs(dir); !made) {
                return std::unexpected(made.error());
            }
            continue;
        }
        if (errno != EEXIST || attempt > 3) {
            return fail(describe(path, "cannot create"));
        }
    }
}

BodyFile::BodyFile(BodyFile&& other) noexcept
    : m_dir(std::move(other.m_dir)), m_path(std::exchange(other.m_path, {})),
      m_batch(std::move(other.m_batch)), m_name(std::move(other.m_name)),
      m_fd(std::exchange(other.m_fd, -1)), m_size(other.m_size) {}

BodyFile::~BodyFile() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
    if (!m_path.empty()) {
        ::unlink(m_path.c_str());
    }
}

Result<void> BodyFile::write(std::string_view bytes) {
    if (m_fd < 0) {
        return fail("sqlite body file " + m_path + ": written after it was placed");
    }
    m_size += bytes.size();
    if (m_batch.size() + bytes.size() <= k_write_batch) {
        if (m_batch.capacity() < k_write_batch) {
            try {
                m_batch.reserve(k_write_batch);
            } catch (const std::bad_alloc&) {
                return write_out(bytes);
            }
        }
        m_batch.append(bytes);
        return m_batch.size() == k_write_batch ? flush_batch() : Result<void>{};
    }
    if (auto flushed = flush_batch(); !flushed) {
        return flushed;
    }
    if (bytes.size() >= k_write_batch) {
        return write_out(bytes);
    }
    m_batch.append(bytes);
    return {};
}

Result<void> BodyFile::flush_batch() {
    auto done = write_out(m_batch);
    m_batch.clear();
    return done;
}

Result<void> BodyFile::write_out(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t wrote = ::write(m_fd, bytes.data(), bytes.size());
        if (wrote < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(describe(m_path, "cannot write"));
        }
        bytes.remove_prefix(static_cast<size_t>(wrote));
    }
    return {};
}

Result<std::string> BodyFile::place(std::string_view key) {
    if (!m_name.empty()) {
        return m_name;
    }
    if (m_fd >= 0) {
        auto flushed = flush_batch();
        std::string().swap(m_batch);
        if (!flushed) {
            return std::unexpected(flushed.error());
        }
        int closed = ::close(m_fd);
        m_fd = -1;
        if (closed != 0 && errno != EINTR) {
            return fail(describe(m_path, "cannot write")); // NFS reports late errors here
        }
    }
    std::string shard(key.substr(0, 2));
    if (shard.size() < 2) {
        shard = "00";
    }
    std::string name = shard + '/' + std::string(key) + '.' + random_suffix();
    std::string target = m_dir + '/' + name;
    if (::rename(m_path.c_str(), target.c_str()) != 0) {
        // The shard folder is made on first use (another writer may make it at once).
        bool made = errno == ENOENT &&
                    (::mkdir((m_dir + '/' + shard).c_str(), 0700) == 0 || errno == EEXIST);
        if (!made || ::rename(m_path.c_str(), target.c_str()) != 0) {
            return fail(describe(target, "cannot move into place"));
        }
    }
    m_path = std::move(target);
    m_name = name;
    return name;
}

BodyRead open_body(const std::string& dir, std::string_view name, base::Fd& fd,
                   std::string& error) {
    std::string path = dir + '/' + std::string(name);
    if (!valid_body_name(name)) {
        error = "sqlite body file " + path + ": not a body file name";
        return BodyRead::failed;
    }
    fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) {
            return BodyRead::missing;
        }
        error = describe(path, "cannot open");
        return BodyRead::failed;
    }
    return BodyRead::ok;
}

BodyRead read_body(const std::string& dir, std::string_view name, char* into, uint64_t length,
                   uint64_t& got, std::string& error) {
    got = 0;
    std::string path = dir + '/' + std::string(name);
    base::Fd owned;
    if (BodyRead opened = open_body(dir, name, owned, error); opened != BodyRead::ok) {
        return opened;
    }
    int fd = owned.release();
    while (got < length) {
        ssize_t n = ::read(fd, into + got, length - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = describe(path, "cannot read");
            ::close(fd);
            return BodyRead::failed;
        }
        if (n == 0) {
            break; // short: the entry's checksum will tell
        }
        got += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return BodyRead::ok;
}

bool valid_body_name(std::string_view name) {
    return !name.empty() && name.front() != '/' && name.find("..") == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

void unlink_body(const std::string& dir, std::string_view name) {
    if (valid_body_name(name)) {
        ::unlink((dir + '/' + std::string(name)).c_str());
    }
}

bool body_file_missing(const std::string& dir, std::string_view name) {
    struct stat st {};
    return valid_body_name(name) &&
           ::lstat((dir + '/' + std::string(name)).c_str(), &st) != 0 && errno == ENOENT;
}

std::string_view key_of_body_name(std::string_view name) {
    size_t slash = name.find('/');
    name.remove_prefix(slash == std::string_view::npos ? 0 : slash + 1);
    return name.substr(0, name.rfind('.'));
}

uint64_t sweep_bodies(const std::string& dir, const std::unordered_set<std::string>& named,
                      std::time_t stale_before) {
    uint64_t removed = 0;
    DirPtr top(::opendir(dir.c_str()));
    if (!top) {
        return 0;
    }
    int top_fd = ::dirfd(top.get());
    while (const dirent* entry = ::readdir(top.get())) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") {
            continue;
        }
        struct stat st {};
        if (::fstatat(top_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            // A temp file: a stream still writing it, or one that died (temp_files.h).
            if (name.starts_with(k_temp_prefix) &&
                temp_files::remove_if_dead(top_fd, entry->d_name,
                                           name.substr(k_temp_prefix.size()), st.st_mtime,
                                           stale_before)) {
                ++removed;
            }
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            continue;
        }
        int shard_fd =
            ::openat(top_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (shard_fd < 0) {
            continue;
        }
        DirPtr shard(::fdopendir(shard_fd));
        if (!shard) {
            ::close(shard_fd);
            continue;
        }
        std::string prefix = std::string(name) + '/';
        while (const dirent* file = ::readdir(shard.get())) {
            std::string_view file_name = file->d_name;
            if (file_name == "." || file_name == "..") {
                continue;
            }
            if (!named.contains(prefix + std::string(file_name)) &&
                ::unlinkat(shard_fd, file->d_name, 0) == 0) {
                ++removed;
            }
        }
    }
    return removed;
}

bool sweep_due(const std::string& dir, std::time_t every) {
    std::string stamp = dir + '/' + std::string(k_sweep_stamp);
    struct stat st {};
    std::time_t now = std::time(nullptr);
    if (::stat(stamp.c_str(), &st) == 0 && st.st_mtime <= now && now - st.st_mtime < every) {
        return false;
    }
    int fd = ::open(stamp.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0) {
        return errno != ENOENT; // ENOENT: no bodies folder, nothing to sweep
    }
    ::futimens(fd, nullptr);
    ::close(fd);
    return true;
}

temp_files::Tally sweep_temps(const std::string& dir, std::time_t stale_before) {
    return temp_files::sweep(dir, k_temp_prefix, stale_before);
}

} // namespace curlcache::backends::sqlite
