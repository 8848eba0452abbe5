// Filesystem backend: <dir>/<first two key characters>/<key>, one file per entry.
//
// Each file is a fixed 64-byte header, then key, method, URL and value. A write goes to a
// temp file in the entry's own folder and is renamed over the old one (no fsync: a cache
// may lose its newest entries in a power cut but never shows a torn one). A file whose
// size does not match its header is a miss.
//
// Format 2, written by a streamed put (begin_put): the value's tail comes first, right after
// the header, because it is written while the transfer runs, before the texts and the head
// are known; they follow it, and the header (rewritten last) gives the head's size:
//   1: header, key, method, URL, value            2: header, tail, key, method, URL, head
// so a 10 MiB body is written once, where it arrives, instead of buffered and copied.
//
// Temp files live in <dir>/tmp/ (".tmp-p<pid>s<start>-<n>-<tag>", locked while written:
// temp_files.h), so that finding the leftovers of writers that died is one readdir of a
// small folder - done at open, by purge, vacuum, clear, usage and eviction. Their bytes count
// within max_size until they go. (Older versions wrote them into the shard folders, where
// the walk removes them after an hour, as before.)
//
// Usage: the entry count and value bytes live in a ledger file (<dir>/usage,
// filesystem_ledger.h) that every rename into place and every unlink updates under its lock,
// crash-safely; usage() and the max_size check read it instead of walking the tree.
//
// Expiry: a file's access time is its expiry stamp (the expiry, or far in the future for an
// entry that never expires), so that purge lists the shards with fstatat and reads only the
// files whose stamp has passed; their header decides. Nothing else sets the access time
// (touches omit it; relatime leaves a future one alone); where something does (strictatime,
// a copy), the stamp only moves earlier and purge reads the file.
//
// LRU uses the file's mtime. A hit does not touch the file: it is remembered in memory and
// the next put sets the mtimes of everything hit since. When the ledger says the cache is
// over max_size: a small cache (up to k_walk_evict_entries) is walked whole and the least
// recently used files go, down to 90% of max_size; a large one is evicted a shard at a time,
// as ccache cleans one subdirectory at a time: the next shard of a rotation is listed
// (stat only, ~4,000 files at a million entries) and its oldest files go, the same share
// of it that the whole cache must shed to reach 90%, until the cache is within max_size.
// Keys are hashes, so every shard is a fair sample of the cache: what goes is the least
// recently used of its shard, close to the least recently used of all, and no store ever
// waits for a walk of the whole tree.
#include "backends/filesystem_storage.h"

#include "backends/file_reader.h"
#include "backends/filesystem_ledger.h"
#include "backends/temp_files.h"
#include "base/fd.h"
#include "base/private_path.h"
#include "core/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace curlcache::backends {

