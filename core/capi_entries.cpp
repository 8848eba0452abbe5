// Public C API: request descriptions, lookup, reading entries and storing responses.
#include "core/capi_internal.h"

#include "core/easy/http_text.h"
#include "core/policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>

namespace curlcache::core::capi {

namespace {

// Splits what a header callback received into one block per response: each block ends
// with its blank line (kept, with its original line ending).
std::vector<Text> split_header_blocks(std::string_view headers) {
    std::vector<Text> blocks;
    size_t start = 0, at = 0;
    while (at < headers.size()) {
        size_t end = headers.find('\n', at);
        size_t next = end == std::string_view::npos ? headers.size() : end + 1;
        std::string_view line = headers.substr(at, next - at);
        at = next;
        if (line == "\r\n" || line == "\n") {
            blocks.emplace_back(headers.substr(start, at - start));
            start = at;
        }
    }
    if (start < headers.size()) {
        blocks.emplace_back(headers.substr(start)); // a final block without its blank line
    }
    return blocks;
}

// The status of a block's status line ("HTTP/1.1 200 OK", "HTTP/2 404"), or 0.
long status_of(std::string_view block) {
    std::vector<std::string_view> lines = easy::split_lines(block);
    return lines.empty() ? 0 : easy::status_code(lines.front()).value_or(0);
}

// The value of the first header `name` in a block, or "".
std::string header_text(std::string_view block, std::string_view name) {
    return std::string(easy::header_value(block, name).value_or(std::string_view{}));
}

// The parts of an entry's key (core::key_parts(), recorded when it was stored; only the
// method, and "recorded no", for an entry stored without them) and the header values of its
// variant ("vary accept-language" -> "de"; "(absent)" when the request had none).
std::vector<std::pair<std::string, std::string>> key_parts_of(const Entry& entry) {
    std::vector<std::pair<std::string, std::string>> parts;
    if (const Info* recorded = entry.info(k_info_key_parts)) {
        for (std::string_view line : easy::lines_of(recorded->text)) {
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
                line.remove_suffix(1);
            }
            size_t tab = line.find('\t');
            if (tab != std::string_view::npos) {
                parts.emplace_back(line.substr(0, tab), line.substr(tab + 1));
            }
        }
    } else {
        parts.emplace_back("method", entry.method);
        parts.emplace_back("recorded", "no");
    }
    for (std::string_view line : easy::lines_of(entry.variant)) {
        while (!line.empty() && line.back() == '\n') {
            line.remove_suffix(1);
        }
        size_t colon = line.find(':');
        parts.emplace_back("vary " + std::string(line.substr(0, colon)),
                           colon == std::string_view::npos ? std::string("(absent)")
                                                           : std::string(line.substr(colon + 1)));
    }
    return parts;
}

// A C entry for a decoded entry: the strings its accessors hand out.
std::unique_ptr<curlcache_entry> make_c_entry(Entry entry, std::string key) {
    auto out = std::make_unique<curlcache_entry>();
    out->key = std::move(key);
    out->url = entry.url.str();
    const Info* effective = entry.info(CURLINFO_EFFECTIVE_URL);
    out->effective_url = effective ? effective->text : entry.url;
    if (const Info* type = entry.info(CURLINFO_CONTENT_TYPE)) {
        out->content_type = type->text;
        out->has_content_type = true;
    } else if (!entry.header_blocks.empty()) {
        if (auto value = easy::header_value(entry.header_blocks.back(), "content-type")) {
            out->content_type = std::string(*value);
            out->has_content_type = true;
        }
    }
    out->key_parts = key_parts_of(entry);
    out->entry = std::move(entry);
    return out;
}

// The key of `key_or_url`: 32 hex digits, else the GET key of the URL, else (when that is
// not stored) the key of a stored entry whose URL is that URL, GET first.
backends::Result<std::optional<Key>> resolve_key(Cache& cache, std::string_view key_or_url) {
    if (auto key = Key::from_hex(key_or_url)) {
        return key;
    }
    Request request;
    request.url = std::string(key_or_url);
    Key key = cache.key(request);
    auto found = cache.storage().get(key.hex());
    if (!found) {
        return std::unexpected(found.error());
    }
    if (*found) {
        return key;
    }
    auto stored = entries_for_url(cache, key_or_url, false);
    if (!stored) {
        return std::unexpected(stored.error());
    }
    auto get = std::find_if(stored->begin(), stored->end(),
                            [](const backends::Metadata& meta) { return meta.method == "GET"; });
    if (get == stored->end()) {
        get = stored->begin();
    }
    return get == stored->end() ? std::nullopt : Key::from_hex(get->key);
}

} // namespace

} // namespace curlcache::core::capi

