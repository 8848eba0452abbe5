// One cheap logging macro: the level is checked before anything is formatted. Messages
// start with "curlcache: " and go to stderr or the configured log file, never stdout.
#pragma once

#include "config/settings.h"

#include <atomic>
#include <cstdarg>
#include <string>

namespace curlcache::core::log {

extern std::atomic<int> g_level; // a config::LogLevel as int

// Directs messages to `path` ("" = stderr) and sets the level. Thread-safe.
void configure(config::LogLevel level, const std::string& path);

// printf-style; appends a newline. Use through CURLCACHE_LOG.
void write(config::LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Like write() at warning level, but only the first time `once_key` is seen by this
// process (a backend that is down warns once, not once per transfer).
void warn_once(const char* once_key, const char* format, ...) __attribute__((format(printf, 2, 3)));

inline bool enabled(config::LogLevel level) {
    return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

} // namespace curlcache::core::log

#define CURLCACHE_LOG(level, ...)                                                            \
    do {                                                                                     \
        if (::curlcache::core::log::enabled(::curlcache::config::LogLevel::level)) {         \
            ::curlcache::core::log::write(::curlcache::config::LogLevel::level, __VA_ARGS__); \
        }                                                                                    \
    } while (0)
