// redis.url: the forms the Redis backend accepts, parsed into a RedisEndpoint.
#include "backends/redis_storage.h"

#include <cctype>
#include <charconv>
#include <string>
#include <string_view>

namespace curlcache::backends {
namespace {

bool hex_digit(char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

// RFC 3986 §2.1: '%' and two hex digits is one byte; anything else stays as it is (from_chars
// alone also took a sign: "%-1" became the byte 0xff).
std::string percent_decode(std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        int value = 0;
        if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) &&
            hex_digit(text[i + 2]) &&
            std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr ==
                text.data() + i + 3) {
            out += static_cast<char>(value);
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

bool parse_int(std::string_view text, int low, int high, int& value) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size() && value >= low && value <= high;
}

} // namespace

std::string RedisEndpoint::display() const {
    if (!socket_path.empty()) {
        return "unix://" + socket_path + (db != 0 ? "?db=" + std::to_string(db) : "");
    }
    bool v6 = host.find(':') != std::string::npos;
    return "redis://" + (v6 ? '[' + host + ']' : host) + ':' + std::to_string(port) + '/' +
           std::to_string(db);
}

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
    RedisEndpoint endpoint;
    bool unix_socket = url.starts_with("unix://");
    if (url.starts_with("rediss://")) {
        return fail("redis.url: rediss:// (TLS) is not supported by this build's hiredis 0.14; "
                    "use redis:// through a local TLS tunnel (stunnel) or a Unix socket");
    }
    if (!url.starts_with("redis://") && !unix_socket) {
        return fail("redis.url: expected redis://[:password@]host[:port][/db] or "
                    "unix:///path/to/socket (got a different scheme)");
    }
    std::string_view rest = url.substr(unix_socket ? 7 : 8);
    std::string_view query;
    if (auto mark = rest.find('?'); mark != std::string_view::npos) {
        query = rest.substr(mark + 1);
        rest = rest.substr(0, mark);
    }
    // Userinfo ends at the last '@' before the path (a password may contain '/').
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
            endpoint.user = percent_decode(userinfo.substr(0, colon));
            endpoint.password = percent_decode(userinfo.substr(colon + 1));
        } else {
            endpoint.password = percent_decode(userinfo);
        }
    }
    if (unix_socket) {
        if (!rest.starts_with('/')) {
            return fail("redis.url: unix:// needs an absolute socket path (unix:///path)");
        }
        endpoint.socket_path = rest;
    } else {
        std::string_view authority = rest.substr(0, rest.find('/'));
        std::string_view path = rest.substr(authority.size());
        std::string_view port;
        if (authority.starts_with('[')) {
            auto close = authority.find(']');
            if (close == std::string_view::npos) {
                return fail("redis.url: unterminated IPv6 address");
            }
            endpoint.host = authority.substr(1, close - 1);
            std::string_view after = authority.substr(close + 1);
            if (!after.empty() && !after.starts_with(':')) {
                return fail("redis.url: unexpected text after the IPv6 address");
            }
            port = after.empty() ? after : after.substr(1);
        } else {
            auto colon = authority.find(':');
            endpoint.host = authority.substr(0, colon);
            port = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon + 1);
        }
        if (endpoint.host.empty()) {
            return fail("redis.url: missing host");
        }
        if (!port.empty() && !parse_int(port, 1, 65535, endpoint.port)) {
            return fail("redis.url: bad port \"" + std::string(port) + "\"");
        }
        if (path.size() > 1 && !parse_int(path.substr(1), 0, 1 << 20, endpoint.db)) {
            return fail("redis.url: bad database number \"" + std::string(path.substr(1)) + "\"");
        }
    }
    if (query.starts_with("db=")) {
        if (!parse_int(query.substr(3), 0, 1 << 20, endpoint.db)) {
            return fail("redis.url: bad database number \"" + std::string(query.substr(3)) + "\"");
        }
    } else if (!query.empty()) {
        return fail("redis.url: unknown parameter \"" + std::string(query) + "\" (only db=N)");
    }
    return endpoint;
}

} // namespace curlcache::backends
