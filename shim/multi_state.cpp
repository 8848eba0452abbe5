#include "shim/multi_state.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>

namespace curlcache::shim {
namespace {

MultiRegistry* g_registry = nullptr;
std::atomic<MultiRegistry*> g_published{nullptr};
pthread_once_t g_registry_once = PTHREAD_ONCE_INIT;

// fork() while another thread holds the lock would leave the child's copy locked forever:
// the forking thread takes it across the fork and both sides release it.
void fork_prepare() {
    g_registry->fork_lock();
}
void fork_release() {
    g_registry->fork_unlock();
}

} // namespace

MultiRegistry& MultiRegistry::instance() {
    pthread_once(&g_registry_once, [] {
        g_registry = new MultiRegistry(); // never destroyed: wrappers may run during exit
        pthread_atfork(fork_prepare, fork_release, fork_release);
        g_published.store(g_registry, std::memory_order_release);
    });
    return *g_registry;
}

MultiRegistry* MultiRegistry::existing() {
    return g_published.load(std::memory_order_acquire);
}

void MultiRegistry::fork_lock() {
    m_mutex.lock();
}
void MultiRegistry::fork_unlock() {
    m_mutex.unlock();
}

std::unique_lock<std::mutex> MultiRegistry::lock() {
    return std::unique_lock<std::mutex>(m_mutex);
}

MultiState* MultiRegistry::find(CURLM* multi) {
    const auto found = m_multis.find(multi);
    return found == m_multis.end() ? nullptr : found->second.get();
}

MultiState& MultiRegistry::find_or_add(CURLM* multi) {
    std::unique_ptr<MultiState>& state = m_multis[multi];
    if (!state) {
        state = std::make_unique<MultiState>();
    }
    return *state;
}

std::unique_ptr<MultiState> MultiRegistry::take(CURLM* multi) {
    const auto found = m_multis.find(multi);
    if (found == m_multis.end()) {
        return nullptr;
    }
    std::unique_ptr<MultiState> state = std::move(found->second);
    m_multis.erase(found);
    for (const auto& [easy, member] : state->members) {
        m_owners.erase(easy);
    }
    return state;
}

CURLM* MultiRegistry::owner(CURL* easy) const {
    const auto found = m_owners.find(easy);
    return found == m_owners.end() ? nullptr : found->second;
}

void MultiRegistry::set_owner(CURL* easy, CURLM* multi) {
    m_owners[easy] = multi;
}
void MultiRegistry::clear_owner(CURL* easy) {
    m_owners.erase(easy);
}

void erase_member(MultiState& state, CURL* easy) {
    const auto drop = [easy](std::deque<CURL*>& queue) {
        queue.erase(std::remove(queue.begin(), queue.end(), easy), queue.end());
    };
    drop(state.pending);
    drop(state.done);
    const auto found = state.members.find(easy);
    if (found != state.members.end()) {
        if (found->second.kind != MemberKind::emulated && state.real_count > 0) {
            --state.real_count;
        }
        state.members.erase(found);
    }
}

} // namespace curlcache::shim
