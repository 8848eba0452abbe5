// The plain value every room reads its configuration from. Only config/loader.cpp touches
// TOML or the environment; everything else sees this struct.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
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

// Who reads the cache (RFC 9111): one user's (private, like a browser's) or many users'
// (shared, like a proxy or a Redis cache for a whole CI fleet). A shared cache honours
// s-maxage and proxy-revalidate, never stores `private` responses, and stores responses to
// requests with Authorization only when the origin allows it explicitly.
enum class CacheType { private_cache, shared_cache };

// One rule of urls_expire_after: a glob on host+path ("*.example.com/static/*") and what
// matching responses get. Rules are tried in order; the first match wins.
struct UrlRule {
    std::string pattern;
    bool cache = true;         // false = "do-not-cache"
    int64_t expire_after = -1; // seconds; -1 = never expires
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
    std::string name;                       // cache name; "" = the backend's default location
    uint64_t max_size = 0;                  // bytes over all entries; 0 = unbounded
    uint64_t max_entry_size = 100ull << 20; // larger responses pass through uncached

    // Policy.
    Mode mode = Mode::normal;
    bool disable = false; // CURLCACHE_DISABLE=1: pure pass-through
    // The origin's headers decide freshness (RFC 9111) unless hermetic: then the config
    // alone decides (expire_after, urls_expire_after), as curlcache did before, for
    // hermetic and offline CI runs.
    bool hermetic = false;
    CacheType cache_type = CacheType::private_cache;
    // Seconds, k_never, or k_auto: never when hermetic, else the heuristic. Without
    // hermetic it applies only to responses without explicit freshness.
    static constexpr int64_t k_never = -1;
    static constexpr int64_t k_auto = -2;
    int64_t expire_after = k_auto;
    uint64_t heuristic_percent = 10;   // of Date - Last-Modified ...
    int64_t heuristic_max_age = 86400; // ... at most this many seconds
    int64_t stale_if_error = 0;        // seconds a stale entry may stand in for
                                       // an origin error; 0 = only when the
                                       // response says stale-if-error
    bool age_header = false;           // hits carry a generated Age header
    std::vector<UrlRule> urls_expire_after;
    std::vector<std::string> allowable_methods{"GET", "HEAD"};
    // In hermetic mode the statuses stored; otherwise the RFC decides (heuristically
    // cacheable codes, others with explicit freshness) and this only narrows it when set.
    std::vector<long> allowable_codes{200};

    // Key.
    std::vector<std::string> ignored_parameters; // query parameters left out of key and URL
    std::vector<std::string> match_headers;      // request headers that are part of the key
    bool sort_query = false;

    // Logging. The shim never writes to stdout.
    LogLevel log_level = LogLevel::warning;
    std::string log_file; // "" = stderr

    // [sqlite]
    bool sqlite_use_memory = false;    // a shared in-memory database
    bool sqlite_use_temp = false;      // the database goes in the temp directory
    bool sqlite_use_cache_dir = false; // a relative name goes under $XDG_CACHE_HOME/curlcache
    bool sqlite_fast_save = false;     // synchronous=OFF
    int64_t sqlite_busy_timeout_ms = 5000;

    // [filesystem]: no options beyond name and max_size.

    // [memory]
    uint64_t memory_max_entries = 0; // 0 = bounded by max_size only

    // [redis]
    std::string redis_url = "redis://127.0.0.1:6379/0";
    int64_t redis_connect_timeout_ms = 250;
    int64_t redis_command_timeout_ms = 1000;
    // Seconds an entry stays after it goes stale (to be revalidated or served stale);
    // -1 = until evicted or purged.
    int64_t redis_keep_stale = 7 * 86400;

    // Backend plugins (curlcache/backend.h). A backend name that is not built in is a
    // plugin: "postgres" is <plugin_dir>/libcurlcache-backend-postgres.so, and
    // "plugin:/path/lib.so" any file. "" = the install's folder (backends/plugin_loader.h).
    std::string plugin_dir;
    // Every config table that is no built-in section, by name ([postgres] url = "..."):
    // a plugin gets the table of its own name, each value as text, in file order. Its keys
    // are the plugin's to check, so none is rejected here.
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> plugin_tables;

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
