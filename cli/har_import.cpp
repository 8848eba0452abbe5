// Reading an HTTP Archive to pre-seed a cache (see har.h). Every field the import uses is
// checked before anything is stored; fields it does not use are not required, so that the
// HAR files browsers write (which omit or vary some of them) still import.
#include "cli/format.h"
#include "cli/har.h"
#include "cli/json.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <unordered_map>

namespace curlcache::cli {
namespace {

using Type = JsonValue::Type;

class Checker {
  public:
    // The member `key` of `object` when it has `type`; nullptr when it is absent and not
    // required. Otherwise records the error and returns nullptr.
    const JsonValue* get(const JsonValue& object, const std::string& path, std::string_view key,
                         Type type, bool required) {
        const JsonValue* value = object.find(key);
        if (value == nullptr) {
            if (required) {
                fail(path + ": missing \"" + std::string(key) + "\"");
            }
            return nullptr;
        }
        if (value->type != type) {
            fail(path + "." + std::string(key) + ": expected " + std::string(json_type_name(type)) +
                 ", found " + std::string(json_type_name(value->type)));
            return nullptr;
        }
        return value;
    }

    void fail(std::string message) {
        if (m_error.empty()) {
            m_error = std::move(message);
        }
    }
    bool failed() const { return !m_error.empty(); }
    const std::string& error() const { return m_error; }

