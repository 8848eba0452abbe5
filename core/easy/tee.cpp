// A miss: the real transfer runs with our write/header callbacks in front of the program's,
// which still run live. The header blocks are copied; the body goes piece by piece into the
// storage (a BodySink) once the program has accepted each piece, so nothing is ever taken
// back out of it and a large body is neither held in memory nor written twice. Afterwards
// the transfer facts are read and the entry is committed. A stale entry with validators is
// revalidated: a 304 is held back from the program and answered by replaying the
// refreshed entry.
#include "core/easy/cache_access.h"
#include "core/easy/engine_internal.h"
#include "core/easy/http_text.h"
#include "core/http/validation.h"
#include "core/log.h"
#include "core/policy.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace curlcache::core::easy {

namespace {

// libcurl keeps a header line under 100 KiB; held bytes past this are not a header line.
constexpr size_t k_max_held = 1 << 20;

// The program's callback, or libcurl's default (fwrite to WRITEDATA, stdout by default).
size_t call_program(curl_write_callback fn, void* data, char* ptr, size_t size, size_t count) {
    if (fn != nullptr) {
        return fn(ptr, size, count, data);
    }
    return std::fwrite(ptr, size, count, static_cast<FILE*>(data != nullptr ? data : stdout));
}

// Nothing of this transfer will be stored (too large, the backend failed, out of memory,
// or a delivery order the tee does not understand); the transfer itself goes on untouched.
// Dropping the sink discards what it wrote.
void give_up_copy(Tee& tee) {
    tee.dropped = true;
    tee.sink.reset();
    std::string().swap(tee.held);
    std::vector<std::string>().swap(tee.blocks);
    tee.header_bytes = 0;
}

uint64_t body_size(const Tee& tee) {
    return tee.sink ? tee.sink->size() : 0;
}

bool block_complete(const std::string& block) {
    return block.ends_with("\r\n\r\n") || block.ends_with("\n\n") || block == "\r\n";
}

std::optional<uint64_t> content_length(std::string_view block) {
    auto value = header_value(block, "Content-Length");
    uint64_t length = 0;
    if (!value ||
        std::from_chars(value->data(), value->data() + value->size(), length).ec != std::errc()) {
        return std::nullopt;
    }
    return length;
}

// Would the policy decline this response whatever its body (method, status, no-store, and
// HTTP's rules for this request: private in a shared cache, Authorization)? Then its body
// is not written to the storage at all.
bool declined_before_body(const Tee& tee, const config::Settings& settings) {
    Entry probe;
    probe.method = tee.method;
    probe.url = tee.url;
    probe.status = status_code(tee.blocks.back()).value_or(0);
    probe.header_blocks.push_back(tee.blocks.back());
    const policy::StoreRequest request{tee.request_cc ? &*tee.request_cc : nullptr,
                                       tee.authorization};
    return policy::store(settings, probe, 0, request) != policy::Verdict::ok;
}

// The sink for the final response's body, at its first byte. Its size hint is the
// Content-Length; when that is exactly what the write callback will receive (no coding
// for libcurl to undo) and already past max_entry_size, nothing is written at all.
bool start_sink(Tee& tee) {
    if (tee.cache == nullptr || tee.blocks.empty() ||
        declined_before_body(tee, tee.cache->settings())) {
        give_up_copy(tee);
        return false;
    }
    const std::string& block = tee.blocks.back();
    std::optional<uint64_t> length = content_length(block);
    const bool exact = length && !header_value(block, "Content-Encoding") &&
                       !header_value(block, "Transfer-Encoding");
    if (exact && tee.header_bytes + *length > tee.max_entry_size) {
        give_up_copy(tee);
        return false;
    }
    tee.sink = tee.cache->begin_body(length && *length <= tee.max_entry_size ? *length : 0);
    if (!tee.sink) {
        give_up_copy(tee); // counted and warned about by the cache
        return false;
    }
    return true;
}

// Body bytes the program accepted: into the sink.
void keep_body(Tee& tee, std::string_view bytes) {
    if (tee.dropped || (!tee.sink && !start_sink(tee))) {
        return;
    }
    tee.body_seen = true;
    if (tee.header_bytes + tee.sink->size() + bytes.size() > tee.max_entry_size ||
        !tee.sink->append(bytes)) {
        give_up_copy(tee);
    }
}

// Held bytes that no header callback claimed were body.
void release_held(Tee& tee) {
    std::string held;
    held.swap(tee.held);
    if (!held.empty()) {
        keep_body(tee, held);
    }
}

// CURLOPT_HEADER: what the write callback accepted may be a header line of the current
// block, the status line of a next response (after 1xx, a followed redirect, an auth
// round), or body. Header lines are held until their header callback; the first bytes
// after a complete block are held too, until the next callback tells which they were.
// Once body bytes were seen, no header line reaches the write callback again (trailers
// go to the header callback only).
void keep_written_with_headers(Tee& tee, std::string_view bytes) {
    if (tee.body_seen) {
        keep_body(tee, bytes);
        return;
    }
    if (tee.blocks.empty() || !block_complete(tee.blocks.back())) {
        tee.held.append(bytes); // a header line (a long one may come in several pieces)
        if (tee.held.size() > k_max_held) {
            give_up_copy(tee);
        }
        return;
    }
    if (!tee.held.empty()) { // the previous bytes got no header callback: body
        release_held(tee);
        keep_body(tee, bytes);
        return;
    }
    tee.held.assign(bytes);
}

// The header callback got `line`: held bytes equal to it were that line; other held
// bytes after a complete block were body (a trailer follows them).
void settle_held(Tee& tee, std::string_view line) {
    if (tee.held == line) {
        tee.held.clear();
    } else if (!tee.blocks.empty() && block_complete(tee.blocks.back())) {
        release_held(tee);
    } else {
        give_up_copy(tee); // not libcurl's order as we know it: store nothing
    }
}

// A header line the program accepted: into the current block (a status line starts a
// new one), or a trailer after the body.
void record_header(Tee& tee, std::string_view line, bool status_line, bool trailer) {
    if (trailer) {
        tee.trailers.append(line);
        return;
    }
    if (status_line || tee.blocks.empty()) {
        tee.blocks.emplace_back();
    }
    tee.blocks.back().append(line);
    tee.header_bytes += line.size();
    if (tee.header_bytes + body_size(tee) > tee.max_entry_size) {
        give_up_copy(tee);
    }
}

// libcurl's header delivery: the header callback, or the write callback with HEADERDATA.
size_t forward_header(const Options& o, char* ptr, size_t size, size_t count) {
    if (o.header_fn != nullptr) {
        return o.header_fn(ptr, size, count, o.header_data);
    }
    if (o.header_data != nullptr) {
        return call_program(o.write_fn, o.header_data, ptr, size, count);
    }
    return size * count;
}

size_t tee_header(char* ptr, size_t size, size_t count, void* userdata) {
    auto* state = static_cast<HandleState*>(userdata);
    const Options& o = state->options;
    const size_t length = size * count;
    if (!state->tee) {
        return forward_header(o, ptr, size, count);
    }
    Tee& tee = *state->tee;
    std::string_view line(ptr, length);
    const bool status_line = line.substr(0, 5) == "HTTP/";
    bool trailer = false;
    try {
        if (!tee.held.empty()) {
            settle_held(tee, line);
        }
        if (status_line) {
            const long code = status_code(line).value_or(0);
            if (tee.revalidating) {
                tee.got_304 = code == 304;
            }
            // stale-if-error: a 5xx that nothing else preceded is held back too.
            tee.got_error = tee.stale_on_error && !tee.forwarded && code >= 500;
            if (tee.body_seen) {
                give_up_copy(tee); // a next response after body bytes: they cannot be taken back
            }
            tee.in_body = false;
        } else if (tee.in_body) { // a trailer: libcurl sends it after the body
            trailer = true;
        }
    } catch (...) {
        give_up_copy(tee);
    }
    // A 304 is held back: the program gets the refreshed entry instead (and a 5xx the stale
    // one, under stale-if-error).
    const bool hold = tee.got_304 || tee.got_error;
    const size_t wrote = hold ? length : forward_header(o, ptr, size, count);
    tee.forwarded |= !hold;
    if (wrote == length && !tee.dropped) { // a paused line comes again
        try {
            record_header(tee, line, status_line, trailer);
        } catch (...) {
            give_up_copy(tee);
        }
    }
    return wrote;
}

size_t tee_write(char* ptr, size_t size, size_t count, void* userdata) {
    auto* state = static_cast<HandleState*>(userdata);
    const Options& o = state->options;
    const size_t length = size * count;
    if (!state->tee) {
        return call_program(o.write_fn, o.write_data, ptr, size, count);
    }
    Tee& tee = *state->tee;
    if (!tee.blocks.empty() && block_complete(tee.blocks.back())) {
        tee.in_body = true; // (a status line of a next hop clears it again)
    }
    if (tee.got_304 || tee.got_error) {
        return length;
    }
    tee.forwarded = true;
    const size_t wrote = call_program(o.write_fn, o.write_data, ptr, size, count);
    // Only what the program accepted is kept: a paused chunk (CURL_WRITEFUNC_PAUSE) comes
    // again on unpause, and a short write fails the transfer.
    if (wrote != length || length == 0 || tee.dropped) {
        return wrote;
    }
    try {
        std::string_view bytes(ptr, length);
        if (tee.header_to_body) {
            keep_written_with_headers(tee, bytes);
        } else {
            keep_body(tee, bytes);
        }
    } catch (...) {
        give_up_copy(tee);
    }
    return wrote;
}

// Our own curl_slist (libcurl only reads the list during the transfer): the program's
// HTTPHEADER lines plus the validators of the stale entry.
void build_revalidation_list(Tee& tee, const Options& o, const Entry& stale) {
    for (const curl_slist* item = o.httpheader; item != nullptr; item = item->next) {
        tee.added_lines.emplace_back(item->data ? item->data : "");
    }
    for (std::string& line : http::conditional_lines(stale.etag, stale.last_modified)) {
        tee.added_lines.push_back(std::move(line));
    }
    tee.added_list.resize(tee.added_lines.size());
    for (size_t i = 0; i < tee.added_lines.size(); ++i) {
        tee.added_list[i].data = tee.added_lines[i].data();
        tee.added_list[i].next = i + 1 < tee.added_list.size() ? &tee.added_list[i + 1] : nullptr;
    }
}

// The transfer succeeded: held bytes were the body's last (or only) piece, and an empty
// body gets its (empty) sink now. False when nothing is to be stored.
bool finish_body(Tee& tee) {
    if (!tee.held.empty()) {
        if (tee.blocks.empty() || !block_complete(tee.blocks.back())) {
            return false; // header bytes no header callback claimed
        }
        release_held(tee);
    }
    if (!tee.sink && !tee.dropped) {
        tee.sink = tee.cache->begin_body(0);
    }
    return tee.sink && !tee.dropped;
}

void restore_program_options(const CurlApi& api, CURL* handle, const HandleState& state,
                             const Tee& tee) {
    const Options& o = state.options;
    api.easy_setopt(handle, CURLOPT_WRITEFUNCTION, o.write_fn);
    api.easy_setopt(handle, CURLOPT_WRITEDATA, o.write_data);
    api.easy_setopt(handle, CURLOPT_HEADERFUNCTION, o.header_fn);
    api.easy_setopt(handle, CURLOPT_HEADERDATA, o.header_data);
    if (tee.revalidating || tee.httpheader_set) {
        api.easy_setopt(handle, CURLOPT_HTTPHEADER, o.httpheader);
    }
}

// A transfer that failed for the origin's sake (no answer, a broken connection), not for
// the program's (a callback that aborted, a bad option): stale-if-error may stand in.
bool origin_failure(CURLcode result) {
    switch (result) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

Cache::StoreContext store_context(const Tee& tee) {
    Cache::StoreContext context;
    context.request.cache_control = tee.request_cc ? &*tee.request_cc : nullptr;
    context.request.authorization = tee.authorization;
    context.request_lines = &tee.request_lines;
    return context;
}

// Answers the transfer with `entry` after the real one ended (a 304 or stale-if-error).
CURLcode replay_entry(const CurlApi& api, CURL* handle, HandleState& state, const Tee& tee,
                      Entry entry, const char* note) {
    Plan plan;
    plan.request.method = tee.method;
    // The program's own URL (tee.url is redacted): the replay derives the effective URL
    // with its userinfo, cookie hosts and hop URLs from it.
    plan.request.url = state.options.url.value_or("");
    if (const Cache* cache = process_cache(); cache && cache->settings().age_header) {
        add_age(entry, static_cast<int64_t>(std::time(nullptr)));
    }
    if (!prepare_hit(state, plan, std::move(entry))) {
        return CURLE_OK;
    }
    state.replay->note = note;
    return replay(api, handle);
}

} // namespace

bool start_tee(const CurlApi& api, CURL* handle, HandleState& state, const Key& key,
               const Plan& plan, std::optional<Entry> stale, const config::Settings& settings,
               MissLock lock) {
    const Options& o = state.options;
    auto tee = std::make_unique<Tee>();
    tee->lock = std::move(lock);
    tee->key = key;
    tee->max_entry_size = settings.max_entry_size;
    tee->cache = process_cache();
    tee->header_to_body = o.header;
    tee->method = plan.request.method;
    tee->url = redact_url(plan.request.url, settings);
    tee->request_time = static_cast<int64_t>(std::time(nullptr));
    tee->request_lines = plan.request.headers;
    tee->key_parts = key_parts(plan.request, settings);
    tee->request_cc = plan.cache_control;
    tee->authorization = plan.authorization;
    // Revalidation and stale-if-error are kept simple: one response (no redirect chain) and
    // no CURLOPT_HEADER, so that nothing of a 304 or a 5xx can reach the program before its
    // status line is seen.
    if (stale && stale->header_blocks.size() == 1 && !o.header) {
        if (!stale->etag.empty() || !stale->last_modified.empty()) {
            build_revalidation_list(*tee, o, *stale);
            tee->revalidating = true;
        }
        tee->stale_on_error = http::serve_stale_on_error(
            stale->freshness, tee->request_cc.value_or(http::CacheControl{}),
            settings.stale_if_error, tee->request_time);
        if (tee->revalidating || tee->stale_on_error) {
            tee->stale = std::move(stale);
        }
    }
    state.tee = std::move(tee);
    CURLcode rc = api.easy_setopt(handle, CURLOPT_WRITEFUNCTION, &tee_write);
    rc = rc ? rc : api.easy_setopt(handle, CURLOPT_WRITEDATA, &state);
    rc = rc ? rc : api.easy_setopt(handle, CURLOPT_HEADERFUNCTION, &tee_header);
    rc = rc ? rc : api.easy_setopt(handle, CURLOPT_HEADERDATA, &state);
    if (!rc && state.tee->revalidating) {
        rc = api.easy_setopt(handle, CURLOPT_HTTPHEADER, state.tee->added_list.data());
    }
    if (rc != CURLE_OK) {
        restore_program_options(api, handle, state, *state.tee);
        state.tee.reset();
        return false;
    }
    state.last = HandleState::Last::live;
    return true;
}

CURLcode end_transfer(const CurlApi& api, CURL* handle, CURLcode result) {
    HandleState* state = find_state(handle);
    if (state != nullptr && state->invalidate_pending) {
        state->invalidate_pending = false;
        invalidate_after(api, handle, *state, result);
    }
    if (state == nullptr || !state->tee) {
        return result;
    }
    std::unique_ptr<Tee> tee = std::move(state->tee);
    try {
        restore_program_options(api, handle, *state, *tee);
        Cache* cache = process_cache();
        if (cache == nullptr) {
            return result;
        }
        long code = 0;
        api.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
        const bool failed = result != CURLE_OK && !tee->forwarded && origin_failure(result);
        // A held-back 5xx ends the transfer normally, or as FAILONERROR's error.
        const bool error_status = tee->got_error && code >= 500 &&
                                  (result == CURLE_OK || result == CURLE_HTTP_RETURNED_ERROR);
        if (tee->stale && tee->stale_on_error && (failed || error_status)) {
            cache->stats().hits.fetch_add(1, std::memory_order_relaxed);
            CURLCACHE_LOG(info, "STALE served (stale-if-error), %s: %s %s",
                          failed ? "the transfer failed" : "the origin answered 5xx",
                          tee->method.c_str(), tee->url.c_str());
            return replay_entry(api, handle, *state, *tee, std::move(*tee->stale),
                                "STALE served (stale-if-error)");
        }
        if (result != CURLE_OK) {
            if (tee->had_entry) {
                CURLCACHE_LOG(info, "MISS stale, the transfer failed (%d) %s %s",
                              static_cast<int>(result), tee->method.c_str(), tee->url.c_str());
            }
            return result;
        }
        const bool not_modified = tee->revalidating && tee->got_304 && code == 304;
        if (tee->had_entry && !not_modified) {
            CURLCACHE_LOG(info, "MISS stale, %s: %ld %s %s",
                          tee->revalidating ? "revalidated" : "no validator", code,
                          tee->method.c_str(), tee->url.c_str());
        }
        if (tee->revalidating && !not_modified) {
            cache->stats().misses.fetch_add(1, std::memory_order_relaxed);
        }
        if (not_modified) {
            Entry refreshed = std::move(*tee->stale);
            const std::string_view answer =
                tee->blocks.empty() ? std::string_view() : std::string_view(tee->blocks.back());
            if (http::selects(answer, refreshed.etag, refreshed.last_modified)) {
                // RFC 9111 §4.3.4: the stored header fields are updated from the 304 and
                // the freshness is decided anew, as for a response that arrived now.
                Text& last = refreshed.header_blocks.back();
                last = http::merge_not_modified(last, answer);
                refreshed.etag = std::string(header_value(last, "ETag").value_or(""));
                refreshed.last_modified =
                    std::string(header_value(last, "Last-Modified").value_or(""));
                refreshed.freshness = {};
                refreshed.freshness.request_time = tee->request_time;
                const int64_t now = static_cast<int64_t>(std::time(nullptr));
                refreshed.freshness.response_time = now;
                refreshed.created = now;
                policy::stamp_freshness(cache->settings(), refreshed);
                // Stored again only when that saves a round trip: an entry stale at once
                // (max-age=0, no-cache) is revalidated next time anyway, and the 304 then
                // brings its header fields again; rewriting it (a whole body file for a
                // large one) on every use would cost more than downloading it.
                // A body left in storage (a large entry being streamed) is not copied
                // into a new value either: it is revalidated again next time.
                if (refreshed.fresh(now) && !refreshed.freshness.no_cache &&
                    !refreshed.stored_body) {
                    (void)cache->store(tee->key, refreshed, store_context(*tee));
                }
            }
            cache->stats().hits.fetch_add(1, std::memory_order_relaxed);
            CURLCACHE_LOG(info, "REVALIDATED 304 %s %s", tee->method.c_str(), tee->url.c_str());
            return replay_entry(api, handle, *state, *tee, std::move(refreshed), "REVALIDATED 304");
        }
        // (A cache reopened since the sink began, as in a forked child, is not the sink's.)
        if (tee->dropped || tee->blocks.empty() || state->options.unknown ||
            cache->settings().mode == config::Mode::readonly || cache != tee->cache ||
            !finish_body(*tee)) {
            return result;
        }
        cache->stats().bytes_downloaded.fetch_add(tee->sink->size(), std::memory_order_relaxed);
        Entry entry;
        entry.method = tee->method;
        entry.url = tee->url;
        entry.status = code;
        std::string_view last = tee->blocks.back();
        entry.etag = std::string(header_value(last, "ETag").value_or(""));
        entry.last_modified = std::string(header_value(last, "Last-Modified").value_or(""));
        entry.header_blocks.assign(std::make_move_iterator(tee->blocks.begin()),
                                   std::make_move_iterator(tee->blocks.end()));
        tee->blocks.clear();
        // Interim responses (103 Early Hints, 102) belonged to that exchange, not to the
        // stored response: a hit has no interim phase and replays none (RFC 9111 §3). A
        // 100 Continue is kept: it answers the request's own Expect, as it would again.
        std::erase_if(entry.header_blocks, [&](const Text& block) {
            const long interim = status_code(block).value_or(0);
            return interim >= 101 && interim < 200;
        });
        entry.infos = record_infos(api, handle);
        if (curl_off_t took = 0;
            api.easy_getinfo(handle, CURLINFO_TOTAL_TIME_T, &took) == CURLE_OK && took > 0) {
            Info transfer_time;
            transfer_time.id = k_info_transfer_time_us;
            transfer_time.integer = took;
            entry.infos.push_back(transfer_time);
        }
        if (!tee->key_parts.empty()) {
            Info key_parts;
            key_parts.id = k_info_key_parts;
            key_parts.type = Info::Type::text;
            key_parts.text = std::move(tee->key_parts);
            entry.infos.push_back(std::move(key_parts));
        }
        entry.freshness.request_time = tee->request_time;
        entry.freshness.response_time = static_cast<int64_t>(std::time(nullptr));
        if (!tee->trailers.empty()) {
            Info trailers;
            trailers.id = k_info_trailers;
            trailers.type = Info::Type::text;
            trailers.text = std::move(tee->trailers);
            entry.infos.push_back(std::move(trailers));
        }
        (void)cache->store(tee->key, entry, *tee->sink, store_context(*tee)); // failures counted
    } catch (const std::exception& error) {
        log::warn_once("end-transfer", "cannot record a transfer: %s", error.what());
    } catch (...) {
    }
    return result;
}

} // namespace curlcache::core::easy
