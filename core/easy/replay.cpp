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
#include <optional>

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
        Text& last = entry.header_blocks.back();
        last = http::with_age(last, std::max<int64_t>(0, entry.freshness.current_age(now)));
    }
}

namespace {

// Makes the stored chunk that holds body byte `at` the one in r.chunk, read and checked.
// False when it cannot be read or is corrupt (then removed and counted): r.chunk then says
// why, for the program's ERRORBUFFER.
bool load_chunk(Replay& r, uint64_t at) {
    StoredBody& body = *r.stored;
    const size_t index = static_cast<size_t>(at / body.chunk_size);
    if (index == r.chunk_index) {
        return true;
    }
    r.chunk_index = static_cast<size_t>(-1);
    if (index == 0 && !body.first_chunk.empty()) {
        r.chunk.swap(body.first_chunk); // read and checked by the lookup
        r.chunk_index = 0;
        return true;
    }
    auto good = body.read_chunk(index, r.chunk);
    if (good && *good) {
        r.chunk_index = index;
        return true;
    }
    Cache* cache = process_cache();
    if (!good) {
        // Not the entry's fault (a backend error, a value replaced meanwhile): kept.
        log::warn_once("stream-read", "cannot read a cached body: %s",
                       good.error().message.c_str());
        r.chunk = "cannot read the cached body (" + good.error().message + ")";
    } else {
        if (cache != nullptr) {
            cache->drop_corrupt(body.key);
        }
        r.chunk = "the cached body failed its checksum (the entry was removed)";
    }
    return false;
}

} // namespace

namespace {

// prepare_hit's work on the handle's replay `r` (fresh, around its entry); false when the
// entry cannot answer.
bool fill_hit(HandleState& state, const Plan& plan, Replay& r) {
    const Options& o = state.options;
    const Entry& e = r.entry;
    if (e.header_blocks.empty()) {
        return false;
    }
    r.blocks = std::move(state.spare_blocks);
    r.blocks.assign(e.header_blocks.begin(), e.header_blocks.end());
    r.body = e.body;
    const uint64_t body_size = e.body_size();
    r.stored = std::move(r.entry.stored_body); // one owner: the reader goes when delivered
    r.streamed = r.stored != nullptr;
    r.stored_length = body_size;
    static constexpr uint32_t k_wanted[] = {
        k_info_trailers,          k_info_effective_url_had_userinfo,  CURLINFO_EFFECTIVE_URL,
        CURLINFO_SIZE_DOWNLOAD_T, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, k_info_transfer_time_us};
    const Info* found[std::size(k_wanted)];
    e.info(k_wanted, found);
    const auto [trailers, had_userinfo, url, size_download, content_length, took] = found;
    if (trailers != nullptr) {
        r.trailers = trailers->text;
    }
    r.size_download = size_download;
    r.content_length = content_length;
    r.time_saved_ms = time_saved_ms(took);
    r.status = e.status;
    r.effective_method = plan.request.method;
    r.request_url = std::move(state.spare_url);
    r.request_url.assign(plan.request.url);
    if (had_userinfo != nullptr && url != nullptr) {
        r.effective_url = with_userinfo(url->text, url_userinfo(plan.request.url));
    }
    std::string_view last = e.header_blocks.back();

    if (plan.range) {
        // Cut from the body as delivered; a decoded body no longer matches the wire bytes
        // the range talks about, so that case passes through.
        bool decoded = o.accept_encoding && header_value(last, "Content-Encoding");
        auto range = parse_range(*plan.range, body_size);
        if (e.status != 200 || decoded || !range) {
            return false;
        }
        r.kind = Replay::Kind::partial;
        r.status = 206;
        r.synthesised = make_206(last, *range, body_size);
        r.blocks.back() = r.synthesised;
        if (r.stored) {
            r.stored_first = range->first;
            r.stored_length = range->last - range->first + 1;
        } else {
            r.body = e.body.substr(range->first, range->last - range->first + 1);
        }
        r.trailers = {};
    } else if (plan.conditional() && condition_holds(plan, e)) {
        r.kind = Replay::Kind::not_modified;
        r.status = 304;
        r.synthesised = make_304(last);
        r.blocks.back() = r.synthesised;
        r.body = {};
        r.stored.reset();
        r.streamed = false;
        r.stored_length = 0;
        r.trailers = {};
        r.deliver_body = false;
        r.condition_unmet = true; // libcurl 7.88 reports it for every 304 (measured)
    }
    if (o.nobody) {
        r.deliver_body = false;
    }
    if (o.failonerror && r.status >= 400) {
        r.fail_http = true;
        r.deliver_body = false;
    }
    if (!r.deliver_body) {
        r.stored.reset(); // nothing of it is read
    } else if (r.stored && r.stored_length > 0 && !load_chunk(r, r.stored_first)) {
        // The first chunk to deliver is read (and checked) before anything reaches the
        // program: if it is corrupt or cannot be read, the transfer still passes through.
        return false;
    }
    for (std::string_view block : r.blocks) {
        r.header_size += static_cast<int64_t>(block.size());
    }
    if (o.filetime && r.kind != Replay::Kind::not_modified) { // -1 on a 304 (measured)
        if (auto modified = header_value(r.blocks.back(), "Last-Modified")) {
            r.filetime = parse_http_date(*modified).value_or(-1);
        }
    }
    return true;
}

} // namespace

