// Fuzz target: backends::parse_redis_url (redis.url from a config file or the environment).
// Checks that what it accepts has a port and database in range, that its display form
// carries no credentials, and that the display form of a plain host parses back to the
// same endpoint.
#include "backends/redis_storage.h"
#include "tests/fuzz/fuzz_input.h"

#include <algorithm>
#include <cctype>

namespace {

bool plain_host(const std::string& host) {
    return std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
    });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace curlcache::backends;
    const std::string_view url(reinterpret_cast<const char*>(data), size);
    const auto endpoint = parse_redis_url(url);
    if (!endpoint) {
        return 0;
    }
    FUZZ_CHECK(endpoint->port >= 1 && endpoint->port <= 65535);
    FUZZ_CHECK(endpoint->db >= 0);
    FUZZ_CHECK(endpoint->host.empty() != endpoint->socket_path.empty());
    const std::string shown = endpoint->display();
    FUZZ_CHECK(shown.find('@') == std::string::npos);
    if (endpoint->socket_path.empty() && !plain_host(endpoint->host)) {
        return 0;
    }
    const auto again = parse_redis_url(shown);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->host == endpoint->host && again->port == endpoint->port &&
               again->socket_path == endpoint->socket_path && again->db == endpoint->db);
    FUZZ_CHECK(again->user.empty() && again->password.empty());
    return 0;
}