using namespace curlcache;
using core::capi::fail;
using core::capi::guarded;
using core::capi::with_cache;

extern "C" {

CURLCACHE_EXPORT curlcache_request* curlcache_request_new(const char* method, const char* url) {
    if (!method || !url) {
        return nullptr;
    }
    try {
        auto request = std::make_unique<curlcache_request>();
        request->request.method = method;
        request->request.url = url;
        return request.release();
    } catch (...) {
        return nullptr;
    }
}

CURLCACHE_EXPORT void curlcache_request_free(curlcache_request* request) {
    delete request;
}

CURLCACHE_EXPORT curlcache_code curlcache_request_add_header(curlcache_request* request,
                                                             const char* line) {
    if (!request || !line) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return guarded(nullptr, [&] {
        request->request.headers.emplace_back(line);
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_request_set_body(curlcache_request* request,
                                                           const void* data, size_t size) {
    if (!request || (!data && size > 0)) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return guarded(nullptr, [&] {
        request->request.body.assign(static_cast<const char*>(data), size);
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_request_set_option(curlcache_request* request,
                                                             const char* name, const char* value) {
    if (!request || !name || !value || !name[0]) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return guarded(nullptr, [&] {
        core::Request& r = request->request;
        if (std::strcmp(name, "credentials") == 0) {
            r.credentials = value; // only its salted digest reaches the key
            return CURLCACHE_OK;
        }
        for (auto& option : r.options) { // setting an option again replaces it
            if (option.first == name) {
                option.second = value;
                return CURLCACHE_OK;
            }
        }
        r.options.emplace_back(name, value);
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_request_key(curlcache_handle* handle,
                                                      const curlcache_request* request,
                                                      char key_hex[33]) {
    if (!handle || !request || !key_hex) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    return with_cache(handle, [&](core::Cache& cache) {
        std::string hex = cache.key(request->request).hex();
        std::memcpy(key_hex, hex.c_str(), hex.size() + 1);
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_lookup(curlcache_handle* handle,
                                                 const curlcache_request* request,
                                                 curlcache_entry** out) {
    if (!handle || !request || !out) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    *out = nullptr;
    return with_cache(handle, [&](core::Cache& cache) {
        const config::Settings& settings = cache.settings();
        core::Stats& stats = cache.stats();
        core::policy::Verdict verdict =
            core::policy::request(settings, request->request.method, request->request.url);
        if (verdict != core::policy::Verdict::ok) {
            stats.passthrough.fetch_add(1, std::memory_order_relaxed);
            if (verdict != core::policy::Verdict::disabled && !core::policy::may_fetch(settings)) {
                // Offline never uses the network, even for what the cache cannot answer.
                return fail(handle, CURLCACHE_E_OFFLINE,
                            std::string("offline mode: not cacheable (") +
                                core::policy::describe(verdict) + ")");
            }
            return CURLCACHE_E_MISS;
        }
        if (!core::policy::may_serve(settings)) { // refresh: fetch and store again
            stats.misses.fetch_add(1, std::memory_order_relaxed);
            return CURLCACHE_E_MISS;
        }
        core::Key key = cache.key(request->request);
        auto found = cache.find(key, &request->request.headers);
        if (!found) {
            return fail(handle, found.error());
        }
        std::optional<core::Entry>& entry = *found;
        if (entry && entry->format < 3 && !settings.hermetic) {
            // Stored before freshness was decided by the origin's headers: decided now.
            entry->freshness = {};
            core::policy::stamp_freshness(settings, *entry);
        }
        if (entry &&
            (entry->fresh(core::capi::now_seconds()) || core::policy::serve_stale(settings))) {
            stats.hits.fetch_add(1, std::memory_order_relaxed);
            stats.bytes_served.fetch_add(entry->body.size(), std::memory_order_relaxed);
            *out = core::capi::make_c_entry(std::move(*entry), key.hex()).release();
            return CURLCACHE_OK;
        }
        stats.misses.fetch_add(1, std::memory_order_relaxed);
        if (!core::policy::may_fetch(settings)) {
            return fail(handle, CURLCACHE_E_OFFLINE,
                        "offline mode: no cached entry for " +
                            core::redact_url(request->request.url, settings));
        }
        return CURLCACHE_E_MISS;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_entry_get(curlcache_handle* handle,
                                                    const char* key_or_url, curlcache_entry** out) {
    if (!handle || !key_or_url || !out) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    *out = nullptr;
    return with_cache(handle, [&](core::Cache& cache) {
        auto key = core::capi::resolve_key(cache, key_or_url);
        if (!key) {
            return fail(handle, key.error());
        }
        if (!*key) {
            return CURLCACHE_E_MISS;
        }
        // A response stored per variant (Vary) is shown for a request that sends none of
        // the varied headers.
        static const std::vector<std::string> k_no_headers;
        auto found = cache.find(**key, &k_no_headers);
        if (!found) {
            return fail(handle, found.error());
        }
        if (!*found) {
            return CURLCACHE_E_MISS;
        }
        *out = core::capi::make_c_entry(std::move(**found), (*key)->hex()).release();
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT void curlcache_entry_free(curlcache_entry* entry) {
    delete entry;
}

CURLCACHE_EXPORT const char* curlcache_entry_key(const curlcache_entry* entry) {
    return entry ? entry->key.c_str() : nullptr;
}

CURLCACHE_EXPORT const char* curlcache_entry_method(const curlcache_entry* entry) {
    return entry ? entry->entry.method.c_str() : nullptr;
}

CURLCACHE_EXPORT const char* curlcache_entry_url(const curlcache_entry* entry) {
    return entry ? entry->url.c_str() : nullptr;
}

CURLCACHE_EXPORT const char* curlcache_entry_effective_url(const curlcache_entry* entry) {
    return entry ? entry->effective_url.c_str() : nullptr;
}

CURLCACHE_EXPORT const char* curlcache_entry_content_type(const curlcache_entry* entry) {
    return entry && entry->has_content_type ? entry->content_type.c_str() : nullptr;
}

CURLCACHE_EXPORT long curlcache_entry_status(const curlcache_entry* entry) {
    return entry ? entry->entry.status : 0;
}

CURLCACHE_EXPORT int64_t curlcache_entry_created(const curlcache_entry* entry) {
    return entry ? entry->entry.created : 0;
}

CURLCACHE_EXPORT int64_t curlcache_entry_expires(const curlcache_entry* entry) {
    return entry ? entry->entry.expires : 0;
}

} // extern "C"

namespace {

// "1h", "59m 12s", "3d": a duration as a person reads it.
std::string span(int64_t seconds) {
    if (seconds >= 2 * 86400) {
        return std::to_string(seconds / 86400) + "d";
    }
    if (seconds >= 2 * 3600) {
        return std::to_string(seconds / 3600) + "h";
    }
    if (seconds >= 120) {
        return std::to_string(seconds / 60) + "m" +
               (seconds % 60 ? " " + std::to_string(seconds % 60) + "s" : "");
    }
    return std::to_string(seconds) + "s";
}

std::string describe_freshness(const core::Entry& e, int64_t now) {
    const core::http::Freshness& f = e.freshness;
    using core::http::LifetimeSource;
    std::string why;
    switch (f.source) {
    case LifetimeSource::explicit_:
        why = "the origin's lifetime " + span(f.lifetime);
        break;
    case LifetimeSource::heuristic:
        why = "heuristic lifetime " + span(f.lifetime) + " from Last-Modified";
        break;
    case LifetimeSource::configured:
        why = "configured lifetime " + span(f.lifetime) + " (expire_after, urls_expire_after)";
        break;
    case LifetimeSource::forever:
        return "fresh, never goes stale (configured: expire_after = \"never\")";
    case LifetimeSource::none:
        why = "no freshness information";
        break;
    }
    if (e.expires == 0) {
        return "fresh, never goes stale";
    }
    const std::string next = !e.etag.empty() ? "revalidated on next use (ETag)"
                             : !e.last_modified.empty()
                                 ? "revalidated on next use (Last-Modified)"
                                 : "fetched again on next use (no validator)";
    if (f.no_cache) {
        return "always revalidated (no-cache): " + next;
    }
    const std::string age = ", age " + span(std::max<int64_t>(0, f.current_age(now)));
    if (e.fresh(now)) {
        return "fresh for " + span(e.expires - now) + " more: " + why + age;
    }
    return "stale for " + span(now - e.expires) + ": " + why + age + "; " + next +
           (f.stale_if_error > 0 ? "; stale-if-error " + span(f.stale_if_error) : "");
}

} // namespace

extern "C" {

CURLCACHE_EXPORT const char* curlcache_entry_freshness(const curlcache_entry* entry) {
    if (entry == nullptr) {
        return "";
    }
    auto* mutable_entry = const_cast<curlcache_entry*>(entry);
    if (mutable_entry->freshness.empty()) {
        try {
            mutable_entry->freshness =
                describe_freshness(entry->entry, static_cast<int64_t>(std::time(nullptr)));
        } catch (...) {
            return "";
        }
    }
    return mutable_entry->freshness.c_str();
}

CURLCACHE_EXPORT size_t curlcache_entry_key_part_count(const curlcache_entry* entry) {
    return entry ? entry->key_parts.size() : 0;
}

CURLCACHE_EXPORT curlcache_code curlcache_entry_key_part(const curlcache_entry* entry,
                                                         size_t index, const char** name,
                                                         const char** value) {
    if (!entry || !name || !value || index >= entry->key_parts.size()) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    *name = entry->key_parts[index].first.c_str();
    *value = entry->key_parts[index].second.c_str();
    return CURLCACHE_OK;
}

CURLCACHE_EXPORT size_t curlcache_entry_response_count(const curlcache_entry* entry) {
    return entry ? entry->entry.header_blocks.size() : 0;
}

CURLCACHE_EXPORT curlcache_code curlcache_entry_headers(const curlcache_entry* entry, size_t index,
                                                        const char** data, size_t* size) {
    if (!entry || !data || !size || index >= entry->entry.header_blocks.size()) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    std::string_view block = entry->entry.header_blocks[index];
    *data = block.data();
    *size = block.size();
    return CURLCACHE_OK;
}

CURLCACHE_EXPORT curlcache_code curlcache_entry_body(const curlcache_entry* entry,
                                                     const void** data, size_t* size) {
    if (!entry || !data || !size) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    *data = entry->entry.body.data();
    *size = entry->entry.body.size();
    return CURLCACHE_OK;
}

CURLCACHE_EXPORT curlcache_code curlcache_store(curlcache_handle* handle,
                                                const curlcache_request* request,
                                                const char* headers, size_t headers_size,
                                                const void* body, size_t body_size) {
    if (!handle || !request || (!headers && headers_size > 0) || (!body && body_size > 0)) {
        return fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "NULL argument");
    }
    return with_cache(handle, [&](core::Cache& cache) {
        const config::Settings& settings = cache.settings();
        // The caller fetched these bytes from the network, whether or not they are kept.
        cache.stats().bytes_downloaded.fetch_add(body_size, std::memory_order_relaxed);

        core::Entry entry;
        entry.method = request->request.method;
        for (char& c : entry.method) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        entry.url = core::redact_url(request->request.url, settings);
        entry.header_blocks =
            core::capi::split_header_blocks(std::string_view(headers ? headers : "", headers_size));
        entry.body = std::string_view(static_cast<const char*>(body), body_size);
        if (!entry.header_blocks.empty()) {
            std::string_view last = entry.header_blocks.back();
            entry.status = core::capi::status_of(last);
            entry.etag = core::capi::header_text(last, "etag");
            entry.last_modified = core::capi::header_text(last, "last-modified");
            if (auto type = core::easy::header_value(last, "content-type")) {
                entry.infos.push_back(
                    {CURLINFO_CONTENT_TYPE, core::Info::Type::text, 0, 0, std::string(*type)});
            }
        }
        entry.infos.push_back(
            {CURLINFO_RESPONSE_CODE, core::Info::Type::integer, entry.status, 0, {}});
        if (entry.header_blocks.size() <= 1) { // a chain's is its last hop's, derived on a hit
            entry.infos.push_back(
                {CURLINFO_EFFECTIVE_URL, core::Info::Type::text, 0, 0, entry.url});
        }
        entry.infos.push_back({core::k_info_key_parts, core::Info::Type::text, 0, 0,
                               core::key_parts(request->request, settings)});

        core::policy::Verdict verdict = core::policy::store(settings, entry);
        if (verdict != core::policy::Verdict::ok) {
            curlcache_code code = verdict == core::policy::Verdict::too_large
                                      ? CURLCACHE_E_TOO_LARGE
                                      : CURLCACHE_E_NOT_CACHEABLE;
            return fail(handle, code,
                        std::string("not stored: ") + core::policy::describe(verdict));
        }
        // The request's header lines pick the variant of a response with Vary.
        core::Cache::StoreContext context;
        context.request_lines = &request->request.headers;
        auto stored = cache.store(cache.key(request->request), entry, context);
        if (!stored) {
            return fail(handle, stored.error());
        }
        return *stored ? CURLCACHE_OK : fail(handle, CURLCACHE_E_NOT_CACHEABLE, "not stored");
    });
}

} // extern "C"
