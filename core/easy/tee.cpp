// A miss: the real transfer runs with our write/header callbacks in front of the program's,
// which still run live while a copy is kept; afterwards the transfer facts are read and the
// entry is stored. A stale entry with validators is revalidated: a 304 is held back from the
// program and answered by replaying the refreshed entry.
#include "core/easy/cache_access.h"
#include "core/easy/engine_internal.h"
#include "core/easy/http_text.h"
#include "core/log.h"

#include <charconv>
#include <cstdio>

namespace curlcache::core::easy {

namespace {

// The program's callback, or libcurl's default (fwrite to WRITEDATA, stdout by default).
size_t call_program(curl_write_callback fn, void* data, char* ptr, size_t size, size_t count) {
    if (fn != nullptr) {
        return fn(ptr, size, count, data);
    }
    return std::fwrite(ptr, size, count, static_cast<FILE*>(data != nullptr ? data : stdout));
}

uint64_t copied_bytes(const Tee& tee) {
    uint64_t total = tee.body.size();
    for (const auto& block : tee.blocks) {
        total += block.size();
    }
    return total;
}

void give_up_copy(Tee& tee) {
    tee.too_large = true;
    std::string().swap(tee.body);
    std::vector<std::string>().swap(tee.blocks);
}

// Sizes the body copy from the response's Content-Length before the first byte, so a large
// body is copied once instead of through a doubling string (a hint only: decoded bodies
// may be larger, and a size past max_entry_size is not copied at all).
void reserve_for_body(Tee& tee) {
    if (tee.blocks.empty()) {
        return;
    }
    auto value = header_value(tee.blocks.back(), "Content-Length");
    uint64_t length = 0;
    if (!value || std::from_chars(value->data(), value->data() + value->size(), length).ec !=
                      std::errc()) {
        return;
    }
    if (length > 0 && length <= tee.max_entry_size) {
        tee.body.reserve(length);
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

bool block_complete(const std::string& block) {
    return block.ends_with("\r\n\r\n") || block.ends_with("\n\n") || block == "\r\n";
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
    try {
        bool status_line = line.substr(0, 5) == "HTTP/";
        if (status_line && tee.revalidating) {
            tee.got_304 = status_code(line) == 304;
        }
        if (status_line) {
            tee.in_body = false;
        } else if (tee.in_body) { // a trailer: libcurl sends it after the body
            if (!tee.too_large) {
                tee.trailers.append(line);
            }
            return forward_header(o, ptr, size, count);
        }
        if (tee.header_to_body && tee.body.size() >= length &&
            std::string_view(tee.body).substr(tee.body.size() - length) == line) {
            tee.body.resize(tee.body.size() - length); // the write callback had it first
        }
        if (!tee.too_large) {
            if (status_line || tee.blocks.empty()) {
                tee.blocks.emplace_back();
            }
            tee.blocks.back().append(line);
            if (copied_bytes(tee) > tee.max_entry_size) {
                give_up_copy(tee);
            }
        }
    } catch (...) {
        give_up_copy(tee);
    }
    if (tee.got_304) {
        return length; // held back: the program gets the refreshed entry instead
    }
    return forward_header(o, ptr, size, count);
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
    size_t before = tee.body.size();
    if (!tee.too_large) {
        try {
            if (tee.body.empty()) {
                reserve_for_body(tee);
            }
            tee.body.append(ptr, length);
            if (copied_bytes(tee) > tee.max_entry_size) {
                give_up_copy(tee);
            }
        } catch (...) {
            give_up_copy(tee);
        }
    }
    if (tee.got_304) {
        return length;
    }
    size_t wrote = call_program(o.write_fn, o.write_data, ptr, size, count);
    if (wrote == CURL_WRITEFUNC_PAUSE && !tee.too_large) {
        tee.body.resize(before); // libcurl delivers these bytes again on unpause
    }
    return wrote;
}

// Our own curl_slist (libcurl only reads the list during the transfer): the program's
// HTTPHEADER lines plus the validators of the stale entry.
void build_revalidation_list(Tee& tee, const Options& o, const Entry& stale) {
    for (const curl_slist* item = o.httpheader; item != nullptr; item = item->next) {
        tee.added_lines.emplace_back(item->data ? item->data : "");
    }
    if (!stale.etag.empty()) {
        tee.added_lines.push_back("If-None-Match: " + stale.etag);
    }
    if (!stale.last_modified.empty()) {
        tee.added_lines.push_back("If-Modified-Since: " + stale.last_modified);
    }
    tee.added_list.resize(tee.added_lines.size());
    for (size_t i = 0; i < tee.added_lines.size(); ++i) {
        tee.added_list[i].data = tee.added_lines[i].data();
        tee.added_list[i].next = i + 1 < tee.added_list.size() ? &tee.added_list[i + 1] : nullptr;
    }
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

} // namespace

bool start_tee(const CurlApi& api, CURL* handle, HandleState& state, const Key& key,
               const Plan& plan, std::optional<Entry> stale, const config::Settings& settings,
               MissLock lock) {
    const Options& o = state.options;
    auto tee = std::make_unique<Tee>();
    tee->lock = std::move(lock);
    tee->key = key;
    tee->max_entry_size = settings.max_entry_size;
    tee->header_to_body = o.header;
    tee->method = plan.request.method;
    tee->url = redact_url(plan.request.url, settings);
    // Revalidation is kept simple: one response (no redirect chain) and no CURLOPT_HEADER,
    // so that nothing of a 304 can reach the program before its status line is seen.
    if (stale && stale->header_blocks.size() == 1 && !o.header &&
        (!stale->etag.empty() || !stale->last_modified.empty())) {
        build_revalidation_list(*tee, o, *stale);
        tee->revalidating = true;
        tee->stale = std::move(stale);
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
    if (state == nullptr || !state->tee) {
        return result;
    }
    std::unique_ptr<Tee> tee = std::move(state->tee);
    try {
        restore_program_options(api, handle, *state, *tee);
        Cache* cache = process_cache();
        if (result != CURLE_OK || cache == nullptr) {
            return result;
        }
        long code = 0;
        api.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
        const bool not_modified = tee->revalidating && tee->got_304 && code == 304;
        if (tee->revalidating && !not_modified) {
            cache->stats().misses.fetch_add(1, std::memory_order_relaxed);
        }
        if (not_modified) {
            Entry refreshed = std::move(*tee->stale);
            (void)cache->store(tee->key, refreshed); // a failure is counted by the cache
            cache->stats().hits.fetch_add(1, std::memory_order_relaxed);
            Plan plan;
            plan.request.method = tee->method;
            // The program's own URL (tee->url is redacted): the replay derives the effective
            // URL with its userinfo, cookie hosts and hop URLs from it.
            plan.request.url = state->options.url.value_or("");
            if (!prepare_hit(*state, plan, std::move(refreshed))) {
                return result;
            }
            return replay(api, handle);
        }
        if (tee->too_large || tee->blocks.empty() || state->options.unknown ||
            cache->settings().mode == config::Mode::readonly) {
            return result;
        }
        cache->stats().bytes_downloaded.fetch_add(tee->body.size(), std::memory_order_relaxed);
        Entry entry;
        entry.method = tee->method;
        entry.url = tee->url;
        entry.status = code;
        std::string_view last = tee->blocks.back();
        entry.etag = std::string(header_value(last, "ETag").value_or(""));
        entry.last_modified = std::string(header_value(last, "Last-Modified").value_or(""));
        entry.header_blocks = std::move(tee->blocks);
        entry.body = tee->body;
        entry.infos = record_infos(api, handle);
        if (!tee->trailers.empty()) {
            Info trailers;
            trailers.id = k_info_trailers;
            trailers.type = Info::Type::text;
            trailers.text = std::move(tee->trailers);
            entry.infos.push_back(std::move(trailers));
        }
        (void)cache->store(tee->key, entry); // a failure is counted and warned about there
    } catch (const std::exception& error) {
        log::warn_once("end-transfer", "cannot record a transfer: %s", error.what());
    } catch (...) {
    }
    return result;
}

} // namespace curlcache::core::easy
