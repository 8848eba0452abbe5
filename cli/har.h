// HTTP Archive 1.2 (http://www.softwareishard.com/blog/har-12-spec/) export and import.
//
// Export writes one HAR entry per cached response. An entry that followed redirects is
// written as one HAR entry per hop, each with its own URL, status and "redirectURL", so a
// HAR viewer shows the chain; the hops carry "_curlcache": {"redirect_hop": true}. Each
// final entry carries, beside the standard fields, a "_curlcache" object (custom fields
// start with '_', as the spec allows) with the entry's key, times, and its raw header
// block(s) exactly as recorded, so that an export imported again replays byte for byte.
// "request.headers" lists the request headers that chose the stored variant (the ones the
// response's Vary named), never credentials. Bodies are "text" when they are UTF-8 without
// NUL bytes, base64 ("encoding": "base64") otherwise.
//
// Import restores an entry under its recorded key when the HAR has one (an export does not
// carry the transfer options that went into the key, see curlcache_store_with_key) and
// otherwise under the key of the request a libcurl program makes for that method and URL
// (a browser's own request headers, cookies and credentials are not part of it): the
// response is stored as libcurl would deliver it (see har_block). A 3xx entry whose
// redirectURL (or Location) leads to another entry of the file is also stored as a chain,
// every hop's header block then the final response, for the request that follows
// redirects (`curl -L`, CURLOPT_FOLLOWLOCATION).
//
// The file is read as a stream, twice: the first pass checks all of it (nothing is stored
// unless all of it is well formed) and keeps only what redirect chains need; the second
// stores. One entry is held in memory at a time, so memory is bounded by the largest body.
#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <curlcache/curlcache.h>

namespace curlcache::cli {

class JsonReader;
struct Global;

// Writes every entry of `cache` as a HAR document to `out`. Returns how many entries were
// written, or a one-line message.
std::expected<uint64_t, std::string> write_har(curlcache_handle* cache, std::FILE* out);

// A redirect chain that ends at a HAR entry: the URL it started from and the header
// block of every hop before the final response.
struct HarChain {
    std::string url;
    std::string hops;
};

// One response to pre-seed, as read from a HAR entry.
struct HarItem {
    std::string method;
    std::string url;
    std::vector<std::string> request_headers; // "Name: value", without credentials
    bool has_request_body = false;
    std::string request_body;
    std::string key;     // the key recorded by a curlcache export, or "" to compute it
    std::string headers; // the raw header block(s), "HTTP/1.1 200 OK\r\n...\r\n"
    std::string body;
    std::vector<HarChain> chains; // redirect chains that end with this response
};

// What the first pass learnt: the redirect chains, by the index of the entry they end at,
// and how many entries will not be stored.
struct HarPlan {
    std::map<std::size_t, std::vector<HarChain>> chains;
    uint64_t skipped = 0;  // no response (status 0), body not saved, 304, 206
    uint64_t not_http = 0; // data:, blob:, ws: ... URLs
};

// First pass: reads and checks a whole HAR document. On failure a one-line message naming
// the problem: "line 3, column 7: expected ',' or '}'" or
// "log.entries[2].response.status: expected a number, found a string" (a JSON syntax
// error anywhere is reported before a HAR structure error).
std::expected<HarPlan, std::string> check_har(JsonReader& reader);

// Second pass over the same document: calls `store` for each entry to store, in file order
// (with the chains `plan` found for it). Stops when `store` returns false.
std::expected<void, std::string> read_har_items(JsonReader& reader, const HarPlan& plan,
                                                const std::function<bool(HarItem&)>& store);

struct HarContents {
    std::vector<HarItem> items;
    uint64_t skipped = 0;
};

// Both passes over a document in memory, every item kept (for tests and the fuzz target).
std::expected<HarContents, std::string> read_har(std::string_view text);

// The header block HAR import stores for a response given as name/value pairs, as libcurl
// would deliver it for that URL: a status line (see har_status_line), the headers minus
// HTTP/2 pseudo-headers and, when `decoded`, minus those that no longer describe the
// decoded body (Content-Encoding, Transfer-Encoding) with a Content-Length that matches
// the body when there was one; then the blank line.
std::string make_header_block(std::string_view status_line,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              bool decoded, uint64_t body_size);

// The status line libcurl delivers for a response recorded with `http_version` ("h2",
// "http/2.0", "HTTP/1.1", "h3", ...) when a program asks for `url` with libcurl's default
// HTTP version: HTTP/2 and HTTP/3 recordings of https:// URLs become "HTTP/2 200 " (a
// default libcurl negotiates HTTP/2 with such a server, never HTTP/3, and shows no reason
// phrase); cleartext http:// is HTTP/1.1 (libcurl never upgrades by default), with the
// recorded reason phrase or the standard one when the recording has none.
std::string har_status_line(std::string_view http_version, std::string_view url, long status,
                            std::string_view status_text);

// A Location (or redirectURL) resolved against the URL it answered, as libcurl and browsers
// follow it: absolute, scheme-relative ("//host/p"), absolute path, or relative path.
std::string resolve_location(std::string_view base, std::string_view location);

// `curlcache import --har PATH` ("-" reads stdin, spooled to a temp file for the second
// pass) into the cache `global` names. Returns the exit code.
int import_har(const Global& global, const std::string& path);

} // namespace curlcache::cli
