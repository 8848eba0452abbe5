// Request coalescing (issue 4): when several processes miss the same key at the same
// moment, exactly one downloads; the others wait for its entry (bounded by lock_timeout,
// then fetch themselves) and are served from the cache. A lock left by a crashed process
// expires (Redis: PX ttl; files: the kernel drops a dead holder's flock) and is taken over.
// Off with coalesce=false.
//
// The engine's miss path, in two lines:
//     auto coalesced = coalesce_miss(cache, key);
//     if (coalesced.entry) { serve it as a hit } else { download; store; coalesced.lock.release(); }
// (keep `coalesced.lock` alive until the entry is stored; its destructor releases it too.)
//
// Waiting polls the cache with a short exponential backoff (2 ms doubling to 100 ms): a
// few cheap reads per second, no subscription machinery, and the same code for every
// backend. Polling is the reason a waiter can notice a dead holder at all.
#pragma once

#include "backends/storage.h"
#include "core/entry.h"
#include "core/key.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace curlcache::core {

class Cache;

// The coalescing lock this caller holds for one key; released by release() or on
// destruction. Empty (held() false) when the caller does not lead.
class MissLock {
public:
    MissLock() = default;
    // Records that the calling thread holds the (already taken) lock for `key`.
    MissLock(backends::Storage& storage, std::string key);
    MissLock(MissLock&& other) noexcept
        : m_storage(std::exchange(other.m_storage, nullptr)), m_key(std::move(other.m_key)) {}
    MissLock& operator=(MissLock&& other) noexcept;
    MissLock(const MissLock&) = delete;
    MissLock& operator=(const MissLock&) = delete;
    ~MissLock() { release(); }

    bool held() const { return m_storage != nullptr; }
    void release();

private:
    backends::Storage* m_storage = nullptr;
    std::string m_key;
};

struct CoalesceOptions {
    bool enabled = true;           // Settings::coalesce
    int64_t lock_timeout_ms = 30000; // Settings::lock_timeout_ms: the longest wait, and the
                                     // lock's lifetime (after which it may be taken over)
};

// What a miss turned into.
enum class MissRole {
    lead,      // this caller holds the lock: download, store, release
    served,    // another caller stored the entry while this one waited
    alone,     // no coalescing (off, lock error, or waited lock_timeout): just download
};

// The storage-level mechanism. `arrived` is polled while waiting and after taking the
// lock; it returns true once the entry is in the cache (keeping whatever it read).
MissRole coalesce(backends::Storage& storage, std::string_view key,
                  const CoalesceOptions& options, const std::function<bool()>& arrived,
                  MissLock& lock);

struct Coalesced {
    std::optional<Entry> entry; // a fresh entry another process stored: serve it
    MissLock lock;              // held when this caller downloads (and stores) the entry
    MissRole role = MissRole::alone;
};

// For the engine: coalesces a miss of `key` on the cache's storage with the cache's
// settings (coalesce, lock_timeout_ms). Never fails: a storage error means "download".
Coalesced coalesce_miss(Cache& cache, const Key& key);

} // namespace curlcache::core
