// The engine's entry points: handle lifecycle, setopt recording, and the decision that
// starts every transfer (pass through, hit, or miss).
#include "core/easy/engine.h"

#include "core/coalesce.h"
#include "core/easy/cache_access.h"
#include "core/easy/engine_internal.h"
#include "core/http/invalidation.h"
#include "core/log.h"
#include "core/policy.h"

#include <ctime>

namespace curlcache::core::easy {

namespace {

// Options the engine itself sets on the real handle while a miss is in progress: a program
// that sets them during the transfer (from a callback) gets them applied at its end.
bool swapped_during_miss(CURLoption option) {
    return option == CURLOPT_WRITEFUNCTION || option == CURLOPT_WRITEDATA ||
           option == CURLOPT_HEADERFUNCTION || option == CURLOPT_HEADERDATA ||
           option == CURLOPT_HTTPHEADER;
}

CURLcode forward_setopt(const CurlApi& api, CURL* handle, CURLoption option, OptionArg arg) {
    int number = static_cast<int>(option);
    if (number < CURLOPTTYPE_OBJECTPOINT) {
        return api.easy_setopt(handle, option, arg.number);
    }
    if (number < CURLOPTTYPE_FUNCTIONPOINT) {
        return api.easy_setopt(handle, option, arg.pointer);
    }
    if (number < CURLOPTTYPE_OFF_T) {
        return api.easy_setopt(handle, option, arg.function);
    }
    if (number < CURLOPTTYPE_BLOB) {
        return api.easy_setopt(handle, option, arg.offset);
    }
    return api.easy_setopt(handle, option, arg.pointer);
}

// A fresh state whose options are a copy of `from`'s (duphandle copies options, not the
// transfer state). A copied POST body moves with its owner.
std::unique_ptr<HandleState> copy_options(const HandleState& from) {
    auto state = std::make_unique<HandleState>();
    state->options = from.options;
    if (state->options.copied_postfields) {
        state->options.postfields = state->options.copied_postfields->data();
    }
    return state;
}

Begin pass_through(Cache* cache) {
    if (cache != nullptr) {
        cache->stats().passthrough.fetch_add(1, std::memory_order_relaxed);
    }
    return Begin::passthrough;
}

// The response a caching proxy gives to only-if-cached when it has nothing stored.
Entry gateway_timeout(const Plan& plan) {
    Entry entry;
    entry.method = plan.request.method;
    entry.url = plan.request.url;
    entry.status = 504;
    entry.header_blocks.emplace_back("HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n");
    return entry;
}

// The request's URL for log lines: redacted (no credentials, no ignored parameters).
std::string log_url(const Plan& plan, const config::Settings& settings) {
    return log::enabled(config::LogLevel::info) ? redact_url(plan.request.url, settings)
                                                : std::string();
}

// Is a stored entry good for this request without asking the origin? `reason` says why
// for the log line. Hermetic: the config's expiry alone. Otherwise the freshness decided
// when it was stored, and the request's own directives (max-age, min-fresh, max-stale,
// no-cache) when it has any.
bool servable(const Entry& entry, const Plan& plan, const config::Settings& settings, int64_t now,
              std::string& reason, bool explain) {
    if (settings.hermetic) {
        reason = "hermetic";
        return entry.fresh(now);
    }
    if (plan.cache_control) {
        http::UseAnswer answer = http::usable(entry.freshness, *plan.cache_control, now);
        reason = answer.reason;
        return answer.use != http::Use::revalidate;
    }
    if (!entry.fresh(now)) {
        return false;
    }
    if (explain) {
        const http::Freshness& f = entry.freshness;
        reason = entry.expires == 0 ? std::string("never expires")
                                    : "lifetime " + std::to_string(f.lifetime) + ", age " +
                                          std::to_string(f.current_age(now));
    }
    return true;
}

Begin decide(const CurlApi& api, CURL* handle, HandleState& state) {
    Cache* cache = process_cache();
    if (cache == nullptr) {
        return Begin::passthrough;
    }
    const config::Settings& settings = cache->settings();
    Plan plan = plan_transfer(state.options, settings, &state.url_memo);
    struct GiveBack { // the plan's URL string goes back to the memo for the next plan
        Plan& plan;
        std::string& room;
        ~GiveBack() { room = std::move(plan.request.url); }
    } give_back{plan, state.url_memo.plan_url};
    const bool offline = settings.mode == config::Mode::offline;
    if (plan.passthrough != nullptr || !cache->request_cacheable(plan.request)) {
        std::string_view url = state.options.url ? *state.options.url : std::string_view();
        const bool http_url = is_http_url(url);
        if (offline && http_url) {
            // Offline never touches the network, even for what the cache cannot answer.
            plan.request.url = std::string(url);
            prepare_offline_miss(state, plan);
            return Begin::hit;
        }
        const std::string method = transfer_method(state.options);
        if (http_url && !settings.hermetic && http::is_unsafe(method)) {
            // Its non-error response invalidates what is stored for the URL: end_transfer
            // does that once the status is known (and logs the transfer).
            state.invalidate_pending = true;
            (void)pass_through(cache);
            return Begin::miss;
        }
        CURLCACHE_LOG(info, "PASS %s (%s)", method.c_str(),
                      plan.passthrough ? plan.passthrough : "excluded by policy");
        return pass_through(cache);
    }
    const bool partial_or_conditional = plan.range || plan.conditional();
    const http::CacheControl* request_cc = plan.cache_control ? &*plan.cache_control : nullptr;
    // `settings` are the cache's own (Cache::key): with the handle's memo when the plan
    // holds the URL's parts.
    Key key = plan.url_parts != nullptr
                  ? make_key(plan.request, settings, *plan.url_parts, state.key_memo)
                  : cache->key(plan.request);

    // The entry is used where the lookup left it (an Entry is large: each move costs).
    auto result = settings.mode != config::Mode::refresh || partial_or_conditional
                      ? cache->find(key, &plan.request.headers, true)
                      : backends::Result<std::optional<Entry>>();
    if (!result) { // counted and warned about by the cache: fail open
        if (offline) {
            prepare_offline_miss(state, plan);
            return Begin::hit;
        }
        return Begin::passthrough;
    }
    std::optional<Entry>& found = *result;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    if (found && found->format < 3 && !settings.hermetic) {
        // Stored by an older curlcache, which did not look at the origin's headers: their
        // freshness is worked out now from the stored response.
        found->freshness = {};
        policy::stamp_freshness(settings, *found);
    }
    std::string reason;
    // Reasons are worded only for someone who reads them: the log, or VERBOSE.
    const bool explain = log::enabled(config::LogLevel::info) || state.options.verbose;
    if (found && (offline || servable(*found, plan, settings, now, reason, explain))) {
        if (settings.age_header) {
            add_age(*found, now);
        }
        if (prepare_hit(state, plan, std::move(*found))) {
            cache->stats().hits.fetch_add(1, std::memory_order_relaxed);
            cache->stats().time_saved_ms.fetch_add(state.replay->time_saved_ms,
                                                   std::memory_order_relaxed);
            CURLCACHE_LOG(info, "HIT %s (%s) %s %s", offline ? "offline" : "fresh",
                          offline ? "offline mode" : reason.c_str(), plan.request.method.c_str(),
                          log_url(plan, settings).c_str());
            if (state.options.verbose) {
                state.replay->note =
                    std::string(offline ? "HIT offline (offline mode)" : "HIT fresh (") +
                    (offline ? "" : reason + ")");
            }
            return Begin::hit;
        }
        found.reset();
        if (!offline) {
            return pass_through(cache); // a range the entry cannot answer
        }
    }
    if (request_cc && request_cc->only_if_cached && !offline && !settings.hermetic) {
        // What a caching proxy answers (RFC 9111 §5.2.1.7) when nothing stored may be used
        // (none, or a stale one the request's max-stale does not cover): no network.
        cache->stats().misses.fetch_add(1, std::memory_order_relaxed);
        CURLCACHE_LOG(info, "MISS only-if-cached: 504 %s %s", plan.request.method.c_str(),
                      log_url(plan, settings).c_str());
        if (prepare_hit(state, plan, gateway_timeout(plan))) {
            return Begin::hit;
        }
        return pass_through(cache);
    }
    if (offline) {
        cache->stats().misses.fetch_add(1, std::memory_order_relaxed);
        prepare_offline_miss(state, plan);
        return Begin::hit;
    }
    if (partial_or_conditional || settings.mode == config::Mode::readonly ||
        (request_cc && request_cc->no_store && !settings.hermetic)) {
        // The program's own range or condition on a miss: the origin answers it; a partial
        // or 304 response is nothing to store. A request that says no-store is not stored.
        CURLCACHE_LOG(info, "PASS %s (%s) %s", plan.request.method.c_str(),
                      partial_or_conditional ? "range or condition not answerable"
                      : settings.mode == config::Mode::readonly ? "readonly, not stored"
                                                                : "request no-store",
                      log_url(plan, settings).c_str());
        return pass_through(cache);
    }
    MissLock lock;
    // A stale entry with a validator is revalidated at once: a conditional request costs
    // little, and waiting for another revalidation would mean a second lookup that decodes
    // (and checksums) the whole entry again.
    const bool revalidation = found && (!found->etag.empty() || !found->last_modified.empty());
    if (settings.mode == config::Mode::normal && !revalidation) {
        // Another process (or thread) may be downloading this very entry: wait for it
        // rather than download it twice (bounded by lock_timeout; see core/coalesce.h).
        Coalesced coalesced = coalesce_miss(*cache, key);
        if (coalesced.entry && coalesced.entry->vary.empty() &&
            servable(*coalesced.entry, plan, settings, now, reason, explain) &&
            prepare_hit(state, plan, std::move(*coalesced.entry))) {
            cache->stats().hits.fetch_add(1, std::memory_order_relaxed);
            cache->stats().time_saved_ms.fetch_add(state.replay->time_saved_ms,
                                                   std::memory_order_relaxed);
            CURLCACHE_LOG(info, "HIT fresh (stored meanwhile by another transfer) %s %s",
                          plan.request.method.c_str(), log_url(plan, settings).c_str());
            return Begin::hit;
        }
        lock = std::move(coalesced.lock);
    }
    const bool had_entry = found.has_value();
    if (!start_tee(api, handle, state, key, plan, std::move(found), settings, std::move(lock))) {
        return pass_through(cache);
    }
    if (!state.tee->revalidating) { // a revalidation counts once its answer is known
        cache->stats().misses.fetch_add(1, std::memory_order_relaxed);
    }
    if (!had_entry) { // with a stale entry, end_transfer logs how it ended
        CURLCACHE_LOG(info, "MISS no entry %s %s", plan.request.method.c_str(),
                      log_url(plan, settings).c_str());
    }
    state.tee->had_entry = had_entry;
    return Begin::miss;
}

} // namespace

uint64_t time_saved_ms(const Info* took) {
    return took != nullptr && took->integer > 0 ? static_cast<uint64_t>(took->integer) / 1000 : 0;
}

CURL* easy_init(const CurlApi& api) {
    CURL* handle = api.easy_init();
    if (handle != nullptr) {
        try {
            reset_state(handle, std::make_unique<HandleState>());
        } catch (...) {
        }
    }
    return handle;
}

CURLcode easy_setopt(const CurlApi& api, CURL* handle, CURLoption option, va_list args) {
    OptionArg arg = read_option_arg(option, args);
    HandleState* state = nullptr;
    if (handle != nullptr) {
        try {
            state = &state_for(handle);
        } catch (...) {
        }
    }
    // Recording may allocate; an exception must not cross the C boundary, and a value
    // that was not recorded must not feed a key: the handle then passes through.
    auto record = [&]() noexcept {
        try {
            record_option(state->options, option, arg);
            return true;
        } catch (...) {
            state->options.unknown = true;
            return false;
        }
    };
    if (state != nullptr && state->tee && swapped_during_miss(option) && record()) {
        state->tee->httpheader_set |= option == CURLOPT_HTTPHEADER;
        return CURLE_OK;
    }
    CURLcode rc = forward_setopt(api, handle, option, arg);
    if (rc == CURLE_OK && state != nullptr) {
        (void)record();
    }
    return rc;
}

Begin begin_transfer(const CurlApi& api, CURL* handle) {
    if (handle == nullptr) {
        return Begin::passthrough;
    }
    HandleState* state = nullptr;
    try {
        state = &state_for(handle);
        if (state->tee) {
            // A miss whose end was never reported (a driver that lost it): put the
            // program's callbacks back before anything else.
            end_transfer(api, handle, CURLE_ABORTED_BY_CALLBACK);
        }
        // The previous transfer's headers and infos end here; its entry's vectors serve the
        // next decode on this thread.
        if (state->replay) {
            recycle(state->replay->entry);
            state->spare_blocks = std::move(state->replay->blocks);
            state->spare_blocks.clear();
            state->spare_url = std::move(state->replay->request_url);
        }
        state->replay.reset();
        state->invalidate_pending = false; // (an unsafe transfer whose end was never told)
        state->last = HandleState::Last::live;
        // libcurl loads COOKIEFILE (starting the engine) as the transfer begins.
        state->options.cookie_started |= state->options.cookie_engine;
        return decide(api, handle, *state);
    } catch (const std::exception& error) {
        log::warn_once("begin", "internal error, the transfer passes through: %s", error.what());
    } catch (...) {
    }
    if (state != nullptr) {
        state->replay.reset();
        state->last = HandleState::Last::live;
        if (state->tee) {
            end_transfer(api, handle, CURLE_ABORTED_BY_CALLBACK); // restores the callbacks
        }
    }
    return Begin::passthrough;
}

CURLcode easy_perform(const CurlApi& api, CURL* handle) {
    switch (begin_transfer(api, handle)) {
    case Begin::hit:
        return replay(api, handle);
    case Begin::miss:
        return end_transfer(api, handle, api.easy_perform(handle));
    case Begin::passthrough:
        break;
    }
    return api.easy_perform(handle);
}

void easy_cleanup(const CurlApi& api, CURL* handle) {
    if (handle != nullptr) {
        erase_state(handle);
    }
    api.easy_cleanup(handle);
}

void easy_reset(const CurlApi& api, CURL* handle) {
    api.easy_reset(handle);
    if (handle != nullptr) {
        try {
            auto fresh = std::make_unique<HandleState>();
            if (const HandleState* before = find_state(handle)) {
                fresh->options = after_reset(before->options);
            }
            reset_state(handle, std::move(fresh));
        } catch (...) {
            erase_state(handle);
        }
    }
}

CURL* easy_duphandle(const CurlApi& api, CURL* handle) {
    CURL* copy = api.easy_duphandle(handle);
    if (copy != nullptr) {
        try {
            HandleState* from = find_state(handle);
            reset_state(copy, from ? copy_options(*from) : std::make_unique<HandleState>());
        } catch (...) {
            erase_state(copy);
        }
    }
    return copy;
}

} // namespace curlcache::core::easy
