// Text parsers and renderers shared by the key table and the loader. Internal to config/;
// parse_duration and parse_size are public through config/loader.h.
#pragma once

#include "config/settings.h"

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace curlcache::config {

// Errors are the message without a location: `bad duration "5 parsecs" (use ...)`.
std::expected<int64_t, std::string> parse_millis(std::string_view text); // "250ms", "1s", "250"
std::expected<bool, std::string> parse_bool(std::string_view text); // 1/0 true/false yes/no on/off
std::expected<Mode, std::string> parse_mode(std::string_view text);
std::expected<LogLevel, std::string> parse_log_level(std::string_view text);
std::expected<CacheType, std::string> parse_cache_type(std::string_view text);

// Messages for values that arrived typed (a TOML integer) but out of range.
std::string bad_duration(std::string_view text);
std::string bad_millis(std::string_view text);
std::string bad_size(std::string_view text);

const char* mode_name(Mode mode);
const char* log_level_name(LogLevel level);
const char* cache_type_name(CacheType type);

// Renderers produce TOML: an integer, or a quoted string with a unit.
std::string render_seconds(int64_t seconds); // -1 -> "never", 900 -> "15m"
std::string render_millis(int64_t millis);   // 250 -> "250ms", 30000 -> "30s"
std::string render_size(uint64_t bytes);     // 104857600 -> "100MiB", 1234 -> 1234
std::string quote(std::string_view text);    // a TOML basic string

// A plugin's name: a-z, 0-9, '-', '_' (at most 64).
bool is_plugin_name(std::string_view name);

std::string_view trim(std::string_view text);
std::string to_lower(std::string_view text);


} // namespace curlcache::config
