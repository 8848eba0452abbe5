// What the shim remembers about a program's multi handles (shim/multi.cpp drives it).
//
// Each handle the program adds is a member of its multi: a real one (pass-through or miss,
// added to libcurl's multi) or an emulated hit (kept out of libcurl, replayed later). DONE
// messages of both kinds wait in one queue in the order the transfers finished; the
// CURLMsg handed to the program lives in its member, valid until the handle is removed, as
// libcurl's own are.
#pragma once

#include "shim/library.h"

#include <curl/curl.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace curlcache::shim {

enum class MemberKind { passthrough, miss, emulated };

struct Member {
    MemberKind kind = MemberKind::passthrough;
    bool finished = false; // its DONE message is known (and end_transfer ran for a miss)
    CURLMsg msg{};
};

struct MultiState {
    std::unordered_map<CURL*, Member> members; // node-based: a member's address is stable
    std::deque<CURL*> pending;                 // emulated hits not replayed yet
    std::deque<CURL*> done;                    // DONE messages not read yet
    std::size_t real_count = 0;                // members added to libcurl's multi
    bool busy = false;                         // a perform/replay of this multi is running
    curl_multi_timer_callback timer = nullptr; // the program's CURLMOPT_TIMERFUNCTION
    void* timer_data = nullptr;
};

// The registry of multi handles and of which multi each easy handle is in. All access goes
// through lock(); a multi's state is only changed by the thread driving that multi (as
// libcurl requires), the lock protects the maps shared between threads. Never held while
// libcurl, the engine or a program callback runs. Survives fork (pthread_atfork).
class MultiRegistry {
  public:
    static MultiRegistry& instance();
    // The registry if a multi handle was ever seen, else null (nothing to look up).
    static MultiRegistry* existing();

    std::unique_lock<std::mutex> lock();

    // With the lock held. find() returns null for a multi the shim never saw.
    MultiState* find(CURLM* multi);
    MultiState& find_or_add(CURLM* multi);
    std::unique_ptr<MultiState> take(CURLM* multi);
    CURLM* owner(CURL* easy) const;
    void set_owner(CURL* easy, CURLM* multi);
    void clear_owner(CURL* easy);

    void fork_lock();
    void fork_unlock();

  private:
    MultiRegistry() = default;
    std::mutex m_mutex;
    std::unordered_map<CURLM*, std::unique_ptr<MultiState>> m_multis;
    std::unordered_map<CURL*, CURLM*> m_owners;
};

// With the lock held: erases `easy` from every queue of `state` and from its members.
void erase_member(MultiState& state, CURL* easy);

} // namespace curlcache::shim
