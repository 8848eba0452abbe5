// Byte-range locks in one lock file; see file_lock.h.
#include "backends/file_lock.h"

#include "base/private_path.h"
#include "core/log.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace curlcache::backends {
namespace {

bool valid_lock_key(std::string_view key) {
    return !key.empty() && key.size() <= 200 && key.front() != '.' &&
           key.find('/') == std::string_view::npos && key.find('\0') == std::string_view::npos;
}

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

// Where a key's lock lies in the lock file: a 62-bit hash (two keys sharing a byte only
// make their downloads take turns). The keys are already hashes (Key::hex()) here, so
// FNV-1a is enough and needs no library.
off_t lock_offset(std::string_view key) {
    uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : key) {
        hash = (hash ^ c) * 1099511628211ull;
    }
    return static_cast<off_t>(hash >> 2);
}

// One open-file-description lock on byte `offset` of the lock file: F_OFD_SETLK conflicts
// with every other open of the file (other processes, other FileLocks of this process)
// and is released when this description is closed, by unlock or by the holder's death.
int set_lock(int fd, off_t offset, short type) {
    struct flock range {};
    range.l_type = type;
    range.l_whence = SEEK_SET;
    range.l_start = offset;
    range.l_len = 1;
    return ::fcntl(fd, F_OFD_SETLK, &range);
}

} // namespace

FileLocks::~FileLocks() {
    std::lock_guard guard(m_mutex);
    forget_after_fork();
    if (m_fd >= 0) {
        ::close(m_fd); // releases every lock this object holds
    }
}

// A child inherits the parent's descriptor, and with it the parent's open file
// description and its locks: the child must neither use nor release them. Closing its
// copy releases nothing while the parent keeps its own; the child opens the file anew.
void FileLocks::forget_after_fork() {
    if (m_pid != getpid()) {
        if (m_pid != 0) {
            if (m_fd >= 0) {
                ::close(m_fd);
                m_fd = -1;
            }
            m_held.clear();
        }
        m_pid = getpid();
    }
}

// The folder and the file are checked (base/private_path.h): a lock file that another user
// created could be held by them forever, stalling every miss for lock_timeout. A refusal is
// remembered and warned about once; downloads then go ahead without coalescing.
Result<void> FileLocks::open_lock_file() {
    if (m_fd >= 0) {
        return {};
    }
    if (!m_refused.empty()) {
        return fail(m_refused);
    }
    std::string path = m_dir + "/keys.lock";
    auto dir = base::open_private_dir(m_dir, true);
    base::PathResult<base::Fd> file = std::unexpected(base::PathError{});
    if (dir) {
        file = base::open_private(*dir->fd, "keys.lock", O_RDWR | O_CREAT, path);
    } else {
        file = std::unexpected(dir.error());
    }
    if (!file) {
        std::string message = "lock: " + file.error().message;
        if (file.error().refused) {
            m_refused = message;
            core::log::warn_once("lock-refused",
                                 "%s (downloads go ahead without waiting for "
                                 "each other)",
                                 message.c_str());
        }
        return fail(message);
    }
    // A read lock conflicts with ours too: a lock file others can read (left by hand, say)
    // becomes the owner's alone again.
    struct stat st {};
    if (::fstat(file->get(), &st) == 0 && (st.st_mode & 077) != 0) {
        (void)::fchmod(file->get(), 0600);
    }
    m_fd = file->release();
    return {};
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
    if (auto opened = open_lock_file(); !opened) {
        return std::unexpected(opened.error());
    }
    const off_t offset = lock_offset(key);
    if (set_lock(m_fd, offset, F_WRLCK) != 0) {
        if (errno == EAGAIN || errno == EACCES || errno == EINTR) {
            return false;
        }
        return fail(errno_text("lock: fcntl " + m_dir + "/keys.lock"));
    }
    m_held.emplace(std::string(key), offset);
    return true;
}

Result<void> FileLocks::unlock(std::string_view key) {
    std::lock_guard guard(m_mutex);
    forget_after_fork();
    auto found = m_held.find(std::string(key));
    if (found == m_held.end()) {
        return {};
    }
    (void)set_lock(m_fd, found->second, F_UNLCK);
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
    Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                  uint64_t whole_limit) override {
        return m_inner->open_value(key, whole_limit);
    }
    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        return m_inner->get_metadata(key);
    }
    Result<void> put(const Metadata& meta, Pieces value) override { return m_inner->put(meta, value); }
    Result<void> put_many(std::span<const PutItem> items) override {
        return m_inner->put_many(items);
    }
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
    // A lock has no expiry: it lasts until unlock or until its holder dies.
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
