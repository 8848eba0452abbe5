// Limits checked on a config file's text before toml11 sees it. toml11 parses nested arrays
// and inline tables by recursion, so a file of a few thousand '[' overflows the stack of
// every program the shim is loaded into; and a huge file is never a real configuration.
// Internal to config/.
#pragma once

#include <cstdint>
#include <string_view>

namespace curlcache::config {

// Larger files are refused unread: curlcache's own example is under 8 KiB.
constexpr uint64_t k_max_config_bytes = 1024 * 1024;

// Arrays and inline tables nested deeper than this are refused; curlcache's own keys need
// at most 3 (urls_expire_after = [{ ... }] inside a table).
constexpr unsigned k_max_config_nesting = 32;

// The 1-based line on which arrays and inline tables ('[' and '{' outside strings and
// comments, table headers included) first nest deeper than `limit`; 0 when they never do.
// Understands TOML's basic and literal strings, their multi-line forms and comments, so
// brackets inside them do not count. Linear in the size of `text`, no recursion.
unsigned line_nesting_deeper_than(std::string_view text, unsigned limit);

} // namespace curlcache::config