  private:
    std::string m_error;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

// An array of {"name": ..., "value": ...} objects, as HAR writes headers.
Pairs read_pairs(Checker& check, const JsonValue* array, const std::string& path) {
    Pairs pairs;
    if (array == nullptr) {
        return pairs;
    }
    for (std::size_t i = 0; i < array->items.size(); ++i) {
        std::string item_path = path + "[" + std::to_string(i) + "]";
        const JsonValue& item = array->items[i];
        if (item.type != Type::object) {
            check.fail(item_path + ": expected an object, found " +
                       std::string(json_type_name(item.type)));
            return pairs;
        }
        const JsonValue* name = check.get(item, item_path, "name", Type::string, true);
        const JsonValue* value = check.get(item, item_path, "value", Type::string, true);
        if (name == nullptr || value == nullptr) {
            return pairs;
        }
        if (name->text.empty() || name->text.find_first_of(":\r\n") != std::string::npos) {
            if (name->text.starts_with(':')) {
                continue; // an HTTP/2 pseudo-header (":status") a browser recorded
            }
            check.fail(item_path + ".name: not a valid header name");
            return pairs;
        }
        if (value->text.find_first_of("\r\n") != std::string::npos) {
            check.fail(item_path + ".value: contains a line break");
            return pairs;
        }
        pairs.emplace_back(name->text, value->text);
    }
    return pairs;
}

// The reason phrases Python's http.server, nginx and most origins send, for HTTP/1.x
// recordings that left statusText empty.
std::string_view standard_reason(long status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The scheme of an absolute URL, lower-case ("https"), or "" when it has none.
std::string url_scheme(std::string_view url) {
    std::size_t colon = url.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::isalpha(static_cast<unsigned char>(url[0]))) {
        return {};
    }
    for (std::size_t i = 1; i < colon; ++i) {
        auto c = static_cast<unsigned char>(url[i]);
        if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') {
            return {};
        }
    }
    return lower(url.substr(0, colon));
}

} // namespace

std::string resolve_location(std::string_view base, std::string_view location) {
    if (location.find("://") != std::string_view::npos && !url_scheme(location).empty()) {
        return std::string(location);
    }
    std::size_t scheme_end = base.find("://");
    if (scheme_end == std::string_view::npos) {
        return std::string(location);
    }
    if (location.starts_with("//")) {
        return std::string(base.substr(0, scheme_end + 1)) + std::string(location);
    }
    std::size_t path_start = base.find_first_of("/?#", scheme_end + 3);
    std::string_view origin = base.substr(0, path_start);
    if (location.starts_with("/")) {
        return std::string(origin) + std::string(location);
    }
    std::string_view path =
        path_start == std::string_view::npos ? std::string_view("/") : base.substr(path_start);
    path = path.substr(0, path.find_first_of("?#"));
    if (location.starts_with("?")) {
        return std::string(origin) + std::string(path) + std::string(location);
    }
    return std::string(origin) + std::string(path.substr(0, path.rfind('/') + 1)) +
           std::string(location);
}

namespace {

bool is_credential(std::string_view name) {
    return iequals(name, "authorization") || iequals(name, "cookie") ||
           iequals(name, "proxy-authorization");
}

// What the first pass keeps of an entry for redirect chains.
struct Facts {
    std::string url;
    bool get = false;
    bool final = false;     // stored as a response of its own, not a redirect
    std::string target;     // where a 3xx sends the client, resolved; "" otherwise
    std::string hop_block;  // the 3xx's header block as libcurl delivers a hop
};

enum class Outcome { store, skip, not_http, hop, invalid };

// Reads entry `index` into `out` (strings are moved out of `entry`).
Outcome read_entry(Checker& check, JsonValue& entry, std::size_t index, HarItem& out,
                   Facts& facts) {
    std::string path = "log.entries[" + std::to_string(index) + "]";
    if (entry.type != Type::object) {
        check.fail(path + ": expected an object, found " + std::string(json_type_name(entry.type)));
        return Outcome::invalid;
    }
    const JsonValue* request = check.get(entry, path, "request", Type::object, true);
    const JsonValue* response = check.get(entry, path, "response", Type::object, true);
    if (request == nullptr || response == nullptr) {
        return Outcome::invalid;
    }
    std::string request_path = path + ".request";
    std::string response_path = path + ".response";
    const JsonValue* method = check.get(*request, request_path, "method", Type::string, true);
    const JsonValue* url = check.get(*request, request_path, "url", Type::string, true);
    const JsonValue* request_headers =
        check.get(*request, request_path, "headers", Type::array, false);
    const JsonValue* post = check.get(*request, request_path, "postData", Type::object, false);
    const JsonValue* status = check.get(*response, response_path, "status", Type::number, true);
    const JsonValue* status_text =
        check.get(*response, response_path, "statusText", Type::string, false);
    const JsonValue* version =
        check.get(*response, response_path, "httpVersion", Type::string, false);
    const JsonValue* headers = check.get(*response, response_path, "headers", Type::array, false);
    const JsonValue* redirect_url =
        check.get(*response, response_path, "redirectURL", Type::string, false);
    const JsonValue* content = check.get(*response, response_path, "content", Type::object, true);
    const JsonValue* custom = check.get(entry, path, "_curlcache", Type::object, false);
    if (check.failed()) {
        return Outcome::invalid;
    }
    if (method->text.empty() || method->text.find_first_of(" \r\n") != std::string::npos) {
        check.fail(request_path + ".method: not a valid method");
        return Outcome::invalid;
    }
    const std::string scheme = url_scheme(url->text);
    if (scheme.empty() || (url->text.find("://") == std::string::npos && scheme.starts_with("http"))) {
        check.fail(request_path + ".url: not an absolute URL");
        return Outcome::invalid;
    }
    double code = status->number;
    if (code != std::floor(code) || code < 0 || code > 999 || (code > 0 && code < 100)) {
        check.fail(response_path + ".status: not an HTTP status code");
        return Outcome::invalid;
    }
    out.method = method->text;
    out.url = url->text;
    for (auto& [name, value] : read_pairs(check, request_headers, request_path + ".headers")) {
        if (!is_credential(name)) { // never part of an imported entry, nor of its key
            out.request_headers.push_back(name + ": " + value);
        }
    }
    if (post != nullptr) {
        if (const JsonValue* text =
                check.get(*post, request_path + ".postData", "text", Type::string, false)) {
            out.has_request_body = true;
            out.request_body = text->text;
        }
    }
    Pairs response_headers = read_pairs(check, headers, response_path + ".headers");

    std::string content_path = response_path + ".content";
    JsonValue* text = const_cast<JsonValue*>(
        check.get(*content, content_path, "text", Type::string, false));
    const JsonValue* encoding = check.get(*content, content_path, "encoding", Type::string, false);
    const JsonValue* size = check.get(*content, content_path, "size", Type::number, false);
    const JsonValue* raw_headers = nullptr;
    const JsonValue* raw_headers_base64 = nullptr;
    const JsonValue* key = nullptr;
    const JsonValue* original_url = nullptr;
    const JsonValue* redirect_hop = nullptr;
    if (custom != nullptr) {
        std::string custom_path = path + "._curlcache";
        key = check.get(*custom, custom_path, "key", Type::string, false);
        raw_headers = check.get(*custom, custom_path, "headers", Type::string, false);
        raw_headers_base64 =
            check.get(*custom, custom_path, "headers_base64", Type::string, false);
        original_url = check.get(*custom, custom_path, "url", Type::string, false);
        redirect_hop = check.get(*custom, custom_path, "redirect_hop", Type::boolean, false);
    }
    if (check.failed()) {
        return Outcome::invalid;
    }
    if (key != nullptr) {
        bool hex = key->text.size() == 32 &&
                   key->text.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex) {
            check.fail(path + "._curlcache.key: not a key (32 lower-case hex digits)");
            return Outcome::invalid;
        }
        out.key = key->text;
    }
    if (encoding != nullptr && encoding->text != "base64") {
        check.fail(content_path + ".encoding: unsupported encoding \"" + encoding->text +
                   "\" (only base64)");
        return Outcome::invalid;
    }
    if (text != nullptr) {
        // The entry's largest string: decoded where it is and moved, never copied.
        if (encoding != nullptr && !base64_decode_in_place(text->text)) {
            check.fail(content_path + ".text: invalid base64");
            return Outcome::invalid;
        }
        out.body = std::move(text->text);
        text->text = std::string();
    }
    if (raw_headers_base64 != nullptr && !base64_decode(raw_headers_base64->text, out.headers)) {
        check.fail(path + "._curlcache.headers_base64: invalid base64");
        return Outcome::invalid;
    }
    if (raw_headers != nullptr) {
        out.headers = raw_headers->text;
    }
    if (original_url != nullptr) {
        out.url = original_url->text; // the final entry of an exported chain: where it began
    }
    if (redirect_hop != nullptr && redirect_hop->boolean) {
        return Outcome::hop; // its block is in the chain's final entry
    }
    if (scheme != "http" && scheme != "https") {
        return Outcome::not_http; // data:, blob:, ws:, chrome-extension: ...
    }
    const long status_code = static_cast<long>(code);
    const std::string status_line = har_status_line(
        version != nullptr ? version->text : "", url->text, status_code,
        status_text != nullptr ? status_text->text : "");
    facts.url = url->text;
    facts.get = out.method == "GET";
    if (status_code / 100 == 3 && status_code != 304) {
        std::string_view location =
            redirect_url != nullptr ? std::string_view(redirect_url->text) : std::string_view();
        for (const auto& [name, value] : response_headers) {
            if (location.empty() && iequals(name, "location")) {
                location = value;
            }
        }
        if (!location.empty()) {
            facts.target = resolve_location(url->text, location);
            facts.hop_block = make_header_block(status_line, response_headers, false, 0);
        }
    }
    if (code == 0 || status_code == 304 || status_code == 206) {
        return Outcome::skip; // no response (blocked, aborted), or not a whole one
    }
    if (text == nullptr && size != nullptr && size->number > 0) {
        return Outcome::skip; // the body was not saved in the HAR
    }
    facts.final = facts.target.empty();
    if (out.headers.empty()) {
        out.headers = make_header_block(status_line, response_headers, true, out.body.size());
    }
    return Outcome::store;
}

using Each = std::function<bool(std::size_t, JsonValue&)>;

// The type of the next value; false (with the reader's error) when there is none.
bool peek_type(JsonReader& reader, Type& type) {
    if (reader.peek(type)) {
        return true;
    }
    reader.skip(); // reports what is there instead
    return false;
}

// Walks the object that comes next (already known to be one) and calls `inside` when its
// member `wanted` has `type`; the other members are read and dropped. `where` names the
// object in messages ("HAR", "log"). False on a JSON error.
bool walk_member(JsonReader& reader, Checker& check, const std::string& where,
                 std::string_view wanted, Type type, const std::function<bool()>& inside) {
    bool seen = false;
    std::string name;
    bool done = false;
    reader.begin_object();
    while (reader.next_member(name, done) && !done) {
        Type found = Type::null;
        if (name != wanted) {
            reader.skip();
        } else if (!peek_type(reader, found)) {
            return false;
        } else if (seen = true; found != type) {
            check.fail(where + "." + name + ": expected " + std::string(json_type_name(type)) +
                       ", found " + std::string(json_type_name(found)));
            reader.skip();
        } else if (!inside()) {
            return false;
        }
    }
    if (!reader.failed() && !seen) {
        check.fail(where + ": missing \"" + std::string(wanted) + "\"");
    }
    return !reader.failed();
}

// Walks {"log": {"entries": [...]}} and hands each entry to `each` until it returns false.
// HAR structure errors go to `check`; after one, the rest is still read for JSON errors,
// which take precedence. False on a JSON error (see reader.error()).
bool walk(JsonReader& reader, Checker& check, const Each& each) {
    Type type = Type::null;
    if (!peek_type(reader, type)) {
        return false;
    }
    if (type != Type::object) {
        if (reader.skip() && reader.finish()) {
            check.fail("not a HAR file: expected an object, found " +
                       std::string(json_type_name(type)));
        }
        return !reader.failed();
    }
    bool stopped = false;
    auto entries = [&] {
        bool done = false;
        reader.begin_array();
        for (std::size_t index = 0; reader.next_item(done) && !done; ++index) {
            JsonValue entry;
            if (check.failed() || stopped) {
                reader.skip();
            } else if (reader.value(entry)) {
                stopped = !each(index, entry);
            }
        }
        return !reader.failed();
    };
    auto log = [&] { return walk_member(reader, check, "log", "entries", Type::array, entries); };
    return walk_member(reader, check, "HAR", "log", Type::object, log) &&
           (stopped || reader.finish());
}

std::string json_message(const JsonReader& reader) {
    const JsonError& error = reader.error();
    return "line " + std::to_string(error.line) + ", column " + std::to_string(error.column) +
           ": " + error.message;
}

// The entry a redirect to `url` from entry `from` lands on: the first one after it with
// that URL, else the first one at all.
std::optional<std::size_t> landing(const std::vector<std::size_t>* candidates, std::size_t from) {
    if (candidates == nullptr || candidates->empty()) {
        return std::nullopt;
    }
    for (std::size_t index : *candidates) {
        if (index > from) {
            return index;
        }
    }
    return candidates->front();
}

// Follows every 3xx GET entry through the file to a final response.
void find_chains(const std::vector<Facts>& facts, HarPlan& plan) {
    constexpr std::size_t k_max_hops = 50; // the curl command's --max-redirs default
    std::unordered_map<std::string, std::vector<std::size_t>> by_url;
    for (std::size_t i = 0; i < facts.size(); ++i) {
        if (facts[i].get && (facts[i].final || !facts[i].target.empty())) {
            by_url[facts[i].url].push_back(i);
        }
    }
    for (std::size_t start = 0; start < facts.size(); ++start) {
        if (!facts[start].get || facts[start].target.empty()) {
            continue;
        }
        std::string hops = facts[start].hop_block;
        std::vector<std::size_t> visited{start};
        std::size_t at = start;
        while (visited.size() <= k_max_hops) {
            auto found = by_url.find(facts[at].target);
            auto next = landing(found == by_url.end() ? nullptr : &found->second, at);
            if (!next || std::find(visited.begin(), visited.end(), *next) != visited.end()) {
                break; // leads out of the file, or round in a loop
            }
            if (facts[*next].final) {
                plan.chains[*next].push_back({facts[start].url, std::move(hops)});
                break;
            }
            hops += facts[*next].hop_block;
            visited.push_back(*next);
            at = *next;
        }
    }
}

} // namespace

