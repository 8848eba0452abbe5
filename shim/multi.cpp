// The curl_multi_* wrappers. A hit added to a program's multi never reaches libcurl: it is
// replayed during the next curl_multi_perform/socket_action and reported done through
// curl_multi_info_read, in one queue with the real DONE messages. A miss runs in libcurl's
// multi and is finished (engine end_transfer) when its DONE message comes out of libcurl.
//
// curl_multi_fdset adds, while hits wait to be replayed, one descriptor that is always
// readable: an emulated handle has no socket, and a program that select()s on fdset's
// answer with its own timeout (pycurl's `select.select(*m.fdset(), timeout)`) would
// otherwise sleep that whole timeout before calling curl_multi_perform for each hit.
#include "shim/multi.h"

#include "core/easy/engine.h"
#include "shim/guard.h"
#include "shim/multi_rounds.h"
#include "shim/multi_state.h"
#include "shim/resolve.h"

#include <sys/eventfd.h>
#include <sys/select.h>

#include <algorithm>
#include <cstdarg>
#include <type_traits>
#include <vector>

namespace curlcache::shim {
namespace {

namespace engine = core::easy;

// A transfer the program dropped before libcurl reported it: the engine must restore its
// callbacks and store nothing.
constexpr CURLcode k_abandoned = CURLE_ABORTED_BY_CALLBACK;

template <Library L> CURLMcode multi_add_handle(const void* caller, CURLM* multi, CURL* easy) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_add_handle == nullptr) {
        warn_missing(L, "curl_multi_add_handle");
        return CURLM_INTERNAL_ERROR;
    }
    if (pass_through(L, caller) || multi == nullptr || easy == nullptr) {
        return api.multi_add_handle(multi, easy);
    }
    MultiRegistry& registry = MultiRegistry::instance();
    {
        auto lock = registry.lock();
        if (registry.owner(easy) != nullptr) {
            return CURLM_ADDED_ALREADY;
        }
        MultiState& state = registry.find_or_add(multi);
        if (state.busy) {
            return CURLM_RECURSIVE_API_CALL;
        }
    }
    const engine::Begin begin = engine::begin_transfer(api, easy);
    if (begin == engine::Begin::hit) {
        curl_multi_timer_callback timer = nullptr;
        void* timer_data = nullptr;
        {
            auto lock = registry.lock();
            MultiState& state = registry.find_or_add(multi);
            state.members[easy] = Member{MemberKind::emulated, false, {}};
            state.pending.push_back(easy);
            registry.set_owner(easy, multi);
            timer = state.timer;
            timer_data = state.timer_data;
        }
        // libcurl asks an event-driven program for an immediate timeout on every add; the
        // program then calls curl_multi_socket_action, which replays the hit.
        if (timer != nullptr) {
            timer(multi, 0, timer_data);
        }
        return CURLM_OK;
    }
    const CURLMcode code = api.multi_add_handle(multi, easy);
    if (code != CURLM_OK) {
        if (begin == engine::Begin::miss) {
            (void)engine::end_transfer(api, easy, CURLE_FAILED_INIT);
        }
        return code;
    }
    auto lock = registry.lock();
    MultiState& state = registry.find_or_add(multi);
    const MemberKind kind =
        begin == engine::Begin::miss ? MemberKind::miss : MemberKind::passthrough;
    state.members[easy] = Member{kind, false, {}};
    ++state.real_count;
    registry.set_owner(easy, multi);
    return CURLM_OK;
}

