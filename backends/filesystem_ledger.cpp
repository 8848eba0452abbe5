// The filesystem backend's usage ledger: see filesystem_ledger.h.
#include "backends/filesystem_ledger.h"

#include "base/private_path.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace curlcache::backends::filesystem {

namespace {

constexpr char k_magic[8] = {'C', 'C', 'F', 'S', 'U', 'S', 'E', '1'};
constexpr uint32_t k_shards = 256;

uint64_t checksum_of(const LedgerRecord& record) {
    uint64_t hash = 1469598103934665603ull;
    const auto* bytes = reinterpret_cast<const unsigned char*>(&record);
    for (size_t i = 0; i < offsetof(LedgerRecord, checksum); ++i) {
        hash = (hash ^ bytes[i]) * 1099511628211ull;
    }
    return hash;
}

bool lock_file(int fd, int how) {
    while (::flock(fd, how) != 0) {
        if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

uint64_t moved(uint64_t value, int64_t delta) {
    if (delta < 0 && static_cast<uint64_t>(-delta) > value) {
        return 0;
    }
    return value + static_cast<uint64_t>(delta);
}

// Reads the record of `fd`; false when it is short, of another kind or torn.
bool read_record(int fd, LedgerRecord& record) {
    ssize_t n = ::pread(fd, &record, sizeof record, 0);
    return n == static_cast<ssize_t>(sizeof record) &&
           std::memcmp(record.magic, k_magic, sizeof k_magic) == 0 &&
           record.checksum == checksum_of(record) &&
           record.pending_key_size <= sizeof record.pending_key;
}

} // namespace

Ledger::Ledger(std::string dir, bool read_only, Recount recount, EntryPath entry_path)
    : m_path(dir + "/usage"), m_dir(std::move(dir)), m_read_only(read_only),
      m_recount(std::move(recount)), m_entry_path(std::move(entry_path)) {}

Ledger::~Ledger() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

Result<void> Ledger::open_locked() {
    uint64_t generation = fork_generation();
    if (m_fd >= 0 && m_generation != generation) {
        // A child shares its parent's open file (and so its flock): open its own.
        ::close(m_fd);
        m_fd = -1;
    }
    if (m_fd < 0) {
        int fd = ::open(m_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                        0600);
        if (fd < 0) {
            return fail_errno("filesystem: cannot open " + m_path, errno);
        }
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
            ::close(fd);
            return fail("filesystem: " + m_path + " is not a file of yours: usage is counted by "
                        "walking the folder");
        }
        m_fd = fd;
        m_generation = generation;
    }
    if (!lock_file(m_fd, LOCK_EX)) {
        return fail_errno("filesystem: cannot lock " + m_path, errno);
    }
    return {};
}

Result<void> Ledger::store() {
    m_record.checksum = checksum_of(m_record);
    ssize_t n = ::pwrite(m_fd, &m_record, sizeof m_record, 0);
    if (n != static_cast<ssize_t>(sizeof m_record)) {
        return fail_errno("filesystem: cannot write " + m_path, n < 0 ? errno : EIO);
    }
    return {};
}

// A writer died between writing its change as pending and writing the result: the entry's
// path tells whether the change happened.
void Ledger::settle() {
    auto kind = static_cast<Change>(m_record.pending);
    if (kind == Change::install || kind == Change::unlink) {
        std::string path =
            m_entry_path(std::string_view(m_record.pending_key, m_record.pending_key_size));
        struct stat st {};
        bool there = !path.empty() && ::lstat(path.c_str(), &st) == 0;
        bool ours = there && static_cast<uint64_t>(st.st_ino) == m_record.pending_ino;
        if (kind == Change::install ? ours : !ours) {
            m_record.entries = moved(m_record.entries, m_record.pending_entries);
            m_record.bytes = moved(m_record.bytes, m_record.pending_bytes);
        }
    }
    m_record.pending = static_cast<uint32_t>(Change::none);
    m_record.pending_key_size = 0;
}

Result<void> Ledger::load() {
    if (!read_record(m_fd, m_record)) {
        // New, an older version's folder, or torn: count what is there.
        auto counted = m_recount();
        if (!counted) {
            return std::unexpected(counted.error());
        }
        m_record = LedgerRecord{};
        std::memcpy(m_record.magic, k_magic, sizeof k_magic);
        m_record.entries = counted->entries;
        m_record.bytes = counted->bytes;
        return store();
    }
    if (m_record.pending != static_cast<uint32_t>(Change::none)) {
        settle();
        return store();
    }
    return {};
}

Result<void> Ledger::locked(const std::function<Result<void>(Session&)>& fn) {
    if (m_read_only) {
        return fail("filesystem: read-only");
    }
    std::lock_guard guard(m_mutex);
    if (auto opened = open_locked(); !opened) {
        return opened;
    }
    Result<void> result = load();
    if (result) {
        Session session(*this);
        result = fn(session);
    }
    (void)lock_file(m_fd, LOCK_UN);
    return result;
}

std::optional<Counts> Ledger::peek() {
    int fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return std::nullopt;
    }
    struct stat st {};
    LedgerRecord record{};
    bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              base::untrusted(st, base::Trust::read).empty() && lock_file(fd, LOCK_SH) &&
              read_record(fd, record) && record.pending == static_cast<uint32_t>(Change::none);
    ::close(fd);
    if (!ok) {
        return std::nullopt;
    }
    return Counts{record.entries, record.bytes};
}

Counts Ledger::Session::counts() const {
    return Counts{m_ledger.m_record.entries, m_ledger.m_record.bytes};
}

Result<void> Ledger::Session::change(std::string_view key, Change kind, uint64_t ino,
                                     int64_t d_entries, int64_t d_bytes,
                                     const std::function<bool()>& act) {
    LedgerRecord& record = m_ledger.m_record;
    if (key.size() > sizeof record.pending_key) {
        return fail("filesystem: key too long for the usage ledger");
    }
    record.pending = static_cast<uint32_t>(kind);
    record.pending_ino = ino;
    record.pending_entries = d_entries;
    record.pending_bytes = d_bytes;
    record.pending_key_size = static_cast<uint32_t>(key.size());
    std::memcpy(record.pending_key, key.data(), key.size());
    if (auto stored = m_ledger.store(); !stored) {
        return stored; // nothing changed in the tree
    }
    if (act()) {
        record.entries = moved(record.entries, d_entries);
        record.bytes = moved(record.bytes, d_bytes);
    }
    record.pending = static_cast<uint32_t>(Change::none);
    record.pending_key_size = 0;
    return m_ledger.store();
}

Result<void> Ledger::Session::set(Counts counts) {
    m_ledger.m_record.entries = counts.entries;
    m_ledger.m_record.bytes = counts.bytes;
    return m_ledger.store();
}

uint32_t Ledger::Session::next_shard() {
    uint32_t shard = m_ledger.m_record.shard % k_shards;
    m_ledger.m_record.shard = (shard + 1) % k_shards;
    (void)m_ledger.store(); // a rotation that does not move only evicts less evenly
    return shard;
}

} // namespace curlcache::backends::filesystem
