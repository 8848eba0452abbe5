// The steps of the multi wrappers that touch the registry and call libcurl or the engine:
// moving libcurl's DONE messages into the shim's queue, and the rounds of
// curl_multi_perform/socket_action that replay hits.
#include "shim/multi_rounds.h"

#include "shim/guard.h"
#include "shim/multi_state.h"

#include <optional>

namespace curlcache::shim {

// Moves every DONE message waiting in libcurl's queue into the shim's queue (copied: the
// program reads them from the shim). A miss is ended first (outside the lock), and its
// message carries the result the engine returns (a revalidated 304 becomes a replay).
void drain_real(const core::easy::CurlApi& api, CURLM* multi) {
    MultiRegistry& registry = MultiRegistry::instance();
    for (;;) {
        int left = 0;
        CURLMsg* real_msg = api.multi_info_read(multi, &left);
        if (real_msg == nullptr) {
            return;
        }
        CURLMsg msg = *real_msg;
        bool end = false;
        {
            auto lock = registry.lock();
            MultiState* state = registry.find(multi);
            if (state == nullptr) {
                return; // cannot happen: callers hold a state for this multi
            }
            const auto found = state->members.find(msg.easy_handle);
            end = found != state->members.end() && found->second.kind == MemberKind::miss &&
                  !found->second.finished && msg.msg == CURLMSG_DONE;
        }
        if (end) {
            msg.data.result = core::easy::end_transfer(api, msg.easy_handle, msg.data.result);
        }
        auto lock = registry.lock();
        MultiState* state = registry.find(multi);
        if (state == nullptr) {
            return;
        }
        const auto [found, added] = state->members.try_emplace(msg.easy_handle);
        if (added) {
            ++state->real_count; // a handle libcurl added itself (an HTTP/2 server push)
        }
        Member& member = found->second;
        member.finished = true;
        member.msg = msg;
        state->done.push_back(msg.easy_handle);
    }
}

// Marks the multi busy (libcurl refuses recursive calls from callbacks; so does the shim)
// and hands out the hit to replay now. One hit per round: each finished transfer is then
// seen by the program (info_read, its own output) before the next one writes, as when real
// transfers finish one after another.
std::vector<CURL*> start_round(CURLM* multi, bool& recursive) {
    MultiRegistry& registry = MultiRegistry::instance();
    auto lock = registry.lock();
    MultiState* state = registry.find(multi);
    recursive = false;
    if (state == nullptr) {
        return {};
    }
    if (state->busy) {
        recursive = true;
        return {};
    }
    state->busy = true;
    if (state->pending.empty()) {
        return {};
    }
    std::vector<CURL*> hits{state->pending.front()};
    state->pending.pop_front();
    return hits;
}

namespace {

// Body bytes one round replays at most: a hit streamed from storage is delivered over
// several rounds of the program's loop, which meanwhile drives its other transfers.
constexpr uint64_t k_round_budget = 4u << 20;

} // namespace

void replay_hits(const core::easy::CurlApi& api, CURLM* multi, const std::vector<CURL*>& hits) {
    MultiRegistry& registry = MultiRegistry::instance();
    for (CURL* easy : hits) {
        std::optional<CURLcode> result;
        {
            CurrentTransfer current(easy);
            result = core::easy::replay_some(api, easy, k_round_budget);
        }
        auto lock = registry.lock();
        MultiState* state = registry.find(multi);
        if (state == nullptr) {
            continue;
        }
        const auto found = state->members.find(easy);
        if (found == state->members.end()) {
            continue;
        }
        if (!result) {
            // A large body goes on in the next round (still pending: counted as running,
            // a zero timeout, a readable descriptor in fdset).
            state->pending.push_front(easy);
            continue;
        }
        found->second.finished = true;
        found->second.msg.msg = CURLMSG_DONE;
        found->second.msg.easy_handle = easy;
        found->second.msg.data.result = *result;
        state->done.push_back(easy);
    }
}

// Ends a round; running_handles counts the real transfers libcurl reported plus the hits
// still waiting (a replayed hit is done, so no longer counted). Returns the program's timer
// callback when hits still wait, to be asked for an immediate timeout.
RoundEnd end_round(CURLM* multi, int* running) {
    MultiRegistry& registry = MultiRegistry::instance();
    auto lock = registry.lock();
    RoundEnd end;
    if (MultiState* state = registry.find(multi)) {
        state->busy = false;
        if (running != nullptr) {
            *running += static_cast<int>(state->pending.size());
        }
        if (!state->pending.empty()) {
            end.timer = state->timer;
            end.timer_data = state->timer_data;
        }
    }
    return end;
}

bool known(CURLM* multi) {
    MultiRegistry& registry = MultiRegistry::instance();
    auto lock = registry.lock();
    return registry.find(multi) != nullptr;
}

// True when a wait must not block: a hit waits to be replayed, or only emulated transfers
// remain and their messages are unread (libcurl would sleep the whole timeout).
bool must_not_block(CURLM* multi) {
    MultiRegistry& registry = MultiRegistry::instance();
    auto lock = registry.lock();
    const MultiState* state = registry.find(multi);
    return state != nullptr &&
           (!state->pending.empty() || (state->real_count == 0 && !state->done.empty()));
}

} // namespace curlcache::shim
