// The strict recursive-descent JSON reader (see json.h for why it is hand-written).
#include "cli/format.h"
#include "cli/json.h"

#include <charconv>

namespace curlcache::cli {

const JsonValue* JsonValue::find(std::string_view key) const {
    for (const auto& [name, value] : members) {
        if (name == key) {
            return &value;
        }
    }
    return nullptr;
}

std::string_view json_type_name(JsonValue::Type type) {
    switch (type) {
    case JsonValue::Type::null:
        return "null";
    case JsonValue::Type::boolean:
        return "a boolean";
    case JsonValue::Type::number:
        return "a number";
    case JsonValue::Type::string:
        return "a string";
    case JsonValue::Type::array:
        return "an array";
    case JsonValue::Type::object:
        return "an object";
    }
    return "a value";
}

namespace {

// Deeper nesting than any HAR file needs; the limit keeps the recursion off the stack's end.
constexpr std::size_t k_max_depth = 200;

class Parser {
  public:
    explicit Parser(std::string_view text) : m_text(text) {}

    std::expected<JsonValue, JsonError> parse_document() {
        if (m_text.starts_with("\xEF\xBB\xBF")) {
            m_pos = 3;
        }
        JsonValue value;
        if (!parse_value(value, 0)) {
            return std::unexpected(m_error);
        }
        skip_space();
        if (m_pos != m_text.size()) {
            fail("unexpected data after the JSON value");
            return std::unexpected(m_error);
        }
        return value;
    }

  private:
    bool fail(std::string message) {
        JsonError error;
        error.message = std::move(message);
        for (std::size_t i = 0; i < m_pos && i < m_text.size(); ++i) {
            if (m_text[i] == '\n') {
                ++error.line;
                error.column = 1;
            } else {
                ++error.column;
            }
        }
        m_error = std::move(error);
        return false;
    }

    void skip_space() {
        while (m_pos < m_text.size()) {
            char c = m_text[m_pos];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                break;
            }
            ++m_pos;
        }
    }

    bool literal(std::string_view word) {
        if (m_text.substr(m_pos, word.size()) != word) {
            return fail("invalid literal");
        }
        m_pos += word.size();
        return true;
    }

    bool parse_value(JsonValue& out, std::size_t depth) {
        skip_space();
        if (m_pos >= m_text.size()) {
            return fail("unexpected end of input");
        }
        switch (m_text[m_pos]) {
        case '{':
            return parse_object(out, depth + 1);
        case '[':
            return parse_array(out, depth + 1);
        case '"':
            out.type = JsonValue::Type::string;
            return parse_string(out.text);
        case 't':
            out.type = JsonValue::Type::boolean;
            out.boolean = true;
            return literal("true");
        case 'f':
            out.type = JsonValue::Type::boolean;
            return literal("false");
        case 'n':
            out.type = JsonValue::Type::null;
            return literal("null");
        default:
            if (m_text[m_pos] == '-' || (m_text[m_pos] >= '0' && m_text[m_pos] <= '9')) {
                return parse_number(out);
            }
            return fail("unexpected character '" + std::string(1, m_text[m_pos]) + "'");
        }
    }

    bool parse_object(JsonValue& out, std::size_t depth) {
        if (depth > k_max_depth) {
            return fail("nested too deeply");
        }
        out.type = JsonValue::Type::object;
        ++m_pos; // '{'
        skip_space();
        if (m_pos < m_text.size() && m_text[m_pos] == '}') {
            ++m_pos;
            return true;
        }
        for (;;) {
            skip_space();
            if (m_pos >= m_text.size() || m_text[m_pos] != '"') {
                return fail("expected a string as the member name");
            }
            std::size_t key_pos = m_pos;
            std::string key;
            if (!parse_string(key)) {
                return false;
            }
            if (out.find(key) != nullptr) {
                m_pos = key_pos;
                return fail("duplicate member \"" + key + "\"");
            }
            skip_space();
            if (m_pos >= m_text.size() || m_text[m_pos] != ':') {
                return fail("expected ':' after the member name");
            }
            ++m_pos;
            JsonValue value;
            if (!parse_value(value, depth)) {
                return false;
            }
            out.members.emplace_back(std::move(key), std::move(value));
            skip_space();
            if (m_pos < m_text.size() && m_text[m_pos] == ',') {
                ++m_pos;
                continue;
            }
            if (m_pos < m_text.size() && m_text[m_pos] == '}') {
                ++m_pos;
                return true;
            }
            return fail("expected ',' or '}'");
        }
    }

    bool parse_array(JsonValue& out, std::size_t depth) {
        if (depth > k_max_depth) {
            return fail("nested too deeply");
        }
        out.type = JsonValue::Type::array;
        ++m_pos; // '['
        skip_space();
        if (m_pos < m_text.size() && m_text[m_pos] == ']') {
            ++m_pos;
            return true;
        }
        for (;;) {
            JsonValue value;
            if (!parse_value(value, depth)) {
                return false;
            }
            out.items.push_back(std::move(value));
            skip_space();
            if (m_pos < m_text.size() && m_text[m_pos] == ',') {
                ++m_pos;
                continue;
            }
            if (m_pos < m_text.size() && m_text[m_pos] == ']') {
                ++m_pos;
                return true;
            }
            return fail("expected ',' or ']'");
        }
    }

