// Policy decisions; see policy.h for when the origin's headers decide and when the config.
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

http::CacheType http_type(const config::Settings& settings) {
    return settings.cache_type == config::CacheType::shared_cache ? http::CacheType::shared_cache
                                                                  : http::CacheType::private_cache;
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
    case Verdict::http:
        return "the response may not be stored by HTTP's rules";
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
    for (std::string_view line : easy::lines_of(block)) {
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

Verdict store(const config::Settings& settings, const Entry& entry, uint64_t body_size,
              const StoreRequest& request, http::Storable* why) {
    if (Verdict v = policy::request(settings, entry.method, entry.url); v != Verdict::ok) {
        return v;
    }
    if (settings.mode == config::Mode::readonly) {
        return Verdict::mode;
    }
    const bool codes_listed =
        std::find(settings.allowable_codes.begin(), settings.allowable_codes.end(), entry.status) !=
        settings.allowable_codes.end();
    if (settings.hermetic && !codes_listed) {
        return Verdict::status;
    }
    if (!settings.hermetic && !codes_listed && settings.origins.contains("allowable_codes")) {
        return Verdict::status; // the user narrowed what the RFC allows
    }
    if (body_size > settings.max_entry_size) {
        return Verdict::too_large;
    }
    const std::string_view block =
        entry.header_blocks.empty() ? std::string_view() : entry.header_blocks.back().view();
    if (settings.hermetic) {
        return has_no_store(block) ? Verdict::no_store : Verdict::ok;
    }
    const http::CacheControl cc = http::response_cache_control(block);
    http::StoreQuestion question;
    question.status = entry.status;
    question.block = block;
    question.response_cc = &cc;
    question.request_cc = request.cache_control;
    question.request_has_authorization = request.authorization;
    question.type = http_type(settings);
    const http::Storable storable = http::storable(question);
    if (why != nullptr) {
        *why = storable;
    }
    if (storable == http::Storable::no_store) {
        return Verdict::no_store;
    }
    return storable == http::Storable::ok ? Verdict::ok : Verdict::http;
}

http::FreshnessRules freshness_rules(const config::Settings& settings, std::string_view url) {
    http::FreshnessRules rules;
    rules.type = http_type(settings);
    rules.heuristic_fraction = static_cast<double>(settings.heuristic_percent) / 100.0;
    rules.heuristic_max =
        settings.heuristic_max_age < 0 ? http::k_delta_seconds_max : settings.heuristic_max_age;
    int64_t after = settings.expire_after;
    if (const config::UrlRule* rule = matching_rule(settings, url)) {
        after = rule->expire_after;
    }
    if (after == config::Settings::k_auto) {
        rules.configured_lifetime = http::FreshnessRules::k_unset;
    } else if (after < 0) {
        rules.configured_lifetime = http::FreshnessRules::k_forever;
    } else {
        rules.configured_lifetime = after;
    }
    return rules;
}

void stamp_freshness(const config::Settings& settings, Entry& entry) {
    http::Freshness& f = entry.freshness;
    if (f.response_time == 0) {
        f.response_time = entry.created;
    }
    if (f.request_time == 0 || f.request_time > f.response_time) {
        f.request_time = f.response_time;
    }
    if (settings.hermetic || entry.header_blocks.empty()) {
        const int64_t expires = expires_at(settings, entry.url, f.response_time);
        f.corrected_initial_age = 0;
        f.source = expires == 0 ? http::LifetimeSource::forever : http::LifetimeSource::configured;
        f.lifetime = expires == 0 ? 0 : expires - f.response_time;
        entry.expires = expires;
        return;
    }
    const std::string_view block = entry.header_blocks.back();
    const http::CacheControl cc = http::response_cache_control(block);
    f = http::analyse(entry.status, block, cc, f.request_time, f.response_time,
                      freshness_rules(settings, entry.url));
    if (f.source == http::LifetimeSource::forever) {
        entry.expires = 0;
    } else if (f.no_cache) {
        entry.expires = 1; // stale from the start: revalidated on every use
    } else {
        entry.expires = std::max<int64_t>(1, f.stale_at());
    }
}

int64_t expires_at(const config::Settings& settings, std::string_view url, int64_t now) {
    int64_t after = settings.expire_after;
    if (const config::UrlRule* rule = matching_rule(settings, url)) {
        after = rule->expire_after;
    }
    if (after < 0) { // never, and auto (when hermetic: never)
        return 0;
    }
    // expire_after = 0 gives expires == now: stale at once (revalidated every time).
    return now + after;
}

} // namespace curlcache::core::policy
