// The filesystem backend's usage ledger (internal to the backends room): the entry count and
// value bytes of a cache folder, in one small file (<dir>/usage), so that usage() and the
// max_size check read one record instead of opening every entry file.
//
// Every change to the tree (an entry renamed into place, an entry file unlinked) is made
// while holding the ledger's lock (flock, plus a mutex between this process's threads), as
// three steps: write the change as pending (the key, the inode it installs or removes, and
// what it adds to the counters), make it, write the counters with the change applied. A
// writer killed between the steps leaves the change pending; whoever takes the lock next
// looks at the entry's path (is the installed inode there / is the removed one gone?) and
// applies the change or drops it, so the counters stay exact across crashes. A record that
// is missing (a folder an older version filled), torn or otherwise unreadable is rebuilt by
// a full recount under the lock, once; `curlcache vacuum` recounts too (for files removed
// behind curlcache's back).
#pragma once

#include "backends/storage.h"

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace curlcache::backends::filesystem {

struct Counts {
    uint64_t entries = 0;
    uint64_t bytes = 0;
};

enum class Change : uint32_t { none = 0, install = 1, unlink = 2 };

// The file's one record (native byte order, as the entry files).
struct LedgerRecord {
    char magic[8];
    uint64_t entries;
    uint64_t bytes;
    uint32_t shard;       // eviction's rotation
    uint32_t pending;     // Change
    uint64_t pending_ino;
    int64_t pending_entries;
    int64_t pending_bytes;
    uint32_t pending_key_size;
    char pending_key[204]; // keys are at most 200 characters (filesystem_entry_path)
    uint64_t checksum;     // FNV-1a of everything before it
};

class Ledger {
  public:
    using Recount = std::function<Result<Counts>()>;
    using EntryPath = std::function<std::string(std::string_view key)>;

    // `dir`: the cache folder; `recount`: a full walk of it; `entry_path`: where a key's
    // file is. A read-only ledger never writes (and never waits for a writer).
    Ledger(std::string dir, bool read_only, Recount recount, EntryPath entry_path);
    ~Ledger();
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    // What the ledger holds while locked.
    class Session {
      public:
        Counts counts() const;
        // Makes one change to the tree: `act` renames or unlinks, and returns whether it
        // did; the counters move by (d_entries, d_bytes) when it did. `ino`: the inode that
        // `act` installs at (install) or removes from (unlink) the key's path.
        Result<void> change(std::string_view key, Change kind, uint64_t ino, int64_t d_entries,
                            int64_t d_bytes, const std::function<bool()>& act);
        // Sets the counters (after clear or a recount).
        Result<void> set(Counts counts);
        // The next shard for eviction to look at (a rotation kept in the ledger).
        uint32_t next_shard();

      private:
        friend class Ledger;
        explicit Session(Ledger& ledger) : m_ledger(ledger) {}
        Ledger& m_ledger;
    };

    // Runs `fn` holding the lock, with the record valid (recounted when missing or torn,
    // a killed writer's pending change settled). Fails when the ledger cannot be used
    // (read-only, or a file that is not ours): callers then count by walking.
    Result<void> locked(const std::function<Result<void>(Session&)>& fn);

    // The counters, without writing: empty when a read-only ledger is missing, torn or has
    // a change pending (the caller walks instead).
    std::optional<Counts> peek();

  private:
    Result<void> open_locked();
    Result<void> load();
    Result<void> store();
    void settle();

    const std::string m_path;
    const std::string m_dir;
    const bool m_read_only;
    Recount m_recount;
    EntryPath m_entry_path;
    std::mutex m_mutex; // between threads (flock does not tell them apart)
    int m_fd = -1;
    uint64_t m_generation = 0; // fork_generation() when m_fd was opened
    LedgerRecord m_record{};
};

} // namespace curlcache::backends::filesystem
