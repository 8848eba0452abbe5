// libcurl's cookie engine takes in the Set-Cookie headers of every response it receives
// (and a jar then writes them out). A replayed response reaches no socket, so the engine
// feeds those cookies to the handle's real cookie engine itself, in libcurl's own file
// format (CURLOPT_COOKIELIST), with the domain, path and expiry libcurl would derive.
#pragma once

#include "core/easy/engine.h"
#include "core/easy/handle_state.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace curlcache::core::easy {

// The Netscape cookie-file line libcurl would keep for `set_cookie` (the header's value)
// received from `url` at `now`; nullopt when libcurl would reject it (a Domain that does
// not match the host, no name).
std::optional<std::string> cookie_file_line(std::string_view set_cookie, std::string_view url,
                                            int64_t now);

// Feeds the Set-Cookie headers of every replayed hop to the handle's cookie engine, when
// the program turned it on (COOKIEFILE, COOKIEJAR or a COOKIELIST cookie line; a SHARE
// lends a jar but does not turn the engine on, and curl_easy_reset turns it off).
void feed_cookies(const CurlApi& api, CURL* handle, const Options& options, const Replay& replay);

// The URL a Location header leads to from `base`.
std::string resolve_location(std::string_view base, std::string_view location);

} // namespace curlcache::core::easy
