// Cache-Control (RFC 9111 §5.2) and Pragma (§5.4) as parsed values. Pure functions over
// header text: no clock, no settings, no storage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::core::http {

// The largest delta-seconds a cache must represent; bigger values and overflowing
// arithmetic become this (RFC 9111 §1.2.2).
inline constexpr int64_t k_delta_seconds_max = 2147483648;

// The directives of every Cache-Control field line of one message, combined in order
// (several lines count as one comma-separated list). Names are case-insensitive; an
// unknown directive is ignored. A directive whose argument does not parse as
// delta-seconds (also accepted in quoted form, "60") is recorded in `invalid`, not set.
// When a delta-seconds directive appears twice, the first occurrence is used (even when
// that one was invalid). A qualified no-cache="" or private="" naming no field counts as
// the unqualified directive.
struct CacheControl {
    bool present = false;          // at least one Cache-Control line
    bool no_store = false;
    bool no_cache = false;         // unqualified no-cache (or Pragma: no-cache, see below)
    std::vector<std::string> no_cache_fields; // no-cache="A, B": lower-case field names
    bool must_revalidate = false;
    bool proxy_revalidate = false;
    bool is_private = false;       // unqualified private
    std::vector<std::string> private_fields;  // private="A": lower-case field names
    bool is_public = false;
    bool immutable = false;
    bool must_understand = false;
    bool no_transform = false;
    bool only_if_cached = false;   // request directive
    std::optional<int64_t> max_age;
    std::optional<int64_t> s_maxage;
    std::optional<int64_t> min_fresh;              // request directive
    std::optional<int64_t> max_stale;              // request directive with a value
    bool max_stale_any = false;                    // request directive without a value
    std::optional<int64_t> stale_while_revalidate; // RFC 5861
    std::optional<int64_t> stale_if_error;         // RFC 5861 (response or request)
    std::vector<std::string> invalid;              // lower-case names whose value was bad
};

// The Cache-Control of a response header block (status line, header lines, blank line;
// the status line is skipped). When the block has no Cache-Control line at all, a
// "Pragma: no-cache" sets no_cache (RFC 9111 §5.4 keeps that for compatibility).
CacheControl response_cache_control(std::string_view block);

// The Cache-Control of a request, from header lines as a program sets them
// ("Cache-Control: max-age=0"; lines with other names are skipped). Pragma: no-cache
// sets no_cache when no Cache-Control line is present.
CacheControl request_cache_control(const std::vector<std::string>& lines);

// One delta-seconds value ("60", "\"60\""): nullopt when it is not one; values past
// k_delta_seconds_max become k_delta_seconds_max.
std::optional<int64_t> parse_delta_seconds(std::string_view text);

// The items of a comma-separated list of tokens (RFC 9110 §5.6.1: Pragma, Vary,
// Connection, a qualified no-cache's field names), trimmed and lower-cased, empty items
// skipped ("A, ,b" -> "a", "b"). Quoted strings get no special treatment.
std::vector<std::string> list_tokens(std::string_view value);

// Does such a list hold `token` (compared case-insensitively)?
bool list_has(std::string_view value, std::string_view token);

} // namespace curlcache::core::http