template <Library L> CURLMcode multi_remove_handle(const void* caller, CURLM* multi, CURL* easy) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_remove_handle == nullptr) {
        warn_missing(L, "curl_multi_remove_handle");
        return CURLM_INTERNAL_ERROR;
    }
    if (pass_through(L, caller) || !known(multi)) {
        return api.multi_remove_handle(multi, easy);
    }
    MultiRegistry& registry = MultiRegistry::instance();
    MemberKind kind;
    bool finished;
    {
        auto lock = registry.lock();
        MultiState* state = registry.find(multi);
        const auto found = state->members.find(easy);
        if (found == state->members.end()) {
            lock.unlock();
            return api.multi_remove_handle(multi, easy);
        }
        if (state->busy) {
            return CURLM_RECURSIVE_API_CALL;
        }
        kind = found->second.kind;
        finished = found->second.finished;
        if (kind == MemberKind::emulated) {
            erase_member(*state, easy);
            registry.clear_owner(easy);
            return CURLM_OK; // never in libcurl's multi: just forget it
        }
    }
    if (kind == MemberKind::miss && !finished) {
        // Its DONE message may be waiting in libcurl's queue, which removal would discard.
        drain_real(api, multi);
    }
    const CURLMcode code = api.multi_remove_handle(multi, easy);
    bool abandoned = false;
    {
        auto lock = registry.lock();
        if (MultiState* state = registry.find(multi)) {
            const auto found = state->members.find(easy);
            abandoned = found != state->members.end() && kind == MemberKind::miss &&
                        !found->second.finished;
            erase_member(*state, easy);
        }
        registry.clear_owner(easy);
    }
    if (abandoned) {
        (void)engine::end_transfer(api, easy, k_abandoned);
    }
    return code;
}

// curl_multi_perform and curl_multi_socket_action: replay the next hit waiting, then let
// libcurl run the real transfers.
template <Library L, typename Run> CURLMcode run_round(CURLM* multi, int* running, Run&& run) {
    const engine::CurlApi& api = engine_api(L);
    bool recursive = false;
    const std::vector<CURL*> hits = start_round(multi, recursive);
    if (recursive) {
        return CURLM_RECURSIVE_API_CALL;
    }
    replay_hits(api, multi, hits);
    const CURLMcode code = run();
    const RoundEnd end = end_round(multi, code == CURLM_OK ? running : nullptr);
    if (end.timer != nullptr) {
        end.timer(multi, 0, end.timer_data); // more hits: the program comes back at once
    }
    return code;
}

template <Library L> CURLMcode multi_perform(const void* caller, CURLM* multi, int* running) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_perform == nullptr) {
        warn_missing(L, "curl_multi_perform");
        return CURLM_INTERNAL_ERROR;
    }
    if (pass_through(L, caller) || !known(multi)) {
        return api.multi_perform(multi, running);
    }
    return run_round<L>(multi, running, [&] { return api.multi_perform(multi, running); });
}

template <Library L>
CURLMcode multi_socket_action(const void* caller, CURLM* multi, curl_socket_t socket, int mask,
                              int* running) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_socket_action == nullptr) {
        warn_missing(L, "curl_multi_socket_action");
        return CURLM_INTERNAL_ERROR;
    }
    if (pass_through(L, caller) || !known(multi)) {
        return api.multi_socket_action(multi, socket, mask, running);
    }
    return run_round<L>(multi, running,
                        [&] { return api.multi_socket_action(multi, socket, mask, running); });
}

template <Library L> CURLMsg* multi_info_read(const void* caller, CURLM* multi, int* queued) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_info_read == nullptr) {
        warn_missing(L, "curl_multi_info_read");
        return nullptr;
    }
    if (pass_through(L, caller) || !known(multi)) {
        return api.multi_info_read(multi, queued);
    }
    drain_real(api, multi);
    MultiRegistry& registry = MultiRegistry::instance();
    auto lock = registry.lock();
    MultiState* state = registry.find(multi);
    int left = 0;
    CURLMsg* msg = nullptr;
    while (state != nullptr && msg == nullptr && !state->done.empty()) {
        CURL* easy = state->done.front();
        state->done.pop_front();
        const auto found = state->members.find(easy);
        if (found != state->members.end()) {
            msg = &found->second.msg;
        }
    }
    if (state != nullptr) {
        left = static_cast<int>(state->done.size());
    }
    if (queued != nullptr) {
        *queued = left;
    }
    return msg;
}

