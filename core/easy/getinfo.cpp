// getinfo: the transfer facts recorded on a miss, and the answers for a handle whose last
// transfer was replayed (recorded facts, adjusted to what was delivered this time).
#include "core/easy/cookies.h"
#include "core/easy/engine_internal.h"
#include "core/easy/http_text.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstring>

// Deprecated infos (SIZE_DOWNLOAD, ...) are still asked by programs: they are emulated too.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace curlcache::core::easy {

namespace {

// Everything a program may ask after an HTTP transfer that has a plain value. Pointer-typed
// infos (PRIVATE, CERTINFO, TLS_*, COOKIELIST, sockets) are answered separately.
constexpr CURLINFO k_recorded[] = {
    CURLINFO_EFFECTIVE_URL,
    CURLINFO_CONTENT_TYPE,
    CURLINFO_REDIRECT_URL,
    CURLINFO_PRIMARY_IP,
    CURLINFO_LOCAL_IP,
    CURLINFO_SCHEME,
    CURLINFO_REFERER,
    CURLINFO_RESPONSE_CODE,
    CURLINFO_HEADER_SIZE,
    CURLINFO_REQUEST_SIZE,
    CURLINFO_SSL_VERIFYRESULT,
    CURLINFO_PROXY_SSL_VERIFYRESULT,
    CURLINFO_REDIRECT_COUNT,
    CURLINFO_HTTP_CONNECTCODE,
    CURLINFO_HTTPAUTH_AVAIL,
    CURLINFO_PROXYAUTH_AVAIL,
    CURLINFO_PRIMARY_PORT,
    CURLINFO_LOCAL_PORT,
    CURLINFO_HTTP_VERSION,
    CURLINFO_PROTOCOL,
    CURLINFO_PROXY_ERROR,
    CURLINFO_SIZE_UPLOAD,
    CURLINFO_SIZE_DOWNLOAD,
    CURLINFO_SPEED_UPLOAD,
    CURLINFO_CONTENT_LENGTH_DOWNLOAD,
    CURLINFO_CONTENT_LENGTH_UPLOAD,
    CURLINFO_SIZE_UPLOAD_T,
    CURLINFO_SIZE_DOWNLOAD_T,
    CURLINFO_SPEED_UPLOAD_T,
    CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
    CURLINFO_CONTENT_LENGTH_UPLOAD_T,
    CURLINFO_RETRY_AFTER,
};

const Info* recorded(const Replay& r, CURLINFO id) {
    return r.entry.info(static_cast<uint32_t>(id));
}

} // namespace

// Bytes of body this replay delivered, as libcurl counts them (the wire size on a full
// answer: compressed when the recorded transfer decoded the body).
int64_t replay_download_size(const Replay& r) {
    if (!r.deliver_body) {
        return 0;
    }
    if (r.kind == Replay::Kind::partial) {
        return static_cast<int64_t>(r.body_size());
    }
    return r.size_download != nullptr ? r.size_download->integer
                                      : static_cast<int64_t>(r.body_size());
}

int64_t replay_content_length(const Replay& r) {
    if (r.kind == Replay::Kind::partial) {
        return static_cast<int64_t>(r.body_size());
    }
    if (r.kind == Replay::Kind::not_modified) {
        return 0; // libcurl: a 304 has no body, its size is 0
    }
    return r.content_length != nullptr ? r.content_length->integer : -1;
}

