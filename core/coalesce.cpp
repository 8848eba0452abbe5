// Request coalescing; see coalesce.h.
#include "core/coalesce.h"

#include "core/cache.h"
#include "core/log.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>

namespace curlcache::core {
namespace {

constexpr std::chrono::milliseconds k_first_pause{2};
constexpr std::chrono::milliseconds k_longest_pause{100};

} // namespace

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
        (void)m_storage->unlock(m_key); // a lock we cannot release expires by itself
        m_storage = nullptr;
    }
}

MissRole coalesce(backends::Storage& storage, std::string_view key,
                  const CoalesceOptions& options, const std::function<bool()>& arrived,
                  MissLock& lock) {
    lock.release();
    if (!options.enabled) {
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
        auto found = cache.find(key);
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
