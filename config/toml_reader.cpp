// Reads one TOML file with toml11 and converts it to a Value tree. This is the only file that
// includes <toml.hpp> (it is slow to compile and its types stay out of every other file).
//
// File order: toml11 3.x stores tables in a std::unordered_map. Rather than plugging in an
// ordered map type (toml11 has none of its own), every table's fields are sorted by the
// source position toml11 records for each value. That restores the order in which the keys
// were written, which urls_expire_after's `"glob" = "duration"` form relies on (first match
// wins), and keeps warnings in line order.
#include "config/toml_reader.h"

#include <toml.hpp>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <system_error>
#include <tuple>

namespace curlcache::config {

namespace {

Value convert(const toml::value& in) {
    Value out;
    out.line = static_cast<unsigned>(in.location().line());
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
            out.items.push_back(convert(item));
        }
        break;
    case toml::value_t::table: {
        out.type = Value::Type::table;
        using Position = std::tuple<unsigned, unsigned>;
        std::vector<std::pair<Position, const std::pair<const toml::key, toml::value>*>> order;
        for (const auto& entry : in.as_table()) {
            const auto where = entry.second.location();
            order.push_back({{where.line(), where.column()}, &entry});
        }
        std::sort(order.begin(), order.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        for (const auto& [position, entry] : order) {
            out.fields.emplace_back(entry->first, convert(entry->second));
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

} // namespace

std::expected<Value, ReadError> read_toml(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return std::unexpected(ReadError{path + ": cannot read config file (" +
                                             std::generic_category().message(errno) + ")",
                                         true});
    }
    if (S_ISDIR(st.st_mode)) {
        return std::unexpected(
            ReadError{path + ": cannot read config file (Is a directory)", true});
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return std::unexpected(ReadError{path + ": cannot read config file (" +
                                             std::generic_category().message(errno) + ")",
                                         true});
    }
    std::stringstream text;
    text << file.rdbuf();
    try {
        std::istringstream stream(text.str());
        const toml::value root = toml::parse(stream, path);
        return convert(root);
    } catch (const toml::exception& e) {
        return std::unexpected(ReadError{path + ":" + std::to_string(e.location().line()) +
                                         ": malformed TOML: " + first_line(e.what())});
    } catch (const std::exception& e) {
        return std::unexpected(ReadError{path + ": malformed TOML: " + first_line(e.what())});
    }
}

} // namespace curlcache::config
