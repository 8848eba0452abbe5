// How the Redis backend lays out a cache in Redis: key names, the compact metadata string,
// lock tokens. See redis_layout.h.
#include "backends/redis_layout.h"

#include <charconv>
#include <chrono>
#include <random>
#include <unistd.h>

namespace curlcache::backends::redis_layout {

bool valid_key(std::string_view key) {
    return !key.empty() && key.size() <= 256 && key.find(':') == std::string_view::npos;
}

// Escapes the glob characters of SCAN MATCH.
std::string glob_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

std::string encode_meta(const Metadata& meta, uint64_t size) {
    std::string out = "1 " + std::to_string(meta.status) + ' ' + std::to_string(meta.created) +
                      ' ' + std::to_string(meta.expires) + ' ' + std::to_string(size) + ' ' +
                      std::to_string(meta.method.size()) + ' ';
    out += meta.method;
    out += meta.url;
    return out;
}

namespace {

template <class T> bool read_number(std::string_view& text, T& value) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data() + text.size() || *end != ' ') {
        return false;
    }
    text.remove_prefix(static_cast<size_t>(end - text.data()) + 1);
    return true;
}

} // namespace

std::optional<Metadata> decode_meta(std::string_view key, std::string_view text) {
    Metadata meta;
    meta.key = key;
    int version = 0;
    size_t method_size = 0;
    if (!read_number(text, version) || version != 1 || !read_number(text, meta.status) ||
        !read_number(text, meta.created) || !read_number(text, meta.expires) ||
        !read_number(text, meta.size) || !read_number(text, method_size) ||
        method_size > text.size()) {
        return std::nullopt;
    }
    meta.method = text.substr(0, method_size);
    meta.url = text.substr(method_size);
    return meta;
}

// Shared by the scripts below: takes entry k off the counters and every index (`local
// function` definitions are allowed in scripts; globals are not).
#define CURLCACHE_REDIS_FORGET                                                                \
    "local function forget(k, prefix) "                                                       \
    "  local old = redis.call('hget', KEYS[2], k) "                                           \
    "  if old then "                                                                          \
    "    redis.call('hdel', KEYS[2], k) "                                                     \
    "    redis.call('hincrby', KEYS[1], 'entries', -1) "                                      \
    "    redis.call('hincrby', KEYS[1], 'bytes', -tonumber(old)) "                            \
    "  end "                                                                                  \
    "  redis.call('zrem', KEYS[3], k) "                                                       \
    "  redis.call('zrem', KEYS[4], k) "                                                       \
    "end "                                                                                    \
    "local function drop(k, prefix) "                                                         \
    "  local n = redis.call('del', prefix .. 'e:' .. k, prefix .. 'm:' .. k) "                \
    "  forget(k, prefix) "                                                                    \
    "  return n "                                                                             \
    "end "                                                                                    \
    "local function bytes() return tonumber(redis.call('hget', KEYS[1], 'bytes') or '0') end " \
    "local function reap(now, limit, prefix) "                                                \
    "  local gone = redis.call('zrangebyscore', KEYS[3], '-inf', now, 'LIMIT', 0, limit) "    \
    "  for _, k in ipairs(gone) do drop(k, prefix) end "                                      \
    "  return #gone "                                                                         \
    "end "                                                                                    \
    "local function evict(max, limit, prefix) "                                               \
    "  local n = 0 "                                                                          \
    "  while n < limit and bytes() > max do "                                                 \
    "    local oldest = redis.call('zrange', KEYS[4], 0, 0) "                                 \
    "    if #oldest == 0 then return 0 end "                                                  \
    "    drop(oldest[1], prefix) "                                                            \
    "    n = n + 1 "                                                                          \
    "  end "                                                                                  \
    "  if bytes() > max then return 1 end "                                                   \
    "  return 0 "                                                                             \
    "end "

