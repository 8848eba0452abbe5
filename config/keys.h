// The one table of every configuration key: TOML key, environment variable, type, help,
// and where it lives in Settings. Internal to config/; other rooms see describe().
#pragma once

#include "config/settings.h"
#include "config/value.h"

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace curlcache::config {

enum class KeyType {
    config_file, // CURLCACHE_CONFIG / argument "config": which file to read, not a file key
    boolean,
    string,
    path,      // a string naming a file; "~/" is expanded
    redis_url, // redis://... or unix://...; a password is masked when rendered
    size,      // bytes: 512, "10MiB"
    count,     // a plain non-negative integer
    seconds,   // a duration: 3600, "1h", "never"
    expiry,    // a duration or "auto" (expire_after)
    millis,    // a timeout: 250, "250ms", "1s"
    mode,
    cache_type,
    log_level,
    backends,  // one name or a list of tiers
    strings,   // a list of strings
    codes,     // a list of HTTP status codes
    url_rules, // urls_expire_after
};

using Member =
    std::variant<std::monostate, bool Settings::*, std::string Settings::*, uint64_t Settings::*,
                 int64_t Settings::*, Mode Settings::*, LogLevel Settings::*, CacheType Settings::*,
                 std::vector<std::string> Settings::*, std::vector<long> Settings::*,
                 std::vector<UrlRule> Settings::*>;

struct KeyDef {
    std::string_view key; // "sqlite.fast_save"
    std::string_view
        env; // "CURLCACHE_SQLITE_FAST_SAVE": "CURLCACHE_" + key upper-cased, '.' -> '_'
    KeyType type;
    std::string_view help; // one line
    Member member;
};

// Every key, in the order `curlcache config` and the example file show them.
std::span<const KeyDef> keys();

const KeyDef* find_key(std::string_view key);

// The closest known key to a misspelt one, or "" when nothing is close.
std::string suggest_key(std::string_view key);

// The built-in sections a file may have ("sqlite", "filesystem", "memory", "redis"); any
// other table belongs to a backend plugin (Settings::plugin_tables).
std::span<const char* const> sections();
bool is_section(std::string_view name);

// Stores `value` into `settings`. The error is the message without its location
// ("bad duration \"5 parsecs\" (use ...)"). `home` expands a leading "~/" in paths.
std::expected<void, std::string> apply(const KeyDef& def, const Value& value, Settings& settings,
                                       std::string_view home);

// The current value as it would be written in TOML.
std::string render(const KeyDef& def, const Settings& settings);

} // namespace curlcache::config
