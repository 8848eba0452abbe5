// JSON for the command's --json output and for HAR files.
//
// Hand-written because none of the project's dependencies (libcurl, SQLite, xxHash, toml11,
// hiredis, cmocka) reads or writes JSON, and one small strict reader and writer are less to
// audit than a new dependency. The reader is a recursive-descent parser of RFC 8259 that
// rejects everything the RFC does not allow (trailing commas, comments, NaN, lone surrogates,
// invalid UTF-8, duplicate keys), so that a malformed HAR file is refused before anything is
// imported, with the line and column of the first problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace curlcache::cli {

// Writes one JSON document, indented by two spaces, straight to a stream (a HAR file may
// hold large bodies: nothing is built in memory). Strings are escaped as RFC 8259 asks;
// bytes that are not UTF-8 become U+FFFD, so the output is always valid JSON.
class JsonWriter {
  public:
    explicit JsonWriter(std::FILE* out) : m_out(out) {}

    void begin_object();
    void end_object();
    void begin_array();
    void end_array();
    void key(std::string_view name);

    void string(std::string_view text);
    void integer(int64_t value);
    void unsigned_integer(uint64_t value);
    void real(double value);
    void boolean(bool value);
    void null();

    // Ends the document with a newline. True when every write succeeded.
    bool finish();

  private:
    struct Level {
        bool array;
        bool empty;
    };
    void before_value();
    void close(std::string_view bracket);
    void write_string(std::string_view text);
    void newline_indent(std::size_t depth);
    void put(std::string_view text) { std::fwrite(text.data(), 1, text.size(), m_out); }

    std::FILE* m_out;
    std::vector<Level> m_stack;
    bool m_after_key = false;
};

// A parsed JSON value. Object members keep their order.
struct JsonValue {
    enum class Type { null, boolean, number, string, array, object };
    Type type = Type::null;
    bool boolean = false;
    double number = 0;
    std::string text; // a string's value, or a number's source text
    std::vector<JsonValue> items;
    std::vector<std::pair<std::string, JsonValue>> members;

    // Defaulted below the class, as config::Value's are (config/value.h): clang with
    // libstdc++ rejects the implicit ones of a type that holds pairs of itself.
    JsonValue();
    JsonValue(const JsonValue&);
    JsonValue(JsonValue&&) noexcept;
    JsonValue& operator=(const JsonValue&);
    JsonValue& operator=(JsonValue&&) noexcept;
    ~JsonValue();

    const JsonValue* find(std::string_view key) const;
};

inline JsonValue::JsonValue() = default;
inline JsonValue::JsonValue(const JsonValue&) = default;
inline JsonValue::JsonValue(JsonValue&&) noexcept = default;
inline JsonValue& JsonValue::operator=(const JsonValue&) = default;
inline JsonValue& JsonValue::operator=(JsonValue&&) noexcept = default;
inline JsonValue::~JsonValue() = default;

struct JsonError {
    std::size_t line = 1;   // 1-based
    std::size_t column = 1; // 1-based, in bytes
    std::string message;    // "expected ',' or '}'"
};

// Parses exactly one JSON value (a UTF-8 byte order mark at the start is skipped).
std::expected<JsonValue, JsonError> parse_json(std::string_view text);

// The name of a type for messages: "a string", "an object".
std::string_view json_type_name(JsonValue::Type type);

} // namespace curlcache::cli
