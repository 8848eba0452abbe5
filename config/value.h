// One input value on its way into Settings, whatever it came from: a TOML file (typed, with
// the line it was written on) or an environment variable / argument (text to be parsed).
// Internal to config/: the TOML reader produces it, the key table consumes it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace curlcache::config {

struct Value {
    enum class Type {
        text,   // from the environment or an argument: any type, still to be parsed
        string, // a TOML string
        integer,
        floating,
        boolean,
        array,
        table,
        other, // dates and times: valid TOML, never a valid curlcache value
    };
    Type type = Type::text;
    std::string text; // text, string
    int64_t integer = 0;
    double floating = 0;
    bool boolean = false;
    std::vector<Value> items;                          // array
    std::vector<std::pair<std::string, Value>> fields; // table, in file order
    unsigned line = 0;                                 // 1-based; 0 = not from a file

    // Declared here and defaulted below the class: a member of type
    // std::vector<std::pair<std::string, Value>> needs Value complete before its special
    // members exist (clang with libstdc++ rejects the implicit ones; GCC accepts them).
    Value();
    Value(const Value&);
    Value(Value&&) noexcept;
    Value& operator=(const Value&);
    Value& operator=(Value&&) noexcept;
    ~Value();

    static Value from_text(std::string text) {
        Value v;
        v.text = std::move(text);
        return v;
    }
};

inline Value::Value() = default;
inline Value::Value(const Value&) = default;
inline Value::Value(Value&&) noexcept = default;
inline Value& Value::operator=(const Value&) = default;
inline Value& Value::operator=(Value&&) noexcept = default;
inline Value::~Value() = default;

// "a string", "an integer", ... for "expected X, got Y" messages.
const char* type_name(Value::Type type);

} // namespace curlcache::config
