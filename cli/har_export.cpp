// Writing a cache as an HTTP Archive 1.2 (see har.h).
#include "cli/cli.h"
#include "cli/format.h"
#include "cli/har.h"
#include "cli/json.h"
#include "cli/list_order.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

namespace curlcache::cli {
namespace {

// The entries oldest first, sorted in bounded memory (runs spill to temporary files).
int collect(const curlcache_meta* meta, void* userp) {
    ListedEntry entry;
    entry.key = meta->key ? meta->key : "";
    entry.url = meta->url ? meta->url : "";
    entry.created = meta->created;
    static_cast<SortedEntries*>(userp)->add(std::move(entry));
    return 0;
}

struct StatusLine {
    std::string version = "HTTP/1.1";
    std::string text;
};

// "HTTP/1.1 200 OK" -> {"HTTP/1.1", "OK"}; "HTTP/2 200 " -> {"HTTP/2", ""}.
StatusLine parse_status_line(std::string_view line) {
    StatusLine out;
    auto space = line.find(' ');
    if (space == std::string_view::npos || !line.starts_with("HTTP/")) {
        return out;
    }
    out.version = std::string(line.substr(0, space));
    auto rest = line.substr(space + 1);
    auto second = rest.find(' ');
    if (second != std::string_view::npos) {
        out.text = std::string(rest.substr(second + 1));
    }
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

struct Block {
    StatusLine status;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string location;
};

Block parse_block(std::string_view block) {
    Block out;
    bool first = true;
    while (!block.empty()) {
        auto end = block.find('\n');
        std::string_view line = block.substr(0, end);
        block = end == std::string_view::npos ? std::string_view() : block.substr(end + 1);
        line = trim(line);
        if (first) {
            out.status = parse_status_line(line);
            first = false;
            continue;
        }
        auto colon = line.find(':');
        if (line.empty() || colon == std::string_view::npos) {
            continue;
        }
        std::string name(trim(line.substr(0, colon)));
        std::string value(trim(line.substr(colon + 1)));
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower == "location") {
            out.location = value;
        }
        out.headers.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

void write_query_string(JsonWriter& json, std::string_view url) {
    json.begin_array();
    auto question = url.find('?');
    if (question != std::string_view::npos) {
        auto query = url.substr(question + 1);
        query = query.substr(0, query.find('#'));
        while (!query.empty()) {
            auto amp = query.find('&');
            auto pair = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
            if (pair.empty()) {
                continue;
            }
            auto eq = pair.find('=');
            json.begin_object();
            json.key("name");
            json.string(percent_decode(pair.substr(0, eq), true));
            json.key("value");
            json.string(eq == std::string_view::npos ? ""
                                                     : percent_decode(pair.substr(eq + 1), true));
            json.end_object();
        }
    }
    json.end_array();
}

void write_name_values(JsonWriter& json,
                       const std::vector<std::pair<std::string, std::string>>& pairs) {
    json.begin_array();
    for (const auto& [name, value] : pairs) {
        json.begin_object();
        json.key("name");
        json.string(name);
        json.key("value");
        json.string(value);
        json.end_object();
    }
    json.end_array();
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

bool is_credential(std::string_view name) {
    return name == "authorization" || name == "cookie" || name == "proxy-authorization";
}

// The request headers that took part in the entry's key (content negotiation, Host,
// match_headers) or chose its variant (the ones Vary named), as the request had them.
// Never credentials: they enter a key only as a salted digest, and are not kept.
Pairs key_headers(const curlcache_entry* entry) {
    Pairs headers;
    const std::size_t count = curlcache_entry_key_part_count(entry);
    for (std::size_t i = 0; i < count; ++i) {
        const char* name = nullptr;
        const char* value = nullptr;
        if (curlcache_entry_key_part(entry, i, &name, &value) != CURLCACHE_OK) {
            continue;
        }
        std::string_view part(name);
        std::string_view header;
        if (part.starts_with("header ")) {
            header = part.substr(7);
        } else if (part.starts_with("vary ") && std::string_view(value) != "(absent)") {
            header = part.substr(5);
        }
        bool known = std::any_of(headers.begin(), headers.end(),
                                 [&](const auto& pair) { return pair.first == header; });
        if (!header.empty() && !known && !is_credential(header)) {
            headers.emplace_back(std::string(header), value);
        }
    }
    return headers;
}

void write_request(JsonWriter& json, std::string_view method, std::string_view url,
                   std::string_view version, const Pairs& headers) {
    json.key("request");
    json.begin_object();
    json.key("method");
    json.string(method);
    json.key("url");
    json.string(url);
    json.key("httpVersion");
    json.string(version);
    json.key("cookies");
    json.begin_array();
    json.end_array();
    json.key("headers");
    write_name_values(json, headers);
    json.key("queryString");
    write_query_string(json, url);
    json.key("headersSize");
    json.integer(-1);
    json.key("bodySize");
    json.integer(method == "GET" || method == "HEAD" ? 0 : -1);
    json.end_object();
}

// The response object up to "content" (left open for the caller's content members).
void begin_response(JsonWriter& json, long status, const Block& block, std::string_view type,
                    uint64_t size) {
    json.key("response");
    json.begin_object();
    json.key("status");
    json.integer(status);
    json.key("statusText");
    json.string(block.status.text);
    json.key("httpVersion");
    json.string(block.status.version);
    json.key("cookies");
    json.begin_array();
    json.end_array();
    json.key("headers");
    write_name_values(json, block.headers);
    json.key("content");
    json.begin_object();
    json.key("size");
    json.unsigned_integer(size);
    json.key("mimeType");
    json.string(type.empty() ? "x-unknown" : type);
}

void end_response(JsonWriter& json, std::string_view redirect, uint64_t headers_size,
                  uint64_t body_size) {
    json.end_object(); // content
    json.key("redirectURL");
    json.string(redirect);
    json.key("headersSize");
    json.unsigned_integer(headers_size);
    json.key("bodySize");
    json.unsigned_integer(body_size);
    json.end_object();

    json.key("cache");
    json.begin_object();
    json.end_object();
    json.key("timings");
    json.begin_object();
    json.key("send");
    json.integer(0);
    json.key("wait");
    json.integer(0);
    json.key("receive");
    json.integer(0);
    json.end_object();
}

long status_of(std::string_view block) {
    auto space = block.find(' ');
    return space == std::string_view::npos ? 0 : std::atol(std::string(block.substr(space + 1, 3)).c_str());
}

// One hop of a redirect chain, as its own HAR entry: a viewer shows the chain. Its header
// block is also in the final entry's "_curlcache", so import skips it.
void write_hop(JsonWriter& json, std::string_view method, std::string_view url,
               const Pairs& request_headers, std::string_view raw, const std::string& started,
               std::string_view next) {
    Block block = parse_block(raw);
    json.begin_object();
    json.key("startedDateTime");
    json.string(started);
    json.key("time");
    json.integer(0);
    write_request(json, method, url, block.status.version, request_headers);
    begin_response(json, status_of(raw), block, "", 0);
    end_response(json, next, raw.size(), 0);
    json.key("_curlcache");
    json.begin_object();
    json.key("redirect_hop");
    json.boolean(true);
    json.end_object();
    json.end_object();
}

void write_entry(JsonWriter& json, curlcache_entry* entry) {
    auto text = [](const char* s) { return std::string_view(s != nullptr ? s : ""); };
    std::string raw_headers;
    std::vector<std::string_view> blocks;
    std::size_t responses = curlcache_entry_response_count(entry);
    for (std::size_t i = 0; i < responses; ++i) {
        const char* data = nullptr;
        std::size_t size = 0;
        if (curlcache_entry_headers(entry, i, &data, &size) == CURLCACHE_OK && data != nullptr) {
            raw_headers.append(data, size);
            blocks.emplace_back(data, size);
        }
    }
    std::string_view final_block = blocks.empty() ? std::string_view() : blocks.back();
    Block block = parse_block(final_block);
    const void* body_data = nullptr;
    std::size_t body_size = 0;
    if (curlcache_entry_body(entry, &body_data, &body_size) != CURLCACHE_OK ||
        body_data == nullptr) {
        body_size = 0;
    }
    std::string_view body(static_cast<const char*>(body_data), body_size);
    std::string_view method = text(curlcache_entry_method(entry));
    std::string_view url = text(curlcache_entry_url(entry));
    int64_t created = curlcache_entry_created(entry);
    int64_t expires = curlcache_entry_expires(entry);
    const std::string started = format_iso_utc(created);

    const Pairs request_headers = key_headers(entry);
    // Every hop but the last is a redirect: the next one's URL follows from its Location.
    std::string hop_url(url);
    for (std::size_t i = 0; i + 1 < blocks.size(); ++i) {
        std::string next = resolve_location(hop_url, parse_block(blocks[i]).location);
        write_hop(json, method, hop_url, request_headers, blocks[i], started, next);
        hop_url = std::move(next);
    }

    json.begin_object();
    json.key("startedDateTime");
    json.string(started);
    json.key("time");
    json.integer(0);
    write_request(json, method, hop_url, block.status.version, request_headers);
    begin_response(json, curlcache_entry_status(entry), block,
                   text(curlcache_entry_content_type(entry)), body.size());
    json.key("text");
    if (is_text(body)) {
        json.string(body);
    } else {
        json.string(base64_encode(body));
        json.key("encoding");
        json.string("base64");
    }
    end_response(json, block.location.empty() ? "" : resolve_location(hop_url, block.location),
                 final_block.size(), body.size());

    json.key("_curlcache");
    json.begin_object();
    json.key("key");
    json.string(text(curlcache_entry_key(entry)));
    if (blocks.size() > 1) {
        json.key("url");
        json.string(url); // where the chain began: the entry's own URL
    }
    json.key("created");
    json.integer(created);
    json.key("expires");
    if (expires == 0) {
        json.null();
    } else {
        json.integer(expires);
    }
    if (is_text(raw_headers)) {
        json.key("headers");
        json.string(raw_headers);
    } else {
        json.key("headers_base64");
        json.string(base64_encode(raw_headers));
    }
    json.end_object();
    json.end_object();
}

} // namespace

std::expected<uint64_t, std::string> write_har(curlcache_handle* cache, std::FILE* out) {
    SortedEntries listed(EntryOrder::created_url_key);
    if (auto code = curlcache_scan(cache, collect, &listed); code != CURLCACHE_OK) {
        return std::unexpected(api_message(cache, code, "cannot list the entries"));
    }
    JsonWriter json(out);
    json.begin_object();
    json.key("log");
    json.begin_object();
    json.key("version");
    json.string("1.2");
    json.key("creator");
    json.begin_object();
    json.key("name");
    json.string("curlcache");
    json.key("version");
    json.string(curlcache_version());
    json.end_object();
    json.key("entries");
    json.begin_array();
    uint64_t written = 0;
    std::string failed;
    const bool whole = listed.each([&](ListedEntry& item) {
        curlcache_entry* raw = nullptr;
        curlcache_code code = curlcache_entry_get(cache, item.key.c_str(), &raw);
        EntryPtr entry(raw);
        if (code == CURLCACHE_E_MISS) {
            return true; // removed since the scan
        }
        if (code != CURLCACHE_OK) {
            failed = api_message(cache, code, "cannot read " + item.url);
            return false;
        }
        write_entry(json, entry.get());
        ++written;
        return true;
    });
    if (!failed.empty()) {
        return std::unexpected(failed);
    }
    if (!whole) {
        return std::unexpected(
            std::string("cannot read back the sorted entries from their temporary file"));
    }
    json.end_array();
    json.end_object();
    json.end_object();
    if (!json.finish()) {
        return std::unexpected(std::string("cannot write the HAR file"));
    }
    return written;
}

} // namespace curlcache::cli
