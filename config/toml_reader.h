// The only door to toml11: a file in, a Value tree out (tables keep their file order, every
// value knows its line). Internal to config/.
#pragma once

#include "config/value.h"

#include <expected>
#include <string>

namespace curlcache::config {

struct ReadError {
    std::string message; // "path:line: malformed TOML: ..." or "path: cannot read ... (...)"
    bool io = false;     // the file could not be read at all
};

std::expected<Value, ReadError> read_toml(const std::string& path);

} // namespace curlcache::config
