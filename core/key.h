// The cache key: XXH3-128 over a canonical, versioned encoding of a request.
#pragma once

#include "config/settings.h"
#include "core/request.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace curlcache::core {

// Bumped whenever the canonical encoding changes, so old keys simply stop matching.
// 2: CURLOPT_HTTP_VERSION enters the key only where it changes the response.
inline constexpr uint32_t k_key_format_version = 2;

struct Key {
    uint64_t high = 0;
    uint64_t low = 0;
    std::string hex() const;                 // 32 lower-case hex digits
    std::array<char, 32> hex_digits() const; // the same, without an allocation
    static std::optional<Key> from_hex(std::string_view hex);
    bool operator==(const Key&) const = default;
};

Key make_key(const Request& request, const config::Settings& settings);

// What make_key() takes from the URL alone: the normalised URL (normalize_url()) and its
// userinfo (url_credentials()). A handle that sends the same URL again keeps them
// (core/easy: UrlMemo) rather than parsing the URL on every transfer.
struct UrlParts {
    std::string normalized;
    std::string userinfo;
};
UrlParts url_parts(std::string_view url, const config::Settings& settings);
// make_key() with the URL's parts already worked out: `url` must be url_parts(request.url).
Key make_key(const Request& request, const config::Settings& settings, const UrlParts& url);

// The key of a handle's last transfer and what went into it (core/easy keeps one per
// handle beside its UrlMemo): make_key() with a memo returns the kept key when the
// request's key material is equal, byte for byte, to the kept one, and otherwise computes
// the key and keeps it with its material. The material is compared as it enters the key,
// worked out for this request under the settings given now: the method, the normalised URL
// (`url`), the body, the matched headers, the options, and the credentials only as their
// salted digest (never kept in clear). So it is exact whatever changed in between (the
// program's POSTFIELDS or HTTPHEADER bytes rewritten in place, another cache or settings:
// the digest's salt and match_headers are those of now). A body larger than 64 KiB is not
// kept: such a request's key is computed every time.
struct KeyMemo {
    bool valid = false;
    Key key;
    std::string method; // as given (the key upper-cases it)
    std::string url;    // normalised
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // matched, as keyed
    std::vector<std::pair<std::string, std::string>> options; // in request order, no "credentials"
    std::string credentials;                                  // the salted digest, or ""
};
Key make_key(const Request& request, const config::Settings& settings, const UrlParts& url,
             KeyMemo& memo);

// Is a request header's value already part of every key (Accept, Accept-Encoding,
// Accept-Language and Host always, see core/easy/request_plan.cpp; match_headers)? A
// response that varies only on such headers needs no variants. `name` is lower-case.
bool key_covers_header(std::string_view name, const config::Settings& settings);

// What entered make_key() besides the URL, readable, so that `curlcache show` and `list
// --why` can say why one URL has two entries: one "name\tvalue\n" line per part, in key
// order: "method", "header NAME" (matched headers), "option NAME" (transfer options),
// "body" (its size and a digest, never the bytes) and "credentials" ("yes": never the
// credentials nor their digest). A "\n" or "\t" inside a value is written as a space.
std::string key_parts(const Request& request, const config::Settings& settings);
// The private Info id (no CURLINFO has it, see core/easy/engine_internal.h) under which an
// entry records its key_parts() text.
inline constexpr uint32_t k_info_key_parts = 0x0ff00003;

// Where the variant of a Vary response is stored: a key derived from the request's key and
// the canonical values of the nominated request headers (http::variant_of).
Key variant_key(const Key& key, std::string_view variant);

// Canonical URL: lower-case scheme and host, default port dropped, fragment dropped,
// ignored_parameters removed, query sorted when sort_query. Userinfo is dropped (it is
// credentials: the caller puts it in Request::credentials).
std::string normalize_url(std::string_view url, const config::Settings& settings);

// The URL as it may be stored or logged: normalised, so userinfo and ignored parameters
// (name and value) are left out. The same text as normalize_url(); the name says why.
std::string redact_url(std::string_view url, const config::Settings& settings);

// Userinfo ("user:pass") of a URL, or "" (for Request::credentials).
std::string url_credentials(std::string_view url);

} // namespace curlcache::core
