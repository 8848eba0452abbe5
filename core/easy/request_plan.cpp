// Request building and the pass-through decision.
#include "core/easy/request_plan.h"

#include "core/easy/http_text.h"
#include "core/key.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace curlcache::core::easy {

namespace {

// The size of the URL's scheme when it is http (4) or https (5) in any case, else 0. The
// URL's first "://" ends its scheme, so these are the URLs that begin with one of them.
size_t http_scheme_size(std::string_view url) {
    auto is = [&](size_t at, char lower) { return (url[at] | 0x20) == lower; };
    if (url.size() < 7 || !is(0, 'h') || !is(1, 't') || !is(2, 't') || !is(3, 'p')) {
        return 0;
    }
    const size_t size = is(4, 's') ? 5 : 4;
    return url.substr(size, 3) == "://" ? size : 0;
}

} // namespace

bool is_http_url(std::string_view url) {
    return http_scheme_size(url) != 0;
}

namespace {

bool has_header(const curl_slist* list, std::string_view name) {
    for (; list != nullptr; list = list->next) {
        std::string_view line = list->data ? list->data : "";
        if (line.size() > name.size() && iequals(line.substr(0, name.size()), name) &&
            (line[name.size()] == ':' || line[name.size()] == ';')) {
            return true;
        }
    }
    return false;
}

void add_credential(std::string& credentials, std::string_view label, std::string_view value) {
    credentials.append(label);
    credentials.push_back('=');
    credentials.append(value);
    credentials.push_back('\n');
}

std::string join_list(const curl_slist* list) {
    std::string joined;
    for (; list != nullptr; list = list->next) {
        joined.append(list->data ? list->data : "");
        joined.push_back('\n');
    }
    return joined;
}

// CURLOPT_HTTP_VERSION as far as it changes the response (`tls`: an https URL): libcurl 7.88's
// default is 2TLS, which on http:// means HTTP/1.1 and on https:// means HTTP/2 when the
// server offers it (as 2_0 does there); those choices share entries, so that a response
// recorded by the curl CLI (which always sets the version) serves pycurl or an imported
// HAR and back. nullptr = the default.
const char* http_version_key(long version, bool tls) {
    switch (version) {
    case CURL_HTTP_VERSION_NONE:
    case CURL_HTTP_VERSION_2TLS:
        return nullptr;
    case CURL_HTTP_VERSION_1_1:
        return tls ? "1.1" : nullptr;
    case CURL_HTTP_VERSION_2_0:
        return tls ? nullptr : "2-upgrade";
    case CURL_HTTP_VERSION_1_0:
        return "1.0";
    case CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE:
        return "2-prior-knowledge";
    case CURL_HTTP_VERSION_3:
        return "3";
    default:
        return "3-only"; // CURL_HTTP_VERSION_3ONLY and anything newer: kept apart
    }
}

const char* method_name(const Options& o) {
    if (o.nobody) {
        return "HEAD";
    }
    switch (o.method) {
    case MethodKind::post:
    case MethodKind::post_form:
    case MethodKind::post_mime:
        return "POST";
    case MethodKind::put:
        return "PUT";
    case MethodKind::head:
        return "HEAD";
    case MethodKind::get:
        break;
    }
    return "GET";
}

// Sorts the header lines of HTTPHEADER into key headers, credentials and conditions.
// Returns a pass-through reason for headers the cache cannot answer.
const char* read_headers(const Options& o, Plan& plan) {
    std::vector<std::string> cache_lines;
    for (const curl_slist* item = o.httpheader; item != nullptr; item = item->next) {
        std::string_view line = item->data ? item->data : "";
        std::string_view name, value;
        if (!split_header(line, name, value)) {
            plan.request.headers.emplace_back(line); // "Name;" (empty) and odd lines
            continue;
        }
        if (iequals(name, "If-None-Match")) {
            plan.if_none_match = std::string(value);
        } else if (iequals(name, "If-Modified-Since")) {
            auto when = parse_http_date(value);
            if (!when) {
                return "unparsable If-Modified-Since";
            }
            plan.if_modified_since = *when;
        } else if (iequals(name, "Range")) {
            // One byte range, as CURLOPT_RANGE would ask it: answered with a 206 from a
            // complete stored body (the way range readers such as GDAL ask).
            if (!value.starts_with("bytes=") || value.find(',') != std::string_view::npos) {
                return "a Range header that is not one byte range";
            }
            plan.range = std::string(trim(value.substr(6)));
        } else if (iequals(name, "If-Match") || iequals(name, "If-Unmodified-Since") ||
                   iequals(name, "If-Range")) {
            return "conditional header";
        } else if (iequals(name, "Authorization") || iequals(name, "Cookie") ||
                   iequals(name, "Proxy-Authorization")) {
            add_credential(plan.request.credentials, name, value);
            plan.authorization |= iequals(name, "Authorization");
        } else if (iequals(name, "Accept") || iequals(name, "Accept-Encoding") ||
                   iequals(name, "Accept-Language") || iequals(name, "Host")) {
            // Content negotiation changes the bytes the program receives (a raw gzip body,
            // JSON instead of HTML), and Host picks another site on the same address:
            // always part of the key, whatever match_headers says.
            std::string option = "header:";
            for (char c : name) {
                option.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
            }
            plan.request.options.emplace_back(std::move(option), std::string(value));
            plan.request.headers.emplace_back(line);
        } else {
            if (iequals(name, "Cache-Control") || iequals(name, "Pragma")) {
                cache_lines.emplace_back(line);
            }
            plan.request.headers.emplace_back(line);
        }
    }
    if (!cache_lines.empty()) {
        plan.cache_control = http::request_cache_control(cache_lines);
    }
    return nullptr;
}

} // namespace

