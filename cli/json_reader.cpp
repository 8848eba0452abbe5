// The strict recursive-descent JSON reader, over text in memory or a file read in pieces
// (see json.h for why it is hand-written).
#include "cli/format.h"
#include "cli/json.h"

#include <algorithm>
#include <charconv>

#include <sys/stat.h>

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

void append_utf8(std::string& out, uint32_t code) {
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

} // namespace

JsonReader::JsonReader(std::string_view text) : m_data(text), m_size(text.size()), m_eof(true) {}

JsonReader::JsonReader(std::FILE* in, std::size_t chunk)
    : m_in(in), m_chunk(chunk == 0 ? 1 : chunk) {
    struct stat st {};
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        m_size = static_cast<std::size_t>(st.st_size);
    }
}

// A HAR "content" object gives its body's "size" before the "text": a string member "text"
// that follows a number "size" is given room for it at once (4/3 of it, for base64), so a
// large body is not copied each time its string grows. Never more than the input has left.
std::size_t JsonReader::text_room(const JsonValue& object, std::string_view key) const {
    const JsonValue* size = key == "text" ? object.find("size") : nullptr;
    if (size == nullptr || size->type != JsonValue::Type::number || !(size->number > 0)) {
        return 0;
    }
    const std::size_t at = m_dropped + m_pos;
    const std::size_t left = m_size > at ? m_size - at : 0;
    return static_cast<std::size_t>(std::min(size->number / 3 * 4 + 8, static_cast<double>(left)));
}

bool JsonReader::fail(std::string message) {
    if (m_failed) {
        return false;
    }
    m_failed = true;
    JsonError error;
    error.message = std::move(message);
    const std::size_t end = std::min(m_pos, m_data.size());
    error.line = m_dropped_lines + 1;
    std::size_t line_start = m_line_start; // an input offset
    for (std::size_t i = 0; i < end; ++i) {
        if (m_data[i] == '\n') {
            ++error.line;
            line_start = m_dropped + i + 1;
        }
    }
    error.column = m_dropped + end - line_start + 1;
    m_error = std::move(error);
    return false;
}

// Makes at least `wanted` unread bytes available when the input has them. Bytes before
// the read position are dropped first (their newlines counted for error positions), so a
// file is held a piece at a time, plus the value being read.
bool JsonReader::fill(std::size_t wanted) {
    if (m_data.size() - m_pos >= wanted) {
        return true;
    }
    if (m_eof || m_in == nullptr) {
        m_eof = true;
        return false;
    }
    // Kept from m_hold on: an error there (a duplicate name, a number out of range) is
    // reported where its token began.
    std::size_t drop = m_pos;
    if (m_hold != k_no_hold && m_hold >= m_dropped) {
        drop = std::min(drop, m_hold - m_dropped);
    }
    for (std::size_t i = 0; i < drop; ++i) {
        if (m_buffer[i] == '\n') {
            ++m_dropped_lines;
            m_line_start = m_dropped + i + 1;
        }
    }
    m_buffer.erase(0, drop);
    m_dropped += drop;
    m_pos -= drop;
    while (m_buffer.size() - m_pos < wanted && !m_eof) {
        std::size_t have = m_buffer.size();
        m_buffer.resize(have + m_chunk);
        std::size_t got = std::fread(m_buffer.data() + have, 1, m_chunk, m_in);
        m_buffer.resize(have + got);
        if (got < m_chunk) {
            m_eof = true; // end of file or a read error: the parser reports a truncation
        }
    }
    m_data = m_buffer;
    return m_buffer.size() - m_pos >= wanted;
}

int JsonReader::peek_char() {
    if (!m_started) {
        m_started = true;
        if (fill(3) && m_data.substr(0, 3) == "\xEF\xBB\xBF") {
            m_pos = 3;
        }
    }
    if (m_pos >= m_data.size() && !fill(1)) {
        return -1;
    }
    return static_cast<unsigned char>(m_data[m_pos]);
}

void JsonReader::skip_space() {
    for (;;) {
        int c = peek_char();
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        ++m_pos;
    }
}

