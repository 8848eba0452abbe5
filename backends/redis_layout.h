// The Redis backend's layout (internal to the backends room). Under the namespace <ns>:
//   <ns>:e:<key>     the value, binary-safe: a string, or a hash of pieces for a value
//                    streamed in (redis_streams.h)
//   <ns>:m:<key>     compact metadata "1 status created expires size method_len method url"
//   <ns>:lock:<key>  coalescing lock (random token)
//   <ns>:lru         LRU scores (the time of the last put, and of the last get when max_size
//                    is set), for eviction
//   <ns>:usage       hash: entries, bytes (exact counters), counted (1 once every entry of
//                    the namespace is known to the counters: set by the first recount)
//   <ns>:sizes       hash: key -> value size, what the counters hold for each entry
//   <ns>:exp         sorted set: key -> expiry (unix ms), to take expired entries off the
//                    counters (Redis drops the keys themselves, silently)
//   <ns>:t:<token>   a value being streamed in (redis_streams.h), renamed to <ns>:e:<key>
//                    at commit; gone k_temp_ttl_ms after its last piece if its writer died
// Every change to an entry changes the counters in the same atomic step (a script inside
// the put's MULTI, or a script alone), so they stay exact across crashed clients; entries
// written by an older version are adopted by a one-time recount (usage() or a put to a
// bounded cache that finds `counted` missing), and `curlcache vacuum` recounts from scratch
// (a key deleted behind our back, e.g. by a maxmemory policy). (<ns>:bytes, an older
// version's upper-bound counter, is only ever deleted.)
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

// The accounting scripts. Each takes KEYS = usage, sizes, exp, lru.
//   put:    ARGV = key, size, expires ms (0 = never), now us, max_size (0 = none), prefix
//           "<ns>:"; counts the new value in, and when the cache is over max_size takes
//           expired entries and then the least recently used off (at most 64 a call);
//           returns {bytes, counted (0/1), still over max_size (0/1)}.
//   remove: ARGV = key, prefix; deletes the entry; returns how many keys went.
//   reap:   ARGV = now ms, limit, prefix; removes entries expired by then; returns how many.
//   evict:  ARGV = max_size, limit, prefix; least recently used first while over max_size;
//           returns 1 while still over.
//   commit: KEYS = usage, sizes, exp, lru, then the streamed value <ns>:t:<token>, the
//           entry's value key and its metadata key; ARGV = put's, then the metadata text
//           and the number of fields the streamed hash must have; renames it into place,
//           writes the metadata and expiry, then does put's counting; returns nil (and
//           changes nothing) when the hash is gone or incomplete (expired while it was
//           written), else put's answer.
//   adopt:  ARGV = prefix, now us, then (key, size, expires ms) triples; counts in the
//           entries the counters do not know yet (and that still exist).
//   forget: ARGV = prefix, then keys; takes off the counters the keys whose entry is gone.
extern const char* const k_put_script;
extern const char* const k_commit_script;
extern const char* const k_remove_script;
extern const char* const k_reap_script;
extern const char* const k_evict_script;
extern const char* const k_adopt_script;
extern const char* const k_forget_script;

// Wall-clock microseconds: LRU scores that keep the order of accesses a moment apart.
int64_t now_us();

// 32 random hex digits, different in every process and thread.
std::string random_token();

} // namespace curlcache::backends::redis_layout
