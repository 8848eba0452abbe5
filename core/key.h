// The cache key: XXH3-128 over a canonical, versioned encoding of a request.
#pragma once

#include "config/settings.h"
#include "core/request.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace curlcache::core {

// Bumped whenever the canonical encoding changes, so old keys simply stop matching.
inline constexpr uint32_t k_key_format_version = 1;

struct Key {
    uint64_t high = 0;
    uint64_t low = 0;
    std::string hex() const; // 32 lower-case hex digits
    static std::optional<Key> from_hex(std::string_view hex);
    bool operator==(const Key&) const = default;
};

Key make_key(const Request& request, const config::Settings& settings);

// Canonical URL: lower-case scheme and host, default port dropped, fragment dropped,
// ignored_parameters removed, query sorted when sort_query. Userinfo is dropped (it is
// credentials: the caller puts it in Request::credentials).
std::string normalize_url(std::string_view url, const config::Settings& settings);

// The URL as it may be stored or logged: normalised, userinfo removed, the values of
// ignored parameters removed.
std::string redact_url(std::string_view url, const config::Settings& settings);

// Userinfo ("user:pass") of a URL, or "" (for Request::credentials).
std::string url_credentials(std::string_view url);

} // namespace curlcache::core
