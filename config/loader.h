// Builds Settings from the built-in defaults, one config file and CURLCACHE_* variables.
#pragma once

#include "config/settings.h"

#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace curlcache::config {

struct LoadError {
    std::string message; // "path:line: key 'expire_after': bad duration \"5 parsecs\"" or
                         // "CURLCACHE_MODE: unknown mode \"fast\" (normal, offline, ...)"
    bool io = false;     // the config file could not be read at all (missing, unreadable)
};

// Warnings (unknown keys, ...) are returned with the settings, never printed here.
struct Loaded {
    Settings settings;
    std::vector<std::string> warnings;
    // Values of plugin tables that are not plain text, numbers or booleans, by table: left
    // out, and a warning once the backends show that the table is a plugin's.
    std::vector<std::pair<std::string, std::string>> plugin_value_warnings;
};

// Reads the environment through `getenv` (injectable for tests; defaults to ::getenv).
using GetEnv = std::function<const char*(const char*)>;

// Finds the config file: $CURLCACHE_CONFIG, then $XDG_CONFIG_HOME/curlcache/config.toml
// (~/.config/... when unset), then /etc/curlcache.toml; never the current directory.
// Returns "" when none exists.
std::string find_config_file(const GetEnv& getenv_fn = {});

// Defaults < file (the found one, or `explicit_file` when non-empty) < CURLCACHE_*
// environment < `arguments` ("key=value" pairs with TOML key names, e.g. "backend=memory").
std::expected<Loaded, LoadError> load(const std::vector<std::string>& arguments = {},
                                      const GetEnv& getenv_fn = {},
                                      const std::string& explicit_file = "");

// Parses one file on top of built-in defaults only (for `curlcache config --check`).
std::expected<Loaded, LoadError> load_file(const std::string& path);

// Every known key with its current value rendered as text and its origin, in table order
// (for `curlcache config`).
struct Entry {
    std::string key;   // TOML key, "sqlite.fast_save"
    std::string env;   // "CURLCACHE_SQLITE_FAST_SAVE", or "" when it has none
    std::string value; // rendered value
    Origin origin;
    std::string help; // one line
};
std::vector<Entry> describe(const Settings& settings);

// Parsers shared with the command line.
std::expected<int64_t, std::string>
parse_duration(std::string_view text); // "15m" -> 900, "never" -> -1
std::expected<uint64_t, std::string> parse_size(std::string_view text); // "10MiB", "1G", "512"

} // namespace curlcache::config
