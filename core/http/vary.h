// Vary (RFC 9111 §4.1): which request header values select a stored response.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace curlcache::core::http {

// The field names a response's Vary lines nominate, lower-case, sorted, without
// duplicates; {"*"} when any of them is "*"; empty when the response has no Vary.
std::vector<std::string> vary_names(std::string_view block);

// A canonical text of the request's values of the nominated headers, equal for two
// requests exactly when a cache may use one's response for the other:
// "name:value\n" per name in `names` order, where value is every line of that name in
// `request_lines` joined by ", ", with optional whitespace around commas and at the ends
// removed and inner runs of whitespace folded to one space; an absent header gives
// "name\n" (distinct from an empty value "name:\n"). Header names compare
// case-insensitively. `names` as vary_names returns them (not "*"). Request lines are
// read as libcurl reads CURLOPT_HTTPHEADER: "Name:" with no value removes the header (it
// counts as absent) and "Name;" sends it with an empty value.
// The value of a credential field (Authorization, Proxy-Authorization, Cookie) is written as
// "#" and the hex XXH3-128 of the normalised value, so the stored variant holds no secret.
std::string variant_of(const std::vector<std::string>& names,
                       const std::vector<std::string>& request_lines);

} // namespace curlcache::core::http