template <Library L, auto Member>
CURLMcode multi_wait_or_poll(const void* caller, const char* name, CURLM* multi, curl_waitfd* extra,
                             unsigned int extra_count, int timeout_ms, int* ready) {
    const engine::CurlApi& api = engine_api(L);
    auto* fn = api.*Member;
    if (fn == nullptr) {
        warn_missing(L, name);
        return CURLM_INTERNAL_ERROR;
    }
    if (!pass_through(L, caller) && must_not_block(multi)) {
        if (ready != nullptr) {
            *ready = 0;
        }
        return CURLM_OK;
    }
    return fn(multi, extra, extra_count, timeout_ms, ready);
}

template <Library L> CURLMcode multi_timeout(const void* caller, CURLM* multi, long* timeout_ms) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_timeout == nullptr) {
        warn_missing(L, "curl_multi_timeout");
        return CURLM_INTERNAL_ERROR;
    }
    if (!pass_through(L, caller) && timeout_ms != nullptr) {
        MultiRegistry& registry = MultiRegistry::instance();
        auto lock = registry.lock();
        const MultiState* state = registry.find(multi);
        if (state != nullptr && !state->pending.empty()) {
            *timeout_ms = 0; // the replay is due now
            return CURLM_OK;
        }
    }
    return api.multi_timeout(multi, timeout_ms);
}

// An eventfd whose counter stays 1 (nobody reads it): readable for select() at once. Made
// on first need, kept for the process (one descriptor). -1 when it cannot be made.
int always_readable() {
    static const int fd = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd;
}

template <Library L>
CURLMcode multi_fdset(const void* caller, CURLM* multi, fd_set* read_set, fd_set* write_set,
                      fd_set* exc_set, int* max_fd) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_fdset == nullptr) {
        warn_missing(L, "curl_multi_fdset");
        return CURLM_INTERNAL_ERROR;
    }
    const CURLMcode code = api.multi_fdset(multi, read_set, write_set, exc_set, max_fd);
    if (code != CURLM_OK || pass_through(L, caller) || read_set == nullptr || max_fd == nullptr) {
        return code;
    }
    bool due = false;
    {
        MultiRegistry& registry = MultiRegistry::instance();
        auto lock = registry.lock();
        const MultiState* state = registry.find(multi);
        due = state != nullptr && !state->pending.empty();
    }
    const int fd = due ? always_readable() : -1;
    if (fd >= 0 && fd < FD_SETSIZE) { // the replay is due now: select() must not wait
        FD_SET(fd, read_set);
        *max_fd = std::max(*max_fd, fd);
    }
    return code;
}

template <Library L> CURLMcode multi_cleanup(const void* caller, CURLM* multi) {
    const engine::CurlApi& api = engine_api(L);
    if (api.multi_cleanup == nullptr) {
        warn_missing(L, "curl_multi_cleanup");
        return CURLM_INTERNAL_ERROR;
    }
    if (pass_through(L, caller) || !known(multi)) {
        return api.multi_cleanup(multi);
    }
    drain_real(api, multi);
    std::unique_ptr<MultiState> state;
    {
        MultiRegistry& registry = MultiRegistry::instance();
        auto lock = registry.lock();
        state = registry.take(multi);
    }
    if (state) {
        for (const auto& [easy, member] : state->members) {
            if (member.kind == MemberKind::miss && !member.finished) {
                (void)engine::end_transfer(api, easy, k_abandoned);
            }
        }
    }
    return api.multi_cleanup(multi);
}

