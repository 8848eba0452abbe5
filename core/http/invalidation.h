// Invalidation (RFC 9111 §4.4): which stored responses a response to an unsafe method
// removes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace curlcache::core::http {

// True for every method except the safe ones (GET, HEAD, OPTIONS, TRACE); case-sensitive
// as methods are.
bool is_unsafe(std::string_view method);

// Does a response with this status to `method` invalidate (unsafe method, non-error
// status: 2xx or 3xx)?
bool invalidates(std::string_view method, long status);

// The URLs whose stored responses go: the request URL, and the Location and
// Content-Location of the final response resolved against it (relative references
// allowed) when they have the same origin (scheme, host, port) as the request URL.
// Fragments are dropped. The request URL comes first; no duplicates.
std::vector<std::string> invalidation_targets(std::string_view request_url,
                                              std::string_view final_block);

} // namespace curlcache::core::http
