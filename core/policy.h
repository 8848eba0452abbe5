// What may be served, fetched and stored: the settings' mode, methods, codes, sizes and
// per-URL rules, and the HTTP caching rules of core/http/ applied to a response.
//
// By default the origin's headers decide (RFC 9111): what may be stored (http::storable),
// how long it stays fresh (http::analyse), with expire_after / urls_expire_after standing
// in for the heuristic on responses without explicit freshness. With `hermetic` the config
// alone decides, as for a "cache everything" tool: every allowed response is stored (only
// no-store is honoured: an origin that says so usually means it) and its lifetime comes
// from the first matching urls_expire_after rule, else expire_after.
#pragma once

#include "config/settings.h"
#include "core/entry.h"
#include "core/http/cache_control.h"
#include "core/http/freshness.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace curlcache::core::policy {

enum class Verdict {
    ok,
    disabled,  // mode off or disable=true: the cache does not touch anything
    mode,      // the mode forbids it (readonly never stores; refresh never serves)
    method,    // not in allowable_methods
    status,    // not in allowable_codes
    too_large, // the body exceeds max_entry_size
    no_store,  // the response says Cache-Control: no-store
    url_rule,  // a urls_expire_after rule says do-not-cache
    http,      // the HTTP caching rules forbid it (see the http::Storable beside it)
};

// What the request said that decides whether its response may be stored.
struct StoreRequest {
    const http::CacheControl* cache_control = nullptr; // the request's, nullptr = none
    bool authorization = false;                        // it carried credentials
};

// A short phrase for messages ("method not allowed").
const char* describe(Verdict verdict);

// May a request with this method and URL be looked up or stored at all? (mode off,
// disable, method, do-not-cache rule.) The URL may be raw or normalised.
Verdict request(const config::Settings& settings, std::string_view method, std::string_view url);

// May the cache answer from a stored entry? False in refresh mode.
bool may_serve(const config::Settings& settings);

// May a stale entry be served (offline mode: anything stored beats the network)?
bool serve_stale(const config::Settings& settings);

// May the network be used? False in offline mode.
bool may_fetch(const config::Settings& settings);

// May this response be stored? Checks the request verdict, the mode (readonly), the
// status, the body size and Cache-Control: no-store in the last header block. The body
// size is entry.body's, or body_size for a body that went into a BodySink.
Verdict store(const config::Settings& settings, const Entry& entry);
Verdict store(const config::Settings& settings, const Entry& entry, uint64_t body_size,
              const StoreRequest& request = {}, http::Storable* why = nullptr);

// The freshness rules for a response to `url` under these settings.
http::FreshnessRules freshness_rules(const config::Settings& settings, std::string_view url);

// Decides entry.freshness and entry.expires for the final response in entry.header_blocks,
// requested at entry.freshness.request_time and received at entry.freshness.response_time
// (both set by the caller; 0 = entry.created). Hermetic: the configured lifetime.
void stamp_freshness(const config::Settings& settings, Entry& entry);

// Unix time at which an entry stored `now` for `url` expires under the configured lifetime
// alone (hermetic); 0 = never.
int64_t expires_at(const config::Settings& settings, std::string_view url, int64_t now);

// Shell-style glob: '*' any run of characters (including '/'), '?' any one character.
// Case-sensitive. Used for urls_expire_after and for deleting by URL glob.
bool glob_match(std::string_view pattern, std::string_view text);

// "host/path" and, when the URL has an explicit port, "host:port/path": what
// urls_expire_after patterns are matched against (either may match).
bool url_rule_matches(std::string_view pattern, std::string_view url);

// True when a raw header block (status line and header lines) contains a Cache-Control
// header with the no-store directive.
bool has_no_store(std::string_view header_block);

} // namespace curlcache::core::policy
