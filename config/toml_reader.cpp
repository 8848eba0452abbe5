// Reads one TOML file with toml11 and converts it to a Value tree. This is the only file that
// includes <toml.hpp> (it is slow to compile and its types stay out of every other file).
//
// File order: toml11 3.x stores tables in a std::unordered_map. Rather than plugging in an
// ordered map type (toml11 has none of its own), every table's fields are sorted by the
// source position toml11 records for each value. That restores the order in which the keys
// were written, which urls_expire_after's `"glob" = "duration"` form relies on (first match
// wins), and keeps warnings in line order.
//
// Positions: toml11's value.location() counts the newlines from the start of the file on
// every call, which made loading quadratic in the number of keys (20,000 keys: 4.7 s). The
// offset of each value's region is looked up in one index of the file's newlines instead.
//
// Before toml11 sees the text (config/toml_limits.h): files over k_max_config_bytes are
// refused unread, then nesting deeper than k_max_config_nesting (toml11 recurses on it) and
// lines over k_max_config_line_bytes are refused by a pre-scan.
#include "config/toml_reader.h"

#include "base/fd.h"
#include "config/toml_limits.h"

#include <toml.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <system_error>
#include <tuple>
#include <unistd.h>

namespace curlcache::config {

namespace {

// Line and column of a value in toml11's copy of the file, from one sorted index of the
// file's newlines: O(log lines) per value where toml11's own location() is O(offset).
class Positions {
  public:
    using Position = std::tuple<unsigned, unsigned>; // 1-based line, 1-based column

    Position of(const toml::value& value) {
        const auto* region =
            dynamic_cast<const toml::detail::region*>(toml::detail::get_region(value));
        if (region == nullptr || !region->is_ok()) {
            return {0, 0}; // a value toml11 made up (none in a parsed file)
        }
        if (!m_indexed) {
            for (auto it = region->begin(); it != region->end(); ++it) {
                if (*it == '\n') {
                    m_newlines.push_back(static_cast<size_t>(it - region->begin()));
                }
            }
            m_indexed = true;
        }
        const auto offset = static_cast<size_t>(region->first() - region->begin());
        const auto before = std::lower_bound(m_newlines.begin(), m_newlines.end(), offset);
        const size_t line_start = before == m_newlines.begin() ? 0 : *std::prev(before) + 1;
        return {static_cast<unsigned>(before - m_newlines.begin()) + 1,
                static_cast<unsigned>(offset - line_start) + 1};
    }

