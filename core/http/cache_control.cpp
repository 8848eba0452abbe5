// Cache-Control parsing (RFC 9111 §5.2, §1.2.2; RFC 9110 §5.6 for the list, token and
// quoted-string grammar).
//
// The parser walks each field value once, without copying it: an element is a token name,
// optionally "=" and a token or a quoted-string, then optional whitespace before the next
// comma. Commas inside a quoted string belong to the string, so
// `extension="max-age=3600", max-age=1` sets max-age to 1. An element that does not follow
// that grammar ("max-age =60", "max-age= 60") is malformed: when its name is a
// delta-seconds directive it is recorded in `invalid` (a freshness that cannot be read is
// treated as stale, RFC 9111 §4.2.1), otherwise it is skipped up to the next comma.
#include "core/http/cache_control.h"

#include "core/easy/http_text.h"

#include <algorithm>

namespace curlcache::core::http {

namespace {

using easy::iequals;

// tchar (RFC 9110 §5.6.2).
bool is_tchar(char c) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    return alnum || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return out;
}

// Calls visit(item) for each trimmed, non-empty item of a comma-separated list of tokens
// (RFC 9110 §5.6.1); true as soon as a call returns true.
template <class Visit> bool for_each_list_item(std::string_view value, Visit visit) {
    size_t at = 0;
    while (at < value.size()) {
        size_t end = std::min(value.find(',', at), value.size());
        std::string_view item = easy::trim(value.substr(at, end - at));
        if (!item.empty() && visit(item)) {
            return true;
        }
        at = end + 1;
    }
    return false;
}

// One list element as the walker found it. `value` is the raw argument: a token, or a
// quoted-string with its quotes (escapes are kept; parse_delta_seconds and the field-name
// lists never need them).
struct Element {
    std::string_view name;
    std::string_view value;
    bool has_value = false;
    bool malformed = false;
};

// Reads the element that starts at `at` (after separators) and moves `at` past it and
// its trailing comma.
Element next_element(std::string_view text, size_t& at) {
    Element element;
    size_t start = at;
    while (at < text.size() && is_tchar(text[at])) {
        ++at;
    }
    element.name = text.substr(start, at - start);
    if (at < text.size() && text[at] == '=') {
        element.has_value = true;
        size_t value_start = ++at;
        if (at < text.size() && text[at] == '"') {
            ++at;
            bool closed = false;
            while (at < text.size() && !closed) {
                if (text[at] == '\\' && at + 1 < text.size()) {
                    at += 2;
                    continue;
                }
                closed = text[at++] == '"';
            }
            element.malformed = !closed;
        } else {
            while (at < text.size() && is_tchar(text[at])) {
                ++at;
            }
        }
        element.value = text.substr(value_start, at - value_start);
        element.malformed = element.malformed || element.value.empty();
    }
    while (at < text.size() && is_ows(text[at])) {
        ++at;
    }
    if (element.name.empty() || (at < text.size() && text[at] != ',')) {
        element.malformed = true;
        // Skip the rest of the element, honouring quoted strings.
        bool quoted = false;
        while (at < text.size() && (quoted || text[at] != ',')) {
            if (quoted && text[at] == '\\') {
                ++at;
            } else if (text[at] == '"') {
                quoted = !quoted;
            }
            ++at;
        }
    }
    if (at < text.size()) {
        ++at; // the comma
    }
    return element;
}

// The field names of a qualified no-cache="A, B" or private="A", lower-case.
std::vector<std::string> field_names(std::string_view value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
    }
    return list_tokens(value);
}

void note_invalid(CacheControl& cc, std::string_view name) {
    std::string lowered = lower(name);
    if (std::find(cc.invalid.begin(), cc.invalid.end(), lowered) == cc.invalid.end()) {
        cc.invalid.push_back(std::move(lowered));
    }
}

bool seen_invalid(const CacheControl& cc, std::string_view name) {
    return std::any_of(cc.invalid.begin(), cc.invalid.end(),
                       [name](const std::string& seen) { return iequals(seen, name); });
}

// A delta-seconds directive: the first occurrence wins, whether it was valid or not.
void set_delta(CacheControl& cc, std::optional<int64_t>& slot, const Element& element) {
    if (slot || seen_invalid(cc, element.name)) {
        return;
    }
    std::optional<int64_t> value;
    if (element.has_value && !element.malformed) {
        value = parse_delta_seconds(element.value);
    }
    if (value) {
        slot = value;
    } else {
        note_invalid(cc, element.name);
    }
}