bool prepare_hit(HandleState& state, const Plan& plan, Entry&& entry) {
    // Built in place in the handle's state (no allocation of its own), and let go of again
    // when the entry cannot answer.
    if (!fill_hit(state, plan, state.replay.emplace(std::move(entry)))) {
        state.replay.reset();
        return false;
    }
    state.last = HandleState::Last::replayed;
    return true;
}

void prepare_offline_miss(HandleState& state, const Plan& plan) {
    Replay& r = state.replay.emplace();
    r.kind = Replay::Kind::offline_miss;
    r.effective_url = plan.request.url;
    r.effective_method = plan.request.method;
    r.deliver_body = false;
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

// Progress counts wire bytes, as libcurl does (compressed when the body was decoded).
struct Totals {
    curl_off_t wire = 0;
    curl_off_t total = 0;
};

Totals totals_of(const Replay& r) {
    Totals t;
    t.wire = r.deliver_body ? replay_download_size(r) : 0;
    const int64_t length = replay_content_length(r);
    t.total = r.deliver_body ? (length >= 0 ? length : t.wire) : 0;
    return t;
}

// The first progress call and every header line; CURLE_OK to go on to the body.
CURLcode deliver_head(const Options& o, Replay& r, const Totals& t) {
    if (!progress(o, 0, 0)) {
        set_error(o, "Callback aborted");
        return CURLE_ABORTED_BY_CALLBACK;
    }
    // libcurl: a header line goes to the write callback first under CURLOPT_HEADER, then to
    // the header callback, or to the write callback with HEADERDATA when only that is set.
    const bool to_header = o.header_fn != nullptr || o.header_data != nullptr;
    curl_write_callback header_fn = o.header_fn != nullptr ? o.header_fn : o.write_fn;
    // Nobody takes header lines: nothing is cut into lines (header_done, the bytes accepted
    // before a callback refused one, is read only after such an abort).
    const bool takes_lines = o.header || to_header;
    for (size_t i = 0; takes_lines && i < r.blocks.size(); ++i) {
        for (std::string_view line : lines_of(r.blocks[i])) {
            const char* failure = nullptr;
            if (o.header && !deliver(o, o.write_fn, o.write_data, line, t.total, 0)) {
                failure = "Failure writing output to destination";
            } else if (to_header && !deliver(o, header_fn, o.header_data, line, t.total, 0)) {
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
    return CURLE_OK;
}

// The body bytes still to deliver that are in memory now: the rest of r.body, or of the
// stored chunk at the delivery point (read and checked first). Empty when done; sets
// `failed` (and the error) when the stored chunk cannot be read or is corrupt.
std::string_view next_bytes(const Options& o, Replay& r, CURLcode& failed) {
    if (!r.stored) {
        return r.body.substr(static_cast<size_t>(r.body_done));
    }
    if (r.body_done >= r.stored_length) {
        return {};
    }
    const uint64_t at = r.stored_first + r.body_done;
    if (!load_chunk(r, at)) {
        // Bytes before this chunk were delivered and cannot be taken back: the transfer
        // fails, as a download cut short would, and never ends as a success.
        set_error(o, "curlcache: %s at byte %llu of the cached body", r.chunk.c_str(),
                  static_cast<unsigned long long>(at));
        failed = CURLE_PARTIAL_FILE;
        return {};
    }
    const uint64_t chunk_start = static_cast<uint64_t>(r.chunk_index) * r.stored->chunk_size;
    std::string_view bytes(r.chunk);
    bytes.remove_prefix(static_cast<size_t>(at - chunk_start));
    return bytes.substr(0, static_cast<size_t>(r.stored_length - r.body_done));
}

// Delivers body bytes until the body is done or `budget` bytes went out (the caller then
// comes back for more). CURLE_OK while all is well.
CURLcode deliver_body(const Options& o, Replay& r, const Totals& t, uint64_t budget) {
    const size_t piece = static_cast<size_t>(
        o.buffersize < CURL_MAX_WRITE_SIZE ? o.buffersize : CURL_MAX_WRITE_SIZE);
    uint64_t sent = 0;
    while (sent < budget) {
        CURLcode failed = CURLE_OK;
        std::string_view rest = next_bytes(o, r, failed);
        if (failed != CURLE_OK) {
            return failed;
        }
        if (rest.empty()) {
            break;
        }
        while (!rest.empty()) {
            std::string_view chunk = rest.substr(0, piece);
            if (!deliver(o, o.write_fn, o.write_data, chunk, t.total,
                         static_cast<curl_off_t>(r.body_done))) {
                set_error(o, "Failure writing output to destination");
                return CURLE_WRITE_ERROR;
            }
            rest.remove_prefix(chunk.size());
            r.body_done += chunk.size();
            sent += chunk.size();
        }
    }
    return CURLE_OK;
}

// The trailers (header callback only) and the last progress call.
CURLcode deliver_tail(const Options& o, Replay& r, const Totals& t) {
    if (r.deliver_body) {
        const bool to_header = o.header_fn != nullptr || o.header_data != nullptr;
        curl_write_callback header_fn = o.header_fn != nullptr ? o.header_fn : o.write_fn;
        for (std::string_view line : lines_of(r.trailers)) {
            if (to_header && !deliver(o, header_fn, o.header_data, line, t.total,
                                      static_cast<curl_off_t>(r.body_done))) {
                set_error(o, "Failed writing header");
                return CURLE_WRITE_ERROR;
            }
        }
    }
    if (!progress(o, t.total, r.deliver_body ? t.wire : 0)) {
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
        for (std::string_view header : lines_of(block)) {
            debug_out(handle, o, CURLINFO_HEADER_IN, header);
        }
    }
}

} // namespace

std::optional<CURLcode> replay_some(const CurlApi& api, CURL* handle, uint64_t budget) {
    HandleState* state = find_state(handle);
    if (state == nullptr || !state->replay) {
        return api.easy_perform ? api.easy_perform(handle) : CURLE_FAILED_INIT;
    }
    const Options& o = state->options;
    Replay& r = *state->replay;
    if (r.kind == Replay::Kind::offline_miss) {
        if (o.errorbuffer != nullptr) {
            o.errorbuffer[0] = '\0';
        }
        set_error(o, "curlcache: offline and not cached: %s", r.effective_url.c_str());
        return CURLE_COULDNT_CONNECT;
    }
    auto start = std::chrono::steady_clock::now();
    CURLcode result = CURLE_OK;
    const Totals totals = totals_of(r);
    try {
        if (r.step == Replay::Step::start) {
            if (o.errorbuffer != nullptr) {
                o.errorbuffer[0] = '\0';
            }
            if (o.verbose) {
                show_verbose(handle, o, r);
            }
            feed_cookies(api, handle, o, r); // as libcurl does while it parses the headers
            result = deliver_head(o, r, totals);
            r.step = Replay::Step::body;
        }
        if (result == CURLE_OK && r.deliver_body) {
            result = deliver_body(o, r, totals, budget);
            if (result == CURLE_OK && r.body_done < r.body_size()) {
                std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
                r.busy_time += took.count();
                return std::nullopt; // more next time
            }
        }
        if (result == CURLE_OK) {
            result = deliver_tail(o, r, totals);
        }
    } catch (...) {
        // A C++ program's callback threw through us: report a write error, as libcurl
        // cannot propagate it either.
        result = CURLE_WRITE_ERROR;
    }
    r.step = Replay::Step::done;
    r.chunk = std::string(); // the buffer of a streamed body goes now, not at cleanup
    r.stored.reset();        // and so does the reader (an open file, a statement)
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    r.busy_time += took.count();
    r.total_time = r.busy_time > 1e-6 ? r.busy_time : 1e-6;
    if (Cache* cache = process_cache()) {
        cache->stats().bytes_served.fetch_add(r.deliver_body ? r.body_done : 0,
                                              std::memory_order_relaxed);
    }
    return result;
}

CURLcode replay(const CurlApi& api, CURL* handle) {
    for (;;) {
        if (std::optional<CURLcode> done = replay_some(api, handle, UINT64_MAX)) {
            return *done;
        }
    }
}

} // namespace curlcache::core::easy
