// Limits checked on a config file's text before toml11 sees it. toml11 parses nested arrays
// and inline tables by recursion, so a file of a few thousand '[' overflows the stack of
// every program the shim is loaded into; and a huge file or line takes seconds to minutes.
// Internal to config/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace curlcache::config {

// toml11 reads about a megabyte a second, and each token copies the line it is on (a single
// 240 KiB line took 46 s). These bound the time a config can take to well under a second or
// two; curlcache's own example is 7 KiB with lines under 100 bytes.
constexpr uint64_t k_max_config_bytes = 256 * 1024; // larger files are refused unread
constexpr size_t k_max_config_line_bytes = 2048;

// Arrays and inline tables nested deeper than this are refused; curlcache's own keys need
// at most 3 (urls_expire_after = [{ ... }] inside a table).
constexpr unsigned k_max_config_nesting = 32;

// The 1-based line on which arrays and inline tables ('[' and '{' outside strings and
// comments, table headers included) first nest deeper than `limit`; 0 when they never do.
// Understands TOML's basic and literal strings, their multi-line forms and comments, so
// brackets inside them do not count. Linear in the size of `text`, no recursion.
unsigned line_nesting_deeper_than(std::string_view text, unsigned limit);

// The 1-based number of the first line longer than `limit` bytes (without its newline), or 0.
unsigned line_longer_than(std::string_view text, size_t limit);

// The 1-based number of the first line that is not valid UTF-8 (RFC 3629: no overlong forms,
// surrogates or code points past U+10FFFF), or 0. A TOML file must be UTF-8, and toml11 3.7
// reads past its buffer when it reports invalid UTF-8 inside a multi-line string (found by
// tests/fuzz/config.cpp), so such a file never reaches it.
unsigned line_not_utf8(std::string_view text);

} // namespace curlcache::config