bool JsonReader::literal(std::string_view word) {
    fill(word.size());
    if (m_data.substr(m_pos, word.size()) != word) {
        return fail("invalid literal");
    }
    m_pos += word.size();
    return true;
}

bool JsonReader::peek(JsonValue::Type& type) {
    if (m_failed) {
        return false;
    }
    skip_space();
    switch (peek_char()) {
    case '{':
        type = JsonValue::Type::object;
        return true;
    case '[':
        type = JsonValue::Type::array;
        return true;
    case '"':
        type = JsonValue::Type::string;
        return true;
    case 't':
    case 'f':
        type = JsonValue::Type::boolean;
        return true;
    case 'n':
        type = JsonValue::Type::null;
        return true;
    default: {
        int c = peek_char();
        type = JsonValue::Type::number;
        return c == '-' || (c >= '0' && c <= '9');
    }
    }
}

bool JsonReader::value(JsonValue& out) {
    out = JsonValue();
    return !m_failed && parse_value(&out, m_walks.size());
}

bool JsonReader::skip() {
    return !m_failed && parse_value(nullptr, m_walks.size());
}

bool JsonReader::begin(bool array) {
    if (m_failed) {
        return false;
    }
    skip_space();
    if (peek_char() != (array ? '[' : '{')) {
        return fail(array ? "expected an array" : "expected an object");
    }
    if (m_walks.size() + 1 > k_max_depth) {
        return fail("nested too deeply");
    }
    ++m_pos;
    m_walks.push_back(Walk{array, true, {}});
    return true;
}

bool JsonReader::begin_object() {
    return begin(false);
}

bool JsonReader::begin_array() {
    return begin(true);
}

// Before the next member or item of the walk on top: consumes the ',' or the closing
// bracket (then `done`). False on an error.
bool JsonReader::step(bool array, bool& done) {
    done = false;
    if (m_failed || m_walks.empty() || m_walks.back().array != array) {
        return m_failed ? false : fail(array ? "not inside an array" : "not inside an object");
    }
    Walk& walk = m_walks.back();
    skip_space();
    int c = peek_char();
    if (c == (array ? ']' : '}')) {
        ++m_pos;
        m_walks.pop_back();
        done = true;
        return true;
    }
    if (!walk.first) {
        if (c != ',') {
            return fail(array ? "expected ',' or ']'" : "expected ',' or '}'");
        }
        ++m_pos;
    }
    walk.first = false;
    return true;
}

bool JsonReader::next_member(std::string& name, bool& done) {
    if (!step(false, done) || done) {
        return !m_failed;
    }
    skip_space();
    if (peek_char() != '"') {
        return fail("expected a string as the member name");
    }
    const std::size_t key_at = m_hold = m_dropped + m_pos;
    name.clear();
    const bool read = parse_string(&name);
    m_hold = k_no_hold;
    if (!read) {
        return false;
    }
    std::vector<std::string>& names = m_walks.back().names;
    if (std::find(names.begin(), names.end(), name) != names.end()) {
        if (key_at >= m_dropped) {
            m_pos = key_at - m_dropped;
        }
        return fail("duplicate member \"" + name + "\"");
    }
    names.push_back(name);
    skip_space();
    if (peek_char() != ':') {
        return fail("expected ':' after the member name");
    }
    ++m_pos;
    return true;
}

bool JsonReader::next_item(bool& done) {
    return step(true, done);
}

bool JsonReader::finish() {
    if (m_failed) {
        return false;
    }
    skip_space();
    if (peek_char() != -1) {
        return fail("unexpected data after the JSON value");
    }
    return true;
}

