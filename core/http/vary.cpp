// Vary (RFC 9111 §4.1): the nominated request fields and the canonical text of their values.
//
// Two values match when they are equal after the normalisations §4.1 allows (combining
// several field lines into one list, removing optional whitespace around commas). Values
// are compared case-sensitively: whether "GZIP" equals "gzip" depends on the field, and a
// spurious miss is cheaper than serving the wrong variant.
#include "core/http/vary.h"

#include "core/easy/http_text.h"
#include "core/http/cache_control.h"

#include <algorithm>
#include <cstdio>

#include <xxhash.h>

namespace curlcache::core::http {

namespace {

// Fields whose values are credentials (the ones the key keeps only as a digest).
bool is_credential(std::string_view name) {
    return name == "authorization" || name == "proxy-authorization" || name == "cookie";
}
constexpr std::string_view k_credential_prefix = "curlcache vary credential v1\n";

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

// Appends `value` to `out` with optional whitespace around commas and at both ends removed
// and inner runs of whitespace folded to one space.
void append_normalised(std::string& out, std::string_view value) {
    bool pending_space = false;
    bool after_comma = true; // the start of the value behaves like the place after a comma
    for (char c : value) {
        if (is_space(c) || c == '\r' || c == '\n') {
            pending_space = !after_comma;
            continue;
        }
        if (c != ',' && pending_space) {
            out += ' ';
        }
        pending_space = false;
        out += c;
        after_comma = c == ',';
    }
}

// A request line as libcurl reads CURLOPT_HTTPHEADER: "Name: value" sends a field,
// "Name:" with nothing after it removes the field (it is not sent), and "Name;" sends it
// with an empty value.
bool request_field(std::string_view line, std::string_view& name, std::string_view& value) {
    if (easy::split_header(line, name, value)) {
        return !value.empty();
    }
    std::string_view trimmed = easy::trim(line);
    if (!trimmed.empty() && trimmed.back() == ';' &&
        trimmed.find_first_of(": \t") == std::string_view::npos) {
        name = trimmed.substr(0, trimmed.size() - 1);
        value = {};
        return !name.empty();
    }
    return false;
}

} // namespace

std::vector<std::string> vary_names(std::string_view block) {
    std::vector<std::string> names;
    for (std::string_view line : easy::lines_of(block)) {
        std::string_view name, value;
        if (!easy::split_header(line, name, value) || !easy::iequals(name, "vary")) {
            continue;
        }
        for (std::string& field : list_tokens(value)) {
            if (field == "*") {
                return {"*"};
            }
            names.push_back(std::move(field));
        }
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

std::string variant_of(const std::vector<std::string>& names,
                       const std::vector<std::string>& request_lines) {
    std::string out;
    for (const std::string& wanted : names) {
        out += wanted;
        bool found = false;
        std::string joined;
        for (const std::string& line : request_lines) {
            std::string_view name, value;
            if (!request_field(line, name, value) || !easy::iequals(name, wanted)) {
                continue;
            }
            if (found) {
                joined += ',';
            }
            found = true;
            joined += value;
        }
        if (found) {
            out += ':';
            if (is_credential(wanted)) {
                // The variant is stored with the entry: a credential's value never is, only
                // a digest that two equal values share.
                std::string value = std::string(k_credential_prefix);
                append_normalised(value, joined);
                const XXH128_hash_t digest = XXH3_128bits(value.data(), value.size());
                char hex[40];
                std::snprintf(hex, sizeof hex, "#%016llx%016llx",
                              static_cast<unsigned long long>(digest.high64),
                              static_cast<unsigned long long>(digest.low64));
                out += hex;
            } else {
                append_normalised(out, joined);
            }
        }
        out += '\n';
    }
    return out;
}

} // namespace curlcache::core::http
