/* The multi interface under the shim: a hit (kept out of libcurl and replayed) and a miss
 * (a real transfer) in one multi handle, driven the ways programs drive it. Both must finish
 * with the right results, the miss must be stored, and a multi of hits only must never
 * block in wait/poll (the client waits up to 10 s per call). */
#include "mech_common.h"

#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "<index> code=0 status=200 body=<path> #" must appear in `out`. */
static void assert_transfer(const char* out, int index, const char* path) {
    char expected[256];
    snprintf(expected, sizeof(expected), "%d code=0 status=200 body=%s #", index, path);
    if (strstr(out, expected) == NULL) {
        fail_msg("missing \"%s\" in:\n%s", expected, out);
    }
}

static void check_hit_and_miss(void** state, const char* mode, const char* tag) {
    static harness_result warm, mixed, hits;
    char hit_path[128], miss_path[128];
    snprintf(hit_path, sizeof(hit_path), "/multi-%s-hit", tag);
    snprintf(miss_path, sizeof(miss_path), "/slow/multi-%s-miss", tag);
    const char* hit_url = origin_url(hit_path);
    const char* miss_url = origin_url(miss_path);

    const long before = origin_count();
    const char* warm_argv[] = {MECH_CLIENT, "easy", hit_url, NULL};
    assert_int_equal(harness_run(*state, 1, warm_argv, NULL, &warm), 0);
    assert_transfer(warm.out, 0, hit_path);
    assert_int_equal(origin_count() - before, 1);

    /* One hit and one miss in the same multi. */
    const char* argv[] = {MECH_CLIENT, mode, hit_url, miss_url, NULL};
    assert_int_equal(harness_run(*state, 1, argv, NULL, &mixed), 0);
    assert_int_equal(mixed.exit_code, 0);
    assert_memory_equal(mixed.out, warm.out, warm.size); /* the hit: the stored response */
    assert_transfer(mixed.out, 1, miss_path);
    assert_non_null(strstr(mixed.out, "running=0\n"));
    assert_int_equal(origin_count() - before, 2);

    /* The miss was stored when its DONE message was read: now both are hits, no waiting. */
    const double start = now_seconds();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &hits), 0);
    const double elapsed = now_seconds() - start;
    assert_int_equal(hits.exit_code, 0);
    assert_int_equal(hits.size, mixed.size);
    assert_memory_equal(hits.out, mixed.out, mixed.size);
    assert_int_equal(origin_count() - before, 2);
    if (elapsed >= 5.0) {
        fail_msg("a multi of hits took %.1f s: the wait blocked", elapsed);
    }
}

static void test_multi_wait_loop_finishes_hit_and_miss(void** state) {
    check_hit_and_miss(state, "multi-wait", "wait");
}

static void test_multi_poll_loop_finishes_hit_and_miss(void** state) {
    check_hit_and_miss(state, "multi-poll", "poll");
}

static void test_multi_fdset_select_loop_finishes_hit_and_miss(void** state) {
    check_hit_and_miss(state, "multi-fdset", "fdset");
}

static void test_multi_socket_action_loop_finishes_hit_and_miss(void** state) {
    check_hit_and_miss(state, "multi-socket", "socket");
}

static void test_handles_dropped_mid_transfer_are_forgotten_and_not_stored(void** state) {
    static harness_result warm, run, after;
    const char* hit1 = origin_url("/abandon-hit1");
    const char* hit2 = origin_url("/abandon-hit2");
    const char* slow = origin_url("/slow/abandon-miss");
    const char* warm_argv[] = {MECH_CLIENT, "easy", hit1, hit2, NULL};
    assert_int_equal(harness_run(*state, 1, warm_argv, NULL, &warm), 0);
    const long before = origin_count();

    const char* argv[] = {MECH_CLIENT, "multi-abandon", hit1, hit2, slow, NULL};
    assert_int_equal(harness_run(*state, 1, argv, NULL, &run), 0);
    assert_int_equal(run.exit_code, 0);
    /* one round replays one hit; the other hit and the running miss are dropped */
    assert_non_null(strstr(run.out, "finished: 1 0 0 body0=/abandon-hit1 #"));

    /* The abandoned miss was not stored: fetching it again reaches the origin. */
    const long middle = origin_count();
    assert_true(middle - before <= 1);
    const char* again[] = {MECH_CLIENT, "easy", slow, NULL};
    assert_int_equal(harness_run(*state, 1, again, NULL, &after), 0);
    assert_transfer(after.out, 0, "/slow/abandon-miss");
    assert_int_equal(origin_count() - middle, 1);
}

static void test_messages_of_hits_and_misses_count_down_msgs_in_queue(void** state) {
    static harness_result warm, plain, shimmed;
    const char* a = origin_url("/queue-a");
    const char* b = origin_url("/queue-b");
    const char* c = origin_url("/slow/queue-c");
    const char* warm_argv[] = {MECH_CLIENT, "easy", a, b, NULL};
    assert_int_equal(harness_run(*state, 1, warm_argv, NULL, &warm), 0);

    /* Two hits and a miss; every message read after all finished. The message lines must be
     * those of a run without the shim (three messages, msgs_in_queue 2, 1, 0). */
    const char* argv[] = {MECH_CLIENT, "multi-queue", a, b, c, NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &plain), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &shimmed), 0);
    const char* expected = "message 0: done=1 result=0 queued=2\n"
                           "message 1: done=1 result=0 queued=1\n"
                           "message 2: done=1 result=0 queued=0\n"
                           "after: queued=0\n";
    assert_int_equal(strncmp(plain.out, expected, strlen(expected)), 0);
    if (strncmp(shimmed.out, expected, strlen(expected)) != 0) {
        fail_msg("with the shim:\n%s", shimmed.out);
    }
    assert_transfer(shimmed.out, 0, "/queue-a");
    assert_transfer(shimmed.out, 1, "/queue-b");
    assert_transfer(shimmed.out, 2, "/slow/queue-c");
}

static void test_multi_results_match_a_run_without_shim_shape(void** state) {
    /* Without the shim the same program gives the same lines for fresh URLs (the shim
     * changes nothing but where the bytes come from). */
    static harness_result plain, shimmed;
    const char* argv[] = {MECH_CLIENT, "multi-poll", origin_url("/shape-a"),
                          origin_url("/slow/shape-b"), NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &plain), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &shimmed), 0);
    assert_int_equal(plain.exit_code, shimmed.exit_code);
    assert_transfer(plain.out, 0, "/shape-a");
    assert_transfer(shimmed.out, 0, "/shape-a");
    assert_transfer(shimmed.out, 1, "/slow/shape-b");
    assert_non_null(strstr(shimmed.out, "running=0\n"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multi_wait_loop_finishes_hit_and_miss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multi_poll_loop_finishes_hit_and_miss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multi_fdset_select_loop_finishes_hit_and_miss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multi_socket_action_loop_finishes_hit_and_miss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_handles_dropped_mid_transfer_are_forgotten_and_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_of_hits_and_misses_count_down_msgs_in_queue,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_results_match_a_run_without_shim_shape, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
