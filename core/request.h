// What one request is, as far as the cache is concerned.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace curlcache::core {

struct Request {
    std::string method = "GET";
    std::string url;
    // Request header lines as the program set them ("Accept: x/y"). Only those named in
    // match_headers are part of the key; conditional headers never are.
    std::vector<std::string> headers;
    std::string body;
    // Options that change what the program receives ("follow_location" -> "1",
    // "accept_encoding" -> "gzip", "nobody" -> "1", "http_version" -> "3", ...), in any
    // order: the key sorts them.
    std::vector<std::pair<std::string, std::string>> options;
    // Credentials in clear ("user:password", "Bearer xyz"): only a salted digest enters
    // the key; they are never stored or logged.
    std::string credentials;
};

} // namespace curlcache::core
