// Invalidation (RFC 9111 §4.4): unsafe methods, and the URLs a response to one removes.
//
// Location and Content-Location are resolved with RFC 3986 §5.2 (a small resolver: the
// engine's URL normaliser in core/key.cpp canonicalises absolute URLs for keys but does not
// resolve references). Only targets with the request's origin are returned, so a response
// cannot evict another site's entries (§4.4: "MUST NOT ... if the host ... differs").
#include "core/http/invalidation.h"

#include "core/easy/http_text.h"

#include <algorithm>
#include <optional>

namespace curlcache::core::http {

namespace {

using easy::iequals;

// A URI reference cut as RFC 3986 appendix B does; the fragment is dropped.
struct Reference {
    std::optional<std::string_view> scheme, authority, query;
    std::string_view path;
};

bool scheme_char(char c, bool first) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return alpha || (!first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
}

Reference cut(std::string_view text) {
    Reference ref;
    text = text.substr(0, text.find('#'));
    size_t colon = text.find(':');
    if (colon != std::string_view::npos && colon > 0 &&
        colon < text.find_first_of("/?")) { // a ':' after '/' or '?' is part of the path
        bool valid = true;
        for (size_t i = 0; i < colon && valid; ++i) {
            valid = scheme_char(text[i], i == 0);
        }
        if (valid) {
            ref.scheme = text.substr(0, colon);
            text.remove_prefix(colon + 1);
        }
    }
    if (text.substr(0, 2) == "//") {
        size_t end = text.find_first_of("/?", 2);
        ref.authority = text.substr(2, end == std::string_view::npos ? end : end - 2);
        text.remove_prefix(2 + ref.authority->size());
    }
    size_t question = text.find('?');
    ref.path = text.substr(0, question);
    if (question != std::string_view::npos) {
        ref.query = text.substr(question + 1);
    }
    return ref;
}

// RFC 3986 §5.2.4, with the output buffer of the RFC's own description.
std::string remove_dots(std::string_view in) {
    std::string out;
    while (!in.empty()) {
        if (in.substr(0, 3) == "../") {
            in.remove_prefix(3);
        } else if (in.substr(0, 2) == "./") {
            in.remove_prefix(2);
        } else if (in.substr(0, 3) == "/./") {
            in.remove_prefix(2);
        } else if (in == "/.") {
            in = "/";
        } else if (in.substr(0, 4) == "/../" || in == "/..") {
            in = in.size() == 3 ? std::string_view("/") : in.substr(3);
            size_t last = out.rfind('/');
            out.erase(last == std::string::npos ? 0 : last);
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            size_t next = in.find('/', 1);
            std::string_view segment = in.substr(0, next);
            out.append(segment);
            in.remove_prefix(segment.size());
        }
    }
    return out;
}

// RFC 3986 §5.2.2 (strict: a reference with a scheme is absolute).
std::string resolve(const Reference& base, const Reference& ref) {
    std::string_view scheme = ref.scheme ? *ref.scheme : base.scheme.value_or("http");
    std::optional<std::string_view> authority;
    std::optional<std::string_view> query = ref.query;
    std::string path;
    if (ref.scheme || ref.authority) {
        authority = ref.authority;
        path = remove_dots(ref.path);
    } else {
        authority = base.authority;
        if (ref.path.empty()) {
            path = std::string(base.path);
            query = ref.query ? ref.query : base.query;
        } else if (ref.path.front() == '/') {
            path = remove_dots(ref.path);
        } else {
            // Merge: the base path up to its last '/', or "/" when the base has an
            // authority and an empty path.
            std::string merged;
            size_t slash = base.path.rfind('/');
            if (base.authority && base.path.empty()) {
                merged = "/";
            } else if (slash != std::string_view::npos) {
                merged = std::string(base.path.substr(0, slash + 1));
            }
            merged.append(ref.path);
            path = remove_dots(merged);
        }
    }
    std::string out(scheme);
    out += ':';
    if (authority) {
        out.append("//").append(*authority);
    }
    out.append(path);
    if (query) {
        out.append("?").append(*query);
    }
    return out;
}

// Scheme, host and port, compared case-insensitively with default ports filled in.
struct Origin {
    std::string_view scheme, host, port;
};

Origin origin_of(const Reference& ref) {
    Origin origin;
    origin.scheme = ref.scheme.value_or("");
    std::string_view authority = ref.authority.value_or("");
    if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
        authority.remove_prefix(at + 1);
    }
    size_t bracket = authority.rfind(']');
    size_t colon = authority.find(':', bracket == std::string_view::npos ? 0 : bracket);
    origin.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
        origin.port = authority.substr(colon + 1);
        while (origin.port.size() > 1 && origin.port.front() == '0') {
            origin.port.remove_prefix(1);
        }
    }
    if (origin.port.empty()) {
        origin.port = iequals(origin.scheme, "https")  ? "443"
                      : iequals(origin.scheme, "http") ? "80"
                                                       : "";
    }
    return origin;
}

bool same_origin(const Reference& a, const Reference& b) {
    Origin x = origin_of(a);
    Origin y = origin_of(b);
    return a.authority && b.authority && iequals(x.scheme, y.scheme) && iequals(x.host, y.host) &&
           x.port == y.port;
}

} // namespace

bool is_unsafe(std::string_view method) {
    return method != "GET" && method != "HEAD" && method != "OPTIONS" && method != "TRACE";
}

bool invalidates(std::string_view method, long status) {
    return is_unsafe(method) && status >= 200 && status < 400;
}

std::vector<std::string> invalidation_targets(std::string_view request_url,
                                              std::string_view final_block) {
    std::string_view request = easy::trim(request_url);
    request = request.substr(0, request.find('#'));
    std::vector<std::string> targets{std::string(request)};
    // A URL without a scheme is http, as libcurl guesses ("example.com/a").
    std::string with_scheme;
    Reference base = cut(request);
    if (request.find("://") == std::string_view::npos) {
        with_scheme = "http://" + std::string(request);
        base = cut(with_scheme);
    }
    for (std::string_view field : {"location", "content-location"}) {
        std::optional<std::string_view> value = easy::header_value(final_block, field);
        if (!value) {
            continue;
        }
        std::string target = resolve(base, cut(*value));
        if (same_origin(base, cut(target)) &&
            std::find(targets.begin(), targets.end(), target) == targets.end()) {
            targets.push_back(std::move(target));
        }
    }
    return targets;
}

} // namespace curlcache::core::http
