/* Calls a program makes from inside a callback, while the shim is itself inside a real
 * libcurl call (curl_easy_perform or curl_multi_perform): options set on another handle,
 * reset, cleanup and duphandle must reach the engine like any other call, or that handle's
 * recorded options go stale and a later transfer is keyed (and answered) for the wrong
 * request. Each test runs the program twice under the shim: the first run must fetch what
 * libcurl really asked for, the second must replay exactly that from the cache. */
#include "mech_common.h"

/* Runs `edge nested ACTION DRIVER /<tag>-a /<tag>-old /<tag>-new` twice under the shim and
 * checks that B fetched `/<tag>-<b_path>` the first time and that the second run was
 * answered entirely from the cache. */
static void check_nested(void** state, const char* action, const char* driver, const char* tag,
                         const char* b_path) {
    static harness_result first, second;
    char a[64], old_path[64], new_path[64], expect_a[96], expect_b[128];
    snprintf(a, sizeof(a), "/%s-a", tag);
    snprintf(old_path, sizeof(old_path), "/%s-old", tag);
    snprintf(new_path, sizeof(new_path), "/%s-new", tag);
    snprintf(expect_a, sizeof(expect_a), "A code=0 body=%s #", a);
    snprintf(expect_b, sizeof(expect_b), "B code=0 status=200 body=/%s-%s #", tag, b_path);
    const char* argv[] = {MECH_EDGE,
                          "nested",
                          action,
                          driver,
                          origin_url(a),
                          origin_url(old_path),
                          origin_url(new_path),
                          NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &first), 0);
    assert_int_equal(first.exit_code, 0);
    assert_non_null(strstr(first.out, expect_a));
    assert_non_null(strstr(first.out, expect_b));
    assert_int_equal(origin_count() - before, 2);

    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &second), 0);
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 2);
}

/* The URL B had before the callback changed it still gets its own response. */
static void check_old_url_is_its_own(void** state, const char* tag) {
    static harness_result run;
    char path[64], expect[96];
    snprintf(path, sizeof(path), "/%s-old", tag);
    snprintf(expect, sizeof(expect), "0 code=0 status=200 body=%s #", path);
    const char* argv[] = {MECH_CLIENT, "easy", origin_url(path), NULL};
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &run), 0);
    assert_non_null(strstr(run.out, expect));
}

static void test_url_set_on_another_handle_in_a_write_callback_is_recorded(void** state) {
    check_nested(state, "setopt", "easy", "nested-setopt", "new");
    check_old_url_is_its_own(state, "nested-setopt");
}

static void test_url_set_in_a_callback_under_multi_perform_is_recorded(void** state) {
    check_nested(state, "setopt", "multi", "nested-multi", "new");
    check_old_url_is_its_own(state, "nested-multi");
}

static void test_reset_of_another_handle_in_a_callback_drops_its_options(void** state) {
    check_nested(state, "reset", "easy", "nested-reset", "new");
}

static void test_cleanup_and_new_handle_in_a_callback_start_fresh(void** state) {
    check_nested(state, "cleanup", "easy", "nested-cleanup", "new");
}

static void test_duphandle_in_a_callback_copies_the_recorded_options(void** state) {
    check_nested(state, "duphandle", "easy", "nested-dup", "old");
}

static void test_duphandle_in_a_callback_under_multi_copies_the_recorded_options(void** state) {
    check_nested(state, "duphandle", "multi", "nested-multi-dup", "old");
}

/* A's write callback resets A itself, which libcurl lets the transfer survive. The engine
 * must not free the state its own callbacks (a miss) or its replay (a hit) still use: a
 * first run does it during a miss (what that transfer stores, if anything, is the
 * engine's choice), a run without the reset makes sure A is stored, and a third run does
 * it during the replay of A, from the cache alone. */
static void check_reset_self(void** state, const char* driver, const char* tag) {
    static harness_result miss, plain, hit;
    char a[64], old_path[64], new_path[64], expect_a[96], expect_b[128];
    snprintf(a, sizeof(a), "/%s-a", tag);
    snprintf(old_path, sizeof(old_path), "/%s-old", tag);
    snprintf(new_path, sizeof(new_path), "/%s-new", tag);
    snprintf(expect_a, sizeof(expect_a), "A code=0 body=%s #", a);
    snprintf(expect_b, sizeof(expect_b), "B code=0 status=200 body=%s #", old_path);
    const char* argv[] = {MECH_EDGE,
                          "nested",
                          "reset-self",
                          driver,
                          origin_url(a),
                          origin_url(old_path),
                          origin_url(new_path),
                          NULL};
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &miss), 0);
    assert_int_equal(miss.exit_code, 0);
    assert_non_null(strstr(miss.out, expect_a));
    assert_non_null(strstr(miss.out, expect_b));
    /* libcurl forgot A's URL: the engine must not answer from the old one */
    assert_non_null(strstr(miss.out, "A again code=3 body=\n"));

    argv[2] = "none";
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &plain), 0);
    assert_int_equal(plain.exit_code, 0);

    argv[2] = "reset-self";
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &hit), 0);
    /* the same A and B as the run without the reset (both from the cache), and no URL */
    const char* b_line = strstr(plain.out, "B code=");
    assert_non_null(b_line);
    char expected[512];
    snprintf(expected, sizeof(expected), "%.*sA again code=3 body=\n%s", (int)(b_line - plain.out),
             plain.out, b_line);
    assert_string_equal(hit.out, expected);
    assert_int_equal(hit.exit_code, 0);
    assert_int_equal(origin_count() - before, 0);
}

static void test_reset_of_its_own_handle_during_a_miss_or_a_hit_is_survived(void** state) {
    check_reset_self(state, "easy", "nested-self");
}

static void test_reset_of_its_own_handle_under_multi_is_survived(void** state) {
    check_reset_self(state, "multi", "nested-self-multi");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_url_set_on_another_handle_in_a_write_callback_is_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_set_in_a_callback_under_multi_perform_is_recorded,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_reset_of_another_handle_in_a_callback_drops_its_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_and_new_handle_in_a_callback_start_fresh,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_duphandle_in_a_callback_copies_the_recorded_options,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_duphandle_in_a_callback_under_multi_copies_the_recorded_options, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_reset_of_its_own_handle_during_a_miss_or_a_hit_is_survived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_of_its_own_handle_under_multi_is_survived, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
