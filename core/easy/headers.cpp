// curl_easy_header / curl_easy_nextheader for a handle whose last transfer was replayed:
// libcurl's own header store is empty then, so the answers come from the replayed header
// blocks, with libcurl's semantics (amount and index per name within the origin mask and
// request, request -1 = the last one, 1xx responses belong to the request they precede).
#include "core/easy/engine_internal.h"
#include "core/easy/http_text.h"

#include <string>

namespace curlcache::core::easy {

namespace {

constexpr unsigned int k_all_origins =
    CURLH_HEADER | CURLH_TRAILER | CURLH_CONNECT | CURLH_1XX | CURLH_PSEUDO;

// libcurl marks the structs it hands out with a reserved bit (so that programs compare
// origins with a mask); the emulation does the same.
constexpr unsigned int k_reserved_origin_bit = 1u << 27;

const std::vector<StoredHeader>& header_store(Replay& r) {
    if (r.header_store) {
        return *r.header_store;
    }
    std::vector<StoredHeader> store;
    int request = 0;
    for (std::string_view block : r.blocks) {
        auto lines = split_lines(block);
        if (lines.empty()) {
            continue;
        }
        long status = status_code(lines.front()).value_or(0);
        unsigned int origin = status / 100 == 1 ? CURLH_1XX : CURLH_HEADER;
        std::string_view protocol = status_protocol(lines.front());
        if (protocol == "HTTP/2" || protocol == "HTTP/3") {
            // libcurl keeps HTTP/2 and /3's status as the pseudo header ":status"
            store.push_back({":status", std::to_string(status), CURLH_PSEUDO, request});
        }
        for (size_t i = 1; i < lines.size(); ++i) {
            std::string_view line = lines[i];
            if (!line.empty() && (line.front() == ' ' || line.front() == '\t') && !store.empty()) {
                std::string_view more = trim(line); // an obsolete folded continuation line
                if (!more.empty()) {
                    store.back().value.append(" ").append(more);
                }
                continue;
            }
            std::string_view name, value;
            if (split_header(line, name, value)) {
                store.push_back({std::string(name), std::string(value), origin, request});
            }
        }
        if (origin != CURLH_1XX) {
            ++request;
        }
    }
    r.last_request = request > 0 ? request - 1 : 0;
    if (r.deliver_body) {
        for (std::string_view line : lines_of(r.trailers)) {
            std::string_view name, value;
            if (split_header(line, name, value)) {
                store.push_back(
                    {std::string(name), std::string(value), CURLH_TRAILER, r.last_request});
            }
        }
    }
    r.header_store = std::move(store);
    return *r.header_store;
}

void expose(const StoredHeader& h, size_t index, size_t amount, curl_header& out) {
    out.name = const_cast<char*>(h.name.c_str());
    out.value = const_cast<char*>(h.value.c_str());
    out.amount = amount;
    out.index = index;
    out.origin = h.origin | k_reserved_origin_bit;
    out.anchor = const_cast<StoredHeader*>(&h);
}

bool replayed(HandleState* state) {
    return state != nullptr && state->last == HandleState::Last::replayed && state->replay;
}

} // namespace

CURLHcode easy_header(const CurlApi& api, CURL* handle, const char* name, size_t index,
                      unsigned int origin, int request, struct curl_header** hout) {
    HandleState* state = handle ? find_state(handle) : nullptr;
    if (!replayed(state)) {
        return api.easy_header ? api.easy_header(handle, name, index, origin, request, hout)
                               : CURLHE_NOT_BUILT_IN;
    }
    if (name == nullptr || hout == nullptr || origin == 0 || (origin & ~k_all_origins) != 0 ||
        request < -1) {
        return CURLHE_BAD_ARGUMENT;
    }
    try {
        Replay& r = *state->replay;
        const auto& store = header_store(r);
        if (store.empty()) {
            return CURLHE_NOHEADERS;
        }
        if (request > r.last_request) {
            return CURLHE_NOREQUEST;
        }
        if (request == -1) {
            request = r.last_request;
        }
        std::vector<const StoredHeader*> matches;
        for (const auto& h : store) {
            if ((h.origin & origin) && h.request == request && iequals(h.name, name)) {
                matches.push_back(&h);
            }
        }
        if (matches.empty()) {
            return CURLHE_MISSING;
        }
        if (index >= matches.size()) {
            return CURLHE_BADINDEX;
        }
        expose(*matches[index], index, matches.size(), r.header_out[0]);
        *hout = &r.header_out[0];
        return CURLHE_OK;
    } catch (...) {
        return CURLHE_OUT_OF_MEMORY;
    }
}

struct curl_header* easy_nextheader(const CurlApi& api, CURL* handle, unsigned int origin,
                                    int request, struct curl_header* prev) {
    HandleState* state = handle ? find_state(handle) : nullptr;
    if (!replayed(state)) {
        return api.easy_nextheader ? api.easy_nextheader(handle, origin, request, prev) : nullptr;
    }
    try {
        Replay& r = *state->replay;
        const auto& store = header_store(r);
        if (request > r.last_request) {
            return nullptr;
        }
        if (request == -1) {
            request = r.last_request;
        }
        size_t at = 0;
        if (prev != nullptr) {
            auto* anchor = static_cast<const StoredHeader*>(prev->anchor);
            if (anchor == nullptr || anchor < store.data() ||
                anchor >= store.data() + store.size()) {
                return nullptr;
            }
            at = static_cast<size_t>(anchor - store.data()) + 1;
        }
        while (at < store.size() &&
               !((store[at].origin & origin) && store[at].request == request)) {
            ++at;
        }
        if (at >= store.size()) {
            return nullptr;
        }
        const StoredHeader& pick = store[at];
        size_t amount = 0;
        size_t index = 0;
        for (size_t i = 0; i < store.size(); ++i) {
            const StoredHeader& h = store[i];
            if ((h.origin & origin) && h.request == request && iequals(h.name, pick.name)) {
                ++amount;
            }
            if (i == at) {
                index = amount - 1;
            }
        }
        expose(pick, index, amount, r.header_out[1]);
        return &r.header_out[1];
    } catch (...) {
        return nullptr;
    }
}

} // namespace curlcache::core::easy
