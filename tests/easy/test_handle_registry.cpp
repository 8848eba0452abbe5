// The registry of handle states (core/easy/handle_state.cpp): each thread remembers its last
// lookup, and replacing or erasing any state makes every thread look again.
#include "core/easy/handle_state.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

using namespace curlcache::core::easy;

namespace {

CURL* fake_handle(int n) {
    static char handles[4][64];
    return reinterpret_cast<CURL*>(handles[n]);
}

void test_lookups_find_the_state_until_it_is_replaced_or_erased(void**) {
    CURL* a = fake_handle(0);
    CURL* b = fake_handle(1);
    HandleState& first = state_for(a);
    assert_ptr_equal(&state_for(a), &first);
    assert_ptr_equal(find_state(a), &first); // remembered by this thread
    assert_null(find_state(b));
    assert_ptr_equal(find_state(a), &first); // b's miss did not disturb it

    // curl_easy_reset: a new state under the same handle, found at once.
    auto replacement = std::make_unique<HandleState>();
    HandleState* replaced = replacement.get();
    reset_state(a, std::move(replacement));
    assert_ptr_equal(find_state(a), replaced);
    assert_ptr_equal(&state_for(a), replaced);

    // curl_easy_cleanup: gone, and a handle that reuses the address starts afresh.
    erase_state(a);
    assert_null(find_state(a));
    HandleState& fresh = state_for(a);
    assert_ptr_equal(find_state(a), &fresh);
    erase_state(a);
}

void test_another_threads_erase_is_seen(void**) {
    CURL* h = fake_handle(2);
    HandleState& mine = state_for(h);
    assert_ptr_equal(find_state(h), &mine);
    std::thread([h] { erase_state(h); }).join();
    assert_null(find_state(h));

    HandleState* theirs = nullptr;
    std::thread([h, &theirs] { theirs = &state_for(h); }).join();
    assert_ptr_equal(find_state(h), theirs);
    std::thread([h] { reset_state(h, std::make_unique<HandleState>()); }).join();
    HandleState* now = find_state(h);
    assert_non_null(now);
    assert_true(now != theirs);
    erase_state(h);
}

// Threads take handles from a small shared set in turn (as a program's threads reuse freed
// handles' addresses), each making, checking and dropping the handle's state while the others
// do the same: every lookup must find the state this thread made for its turn, never one an
// earlier turn (of any thread) left in a memo. Fails (a stale state, or a use after free under
// the sanitizer build) when erase_state or reset_state does not bump the generation.
void test_threads_passing_handles_never_see_a_stale_state(void**) {
    constexpr int k_handles = 3;
    constexpr int k_threads = 4;
    constexpr int k_turns = 20000;
    static char handles[k_handles][64];
    std::atomic<bool> taken[k_handles] = {};
    std::atomic<int> stale{0};
    auto work = [&](int thread) {
        for (int turn = 0; turn < k_turns; ++turn) {
            int i = (thread + turn) % k_handles;
            while (taken[i].exchange(true, std::memory_order_acquire)) {
                i = (i + 1) % k_handles;
                std::this_thread::yield();
            }
            CURL* h = reinterpret_cast<CURL*>(handles[i]);
            const std::string mine = std::to_string(thread) + "/" + std::to_string(turn);
            if (find_state(h) != nullptr) {
                stale.fetch_add(1); // the last turn's owner erased it
            }
            state_for(h).spare_url = mine;
            if (turn % 3 == 0) { // curl_easy_reset: a new state under the same handle
                reset_state(h, std::make_unique<HandleState>());
                HandleState* fresh = find_state(h);
                if (fresh == nullptr || !fresh->spare_url.empty()) {
                    stale.fetch_add(1);
                }
                state_for(h).spare_url = mine;
            }
            for (int look = 0; look < 3; ++look) {
                HandleState* found = find_state(h);
                if (found == nullptr || found->spare_url != mine) {
                    stale.fetch_add(1);
                }
            }
            erase_state(h);
            if (find_state(h) != nullptr) {
                stale.fetch_add(1);
            }
            taken[i].store(false, std::memory_order_release);
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back(work, t);
    }
    for (auto& t : threads) {
        t.join();
    }
    assert_int_equal(stale.load(), 0);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups_find_the_state_until_it_is_replaced_or_erased),
        cmocka_unit_test(test_another_threads_erase_is_seen),
        cmocka_unit_test(test_threads_passing_handles_never_see_a_stale_state),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