namespace {

struct Answer {
    enum class Kind { forward, integer, real, text, pointer } kind = Kind::forward;
    int64_t integer = 0;
    double real = 0;
    const char* text = nullptr;
    void* pointer = nullptr;
};

Answer integer(int64_t v) {
    return {Answer::Kind::integer, v, 0, nullptr, nullptr};
}
Answer real(double v) {
    return {Answer::Kind::real, 0, v, nullptr, nullptr};
}
Answer text(const char* v) {
    return {Answer::Kind::text, 0, 0, v, nullptr};
}

// A recorded text as the program gets it: NUL-terminated, at the same address for the rest
// of the transfer (the entry's own text is a view into the stored value, not terminated).
const char* c_text(Replay& r, const Info& info) {
    auto [at, added] = r.info_texts.try_emplace(info.id);
    if (added) {
        at->second = info.text.str();
    }
    return at->second.c_str();
}

// The URL of hop `block` of a redirect chain: the request URL, then each Location resolved
// against the URL before it.
std::string hop_url(const Replay& r, size_t block) {
    std::string url = r.request_url;
    for (size_t i = 0; i < block && i < r.blocks.size(); ++i) {
        if (auto location = header_value(r.blocks[i], "Location"); location && !location->empty()) {
            url = resolve_location(url, *location);
        }
    }
    return url;
}

// What libcurl reports after a header callback refused a line of hop `aborted_block`: the
// status of that hop, and nothing of what came after.
Answer answer_aborted(Replay& r, CURLINFO id, bool& answered) {
    answered = true;
    switch (id) {
    case CURLINFO_RESPONSE_CODE: {
        auto lines = split_lines(r.blocks[r.aborted_block]);
        return integer(lines.empty() ? 0 : status_code(lines.front()).value_or(0));
    }
    case CURLINFO_REDIRECT_COUNT: {
        int64_t hops = 0;
        for (size_t i = 0; i < r.aborted_block; ++i) {
            hops += status_code(r.blocks[i]).value_or(0) / 100 == 3; // not 1xx, 401 hops
        }
        return integer(hops);
    }
    case CURLINFO_HEADER_SIZE:
        return integer(r.header_done);
    case CURLINFO_SIZE_DOWNLOAD_T:
    case CURLINFO_SPEED_DOWNLOAD_T:
        return integer(0);
    case CURLINFO_SIZE_DOWNLOAD:
    case CURLINFO_SPEED_DOWNLOAD:
        return real(0);
    case CURLINFO_CONTENT_LENGTH_DOWNLOAD_T:
    case CURLINFO_FILETIME:
    case CURLINFO_FILETIME_T:
        return integer(-1);
    case CURLINFO_CONTENT_LENGTH_DOWNLOAD:
        return real(-1);
    case CURLINFO_CONTENT_TYPE:
    case CURLINFO_REDIRECT_URL:
        return text(nullptr);
    case CURLINFO_EFFECTIVE_URL:
        if (r.aborted_block == 0 && r.effective_url.empty()) {
            if (const Info* url = r.entry.info(CURLINFO_EFFECTIVE_URL);
                url && r.blocks.size() == 1) {
                return text(c_text(r, *url));
            }
        }
        r.hop_url = hop_url(r, r.aborted_block);
        return text(r.hop_url.c_str());
    default:
        break;
    }
    answered = false;
    return {};
}

curl_certinfo g_no_certificates{0, nullptr};

// What an entry stored without a recorded transfer (curlcache_store, a HAR import) can
// still tell: the facts that follow from its URL and header blocks. The curl command, for
// one, prints `-i` headers only once CURLINFO_PROTOCOL says HTTP(S).
Answer derived(Replay& r, CURLINFO id) {
    const bool https = r.request_url.starts_with("https:") || r.request_url.starts_with("HTTPS:");
    switch (id) {
    case CURLINFO_SCHEME:
        return text(https ? "HTTPS" : "HTTP");
    case CURLINFO_PROTOCOL:
        return integer(https ? CURLPROTO_HTTPS : CURLPROTO_HTTP);
    case CURLINFO_EFFECTIVE_URL:
        r.hop_url = hop_url(r, r.blocks.empty() ? 0 : r.blocks.size() - 1);
        return text(r.hop_url.c_str());
    case CURLINFO_CONTENT_TYPE:
        if (!r.blocks.empty()) {
            if (auto type = header_value(r.blocks.back(), "Content-Type")) {
                r.derived_text.assign(*type);
                return text(r.derived_text.c_str());
            }
        }
        return text(nullptr);
    case CURLINFO_REDIRECT_COUNT: {
        int64_t hops = 0;
        for (size_t i = 0; i + 1 < r.blocks.size(); ++i) {
            hops += status_code(r.blocks[i]).value_or(0) / 100 == 3;
        }
        return integer(hops);
    }
    case CURLINFO_HTTP_VERSION: {
        auto version = r.blocks.empty() ? std::string_view() : status_protocol(r.blocks.back());
        return integer(version == "HTTP/2"     ? CURL_HTTP_VERSION_2_0
                       : version == "HTTP/3"   ? CURL_HTTP_VERSION_3
                       : version == "HTTP/1.0" ? CURL_HTTP_VERSION_1_0
                                               : CURL_HTTP_VERSION_1_1);
    }
    default:
        return integer(0); // typed by the caller: 0, 0.0 or NULL
    }
}

Answer answer(Replay& r, CURLINFO id);

// The timings of a replay, in microseconds. Nothing was looked up, connected or waited for,
// so the phases libcurl reports are laid out over the time the replay took (at least a few
// microseconds), in libcurl's order: namelookup <= connect <= appconnect <= pretransfer <=
// starttransfer <= total. The redirect hops take their share of it first, so redirect_time
// is > 0 exactly when redirect_count is, and the phases of the final request come after it,
// as libcurl counts them from the start of the first request. appconnect stays 0 for a plain
// http:// final URL, as libcurl reports it (no TLS handshake). The double infos are these
// values / 1e6, so the _T and the double variants agree.
int64_t timing_us(Replay& r, CURLINFO id) {
    const Answer hops_answer = answer(r, CURLINFO_REDIRECT_COUNT);
    const int64_t hops = hops_answer.kind == Answer::Kind::integer ? hops_answer.integer : 0;
    const int64_t requests = 1 + std::max<int64_t>(0, hops);
    const int64_t total = std::max<int64_t>(static_cast<int64_t>(r.total_time * 1e6), 8 * requests);
    const int64_t redirect = total * (requests - 1) / requests;
    const int64_t last = total - redirect; // >= 8: every phase below is distinct
    const Answer scheme = answer(r, CURLINFO_SCHEME);
    const bool tls = scheme.kind == Answer::Kind::text && scheme.text != nullptr &&
                     strcasecmp(scheme.text, "https") == 0;
    switch (id) {
    case CURLINFO_NAMELOOKUP_TIME:
    case CURLINFO_NAMELOOKUP_TIME_T:
        return redirect + last / 8;
    case CURLINFO_CONNECT_TIME:
    case CURLINFO_CONNECT_TIME_T:
        return redirect + last * 2 / 8;
    case CURLINFO_APPCONNECT_TIME:
    case CURLINFO_APPCONNECT_TIME_T:
        return tls ? redirect + last * 3 / 8 : 0;
    case CURLINFO_PRETRANSFER_TIME:
    case CURLINFO_PRETRANSFER_TIME_T:
        return redirect + last * 4 / 8;
    case CURLINFO_STARTTRANSFER_TIME:
    case CURLINFO_STARTTRANSFER_TIME_T:
        return redirect + last * 5 / 8;
    case CURLINFO_REDIRECT_TIME:
    case CURLINFO_REDIRECT_TIME_T:
        return redirect;
    default:
        return total;
    }
}

Answer answer(Replay& r, CURLINFO id) {
    const bool offline = r.kind == Replay::Kind::offline_miss;
    if (r.aborted_in_headers && r.aborted_block < r.blocks.size()) {
        bool answered = false;
        Answer a = answer_aborted(r, id, answered);
        if (answered) {
            return a;
        }
    }
    switch (id) {
    case CURLINFO_PRIVATE:
    case CURLINFO_TLS_SESSION:
    case CURLINFO_TLS_SSL_PTR:
    case CURLINFO_COOKIELIST:
    case CURLINFO_SSL_ENGINES:
    case CURLINFO_CAINFO: // build defaults, not transfer facts
    case CURLINFO_CAPATH:
        return {};
    case CURLINFO_CERTINFO:
        return {Answer::Kind::pointer, 0, 0, nullptr, &g_no_certificates};
    case CURLINFO_ACTIVESOCKET:
        return integer(CURL_SOCKET_BAD);
    case CURLINFO_LASTSOCKET:
        return integer(-1);
    case CURLINFO_RESPONSE_CODE:
        return integer(r.status);
    case CURLINFO_HEADER_SIZE:
        return integer(r.header_size);
    case CURLINFO_CONDITION_UNMET:
        return integer(r.condition_unmet ? 1 : 0);
    case CURLINFO_FILETIME:
    case CURLINFO_FILETIME_T:
        return integer(r.filetime);
    case CURLINFO_NUM_CONNECTS:
    case CURLINFO_OS_ERRNO:
        return integer(0);
    case CURLINFO_SIZE_DOWNLOAD_T:
        return integer(replay_download_size(r));
    case CURLINFO_SIZE_DOWNLOAD:
        return real(static_cast<double>(replay_download_size(r)));
    case CURLINFO_CONTENT_LENGTH_DOWNLOAD_T:
        return integer(replay_content_length(r));
    case CURLINFO_CONTENT_LENGTH_DOWNLOAD:
        return real(static_cast<double>(replay_content_length(r)));
    case CURLINFO_NAMELOOKUP_TIME:
    case CURLINFO_CONNECT_TIME:
    case CURLINFO_APPCONNECT_TIME:
    case CURLINFO_PRETRANSFER_TIME:
    case CURLINFO_STARTTRANSFER_TIME:
    case CURLINFO_TOTAL_TIME:
    case CURLINFO_REDIRECT_TIME:
        return real(static_cast<double>(timing_us(r, id)) / 1e6);
    case CURLINFO_NAMELOOKUP_TIME_T:
    case CURLINFO_CONNECT_TIME_T:
    case CURLINFO_APPCONNECT_TIME_T:
    case CURLINFO_PRETRANSFER_TIME_T:
    case CURLINFO_STARTTRANSFER_TIME_T:
    case CURLINFO_TOTAL_TIME_T:
    case CURLINFO_REDIRECT_TIME_T:
        return integer(timing_us(r, id));
    case CURLINFO_SPEED_DOWNLOAD: // bytes per second over the reported total time
        return real(static_cast<double>(replay_download_size(r)) * 1e6 /
                    static_cast<double>(timing_us(r, CURLINFO_TOTAL_TIME_T)));
    case CURLINFO_SPEED_DOWNLOAD_T:
        return integer(replay_download_size(r) * 1000000 / timing_us(r, CURLINFO_TOTAL_TIME_T));
    case CURLINFO_EFFECTIVE_METHOD:
        return text(r.effective_method.c_str());
    case CURLINFO_CONTENT_TYPE:
        if (r.kind == Replay::Kind::not_modified) {
            return text(nullptr); // a 304 carries no Content-Type (measured)
        }
        break;
    case CURLINFO_EFFECTIVE_URL:
        if (!r.effective_url.empty()) { // offline, or credentials put back
            return text(r.effective_url.c_str());
        }
        break;
    default:
        break;
    }
    if (offline) {
        return integer(0); // typed below: 0, 0.0 or NULL
    }
    const Info* info = recorded(r, id);
    if (info == nullptr) {
        return derived(r, id);
    }
    switch (info->type) {
    case Info::Type::text:
        return text(c_text(r, *info));
    case Info::Type::real:
        return real(info->real);
    case Info::Type::integer:
        return integer(info->integer);
    }
    return integer(0);
}

CURLcode write_answer(const Answer& a, CURLINFO id, void* out) {
    switch (static_cast<int>(id) & CURLINFO_TYPEMASK) {
    case CURLINFO_STRING:
        *static_cast<const char**>(out) = a.kind == Answer::Kind::text ? a.text : nullptr;
        return CURLE_OK;
    case CURLINFO_LONG:
        *static_cast<long*>(out) =
            static_cast<long>(a.kind == Answer::Kind::real ? a.real : a.integer);
        return CURLE_OK;
    case CURLINFO_DOUBLE:
        *static_cast<double*>(out) =
            a.kind == Answer::Kind::real ? a.real : static_cast<double>(a.integer);
        return CURLE_OK;
    case CURLINFO_OFF_T:
        *static_cast<curl_off_t*>(out) =
            a.kind == Answer::Kind::real ? static_cast<curl_off_t>(a.real) : a.integer;
        return CURLE_OK;
    case CURLINFO_SOCKET:
        *static_cast<curl_socket_t*>(out) = static_cast<curl_socket_t>(a.integer);
        return CURLE_OK;
    case CURLINFO_PTR: // also CURLINFO_SLIST
        *static_cast<void**>(out) = a.pointer;
        return CURLE_OK;
    default:
        return CURLE_UNKNOWN_OPTION;
    }
}

} // namespace

