// The Redis backend's layout (internal to the backends room). Under the namespace <ns>:
//   <ns>:e:<key>     the value, binary-safe
//   <ns>:m:<key>     compact metadata "1 status created expires size method_len method url"
//   <ns>:lock:<key>  coalescing lock (random token)
//   <ns>:lru, <ns>:bytes  LRU scores and a byte counter, only when max_size is set
#pragma once

#include "backends/storage.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace curlcache::backends::redis_layout {

// Keys are never empty, at most 256 bytes, and have no ':' (so that no namespace's keys
// can pass for another's).
bool valid_key(std::string_view key);

// Escapes the glob characters of SCAN MATCH.
std::string glob_escape(std::string_view text);

std::string encode_meta(const Metadata& meta, uint64_t size);
std::optional<Metadata> decode_meta(std::string_view key, std::string_view text);

// Wall-clock microseconds: LRU scores that keep the order of accesses a moment apart.
int64_t now_us();

// 32 random hex digits, different in every process and thread.
std::string random_token();

} // namespace curlcache::backends::redis_layout