// no-cache and private: unqualified, or qualified with field names. A qualified form
// whose list names no field is taken as the unqualified one, the stricter reading.
void set_qualified(bool& flag, std::vector<std::string>& fields, const Element& element) {
    std::vector<std::string> names;
    if (element.has_value && !element.malformed) {
        names = field_names(element.value);
    }
    if (names.empty()) {
        flag = true;
        return;
    }
    for (std::string& name : names) {
        if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
            fields.push_back(std::move(name));
        }
    }
}

// The directives without an argument (one given anyway is ignored) and those with a
// delta-seconds argument; no-cache, private and max-stale have forms of their own.
struct FlagDirective {
    std::string_view name;
    bool CacheControl::*flag;
};
constexpr FlagDirective k_flags[] = {
    {"no-store", &CacheControl::no_store},
    {"must-revalidate", &CacheControl::must_revalidate},
    {"proxy-revalidate", &CacheControl::proxy_revalidate},
    {"public", &CacheControl::is_public},
    {"immutable", &CacheControl::immutable},
    {"must-understand", &CacheControl::must_understand},
    {"no-transform", &CacheControl::no_transform},
    {"only-if-cached", &CacheControl::only_if_cached},
};
struct DeltaDirective {
    std::string_view name;
    std::optional<int64_t> CacheControl::*slot;
};
constexpr DeltaDirective k_deltas[] = {
    {"max-age", &CacheControl::max_age},
    {"s-maxage", &CacheControl::s_maxage},
    {"min-fresh", &CacheControl::min_fresh},
    {"stale-while-revalidate", &CacheControl::stale_while_revalidate},
    {"stale-if-error", &CacheControl::stale_if_error},
};

void apply(CacheControl& cc, const Element& element) {
    std::string_view name = element.name;
    for (const FlagDirective& directive : k_flags) {
        if (iequals(name, directive.name)) {
            cc.*directive.flag = true;
            return;
        }
    }
    for (const DeltaDirective& directive : k_deltas) {
        if (iequals(name, directive.name)) {
            set_delta(cc, cc.*directive.slot, element);
            return;
        }
    }
    if (iequals(name, "max-stale")) {
        if (element.has_value || element.malformed) {
            set_delta(cc, cc.max_stale, element);
        } else {
            cc.max_stale_any = true;
        }
    } else if (iequals(name, "no-cache")) {
        set_qualified(cc.no_cache, cc.no_cache_fields, element);
    } else if (iequals(name, "private")) {
        set_qualified(cc.is_private, cc.private_fields, element);
    }
}

void parse_into(CacheControl& cc, std::string_view value) {
    cc.present = true;
    size_t at = 0;
    while (at < value.size()) {
        while (at < value.size() && (is_ows(value[at]) || value[at] == ',')) {
            ++at;
        }
        if (at < value.size()) {
            apply(cc, next_element(value, at));
        }
    }
}

// Feeds one header line to the Cache-Control being built; remembers a Pragma: no-cache.
void read_line(CacheControl& cc, bool& pragma, std::string_view line) {
    std::string_view name, value;
    if (!easy::split_header(line, name, value)) {
        return;
    }
    if (iequals(name, "cache-control")) {
        parse_into(cc, value);
    } else if (iequals(name, "pragma")) {
        pragma = pragma || list_has(value, "no-cache");
    }
}

} // namespace

std::vector<std::string> list_tokens(std::string_view value) {
    std::vector<std::string> items;
    for_each_list_item(value, [&items](std::string_view item) {
        items.push_back(lower(item));
        return false;
    });
    return items;
}

bool list_has(std::string_view value, std::string_view token) {
    return for_each_list_item(value,
                              [token](std::string_view item) { return iequals(item, token); });
}

std::optional<int64_t> parse_delta_seconds(std::string_view text) {
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        text = text.substr(1, text.size() - 2);
    }
    if (text.empty()) {
        return std::nullopt;
    }
    int64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        // Saturate instead of overflowing: every digit string is still checked.
        value = value >= k_delta_seconds_max ? k_delta_seconds_max : value * 10 + (c - '0');
    }
    return std::min(value, k_delta_seconds_max);
}

CacheControl response_cache_control(std::string_view block) {
    CacheControl cc;
    bool pragma = false;
    size_t at = 0;
    while (at < block.size()) {
        size_t end = block.find('\n', at);
        end = end == std::string_view::npos ? block.size() : end + 1;
        read_line(cc, pragma, block.substr(at, end - at));
        at = end;
    }
    if (!cc.present && pragma) {
        cc.no_cache = true;
    }
    return cc;
}

CacheControl request_cache_control(const std::vector<std::string>& lines) {
    CacheControl cc;
    bool pragma = false;
    for (const std::string& line : lines) {
        read_line(cc, pragma, line);
    }
    if (!cc.present && pragma) {
        cc.no_cache = true;
    }
    return cc;
}

} // namespace curlcache::core::http
