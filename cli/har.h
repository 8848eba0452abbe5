// HTTP Archive 1.2 (http://www.softwareishard.com/blog/har-12-spec/) export and import.
//
// Export writes one HAR entry per cached entry. Each carries, beside the standard fields, a
// "_curlcache" object (custom fields start with '_', as the spec allows) with the entry's key,
// times, and its raw header block(s) exactly as recorded, so that an export imported again
// replays byte for byte. Bodies are "text" when they are UTF-8 without NUL bytes, base64
// ("encoding": "base64") otherwise. An entry that followed redirects is one HAR entry (the
// requested URL with the final response, as the program saw it); the header block of every
// hop is in "_curlcache".
//
// Import restores an entry under its recorded key when the HAR has one (an export does not
// carry the transfer options that went into the key, see curlcache_store_with_key) and
// under the key of its method, URL and headers otherwise. It reads HAR from curlcache or
// from a browser: the whole file is parsed and checked
// first, and nothing is stored unless all of it is well formed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include <curlcache/curlcache.h>

namespace curlcache::cli {

// Writes every entry of `cache` as a HAR document to `out`. Returns how many entries were
// written, or a one-line message.
std::expected<uint64_t, std::string> write_har(curlcache_handle* cache, std::FILE* out);

// One response to pre-seed, as read from a HAR entry.
struct HarItem {
    std::string method;
    std::string url;
    std::vector<std::string> request_headers; // "Name: value"
    bool has_request_body = false;
    std::string request_body;
    std::string key;     // the key recorded by a curlcache export, or "" to compute it
    std::string headers; // the raw header block(s), "HTTP/1.1 200 OK\r\n...\r\n"
    std::string body;
};

struct HarContents {
    std::vector<HarItem> items;
    uint64_t skipped = 0; // entries without a response (status 0) or whose body is not saved
};

// Parses and checks a whole HAR document. On failure a one-line message naming the
// problem: "line 3, column 7: expected ',' or '}'" or
// "log.entries[2].response.status: expected a number, found a string".
std::expected<HarContents, std::string> read_har(std::string_view text);

// The header block HAR import stores for a response given as name/value pairs: a status
// line, the headers minus those that no longer describe the decoded body
// (Content-Encoding, Transfer-Encoding, HTTP/2 pseudo-headers), a Content-Length that
// matches the body when there was one, and the blank line.
std::string make_header_block(std::string_view http_version, long status,
                              std::string_view status_text,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              uint64_t body_size);

} // namespace curlcache::cli
