// Invalidation after an unsafe method (RFC 9111 §4.4). The cache's keys are digests of the
// whole request, so "the stored responses for a URL" are found the way a later request
// would look for them: a GET and a HEAD with this handle's other options (headers,
// redirects, encodings, credentials). Responses stored under other options are not found
// and expire by their own freshness (README, "How curlcache decides freshness").
#include "core/easy/cache_access.h"
#include "core/easy/engine_internal.h"
#include "core/http/invalidation.h"
#include "core/log.h"

#include <string>

namespace curlcache::core::easy {

namespace {

// The final response's Location and Content-Location as a header block for
// http::invalidation_targets (the real handle's header store has them).
std::string location_block(const CurlApi& api, CURL* handle, long code) {
    std::string block = "HTTP/1.1 " + std::to_string(code) + "\r\n";
    if (api.easy_header != nullptr) {
        for (const char* name : {"Location", "Content-Location"}) {
            struct curl_header* header = nullptr;
            if (api.easy_header(handle, name, 0, CURLH_HEADER, -1, &header) == CURLHE_OK &&
                header != nullptr && header->value != nullptr) {
                block.append(name).append(": ").append(header->value).append("\r\n");
            }
        }
    }
    return block + "\r\n";
}

// Removes what a GET (or HEAD) of `url` with these options would find; true if it existed.
bool remove_stored(Cache& cache, const Options& options, const std::string& url, bool head) {
    Options probe = options;
    probe.url = url;
    probe.method = MethodKind::get;
    probe.custom_request.reset();
    probe.upload = false;
    probe.nobody = head;
    probe.postfields = nullptr;
    Plan plan = plan_transfer(probe, cache.settings());
    if (plan.passthrough != nullptr) {
        return false;
    }
    auto removed = cache.remove(cache.key(plan.request));
    return removed && *removed;
}

} // namespace

void invalidate_after(const CurlApi& api, CURL* handle, const HandleState& state, CURLcode result) {
    Cache* cache = process_cache();
    if (result != CURLE_OK || cache == nullptr || !state.options.url) {
        return;
    }
    try {
        long code = 0;
        api.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
        const std::string method = transfer_method(state.options);
        if (!http::invalidates(method, code)) {
            return;
        }
        int removed = 0;
        for (const std::string& url :
             http::invalidation_targets(*state.options.url, location_block(api, handle, code))) {
            removed += remove_stored(*cache, state.options, url, false) ? 1 : 0;
            removed += remove_stored(*cache, state.options, url, true) ? 1 : 0;
        }
        CURLCACHE_LOG(info, "PASS method %s (invalidated %d) %s", method.c_str(), removed,
                      redact_url(*state.options.url, cache->settings()).c_str());
    } catch (const std::exception& error) {
        log::warn_once("invalidate", "cannot invalidate after %s: %s", "an unsafe method",
                       error.what());
    } catch (...) {
    }
}

} // namespace curlcache::core::easy
