// Small readers and writers of HTTP header text, as the engine needs them to synthesise a
// 304 or a 206 and to answer curl_easy_header().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::core::easy {

// Splits a header block into its lines, each with its "\r\n" (or "\n") kept.
std::vector<std::string_view> split_lines(std::string_view block);

// The same lines as split_lines(), walked in place for a range-for (no vector: a hit walks
// its header block several times, and building the vector was ~800 instructions each time).
class Lines {
  public:
    explicit Lines(std::string_view block) : m_block(block) {}
    class iterator {
      public:
        iterator() = default;
        explicit iterator(std::string_view rest) : m_rest(rest) { cut(); }
        std::string_view operator*() const { return m_line; }
        iterator& operator++() {
            m_rest.remove_prefix(m_line.size());
            cut();
            return *this;
        }
        bool operator==(const iterator& other) const {
            return m_rest.data() == other.m_rest.data();
        }

      private:
        void cut() {
            if (m_rest.empty()) {
                m_rest = {};
                m_line = {};
                return;
            }
            const size_t end = m_rest.find('\n');
            m_line = m_rest.substr(0, end == std::string_view::npos ? m_rest.size() : end + 1);
        }
        std::string_view m_rest; // this line and the ones after it; {} at the end
        std::string_view m_line;
    };
    iterator begin() const { return iterator(m_block); }
    iterator end() const { return iterator(); }

  private:
    std::string_view m_block;
};
inline Lines lines_of(std::string_view block) {
    return Lines(block);
}

// The status code of a status line ("HTTP/1.1 200 OK", "HTTP/2 404"), or nullopt.
std::optional<long> status_code(std::string_view line);

// The protocol of a status line: "HTTP/1.1", "HTTP/2".
std::string_view status_protocol(std::string_view line);

// The value of the first header `name` (case-insensitive) in a block, trimmed; nullopt when
// absent.
std::optional<std::string_view> header_value(std::string_view block, std::string_view name);

// Name and trimmed value of a header line; false for the status line or a blank line.
bool split_header(std::string_view line, std::string_view& name, std::string_view& value);

bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view text);

// An HTTP date (IMF-fixdate, RFC 850 or asctime form) as unix seconds.
std::optional<int64_t> parse_http_date(std::string_view text);

// If-None-Match semantics (weak comparison): does the header's list name `etag`?
bool etag_matches(std::string_view if_none_match, std::string_view etag);

// The raw userinfo ("user:pass") of a URL, "" when it has none; the URL without it; the URL
// with `userinfo` put back (after "scheme://").
std::string_view url_userinfo(std::string_view url);
std::string without_userinfo(std::string_view url);
std::string with_userinfo(std::string_view url, std::string_view userinfo);

// A single byte range of a body of `size` bytes: RANGE text ("0-99", "100-", "-50") or a
// resume offset. nullopt when it is not one satisfiable range (the transfer then passes
// through).
struct ByteRange {
    uint64_t first = 0;
    uint64_t last = 0; // inclusive
};
std::optional<ByteRange> parse_range(std::string_view range, uint64_t size);

} // namespace curlcache::core::easy
