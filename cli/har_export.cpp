// Writing a cache as an HTTP Archive 1.2 (see har.h).
#include "cli/cli.h"
#include "cli/format.h"
#include "cli/har.h"
#include "cli/json.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <utility>

namespace curlcache::cli {
namespace {

struct Listed {
    std::string key;
    std::string url;
    int64_t created = 0;
};

int collect(const curlcache_meta* meta, void* userp) {
    static_cast<std::vector<Listed>*>(userp)->push_back(
        {meta->key ? meta->key : "", meta->url ? meta->url : "", meta->created});
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

void write_entry(JsonWriter& json, curlcache_entry* entry) {
    auto text = [](const char* s) { return std::string_view(s != nullptr ? s : ""); };
    std::string raw_headers;
    std::string_view final_block;
    std::size_t responses = curlcache_entry_response_count(entry);
    for (std::size_t i = 0; i < responses; ++i) {
        const char* data = nullptr;
        std::size_t size = 0;
        if (curlcache_entry_headers(entry, i, &data, &size) == CURLCACHE_OK && data != nullptr) {
            raw_headers.append(data, size);
            final_block = std::string_view(data, size);
        }
    }
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

    json.begin_object();
    json.key("startedDateTime");
    json.string(format_iso_utc(created));
    json.key("time");
    json.integer(0);
    json.key("request");
    json.begin_object();
    json.key("method");
    json.string(method);
    json.key("url");
    json.string(url);
    json.key("httpVersion");
    json.string(block.status.version);
    json.key("cookies");
    json.begin_array();
    json.end_array();
    json.key("headers");
    json.begin_array();
    json.end_array();
    json.key("queryString");
    write_query_string(json, url);
    json.key("headersSize");
    json.integer(-1);
    json.key("bodySize");
    json.integer(method == "GET" || method == "HEAD" ? 0 : -1);
    json.end_object();

    json.key("response");
    json.begin_object();
    json.key("status");
    json.integer(curlcache_entry_status(entry));
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
    json.unsigned_integer(body.size());
    json.key("mimeType");
    const char* type = curlcache_entry_content_type(entry);
    json.string(type != nullptr && *type != '\0' ? type : "x-unknown");
    json.key("text");
    if (is_text(body)) {
        json.string(body);
    } else {
        json.string(base64_encode(body));
        json.key("encoding");
        json.string("base64");
    }
    json.end_object();
    json.key("redirectURL");
    json.string(block.location);
    json.key("headersSize");
    json.unsigned_integer(final_block.size());
    json.key("bodySize");
    json.unsigned_integer(body.size());
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

    json.key("_curlcache");
    json.begin_object();
    json.key("key");
    json.string(text(curlcache_entry_key(entry)));
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
    std::vector<Listed> listed;
    if (auto code = curlcache_scan(cache, collect, &listed); code != CURLCACHE_OK) {
        return std::unexpected(api_message(cache, code, "cannot list the entries"));
    }
    std::sort(listed.begin(), listed.end(), [](const Listed& a, const Listed& b) {
        return std::tie(a.created, a.url, a.key) < std::tie(b.created, b.url, b.key);
    });
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
    for (const auto& item : listed) {
        curlcache_entry* raw = nullptr;
        curlcache_code code = curlcache_entry_get(cache, item.key.c_str(), &raw);
        EntryPtr entry(raw);
        if (code == CURLCACHE_E_MISS) {
            continue; // removed since the scan
        }
        if (code != CURLCACHE_OK) {
            return std::unexpected(api_message(cache, code, "cannot read " + item.url));
        }
        write_entry(json, entry.get());
        ++written;
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
