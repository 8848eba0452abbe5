// What the backend plugins of this tree share in reading their settings (header-only: each
// plugin is its own shared object and links nothing of the host).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace curlcache::plugins {

// A timeout setting: "250", "250ms", "2s" -> milliseconds; -1 when malformed.
inline int64_t parse_ms(const char* text) {
    char* end = nullptr;
    const long long value = std::strtoll(text, &end, 10);
    if (end == text || value < 0) {
        return -1;
    }
    const std::string unit = end;
    return unit.empty() || unit == "ms" ? value : unit == "s" ? value * 1000 : -1;
}

} // namespace curlcache::plugins
