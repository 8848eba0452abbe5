// The key table. Adding a key = one row here, one field in settings.h and one documented
// line in curlcache.example.toml (tests check the environment name and the example file).
// How each type of value is parsed and rendered is in key_values.cpp.
#include "config/keys.h"

#include "config/parse.h"

#include "base/suggest.h"

#include <algorithm>
#include <array>

namespace curlcache::config {

using base::edit_distance;

namespace {

using S = Settings;

// clang-format off
const std::array k_keys{
    KeyDef{"config", "CURLCACHE_CONFIG", KeyType::config_file,
           "the config file to read instead of searching (environment or argument only)", {}},
    KeyDef{"backend", "CURLCACHE_BACKEND", KeyType::backends,
           "storage: sqlite, filesystem, memory, redis or a plugin; a list makes tiers",
           &S::backend},
    KeyDef{"name", "CURLCACHE_NAME", KeyType::string,
           "cache name: a path for sqlite/filesystem, a key prefix for redis; \"\" = default",
           &S::name},
    KeyDef{"max_size", "CURLCACHE_MAX_SIZE", KeyType::size,
           "bytes over all entries before the oldest are evicted; 0 = unbounded", &S::max_size},
    KeyDef{"max_entry_size", "CURLCACHE_MAX_ENTRY_SIZE", KeyType::size,
           "responses larger than this pass through uncached", &S::max_entry_size},
    KeyDef{"mode", "CURLCACHE_MODE", KeyType::mode,
           "normal, offline (a miss fails), refresh (always fetch), readonly, off", &S::mode},
    KeyDef{"disable", "CURLCACHE_DISABLE", KeyType::boolean,
           "pass every transfer through untouched", &S::disable},
    KeyDef{"hermetic", "CURLCACHE_HERMETIC", KeyType::boolean,
           "the config alone decides freshness, not the origin's headers (CI replays)",
           &S::hermetic},
    KeyDef{"cache_type", "CURLCACHE_CACHE_TYPE", KeyType::cache_type,
           "private (one user's) or shared (many users': s-maxage, no private responses)",
           &S::cache_type},
    KeyDef{"expire_after", "CURLCACHE_EXPIRE_AFTER", KeyType::expiry,
           "freshness of responses without explicit freshness (of all when hermetic)",
           &S::expire_after},
    KeyDef{"urls_expire_after", "CURLCACHE_URLS_EXPIRE_AFTER", KeyType::url_rules,
           "per-URL freshness, first matching glob on host/path wins; \"do-not-cache\" skips",
           &S::urls_expire_after},
    KeyDef{"heuristic_percent", "CURLCACHE_HEURISTIC_PERCENT", KeyType::count,
           "heuristic freshness: this percentage of the time since Last-Modified",
           &S::heuristic_percent},
    KeyDef{"heuristic_max_age", "CURLCACHE_HEURISTIC_MAX_AGE", KeyType::seconds,
           "the longest heuristic freshness", &S::heuristic_max_age},
    KeyDef{"stale_if_error", "CURLCACHE_STALE_IF_ERROR", KeyType::seconds,
           "serve an entry stale by up to this long when the origin fails; 0 = as it says",
           &S::stale_if_error},
    KeyDef{"age_header", "CURLCACHE_AGE_HEADER", KeyType::boolean,
           "hits carry a generated Age header (off: stored bytes replayed unchanged)",
           &S::age_header},
    KeyDef{"allowable_methods", "CURLCACHE_ALLOWABLE_METHODS", KeyType::strings,
           "request methods whose responses are cached", &S::allowable_methods},
    KeyDef{"allowable_codes", "CURLCACHE_ALLOWABLE_CODES", KeyType::codes,
           "status codes cached when hermetic; otherwise narrows what the RFC allows",
           &S::allowable_codes},
    KeyDef{"ignored_parameters", "CURLCACHE_IGNORED_PARAMETERS", KeyType::strings,
           "query parameters left out of the key and of stored URLs (tokens, cache busters)",
           &S::ignored_parameters},
    KeyDef{"match_headers", "CURLCACHE_MATCH_HEADERS", KeyType::strings,
           "request headers that are part of the key", &S::match_headers},
    KeyDef{"sort_query", "CURLCACHE_SORT_QUERY", KeyType::boolean,
           "treat query strings that differ only in parameter order as one", &S::sort_query},
    KeyDef{"log_level", "CURLCACHE_LOG_LEVEL", KeyType::log_level,
           "error, warning, info, debug", &S::log_level},
    KeyDef{"log_file", "CURLCACHE_LOG_FILE", KeyType::path,
           "where messages go; \"\" = stderr (never stdout)", &S::log_file},
    KeyDef{"plugin_dir", "CURLCACHE_PLUGIN_DIR", KeyType::path,
           "where backend plugins are found by name; \"\" = <libdir>/curlcache/backends",
           &S::plugin_dir},
    KeyDef{"coalesce", "CURLCACHE_COALESCE", KeyType::boolean,
           "concurrent misses for one key: one process downloads, the others wait",
           &S::coalesce},
    KeyDef{"lock_timeout", "CURLCACHE_LOCK_TIMEOUT", KeyType::millis,
           "how long a coalesced request waits before fetching itself", &S::lock_timeout_ms},
    KeyDef{"sqlite.use_memory", "CURLCACHE_SQLITE_USE_MEMORY", KeyType::boolean,
           "keep the database in shared memory (gone when the process ends)",
           &S::sqlite_use_memory},
    KeyDef{"sqlite.use_temp", "CURLCACHE_SQLITE_USE_TEMP", KeyType::boolean,
           "put the database in the temporary directory", &S::sqlite_use_temp},
    KeyDef{"sqlite.use_cache_dir", "CURLCACHE_SQLITE_USE_CACHE_DIR", KeyType::boolean,
           "put a relative name under $XDG_CACHE_HOME/curlcache", &S::sqlite_use_cache_dir},
    KeyDef{"sqlite.fast_save", "CURLCACHE_SQLITE_FAST_SAVE", KeyType::boolean,
           "synchronous=OFF: faster writes, entries may be lost on power failure",
           &S::sqlite_fast_save},
    KeyDef{"sqlite.busy_timeout", "CURLCACHE_SQLITE_BUSY_TIMEOUT", KeyType::millis,
           "how long to wait for another process's write lock", &S::sqlite_busy_timeout_ms},
    KeyDef{"memory.max_entries", "CURLCACHE_MEMORY_MAX_ENTRIES", KeyType::count,
           "most entries kept; 0 = bounded by max_size only", &S::memory_max_entries},
    KeyDef{"redis.url", "CURLCACHE_REDIS_URL", KeyType::redis_url,
           "redis://[:password@]host[:port][/db] or unix:///path/to/socket", &S::redis_url},
    KeyDef{"redis.connect_timeout", "CURLCACHE_REDIS_CONNECT_TIMEOUT", KeyType::millis,
           "give up connecting after this long (the transfer goes to the network)",
           &S::redis_connect_timeout_ms},
    KeyDef{"redis.command_timeout", "CURLCACHE_REDIS_COMMAND_TIMEOUT", KeyType::millis,
           "give up on one command after this long", &S::redis_command_timeout_ms},
    KeyDef{"redis.keep_stale", "CURLCACHE_REDIS_KEEP_STALE", KeyType::seconds,
           "keep an entry this long after it goes stale, to revalidate it (a 304, not the "
           "body) or serve it stale; 0 = drop it then, never = until evicted or purged",
           &S::redis_keep_stale},
};
// clang-format on

constexpr std::array k_sections{"sqlite", "filesystem", "memory", "redis"};

} // namespace

const char* type_name(Value::Type type) {
    switch (type) {
    case Value::Type::text:
        return "text";
    case Value::Type::string:
        return "a string";
    case Value::Type::integer:
        return "an integer";
    case Value::Type::floating:
        return "a float";
    case Value::Type::boolean:
        return "a boolean";
    case Value::Type::array:
        return "an array";
    case Value::Type::table:
        return "a table";
    case Value::Type::other:
        return "a date or time";
    }
    return "a value";
}

std::span<const KeyDef> keys() {
    return k_keys;
}

const KeyDef* find_key(std::string_view key) {
    for (const KeyDef& def : k_keys) {
        if (def.key == key) {
            return &def;
        }
    }
    return nullptr;
}

namespace {

// A lower bound of edit_distance(a, b).
size_t length_gap(std::string_view a, std::string_view b) {
    return a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
}

} // namespace

std::string suggest_key(std::string_view key) {
    std::string best;
    size_t best_distance = std::max<size_t>(2, key.size() / 4) + 1;
    for (const KeyDef& def : k_keys) {
        const std::string_view candidate = def.key;
        const std::string_view leaf = candidate.substr(candidate.rfind('.') + 1);
        // Lengths this far apart cannot be closer (a long stray key costs nothing).
        if (length_gap(key, candidate) >= best_distance &&
            length_gap(key, leaf) + (leaf != candidate) >= best_distance) {
            continue;
        }
        // "fast_save" at the top level is "sqlite.fast_save" in the wrong place.
        const size_t distance =
            std::min(edit_distance(key, candidate), edit_distance(key, leaf) + (leaf != candidate));
        if (distance < best_distance) {
            best_distance = distance;
            best = candidate;
        }
    }
    return best;
}

std::span<const char* const> sections() {
    return k_sections;
}

bool is_section(std::string_view name) {
    return std::find(k_sections.begin(), k_sections.end(), name) != k_sections.end();
}
} // namespace curlcache::config
