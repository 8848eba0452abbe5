// The process-wide cache: lazy, fork-aware, fail-open.
#include "core/easy/cache_access.h"

#include "config/loader.h"
#include "core/log.h"
#include "core/warned_files.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace curlcache::core::easy {

namespace {

enum State : int { k_untried = 0, k_open = 1, k_passthrough = 2 };

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
std::atomic<int> g_state{k_untried};
std::atomic<Cache*> g_cache{nullptr};
pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

struct MutexLock {
    explicit MutexLock(pthread_mutex_t& m) : m_mutex(m) { pthread_mutex_lock(&m_mutex); }
    ~MutexLock() { pthread_mutex_unlock(&m_mutex); }
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;
    pthread_mutex_t& m_mutex;
};

// In a forked child the parent's connection (SQLite file handle, Redis socket) must not be
// used, nor closed (closing may talk to the server or release locks the parent relies on):
// it is left alone, deliberately leaked, and the cache reopens lazily in the child. The
// mutex is re-initialised because another parent thread may have held it at fork time.
void on_fork_child() {
    pthread_mutex_init(&g_mutex, nullptr);
    g_cache.store(nullptr, std::memory_order_relaxed);
    if (g_state.load(std::memory_order_relaxed) == k_open) {
        g_state.store(k_untried, std::memory_order_relaxed);
    }
}

// At exit the cache is let go of but never destroyed: exit() does not stop the other
// threads, and one may be inside a transfer that uses the cache (reading a hit, streaming a
// miss into the storage) while the exit handlers and static destructors run. So it is
// deliberately leaked: its statistics are saved and the storage writes what it deferred
// (Storage::flush: access times, a WAL checkpoint), without closing anything. Transfers
// that begin after this pass through.
void close_at_exit() {
    Cache* cache = nullptr;
    {
        MutexLock lock(g_mutex);
        cache = g_cache.load(std::memory_order_relaxed);
        g_state.store(k_passthrough, std::memory_order_release);
    }
    if (cache == nullptr) {
        return;
    }
    try {
        cache->flush_stats();
        cache->storage().flush();
    } catch (const std::exception& error) {
        log::warn_once("exit-flush", "cannot save the cache's state at exit: %s", error.what());
    } catch (...) {
    }
}

void register_handlers() {
    pthread_atfork(nullptr, nullptr, on_fork_child);
    std::atexit(close_at_exit);
}

// Called with g_mutex held.
void open_locked() {
    pthread_once(&g_atfork_once, register_handlers);
    auto loaded = config::load();
    if (!loaded) {
        log::warn_once("config", "configuration error, the cache is not used: %s",
                       loaded.error().message.c_str());
        g_state.store(k_passthrough, std::memory_order_release);
        return;
    }
    // A config file's own warnings ("path:line: unknown key ...") once per version of the
    // file, not in every process that reads it (core/warned_files.h); others (variables)
    // once per process.
    const std::string file = loaded->settings.config_file.value_or("");
    std::optional<bool> file_warns;
    for (const auto& warning : loaded->warnings) {
        if (!file.empty() && warning.starts_with(file + ":")) {
            if (!file_warns) {
                file_warns = config_warnings_are_new(file);
            }
            if (!*file_warns) {
                continue;
            }
        }
        log::warn_once(warning.c_str(), "%s", warning.c_str());
    }
    config::Settings& settings = loaded->settings;
    log::configure(settings.log_level, settings.log_file);
    if (settings.disable || settings.mode == config::Mode::off) {
        g_state.store(k_passthrough, std::memory_order_release);
        return;
    }
    auto cache = Cache::open(std::move(settings));
    if (!cache) {
        log::warn_once("cache-open", "cannot open the cache, transfers pass through: %s",
                       cache.error().c_str());
        g_state.store(k_passthrough, std::memory_order_release);
        return;
    }
    (*cache)->warn_if_read_only();
    g_cache.store(cache->release(), std::memory_order_relaxed);
    g_state.store(k_open, std::memory_order_release);
}

} // namespace

Cache* process_cache() {
    int state = g_state.load(std::memory_order_acquire);
    if (state == k_open) {
        return g_cache.load(std::memory_order_relaxed);
    }
    if (state == k_passthrough) {
        return nullptr;
    }
    MutexLock lock(g_mutex);
    if (g_state.load(std::memory_order_acquire) == k_untried) {
        try {
            open_locked();
        } catch (const std::exception& error) {
            log::warn_once("cache-open", "cannot open the cache, transfers pass through: %s",
                           error.what());
            g_state.store(k_passthrough, std::memory_order_release);
        }
    }
    return g_state.load(std::memory_order_acquire) == k_open
               ? g_cache.load(std::memory_order_relaxed)
               : nullptr;
}

void close_process_cache() {
    MutexLock lock(g_mutex);
    std::unique_ptr<Cache> owned(g_cache.exchange(nullptr));
    g_state.store(k_untried, std::memory_order_release);
}

} // namespace curlcache::core::easy
