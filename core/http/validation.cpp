// Validation (RFC 9111 §4.3): conditional request lines, which stored response a 304
// selects, the header update a 304 brings (RFC 9111 §3.2), and the HTTP-date reader that
// validators and freshness share.
#include "core/http/validation.h"

#include "core/easy/http_text.h"
#include "core/http/cache_control.h"

#include <algorithm>
#include <array>
#include <ctime>

namespace curlcache::core::http {

namespace {

using easy::iequals;

// Fields a 304 never changes in the stored response (RFC 9111 §3.2 and the hop-by-hop
// fields of RFC 9110 §7.6.1): they describe the stored body or the connection. The
// Proxy-* authentication fields belong to the hop to the proxy too (RFC 9111 §3.1).
constexpr std::array<std::string_view, 14> k_kept_fields = {"content-length",
                                                            "content-encoding",
                                                            "content-range",
                                                            "content-type",
                                                            "transfer-encoding",
                                                            "trailer",
                                                            "connection",
                                                            "keep-alive",
                                                            "proxy-connection",
                                                            "te",
                                                            "upgrade",
                                                            "proxy-authenticate",
                                                            "proxy-authorization",
                                                            "proxy-authentication-info"};

bool kept(std::string_view name) {
    return std::any_of(k_kept_fields.begin(), k_kept_fields.end(),
                       [name](std::string_view field) { return iequals(field, name); });
}

// A value usable on a request line of its own: no line breaks smuggled in.
bool single_line(std::string_view value) {
    return !value.empty() && value.find_first_of("\r\n") == std::string_view::npos;
}

bool is_weak(std::string_view etag) {
    return etag.substr(0, 2) == "W/";
}

std::string_view opaque(std::string_view etag) {
    return is_weak(etag) ? etag.substr(2) : etag;
}

// A field line of the 304 that updates the stored block.
struct Update {
    std::string_view name, value;
    std::string_view raw; // the 304's line as the origin sent it, without its line ending
};

std::vector<Update> updates_of(std::string_view not_modified_block) {
    std::string_view connection = easy::header_value(not_modified_block, "connection").value_or("");
    std::vector<Update> updates;
    for (std::string_view line : easy::lines_of(not_modified_block)) {
        Update update;
        if (line.empty() || line.front() == ' ' || line.front() == '\t' ||
            !easy::split_header(line, update.name, update.value)) {
            continue;
        }
        update.name = easy::trim(update.name);
        update.raw = line.substr(0, line.find_last_not_of("\r\n") + 1);
        if (!update.name.empty() && !kept(update.name) && !list_has(connection, update.name)) {
            updates.push_back(update);
        }
    }
    return updates;
}

bool bare_newlines(std::string_view block) {
    size_t newline = block.find('\n');
    return newline != std::string_view::npos && (newline == 0 || block[newline - 1] != '\r');
}

// HTTP-date names. easy::parse_http_date (strptime) is not used for dates that decide
// freshness: it also takes what RFC 9111 §5.3 says is invalid and therefore in the past (a
// one-digit hour, doubled spaces, a two-digit year in the IMF form), and reads an RFC 850
// "50" as 1950.
constexpr std::string_view k_day_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::string_view k_long_day_names[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                 "Friday", "Saturday", "Sunday"};
constexpr std::string_view k_month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

template <size_t N> bool one_of(std::string_view name, const std::string_view (&names)[N]) {
    return std::any_of(std::begin(names), std::end(names),
                       [name](std::string_view known) { return iequals(name, known); });
}

int month_number(std::string_view name) {
    for (int i = 0; i < 12; ++i) {
        if (iequals(name, k_month_names[i])) {
            return i + 1;
        }
    }
    return 0;
}

// `count` digits at `at` (a leading space instead of the first digit when `space_ok`).
std::optional<int> digits(std::string_view text, size_t at, size_t count, bool space_ok = false) {
    if (at + count > text.size()) {
        return std::nullopt;
    }
    int value = 0;
    for (size_t i = at; i < at + count; ++i) {
        char c = text[i];
        if (c == ' ' && space_ok && i == at) {
            continue;
        }
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        value = value * 10 + (c - '0');
    }
    return value;
}

// The year of a unix time (UTC), for placing two-digit years.
std::optional<int64_t> year_of(int64_t unix_seconds) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm {};
    if (gmtime_r(&t, &tm) == nullptr) {
        return std::nullopt;
    }
    return int64_t{tm.tm_year} + 1900;
}

// "HH:MM:SS" at `at`, then the date, as unix seconds; nullopt when a field is out of range.
std::optional<int64_t> timestamp(std::string_view text, size_t at, int64_t year, int month,
                                 std::optional<int> day) {
    auto hour = digits(text, at, 2);
    auto minute = digits(text, at + 3, 2);
    auto second = digits(text, at + 6, 2);
    if (!hour || !minute || !second || !day || text[at + 2] != ':' || text[at + 5] != ':' ||
        month == 0 || *day < 1 || *hour > 23 || *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    static constexpr int k_days_in_month[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (*day > k_days_in_month[month - 1] || (month == 2 && *day == 29 && !leap)) {
        return std::nullopt;
    }
    struct tm tm {};
    tm.tm_year = static_cast<int>(year - 1900);
    tm.tm_mon = month - 1;
    tm.tm_mday = *day;
    tm.tm_hour = *hour;
    tm.tm_min = *minute;
    tm.tm_sec = *second;
    return static_cast<int64_t>(timegm(&tm));
}

} // namespace

std::optional<int64_t> parse_http_date_strict(std::string_view text, int64_t now) {
    text = easy::trim(text);
    size_t comma = text.find(',');
    if (comma == std::string_view::npos) {
        // asctime: "Sun Nov  6 08:49:37 1994"
        auto year = digits(text, 20, 4);
        if (text.size() != 24 || !one_of(text.substr(0, 3), k_day_names) || text[3] != ' ' ||
            text[7] != ' ' || text[10] != ' ' || text[19] != ' ' || !year) {
            return std::nullopt;
        }
        return timestamp(text, 11, *year, month_number(text.substr(4, 3)),
                         digits(text, 8, 2, true));
    }
    std::string_view day_name = text.substr(0, comma);
    std::string_view rest = text.substr(comma);
    if (rest.size() == 26 && one_of(day_name, k_day_names)) {
        // IMF-fixdate: ", 06 Nov 1994 08:49:37 GMT"
        auto year = digits(rest, 9, 4);
        if (rest[1] != ' ' || rest[4] != ' ' || rest[8] != ' ' || rest[13] != ' ' ||
            rest[22] != ' ' || !iequals(rest.substr(23), "GMT") || !year) {
            return std::nullopt;
        }
        return timestamp(rest, 14, *year, month_number(rest.substr(5, 3)), digits(rest, 2, 2));
    }
    if (rest.size() == 24 && one_of(day_name, k_long_day_names)) {
        // rfc850-date: ", 06-Nov-94 08:49:37 GMT"
        auto two_digit_year = digits(rest, 9, 2);
        if (rest[1] != ' ' || rest[4] != '-' || rest[8] != '-' || rest[11] != ' ' ||
            rest[20] != ' ' || !iequals(rest.substr(21), "GMT") || !two_digit_year) {
            return std::nullopt;
        }
        std::optional<int64_t> this_year = year_of(now);
        if (!this_year) {
            return std::nullopt;
        }
        int64_t year = *this_year - *this_year % 100 + *two_digit_year;
        year -= year > *this_year + 50 ? 100 : 0;
        return timestamp(rest, 12, year, month_number(rest.substr(5, 3)), digits(rest, 2, 2));
    }
    return std::nullopt;
}

std::vector<std::string> conditional_lines(std::string_view etag, std::string_view last_modified) {
    std::vector<std::string> lines;
    etag = easy::trim(etag);
    last_modified = easy::trim(last_modified);
    if (single_line(etag)) {
        lines.push_back("If-None-Match: " + std::string(etag));
    }
    if (single_line(last_modified)) {
        lines.push_back("If-Modified-Since: " + std::string(last_modified));
    }
    return lines;
}

bool selects(std::string_view not_modified_block, std::string_view stored_etag,
             std::string_view stored_last_modified) {
    stored_etag = easy::trim(stored_etag);
    stored_last_modified = easy::trim(stored_last_modified);
    if (auto etag = easy::header_value(not_modified_block, "etag")) {
        if (is_weak(*etag)) {
            // Weak comparison: the opaque tags are equal, either may be weak.
            return !stored_etag.empty() && opaque(*etag) == opaque(stored_etag);
        }
        // Strong comparison: both strong and equal.
        return !is_weak(stored_etag) && *etag == stored_etag;
    }
    if (auto modified = easy::header_value(not_modified_block, "last-modified")) {
        if (*modified == stored_last_modified) {
            return true;
        }
        auto when = parse_http_date_strict(*modified, 0);
        return when && when == parse_http_date_strict(stored_last_modified, 0);
    }
    // No validator: the 304 answers the conditional request made for this response.
    return true;
}

std::string merge_not_modified(std::string_view stored_block, std::string_view not_modified_block) {
    std::vector<Update> updates = updates_of(not_modified_block);
    const char* eol = bare_newlines(stored_block) ? "\n" : "\r\n";
    std::vector<bool> written(updates.size(), false);
    std::string out;
    out.reserve(stored_block.size() + not_modified_block.size());

    // Writes every 304 line named `name` (all of them, at the first stored line of that name).
    auto write_updates = [&](std::string_view name) {
        for (size_t i = 0; i < updates.size(); ++i) {
            if (!written[i] && (name.empty() || iequals(updates[i].name, name))) {
                written[i] = true;
                // The line's own bytes (a value's trailing space included): what the origin
                // would send in a 200 now.
                out.append(updates[i].raw).append(eol);
            }
        }
    };
    auto updated = [&](std::string_view name) {
        return std::any_of(updates.begin(), updates.end(),
                           [name](const Update& u) { return iequals(u.name, name); });
    };

    bool dropping = false; // inside a replaced field, so its continuation lines go too
    bool ended = false;
    bool first = true;
    for (std::string_view line : easy::lines_of(stored_block)) {
        if (first) { // the status line is kept
            first = false;
            out.append(line);
            continue;
        }
        if (easy::trim(line).empty()) {
            write_updates({});
            out.append(line);
            ended = true;
            break;
        }
        if (line.front() == ' ' || line.front() == '\t') {
            if (!dropping) {
                out.append(line);
            }
            continue;
        }
        std::string_view name, value;
        dropping = easy::split_header(line, name, value) && updated(easy::trim(name));
        if (dropping) {
            write_updates(easy::trim(name));
        } else {
            out.append(line);
        }
    }
    if (!ended) { // a block without its blank line: finish it
        if (!out.empty() && out.back() != '\n') {
            out.append(eol);
        }
        write_updates({});
        out.append(eol);
    }
    return out;
}

std::string with_age(std::string_view block, int64_t age) {
    std::string line = "Age: " + std::to_string(std::max<int64_t>(age, 0));
    std::string update_block = "HTTP/1.1 304 Not Modified\r\n" + line + "\r\n\r\n";
    return merge_not_modified(block, update_block);
}

} // namespace curlcache::core::http