// The put script's body: counts a value of ARGV[2] bytes in under key ARGV[1], then evicts
// when the cache is over max_size. Shared by k_put_script and k_commit_script.
#define CURLCACHE_REDIS_ACCOUNT                                                               \
    "local k, size, expires, max = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[5]) "   \
    "local old = redis.call('hget', KEYS[2], k) "                                             \
    "if old then "                                                                            \
    "  redis.call('hincrby', KEYS[1], 'bytes', size - tonumber(old)) "                        \
    "else "                                                                                   \
    "  redis.call('hincrby', KEYS[1], 'entries', 1) "                                         \
    "  redis.call('hincrby', KEYS[1], 'bytes', size) "                                        \
    "end "                                                                                    \
    "redis.call('hset', KEYS[2], k, size) "                                                   \
    "if expires ~= '0' then redis.call('zadd', KEYS[3], expires, k) "                         \
    "else redis.call('zrem', KEYS[3], k) end "                                                \
    "redis.call('zadd', KEYS[4], ARGV[4], k) "                                                \
    "local over = 0 "                                                                         \
    "if max > 0 and bytes() > max then "                                                      \
    "  local now_ms = math.floor(tonumber(ARGV[4]) / 1000) "                                  \
    "  reap(now_ms, 64, ARGV[6]) "                                                            \
    "  over = evict(max, 64, ARGV[6]) "                                                       \
    "end "                                                                                    \
    "local counted = 0 "                                                                      \
    "if redis.call('hget', KEYS[1], 'counted') then counted = 1 end "                         \
    "return {bytes(), counted, over}"

const char* const k_put_script = CURLCACHE_REDIS_FORGET CURLCACHE_REDIS_ACCOUNT;

const char* const k_commit_script =
    CURLCACHE_REDIS_FORGET
    "if redis.call('hlen', KEYS[5]) ~= tonumber(ARGV[8]) then return false end "
    "redis.call('rename', KEYS[5], KEYS[6]) "
    "redis.call('set', KEYS[7], ARGV[7]) "
    "if ARGV[3] ~= '0' then "
    "  redis.call('pexpireat', KEYS[6], ARGV[3]) "
    "  redis.call('pexpireat', KEYS[7], ARGV[3]) "
    "else "
    "  redis.call('persist', KEYS[6]) "
    "end "
    CURLCACHE_REDIS_ACCOUNT;

#undef CURLCACHE_REDIS_ACCOUNT

const char* const k_remove_script =
    CURLCACHE_REDIS_FORGET "return drop(ARGV[1], ARGV[2])";

const char* const k_reap_script =
    CURLCACHE_REDIS_FORGET "return reap(ARGV[1], tonumber(ARGV[2]), ARGV[3])";

const char* const k_evict_script =
    CURLCACHE_REDIS_FORGET "return evict(tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])";

const char* const k_adopt_script =
    "local prefix = ARGV[1] "
    "for i = 3, #ARGV, 3 do "
    "  local k, size, expires = ARGV[i], ARGV[i + 1], ARGV[i + 2] "
    "  if redis.call('exists', prefix .. 'm:' .. k) == 1 and "
    "     redis.call('hsetnx', KEYS[2], k, size) == 1 then "
    "    redis.call('hincrby', KEYS[1], 'entries', 1) "
    "    redis.call('hincrby', KEYS[1], 'bytes', size) "
    "    if expires ~= '0' then redis.call('zadd', KEYS[3], expires, k) end "
    "    redis.call('zadd', KEYS[4], 'NX', ARGV[2], k) "
    "  end "
    "end "
    "return 0";

const char* const k_forget_script =
    CURLCACHE_REDIS_FORGET
    "local n = 0 "
    "for i = 2, #ARGV do "
    "  if redis.call('exists', ARGV[1] .. 'm:' .. ARGV[i]) == 0 then "
    "    forget(ARGV[i], ARGV[1]) "
    "    n = n + 1 "
    "  end "
    "end "
    "return n";

#undef CURLCACHE_REDIS_FORGET

// LRU scores: microseconds, so that accesses a moment apart keep their order.
int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string random_token() {
    thread_local std::mt19937_64 engine{std::random_device{}() ^
                                        (static_cast<uint64_t>(getpid()) << 32)};
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 2; ++i) {
        uint64_t bits = engine();
        for (int j = 0; j < 16; ++j) {
            token += k_hex[(bits >> (j * 4)) & 15];
        }
    }
    return token;
}

} // namespace curlcache::backends::redis_layout
