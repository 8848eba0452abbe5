// Cross-process locks for backends that live in files (sqlite, filesystem): one flock'ed
// file per key in a lock folder next to the cache ("<cache>.locks/"). The kernel releases
// a flock when its holder dies, so a crashed holder's lock is taken over at once.
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
    // Releases a lock this process holds (removing its file); does nothing otherwise.
    Result<void> unlock(std::string_view key);

    const std::string& dir() const { return m_dir; }

private:
    void forget_after_fork();

    std::string m_dir;
    std::mutex m_mutex;
    pid_t m_pid = 0;
    std::unordered_map<std::string, int> m_held; // key -> locked descriptor
};

// "<location>.locks" for a backend whose location() is an absolute path (sqlite,
// filesystem); "" for one without (memory, shared in-memory SQLite, Redis).
std::string lock_dir_for(const Storage& storage);

// Wraps `inner` so that try_lock/unlock use FileLocks in `lock_dir`; everything else is
// forwarded unchanged. An empty lock_dir returns `inner` itself.
std::unique_ptr<Storage> with_file_locks(std::unique_ptr<Storage> inner, std::string lock_dir);

} // namespace curlcache::backends
