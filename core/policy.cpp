// Policy decisions; see policy.h for why freshness comes from the config.
#include "core/policy.h"

#include "core/easy/http_text.h"

#include <algorithm>

namespace curlcache::core::policy {

namespace {

bool disabled(const config::Settings& settings) {
    return settings.disable || settings.mode == config::Mode::off;
}

// The first urls_expire_after rule matching `url`, or nullptr.
const config::UrlRule* matching_rule(const config::Settings& settings, std::string_view url) {
    for (const config::UrlRule& rule : settings.urls_expire_after) {
        if (url_rule_matches(rule.pattern, url)) {
            return &rule;
        }
    }
    return nullptr;
}

} // namespace

const char* describe(Verdict verdict) {
    switch (verdict) {
    case Verdict::ok:
        return "cacheable";
    case Verdict::disabled:
        return "the cache is off";
    case Verdict::mode:
        return "the cache mode does not allow it";
    case Verdict::method:
        return "the method is not in allowable_methods";
    case Verdict::status:
        return "the status is not in allowable_codes";
    case Verdict::too_large:
        return "the body exceeds max_entry_size";
    case Verdict::no_store:
        return "the response says Cache-Control: no-store";
    case Verdict::url_rule:
        return "a urls_expire_after rule says do-not-cache";
    }
    return "unknown verdict";
}

bool glob_match(std::string_view pattern, std::string_view text) {
    // Iterative matcher with one backtrack point: linear in practice, no recursion.
    size_t p = 0, t = 0;
    size_t star = std::string_view::npos, resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

bool url_rule_matches(std::string_view pattern, std::string_view url) {
    size_t scheme = url.find("://");
    if (scheme != std::string_view::npos) {
        url.remove_prefix(scheme + 3);
    }
    url = url.substr(0, url.find_first_of("?#"));
    if (size_t at = url.substr(0, url.find('/')).rfind('@'); at != std::string_view::npos) {
        url.remove_prefix(at + 1);
    }
    std::string_view authority = url.substr(0, url.find('/'));
    std::string_view path = url.substr(authority.size());
    std::string with_port = std::string(authority) + std::string(path.empty() ? "/" : path);
    if (glob_match(pattern, with_port)) {
        return true;
    }
    size_t colon = authority.rfind(':');
    size_t bracket = authority.rfind(']');
    if (colon == std::string_view::npos || (bracket != std::string_view::npos && bracket > colon)) {
        return false;
    }
    std::string host_only =
        std::string(authority.substr(0, colon)) + std::string(path.empty() ? "/" : path);
    return glob_match(pattern, host_only);
}

bool has_no_store(std::string_view block) {
    for (std::string_view line : easy::split_lines(block)) {
        std::string_view name, value;
        if (!easy::split_header(line, name, value) || !easy::iequals(name, "cache-control")) {
            continue;
        }
        size_t from = 0;
        while (from <= value.size()) {
            size_t comma = std::min(value.find(',', from), value.size());
            if (easy::iequals(easy::trim(value.substr(from, comma - from)), "no-store")) {
                return true;
            }
            from = comma + 1;
        }
    }
    return false;
}

Verdict request(const config::Settings& settings, std::string_view method, std::string_view url) {
    if (disabled(settings)) {
        return Verdict::disabled;
    }
    bool allowed = std::any_of(settings.allowable_methods.begin(), settings.allowable_methods.end(),
                               [&](const std::string& m) { return easy::iequals(m, method); });
    if (!allowed) {
        return Verdict::method;
    }
    if (const config::UrlRule* rule = matching_rule(settings, url); rule && !rule->cache) {
        return Verdict::url_rule;
    }
    return Verdict::ok;
}

bool may_serve(const config::Settings& settings) {
    return !disabled(settings) && settings.mode != config::Mode::refresh;
}

bool serve_stale(const config::Settings& settings) {
    return settings.mode == config::Mode::offline;
}

bool may_fetch(const config::Settings& settings) {
    return settings.mode != config::Mode::offline;
}

Verdict store(const config::Settings& settings, const Entry& entry) {
    return store(settings, entry, entry.body.size());
}

Verdict store(const config::Settings& settings, const Entry& entry, uint64_t body_size) {
    if (Verdict v = request(settings, entry.method, entry.url); v != Verdict::ok) {
        return v;
    }
    if (settings.mode == config::Mode::readonly) {
        return Verdict::mode;
    }
    if (std::find(settings.allowable_codes.begin(), settings.allowable_codes.end(), entry.status) ==
        settings.allowable_codes.end()) {
        return Verdict::status;
    }
    if (body_size > settings.max_entry_size) {
        return Verdict::too_large;
    }
    if (!entry.header_blocks.empty() && has_no_store(entry.header_blocks.back())) {
        return Verdict::no_store;
    }
    return Verdict::ok;
}

int64_t expires_at(const config::Settings& settings, std::string_view url, int64_t now) {
    int64_t after = settings.expire_after;
    if (const config::UrlRule* rule = matching_rule(settings, url)) {
        after = rule->expire_after;
    }
    if (after < 0) {
        return 0;
    }
    // expire_after = 0 gives expires == now: stale at once (revalidated every time).
    return now + after;
}

} // namespace curlcache::core::policy