namespace {

constexpr char k_magic[8] = {'C', 'C', 'F', 'S', 'E', 'N', 'T', '1'};
constexpr uint32_t k_format_version = 1;
constexpr uint32_t k_format_tail_first = 2;
constexpr uint32_t k_max_text = 1u << 20; // method/URL/key lengths above this are corrupt
constexpr uint64_t k_walk_evict_entries = 2048; // above this, eviction goes shard by shard
constexpr int k_shard_count = 256;
constexpr size_t k_get_head = 64 * 1024; // a get reads files up to this size in one call
constexpr size_t k_scan_head = 512;      // a scan usually finds the texts within this
constexpr size_t k_touch_batch = 1024;   // pending hit times before a get writes them
constexpr std::string_view k_temp_prefix = ".tmp-";
constexpr std::string_view k_temp_folder = "/tmp";

// Native byte order: a cache folder is not shared between machines of different kinds.
struct Header {
    char magic[8];
    uint32_t version;
    uint32_t key_size;
    uint32_t method_size;
    uint32_t url_size;
    int64_t status;
    int64_t created;
    int64_t expires;
    uint64_t value_size;
    uint64_t reserved; // format 2: bytes of the value's head (stored after the texts)
};
static_assert(sizeof(Header) == 64);

using base::Fd;

struct DirClose {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

bool read_exact(int fd, char* out, size_t size, uint64_t offset) {
    while (size > 0) {
        ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        out += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
    return true;
}

bool write_all(int fd, std::vector<iovec> iov) {
    size_t first = 0;
    while (first < iov.size()) {
        int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        ssize_t n = ::writev(fd, iov.data() + first, count);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return false;
        }
        auto left = static_cast<size_t>(n);
        while (first < iov.size() && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            ++first;
        }
        if (first < iov.size()) {
            iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return true;
}

// One entry file's header and texts, checked against the file's size. `head` holds the
// file's first bytes, read in one call: for a small entry of format 1, the value too.
struct Parsed {
    Metadata meta;
    uint64_t value_offset = 0; // format 1: the value; format 2: its tail
    std::string head;
    bool tail_first = false;  // format 2
    uint64_t head_offset = 0; // format 2: where the value's head is
    uint64_t head_size = 0;
};

std::optional<Parsed> parse_entry(int fd, uint64_t file_size, size_t head_size) {
    Parsed parsed;
    parsed.head.resize(
        static_cast<size_t>(std::min<uint64_t>(file_size, std::max(head_size, sizeof(Header)))));
    Header header{};
    if (file_size < sizeof(Header) || !read_exact(fd, parsed.head.data(), parsed.head.size(), 0)) {
        return std::nullopt;
    }
    std::memcpy(&header, parsed.head.data(), sizeof header);
    bool tail_first = header.version == k_format_tail_first;
    if (std::memcmp(header.magic, k_magic, sizeof k_magic) != 0 ||
        (header.version != k_format_version && !tail_first) || header.key_size > k_max_text ||
        header.method_size > k_max_text || header.url_size > k_max_text ||
        (tail_first && header.reserved > header.value_size)) {
        return std::nullopt;
    }
    uint64_t texts = uint64_t{header.key_size} + header.method_size + header.url_size;
    if (file_size != sizeof(Header) + texts + header.value_size) {
        return std::nullopt; // truncated, or extended by something that is not us
    }
    if (tail_first) {
        // The texts follow the tail: read them on their own, into `head` after the header.
        uint64_t tail = header.value_size - header.reserved;
        parsed.tail_first = true;
        parsed.value_offset = sizeof(Header);
        parsed.head_offset = sizeof(Header) + tail + texts;
        parsed.head_size = header.reserved;
        parsed.head.resize(sizeof(Header) + texts);
        if (!read_exact(fd, parsed.head.data() + sizeof(Header), texts, sizeof(Header) + tail)) {
            return std::nullopt;
        }
    }
    if (!tail_first) {
        parsed.value_offset = sizeof(Header) + texts;
    }
    if (!tail_first && parsed.head.size() < parsed.value_offset) {
        size_t have = parsed.head.size();
        parsed.head.resize(parsed.value_offset);
        if (!read_exact(fd, parsed.head.data() + have, parsed.head.size() - have, have)) {
            return std::nullopt;
        }
    }
    std::string_view texts_view = std::string_view(parsed.head).substr(sizeof(Header));
    parsed.meta.key = texts_view.substr(0, header.key_size);
    parsed.meta.method = texts_view.substr(header.key_size, header.method_size);
    parsed.meta.url = texts_view.substr(header.key_size + header.method_size, header.url_size);
    parsed.meta.status = static_cast<long>(header.status);
    parsed.meta.created = header.created;
    parsed.meta.expires = header.expires;
    parsed.meta.size = header.value_size;
    return parsed;
}

// The header of an entry file for `meta` and a value of `total` bytes.
Header header_of(const Metadata& meta, uint64_t total, uint32_t version, uint64_t head_size) {
    Header header{};
    std::memcpy(header.magic, k_magic, sizeof k_magic);
    header.version = version;
    header.key_size = static_cast<uint32_t>(meta.key.size());
    header.method_size = static_cast<uint32_t>(std::min<size_t>(meta.method.size(), k_max_text));
    header.url_size = static_cast<uint32_t>(std::min<size_t>(meta.url.size(), k_max_text));
    header.status = meta.status;
    header.created = meta.created;
    header.expires = meta.expires;
    header.value_size = total;
    header.reserved = head_size;
    return header;
}

// An entry file's access time is its expiry stamp (written with the file; hits leave it,
// see purge_expired): the expiry, or far in the future for an entry that never expires.
timespec expiry_stamp(int64_t expires) {
    constexpr int64_t k_never = int64_t{1} << 33; // year 2242 (a file system may clamp it)
    return timespec{static_cast<time_t>(expires > 0 ? expires : k_never), 0};
}

bool is_temp_name(const char* name) {
    return name[0] == '.';
}

struct Found {
    std::string path;
    timespec mtime{};
    Metadata meta;
};

class FilesystemStorage final : public Storage {
  public:
    // `read_only`: why nothing may be written in the tree ("" when it is writable).
    FilesystemStorage(std::string dir, uint64_t max_bytes, std::string read_only)
        : m_dir(std::move(dir)), m_max_bytes(max_bytes), m_read_only(std::move(read_only)),
          m_ledger(
              m_dir, !m_read_only.empty(), [this] { return recount(); },
              [this](std::string_view key) { return filesystem_entry_path(m_dir, key); }) {}

    ~FilesystemStorage() override { flush_touches(); }

    std::string_view name() const override { return "filesystem"; }
    std::string location() const override { return m_dir; }
    std::string read_only_reason() const override { return m_read_only; }

    Result<std::optional<Blob>> get(std::string_view key) override {
        auto found = open_value(key, UINT64_MAX);
        if (!found) {
            return std::unexpected(found.error());
        }
        if (!*found) {
            return std::optional<Blob>{};
        }
        return std::optional<Blob>{std::move((*found)->whole)};
    }

    // A value above whole_limit is read from the entry file held open (file_reader.h): a
    // writer renaming a new file over it meanwhile leaves this one readable as it was.
    Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                  uint64_t whole_limit) override {
        using Found = std::optional<StoredValue>;
        std::string path = filesystem_entry_path(m_dir, key);
        if (path.empty()) {
            return fail("filesystem: invalid key \"" + std::string(key) + "\"");
        }
        // O_NONBLOCK: a FIFO at the path would block the program in open (refused below).
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (!fd) {
            if (errno == ENOENT || errno == ENOTDIR) {
                return Found{};
            }
            return fail("filesystem: cannot open " + path + ": " + std::strerror(errno));
        }
        struct stat st {};
        if (::fstat(*fd, &st) != 0) {
            return fail("filesystem: cannot stat " + path + ": " + std::strerror(errno));
        }
        bool foreign = m_read_only.empty() ? st.st_uid != ::geteuid()
                                           : !base::untrusted(st, base::Trust::read).empty();
        if (foreign || !S_ISREG(st.st_mode)) {
            // Only a tree that was once shared can hold one: never served (DESIGN.md). In
            // a read-only tree, root's files are served too, if only root may write them.
            // One cause with a failing put() over a folder there (core::log::cause).
            core::log::warn_once(core::log::cause("filesystem", "get",
                                                  S_ISREG(st.st_mode) ? EPERM : EISDIR)
                                     .c_str(),
                                 "filesystem cache: refused entry file %s: not a regular file "
                                 "of yours (uid %u); it is treated as a miss. Remove it.",
                                 path.c_str(), static_cast<unsigned>(st.st_uid));
            return Found{};
        }
        // A small file is read whole in one call; a larger one only up to its texts, since
        // its value is read on its own below.
        const uint64_t file_size = static_cast<uint64_t>(st.st_size);
        auto parsed = parse_entry(*fd, file_size, file_size <= k_get_head ? k_get_head : k_scan_head);
        std::shared_ptr<std::string> value;
        std::unique_ptr<ValueReader> reader;
        if (parsed && parsed->meta.key == key && parsed->meta.size > whole_limit) {
            std::vector<FileSpan> spans;
            if (parsed->tail_first) {
                spans.push_back({parsed->head_offset, parsed->head_size});
                spans.push_back({parsed->value_offset, parsed->meta.size - parsed->head_size});
            } else {
                spans.push_back({parsed->value_offset, parsed->meta.size});
            }
            reader = file_reader(std::move(fd), "filesystem entry " + path, {}, std::move(spans));
        } else if (parsed && parsed->meta.key == key) {
            if (parsed->tail_first) {
                value = std::make_shared<std::string>(parsed->meta.size, '\0');
                uint64_t head = parsed->head_size;
                if (!read_exact(*fd, value->data(), head, parsed->head_offset) ||
                    !read_exact(*fd, value->data() + head, value->size() - head,
                                parsed->value_offset)) {
                    parsed.reset();
                }
            } else if (parsed->head.size() == static_cast<uint64_t>(st.st_size)) {
                value = std::make_shared<std::string>(parsed->head, parsed->value_offset);
            } else {
                value = std::make_shared<std::string>(parsed->meta.size, '\0');
                if (!read_exact(*fd, value->data(), value->size(), parsed->value_offset)) {
                    parsed.reset();
                }
            }
        }
        if ((!parsed || parsed->meta.key != key) && !m_read_only.empty()) {
            return Found{}; // damaged, and not ours to remove: a miss
        }
        if (!parsed || parsed->meta.key != key) {
            core::log::warn_once("filesystem-corrupt-entry",
                                 "filesystem cache: removing damaged entry file %s", path.c_str());
            // A corrupt entry is a miss and is removed - unless a writer has meanwhile
            // renamed a new file into place, which must survive.
            (void)unlink_entry(key, path, &st);
            return Found{};
        }
        if (!m_read_only.empty()) {
            return Found{StoredValue{std::move(value), std::move(reader)}}; // no access time
        }
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        bool flush = false;
        {
            std::lock_guard lock(m_touch_mutex);
            m_touches[std::move(path)] = now;
            flush = m_touches.size() >= k_touch_batch;
        }
        if (flush) {
            flush_touches();
        }
        return Found{StoredValue{std::move(value), std::move(reader)}};
    }

    // Reads the header only; not a use for LRU.
    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        std::string path = filesystem_entry_path(m_dir, key);
        if (path.empty()) {
            return fail("filesystem: invalid key \"" + std::string(key) + "\"");
        }
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        struct stat st {};
        if (!fd || ::fstat(*fd, &st) != 0) {
            if (errno == ENOENT || errno == ENOTDIR) {
                return std::optional<Metadata>{};
            }
            return fail("filesystem: cannot open " + path + ": " + std::strerror(errno));
        }
        auto parsed = parse_entry(*fd, static_cast<uint64_t>(st.st_size), k_scan_head);
        if (!parsed || parsed->meta.key != key) {
            return std::optional<Metadata>{}; // damaged: get() reports it
        }
        return std::optional<Metadata>{std::move(parsed->meta)};
    }

    Result<void> put(const Metadata& meta, Pieces value) override {
        if (!m_read_only.empty()) {
            return read_only_error(*this);
        }
        std::string path = filesystem_entry_path(m_dir, meta.key);
        if (path.empty()) {
            return fail("filesystem: invalid key \"" + meta.key + "\"");
        }
        uint64_t total = 0;
        for (auto piece : value) {
            total += piece.size();
        }
        if (m_max_bytes != 0 && total > m_max_bytes) {
            auto removed = remove(meta.key);
            return removed ? Result<void>{} : std::unexpected(removed.error());
        }
        std::string temp;
        auto raw = open_temp(meta.key, temp);
        if (!raw) {
            return std::unexpected(raw.error());
        }
        Fd fd(*raw);
        Header header = header_of(meta, total, k_format_version, 0);
        std::vector<iovec> iov;
        iov.reserve(4 + value.size());
        auto add = [&](const void* data, size_t size) {
            if (size > 0) {
                iov.push_back(iovec{const_cast<void*>(data), size});
            }
        };
        add(&header, sizeof header);
        add(meta.key.data(), header.key_size);
        add(meta.method.data(), header.method_size);
        add(meta.url.data(), header.url_size);
        for (auto piece : value) {
            add(piece.data(), piece.size());
        }
        bool written = write_all(*fd, std::move(iov));
        int saved_errno = errno;
        // The kernel stamps mtime from a coarse clock (a few ms); LRU order needs better.
        // The access time carries the expiry, for purge.
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        timespec times[2] = {expiry_stamp(meta.expires), now};
        ::futimens(*fd, times);
        bool closed = ::close(fd.release()) == 0; // close errors matter on NFS
        if (written && !closed) {
            saved_errno = errno;
        }
        if (!written || !closed) {
            ::unlink(temp.c_str());
            return fail_errno("filesystem: cannot write " + temp, saved_errno);
        }
        return install(temp, path, meta.key, total);
    }

    Result<std::unique_ptr<PutStream>> begin_put(uint64_t size_hint) override;

    // Creates a temp file in the temp folder (and the folder when missing), named after
    // this process and `tag`, and holds its lock; returns its descriptor and sets `temp` to
    // its path.
    Result<int> open_temp(std::string_view tag, std::string& temp) {
        std::string folder = m_dir + std::string(k_temp_folder);
        temp = folder + '/' + std::string(k_temp_prefix) + temp_files::writer_id() + '-' +
               std::to_string(m_temp_counter.fetch_add(1)) + '-' + std::string(tag);
        int raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (raw < 0 && errno == ENOENT) {
            auto made = make_private_dirs(folder);
            if (!made) {
                return std::unexpected(made.error());
            }
            raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        }
        if (raw < 0) {
            return fail_errno("filesystem: cannot create " + temp, errno);
        }
        (void)temp_files::hold(raw); // until closed: a sweep then knows it is being written
        return raw;
    }

    // Removes the temp files of writers that died and tallies the live ones.
    temp_files::Tally sweep_leftovers() {
        if (!m_read_only.empty()) {
            return {}; // never a write in a read-only tree
        }
        return temp_files::sweep(m_dir + std::string(k_temp_folder), k_temp_prefix,
                                 std::time(nullptr) - temp_files::k_stale_unnamed_seconds);
    }

    // Lists the shards with fstatat and opens only the files whose access time, the expiry
    // stamp written with the file, is not in the future: an entry that has not expired keeps
    // a later stamp (unless something read it with strictatime, or an older version wrote
    // it - then its header, read here, decides), so a purge reads only what may go instead
    // of every file. Leaves nothing of dead writers, as vacuum does.
    Result<uint64_t> purge_expired(int64_t now) override {
        if (!m_read_only.empty()) {
            return read_only_error(*this);
        }
        uint64_t removed = 0;
        auto purged = each_shard([&](const std::string& folder, DIR* dir) -> Result<bool> {
            auto done = purge_shard(folder, dir, now, removed);
            return done ? Result<bool>{true} : std::unexpected(done.error());
        });
        if (!purged) {
            return std::unexpected(purged.error());
        }
        (void)sweep_leftovers();
        return removed;
    }

    Result<void> purge_shard(const std::string& folder, DIR* dir, int64_t now, uint64_t& removed) {
        std::vector<std::pair<std::string, struct stat>> expired;
        each_file(dir, Look::stat, now, [&](ShardFile& file) {
            if (file.st.st_atime > now) {
                return true; // its expiry stamp is later
            }
            Fd fd(::openat(file.dir_fd, file.name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
            auto parsed =
                fd ? parse_entry(*fd, static_cast<uint64_t>(file.st.st_size), sizeof(Header))
                   : std::nullopt;
            if (parsed && parsed->meta.key == file.name && parsed->meta.expires > 0 &&
                parsed->meta.expires <= now) {
                expired.emplace_back(file.name, file.st);
            }
            return true;
        });
        for (const auto& [key, st] : expired) { // the one that was read, not a newer one
            auto gone = unlink_entry(key, folder + "/" + key, &st);
            if (!gone) {
                return std::unexpected(gone.error());
            }
            removed += *gone ? 1 : 0;
        }
        return {};
    }

    // Nothing to compact; the walk removes old temp files in the shards (older versions').
    Result<void> vacuum() override {
        if (!m_read_only.empty()) {
            return read_only_error(*this);
        }
        (void)sweep_leftovers();
        // Recounts the ledger (files removed behind curlcache's back); the walk also removes
        // old temp files from the shards.
        auto recounted = m_ledger.locked([&](filesystem::Ledger::Session& session) {
            auto counted = recount();
            return counted ? session.set(*counted) : std::unexpected(counted.error());
        });
        return recounted ? recounted : walk([](Found&) { return true; });
    }

    // Renames a complete temp file over the entry's file (counted in the ledger), then keeps
    // max_size.
    Result<void> install(const std::string& temp, const std::string& path, std::string_view key,
                         uint64_t total) {
        struct stat temp_st {};
        if (::stat(temp.c_str(), &temp_st) != 0) {
            return fail_errno("filesystem: cannot stat " + temp, errno);
        }
        int saved_errno = 0;
        auto rename_into_place = [&] {
            bool renamed = ::rename(temp.c_str(), path.c_str()) == 0;
            if (!renamed && errno == ENOENT) {
                // The temp file lives in the temp folder: the shard may not exist yet.
                auto made = make_private_dirs(path.substr(0, path.size() - key.size() - 1));
                renamed = made && ::rename(temp.c_str(), path.c_str()) == 0;
            }
            saved_errno = renamed ? 0 : errno;
            return renamed;
        };
        bool renamed = false;
        filesystem::Counts counts;
        auto counted = m_ledger.locked([&](filesystem::Ledger::Session& session) {
            auto old = value_size_of(path);
            auto done = session.change(key, filesystem::Change::install, temp_st.st_ino,
                                       old ? 0 : 1,
                                       static_cast<int64_t>(total) -
                                           static_cast<int64_t>(old.value_or(0)),
                                       [&] { return renamed = rename_into_place(); });
            counts = session.counts();
            return done;
        });
        if (!counted && !renamed && saved_errno == 0) {
            ledger_unusable(counted.error());
            renamed = rename_into_place();
        }
        if (!renamed) {
            ::unlink(temp.c_str());
            return fail_errno("filesystem: cannot rename into " + path, saved_errno);
        }
        flush_touches();
        if (m_max_bytes == 0 || !counted) {
            return {};
        }
        return evict_if_needed(counts);
    }

    bool too_large(uint64_t total) const { return m_max_bytes != 0 && total > m_max_bytes; }
    const std::string& dir() const { return m_dir; }

    Result<bool> remove(std::string_view key) override {
        if (!m_read_only.empty()) {
            return read_only_error(*this);
        }
        std::string path = filesystem_entry_path(m_dir, key);
        if (path.empty()) {
            return fail("filesystem: invalid key \"" + std::string(key) + "\"");
        }
        return unlink_entry(key, path, nullptr);
    }

    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        return walk([&](Found& found) { return visit(found.meta); });
    }

    Result<void> clear() override {
        if (!m_read_only.empty()) {
            return read_only_error(*this);
        }
        // Under the ledger's lock, so that no put lands between the walk and the zeroing.
        Result<void> walked;
        auto zeroed = m_ledger.locked([&](filesystem::Ledger::Session& session) {
            walked = unlink_all();
            return session.set({});
        });
        if (!zeroed) {
            walked = unlink_all();
        }
        {
            std::lock_guard lock(m_touch_mutex);
            m_touches.clear();
        }
        (void)sweep_leftovers();
        return walked;
    }

    // The ledger's counters (a walk only when there is no usable ledger: a read-only tree
    // an older version filled, or a ledger file that is not ours).
    Result<Usage> usage() override {
        std::optional<filesystem::Counts> counts;
        if (m_read_only.empty()) {
            auto read = m_ledger.locked([&](filesystem::Ledger::Session& session) {
                counts = session.counts();
                return Result<void>{};
            });
            if (!read) {
                ledger_unusable(read.error());
            }
        } else {
            counts = m_ledger.peek();
        }
        if (!counts) {
            auto counted = recount();
            if (!counted) {
                return std::unexpected(counted.error());
            }
            counts = *counted;
        }
        Usage usage{counts->entries, counts->bytes, m_max_bytes};
        usage.bytes += sweep_leftovers().bytes; // counted until they go
        return usage;
    }

  private:
    // The value size of the well-formed entry file at `path`; empty when there is none
    // (absent or damaged: what a walk would not count either).
    static std::optional<uint64_t> value_size_of(const std::string& path) {
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        struct stat st {};
        if (!fd || ::fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            return std::nullopt;
        }
        auto parsed = parse_entry(*fd, static_cast<uint64_t>(st.st_size), sizeof(Header));
        if (!parsed) {
            return std::nullopt;
        }
        return parsed->meta.size;
    }

    // Every entry and value byte in the tree, by walking it.
    Result<filesystem::Counts> recount() {
        filesystem::Counts counts;
        auto walked = walk([&](Found& found) {
            ++counts.entries;
            counts.bytes += found.meta.size;
            return true;
        });
        return walked ? Result<filesystem::Counts>{counts} : std::unexpected(walked.error());
    }

    Result<void> unlink_all() {
        std::vector<std::string> paths;
        auto walked = walk([&](Found& found) {
            paths.push_back(std::move(found.path));
            return true;
        });
        for (const auto& path : paths) {
            ::unlink(path.c_str());
        }
        return walked;
    }

    // A ledger this process cannot use (not ours, cannot be written): removed when possible,
    // so that the next process counts afresh instead of trusting counters this one cannot
    // keep; one warning.
    void ledger_unusable(const Error& error) {
        core::log::warn_once("filesystem-ledger", "filesystem cache: %s", error.message.c_str());
        if (m_read_only.empty()) {
            std::string path = m_dir + "/usage";
            struct stat st {};
            if (::lstat(path.c_str(), &st) == 0 && st.st_uid == ::geteuid()) {
                ::unlink(path.c_str());
            }
        }
    }

    // Unlinks `key`'s entry file at `path` through the ledger; when `expected` is given, only
    // if the file there is still that one (a writer may have renamed a new one into place,
    // which must survive). True when a file went.
    Result<bool> unlink_entry(std::string_view key, const std::string& path,
                              const struct stat* expected) {
        return with_ledger<bool>([&](filesystem::Ledger::Session* session) {
            return unlink_one(session, key, path, expected);
        });
    }

    // Runs `op` with the ledger's session, or with none (uncounted) when this process cannot
    // use the ledger.
    template <class T>
    Result<T> with_ledger(const std::function<Result<T>(filesystem::Ledger::Session*)>& op) {
        std::optional<Result<T>> result;
        auto counted = m_ledger.locked([&](filesystem::Ledger::Session& session) -> Result<void> {
            result.emplace(op(&session));
            return {};
        });
        if (!counted) {
            ledger_unusable(counted.error());
            return op(nullptr);
        }
        return std::move(*result);
    }

    // unlink_entry within a ledger session (or without one: see with_ledger).
    Result<bool> unlink_one(filesystem::Ledger::Session* session, std::string_view key,
                            const std::string& path, const struct stat* expected) {
        bool gone = false;
        int saved_errno = 0;
        struct stat st {};
        auto unlink_it = [&] {
            if (expected && (st.st_ino != expected->st_ino || st.st_dev != expected->st_dev)) {
                return false;
            }
            gone = ::unlink(path.c_str()) == 0;
            saved_errno = gone ? 0 : errno;
            return gone;
        };
        if (::lstat(path.c_str(), &st) != 0) {
            saved_errno = errno;
        } else if (session) {
            auto size = value_size_of(path);
            auto done = session->change(key, filesystem::Change::unlink, st.st_ino, size ? -1 : 0,
                                        -static_cast<int64_t>(size.value_or(0)), unlink_it);
            if (!done) {
                return std::unexpected(done.error());
            }
        } else {
            (void)unlink_it();
        }
        if (!gone && saved_errno != 0 && saved_errno != ENOENT && saved_errno != ENOTDIR) {
            return fail_errno("filesystem: cannot remove " + path, saved_errno);
        }
        return gone;
    }

    // Calls visit for every well-formed entry file; removes stale temp files on the way.
    Result<void> walk(const std::function<bool(Found&)>& visit) {
        const time_t now = std::time(nullptr);
        return each_shard([&](const std::string& folder, DIR* dir) -> Result<bool> {
            return each_file(dir, Look::open, m_read_only.empty() ? now : 0, [&](ShardFile& file) {
                auto parsed =
                    parse_entry(*file.fd, static_cast<uint64_t>(file.st.st_size), k_scan_head);
                if (!parsed || parsed->meta.key != file.name) {
                    return true;
                }
                Found found{folder + "/" + file.name, file.st.st_mtim, std::move(parsed->meta)};
                return visit(found);
            });
        });
    }

    // Calls visit(folder, its open directory) for every shard folder of the tree (two hex
    // digits; not the temp folder) until it returns false. A tree not created yet has none.
    Result<void>
    each_shard(const std::function<Result<bool>(const std::string&, DIR*)>& visit) const {
        DirPtr top(::opendir(m_dir.c_str()));
        if (!top) {
            if (errno == ENOENT) {
                return {};
            }
            return fail_errno("filesystem: cannot read " + m_dir, errno);
        }
        while (dirent* shard = ::readdir(top.get())) {
            if (is_temp_name(shard->d_name) || std::strlen(shard->d_name) != 2) {
                continue;
            }
            std::string folder = m_dir + "/" + shard->d_name;
            DirPtr inner(::opendir(folder.c_str()));
            if (!inner) {
                continue;
            }
            auto go_on = visit(folder, inner.get());
            if (!go_on) {
                return std::unexpected(go_on.error());
            }
            if (!*go_on) {
                return {};
            }
        }
        return {};
    }

    // A regular file of a shard folder, as each_file() found it.
    struct ShardFile {
        int dir_fd;
        const char* name;
        struct stat st;
        Fd fd; // open read-only with Look::open, else closed
    };

    // How each_file() looks at a file: fstatat alone (purge and eviction open few of them),
    // or open and fstat (a walk reads every one).
    enum class Look { stat, open };

    // Calls visit for every regular file of a shard folder but temporary ones, until it
    // returns false (then false). A temporary file (an older version's, or left by a writer
    // that died) last written k_stale_unnamed_seconds before `stale_now` is removed on the
    // way; none is when stale_now is 0.
    static bool each_file(DIR* dir, Look look, time_t stale_now,
                          const std::function<bool(ShardFile&)>& visit) {
        const int dir_fd = ::dirfd(dir);
        while (dirent* entry = ::readdir(dir)) {
            const char* name = entry->d_name;
            const bool temp = is_temp_name(name);
            if ((temp && stale_now == 0) || std::strcmp(name, ".") == 0 ||
                std::strcmp(name, "..") == 0) {
                continue;
            }
            ShardFile file{dir_fd, name, {}, {}};
            if (look == Look::open) {
                file.fd.reset(
                    ::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
                if (!file.fd || ::fstat(*file.fd, &file.st) != 0) {
                    continue;
                }
            } else if (::fstatat(dir_fd, name, &file.st, AT_SYMLINK_NOFOLLOW) != 0) {
                continue;
            }
            if (!S_ISREG(file.st.st_mode)) {
                continue;
            }
            if (temp) {
                if (stale_now - file.st.st_mtime > temp_files::k_stale_unnamed_seconds) {
                    ::unlinkat(dir_fd, name, 0);
                }
                continue;
            }
            if (!visit(file)) {
                return false;
            }
        }
        return true;
    }

    void flush_touches() {
        std::unordered_map<std::string, timespec> touches;
        {
            std::lock_guard lock(m_touch_mutex);
            touches.swap(m_touches);
        }
        for (const auto& [path, when] : touches) {
            timespec times[2] = {{0, UTIME_OMIT}, when}; // the access time is the expiry stamp
            ::utimensat(AT_FDCWD, path.c_str(), times, 0);
        }
    }

    // Called after a put with the ledger's counters: see the top of this file.
    Result<void> evict_if_needed(filesystem::Counts counts) {
        // Live writers' temp files count too (one readdir of the small temp folder).
        uint64_t temps = sweep_leftovers().bytes;
        if (counts.bytes + temps <= m_max_bytes) {
            return {};
        }
        std::unique_lock lock(m_evict_mutex, std::try_to_lock);
        if (!lock.owns_lock()) {
            return {}; // another thread is evicting right now
        }
        uint64_t target = m_max_bytes - m_max_bytes / 10;
        target -= std::min(target, temps);
        if (counts.entries <= k_walk_evict_entries) {
            std::vector<Found> all;
            auto walked = walk([&](Found& found) {
                found.meta.url.clear(); // not needed here; keeps the list small
                all.push_back(std::move(found));
                return true;
            });
            if (!walked) {
                return walked;
            }
            return evict_oldest(all, counts.bytes, target, temps > 0);
        }
        for (int pass = 0; pass < k_shard_count && counts.bytes + temps > m_max_bytes; ++pass) {
            uint32_t shard = 0;
            auto turned = m_ledger.locked([&](filesystem::Ledger::Session& session) {
                shard = session.next_shard();
                return Result<void>{};
            });
            if (!turned) {
                return turned;
            }
            std::vector<Found> files = list_shard(shard);
            uint64_t shard_bytes = 0;
            for (const auto& found : files) {
                shard_bytes += found.meta.size;
            }
            // This shard sheds the share of its bytes the whole cache must shed.
            uint64_t keep = counts.bytes == 0 ? 0
                                              : static_cast<uint64_t>(
                                                    static_cast<double>(shard_bytes) *
                                                    static_cast<double>(target) /
                                                    static_cast<double>(counts.bytes));
            auto evicted = evict_oldest(files, shard_bytes, std::min(keep, shard_bytes - 1), false);
            if (!evicted) {
                return evicted;
            }
            auto read = m_ledger.locked([&](filesystem::Ledger::Session& session) {
                counts = session.counts();
                return Result<void>{};
            });
            if (!read) {
                return read;
            }
        }
        return {};
    }

    // The files of one shard with their mtimes and sizes (from stat: the size of the file,
    // close enough to choose how many go), without opening them.
    std::vector<Found> list_shard(uint32_t shard) {
        static constexpr char k_hex[] = "0123456789abcdef";
        std::string folder = m_dir + '/' + k_hex[shard >> 4] + k_hex[shard & 15];
        std::vector<Found> files;
        DirPtr dir(::opendir(folder.c_str()));
        if (!dir) {
            return files;
        }
        each_file(dir.get(), Look::stat, 0, [&](ShardFile& file) {
            Found found{folder + '/' + file.name, file.st.st_mtim, {}};
            found.meta.key = file.name;
            found.meta.size = static_cast<uint64_t>(file.st.st_size);
            files.push_back(std::move(found));
            return true;
        });
        return files;
    }

    // Removes the least recently used of `files` (holding `total` bytes) through the ledger
    // until `total` is at most `target`; `keep_newest`: never the newest (a live writer's
    // temp file is what is over the limit).
    Result<void> evict_oldest(std::vector<Found>& files, uint64_t total, uint64_t target,
                              bool keep_newest) {
        std::sort(files.begin(), files.end(), [](const Found& a, const Found& b) {
            return a.mtime.tv_sec != b.mtime.tv_sec ? a.mtime.tv_sec < b.mtime.tv_sec
                                                    : a.mtime.tv_nsec < b.mtime.tv_nsec;
        });
        // One hold of the ledger's lock for the whole batch.
        return with_ledger<void>([&](filesystem::Ledger::Session* session) -> Result<void> {
            for (const auto& found : files) {
                if (total <= target || (keep_newest && &found == &files.back())) {
                    break;
                }
                struct stat st {};
                if (::lstat(found.path.c_str(), &st) != 0 ||
                    st.st_mtim.tv_sec != found.mtime.tv_sec ||
                    st.st_mtim.tv_nsec != found.mtime.tv_nsec) {
                    continue; // replaced or used since it was listed
                }
                auto removed = unlink_one(session, found.meta.key, found.path, &st);
                if (!removed) {
                    return std::unexpected(removed.error());
                }
                total -= std::min(total, found.meta.size);
            }
            return {};
        });
    }

    const std::string m_dir;
    const uint64_t m_max_bytes;
    const std::string m_read_only;
    std::atomic<uint64_t> m_temp_counter{0};
    std::mutex m_evict_mutex;
    std::mutex m_touch_mutex;
    std::unordered_map<std::string, timespec> m_touches; // entry path -> last hit
    filesystem::Ledger m_ledger; // last: its callbacks use the members above
};

// A streamed value: the tail is gathered in memory up to k_batch (a small body then goes
// through put() as format 1 and never creates a file it would not keep) and past that
// written, in writes of k_batch, straight into a format-2 temp file after a header-sized
// gap; commit appends the texts and the head, writes the header and renames the file into
// place. Writes of 16 KiB (what a transfer delivers) cost 2-3x as much as 256 KiB ones on
// ext4, which updates the file's times on every write.
class FilesystemPutStream final : public PutStream {
  public:
    explicit FilesystemPutStream(FilesystemStorage& storage) : m_storage(storage) {}
    ~FilesystemPutStream() override {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        if (!m_temp.empty()) {
            ::unlink(m_temp.c_str());
        }
    }

    Result<void> append(std::string_view bytes) override {
        m_tail_size += bytes.size();
        try {
            if (m_batch.size() + bytes.size() <= k_batch) {
                m_batch.reserve(k_batch);
                m_batch.append(bytes);
                return {};
            }
            if (auto flushed = flush(); !flushed) {
                return flushed;
            }
            if (bytes.size() >= k_batch) {
                return write_out(bytes);
            }
            m_batch.append(bytes);
        } catch (const std::bad_alloc&) {
            return fail("filesystem: out of memory while keeping a response body");
        }
        return {};
    }

    Result<void> commit(const Metadata& meta, std::string_view head) override {
        uint64_t total = head.size() + m_tail_size;
        if (m_storage.too_large(total)) {
            auto removed = m_storage.remove(meta.key);
            return removed ? Result<void>{} : std::unexpected(removed.error());
        }
        if (m_fd < 0) {
            const std::string_view pieces[] = {head, m_batch};
            return m_storage.put(meta, pieces);
        }
        std::string path = filesystem_entry_path(m_storage.dir(), meta.key);
        if (path.empty()) {
            return fail("filesystem: invalid key \"" + meta.key + "\"");
        }
        if (auto flushed = flush(); !flushed) {
            return flushed;
        }
        Header header = header_of(meta, total, k_format_tail_first, head.size());
        std::vector<iovec> iov;
        for (auto [data, size] : {std::pair<const void*, size_t>{meta.key.data(), header.key_size},
                                  {meta.method.data(), header.method_size},
                                  {meta.url.data(), header.url_size},
                                  {head.data(), head.size()}}) {
            if (size > 0) {
                iov.push_back(iovec{const_cast<void*>(data), size});
            }
        }
        bool written = write_all(m_fd, std::move(iov)) &&
                       ::pwrite(m_fd, &header, sizeof header, 0) == sizeof header;
        int saved_errno = errno;
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now); // exact LRU order, as put() does
        timespec times[2] = {expiry_stamp(meta.expires), now};
        ::futimens(m_fd, times);
        bool closed = ::close(std::exchange(m_fd, -1)) == 0;
        if (written && !closed) {
            saved_errno = errno;
        }
        if (!written || !closed) {
            return fail_errno("filesystem: cannot write " + m_temp, saved_errno);
        }
        std::string temp = std::exchange(m_temp, {}); // install() removes it on failure
        return m_storage.install(temp, path, meta.key, total);
    }

  private:
    static constexpr size_t k_batch = 256 * 1024;

    Result<void> flush() {
        if (m_batch.empty()) {
            return {};
        }
        auto done = write_out(m_batch);
        m_batch.clear();
        return done;
    }

    Result<void> write_out(std::string_view bytes) {
        if (m_fd < 0) {
            // In the temp folder, where a sweep finds it if this process dies.
            auto raw = m_storage.open_temp("stream", m_temp);
            if (!raw) {
                m_temp.clear();
                return std::unexpected(raw.error());
            }
            m_fd = *raw;
            if (::lseek(m_fd, sizeof(Header), SEEK_SET) < 0) {
                return fail("filesystem: cannot seek in " + m_temp + ": " + std::strerror(errno));
            }
        }
        iovec one{const_cast<char*>(bytes.data()), bytes.size()};
        if (!write_all(m_fd, {one})) {
            return fail_errno("filesystem: cannot write " + m_temp, errno);
        }
        return {};
    }

    FilesystemStorage& m_storage;
    std::string m_batch;
    std::string m_temp; // the temp file while this stream owns it
    int m_fd = -1;
    uint64_t m_tail_size = 0;
};

Result<std::unique_ptr<PutStream>> FilesystemStorage::begin_put(uint64_t /*size_hint*/) {
    if (!m_read_only.empty()) {
        return read_only_error(*this);
    }
    try {
        return std::unique_ptr<PutStream>(std::make_unique<FilesystemPutStream>(*this));
    } catch (const std::bad_alloc&) {
        return fail("filesystem: out of memory while starting a response body");
    }
}

} // namespace

std::string user_cache_dir() {
    return base::user_cache_dir();
}

// Every folder on the way is checked too (base/private_path.h): a folder that another user
// owns or can write, or a link they planted, is refused instead of written into.
Result<void> make_private_dirs(const std::string& dir) {
    auto made = base::open_private_dir(dir, true);
    if (!made) {
        return fail(made.error().message);
    }
    return {};
}

std::string filesystem_cache_dir(const config::Settings& settings) {
    return settings.name.empty() ? user_cache_dir() + "/http_cache" : settings.name;
}

std::string filesystem_entry_path(std::string_view dir, std::string_view key) {
    if (key.size() < 2 || key.size() > 200 || !std::all_of(key.begin(), key.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
        })) {
        return {};
    }
    std::string path(dir);
    path += '/';
    path += key.substr(0, 2);
    path += '/';
    path += key;
    return path;
}

Result<std::unique_ptr<Storage>> open_filesystem(const config::Settings& settings) {
    std::string dir = filesystem_cache_dir(settings);
    const bool readonly_mode = settings.mode == config::Mode::readonly;
    // Checked as a tree to read from; whether we may also write in it is worked out below
    // (README.md, "Read-only caches").
    auto made = base::open_private_dir(dir, !readonly_mode, base::Trust::read);
    if (!made && made.error().code == ENOENT && readonly_mode) {
        return empty_read_only("filesystem", dir, settings.max_size, "mode is \"readonly\"");
    }
    if (!made) {
        return fail("filesystem: " + made.error().message);
    }
    // The statistics file lives in the tree (core/stats.h); the lock folder beside it.
    if (auto stats =
            base::check_private_entry(*made->fd, "stats", dir + "/stats", base::Trust::read);
        !stats) {
        return fail("filesystem: " + stats.error().message);
    }
    std::string read_only;
    struct stat st {};
    if (readonly_mode) {
        read_only = "mode is \"readonly\"";
    } else if (::fstat(*made->fd, &st) == 0 &&
               !(read_only = base::untrusted(st, base::Trust::own)).empty()) {
        read_only = "folder " + made->path + ": " + read_only;
    } else if (!base::writable(*made->fd, ".")) {
        read_only = "cannot write in folder " + made->path + ": " + std::strerror(errno);
    }
    auto storage = std::make_unique<FilesystemStorage>(std::move(dir), settings.max_size,
                                                       std::move(read_only));
    if (storage->read_only_reason().empty()) { // read-only (or mode readonly): never a write
        (void)storage->sweep_leftovers(); // what SIGKILLed writers left: one small readdir
    }
    return storage;
}

} // namespace curlcache::backends
