// Human-readable output helpers, base64 and percent-decoding for the curlcache command.
#include "cli/format.h"

#include <algorithm>
#include <array>
#include <ctime>

namespace curlcache::cli {

std::string format_size(uint64_t bytes) {
    static constexpr std::array<const char*, 6> k_units{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        return std::to_string(bytes) + " B";
    }
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < k_units.size()) {
        value /= 1024.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, k_units[unit]);
    return text;
}

std::string format_percent(uint64_t part, uint64_t whole) {
    if (whole == 0) {
        return "-";
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %%",
                  100.0 * static_cast<double>(part) / static_cast<double>(whole));
    return text;
}

std::string format_count(uint64_t value) {
    std::string digits = std::to_string(value);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) {
            out += ',';
        }
        out += digits[i];
    }
    return out;
}

std::string count_of(uint64_t count, std::string_view one, std::string_view many) {
    return format_count(count) + " " + std::string(count == 1 ? one : many);
}

std::string format_local_time(int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    localtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    return text;
}

std::string format_iso_utc(int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return text;
}

std::string format_relative(int64_t when, int64_t now) {
    int64_t delta = when - now;
    bool future = delta > 0;
    uint64_t amount = static_cast<uint64_t>(future ? delta : -delta);
    if (amount == 0) {
        return "now";
    }
    std::string text;
    if (amount < 60) {
        text = std::to_string(amount) + " s";
    } else if (amount < 3600) {
        text = std::to_string(amount / 60) + " min";
    } else if (amount < 86400 * 2) {
        text = std::to_string(amount / 3600) + " h";
    } else {
        text = std::to_string(amount / 86400) + " d";
    }
    return future ? "in " + text : text + " ago";
}

std::size_t Table::width(std::size_t index) const {
    std::size_t widest = 0;
    for (const auto& row : m_rows) {
        if (index < row.size()) {
            widest = std::max(widest, row[index].size());
        }
    }
    return widest;
}

void Table::print(std::FILE* out) const {
    std::vector<std::size_t> widths;
    for (const auto& row : m_rows) {
        widths.resize(std::max(widths.size(), row.size()), 0);
        for (std::size_t i = 0; i < row.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    }
    for (const auto& row : m_rows) {
        print_row(out, row, widths, m_aligns);
    }
}

void Table::print_row(std::FILE* out, const std::vector<std::string>& row,
                      const std::vector<std::size_t>& widths, const std::vector<Align>& aligns) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
        bool last = i + 1 == row.size();
        std::size_t width = i < widths.size() ? widths[i] : 0;
        std::size_t pad = width > row[i].size() ? width - row[i].size() : 0;
        bool right = i < aligns.size() && aligns[i] == Align::right;
        if (right) {
            line.append(pad, ' ');
        }
        line += row[i];
        if (!right && !last) {
            line.append(pad, ' ');
        }
        if (!last) {
            line += "  ";
        }
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out);
}

namespace {

constexpr std::string_view k_base64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A table, not a search of the alphabet: HAR import decodes bodies of many megabytes.
int base64_value(char c) {
    static const auto k_values = [] {
        std::array<signed char, 256> values{};
        values.fill(-1);
        for (std::size_t i = 0; i < k_base64.size(); ++i) {
            values[static_cast<unsigned char>(k_base64[i])] = static_cast<signed char>(i);
        }
        return values;
    }();
    return k_values[static_cast<unsigned char>(c)];
}

} // namespace

std::string base64_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16 |
                     static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8 |
                     static_cast<unsigned char>(data[i + 2]);
        out += k_base64[n >> 18 & 63];
        out += k_base64[n >> 12 & 63];
        out += k_base64[n >> 6 & 63];
        out += k_base64[n & 63];
    }
    std::size_t rest = data.size() - i;
    if (rest > 0) {
        uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
        if (rest == 2) {
            n |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
        }
        out += k_base64[n >> 18 & 63];
        out += k_base64[n >> 12 & 63];
        out += rest == 2 ? k_base64[n >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

namespace {

// Decodes `text` to `out`, which may be text's own first bytes: every 4 characters become
// at most 3 bytes, written behind the position being read. Returns the decoded size, or
// -1 when `text` is not strict base64.
std::ptrdiff_t decode_base64(std::string_view text, char* out) {
    if (text.size() % 4 != 0) {
        return -1;
    }
    char* start = out;
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int v[4];
        int padding = 0;
        for (int j = 0; j < 4; ++j) {
            char c = text[i + static_cast<std::size_t>(j)];
            if (c == '=' && last && j >= 2) {
                v[j] = 0;
                ++padding;
                continue;
            }
            if (padding > 0) {
                return -1; // data after '='
            }
            v[j] = base64_value(c);
            if (v[j] < 0) {
                return -1;
            }
        }
        uint32_t n = static_cast<uint32_t>(v[0]) << 18 | static_cast<uint32_t>(v[1]) << 12 |
                     static_cast<uint32_t>(v[2]) << 6 | static_cast<uint32_t>(v[3]);
        *out++ = static_cast<char>(n >> 16 & 255);
        if (padding < 2) {
            *out++ = static_cast<char>(n >> 8 & 255);
        }
        if (padding < 1) {
            *out++ = static_cast<char>(n & 255);
        }
    }
    return out - start;
}

} // namespace

bool base64_decode(std::string_view text, std::string& out) {
    out.resize(text.size() / 4 * 3);
    std::ptrdiff_t size = decode_base64(text, out.data());
    out.resize(size < 0 ? 0 : static_cast<std::size_t>(size));
    return size >= 0;
}

bool base64_decode_in_place(std::string& text) {
    std::ptrdiff_t size = decode_base64(text, text.data());
    if (size < 0) {
        return false;
    }
    text.resize(static_cast<std::size_t>(size));
    return true;
}

std::size_t utf8_char_length(std::string_view data, std::size_t i) {
    auto c = static_cast<unsigned char>(data[i]);
    if (c < 0x80) {
        return 1;
    }
    std::size_t length;
    uint32_t code;
    if ((c & 0xE0) == 0xC0) {
        length = 2;
        code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        length = 3;
        code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        length = 4;
        code = c & 0x07;
    } else {
        return 0;
    }
    if (i + length > data.size()) {
        return 0;
    }
    for (std::size_t j = 1; j < length; ++j) {
        auto next = static_cast<unsigned char>(data[i + j]);
        if ((next & 0xC0) != 0x80) {
            return 0;
        }
        code = code << 6 | (next & 0x3F);
    }
    static constexpr uint32_t k_min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < k_min[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
        return 0;
    }
    return length;
}

bool is_text(std::string_view data) {
    for (std::size_t i = 0; i < data.size();) {
        std::size_t length = utf8_char_length(data, i);
        if (length == 0 || data[i] == '\0') {
            return false;
        }
        i += length;
    }
    return true;
}

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace

std::string percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+' && plus_is_space) {
            out += ' ';
        } else if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
                   hex_digit(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

} // namespace curlcache::cli