    bool parse_hex4(uint32_t& out) {
        if (m_pos + 4 > m_text.size()) {
            return fail("truncated \\u escape");
        }
        out = 0;
        for (int i = 0; i < 4; ++i) {
            char c = m_text[m_pos++];
            out <<= 4;
            if (c >= '0' && c <= '9') {
                out |= static_cast<uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                out |= static_cast<uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                out |= static_cast<uint32_t>(c - 'A' + 10);
            } else {
                --m_pos;
                return fail("invalid \\u escape");
            }
        }
        return true;
    }

    static void append_utf8(std::string& out, uint32_t code) {
        if (code < 0x80) {
            out += static_cast<char>(code);
        } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | code >> 6);
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            out += static_cast<char>(0xE0 | code >> 12);
            out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | code >> 18);
            out += static_cast<char>(0x80 | (code >> 12 & 0x3F));
            out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
    }

    bool parse_escape(std::string& out) {
        if (m_pos >= m_text.size()) {
            return fail("unterminated string");
        }
        char c = m_text[m_pos++];
        switch (c) {
        case '"':
            out += '"';
            return true;
        case '\\':
            out += '\\';
            return true;
        case '/':
            out += '/';
            return true;
        case 'b':
            out += '\b';
            return true;
        case 'f':
            out += '\f';
            return true;
        case 'n':
            out += '\n';
            return true;
        case 'r':
            out += '\r';
            return true;
        case 't':
            out += '\t';
            return true;
        case 'u':
            break;
        default:
            --m_pos;
            return fail("invalid escape '\\" + std::string(1, c) + "'");
        }
        uint32_t code = 0;
        if (!parse_hex4(code)) {
            return false;
        }
        if (code >= 0xDC00 && code <= 0xDFFF) {
            return fail("lone low surrogate in \\u escape");
        }
        if (code >= 0xD800 && code <= 0xDBFF) {
            if (m_text.substr(m_pos, 2) != "\\u") {
                return fail("high surrogate not followed by a low one");
            }
            m_pos += 2;
            uint32_t low = 0;
            if (!parse_hex4(low)) {
                return false;
            }
            if (low < 0xDC00 || low > 0xDFFF) {
                return fail("high surrogate not followed by a low one");
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, code);
        return true;
    }

    bool parse_string(std::string& out) {
        ++m_pos; // '"'
        for (;;) {
            // Copy the plain run up to the next quote, backslash or control character.
            std::size_t start = m_pos;
            while (m_pos < m_text.size()) {
                auto c = static_cast<unsigned char>(m_text[m_pos]);
                if (c == '"' || c == '\\' || c < 0x20) {
                    break;
                }
                if (c < 0x80) {
                    ++m_pos;
                    continue;
                }
                std::size_t length = utf8_char_length(m_text, m_pos);
                if (length == 0) {
                    return fail("invalid UTF-8 in a string");
                }
                m_pos += length;
            }
            out.append(m_text.substr(start, m_pos - start));
            if (m_pos >= m_text.size()) {
                return fail("unterminated string");
            }
            char c = m_text[m_pos];
            if (c == '"') {
                ++m_pos;
                return true;
            }
            if (c == '\\') {
                ++m_pos;
                if (!parse_escape(out)) {
                    return false;
                }
                continue;
            }
            return fail("control character in a string (escape it)");
        }
    }

    bool digits() {
        std::size_t start = m_pos;
        while (m_pos < m_text.size() && m_text[m_pos] >= '0' && m_text[m_pos] <= '9') {
            ++m_pos;
        }
        return m_pos > start;
    }

    bool parse_number(JsonValue& out) {
        std::size_t start = m_pos;
        if (m_text[m_pos] == '-') {
            ++m_pos;
        }
        if (m_pos < m_text.size() && m_text[m_pos] == '0') {
            ++m_pos;
        } else if (!digits()) {
            return fail("invalid number");
        }
        if (m_pos < m_text.size() && m_text[m_pos] == '.') {
            ++m_pos;
            if (!digits()) {
                return fail("invalid number: digits must follow '.'");
            }
        }
        if (m_pos < m_text.size() && (m_text[m_pos] == 'e' || m_text[m_pos] == 'E')) {
            ++m_pos;
            if (m_pos < m_text.size() && (m_text[m_pos] == '+' || m_text[m_pos] == '-')) {
                ++m_pos;
            }
            if (!digits()) {
                return fail("invalid number: digits must follow the exponent");
            }
        }
        out.type = JsonValue::Type::number;
        out.text = std::string(m_text.substr(start, m_pos - start));
        auto [end, ec] =
            std::from_chars(out.text.data(), out.text.data() + out.text.size(), out.number);
        if (ec != std::errc{} || end != out.text.data() + out.text.size()) {
            m_pos = start;
            return fail("number out of range");
        }
        return true;
    }

    std::string_view m_text;
    std::size_t m_pos = 0;
    JsonError m_error;
};

} // namespace

std::expected<JsonValue, JsonError> parse_json(std::string_view text) {
    return Parser(text).parse_document();
}

} // namespace curlcache::cli
