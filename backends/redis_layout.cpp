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