template <Library L>
CURLMcode multi_setopt(const void* caller, CURLM* multi, CURLMoption option, va_list args) {
    const Real& r = real(L);
    if (r.multi_setopt == nullptr) {
        warn_missing(L, "curl_multi_setopt");
        return CURLM_INTERNAL_ERROR;
    }
    const bool ours = !pass_through(L, caller);
    Inside inside;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        return r.multi_setopt(multi, option, va_arg(args, long));
    }
    if (option < CURLOPTTYPE_FUNCTIONPOINT) {
        void* value = va_arg(args, void*);
        const CURLMcode code = r.multi_setopt(multi, option, value);
        if (ours && code == CURLM_OK && option == CURLMOPT_TIMERDATA) {
            MultiRegistry& registry = MultiRegistry::instance();
            auto lock = registry.lock();
            registry.find_or_add(multi).timer_data = value;
        }
        return code;
    }
    if (option < CURLOPTTYPE_OFF_T) {
        using AnyFunction = void (*)();
        AnyFunction value = va_arg(args, AnyFunction);
        const CURLMcode code = r.multi_setopt(multi, option, value);
        if (ours && code == CURLM_OK && option == CURLMOPT_TIMERFUNCTION) {
            MultiRegistry& registry = MultiRegistry::instance();
            auto lock = registry.lock();
            registry.find_or_add(multi).timer = reinterpret_cast<curl_multi_timer_callback>(value);
        }
        return code;
    }
    return r.multi_setopt(multi, option, va_arg(args, curl_off_t));
}

// Runs a wrapper; should the shim's bookkeeping throw (out of memory), the call goes to
// libcurl as it is. Exceptions never leave a wrapper.
template <Library L, auto Member, typename Fn, typename... Args>
auto shielded(Fn&& fn, Args... args) noexcept -> decltype(fn()) {
    using Result = decltype(fn());
    try {
        return fn();
    } catch (...) {
    }
    try {
        if (auto real_fn = engine_api(L).*Member) {
            return real_fn(args...);
        }
    } catch (...) {
    }
    if constexpr (std::is_pointer_v<Result>) {
        return nullptr;
    } else {
        return CURLM_INTERNAL_ERROR;
    }
}

} // namespace

void multi_forget_easy(Library library, CURL* easy) noexcept {
    MultiRegistry* existing = MultiRegistry::existing();
    if (existing == nullptr) {
        return; // the program never added a handle to a multi
    }
    MultiRegistry& registry = *existing;
    bool abandoned = false;
    {
        auto lock = registry.lock();
        CURLM* multi = registry.owner(easy);
        if (multi == nullptr) {
            return;
        }
        if (MultiState* state = registry.find(multi)) {
            const auto found = state->members.find(easy);
            abandoned = found != state->members.end() && found->second.kind == MemberKind::miss &&
                        !found->second.finished;
            erase_member(*state, easy);
        }
        registry.clear_owner(easy);
    }
    if (abandoned) {
        (void)engine::end_transfer(engine_api(library), easy, k_abandoned);
    }
}

} // namespace curlcache::shim

