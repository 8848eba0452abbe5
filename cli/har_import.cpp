// Reading an HTTP Archive to pre-seed a cache (see har.h). Every field the import uses is
// checked before anything is stored; fields it does not use are not required, so that the
// HAR files browsers write (which omit or vary some of them) still import.
#include "cli/format.h"
#include "cli/har.h"
#include "cli/json.h"

#include <algorithm>
#include <cctype>
#include <cmath>

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

// "h2" -> "HTTP/2", "HTTP/2.0" -> "HTTP/2", "" -> "HTTP/1.1": what curl shows.
std::string status_line_version(std::string_view version) {
    std::string lower(version);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "h2" || lower == "http/2" || lower == "http/2.0") {
        return "HTTP/2";
    }
    if (lower == "h3" || lower == "http/3" || lower == "http/3.0") {
        return "HTTP/3";
    }
    if (lower == "http/1.0") {
        return "HTTP/1.0";
    }
    return "HTTP/1.1";
}

// Reads entry `index`; false when it is to be skipped (or on an error, see `check`).
bool read_entry(Checker& check, const JsonValue& entry, std::size_t index, HarItem& out) {
    std::string path = "log.entries[" + std::to_string(index) + "]";
    if (entry.type != Type::object) {
        check.fail(path + ": expected an object, found " + std::string(json_type_name(entry.type)));
        return false;
    }
    const JsonValue* request = check.get(entry, path, "request", Type::object, true);
    const JsonValue* response = check.get(entry, path, "response", Type::object, true);
    if (request == nullptr || response == nullptr) {
        return false;
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
    const JsonValue* content = check.get(*response, response_path, "content", Type::object, true);
    const JsonValue* custom = check.get(entry, path, "_curlcache", Type::object, false);
    if (check.failed()) {
        return false;
    }
    if (method->text.empty() || method->text.find_first_of(" \r\n") != std::string::npos) {
        check.fail(request_path + ".method: not a valid method");
        return false;
    }
    if (url->text.find("://") == std::string::npos) {
        check.fail(request_path + ".url: not an absolute URL");
        return false;
    }
    double code = status->number;
    if (code != std::floor(code) || code < 0 || code > 999 || (code > 0 && code < 100)) {
        check.fail(response_path + ".status: not an HTTP status code");
        return false;
    }
    out.method = method->text;
    out.url = url->text;
    for (auto& [name, value] : read_pairs(check, request_headers, request_path + ".headers")) {
        out.request_headers.push_back(name + ": " + value);
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
    const JsonValue* text = check.get(*content, content_path, "text", Type::string, false);
    const JsonValue* encoding = check.get(*content, content_path, "encoding", Type::string, false);
    const JsonValue* size = check.get(*content, content_path, "size", Type::number, false);
    const JsonValue* raw_headers = nullptr;
    const JsonValue* raw_headers_base64 = nullptr;
    const JsonValue* key = nullptr;
    if (custom != nullptr) {
        key = check.get(*custom, path + "._curlcache", "key", Type::string, false);
        raw_headers = check.get(*custom, path + "._curlcache", "headers", Type::string, false);
        raw_headers_base64 =
            check.get(*custom, path + "._curlcache", "headers_base64", Type::string, false);
    }
    if (check.failed()) {
        return false;
    }
    if (key != nullptr) {
        bool hex = key->text.size() == 32 &&
                   key->text.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex) {
            check.fail(path + "._curlcache.key: not a key (32 lower-case hex digits)");
            return false;
        }
        out.key = key->text;
    }
    if (encoding != nullptr && encoding->text != "base64") {
        check.fail(content_path + ".encoding: unsupported encoding \"" + encoding->text +
                   "\" (only base64)");
        return false;
    }
    if (text != nullptr) {
        if (encoding != nullptr && !base64_decode(text->text, out.body)) {
            check.fail(content_path + ".text: invalid base64");
            return false;
        }
        if (encoding == nullptr) {
            out.body = text->text;
        }
    }
    if (raw_headers_base64 != nullptr && !base64_decode(raw_headers_base64->text, out.headers)) {
        check.fail(path + "._curlcache.headers_base64: invalid base64");
        return false;
    }
    if (raw_headers != nullptr) {
        out.headers = raw_headers->text;
    }
    if (code == 0) {
        return false; // the browser got no response (blocked, aborted)
    }
    if (text == nullptr && size != nullptr && size->number > 0) {
        return false; // the body was not saved in the HAR
    }
    if (out.headers.empty()) {
        out.headers = make_header_block(
            status_line_version(version != nullptr ? version->text : ""), static_cast<long>(code),
            status_text != nullptr ? status_text->text : "", response_headers, out.body.size());
    }
    return true;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

} // namespace

std::string make_header_block(std::string_view http_version, long status,
                              std::string_view status_text, const Pairs& headers,
                              uint64_t body_size) {
    std::string block(http_version);
    block += " " + std::to_string(status) + " ";
    block += status_text;
    block += "\r\n";
    for (const auto& [name, value] : headers) {
        if (name.starts_with(':') || iequals(name, "content-encoding") ||
            iequals(name, "transfer-encoding")) {
            continue; // the HAR holds the decoded body
        }
        if (iequals(name, "content-length")) {
            block += name + ": " + std::to_string(body_size) + "\r\n";
            continue;
        }
        block += name + ": " + value + "\r\n";
    }
    block += "\r\n";
    return block;
}

std::expected<HarContents, std::string> read_har(std::string_view text) {
    auto document = parse_json(text);
    if (!document) {
        return std::unexpected("line " + std::to_string(document.error().line) + ", column " +
                               std::to_string(document.error().column) + ": " +
                               document.error().message);
    }
    if (document->type != Type::object) {
        return std::unexpected("not a HAR file: expected an object, found " +
                               std::string(json_type_name(document->type)));
    }
    Checker check;
    const JsonValue* log = check.get(*document, "HAR", "log", Type::object, true);
    const JsonValue* entries = log ? check.get(*log, "log", "entries", Type::array, true) : nullptr;
    if (check.failed()) {
        return std::unexpected(check.error());
    }
    HarContents contents;
    for (std::size_t i = 0; i < entries->items.size(); ++i) {
        HarItem item;
        bool keep = read_entry(check, entries->items[i], i, item);
        if (check.failed()) {
            return std::unexpected(check.error());
        }
        if (keep) {
            contents.items.push_back(std::move(item));
        } else {
            ++contents.skipped;
        }
    }
    return contents;
}

} // namespace curlcache::cli
