// The plain value every room reads its configuration from. Only config/loader.cpp touches
// TOML or the environment; everything else sees this struct.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace curlcache::config {

enum class Mode {
    normal,   // serve fresh hits, fetch and store misses
    offline,  // never touch the network: a miss fails with a clear curl error
    refresh,  // always fetch, overwrite the stored entry
    readonly, // serve hits, never store
    off,      // pass everything through untouched
};

enum class LogLevel { error, warning, info, debug };

// One rule of urls_expire_after: a glob on host+path ("*.example.com/static/*") and what
// matching responses get. Rules are tried in order; the first match wins.
struct UrlRule {
    std::string pattern;
    bool cache = true;           // false = "do-not-cache"
    int64_t expire_after = -1;   // seconds; -1 = never expires
};

// Where a value came from, for `curlcache config` and for error messages.
struct Origin {
    enum class Kind { built_in, file, environment, argument };
    Kind kind = Kind::built_in;
    std::string where; // "path/to/config.toml:12", "CURLCACHE_MODE", or "" for built-in
};

struct Settings {
    // Storage. More than one name makes a tiered cache, first tier first.
    std::vector<std::string> backend{"sqlite"};
    std::string name;             // cache name; "" = the backend's default location
    uint64_t max_size = 0;        // bytes over all entries; 0 = unbounded
    uint64_t max_entry_size = 100ull << 20; // larger responses pass through uncached

    // Policy.
    Mode mode = Mode::normal;
    bool disable = false;                         // CURLCACHE_DISABLE=1: pure pass-through
    int64_t expire_after = -1;                    // seconds; -1 = never
    std::vector<UrlRule> urls_expire_after;
    std::vector<std::string> allowable_methods{"GET", "HEAD"};
    std::vector<long> allowable_codes{200};

    // Key.
    std::vector<std::string> ignored_parameters;  // query parameters left out of key and URL
    std::vector<std::string> match_headers;       // request headers that are part of the key
    bool sort_query = false;

    // Logging. The shim never writes to stdout.
    LogLevel log_level = LogLevel::warning;
    std::string log_file;                         // "" = stderr

    // [sqlite]
    bool sqlite_use_memory = false;  // a shared in-memory database
    bool sqlite_use_temp = false;    // the database goes in the temp directory
    bool sqlite_use_cache_dir = false; // a relative name goes under $XDG_CACHE_HOME/curlcache
    bool sqlite_fast_save = false;   // synchronous=OFF
    int64_t sqlite_busy_timeout_ms = 5000;

    // [filesystem]: no options beyond name and max_size.

    // [memory]
    uint64_t memory_max_entries = 0; // 0 = bounded by max_size only

    // [redis]
    std::string redis_url = "redis://127.0.0.1:6379/0";
    int64_t redis_connect_timeout_ms = 250;
    int64_t redis_command_timeout_ms = 1000;

    // Request coalescing: one process downloads, the others wait for its entry.
    bool coalesce = true;
    int64_t lock_timeout_ms = 30000;

    // Where each value came from, by TOML key ("expire_after", "sqlite.fast_save").
    // Keys that are absent kept their built-in default.
    std::map<std::string, Origin> origins;
    // The config file that was read, if any.
    std::optional<std::string> config_file;
};

} // namespace curlcache::config