const UrlParts& remembered_url_parts(UrlMemo& memo, std::string_view url,
                                     const config::Settings& settings) {
    if (!memo.valid || memo.url != url || memo.sort_query != settings.sort_query ||
        memo.ignored_parameters != settings.ignored_parameters) {
        memo.valid = false; // until it holds all of the new URL's parts
        memo.parts = url_parts(url, settings);
        memo.url.assign(url);
        memo.ignored_parameters = settings.ignored_parameters;
        memo.sort_query = settings.sort_query;
        memo.valid = true;
    }
    return memo.parts;
}

std::string transfer_method(const Options& o) {
    if (o.custom_request) {
        return *o.custom_request;
    }
    if (o.upload && !o.nobody) {
        return "PUT";
    }
    return method_name(o);
}

Plan plan_transfer(const Options& o, const config::Settings& settings, UrlMemo* memo) {
    Plan plan;
    if (o.unknown) {
        plan.passthrough = "an option could not be recorded";
        return plan;
    }
    if (o.has_curlu) {
        plan.passthrough = "URL set as CURLU";
        return plan;
    }
    if (!o.url || o.url->empty()) {
        plan.passthrough = "no URL";
        return plan;
    }
    const size_t scheme = http_scheme_size(*o.url);
    if (scheme == 0) {
        plan.passthrough = "not HTTP(S)";
        return plan;
    }
    if (o.connect_only != 0) {
        plan.passthrough = "CONNECT_ONLY";
        return plan;
    }
    if (o.upload || o.method == MethodKind::put || o.method == MethodKind::post_form ||
        o.method == MethodKind::post_mime) {
        plan.passthrough = "upload";
        return plan;
    }
    if (o.method == MethodKind::post && !o.nobody && o.postfields == nullptr) {
        plan.passthrough = "POST body from a read callback";
        return plan;
    }
    if (o.maxfilesize > 0) {
        plan.passthrough = "MAXFILESIZE";
        return plan;
    }
    if (o.timecondition == CURL_TIMECOND_IFMODSINCE) {
        plan.if_modified_since = o.timevalue;
        plan.timecondition = true;
    } else if (o.timecondition != CURL_TIMECOND_NONE) {
        plan.passthrough = "TIMECONDITION";
        return plan;
    }

    Request& request = plan.request;
    if (o.custom_request) {
        request.method = *o.custom_request;
    } else {
        request.method.assign(method_name(o)); // in the string's own bytes (no temporary)
    }
    const std::string_view method = request.method;
    const auto& allowed = settings.allowable_methods;
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const std::string& name) { return name == method; })) {
        plan.passthrough = "method not allowed";
        return plan;
    }
    if (memo != nullptr) {
        request.url = std::move(memo->plan_url); // its room; see UrlMemo::plan_url
    }
    request.url.assign(*o.url);
    if (const char* reason = read_headers(o, plan)) {
        plan.passthrough = reason;
        return plan;
    }
    if (o.user_agent && !has_header(o.httpheader, "User-Agent")) {
        request.headers.push_back("User-Agent: " + *o.user_agent);
    }
    if (o.referer && !has_header(o.httpheader, "Referer")) {
        request.headers.push_back("Referer: " + *o.referer);
    }
    if (o.method == MethodKind::post && !o.nobody && o.postfields != nullptr) {
        size_t size =
            o.postfieldsize < 0 ? std::strlen(o.postfields) : static_cast<size_t>(o.postfieldsize);
        request.body.assign(o.postfields, size);
    }

    auto& options = request.options;
    if (o.nobody) {
        options.emplace_back("nobody", "1");
    }
    if (o.followlocation) {
        options.emplace_back("follow_location", "1");
        options.emplace_back("max_redirs", std::to_string(o.maxredirs));
        if (o.postredir != 0) {
            options.emplace_back("post_redir", std::to_string(o.postredir));
        }
    }
    if (o.accept_encoding) {
        options.emplace_back("accept_encoding", *o.accept_encoding);
    }
    if (!o.content_decoding) {
        options.emplace_back("content_decoding", "0");
    }
    if (!o.transfer_decoding) {
        options.emplace_back("transfer_decoding", "0");
    }
    const bool tls = scheme == 5; // https
    if (const char* version = http_version_key(o.http_version, tls)) {
        options.emplace_back("http_version", version);
    }
    if (o.port != 0) {
        options.emplace_back("port", std::to_string(o.port));
    }
    if (o.request_target) {
        options.emplace_back("request_target", *o.request_target);
    }
    if (o.unix_socket_path) {
        options.emplace_back("unix_socket_path", *o.unix_socket_path);
    }
    if (o.resolve != nullptr) {
        options.emplace_back("resolve", join_list(o.resolve));
    }
    if (o.connect_to != nullptr) {
        options.emplace_back("connect_to", join_list(o.connect_to));
    }

    std::string& credentials = request.credentials;
    std::string computed;
    std::string_view user;
    if (memo != nullptr) {
        plan.url_parts = &remembered_url_parts(*memo, *o.url, settings);
        user = plan.url_parts->userinfo;
    } else {
        computed = url_credentials(*o.url);
        user = computed;
    }
    if (!user.empty()) {
        add_credential(credentials, "url", user);
        plan.authorization = true;
    }
    if (o.userpwd) {
        add_credential(credentials, "userpwd", *o.userpwd);
    }
    if (o.username || o.password) {
        add_credential(credentials, "user",
                       o.username.value_or("") + ":" + o.password.value_or(""));
    }
    if (o.bearer) {
        add_credential(credentials, "bearer", *o.bearer);
    }
    if (o.aws_sigv4) {
        add_credential(credentials, "aws_sigv4", *o.aws_sigv4);
    }
    if (o.cookie) {
        add_credential(credentials, "cookie", *o.cookie);
    }
    plan.authorization |= o.userpwd || o.username || o.password || o.bearer || o.aws_sigv4;
    if (!credentials.empty()) {
        add_credential(credentials, "httpauth", std::to_string(o.httpauth));
    }

    if (o.range) {
        plan.range = *o.range;
    } else if (o.resume_from > 0) {
        plan.range = std::to_string(o.resume_from) + "-";
    } else if (o.resume_from < 0) {
        plan.passthrough = "negative RESUME_FROM";
    }
    return plan;
}

} // namespace curlcache::core::easy
