// The streaming JSON writer (see json.h).
#include "cli/format.h"
#include "cli/json.h"

#include <charconv>
#include <cinttypes>
#include <cmath>

namespace curlcache::cli {

void JsonWriter::newline_indent(std::size_t depth) {
    put("\n");
    for (std::size_t i = 0; i < depth; ++i) {
        put("  ");
    }
}

void JsonWriter::before_value() {
    if (m_after_key) {
        m_after_key = false;
        return;
    }
    if (!m_stack.empty()) {
        if (!m_stack.back().empty) {
            put(",");
        }
        m_stack.back().empty = false;
        newline_indent(m_stack.size());
    }
}

void JsonWriter::begin_object() {
    before_value();
    put("{");
    m_stack.push_back({false, true});
}

void JsonWriter::close(std::string_view bracket) {
    bool empty = m_stack.back().empty;
    m_stack.pop_back();
    if (!empty) {
        newline_indent(m_stack.size());
    }
    put(bracket);
}

void JsonWriter::end_object() {
    close("}");
}

void JsonWriter::begin_array() {
    before_value();
    put("[");
    m_stack.push_back({true, true});
}

void JsonWriter::end_array() {
    close("]");
}

void JsonWriter::key(std::string_view name) {
    before_value();
    write_string(name);
    put(": ");
    m_after_key = true;
}

void JsonWriter::string(std::string_view text) {
    before_value();
    write_string(text);
}

void JsonWriter::flush() {
    if (!m_buffer.empty()) {
        std::fwrite(m_buffer.data(), 1, m_buffer.size(), m_out);
        m_buffer.clear();
    }
}

void JsonWriter::write_string(std::string_view text) {
    // Most strings (keys, URLs) need no escape: copied as they are.
    bool plain = true;
    for (unsigned char c : text) {
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
            plain = false;
            break;
        }
    }
    if (plain) {
        m_buffer += '"';
        m_buffer.append(text);
        m_buffer += '"';
        if (m_buffer.size() >= k_buffer) {
            flush();
        }
        return;
    }
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            std::size_t length = utf8_char_length(text, i);
            if (length == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(text.substr(i, length));
                i += length;
            }
            continue;
        }
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                char escape[8];
                std::snprintf(escape, sizeof escape, "\\u%04x", c);
                out += escape;
            } else {
                out += static_cast<char>(c);
            }
        }
        ++i;
        if (out.size() >= 65536) {
            put(out);
            out.clear();
        }
    }
    out += '"';
    put(out);
}

void JsonWriter::integer(int64_t value) {
    before_value();
    char text[32];
    put(std::string_view(text, std::to_chars(text, text + sizeof text, value).ptr));
}

void JsonWriter::unsigned_integer(uint64_t value) {
    before_value();
    char text[32];
    put(std::string_view(text, std::to_chars(text, text + sizeof text, value).ptr));
}

void JsonWriter::real(double value) {
    if (!std::isfinite(value)) {
        null(); // JSON has no NaN or infinity
        return;
    }
    before_value();
    char text[40];
    std::snprintf(text, sizeof text, "%.15g", value);
    put(text);
}

void JsonWriter::boolean(bool value) {
    before_value();
    put(value ? "true" : "false");
}

void JsonWriter::null() {
    before_value();
    put("null");
}

bool JsonWriter::finish() {
    put("\n");
    flush();
    return std::fflush(m_out) == 0 && !std::ferror(m_out);
}

} // namespace curlcache::cli