std::vector<Info> record_infos(const CurlApi& api, CURL* handle) {
    std::vector<Info> infos;
    infos.reserve(std::size(k_recorded));
    for (CURLINFO id : k_recorded) {
        Info info;
        info.id = static_cast<uint32_t>(id);
        CURLcode rc = CURLE_UNKNOWN_OPTION;
        switch (static_cast<int>(id) & CURLINFO_TYPEMASK) {
        case CURLINFO_STRING: {
            const char* value = nullptr;
            rc = api.easy_getinfo(handle, id, &value);
            if (rc != CURLE_OK || value == nullptr) {
                continue;
            }
            info.type = Info::Type::text;
            info.text = value;
            if (id == CURLINFO_EFFECTIVE_URL || id == CURLINFO_REDIRECT_URL ||
                id == CURLINFO_REFERER) {
                // No secrets at rest: the URL's credentials are left out; a hit puts the
                // program's own (same credentials: they are part of the key) back in.
                if (!url_userinfo(info.text).empty()) {
                    info.text = without_userinfo(info.text);
                    if (id == CURLINFO_EFFECTIVE_URL) {
                        Info marker;
                        marker.id = k_info_effective_url_had_userinfo;
                        marker.integer = 1;
                        infos.push_back(marker);
                    }
                }
            }
            break;
        }
        case CURLINFO_LONG: {
            long value = 0;
            rc = api.easy_getinfo(handle, id, &value);
            info.integer = value;
            break;
        }
        case CURLINFO_DOUBLE: {
            double value = 0;
            rc = api.easy_getinfo(handle, id, &value);
            info.type = Info::Type::real;
            info.real = value;
            break;
        }
        case CURLINFO_OFF_T: {
            curl_off_t value = 0;
            rc = api.easy_getinfo(handle, id, &value);
            info.integer = value;
            break;
        }
        default:
            continue;
        }
        if (rc == CURLE_OK) {
            infos.push_back(std::move(info));
        }
    }
    return infos;
}

CURLcode easy_getinfo(const CurlApi& api, CURL* handle, CURLINFO info, va_list args) {
    void* out = va_arg(args, void*);
    if (HandleState* state = handle ? find_state(handle) : nullptr;
        state != nullptr && state->last == HandleState::Last::replayed && state->replay &&
        out != nullptr) {
        try {
            Answer a = answer(*state->replay, info);
            if (a.kind != Answer::Kind::forward) {
                return write_answer(a, info, out);
            }
        } catch (...) {
        }
    }
    return api.easy_getinfo(handle, info, out);
}

} // namespace curlcache::core::easy
