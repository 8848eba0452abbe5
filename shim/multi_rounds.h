// The steps of the multi wrappers (shim/multi.cpp) that move messages and replay hits. None
// holds the registry lock while libcurl, the engine or a program callback runs.
#pragma once

#include "core/easy/engine.h"

#include <curl/curl.h>

#include <vector>

namespace curlcache::shim {

// Moves every DONE message waiting in libcurl's queue into the shim's queue; ends misses.
void drain_real(const core::easy::CurlApi& api, CURLM* multi);

// Starts a perform/socket_action round: marks the multi busy and returns the hit to replay
// (at most one). `recursive` is set when a round is already running (a callback calling in).
std::vector<CURL*> start_round(CURLM* multi, bool& recursive);

// Replays `hits` and queues their DONE messages.
void replay_hits(const core::easy::CurlApi& api, CURLM* multi, const std::vector<CURL*>& hits);

struct RoundEnd {
    curl_multi_timer_callback timer = nullptr; // set when hits still wait
    void* timer_data = nullptr;
};

// Ends the round; adds the waiting hits to *running (if not null).
RoundEnd end_round(CURLM* multi, int* running);

// Whether the shim has state for this multi handle.
bool known(CURLM* multi);

// True when curl_multi_wait/poll must return at once.
bool must_not_block(CURLM* multi);

} // namespace curlcache::shim