std::string har_status_line(std::string_view http_version, std::string_view url, long status,
                            std::string_view status_text) {
    const std::string version = lower(http_version);
    const bool newer = version == "h2" || version == "h3" || version.starts_with("http/2") ||
                       version.starts_with("http/3") || version.starts_with("h3-");
    const bool https = url_scheme(url) == "https";
    std::string line;
    if (newer && https) {
        return "HTTP/2 " + std::to_string(status) + " ";
    }
    line = version == "http/1.0" ? "HTTP/1.0 " : "HTTP/1.1 ";
    line += std::to_string(status);
    line += ' ';
    line += status_text.empty() ? standard_reason(status) : status_text;
    return line;
}

std::string make_header_block(std::string_view status_line, const Pairs& headers, bool decoded,
                              uint64_t body_size) {
    std::string block(status_line);
    block += "\r\n";
    for (const auto& [name, value] : headers) {
        if (name.starts_with(':')) {
            continue;
        }
        if (decoded && (iequals(name, "content-encoding") || iequals(name, "transfer-encoding"))) {
            continue; // the HAR holds the decoded body
        }
        if (decoded && iequals(name, "content-length")) {
            block += name + ": " + std::to_string(body_size) + "\r\n";
            continue;
        }
        block += name + ": " + value + "\r\n";
    }
    block += "\r\n";
    return block;
}

