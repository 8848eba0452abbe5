// Human-readable output: sizes with binary units, percentages, times, aligned tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::cli {

// 512 -> "512 B", 1536 -> "1.5 KiB", 10485760 -> "10.0 MiB".
std::string format_size(uint64_t bytes);

// part/whole as "75.0 %"; "-" when whole is 0.
std::string format_percent(uint64_t part, uint64_t whole);

// 1234567 -> "1,234,567": large counts stay readable.
std::string format_count(uint64_t value);

// "1 entry", "2 entries", "1,024 entries".
std::string count_of(uint64_t count, std::string_view one, std::string_view many);

// Local time "2026-11-21 19:40:05".
std::string format_local_time(int64_t unix_seconds);

// UTC ISO 8601 with milliseconds, as HAR wants: "2026-11-21T19:40:05.000Z".
std::string format_iso_utc(int64_t unix_seconds);

// How far `when` is from `now`: "in 3 h", "5 min ago", "now".
std::string format_relative(int64_t when, int64_t now);

// Columns padded to their widest cell, two spaces apart; the last column is not padded.
class Table {
  public:
    enum class Align { left, right };
    explicit Table(std::vector<Align> aligns) : m_aligns(std::move(aligns)) {}
    void add(std::vector<std::string> row) { m_rows.push_back(std::move(row)); }
    void print(std::FILE* out) const;
    // One row padded to `widths` (a table printed as it goes, its widths known beforehand).
    static void print_row(std::FILE* out, const std::vector<std::string>& row,
                          const std::vector<std::size_t>& widths, const std::vector<Align>& aligns);
    bool empty() const { return m_rows.empty(); }
    // The width of column `index` over the rows added so far.
    std::size_t width(std::size_t index) const;

  private:
    std::vector<Align> m_aligns;
    std::vector<std::vector<std::string>> m_rows;
};

// Base64 (RFC 4648, with padding) for HAR bodies.
std::string base64_encode(std::string_view data);
// Strict: only the standard alphabet, length a multiple of 4, correct padding.
bool base64_decode(std::string_view text, std::string& out);
// The same, decoded over `text` itself (no second buffer for a large body; the capacity
// stays); on failure `text` is left partly overwritten.
bool base64_decode_in_place(std::string& text);

// The length of the well-formed UTF-8 character at data[i] (1-4), or 0 when the bytes there
// are not one (stray continuation, overlong form, surrogate, beyond U+10FFFF, truncated).
std::size_t utf8_char_length(std::string_view data, std::size_t i);

// True when `data` is well-formed UTF-8 without NUL bytes: a HAR body that can be text.
bool is_text(std::string_view data);

// Decodes %XX escapes (malformed ones stay as they are); '+' becomes a space when
// `plus_is_space` (query strings in application/x-www-form-urlencoded style).
std::string percent_decode(std::string_view text, bool plus_is_space);

} // namespace curlcache::cli
