// Freshness, age, storability and reuse (RFC 9111 §3, §4.2, §4.2.4; RFC 5861).
//
// All arithmetic saturates: a hostile Age, Date or Expires can move a response towards
// stale, never wrap it around to fresh.
#include "core/http/freshness.h"

#include "core/easy/http_text.h"
#include "core/http/validation.h"

#include <algorithm>
#include <limits>

namespace curlcache::core::http {

namespace {

using easy::iequals;

constexpr int64_t k_int64_max = std::numeric_limits<int64_t>::max();
constexpr int64_t k_int64_min = std::numeric_limits<int64_t>::min();

int64_t add(int64_t a, int64_t b) {
    int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) {
        return b > 0 ? k_int64_max : k_int64_min;
    }
    return sum;
}

int64_t sub(int64_t a, int64_t b) {
    int64_t difference = 0;
    if (__builtin_sub_overflow(a, b, &difference)) {
        return b < 0 ? k_int64_max : k_int64_min;
    }
    return difference;
}

int64_t clamp_delta(int64_t seconds) {
    return std::clamp<int64_t>(seconds, 0, k_delta_seconds_max);
}

// The fields analyse() and storable() read from a header block, found in one pass. The
// first line of a name counts (RFC 9111 §4.2.1: "the first occurrence should be used").
struct Fields {
    std::optional<std::string_view> date, expires, last_modified, age;
    bool vary_star = false;
};

Fields read_fields(std::string_view block) {
    Fields fields;
    for (std::string_view line : easy::lines_of(block)) {
        std::string_view name, value;
        if (!easy::split_header(line, name, value)) {
            continue;
        }
        auto first = [&](std::optional<std::string_view>& slot, std::string_view wanted) {
            if (!slot && iequals(name, wanted)) {
                slot = value;
            }
        };
        first(fields.date, "date");
        first(fields.expires, "expires");
        first(fields.last_modified, "last-modified");
        first(fields.age, "age");
        if (iequals(name, "vary")) {
            fields.vary_star = fields.vary_star || list_has(value, "*");
        }
    }
    return fields;
}

// Age (RFC 9111 §5.1): the first value of the first line; a value that is not
// delta-seconds ("abc", "-1", "1.5") is ignored.
int64_t age_value(std::optional<std::string_view> field) {
    if (!field) {
        return 0;
    }
    std::string_view first = easy::trim(field->substr(0, field->find(',')));
    if (first.empty() || first.front() == '"') {
        return 0;
    }
    return parse_delta_seconds(first).value_or(0);
}

// Was the directive present with a value that could not be read?
bool invalid(const CacheControl& cc, std::string_view name) {
    return std::find(cc.invalid.begin(), cc.invalid.end(), name) != cc.invalid.end();
}

// The explicit lifetime (§4.2.1), when the response has one. A max-age or s-maxage whose
// value could not be read counts as an explicit lifetime of 0.
std::optional<int64_t> explicit_lifetime(const CacheControl& cc, const Fields& fields, int64_t date,
                                         int64_t response_time, CacheType type) {
    if (type == CacheType::shared_cache) {
        if (cc.s_maxage) {
            return *cc.s_maxage;
        }
        if (invalid(cc, "s-maxage")) {
            return 0;
        }
    }
    if (cc.max_age) {
        return *cc.max_age;
    }
    if (invalid(cc, "max-age")) {
        return 0;
    }
    if (fields.expires) {
        // §5.3: an invalid Expires ("0" among others) is a time in the past.
        std::optional<int64_t> expires = parse_http_date_strict(*fields.expires, response_time);
        return expires ? clamp_delta(sub(*expires, date)) : 0;
    }
    return std::nullopt;
}

// Statuses whose caching requirements this cache knows (RFC 9110 §15), for
// must-understand (RFC 9111 §5.2.2.3).
bool understood(long status) {
    return (status >= 200 && status <= 206) || (status >= 300 && status <= 308 && status != 306) ||
           (status >= 400 && status <= 417) || status == 421 || status == 422 || status == 426 ||
           (status >= 500 && status <= 505);
}

} // namespace

