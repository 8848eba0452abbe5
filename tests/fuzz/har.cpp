// Fuzz target: `curlcache import --har` (cli/har_import.cpp over cli/json_reader.cpp): a
// HAR file from a browser or anyone else. Checks that JSON the reader accepts is written
// back by JsonWriter (the --json and HAR export writer) as JSON that reads as the same value,
// that every item read_har returns has a method and a header block, and that reading the
// same text from a file in small pieces (as `import --har` streams a file, here 1-16 bytes
// at a time so that every token meets a piece boundary) gives the same value or the same
// error at the same line and column, and the same HAR items.
//
// Input: the file's text.
#include "cli/har.h"
#include "cli/json.h"
#include "tests/fuzz/fuzz_input.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace {

using namespace curlcache::cli;

void write(JsonWriter& out, const JsonValue& value) {
    switch (value.type) {
    case JsonValue::Type::null:
        out.null();
        break;
    case JsonValue::Type::boolean:
        out.boolean(value.boolean);
        break;
    case JsonValue::Type::number:
        out.real(value.number);
        break;
    case JsonValue::Type::string:
        out.string(value.text);
        break;
    case JsonValue::Type::array:
        out.begin_array();
        for (const JsonValue& item : value.items) {
            write(out, item);
        }
        out.end_array();
        break;
    case JsonValue::Type::object:
        out.begin_object();
        for (const auto& [name, member] : value.members) {
            out.key(name);
            write(out, member);
        }
        out.end_object();
        break;
    }
}

bool same(const JsonValue& a, const JsonValue& b) {
    if (a.type == JsonValue::Type::number && !std::isfinite(a.number)) {
        return b.type == JsonValue::Type::null; // JSON has no infinity: written as null
    }
    if (a.type != b.type) {
        return false;
    }
    switch (a.type) {
    case JsonValue::Type::null:
        return true;
    case JsonValue::Type::boolean:
        return a.boolean == b.boolean;
    case JsonValue::Type::number: // written with 15 significant digits
        return std::fabs(a.number - b.number) <= 1e-14 * std::fabs(a.number) ||
               std::fabs(a.number) < 1e-300;
    case JsonValue::Type::string:
        return a.text == b.text;
    case JsonValue::Type::array:
        if (a.items.size() != b.items.size()) {
            return false;
        }
        for (size_t i = 0; i < a.items.size(); ++i) {
            if (!same(a.items[i], b.items[i])) {
                return false;
            }
        }
        return true;
    case JsonValue::Type::object:
        if (a.members.size() != b.members.size()) {
            return false;
        }
        for (size_t i = 0; i < a.members.size(); ++i) {
            if (a.members[i].first != b.members[i].first ||
                !same(a.members[i].second, b.members[i].second)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

void check_json_round_trip(const JsonValue& value) {
    char* buffer = nullptr;
    size_t length = 0;
    std::FILE* out = open_memstream(&buffer, &length);
    FUZZ_CHECK(out != nullptr);
    JsonWriter writer(out);
    write(writer, value);
    FUZZ_CHECK(writer.finish());
    std::fclose(out);
    const std::string text(buffer, length);
    std::free(buffer);
    const auto again = parse_json(text);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(same(value, *again));
}

bool same_error(const JsonError& a, const JsonError& b) {
    return a.line == b.line && a.column == b.column && a.message == b.message;
}

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

// The text as a file read `chunk` bytes at a time; nullptr for empty text (fmemopen).
std::unique_ptr<std::FILE, FileCloser> as_file(std::string_view text) {
    if (text.empty()) {
        return nullptr;
    }
    std::FILE* file = fmemopen(const_cast<char*>(text.data()), text.size(), "rb");
    FUZZ_CHECK(file != nullptr);
    return std::unique_ptr<std::FILE, FileCloser>(file);
}

void check_streaming(std::string_view text, std::size_t chunk,
                     const std::expected<JsonValue, JsonError>& whole,
                     const std::expected<HarContents, std::string>& har) {
    auto file = as_file(text);
    if (!file) {
        return;
    }
    JsonReader reader(file.get(), chunk);
    JsonValue value;
    const bool ok = reader.value(value) && reader.finish();
    FUZZ_CHECK(ok == whole.has_value());
    FUZZ_CHECK(ok ? same(*whole, value) && same(value, *whole)
                  : same_error(reader.error(), whole.error()));

    std::rewind(file.get());
    JsonReader first(file.get(), chunk);
    auto plan = check_har(first);
    FUZZ_CHECK(plan.has_value() == har.has_value());
    if (!plan) {
        FUZZ_CHECK(plan.error() == har.error());
        return;
    }
    std::rewind(file.get());
    JsonReader second(file.get(), chunk);
    std::size_t index = 0;
    auto read = read_har_items(second, *plan, [&](HarItem& item) {
        FUZZ_CHECK(index < har->items.size());
        const HarItem& expected = har->items[index++];
        FUZZ_CHECK(item.url == expected.url && item.headers == expected.headers &&
                   item.body == expected.body && item.chains.size() == expected.chains.size());
        return true;
    });
    FUZZ_CHECK(read.has_value() && index == har->items.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto value = parse_json(text);
    if (value) {
        check_json_round_trip(*value);
    }
    const auto har = read_har(text);
    if (har) {
        for (const HarItem& item : har->items) {
            FUZZ_CHECK(!item.headers.empty() && !item.method.empty());
        }
    }
    check_streaming(text, size == 0 ? 1 : 1 + data[size - 1] % 16, value, har);
    return 0;
}
