// Request coalescing; see coalesce.h.
#include "core/coalesce.h"

#include "core/cache.h"
#include "core/log.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace curlcache::core {
namespace {

constexpr std::chrono::milliseconds k_first_pause{2};
constexpr std::chrono::milliseconds k_longest_pause{100};

// The locks this process holds, and which thread took each. A thread that already holds
// the lock for a key (a multi handle whose download it drives, and a second handle for the
// same URL in that same multi) must not wait for itself: it could never finish that
// download while it waits, so it stalls for lock_timeout. It downloads alone instead.
using Held = std::map<std::pair<const backends::Storage*, std::string>, std::thread::id>;

struct Holders {
    std::mutex mutex;
    pid_t pid = 0;
    Held held;

    // Locks and returns the map, emptied when this process is a fork of its filler.
    Held& for_this_process(std::unique_lock<std::mutex>& guard) {
        guard = std::unique_lock(mutex);
        if (pid != getpid()) {
            held.clear();
            pid = getpid();
        }
        return held;
    }
};

Holders& holders() {
    static Holders* instance = new Holders; // never destroyed: used until process exit
    return *instance;
}

bool held_by_this_thread(const backends::Storage& storage, std::string_view key) {
    std::unique_lock<std::mutex> guard;
    auto& held = holders().for_this_process(guard);
    auto found = held.find(std::pair(&storage, std::string(key)));
    return found != held.end() && found->second == std::this_thread::get_id();
}

void note_holder(const backends::Storage& storage, std::string_view key, bool holding) {
    std::unique_lock<std::mutex> guard;
    auto& held = holders().for_this_process(guard);
    if (holding) {
        held[std::pair(&storage, std::string(key))] = std::this_thread::get_id();
    } else {
        held.erase(std::pair(&storage, std::string(key)));
    }
}

} // namespace

MissLock::MissLock(backends::Storage& storage, std::string key)
    : m_storage(&storage), m_key(std::move(key)) {
    note_holder(storage, m_key, true);
}

MissLock& MissLock::operator=(MissLock&& other) noexcept {
    if (this != &other) {
        release();
        m_storage = std::exchange(other.m_storage, nullptr);
        m_key = std::move(other.m_key);
    }
    return *this;
}

void MissLock::release() {
    if (m_storage != nullptr) {
        note_holder(*m_storage, m_key, false);
        (void)m_storage->unlock(m_key); // a lock we cannot release expires by itself
        m_storage = nullptr;
    }
}

MissRole coalesce(backends::Storage& storage, std::string_view key,
                  const CoalesceOptions& options, const std::function<bool()>& arrived,
                  MissLock& lock) {
    lock.release();
    if (!options.enabled || held_by_this_thread(storage, key)) {
        return MissRole::alone;
    }
    int64_t ttl_ms = std::max<int64_t>(options.lock_timeout_ms, 1);
    auto take = [&]() -> std::optional<MissRole> {
        auto locked = storage.try_lock(key, ttl_ms);
        if (!locked) {
            CURLCACHE_LOG(debug, "coalescing lock failed (%s): downloading without it",
                          locked.error().message.c_str());
            return MissRole::alone;
        }
        if (!*locked) {
            return std::nullopt;
        }
        // The previous holder may have stored the entry just before we took the lock.
        if (arrived()) {
            (void)storage.unlock(key);
            return MissRole::served;
        }
        lock = MissLock(storage, std::string(key));
        return MissRole::lead;
    };
    if (auto role = take()) {
        return *role;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ttl_ms);
    auto pause = k_first_pause;
    CURLCACHE_LOG(debug, "waiting for another process to download %.*s",
                  static_cast<int>(key.size()), key.data());
    while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(
            std::min<std::chrono::nanoseconds>(pause, deadline - std::chrono::steady_clock::now()));
        pause = std::min(pause * 2, k_longest_pause);
        if (arrived()) {
            return MissRole::served;
        }
        // Free again: its holder finished without storing (nothing cacheable) or died.
        if (auto role = take()) {
            return *role;
        }
    }
    CURLCACHE_LOG(info, "waited %lld ms for another process's download of %.*s; fetching it too",
                  static_cast<long long>(ttl_ms), static_cast<int>(key.size()), key.data());
    return MissRole::alone;
}

Coalesced coalesce_miss(Cache& cache, const Key& key) {
    Coalesced result;
    const config::Settings& settings = cache.settings();
    CoalesceOptions options{settings.coalesce, settings.lock_timeout_ms};
    auto arrived = [&] {
        auto found = cache.find(key, nullptr, true);
        if (found && *found && (*found)->fresh(static_cast<int64_t>(std::time(nullptr)))) {
            result.entry = std::move(**found);
            return true;
        }
        return false;
    };
    result.role = coalesce(cache.storage(), key.hex(), options, arrived, result.lock);
    return result;
}

} // namespace curlcache::core
