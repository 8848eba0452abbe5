// Validation (RFC 9111 §4.3): conditional requests for a stored response and what a 304
// changes in it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::core::http {

// The header lines that turn a request into a conditional one for a stored response with
// these validators: "If-None-Match: <etag>" when there is an ETag, and
// "If-Modified-Since: <last_modified>" when there is a Last-Modified (both when both).
std::vector<std::string> conditional_lines(std::string_view etag, std::string_view last_modified);

// Does a 304 (its header block) apply to the stored response with these validators
// (RFC 9111 §4.3.4)? When the 304 carries a strong ETag it must equal the stored one
// (weak comparison is enough for a weak one); with Last-Modified only, it must equal the
// stored one; with no validator, it applies when the stored response has none either or
// was the one validated.
bool selects(std::string_view not_modified_block, std::string_view stored_etag,
             std::string_view stored_last_modified);

// The stored header block updated with a 304's header fields (RFC 9111 §3.2): every field
// of the 304 replaces all stored lines of that name, in the stored line's place (new
// names go before the blank line), except the fields a 304 cannot change: Content-Length,
// Content-Encoding, Content-Range, Content-Type, Transfer-Encoding, Trailer, Connection,
// Keep-Alive, Proxy-Connection, TE, Upgrade, Proxy-Authenticate, Proxy-Authorization,
// Proxy-Authentication-Info, and the fields the 304's Connection lists. The stored status
// line is kept; line endings follow the stored block's.
std::string merge_not_modified(std::string_view stored_block, std::string_view not_modified_block);

// An HTTP-date (RFC 9110 §5.6.7) as unix seconds, read strictly: exactly the IMF-fixdate,
// RFC 850 and asctime forms (names in any case), fields in range; nullopt otherwise (for
// Expires that means already expired, RFC 9111 §5.3). `now` places an RFC 850 two-digit
// year: one more than 50 years after `now` is in the century before.
std::optional<int64_t> parse_http_date_strict(std::string_view text, int64_t now);

// A block with "Age: <age>" set: an existing Age line is replaced, otherwise one is added
// before the blank line.
std::string with_age(std::string_view block, int64_t age);

} // namespace curlcache::core::http
