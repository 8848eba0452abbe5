// Turns a handle's recorded options into what the cache needs: the core::Request (key
// material), the program's own conditions and range, or the reason to pass through.
#pragma once

#include "config/settings.h"
#include "core/easy/handle_state.h"
#include "core/http/cache_control.h"
#include "core/request.h"

#include <cstdint>
#include <optional>
#include <string>

namespace curlcache::core::easy {

struct Plan {
    // Non-null when the cache must not touch this transfer (a short reason, for debug logs).
    const char* passthrough = nullptr;
    Request request;
    // The program's own conditional request (answered with a 304 on a hit when it holds).
    std::optional<std::string> if_none_match;
    std::optional<int64_t> if_modified_since;
    bool timecondition = false; // the condition came from CURLOPT_TIMECONDITION
    // The program's own range (RANGE, or RESUME_FROM as "N-"); answered with a 206 from the
    // full cached body, never stored.
    std::optional<std::string> range;
    bool conditional() const { return if_none_match || if_modified_since; }
    // The request's own Cache-Control (or Pragma), when it set one.
    std::optional<http::CacheControl> cache_control;
    // It carries credentials that make an Authorization header (user/password, bearer, ...).
    bool authorization = false;
    // With a memo: the URL's key parts, held by the memo (valid until its next use).
    const UrlParts* url_parts = nullptr;
};

// The method the transfer will send ("GET", "POST", "PUT", a CUSTOMREQUEST), also for
// transfers that pass through.
std::string transfer_method(const Options& options);

// Reads HTTPHEADER and POSTFIELDS now (they are the program's memory, valid during perform).
// With `memo`, the URL's key parts are taken from it (or worked out and kept there) and
// plan.url_parts points at them, for the key.
Plan plan_transfer(const Options& options, const config::Settings& settings,
                   UrlMemo* memo = nullptr);

// Whether the URL's scheme (before its first "://") is http or https, in any case (false
// without a scheme).
bool is_http_url(std::string_view url);

} // namespace curlcache::core::easy