std::expected<HarPlan, std::string> check_har(JsonReader& reader) {
    Checker check;
    HarPlan plan;
    std::vector<Facts> facts;
    bool ok = walk(reader, check, [&](std::size_t index, JsonValue& entry) {
        HarItem item;
        Facts& fact = facts.emplace_back();
        switch (read_entry(check, entry, index, item, fact)) {
        case Outcome::skip:
            ++plan.skipped;
            break;
        case Outcome::not_http:
            ++plan.not_http;
            break;
        case Outcome::store:
        case Outcome::hop:
        case Outcome::invalid:
            break;
        }
        return true;
    });
    if (!ok) {
        return std::unexpected(json_message(reader));
    }
    if (check.failed()) {
        return std::unexpected(check.error());
    }
    find_chains(facts, plan);
    return plan;
}

std::expected<void, std::string> read_har_items(JsonReader& reader, const HarPlan& plan,
                                                const std::function<bool(HarItem&)>& store) {
    Checker check;
    bool ok = walk(reader, check, [&](std::size_t index, JsonValue& entry) {
        HarItem item;
        Facts fact;
        if (read_entry(check, entry, index, item, fact) != Outcome::store) {
            return !check.failed();
        }
        entry = JsonValue(); // only the item is held while it is stored
        if (auto chains = plan.chains.find(index); chains != plan.chains.end()) {
            item.chains = chains->second;
        }
        return store(item);
    });
    if (!ok) {
        return std::unexpected(json_message(reader));
    }
    if (check.failed()) {
        return std::unexpected(check.error()); // the file changed since the first pass
    }
    return {};
}

std::expected<HarContents, std::string> read_har(std::string_view text) {
    JsonReader first(text);
    auto plan = check_har(first);
    if (!plan) {
        return std::unexpected(plan.error());
    }
    HarContents contents;
    contents.skipped = plan->skipped + plan->not_http;
    JsonReader second(text);
    auto read = read_har_items(second, *plan, [&](HarItem& item) {
        contents.items.push_back(std::move(item));
        return true;
    });
    if (!read) {
        return std::unexpected(read.error());
    }
    return contents;
}

} // namespace curlcache::cli
