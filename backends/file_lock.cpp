// flock-based locks; see file_lock.h.
#include "backends/file_lock.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace curlcache::backends {
namespace {

bool valid_lock_key(std::string_view key) {
    return !key.empty() && key.size() <= 200 && key.front() != '.' &&
           key.find('/') == std::string_view::npos && key.find('\0') == std::string_view::npos;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

} // namespace

FileLocks::~FileLocks() {
    std::lock_guard guard(m_mutex);
    forget_after_fork();
    for (auto& [key, fd] : m_held) {
        ::unlink((m_dir + '/' + key + ".lock").c_str());
        ::close(fd);
    }
}

// A child inherits the parent's locked descriptors. Closing its copies leaves the parent's
// locks in place (a flock belongs to the shared open file), and the child never releases
// locks it did not take.
void FileLocks::forget_after_fork() {
    if (m_pid != getpid()) {
        if (m_pid != 0) {
            for (auto& [key, fd] : m_held) {
                ::close(fd);
            }
            m_held.clear();
        }
        m_pid = getpid();
    }
}

Result<bool> FileLocks::try_lock(std::string_view key) {
    if (!valid_lock_key(key)) {
        return fail("lock: invalid key \"" + std::string(key) + "\"");
    }
    std::lock_guard guard(m_mutex);
    forget_after_fork();
    if (m_held.contains(std::string(key))) {
        return false; // another caller in this process holds it
    }
    if (::mkdir(m_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return fail(errno_text("lock: cannot create " + m_dir));
    }
    std::string path = m_dir + '/' + std::string(key) + ".lock";
    // The holder removes the file when it unlocks; someone who opened the old file just
    // before may then lock a file that is gone. Check that the locked file is still the
    // one at `path`, and try again if not.
    for (int attempt = 0; attempt < 8; ++attempt) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            return fail(errno_text("lock: cannot open " + path));
        }
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int saved = errno;
            ::close(fd);
            if (saved == EWOULDBLOCK || saved == EINTR) {
                return false;
            }
            errno = saved;
            return fail(errno_text("lock: flock " + path));
        }
        struct stat held {};
        struct stat named {};
        if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
            held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
            m_held.emplace(std::string(key), fd);
            return true;
        }
        ::close(fd);
    }
    return false;
}

Result<void> FileLocks::unlock(std::string_view key) {
    std::lock_guard guard(m_mutex);
    forget_after_fork();
    auto found = m_held.find(std::string(key));
    if (found == m_held.end()) {
        return {};
    }
    // Unlink before unlocking: a waiter that locks the old file afterwards sees it is gone.
    ::unlink((m_dir + '/' + found->first + ".lock").c_str());
    ::close(found->second);
    m_held.erase(found);
    return {};
}

std::string lock_dir_for(const Storage& storage) {
    std::string location = storage.location();
    if (!location.starts_with('/')) {
        return "";
    }
    while (location.size() > 1 && location.back() == '/') {
        location.pop_back();
    }
    return location + ".locks";
}

namespace {

class FileLockedStorage final : public Storage {
public:
    FileLockedStorage(std::unique_ptr<Storage> inner, std::string lock_dir)
        : m_inner(std::move(inner)), m_locks(std::move(lock_dir)) {}

    std::string_view name() const override { return m_inner->name(); }
    std::string location() const override { return m_inner->location(); }
    Result<std::optional<Blob>> get(std::string_view key) override { return m_inner->get(key); }
    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        return m_inner->get_metadata(key);
    }
    Result<void> put(const Metadata& meta, Pieces value) override { return m_inner->put(meta, value); }
    Result<std::unique_ptr<PutStream>> begin_put(uint64_t size_hint) override {
        return m_inner->begin_put(size_hint);
    }
    Result<bool> remove(std::string_view key) override { return m_inner->remove(key); }
    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        return m_inner->scan(visit);
    }
    Result<void> clear() override { return m_inner->clear(); }
    Result<Usage> usage() override { return m_inner->usage(); }
    Result<uint64_t> purge_expired(int64_t now) override { return m_inner->purge_expired(now); }
    Result<void> vacuum() override { return m_inner->vacuum(); }
    void flush() override { m_inner->flush(); }
    // A flock has no expiry: it lasts until unlock or until its holder dies.
    Result<bool> try_lock(std::string_view key, int64_t /*ttl_ms*/) override {
        return m_locks.try_lock(key);
    }
    Result<void> unlock(std::string_view key) override { return m_locks.unlock(key); }

private:
    std::unique_ptr<Storage> m_inner;
    FileLocks m_locks;
};

} // namespace

std::unique_ptr<Storage> with_file_locks(std::unique_ptr<Storage> inner, std::string lock_dir) {
    if (lock_dir.empty()) {
        return inner;
    }
    return std::make_unique<FileLockedStorage>(std::move(inner), std::move(lock_dir));
}

} // namespace curlcache::backends