int64_t Freshness::current_age(int64_t now) const {
    return add(corrected_initial_age, sub(now, response_time));
}

int64_t Freshness::stale_at() const {
    if (source == LifetimeSource::forever) {
        return k_int64_max;
    }
    return sub(add(response_time, lifetime), corrected_initial_age);
}

bool heuristically_cacheable(long status) {
    switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return true;
    default:
        return false;
    }
}

Freshness analyse(long status, std::string_view block, const CacheControl& cc, int64_t request_time,
                  int64_t response_time, const FreshnessRules& rules) {
    Fields fields = read_fields(block);
    Freshness f;
    f.request_time = request_time;
    f.response_time = response_time;

    // §4.2.3: an absent or unreadable Date is the time the response arrived.
    int64_t date = response_time;
    if (fields.date) {
        date = parse_http_date_strict(*fields.date, response_time).value_or(response_time);
    }
    int64_t apparent_age = clamp_delta(sub(response_time, date));
    int64_t response_delay = clamp_delta(sub(response_time, request_time));
    int64_t corrected_age = clamp_delta(add(age_value(fields.age), response_delay));
    f.corrected_initial_age = std::max(apparent_age, corrected_age);

    if (auto lifetime = explicit_lifetime(cc, fields, date, response_time, rules.type)) {
        f.lifetime = clamp_delta(*lifetime);
        f.source = LifetimeSource::explicit_;
    } else if (rules.configured_lifetime == FreshnessRules::k_forever) {
        f.source = LifetimeSource::forever;
    } else if (rules.configured_lifetime >= 0) {
        f.lifetime = clamp_delta(rules.configured_lifetime);
        f.source = LifetimeSource::configured;
    } else if ((heuristically_cacheable(status) || cc.is_public) && fields.last_modified) {
        // §4.2.2: only without explicit freshness, for heuristically cacheable statuses or
        // responses marked public; a fraction of the time since Last-Modified.
        auto modified = parse_http_date_strict(*fields.last_modified, response_time);
        if (modified && *modified < date) {
            double heuristic = static_cast<double>(sub(date, *modified)) * rules.heuristic_fraction;
            double cap = static_cast<double>(clamp_delta(rules.heuristic_max));
            // NaN (a NaN fraction) fails every comparison and becomes 0.
            f.lifetime = heuristic > 0 ? static_cast<int64_t>(std::min(heuristic, cap)) : 0;
            f.source = LifetimeSource::heuristic;
        }
    }

    // A qualified no-cache="Field" forbids serving that field without revalidation; this
    // cache replays header blocks whole, so it revalidates exactly as for the plain form.
    f.no_cache = cc.no_cache || !cc.no_cache_fields.empty();
    bool shared = rules.type == CacheType::shared_cache;
    f.must_revalidate = cc.must_revalidate || (shared && (cc.proxy_revalidate || cc.s_maxage));
    f.immutable = cc.immutable;
    f.stale_while_revalidate = cc.stale_while_revalidate.value_or(0);
    f.stale_if_error = cc.stale_if_error.value_or(0);
    return f;
}

const char* describe(Storable why) {
    switch (why) {
    case Storable::ok:
        return "storable";
    case Storable::no_store:
        return "no-store";
    case Storable::is_private:
        return "private response in a shared cache";
    case Storable::authorization:
        return "response to an authorized request in a shared cache";
    case Storable::status:
        return "status not cacheable without explicit freshness";
    case Storable::must_understand:
        return "must-understand with a status this cache does not know";
    case Storable::partial:
        return "partial content";
    case Storable::vary_star:
        return "Vary: *";
    }
    return "unknown";
}

