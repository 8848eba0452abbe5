// Replay: a cached entry delivered into the program's callbacks as libcurl would deliver the
// recorded response (header lines of every hop, CURLOPT_HEADER, body chunks, FAILONERROR,
// the 304 or 206 the origin would send to the program's own conditional or range request,
// progress callbacks).
#include "core/easy/cache_access.h"
#include "core/easy/cookies.h"
#include "core/easy/engine_internal.h"
#include "core/easy/http_text.h"
#include "core/http/validation.h"
#include "core/log.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace curlcache::core::easy {

void set_error(const Options& options, const char* format, ...) {
    if (options.errorbuffer == nullptr) {
        return;
    }
    va_list args;
    va_start(args, format);
    std::vsnprintf(options.errorbuffer, CURL_ERROR_SIZE, format, args);
    va_end(args);
}

namespace {

// Headers a 304 carries over from the stored 200 (RFC 9110 15.4.5 and what servers send).
bool kept_in_304(std::string_view name) {
    static constexpr std::string_view k_kept[] = {"Date",          "Server",           "ETag",
                                                  "Last-Modified", "Cache-Control",    "Expires",
                                                  "Vary",          "Content-Location", "Age"};
    for (std::string_view kept : k_kept) {
        if (iequals(name, kept)) {
            return true;
        }
    }
    return false;
}

// libcurl writes an HTTP/2 or /3 status line as "HTTP/2 304 \r\n" (no reason phrase).
std::string make_304(std::string_view block) {
    auto lines = split_lines(block);
    std::string out;
    out.append(status_protocol(lines.empty() ? "" : lines.front()));
    out.append(out == "HTTP/2" || out == "HTTP/3" ? " 304 \r\n" : " 304 Not Modified\r\n");
    for (size_t i = 1; i < lines.size(); ++i) {
        std::string_view name, value;
        if (split_header(lines[i], name, value) && kept_in_304(name)) {
            out.append(lines[i]);
        }
    }
    out.append("\r\n");
    return out;
}

std::string make_206(std::string_view block, ByteRange range, uint64_t size) {
    auto lines = split_lines(block);
    std::string out;
    out.append(status_protocol(lines.empty() ? "" : lines.front()));
    out.append(out == "HTTP/2" || out == "HTTP/3" ? " 206 \r\n" : " 206 Partial Content\r\n");
    char content[160];
    std::snprintf(
        content, sizeof content, "Content-Range: bytes %llu-%llu/%llu\r\nContent-Length: %llu\r\n",
        static_cast<unsigned long long>(range.first), static_cast<unsigned long long>(range.last),
        static_cast<unsigned long long>(size),
        static_cast<unsigned long long>(range.last - range.first + 1));
    bool placed = false;
    for (size_t i = 1; i < lines.size(); ++i) {
        std::string_view name, value;
        bool header = split_header(lines[i], name, value);
        if (header && iequals(name, "Content-Length")) {
            out.append(content);
            placed = true;
        } else if (header &&
                   (iequals(name, "Transfer-Encoding") || iequals(name, "Content-Range"))) {
            continue;
        } else if (!header && trim(lines[i]).empty()) {
            if (!placed) {
                out.append(content);
                placed = true;
            }
            out.append(lines[i]);
        } else {
            out.append(lines[i]);
        }
    }
    return out;
}

// Does the stored final response satisfy the program's conditional request (so that the
// origin would answer 304)?
bool condition_holds(const Plan& plan, const Entry& entry) {
    if (plan.if_none_match) {
        return etag_matches(*plan.if_none_match, entry.etag);
    }
    if (plan.if_modified_since && !entry.last_modified.empty()) {
        auto modified = parse_http_date(entry.last_modified);
        return modified && *modified <= *plan.if_modified_since;
    }
    return false;
}

} // namespace

void add_age(Entry& entry, int64_t now) {
    if (!entry.header_blocks.empty()) {
        std::string& last = entry.header_blocks.back();
        last = http::with_age(last, std::max<int64_t>(0, entry.freshness.current_age(now)));
    }
}

