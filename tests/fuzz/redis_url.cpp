// Fuzz target: backends::parse_redis_url (redis.url from a config file or the environment).
// Checks that what it accepts has a port and database in range, that user and password are
// the userinfo's percent-decoding (RFC 3986 §2.1: '%' and two hex digits), that its display
// form carries no credentials, and that the display form of a plain host parses back to
// the same endpoint.
#include "backends/redis_storage.h"
#include "cli/format.h"
#include "tests/fuzz/fuzz_input.h"

#include <algorithm>
#include <cctype>

namespace {

bool plain_host(const std::string& host) {
    return std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
    });
}

// The user and password the URL spells, decoded by the command's own decoder (cli/format.cpp).
void check_userinfo(std::string_view url, const curlcache::backends::RedisEndpoint& endpoint) {
    url.remove_prefix(url.find("://") + 3);
    url = url.substr(0, url.find('?'));
    const size_t at = url.rfind('@');
    if (at == std::string_view::npos) {
        FUZZ_CHECK(endpoint.user.empty() && endpoint.password.empty());
        return;
    }
    const std::string_view userinfo = url.substr(0, at);
    const size_t colon = userinfo.find(':');
    const std::string_view user = colon == std::string_view::npos ? "" : userinfo.substr(0, colon);
    const std::string_view password =
        colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    FUZZ_CHECK(endpoint.user == curlcache::cli::percent_decode(user, false));
    FUZZ_CHECK(endpoint.password == curlcache::cli::percent_decode(password, false));
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
    check_userinfo(url, *endpoint);
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
