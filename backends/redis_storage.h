// The Redis backend (hiredis): a cache shared by many processes and machines. Only the
// factory and the URL parser are public; the rest lives in redis_storage.cpp.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <memory>
#include <string>
#include <string_view>

namespace curlcache::backends {

// Where a Redis server is, parsed from `redis.url`:
//   redis://[[user]:password@]host[:port][/db]    (IPv6 hosts in brackets)
//   unix://[[user]:password@]/path/to/socket[?db=N]
struct RedisEndpoint {
    std::string host;        // empty for a Unix socket
    int port = 6379;
    std::string socket_path; // empty for TCP
    std::string user;        // "" = the default user (AUTH password)
    std::string password;    // "" = no AUTH
    int db = 0;

    // "redis://host:port/db" or "unix:///path?db=N", never with credentials.
    std::string display() const;
};

// Fails with a message naming what is wrong; the message never contains the password.
Result<RedisEndpoint> parse_redis_url(std::string_view url);

// Opens the backend: namespace = settings.name (default "curlcache"), timeouts from
// settings.redis_connect_timeout_ms / redis_command_timeout_ms. Connects once so that an
// unreachable server or a wrong password is reported at open with a clear message.
Result<std::unique_ptr<Storage>> open_redis(const config::Settings& settings);

} // namespace curlcache::backends