bool prepare_hit(HandleState& state, const Plan& plan, Entry entry) {
    const Options& o = state.options;
    auto r = std::make_unique<Replay>();
    r->entry = std::move(entry);
    const Entry& e = r->entry;
    if (e.header_blocks.empty()) {
        return false;
    }
    r->blocks.assign(e.header_blocks.begin(), e.header_blocks.end());
    r->body = e.body;
    if (const Info* trailers = e.info(k_info_trailers)) {
        r->trailers = trailers->text;
    }
    r->status = e.status;
    r->effective_method = plan.request.method;
    r->request_url = plan.request.url;
    if (e.info(k_info_effective_url_had_userinfo) != nullptr) {
        if (const Info* url = e.info(CURLINFO_EFFECTIVE_URL)) {
            r->effective_url = with_userinfo(url->text, url_userinfo(plan.request.url));
        }
    }
    std::string_view last = e.header_blocks.back();

    if (plan.range) {
        // Cut from the body as delivered; a decoded body no longer matches the wire bytes
        // the range talks about, so that case passes through.
        bool decoded = o.accept_encoding && header_value(last, "Content-Encoding");
        auto range = parse_range(*plan.range, e.body.size());
        if (e.status != 200 || decoded || !range) {
            return false;
        }
        r->kind = Replay::Kind::partial;
        r->status = 206;
        r->synthesised = make_206(last, *range, e.body.size());
        r->blocks.back() = r->synthesised;
        r->body = e.body.substr(range->first, range->last - range->first + 1);
        r->trailers = {};
    } else if (plan.conditional() && condition_holds(plan, e)) {
        r->kind = Replay::Kind::not_modified;
        r->status = 304;
        r->synthesised = make_304(last);
        r->blocks.back() = r->synthesised;
        r->body = {};
        r->trailers = {};
        r->deliver_body = false;
        r->condition_unmet = true; // libcurl 7.88 reports it for every 304 (measured)
    }
    if (o.nobody) {
        r->deliver_body = false;
    }
    if (o.failonerror && r->status >= 400) {
        r->fail_http = true;
        r->deliver_body = false;
    }
    for (std::string_view block : r->blocks) {
        r->header_size += static_cast<int64_t>(block.size());
    }
    if (o.filetime && r->kind != Replay::Kind::not_modified) { // -1 on a 304 (measured)
        if (auto modified = header_value(r->blocks.back(), "Last-Modified")) {
            r->filetime = parse_http_date(*modified).value_or(-1);
        }
    }
    state.replay = std::move(r);
    state.last = HandleState::Last::replayed;
    return true;
}

void prepare_offline_miss(HandleState& state, const Plan& plan) {
    auto r = std::make_unique<Replay>();
    r->kind = Replay::Kind::offline_miss;
    r->effective_url = plan.request.url;
    r->effective_method = plan.request.method;
    r->deliver_body = false;
    state.replay = std::move(r);
    state.last = HandleState::Last::replayed;
}

namespace {

constexpr int k_max_pauses = 10000; // a callback that pauses forever must not hang us

// Calls the progress callback as libcurl does (only with NOPROGRESS off); false = abort.
bool progress(const Options& o, curl_off_t total, curl_off_t now) {
    if (o.noprogress) {
        return true;
    }
    int rc = 0;
    if (o.xferinfo_fn != nullptr) {
        rc = o.xferinfo_fn(o.xferinfo_data, total, now, 0, 0);
    } else if (o.progress_fn != nullptr) {
        rc = o.progress_fn(o.xferinfo_data, static_cast<double>(total), static_cast<double>(now), 0,
                           0);
    } else {
        return true;
    }
    return rc == 0 || rc == CURL_PROGRESSFUNC_CONTINUE;
}

// One call of a write-style callback; CURL_WRITEFUNC_PAUSE is honoured as a zero-length
// pause: libcurl would hold the bytes and deliver the same bytes again on unpause, which
// is what we do at once (after giving the progress callback, where programs usually
// unpause, a chance to run). Returns false on a short write.
bool deliver(const Options& o, curl_write_callback fn, void* data, std::string_view bytes,
             curl_off_t total, curl_off_t now) {
    for (int pauses = 0; pauses < k_max_pauses; ++pauses) {
        size_t wrote;
        char* ptr = const_cast<char*>(bytes.data());
        if (fn != nullptr) {
            wrote = fn(ptr, 1, bytes.size(), data);
        } else {
            wrote = std::fwrite(ptr, 1, bytes.size(),
                                static_cast<FILE*>(data != nullptr ? data : stdout));
        }
        if (wrote != CURL_WRITEFUNC_PAUSE) {
            return wrote == bytes.size();
        }
        progress(o, total, now);
    }
    return false;
}

CURLcode deliver_all(const Options& o, Replay& r) {
    // Progress counts wire bytes, as libcurl does (compressed when the body was decoded).
    const curl_off_t wire = r.deliver_body ? replay_download_size(r) : 0;
    const int64_t length = replay_content_length(r);
    const curl_off_t total = r.deliver_body ? (length >= 0 ? length : wire) : 0;
    if (!progress(o, 0, 0)) {
        set_error(o, "Callback aborted");
        return CURLE_ABORTED_BY_CALLBACK;
    }
    // libcurl: a header line goes to the write callback first under CURLOPT_HEADER, then to
    // the header callback, or to the write callback with HEADERDATA when only that is set.
    const bool to_header = o.header_fn != nullptr || o.header_data != nullptr;
    curl_write_callback header_fn = o.header_fn != nullptr ? o.header_fn : o.write_fn;
    for (size_t i = 0; i < r.blocks.size(); ++i) {
        for (std::string_view line : split_lines(r.blocks[i])) {
            const char* failure = nullptr;
            if (o.header && !deliver(o, o.write_fn, o.write_data, line, total, 0)) {
                failure = "Failure writing output to destination";
            } else if (to_header && !deliver(o, header_fn, o.header_data, line, total, 0)) {
                failure = "Failed writing header";
            }
            if (failure != nullptr) {
                r.aborted_in_headers = true;
                r.aborted_block = i;
                set_error(o, "%s", failure);
                return CURLE_WRITE_ERROR;
            }
            r.header_done += static_cast<int64_t>(line.size());
        }
    }
    if (r.fail_http) {
        set_error(o, "The requested URL returned error: %ld", r.status);
        return CURLE_HTTP_RETURNED_ERROR;
    }
    curl_off_t done = 0;
    if (r.deliver_body) {
        std::string_view rest = r.body;
        const size_t chunk_size = static_cast<size_t>(
            o.buffersize < CURL_MAX_WRITE_SIZE ? o.buffersize : CURL_MAX_WRITE_SIZE);
        while (!rest.empty()) {
            std::string_view chunk = rest.substr(0, chunk_size);
            if (!deliver(o, o.write_fn, o.write_data, chunk, total, done)) {
                set_error(o, "Failure writing output to destination");
                return CURLE_WRITE_ERROR;
            }
            rest.remove_prefix(chunk.size());
            done += static_cast<curl_off_t>(chunk.size());
        }
        for (std::string_view line : split_lines(r.trailers)) { // header callback only
            if (to_header && !deliver(o, header_fn, o.header_data, line, total, done)) {
                set_error(o, "Failed writing header");
                return CURLE_WRITE_ERROR;
            }
        }
    }
    if (!progress(o, total, r.deliver_body ? wire : 0)) {
        set_error(o, "Callback aborted");
        return CURLE_ABORTED_BY_CALLBACK;
    }
    return CURLE_OK;
}

} // namespace