// The exported entry points, one set per libcurl build. Each takes its own return address
// (libcurl calling itself is recognised by it).
#define CURLCACHE_SHIM_API(member) &curlcache::core::easy::CurlApi::member
#define CURLCACHE_SHIM_MULTI(tag, L)                                                               \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_add_handle)                                              \
    CURLMcode curlcache_shim_##tag##_multi_add_handle(CURLM* multi, CURL* easy) noexcept {         \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_add_handle)>(                 \
            [&] { return curlcache::shim::multi_add_handle<L>(caller, multi, easy); }, multi,      \
            easy);                                                                                 \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_remove_handle)                                           \
    CURLMcode curlcache_shim_##tag##_multi_remove_handle(CURLM* multi, CURL* easy) noexcept {      \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_remove_handle)>(              \
            [&] { return curlcache::shim::multi_remove_handle<L>(caller, multi, easy); }, multi,   \
            easy);                                                                                 \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_perform)                                                 \
    CURLMcode curlcache_shim_##tag##_multi_perform(CURLM* multi, int* running) noexcept {          \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_perform)>(                    \
            [&] { return curlcache::shim::multi_perform<L>(caller, multi, running); }, multi,      \
            running);                                                                              \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_socket_action)                                           \
    CURLMcode curlcache_shim_##tag##_multi_socket_action(CURLM* multi, curl_socket_t socket,       \
                                                         int mask, int* running) noexcept {        \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_socket_action)>(              \
            [&] {                                                                                  \
                return curlcache::shim::multi_socket_action<L>(caller, multi, socket, mask,        \
                                                               running);                           \
            },                                                                                     \
            multi, socket, mask, running);                                                         \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_info_read)                                               \
    CURLMsg* curlcache_shim_##tag##_multi_info_read(CURLM* multi, int* queued) noexcept {          \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_info_read)>(                  \
            [&] { return curlcache::shim::multi_info_read<L>(caller, multi, queued); }, multi,     \
            queued);                                                                               \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_wait)                                                    \
    CURLMcode curlcache_shim_##tag##_multi_wait(CURLM* multi, curl_waitfd* extra,                  \
                                                unsigned int count, int timeout_ms,                \
                                                int* ready) noexcept {                             \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_wait)>(                       \
            [&] {                                                                                  \
                return curlcache::shim::multi_wait_or_poll<L, CURLCACHE_SHIM_API(multi_wait)>(     \
                    caller, "curl_multi_wait", multi, extra, count, timeout_ms, ready);            \
            },                                                                                     \
            multi, extra, count, timeout_ms, ready);                                               \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_poll)                                                    \
    CURLMcode curlcache_shim_##tag##_multi_poll(CURLM* multi, curl_waitfd* extra,                  \
                                                unsigned int count, int timeout_ms,                \
                                                int* ready) noexcept {                             \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_poll)>(                       \
            [&] {                                                                                  \
                return curlcache::shim::multi_wait_or_poll<L, CURLCACHE_SHIM_API(multi_poll)>(     \
                    caller, "curl_multi_poll", multi, extra, count, timeout_ms, ready);            \
            },                                                                                     \
            multi, extra, count, timeout_ms, ready);                                               \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_timeout)                                                 \
    CURLMcode curlcache_shim_##tag##_multi_timeout(CURLM* multi, long* timeout_ms) noexcept {      \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_timeout)>(                    \
            [&] { return curlcache::shim::multi_timeout<L>(caller, multi, timeout_ms); }, multi,   \
            timeout_ms);                                                                           \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_fdset)                                                   \
    CURLMcode curlcache_shim_##tag##_multi_fdset(CURLM* multi, fd_set* read_set,                   \
                                                 fd_set* write_set, fd_set* exc_set,               \
                                                 int* max_fd) noexcept {                           \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_fdset)>(                      \
            [&] {                                                                                  \
                return curlcache::shim::multi_fdset<L>(caller, multi, read_set, write_set,         \
                                                       exc_set, max_fd);                           \
            },                                                                                     \
            multi, read_set, write_set, exc_set, max_fd);                                          \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_cleanup)                                                 \
    CURLMcode curlcache_shim_##tag##_multi_cleanup(CURLM* multi) noexcept {                        \
        const void* caller = __builtin_return_address(0);                                          \
        return curlcache::shim::shielded<L, CURLCACHE_SHIM_API(multi_cleanup)>(                    \
            [&] { return curlcache::shim::multi_cleanup<L>(caller, multi); }, multi);              \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_multi_setopt)                                                  \
    CURLMcode curlcache_shim_##tag##_multi_setopt(CURLM* multi, CURLMoption option,                \
                                                  ...) noexcept {                                  \
        va_list args;                                                                              \
        va_start(args, option);                                                                    \
        CURLMcode code = CURLM_INTERNAL_ERROR;                                                     \
        try {                                                                                      \
            code = curlcache::shim::multi_setopt<L>(__builtin_return_address(0), multi, option,    \
                                                    args);                                         \
        } catch (...) {                                                                            \
        }                                                                                          \
        va_end(args);                                                                              \
        return code;                                                                               \
    }

CURLCACHE_SHIM_FOR_EACH_LIBRARY(CURLCACHE_SHIM_MULTI)

#if CURLCACHE_SHIM_SPLIT
// The engine's wrappers by slot (shim/stub_abi.h), for curlcache_engine_attach.
void curlcache::shim::multi_entries(void** entries) noexcept {
    CURLCACHE_STUB_MULTI_FUNCTIONS(CURLCACHE_SHIM_ENTRY)
}
#endif
