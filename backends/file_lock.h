// Cross-process locks for backends that live in files (sqlite, filesystem): one byte per
// key (at a hash of the key) of one lock file in a folder next to the cache
// ("<cache>.locks/keys.lock"), locked with an open-file-description lock (F_OFD_SETLK).
// Taking and releasing one is a single fcntl, with no file created or removed per key (a
// file per key cost a miss 7 system calls and two directory updates). The kernel releases
// the lock when its holder dies, so a crashed holder's lock is taken over at once.
#pragma once

#include "backends/storage.h"

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <unordered_map>

namespace curlcache::backends {

class FileLocks {
public:
    explicit FileLocks(std::string dir) : m_dir(std::move(dir)) {}
    ~FileLocks();
    FileLocks(const FileLocks&) = delete;
    FileLocks& operator=(const FileLocks&) = delete;

    // True when this caller now holds the lock for `key`; false when another process or
    // another caller in this process holds it. Creates the folder (0700) when needed.
    Result<bool> try_lock(std::string_view key);
    // Releases a lock this process holds; does nothing otherwise.
    Result<void> unlock(std::string_view key);

    const std::string& dir() const { return m_dir; }

private:
    void forget_after_fork();
    Result<void> open_lock_file();

    std::string m_dir;
    int m_fd = -1; // the lock file, opened at the first try_lock
    std::string m_refused; // why the lock folder or file was refused, once it was
    std::mutex m_mutex;
    pid_t m_pid = 0;
    std::unordered_map<std::string, off_t> m_held; // key -> locked byte
};

// "<location>.locks" for a backend whose location() is an absolute path (sqlite,
// filesystem); "" for one without (memory, shared in-memory SQLite, Redis).
std::string lock_dir_for(const Storage& storage);

// Wraps `inner` so that try_lock/unlock use FileLocks in `lock_dir`; everything else is
// forwarded unchanged. An empty lock_dir returns `inner` itself.
std::unique_ptr<Storage> with_file_locks(std::unique_ptr<Storage> inner, std::string lock_dir);

} // namespace curlcache::backends