bool JsonReader::parse_value(JsonValue* out, std::size_t depth) {
    skip_space();
    int c = peek_char();
    if (c < 0) {
        return fail("unexpected end of input");
    }
    auto set = [&](JsonValue::Type type) {
        if (out != nullptr) {
            out->type = type;
        }
    };
    switch (c) {
    case '{':
        return parse_object(out, depth + 1);
    case '[':
        return parse_array(out, depth + 1);
    case '"':
        set(JsonValue::Type::string);
        return parse_string(out != nullptr ? &out->text : nullptr);
    case 't':
        set(JsonValue::Type::boolean);
        if (out != nullptr) {
            out->boolean = true;
        }
        return literal("true");
    case 'f':
        set(JsonValue::Type::boolean);
        return literal("false");
    case 'n':
        set(JsonValue::Type::null);
        return literal("null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return parse_number(out);
        }
        return fail("unexpected character '" + std::string(1, static_cast<char>(c)) + "'");
    }
}

bool JsonReader::parse_object(JsonValue* out, std::size_t depth) {
    if (depth > k_max_depth) {
        return fail("nested too deeply");
    }
    if (out != nullptr) {
        out->type = JsonValue::Type::object;
    }
    ++m_pos; // '{'
    std::vector<std::string> names; // for the duplicate check when nothing is kept
    skip_space();
    if (peek_char() == '}') {
        ++m_pos;
        return true;
    }
    for (;;) {
        skip_space();
        if (peek_char() != '"') {
            return fail("expected a string as the member name");
        }
        const std::size_t key_at = m_hold = m_dropped + m_pos;
        std::string key;
        const bool read = parse_string(&key);
        m_hold = k_no_hold;
        if (!read) {
            return false;
        }
        bool duplicate = out != nullptr
                             ? out->find(key) != nullptr
                             : std::find(names.begin(), names.end(), key) != names.end();
        if (duplicate) {
            if (key_at >= m_dropped) {
                m_pos = key_at - m_dropped;
            }
            return fail("duplicate member \"" + key + "\"");
        }
        skip_space();
        if (peek_char() != ':') {
            return fail("expected ':' after the member name");
        }
        ++m_pos;
        if (out != nullptr) {
            JsonValue value;
            value.text.reserve(text_room(*out, key));
            if (!parse_value(&value, depth)) {
                return false;
            }
            out->members.emplace_back(std::move(key), std::move(value));
        } else {
            if (!parse_value(nullptr, depth)) {
                return false;
            }
            names.push_back(std::move(key));
        }
        skip_space();
        int c = peek_char();
        if (c == ',') {
            ++m_pos;
            continue;
        }
        if (c == '}') {
            ++m_pos;
            return true;
        }
        return fail("expected ',' or '}'");
    }
}

bool JsonReader::parse_array(JsonValue* out, std::size_t depth) {
    if (depth > k_max_depth) {
        return fail("nested too deeply");
    }
    if (out != nullptr) {
        out->type = JsonValue::Type::array;
    }
    ++m_pos; // '['
    skip_space();
    if (peek_char() == ']') {
        ++m_pos;
        return true;
    }
    for (;;) {
        if (out != nullptr) {
            JsonValue value;
            if (!parse_value(&value, depth)) {
                return false;
            }
            out->items.push_back(std::move(value));
        } else if (!parse_value(nullptr, depth)) {
            return false;
        }
        skip_space();
        int c = peek_char();
        if (c == ',') {
            ++m_pos;
            continue;
        }
        if (c == ']') {
            ++m_pos;
            return true;
        }
        return fail("expected ',' or ']'");
    }
}

