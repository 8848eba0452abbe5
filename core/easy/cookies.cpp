// Feeding replayed Set-Cookie headers to libcurl's cookie engine.
#include "core/easy/cookies.h"

#include "core/easy/http_text.h"

#include <cctype>
#include <charconv>
#include <ctime>

namespace curlcache::core::easy {

namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// Host (lower case, no port, no userinfo) and path (no query) of a URL.
void split_url(std::string_view url, std::string& host, std::string& path) {
    size_t scheme = url.find("://");
    size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
    size_t end = url.find_first_of("/?#", start);
    std::string_view authority =
        url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
        authority.remove_prefix(at + 1);
    }
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        authority = authority.substr(0, close == std::string_view::npos ? close : close + 1);
    } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        authority = authority.substr(0, colon);
    }
    host = lower(authority);
    path = "/";
    if (end != std::string_view::npos && url[end] == '/') {
        std::string_view rest = url.substr(end);
        path = std::string(rest.substr(0, rest.find_first_of("?#")));
    }
}

bool is_ip_address(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        return true;
    }
    for (char c : host) {
        if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') {
            return false;
        }
    }
    return !host.empty();
}

} // namespace

std::string resolve_location(std::string_view base, std::string_view location) {
    if (location.find("://") != std::string_view::npos) {
        return std::string(location);
    }
    size_t scheme = base.find("://");
    size_t path = base.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
    std::string origin(base.substr(0, path));
    if (!location.empty() && location.front() == '/') {
        return origin + std::string(location);
    }
    std::string_view dir = base.substr(0, base.find_first_of("?#"));
    size_t slash = dir.rfind('/');
    if (path == std::string_view::npos || slash < path) {
        return origin + "/" + std::string(location);
    }
    return std::string(dir.substr(0, slash + 1)) + std::string(location);
}

std::optional<std::string> cookie_file_line(std::string_view set_cookie, std::string_view url,
                                            int64_t now) {
    std::string host, request_path;
    split_url(url, host, request_path);
    std::string_view rest = set_cookie;
    size_t semicolon = rest.find(';');
    std::string_view pair = trim(rest.substr(0, semicolon));
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)).empty()) {
        return std::nullopt;
    }
    std::string_view name = trim(pair.substr(0, eq));
    std::string_view value = trim(pair.substr(eq + 1));

    std::string domain = host;
    bool tailmatch = false;
    std::optional<std::string> path;
    int64_t expires = 0;
    std::optional<int64_t> max_age;
    bool secure = false, http_only = false;
    while (semicolon != std::string_view::npos) {
        rest.remove_prefix(semicolon + 1);
        semicolon = rest.find(';');
        std::string_view attribute = trim(rest.substr(0, semicolon));
        size_t equals = attribute.find('=');
        std::string key = lower(trim(attribute.substr(0, equals)));
        std::string_view arg = equals == std::string_view::npos
                                   ? std::string_view()
                                   : trim(attribute.substr(equals + 1));
        if (key == "domain" && !arg.empty()) {
            std::string wanted = lower(arg.front() == '.' ? arg.substr(1) : arg);
            bool matches = host == wanted ||
                           (!is_ip_address(host) && host.size() > wanted.size() &&
                            host.compare(host.size() - wanted.size(), wanted.size(), wanted) == 0 &&
                            host[host.size() - wanted.size() - 1] == '.');
            if (!matches) {
                return std::nullopt; // libcurl refuses a cookie for another domain
            }
            domain = wanted;
            tailmatch = true;
        } else if (key == "path" && !arg.empty() && arg.front() == '/') {
            path = std::string(arg);
        } else if (key == "expires") {
            expires = parse_http_date(arg).value_or(0);
        } else if (key == "max-age") {
            int64_t seconds = 0;
            auto [end, error] = std::from_chars(arg.data(), arg.data() + arg.size(), seconds);
            if (error == std::errc() && end == arg.data() + arg.size()) {
                max_age = seconds;
            }
        } else if (key == "secure") {
            secure = true;
        } else if (key == "httponly") {
            http_only = true;
        }
    }
    if (max_age) {
        expires = *max_age <= 0 ? 1 : now + *max_age; // 1: expired, libcurl drops it
    }
    if (!path) { // the request path's directory, slash included (libcurl's default)
        size_t slash = request_path.rfind('/');
        path = request_path.substr(0, slash == std::string::npos ? 1 : slash + 1);
    }
    std::string line;
    if (http_only) {
        line += "#HttpOnly_";
    }
    line += (tailmatch ? "." : "") + domain;
    line += tailmatch ? "\tTRUE\t" : "\tFALSE\t";
    line += *path;
    line += secure ? "\tTRUE\t" : "\tFALSE\t";
    line += std::to_string(expires);
    line += "\t";
    line += name;
    line += "\t";
    line += value;
    return line;
}

void feed_cookies(const CurlApi& api, CURL* handle, const Options& options, const Replay& replay) {
    // libcurl (7.88) takes Set-Cookie only when the handle's own cookie engine is on, which
    // COOKIEFILE, COOKIEJAR and COOKIELIST do. A SHARE with CURL_LOCK_DATA_COOKIE lends its
    // jar but does not turn the engine on: a handle with only the share drops the cookies
    // of a real response, so a replayed one must drop them too. Feeding them here would add
    // them to the shared jar, or, without a cookie share, start a private engine that sends
    // them on the handle's next requests.
    if (!options.cookie_engine) {
        return;
    }
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    std::string url = replay.request_url;
    for (size_t i = 0; i < replay.blocks.size(); ++i) {
        if (i > 0) {
            if (auto location = header_value(replay.blocks[i - 1], "Location")) {
                url = resolve_location(url, *location);
            }
        }
        for (std::string_view line : lines_of(replay.blocks[i])) {
            std::string_view name, value;
            if (split_header(line, name, value) && iequals(name, "Set-Cookie")) {
                if (auto cookie = cookie_file_line(value, url, now)) {
                    api.easy_setopt(handle, CURLOPT_COOKIELIST, cookie->c_str());
                }
            }
        }
    }
}

} // namespace curlcache::core::easy
