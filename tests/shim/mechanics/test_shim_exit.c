/* exit() while another thread is inside a transfer the cache is taking part in. The
 * process-wide cache must outlive the exit handlers: a thread that is still receiving a
 * miss (and so writing into the cache) when main calls exit() must not find it destroyed.
 * The program's own exit handler waits for that transfer to end, so the transfer always
 * runs on after the shim's handlers, whatever the timing. */
#include "mech_common.h"

static void test_exit_during_another_threads_miss_is_clean(void** state) {
    static harness_result run;
    const char* argv[] = {MECH_EDGE, "exit-mid-transfer", origin_url("/slow/exit-miss"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &run), 0);
    assert_int_equal(run.exit_code, 0);
    assert_non_null(strstr(run.out, "exiting\nworker code=0 body=/slow/exit-miss #"));
    assert_int_equal(origin_count() - before, 1);
}

static void test_exit_during_another_threads_miss_then_hits_in_the_next_process(void** state) {
    /* What a transfer that ends after the shim let go of the cache does not store is
     * fetched again; what it stored must be whole. Either way the next process gets the
     * right body, and a third is a hit. */
    static harness_result first, second, third;
    const char* argv[] = {MECH_EDGE, "exit-mid-transfer", origin_url("/slow/exit-next"), NULL};
    const char* plain[] = {MECH_CLIENT, "easy", origin_url("/slow/exit-next"), NULL};
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &first), 0);
    assert_int_equal(first.exit_code, 0);
    assert_int_equal(harness_run(*state, 1, plain, shim_env(), &second), 0);
    assert_int_equal(second.exit_code, 0);
    assert_non_null(strstr(second.out, "0 code=0 status=200 body=/slow/exit-next #"));
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, plain, shim_env(), &third), 0);
    assert_string_equal(second.out, third.out);
    assert_int_equal(origin_count() - before, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exit_during_another_threads_miss_is_clean, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_exit_during_another_threads_miss_then_hits_in_the_next_process, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
