// Masking secrets for display: a URL's password and a plugin setting that is or holds one.
// Header-only, so that the curlcache command (built on the public API alone) and the config
// loader share one definition.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace curlcache::base {

// "redis://user:secret@host/0" -> "redis://user:***@host/0".
inline std::string mask_password(const std::string& url) {
    const size_t start = url.find("://");
    if (start == std::string::npos) {
        return url;
    }
    const size_t at = url.find('@', start + 3);
    const size_t slash = url.find('/', start + 3);
    if (at == std::string::npos || (slash != std::string::npos && slash < at)) {
        return url;
    }
    const size_t colon = url.find(':', start + 3);
    if (colon == std::string::npos || colon > at) {
        return url; // a user name alone is no secret
    }
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// A value that may hold a password anywhere: a URL's user:password@ and every libpq-style
// "password=x", "password='x y'" or "?password=x&" are masked.
inline std::string mask_passwords(const std::string& value) {
    std::string masked = mask_password(value);
    std::string lower = masked;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    constexpr std::string_view k_password = "password=";
    // From the end, so that the positions still to visit stay where they were.
    for (size_t at = lower.rfind(k_password); at != std::string::npos;
         at = at == 0 ? std::string::npos : lower.rfind(k_password, at - 1)) {
        const size_t start = at + k_password.size();
        size_t end = start;
        if (end < masked.size() && masked[end] == '\'') {
            for (++end; end < masked.size() && masked[end] != '\'';
                 end += masked[end] == '\\' ? 2 : 1) {
            }
            end = std::min(end + 1, masked.size());
        } else {
            end = masked.find_first_of(" &", start);
            end = end == std::string::npos ? masked.size() : end;
        }
        masked.replace(start, end - start, "***");
    }
    return masked;
}

// A plugin's setting as it may be shown: "***" for a key that names a secret (password,
// secret, token, credential), else the value with its passwords masked.
inline std::string mask_secret(std::string_view key, const std::string& value) {
    std::string lower_key(key);
    std::transform(lower_key.begin(), lower_key.end(), lower_key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (std::string_view secret : {"password", "passwd", "secret", "token", "credential"}) {
        if (lower_key.find(secret) != std::string::npos) {
            return value.empty() ? value : "***";
        }
    }
    return mask_passwords(value);
}

} // namespace curlcache::base