bool JsonReader::parse_hex4(uint32_t& out) {
    if (m_pos + 4 > m_data.size()) {
        return fail("truncated \\u escape");
    }
    out = 0;
    for (int i = 0; i < 4; ++i) {
        char c = m_data[m_pos++];
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

// After the backslash; fill() has made the longest escape ("u" + 4 + "\\u" + 4) available
// when the input has it.
bool JsonReader::parse_escape(std::string* out) {
    if (m_pos >= m_data.size()) {
        return fail("unterminated string");
    }
    char c = m_data[m_pos++];
    char plain = 0;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        plain = c;
        break;
    case 'b':
        plain = '\b';
        break;
    case 'f':
        plain = '\f';
        break;
    case 'n':
        plain = '\n';
        break;
    case 'r':
        plain = '\r';
        break;
    case 't':
        plain = '\t';
        break;
    case 'u':
        break;
    default:
        --m_pos;
        return fail("invalid escape '\\" + std::string(1, c) + "'");
    }
    if (c != 'u') {
        if (out != nullptr) {
            *out += plain;
        }
        return true;
    }
    uint32_t code = 0;
    if (!parse_hex4(code)) {
        return false;
    }
    if (code >= 0xDC00 && code <= 0xDFFF) {
        return fail("lone low surrogate in \\u escape");
    }
    if (code >= 0xD800 && code <= 0xDBFF) {
        if (m_data.substr(m_pos, 2) != "\\u") {
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
    if (out != nullptr) {
        append_utf8(*out, code);
    }
    return true;
}

bool JsonReader::parse_string(std::string* out) {
    ++m_pos; // '"'
    for (;;) {
        if (m_pos >= m_data.size() && !fill(1)) {
            return fail("unterminated string");
        }
        // Copy the plain run up to the next quote, backslash or control character, or to
        // a character that may continue in the next piece of the file.
        std::size_t start = m_pos;
        bool more = false;
        while (m_pos < m_data.size()) {
            auto c = static_cast<unsigned char>(m_data[m_pos]);
            if (c == '"' || c == '\\' || c < 0x20) {
                break;
            }
            if (c < 0x80) {
                ++m_pos;
                continue;
            }
            if (m_data.size() - m_pos < 4 && !m_eof) {
                more = true;
                break;
            }
            std::size_t length = utf8_char_length(m_data, m_pos);
            if (length == 0) {
                return fail("invalid UTF-8 in a string");
            }
            m_pos += length;
        }
        if (out != nullptr) {
            out->append(m_data.substr(start, m_pos - start));
        }
        if (more) {
            fill(4);
            continue;
        }
        if (m_pos >= m_data.size()) {
            continue;
        }
        char c = m_data[m_pos];
        if (c == '"') {
            ++m_pos;
            return true;
        }
        if (c == '\\') {
            ++m_pos;
            fill(11);
            if (!parse_escape(out)) {
                return false;
            }
            continue;
        }
        return fail("control character in a string (escape it)");
    }
}

bool JsonReader::digits(std::string* out) {
    bool any = false;
    for (int c = peek_char(); c >= '0' && c <= '9'; c = peek_char()) {
        out->push_back(static_cast<char>(c));
        ++m_pos;
        any = true;
    }
    return any;
}

bool JsonReader::parse_number(JsonValue* out) {
    const std::size_t start = m_hold = m_dropped + m_pos;
    struct Release {
        std::size_t& hold;
        ~Release() { hold = k_no_hold; }
    } release{m_hold};
    std::string text;
    if (peek_char() == '-') {
        text.push_back('-');
        ++m_pos;
    }
    if (peek_char() == '0') {
        text.push_back('0');
        ++m_pos;
    } else if (!digits(&text)) {
        return fail("invalid number");
    }
    if (peek_char() == '.') {
        text.push_back('.');
        ++m_pos;
        if (!digits(&text)) {
            return fail("invalid number: digits must follow '.'");
        }
    }
    if (int c = peek_char(); c == 'e' || c == 'E') {
        text.push_back(static_cast<char>(c));
        ++m_pos;
        if (int sign = peek_char(); sign == '+' || sign == '-') {
            text.push_back(static_cast<char>(sign));
            ++m_pos;
        }
        if (!digits(&text)) {
            return fail("invalid number: digits must follow the exponent");
        }
    }
    double number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        if (start >= m_dropped) {
            m_pos = start - m_dropped;
        }
        return fail("number out of range");
    }
    if (out != nullptr) {
        out->type = JsonValue::Type::number;
        out->number = number;
        out->text = std::move(text);
    }
    return true;
}

std::expected<JsonValue, JsonError> parse_json(std::string_view text) {
    JsonReader reader(text);
    JsonValue value;
    if (!reader.value(value) || !reader.finish()) {
        return std::unexpected(reader.error());
    }
    return value;
}

} // namespace curlcache::cli