  private:
    std::vector<size_t> m_newlines; // offsets of every '\n' in the file, ascending
    bool m_indexed = false;
};

Value convert(const toml::value& in, Positions& positions) {
    Value out;
    out.line = std::get<0>(positions.of(in));
    switch (in.type()) {
    case toml::value_t::string:
        out.type = Value::Type::string;
        out.text = in.as_string().str;
        break;
    case toml::value_t::integer:
        out.type = Value::Type::integer;
        out.integer = in.as_integer();
        break;
    case toml::value_t::floating:
        out.type = Value::Type::floating;
        out.floating = in.as_floating();
        break;
    case toml::value_t::boolean:
        out.type = Value::Type::boolean;
        out.boolean = in.as_boolean();
        break;
    case toml::value_t::array:
        out.type = Value::Type::array;
        for (const toml::value& item : in.as_array()) {
            out.items.push_back(convert(item, positions));
        }
        break;
    case toml::value_t::table: {
        out.type = Value::Type::table;
        std::vector<std::pair<Positions::Position, const std::pair<const toml::key, toml::value>*>>
            order;
        order.reserve(in.as_table().size());
        for (const auto& entry : in.as_table()) {
            order.push_back({positions.of(entry.second), &entry});
        }
        std::sort(order.begin(), order.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        out.fields.reserve(order.size());
        for (const auto& [position, entry] : order) {
            out.fields.emplace_back(entry->first, convert(entry->second, positions));
        }
        break;
    }
    default:
        out.type = Value::Type::other;
        break;
    }
    return out;
}

// toml11's messages are several lines with a source excerpt; keep the first line's text.
// "[error] toml::insert_value: value (\"a\") already exists." -> "value (\"a\") already exists."
std::string first_line(const std::string& what) {
    std::string line = what.substr(0, what.find('\n'));
    if (line.starts_with("[error] ")) {
        line.erase(0, 8);
    }
    if (line.starts_with("toml::")) {
        const size_t colon = line.find(": ");
        if (colon != std::string::npos) {
            line.erase(0, colon + 2);
        }
    }
    return line;
}

// Line `number` (from 1) of `text`, or "".
std::string_view line_of(std::string_view text, size_t number) {
    for (size_t n = 1; n < number && !text.empty(); ++n) {
        const size_t end = text.find('\n');
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    }
    return text.substr(0, text.find('\n'));
}

std::string_view trimmed(std::string_view s) {
    const size_t start = s.find_first_not_of(" \t\r");
    if (start == std::string_view::npos) {
        return {};
    }
    return s.substr(start, s.find_last_not_of(" \t\r") - start + 1);
}

// What the user got wrong, in words, for the mistakes people make: a bare word where a
// string belongs (`backend = sqlite`). Other errors keep the parser's first line.
std::string explain(std::string_view line, const std::string& parser_message) {
    const size_t eq = line.find('=');
    if (eq != std::string_view::npos && !line.starts_with('[')) {
        const std::string_view key = trimmed(line.substr(0, eq));
        std::string_view value = trimmed(line.substr(eq + 1));
        value = trimmed(value.substr(0, value.find('#')));
        const bool bare_word =
            !value.empty() && value != "true" && value != "false" &&
            std::all_of(value.begin(), value.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                       c == '.' || c == ',' || c == ':' || c == '/' || c == '*';
            }) &&
            !std::isdigit(static_cast<unsigned char>(value.front())) && value.front() != '-';
        if (!key.empty() && bare_word) {
            return "key '" + std::string(key) + "': a string needs quotes: " + std::string(key) +
                   " = \"" + std::string(value) + "\"";
        }
    }
    return "malformed TOML: " + parser_message;
}

ReadError cannot_read(const std::string& path, const std::string& why) {
    return ReadError{path + ": cannot read config file (" + why + ")", true};
}

// The whole file, or an error: only regular files (a FIFO would block the program the shim
// is loaded into, /dev/zero never ends) of at most k_max_config_bytes.
std::expected<std::string, ReadError> read_text(const std::string& path) {
    const base::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        return std::unexpected(cannot_read(path, std::generic_category().message(errno)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return std::unexpected(cannot_read(path, std::generic_category().message(errno)));
    }
    if (S_ISDIR(st.st_mode)) {
        return std::unexpected(cannot_read(path, "Is a directory"));
    }
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3) {
        return std::string(); // /dev/null: "no config file", as `curlcache export` says
    }
    if (!S_ISREG(st.st_mode)) {
        return std::unexpected(cannot_read(path, "not a regular file"));
    }
    const auto too_large = [&] {
        return ReadError{path + ": config file larger than " +
                         std::to_string(k_max_config_bytes / 1024) + " KiB, not read"};
    };
    if (static_cast<uint64_t>(st.st_size) > k_max_config_bytes) {
        return std::unexpected(too_large());
    }
    // The size fstat saw and one byte more, to notice a file that grew since; it may grow up
    // to the limit and one byte.
    std::string text(static_cast<size_t>(st.st_size) + 1, '\0');
    size_t filled = 0;
    for (;;) {
        if (filled == text.size()) {
            if (text.size() > k_max_config_bytes) {
                return std::unexpected(too_large());
            }
            text.resize(std::min<size_t>(2 * text.size(), k_max_config_bytes + 1));
        }
        const ssize_t n = ::read(fd.get(), text.data() + filled, text.size() - filled);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return std::unexpected(cannot_read(path, std::generic_category().message(errno)));
        }
        if (n == 0) {
            break;
        }
        filled += static_cast<size_t>(n);
    }
    text.resize(filled);
    return text;
}

} // namespace

std::expected<Value, ReadError> read_toml(const std::string& path) {
    auto text = read_text(path);
    if (!text) {
        return std::unexpected(text.error());
    }
    if (const unsigned line = line_nesting_deeper_than(*text, k_max_config_nesting)) {
        return std::unexpected(ReadError{path + ":" + std::to_string(line) +
                                         ": arrays or inline tables nested deeper than " +
                                         std::to_string(k_max_config_nesting) + " levels"});
    }
    if (const unsigned line = line_longer_than(*text, k_max_config_line_bytes)) {
        return std::unexpected(ReadError{path + ":" + std::to_string(line) + ": line longer than " +
                                         std::to_string(k_max_config_line_bytes) +
                                         " bytes (arrays may span several lines)"});
    }
    if (const unsigned line = line_not_utf8(*text)) {
        return std::unexpected(ReadError{path + ":" + std::to_string(line) +
                                         ": not valid UTF-8 (a TOML file is UTF-8 text)"});
    }
    try {
        std::istringstream stream(*text);
        const toml::value root = toml::parse(stream, path);
        Positions positions;
        return convert(root, positions);
    } catch (const toml::exception& e) {
        const size_t line = e.location().line();
        return std::unexpected(ReadError{path + ":" + std::to_string(line) + ": " +
                                         explain(line_of(*text, line), first_line(e.what()))});
    } catch (const std::exception& e) {
        return std::unexpected(ReadError{path + ": malformed TOML: " + first_line(e.what())});
    }
}

} // namespace curlcache::config
