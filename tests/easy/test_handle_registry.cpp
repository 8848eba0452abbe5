// The registry of handle states (core/easy/handle_state.cpp): each thread remembers its last
// lookup, and replacing or erasing any state makes every thread look again.
#include "core/easy/handle_state.h"

#include <memory>
#include <thread>

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

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups_find_the_state_until_it_is_replaced_or_erased),
        cmocka_unit_test(test_another_threads_erase_is_seen),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
