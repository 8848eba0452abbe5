// HTTP header text helpers.
#include "core/easy/http_text.h"

#include <charconv>
#include <cstring>
#include <ctime>
#include <utility>

namespace curlcache::core::easy {

std::vector<std::string_view> split_lines(std::string_view block) {
    std::vector<std::string_view> lines;
    for (std::string_view line : lines_of(block)) {
        lines.push_back(line);
    }
    return lines;
}

std::optional<long> status_code(std::string_view line) {
    if (line.size() < 8 || line.substr(0, 5) != "HTTP/") {
        return std::nullopt;
    }
    size_t space = line.find(' ');
    if (space == std::string_view::npos) {
        return std::nullopt;
    }
    long code = 0;
    const char* begin = line.data() + space + 1;
    auto [end, error] = std::from_chars(begin, line.data() + line.size(), code);
    if (error != std::errc() || end - begin != 3) {
        return std::nullopt;
    }
    return code;
}

std::string_view status_protocol(std::string_view line) {
    size_t space = line.find(' ');
    return space == std::string_view::npos ? std::string_view("HTTP/1.1") : line.substr(0, space);
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                             text.back() == '\n')) {
        text.remove_suffix(1);
    }
    return text;
}

bool split_header(std::string_view line, std::string_view& name, std::string_view& value) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line.substr(0, 5) == "HTTP/") {
        return false;
    }
    name = line.substr(0, colon);
    value = trim(line.substr(colon + 1));
    return true;
}

std::optional<std::string_view> header_value(std::string_view block, std::string_view name) {
    for (std::string_view line : lines_of(block)) {
        std::string_view key, value;
        if (split_header(line, key, value) && iequals(key, name)) {
            return value;
        }
    }
    return std::nullopt;
}

std::optional<int64_t> parse_http_date(std::string_view text) {
    std::string copy(trim(text));
    static const char* const k_formats[] = {"%a, %d %b %Y %H:%M:%S GMT",
                                            "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"};
    for (const char* format : k_formats) {
        struct tm tm {};
        const char* end = strptime(copy.c_str(), format, &tm);
        if (end != nullptr && *end == '\0') {
            return static_cast<int64_t>(timegm(&tm));
        }
    }
    return std::nullopt;
}

namespace {

std::string_view opaque_tag(std::string_view tag) {
    tag = trim(tag);
    if (tag.substr(0, 2) == "W/") {
        tag.remove_prefix(2);
    }
    return tag;
}

} // namespace

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
    if (etag.empty()) {
        return false;
    }
    if (trim(if_none_match) == "*") {
        return true;
    }
    std::string_view wanted = opaque_tag(etag);
    size_t start = 0;
    while (start <= if_none_match.size()) {
        size_t comma = if_none_match.find(',', start);
        size_t end = comma == std::string_view::npos ? if_none_match.size() : comma;
        if (opaque_tag(if_none_match.substr(start, end - start)) == wanted) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    return false;
}

namespace {

// [begin, end) of the userinfo of a URL (before the last '@' of the authority), or npos.
std::pair<size_t, size_t> userinfo_span(std::string_view url) {
    size_t scheme = url.find("://");
    if (scheme == std::string_view::npos) {
        return {std::string_view::npos, 0};
    }
    size_t begin = scheme + 3;
    size_t end = url.find_first_of("/?#", begin);
    std::string_view authority =
        url.substr(begin, end == std::string_view::npos ? end : end - begin);
    size_t at = authority.rfind('@');
    if (at == std::string_view::npos) {
        return {std::string_view::npos, 0};
    }
    return {begin, begin + at};
}

} // namespace

std::string_view url_userinfo(std::string_view url) {
    auto [begin, end] = userinfo_span(url);
    return begin == std::string_view::npos ? std::string_view() : url.substr(begin, end - begin);
}

std::string without_userinfo(std::string_view url) {
    auto [begin, end] = userinfo_span(url);
    if (begin == std::string_view::npos) {
        return std::string(url);
    }
    std::string out(url.substr(0, begin));
    out.append(url.substr(end + 1));
    return out;
}

std::string with_userinfo(std::string_view url, std::string_view userinfo) {
    size_t scheme = url.find("://");
    if (userinfo.empty() || scheme == std::string_view::npos) {
        return std::string(url);
    }
    std::string out(url.substr(0, scheme + 3));
    out.append(userinfo).append("@").append(url.substr(scheme + 3));
    return out;
}

namespace {

std::optional<uint64_t> number(std::string_view text) {
    text = trim(text);
    uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

} // namespace

std::optional<ByteRange> parse_range(std::string_view range, uint64_t size) {
    range = trim(range);
    if (range.find(',') != std::string_view::npos || size == 0) {
        return std::nullopt;
    }
    size_t dash = range.find('-');
    if (dash == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view from = range.substr(0, dash);
    std::string_view to = range.substr(dash + 1);
    ByteRange result;
    if (trim(from).empty()) { // "-N": the last N bytes
        auto count = number(to);
        if (!count || *count == 0) {
            return std::nullopt;
        }
        result.first = *count >= size ? 0 : size - *count;
        result.last = size - 1;
        return result;
    }
    auto first = number(from);
    if (!first || *first >= size) {
        return std::nullopt;
    }
    result.first = *first;
    if (trim(to).empty()) {
        result.last = size - 1;
    } else {
        auto last = number(to);
        if (!last || *last < *first) {
            return std::nullopt;
        }
        result.last = *last >= size ? size - 1 : *last;
    }
    return result;
}

} // namespace curlcache::core::easy