Storable storable(const StoreQuestion& q) {
    static const CacheControl k_none;
    const CacheControl& response = q.response_cc ? *q.response_cc : k_none;
    const CacheControl& request = q.request_cc ? *q.request_cc : k_none;
    bool shared = q.type == CacheType::shared_cache;
    // §3: a final response; a 304 only updates what is stored (§4.3.4).
    if (q.status < 200 || q.status > 999 || q.status == 304) {
        return Storable::status;
    }
    if (request.no_store) {
        return Storable::no_store;
    }
    // §5.2.2.3: must-understand replaces no-store for a cache that knows the status.
    if (response.must_understand) {
        if (!understood(q.status)) {
            return Storable::must_understand;
        }
    } else if (response.no_store) {
        return Storable::no_store;
    }
    // §5.2.2.7: a shared cache stores neither private nor (as this cache replays whole
    // header blocks) a response with private fields.
    if (shared && (response.is_private || !response.private_fields.empty())) {
        return Storable::is_private;
    }
    // §3.5
    if (shared && q.request_has_authorization && !response.is_public && !response.s_maxage &&
        !response.must_revalidate) {
        return Storable::authorization;
    }
    Fields fields = read_fields(q.block);
    if (q.status == 206) { // (a 200 that carries Content-Range is a whole response)
        return Storable::partial;
    }
    if (fields.vary_star) {
        return Storable::vary_star;
    }
    // §3: explicit freshness, public, private (in a private cache) or a heuristically
    // cacheable status. An Expires counts even when invalid (it is then already stale).
    bool explicit_freshness = response.max_age || invalid(response, "max-age") || fields.expires ||
                              (shared && response.s_maxage);
    bool allowed = explicit_freshness || response.is_public || heuristically_cacheable(q.status) ||
                   (!shared && (response.is_private || !response.private_fields.empty()));
    return allowed ? Storable::ok : Storable::status;
}

UseAnswer usable(const Freshness& stored, const CacheControl& request_cc, int64_t now) {
    if (stored.no_cache) {
        return {Use::revalidate, "no-cache"};
    }
    if (request_cc.no_cache) {
        return {Use::revalidate, "request no-cache"};
    }
    if (request_cc.max_age) {
        if (*request_cc.max_age == 0) {
            return {Use::revalidate, "request max-age=0"};
        }
        if (stored.current_age(now) > *request_cc.max_age) {
            return {Use::revalidate, "request max-age"};
        }
    }
    int64_t stale_at = stored.stale_at();
    if (now < stale_at) {
        if (request_cc.min_fresh && add(now, *request_cc.min_fresh) > stale_at) {
            return {Use::revalidate, "request min-fresh"};
        }
        return {Use::fresh, "fresh"};
    }
    if (stored.must_revalidate) {
        return {Use::revalidate, "must-revalidate"};
    }
    if (request_cc.max_stale_any) {
        return {Use::stale_ok, "request max-stale"};
    }
    if (request_cc.max_stale && sub(now, stale_at) <= *request_cc.max_stale) {
        return {Use::stale_ok, "request max-stale"};
    }
    return {Use::revalidate, "stale"};
}

bool serve_stale_while_revalidate(const Freshness& stored, const CacheControl& request_cc,
                                  int64_t now) {
    if (stored.no_cache || stored.must_revalidate || request_cc.no_cache || request_cc.max_age ||
        request_cc.min_fresh || stored.stale_while_revalidate <= 0) {
        return false;
    }
    int64_t stale_at = stored.stale_at();
    return now >= stale_at && sub(now, stale_at) <= stored.stale_while_revalidate;
}

bool serve_stale_on_error(const Freshness& stored, const CacheControl& request_cc,
                          int64_t configured_window, int64_t now) {
    if (stored.no_cache || stored.must_revalidate ||
        (request_cc.no_cache && !request_cc.stale_if_error)) {
        return false;
    }
    // Any of the three windows is a permission: the origin's, the client's, the user's.
    int64_t window =
        std::max({stored.stale_if_error, request_cc.stale_if_error.value_or(0), configured_window});
    return window > 0 && sub(now, stored.stale_at()) <= window;
}

} // namespace curlcache::core::http
