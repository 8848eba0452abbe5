/* Set-Cookie on a hit for a handle that shares cookies through CURLOPT_SHARE. libcurl 7.88
 * takes a response's cookies only into a handle whose own cookie engine is on
 * (COOKIEFILE, COOKIEJAR or COOKIELIST): a share with CURL_LOCK_DATA_COOKIE alone lends
 * the jar, not the engine. A replayed response must feed the jar exactly when the real one
 * would, so that the next request of any handle on the share sends the same Cookie header.
 * Each test compares a run without the shim, a first run under it (a miss) and a second
 * (a hit): every echo of the Cookie header the origin received must be the same. */
#include "mech_common.h"

/* Runs `edge share-cookies SHARE A_FILE /set-cookie/<tag> /echo-cookie/<tag>` without the
 * shim and twice with it; checks that all three print `expected` and that the second run
 * under the shim answered /set-cookie from the cache. */
static void check_share(void** state, const char* share_cookies, const char* a_cookiefile,
                        const char* tag, const char* expected) {
    static harness_result plain, miss, hit;
    char set[96], echo[96];
    snprintf(set, sizeof(set), "/set-cookie/%s", tag);
    snprintf(echo, sizeof(echo), "/echo-cookie/%s", tag);
    const char* argv[] = {MECH_EDGE,       "share-cookies",  share_cookies, a_cookiefile,
                          origin_url(set), origin_url(echo), NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &plain), 0);
    assert_int_equal(plain.exit_code, 0);
    assert_string_equal(plain.out, expected);
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &miss), 0);
    assert_runs_equal(&plain, &miss);
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, shim_env(), &hit), 0);
    assert_runs_equal(&plain, &hit);
    assert_int_equal(origin_count() - before, 2); /* the two echoes only: /set-cookie hit */
}

static void test_cookie_share_without_cookie_options_keeps_no_cookie_on_a_hit(void** state) {
    check_share(state, "1", "0", "share-only",
                "A set code=0\n"
                "A echo code=0 body=cookie=-\n"
                "B echo code=0 body=cookie=-\n");
}

static void test_share_without_cookie_lock_keeps_no_cookie_on_a_hit(void** state) {
    check_share(state, "0", "0", "share-no-lock",
                "A set code=0\n"
                "A echo code=0 body=cookie=-\n"
                "B echo code=0 body=cookie=-\n");
}

static void test_cookie_share_with_cookiefile_passes_the_cookie_on_a_hit(void** state) {
    check_share(state, "1", "1", "share-and-file",
                "A set code=0\n"
                "A echo code=0 body=cookie=flavour=oat\n"
                "B echo code=0 body=cookie=flavour=oat\n");
}

static void test_cookielist_command_alone_keeps_no_cookie_on_a_hit(void** state) {
    /* CURLOPT_COOKIELIST "ALL" clears a jar; it does not start the cookie engine. */
    check_share(state, "1", "ALL", "share-list-all",
                "A set code=0\n"
                "A echo code=0 body=cookie=-\n"
                "B echo code=0 body=cookie=-\n");
}

static void test_reset_keeps_a_started_cookie_engine_on_a_hit(void** state) {
    /* Measured on libcurl 7.88.1: COOKIEJAR starts the engine at once and curl_easy_reset
     * keeps it, so the response's Set-Cookie is taken; a hit must feed it too. No cookie
     * lock: B has its own jar. */
    check_share(state, "0", "reset", "reset-keeps-engine",
                "A set code=0\n"
                "A echo code=0 body=cookie=flavour=oat\n"
                "B echo code=0 body=cookie=-\n");
}

static void test_reset_drops_a_cookiefile_not_yet_loaded_on_a_hit(void** state) {
    /* COOKIEFILE starts the engine only when a transfer begins: after a reset before that,
     * Set-Cookie is not taken, and a hit must not feed it. */
    check_share(state, "0", "reset-file", "reset-drops-file",
                "A set code=0\n"
                "A echo code=0 body=cookie=-\n"
                "B echo code=0 body=cookie=-\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cookie_share_without_cookie_options_keeps_no_cookie_on_a_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_without_cookie_lock_keeps_no_cookie_on_a_hit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cookie_share_with_cookiefile_passes_the_cookie_on_a_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookielist_command_alone_keeps_no_cookie_on_a_hit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_keeps_a_started_cookie_engine_on_a_hit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reset_drops_a_cookiefile_not_yet_loaded_on_a_hit,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
