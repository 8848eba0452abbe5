// Validation (RFC 9111 §4.3): conditional request lines, which stored response a 304
// selects, and the header update a 304 brings (RFC 9111 §3.2).
#include "core/http/validation.h"

#include "core/easy/http_text.h"
#include "core/http/cache_control.h"

#include <algorithm>
#include <array>

namespace curlcache::core::http {

namespace {

using easy::iequals;

// Fields a 304 never changes in the stored response (RFC 9111 §3.2 and the hop-by-hop
// fields of RFC 9110 §7.6.1): they describe the stored body or the connection.
constexpr std::array<std::string_view, 11> k_kept_fields = {
    "content-length", "content-encoding", "content-range", "content-type",     "transfer-encoding",
    "trailer",        "connection",       "keep-alive",    "proxy-connection", "te",
    "upgrade"};

bool kept(std::string_view name) {
    return std::any_of(k_kept_fields.begin(), k_kept_fields.end(),
                       [name](std::string_view field) { return iequals(field, name); });
}

// A value usable on a request line of its own: no line breaks smuggled in.
bool single_line(std::string_view value) {
    return !value.empty() && value.find_first_of("\r\n") == std::string_view::npos;
}

bool is_weak(std::string_view etag) {
    return etag.substr(0, 2) == "W/";
}

std::string_view opaque(std::string_view etag) {
    return is_weak(etag) ? etag.substr(2) : etag;
}

// A field line of the 304 that updates the stored block.
struct Update {
    std::string_view name, value;
};

std::vector<Update> updates_of(std::string_view not_modified_block) {
    std::string_view connection = easy::header_value(not_modified_block, "connection").value_or("");
    std::vector<Update> updates;
    for (std::string_view line : easy::split_lines(not_modified_block)) {
        Update update;
        if (line.empty() || line.front() == ' ' || line.front() == '\t' ||
            !easy::split_header(line, update.name, update.value)) {
            continue;
        }
        update.name = easy::trim(update.name);
        if (!update.name.empty() && !kept(update.name) && !list_has(connection, update.name)) {
            updates.push_back(update);
        }
    }
    return updates;
}

bool bare_newlines(std::string_view block) {
    size_t newline = block.find('\n');
    return newline != std::string_view::npos && (newline == 0 || block[newline - 1] != '\r');
}

} // namespace

std::vector<std::string> conditional_lines(std::string_view etag, std::string_view last_modified) {
    std::vector<std::string> lines;
    etag = easy::trim(etag);
    last_modified = easy::trim(last_modified);
    if (single_line(etag)) {
        lines.push_back("If-None-Match: " + std::string(etag));
    }
    if (single_line(last_modified)) {
        lines.push_back("If-Modified-Since: " + std::string(last_modified));
    }
    return lines;
}

bool selects(std::string_view not_modified_block, std::string_view stored_etag,
             std::string_view stored_last_modified) {
    stored_etag = easy::trim(stored_etag);
    stored_last_modified = easy::trim(stored_last_modified);
    if (auto etag = easy::header_value(not_modified_block, "etag")) {
        if (is_weak(*etag)) {
            // Weak comparison: the opaque tags are equal, either may be weak.
            return !stored_etag.empty() && opaque(*etag) == opaque(stored_etag);
        }
        // Strong comparison: both strong and equal.
        return !is_weak(stored_etag) && *etag == stored_etag;
    }
    if (auto modified = easy::header_value(not_modified_block, "last-modified")) {
        if (*modified == stored_last_modified) {
            return true;
        }
        auto when = easy::parse_http_date(*modified);
        return when && when == easy::parse_http_date(stored_last_modified);
    }
    // No validator: the 304 answers the conditional request made for this response.
    return true;
}

std::string merge_not_modified(std::string_view stored_block, std::string_view not_modified_block) {
    std::vector<Update> updates = updates_of(not_modified_block);
    const char* eol = bare_newlines(stored_block) ? "\n" : "\r\n";
    std::vector<bool> written(updates.size(), false);
    std::string out;
    out.reserve(stored_block.size() + not_modified_block.size());

    // Writes every 304 line named `name` (all of them, at the first stored line of that name).
    auto write_updates = [&](std::string_view name) {
        for (size_t i = 0; i < updates.size(); ++i) {
            if (!written[i] && (name.empty() || iequals(updates[i].name, name))) {
                written[i] = true;
                out.append(updates[i].name).append(":");
                if (!updates[i].value.empty()) {
                    out.append(" ").append(updates[i].value);
                }
                out.append(eol);
            }
        }
    };
    auto updated = [&](std::string_view name) {
        return std::any_of(updates.begin(), updates.end(),
                           [name](const Update& u) { return iequals(u.name, name); });
    };

    bool dropping = false; // inside a replaced field, so its continuation lines go too
    bool ended = false;
    bool first = true;
    for (std::string_view line : easy::split_lines(stored_block)) {
        if (first) { // the status line is kept
            first = false;
            out.append(line);
            continue;
        }
        if (easy::trim(line).empty()) {
            write_updates({});
            out.append(line);
            ended = true;
            break;
        }
        if (line.front() == ' ' || line.front() == '\t') {
            if (!dropping) {
                out.append(line);
            }
            continue;
        }
        std::string_view name, value;
        dropping = easy::split_header(line, name, value) && updated(easy::trim(name));
        if (dropping) {
            write_updates(easy::trim(name));
        } else {
            out.append(line);
        }
    }
    if (!ended) { // a block without its blank line: finish it
        if (!out.empty() && out.back() != '\n') {
            out.append(eol);
        }
        write_updates({});
        out.append(eol);
    }
    return out;
}

std::string with_age(std::string_view block, int64_t age) {
    std::string line = "Age: " + std::to_string(std::max<int64_t>(age, 0));
    std::string update_block = "HTTP/1.1 304 Not Modified\r\n" + line + "\r\n\r\n";
    return merge_not_modified(block, update_block);
}

} // namespace curlcache::core::http
