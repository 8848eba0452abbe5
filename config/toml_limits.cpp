// A single pass over the text with just enough of TOML's lexical rules to tell brackets that
// open arrays and inline tables from brackets inside strings and comments.
#include "config/toml_limits.h"

#include <cstddef>

namespace curlcache::config {

namespace {

class Scanner {
  public:
    explicit Scanner(std::string_view text) : m_text(text) {}

    unsigned first_line_deeper_than(unsigned limit) {
        unsigned depth = 0;
        while (m_at < m_text.size()) {
            const char c = m_text[m_at];
            if (c == '"' || c == '\'') {
                skip_string(c);
                continue;
            }
            ++m_at;
            switch (c) {
            case '\n':
                ++m_line;
                break;
            case '#': // a comment runs to the end of the line; the newline is counted above
                skip_to_newline();
                break;
            case '[':
            case '{':
                if (++depth > limit) {
                    return m_line;
                }
                break;
            case ']':
            case '}':
                // An unmatched closer is malformed TOML that toml11 reports; never below 0.
                if (depth > 0) {
                    --depth;
                }
                break;
            default:
                break;
            }
        }
        return 0;
    }

  private:
    bool at_triple(char quote) const {
        return m_text.substr(m_at, 3) == std::string_view(quote == '"' ? "\"\"\"" : "'''");
    }

    void skip_to_newline() {
        const size_t newline = m_text.find('\n', m_at);
        m_at = newline == std::string_view::npos ? m_text.size() : newline;
    }

    // m_at is on the opening quote; leaves m_at just past the closing one.
    void skip_string(char quote) {
        const bool basic = quote == '"'; // basic strings have backslash escapes
        if (at_triple(quote)) {
            m_at += 3;
            skip_multi_line(quote, basic);
            return;
        }
        ++m_at;
        while (m_at < m_text.size()) {
            const char c = m_text[m_at];
            if (c == '\n') {
                // A one-line string cannot span lines: toml11 rejects the file; resume
                // scanning here so that the brackets of the lines after it still count.
                return;
            }
            ++m_at;
            if (c == quote) {
                return;
            }
            if (basic && c == '\\' && m_at < m_text.size() && m_text[m_at] != '\n') {
                ++m_at; // the escaped character, which may be a quote
            }
        }
    }

    void skip_multi_line(char quote, bool basic) {
        while (m_at < m_text.size()) {
            if (at_triple(quote)) {
                m_at += 3;
                // Up to two more quotes belong to the string: """a""""" is a"" .
                for (int extra = 0; extra < 2 && m_at < m_text.size() && m_text[m_at] == quote;
                     ++extra) {
                    ++m_at;
                }
                return;
            }
            const char c = m_text[m_at++];
            if (c == '\n') {
                ++m_line;
            } else if (basic && c == '\\' && m_at < m_text.size()) {
                // An escaped character, or the newline of a line-ending backslash.
                if (m_text[m_at] == '\n') {
                    ++m_line;
                }
                ++m_at;
            }
        }
    }

    std::string_view m_text;
    size_t m_at = 0;
    unsigned m_line = 1;
};

} // namespace

unsigned line_nesting_deeper_than(std::string_view text, unsigned limit) {
    return Scanner(text).first_line_deeper_than(limit);
}

unsigned line_longer_than(std::string_view text, size_t limit) {
    unsigned line = 1;
    while (!text.empty()) {
        const size_t newline = text.find('\n');
        if ((newline == std::string_view::npos ? text.size() : newline) > limit) {
            return line;
        }
        if (newline == std::string_view::npos) {
            break;
        }
        text.remove_prefix(newline + 1);
        ++line;
    }
    return 0;
}

unsigned line_not_utf8(std::string_view text) {
    unsigned line = 1;
    size_t at = 0;
    while (at < text.size()) {
        const auto lead = static_cast<unsigned char>(text[at]);
        if (lead < 0x80) {
            line += lead == '\n' ? 1 : 0;
            ++at;
            continue;
        }
        // The length of the sequence and the range its second byte must lie in (which
        // excludes overlong forms, surrogates and values past U+10FFFF).
        size_t length = 0;
        unsigned char low = 0x80, high = 0xbf;
        if (lead >= 0xc2 && lead <= 0xdf) {
            length = 2;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            length = 3;
            low = lead == 0xe0 ? 0xa0 : 0x80;
            high = lead == 0xed ? 0x9f : 0xbf;
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            length = 4;
            low = lead == 0xf0 ? 0x90 : 0x80;
            high = lead == 0xf4 ? 0x8f : 0xbf;
        } else {
            return line;
        }
        if (text.size() - at < length) {
            return line;
        }
        for (size_t i = 1; i < length; ++i) {
            const auto c = static_cast<unsigned char>(text[at + i]);
            if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xbf)) {
                return line;
            }
        }
        at += length;
    }
    return 0;
}

} // namespace curlcache::config
