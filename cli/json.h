// JSON for the command's --json output and for HAR files.
//
// Hand-written because none of the project's dependencies (libcurl, SQLite, xxHash, toml11,
// hiredis, cmocka) reads or writes JSON, and one small strict reader and writer are less to
// audit than a new dependency. The reader is a recursive-descent parser of RFC 8259 that
// rejects everything the RFC does not allow (trailing commas, comments, NaN, lone surrogates,
// invalid UTF-8, duplicate keys), so that a malformed HAR file is refused before anything is
// imported, with the line and column of the first problem. It reads a file in pieces and can
// hand over a document one member or array item at a time (JsonReader), so that importing a
// HAR file holds one entry in memory, not the file.
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

// Writes one JSON document, indented by two spaces, to a stream as it goes (a HAR file may
// hold large bodies: nothing is built in memory beyond a 64 KiB buffer, written out when
// full, by finish() and by the destructor). Strings are escaped as RFC 8259 asks;
// bytes that are not UTF-8 become U+FFFD, so the output is always valid JSON.
// The `version` field of every JSON document the command prints (stats, list, show,
// config): raised when a field is renamed, removed or changes its type; new fields may be
// added without it. 1: the first versioned documents (list and config became objects).
inline constexpr int k_json_version = 1;

class JsonWriter {
  public:
    explicit JsonWriter(std::FILE* out) : m_out(out) {}
    ~JsonWriter() { flush(); }
    JsonWriter(const JsonWriter&) = delete;
    JsonWriter& operator=(const JsonWriter&) = delete;

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
    // Output is gathered here and written in pieces of k_buffer bytes: one fwrite per token
    // was a sixth of `list --json`'s time.
    static constexpr std::size_t k_buffer = 64 * 1024;
    void put(std::string_view text) {
        m_buffer.append(text);
        if (m_buffer.size() >= k_buffer) {
            flush();
        }
    }
    void flush();

    std::FILE* m_out;
    std::string m_buffer;
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

// The strict reader as a pull parser over a file read in pieces or over text in memory, so
// that a large document (a HAR file of many bodies) can be walked one member or item at a
// time: only the value being read is held, never the whole document. Nesting is checked
// across both styles; member names of an object walked with next_member() are checked for
// duplicates too. After a false return, error() says what and where; the reader then stays
// failed.
class JsonReader {
  public:
    explicit JsonReader(std::string_view text);
    // Reads `in` from its current position in pieces of `chunk` bytes; does not close it.
    explicit JsonReader(std::FILE* in, std::size_t chunk = 64 * 1024);

    // Reads the next value whole.
    bool value(JsonValue& out);
    // Reads and checks the next value, keeping nothing of it.
    bool skip();
    // The type of the next value (after whitespace), without reading it; false at the end
    // of the input or on a character that cannot start a value.
    bool peek(JsonValue::Type& type);

    // Walks an object: begin_object() consumes '{'; each next_member() then either gives
    // the next member's name (its value is read next, by any call above) or consumes '}'
    // and sets `done`. Both return false only on an error.
    bool begin_object();
    bool next_member(std::string& name, bool& done);
    // Walks an array the same way: next_item() stops before each item, or sets `done`.
    bool begin_array();
    bool next_item(bool& done);

    // True when nothing but whitespace follows the document.
    bool finish();

    bool failed() const { return m_failed; }
    const JsonError& error() const { return m_error; }

  private:
    struct Walk {
        bool array;
        bool first = true;
        std::vector<std::string> names;
    };
    bool fail(std::string message);
    bool begin(bool array);
    bool step(bool array, bool& done);
    bool fill(std::size_t wanted);
    int peek_char();
    void skip_space();
    bool literal(std::string_view word);
    bool parse_value(JsonValue* out, std::size_t depth);
    bool parse_object(JsonValue* out, std::size_t depth);
    bool parse_array(JsonValue* out, std::size_t depth);
    bool parse_hex4(uint32_t& out);
    bool parse_escape(std::string* out);
    bool parse_string(std::string* out);
    bool digits(std::string* out);
    bool parse_number(JsonValue* out);
    std::size_t text_room(const JsonValue& object, std::string_view key) const;

    std::FILE* m_in = nullptr;
    std::size_t m_chunk = 0;
    std::string m_buffer;     // a file's unread bytes (and a few before them)
    std::string_view m_data;  // what is in memory: m_buffer, or the whole text
    std::size_t m_pos = 0;    // in m_data
    std::size_t m_dropped = 0;       // bytes of the input before m_data
    std::size_t m_dropped_lines = 0; // newlines among them
    std::size_t m_line_start = 0;    // input offset where the last of those lines began
    std::size_t m_size = 0;          // the input's size when known (a regular file), or 0
    static constexpr std::size_t k_no_hold = static_cast<std::size_t>(-1);
    std::size_t m_hold = k_no_hold;  // input offset fill() keeps from (a token's start)
    bool m_eof = false;
    bool m_failed = false;
    bool m_started = false;
    std::vector<Walk> m_walks;
    JsonError m_error;
};

// Parses exactly one JSON value (a UTF-8 byte order mark at the start is skipped).
std::expected<JsonValue, JsonError> parse_json(std::string_view text);

// The name of a type for messages: "a string", "an object".
std::string_view json_type_name(JsonValue::Type type);

} // namespace curlcache::cli
