// Freshness and age (RFC 9111 §4.2, RFC 5861), decided once when a response is stored so
// that a hit only compares the clock with one number (Freshness::stale_at).
#pragma once

#include "core/http/cache_control.h"

#include <cstdint>
#include <string_view>

namespace curlcache::core::http {

// private: one user's cache (a browser's); shared: a cache many users read (a proxy, a
// Redis fleet). They differ in s-maxage, proxy-revalidate, private and Authorization.
enum class CacheType { private_cache, shared_cache };

// What the configuration says about freshness.
struct FreshnessRules {
    CacheType type = CacheType::private_cache;
    // Heuristic lifetime for responses with Last-Modified and no explicit lifetime: this
    // fraction of (Date - Last-Modified), at most heuristic_max seconds.
    double heuristic_fraction = 0.1;
    int64_t heuristic_max = 86400;
    // The user's lifetime for responses without explicit freshness (expire_after or a
    // matching urls_expire_after rule), used instead of the heuristic: seconds, or
    // k_forever (never stale), or k_unset (the heuristic applies).
    int64_t configured_lifetime = k_unset;
    static constexpr int64_t k_unset = -2;
    static constexpr int64_t k_forever = -1;
};

// Where a stored response's freshness lifetime came from.
enum class LifetimeSource : uint8_t {
    none,       // no explicit lifetime, no heuristic: stale at once (revalidated)
    explicit_,  // s-maxage (shared), max-age, or Expires - Date
    heuristic,  // a fraction of the time since Last-Modified
    configured, // expire_after / urls_expire_after
    forever,    // configured never to expire
};

// Everything a later request needs to judge a stored response, computed at store time.
struct Freshness {
    int64_t request_time = 0;          // when the request was sent (unix seconds)
    int64_t response_time = 0;         // when the response arrived
    int64_t corrected_initial_age = 0; // RFC 9111 §4.2.3
    int64_t lifetime = 0;              // freshness lifetime in seconds (>= 0)
    LifetimeSource source = LifetimeSource::none;
    bool no_cache = false;         // no-cache: revalidate on every use (also the qualified
                                   // no-cache="F": header blocks are replayed whole)
    bool must_revalidate = false;  // must-revalidate (and proxy-revalidate / s-maxage when
                                   // shared): never served stale, not even by max-stale
    bool immutable = false;
    int64_t stale_while_revalidate = 0; // seconds past staleness it may still be served
    int64_t stale_if_error = 0;         // seconds past staleness it may serve on errors

    // Age at `now` (RFC 9111 §4.2.3): corrected_initial_age + (now - response_time).
    int64_t current_age(int64_t now) const;
    // The first second at which the response is stale: response_time + lifetime -
    // corrected_initial_age (INT64_MAX when forever). A hit is fresh while now < stale_at.
    int64_t stale_at() const;
    bool fresh(int64_t now) const { return !no_cache && now < stale_at(); }
};

// The freshness of a response (status, its final header block) requested at request_time
// and received at response_time, under `rules`. `Expires` that does not parse, and an
// absent Date, are handled as the RFC says (invalid Expires = already expired; a missing
// Date is taken as response_time). A max-age (or, in a shared cache, s-maxage) listed in
// cc.invalid is an explicit lifetime of 0 (RFC 9111 §4.2.1: invalid freshness is stale).
// Dates are read strictly (RFC 9110 §5.6.7's three forms, names in any case).
Freshness analyse(long status, std::string_view block, const CacheControl& cc,
                  int64_t request_time, int64_t response_time, const FreshnessRules& rules);

// Is the status one the RFC lets a cache store with a heuristic lifetime (200, 203, 204,
// 206, 300, 301, 308, 404, 405, 410, 414, 501)?
bool heuristically_cacheable(long status);

// Why a response may not be stored, or ok (RFC 9111 §3, §3.5).
enum class Storable {
    ok,
    no_store,       // no-store in the request or the response
    is_private,     // private, and the cache is shared
    authorization,  // the request had Authorization, a shared cache, and the response
                    // allows it with neither public, s-maxage nor must-revalidate
    status,         // not a final status, or not understood/cacheable without freshness
    must_understand,// must-understand with a status this cache does not know
    partial,        // 206 / Content-Range: stored only as a whole body (see README)
    vary_star,      // Vary: * never matches a later request
};
const char* describe(Storable why);

struct StoreQuestion {
    long status = 0;
    std::string_view block;          // the final response's header block
    const CacheControl* response_cc = nullptr;
    const CacheControl* request_cc = nullptr; // nullptr = the request had none
    bool request_has_authorization = false;
    CacheType type = CacheType::private_cache;
};
Storable storable(const StoreQuestion& q);

// May a stored response be used for a request without contacting the origin?
enum class Use {
    fresh,        // fresh, and the request's max-age / min-fresh allow it
    stale_ok,     // stale, but the request's max-stale allows it (and nothing forbids)
    revalidate,   // must be validated with the origin first (stale, no-cache, request
                  // no-cache or max-age=0, ...)
};
struct UseAnswer {
    Use use = Use::revalidate;
    const char* reason = ""; // "max-age", "no-cache", "request max-age=0", ...: for logs
};
UseAnswer usable(const Freshness& stored, const CacheControl& request_cc, int64_t now);

// May a stale response be served at once while it is revalidated in the background
// (RFC 5861 §3)? True when it is stale by no more than its stale-while-revalidate seconds,
// and neither the response (no-cache, must-revalidate) nor the request (no-cache, max-age,
// min-fresh: the client asked for a fresher answer) forbids serving it stale.
bool serve_stale_while_revalidate(const Freshness& stored, const CacheControl& request_cc,
                                  int64_t now);

// May a stale response be served because the origin failed (5xx or no answer), under
// the response's stale-if-error, the request's, or the configured default window
// (seconds, 0 = none)? Never when no_cache or must_revalidate.
bool serve_stale_on_error(const Freshness& stored, const CacheControl& request_cc,
                          int64_t configured_window, int64_t now);

} // namespace curlcache::core::http
