// One cheap logging macro: the level is checked before anything is formatted. Messages
// start with "curlcache: " and go to stderr or the configured log file, never stdout.
#pragma once

#include "config/settings.h"

#include <atomic>
#include <cstdarg>
#include <string>
#include <string_view>

namespace curlcache::core::log {

extern std::atomic<int> g_level; // a config::LogLevel as int

// Directs messages to `path` ("" = stderr) and sets the level. Thread-safe.
void configure(config::LogLevel level, const std::string& path);

// printf-style; appends a newline. Use through CURLCACHE_LOG.
void write(config::LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Like write() at warning level, but only the first time `once_key` is seen by this
// process (a backend that is down warns once, not once per transfer). The key names the
// cause, never the message (which may name a path, a key or an address).
void warn_once(const char* once_key, const char* format, ...) __attribute__((format(printf, 2, 3)));

// The once_key of a failed operation: one cause, one warning per process. `code` is the
// errno of the failed system call (0 when none); errno values that one remedy fixes make one
// class: "no-space" (ENOSPC, EDQUOT: the disk is full, for every room and operation that
// meets it, statistics included), "<room>:not-a-file" (a folder or other non-file where a
// file belongs: EISDIR, ENOTDIR, ENOTEMPTY, EEXIST), "<room>:permission" (EACCES, EPERM,
// EROFS); any other failure is "<room>:<operation>".
std::string cause(std::string_view room, std::string_view operation, int code);

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
