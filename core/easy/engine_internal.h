// What the engine's files share (not for the shim: it uses core/easy/engine.h).
#pragma once

#include "config/settings.h"
#include "core/easy/engine.h"
#include "core/easy/handle_state.h"
#include "core/easy/request_plan.h"
#include "core/entry.h"
#include "core/key.h"

#include <optional>
#include <vector>

namespace curlcache::core::easy {

// A private Info id (no CURLINFO has it): the recorded EFFECTIVE_URL had userinfo, which
// was left out of the entry.
inline constexpr uint32_t k_info_effective_url_had_userinfo = 0x0ff00001;
// Another (text): the trailer lines libcurl delivered after the body, "\r\n" kept.
inline constexpr uint32_t k_info_trailers = 0x0ff00002;
// 0x0ff00003 is core::k_info_key_parts (core/key.h).
// Another (integer): how long the transfer that stored the entry took, in microseconds
// (CURLINFO_TOTAL_TIME_T): what a hit saves, for `curlcache run --stats`.
inline constexpr uint32_t k_info_transfer_time_us = 0x0ff00004;

// The time a hit on `entry` saves, in milliseconds (0 when not recorded).
uint64_t time_saved_ms(const Info* took); // of the recorded k_info_transfer_time_us

// replay.cpp: makes `state` answer its transfer from `entry` (the emulated getinfo state is
// complete when this returns, before any callback runs). False when the entry cannot answer
// this request (a range it cannot cut): the transfer then passes through.
bool prepare_hit(HandleState& state, const Plan& plan, Entry&& entry);

// replay.cpp: offline mode and no entry: the transfer fails without touching the network.
void prepare_offline_miss(HandleState& state, const Plan& plan);

// tee.cpp: installs the tee callbacks on the real handle (and, with `stale`, the validators
// of the stale entry). False when the handle refused them: the transfer passes through.
bool start_tee(const CurlApi& api, CURL* handle, HandleState& state, const Key& key,
               const Plan& plan, std::optional<Entry> stale, const config::Settings& settings,
               MissLock lock);

// tee.cpp: after the real transfer of a miss (or of an unsafe method): restores, records,
// stores (see end_transfer in engine.h).

// invalidate.cpp: an unsafe method's transfer ended with `result`; a non-error response
// removes the stored responses for its URL and its same-origin Location and
// Content-Location (RFC 9111 §4.4): those a GET or HEAD with this handle's other options
// would find.
void invalidate_after(const CurlApi& api, CURL* handle, const HandleState& state, CURLcode result);

// replay.cpp: sets the Age header of the entry's final response to its current age (the
// age_header setting).
void add_age(Entry& entry, int64_t now);

// tee.cpp: the transfer facts of the handle's last real transfer.
std::vector<Info> record_infos(const CurlApi& api, CURL* handle);

// getinfo.cpp: the body size libcurl would report for this replay (the wire size: compressed
// when the recorded transfer decoded it) and its Content-Length (-1 unknown).
int64_t replay_download_size(const Replay& replay);
int64_t replay_content_length(const Replay& replay);

// Writes libcurl's error text to the program's ERRORBUFFER, if it set one.
void set_error(const Options& options, const char* format, ...)
    __attribute__((format(printf, 2, 3)));

} // namespace curlcache::core::easy