namespace {

// One piece of verbose output, as libcurl gives it: to the debug callback, or as its own
// "* " / "< " lines on CURLOPT_STDERR.
void debug_out(CURL* handle, const Options& o, curl_infotype type, std::string_view text) {
    if (o.debug_fn != nullptr) {
        o.debug_fn(handle, type, const_cast<char*>(text.data()), text.size(), o.debug_data);
        return;
    }
    FILE* out = o.stderr_stream != nullptr ? o.stderr_stream : stderr;
    std::fputs(type == CURLINFO_TEXT ? "* " : "< ", out);
    std::fwrite(text.data(), 1, text.size(), out);
}

// CURLOPT_VERBOSE on a hit: one line that says the cache answered and why, then the
// response header lines as libcurl shows what it receives (no connection, no request).
void show_verbose(CURL* handle, const Options& o, const Replay& r) {
    std::string line = "curlcache: " + (r.note.empty() ? std::string("HIT") : r.note) + "\n";
    debug_out(handle, o, CURLINFO_TEXT, line);
    for (std::string_view block : r.blocks) {
        for (std::string_view header : split_lines(block)) {
            debug_out(handle, o, CURLINFO_HEADER_IN, header);
        }
    }
}

} // namespace

CURLcode replay(const CurlApi& api, CURL* handle) {
    HandleState* state = find_state(handle);
    if (state == nullptr || !state->replay) {
        return api.easy_perform ? api.easy_perform(handle) : CURLE_FAILED_INIT;
    }
    const Options& o = state->options;
    Replay& r = *state->replay;
    if (o.errorbuffer != nullptr) {
        o.errorbuffer[0] = '\0';
    }
    if (r.kind == Replay::Kind::offline_miss) {
        set_error(o, "curlcache: offline and not cached: %s", r.effective_url.c_str());
        return CURLE_COULDNT_CONNECT;
    }
    auto start = std::chrono::steady_clock::now();
    CURLcode result = CURLE_OK;
    try {
        if (o.verbose) {
            show_verbose(handle, o, r);
        }
        feed_cookies(api, handle, o, r); // as libcurl does while it parses the headers
        result = deliver_all(o, r);
    } catch (...) {
        // A C++ program's callback threw through us: report a write error, as libcurl
        // cannot propagate it either.
        result = CURLE_WRITE_ERROR;
    }
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    r.total_time = took.count() > 1e-6 ? took.count() : 1e-6;
    if (Cache* cache = process_cache()) {
        cache->stats().bytes_served.fetch_add(r.deliver_body ? r.body.size() : 0,
                                              std::memory_order_relaxed);
    }
    return result;
}

} // namespace curlcache::core::easy
