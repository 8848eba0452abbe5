/* The shim preloaded into whole processes: programs that never use curl, the pass-through
 * switch, repeated GETs answered from the cache whatever way libcurl was reached (a
 * RTLD_DEEPBIND module, pycurl's RTLD_LOCAL libcurl-gnutls, both builds in one process, the
 * link-time way), fork and threads. The origin counts requests: a hit sends none. */
#include "mech_common.h"

#include <unistd.h>

static void test_program_without_curl_runs_unchanged_under_shim(void** state) {
    static harness_result plain, shimmed;
    const char* argv[] = {MECH_NOCURL, "one", "two words", NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &plain), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &shimmed), 0);
    assert_int_equal(plain.exit_code, 3);
    assert_non_null(strstr(plain.out, "dlopen(NULL): ok"));
    assert_runs_equal(&plain, &shimmed);

    const char* shell[] = {"/bin/sh", "-c", "printf 'out\\n'; exit 5", NULL};
    assert_int_equal(harness_run(*state, 0, shell, NULL, &plain), 0);
    assert_int_equal(harness_run(*state, 1, shell, NULL, &shimmed), 0);
    assert_int_equal(plain.exit_code, 5);
    assert_runs_equal(&plain, &shimmed);
}

static void test_second_get_is_answered_from_cache(void** state) {
    static harness_result first, second;
    const char* argv[] = {MECH_CLIENT, "easy", origin_url("/easy-twice"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &second), 0);
    assert_non_null(strstr(first.out, "0 code=0 status=200 body=/easy-twice #"));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 1);
}

static void test_bind_now_program_is_cached_under_shim(void** state) {
    /* LD_BIND_NOW resolves every symbol at start: the shim must leave none undefined. */
    static harness_result first, second;
    const char* argv[] = {MECH_CLIENT, "easy", origin_url("/bind-now"), NULL};
    const char* env[] = {"LD_BIND_NOW=1", NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, env, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, env, &second), 0);
    assert_int_equal(first.exit_code, 0);
    assert_non_null(strstr(first.out, "0 code=0 status=200 body=/bind-now #"));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 1);
}

static void test_disable_variable_passes_every_call_through(void** state) {
    static harness_result first, second;
    const char* argv[] = {MECH_CLIENT, "easy", origin_url("/disabled"), NULL};
    const char* env[] = {"CURLCACHE_DISABLE=1", NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, env, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, env, &second), 0);
    assert_non_null(strstr(first.out, "0 code=0 status=200 body=/disabled #"));
    assert_int_equal(origin_count() - before, 2);
    /* The engine was never reached: no cache was even opened. */
    const harness_scratch* scratch = *state;
    assert_int_not_equal(access(scratch->cache, F_OK), 0);
}

static void test_deepbind_module_is_still_cached(void** state) {
    static harness_result first, second;
    /* A bare module name: found through the host's RUNPATH only if the shim's dlopen keeps
     * the host as the caller. */
    const char* argv[] = {MECH_DEEPBIND_HOST, MECH_EXT_NAME, origin_url("/deepbind"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &second), 0);
    assert_int_equal(first.exit_code, 0);
    assert_non_null(strstr(first.out, "/deepbind #"));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 1);
}

static void test_deepbind_is_cleared_unless_disabled(void** state) {
    static harness_result plain, shimmed, disabled;
    const char* argv[] = {MECH_DEEPBIND_HOST, MECH_EXT_NAME, "--where", NULL};
    const char* env[] = {"CURLCACHE_DISABLE=1", NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &plain), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &shimmed), 0);
    assert_int_equal(harness_run(*state, 1, argv, env, &disabled), 0);
    assert_non_null(strstr(plain.out, "curl_easy_init from libcurl.so.4\n"));
    assert_non_null(strstr(shimmed.out, "curl_easy_init from libcurlcache-preload.so\n"));
    /* pure pass-through: the program's RTLD_DEEPBIND is honoured */
    assert_non_null(strstr(disabled.out, "curl_easy_init from libcurl.so.4\n"));
}

static void test_dlopen_under_shim_keeps_the_callers_runpath(void** state) {
    static harness_result plain, shimmed;
    const char* argv[] = {MECH_DEEPBIND_HOST, MECH_EXT_NAME, NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &plain), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &shimmed), 0);
    assert_int_equal(plain.exit_code, 0);
    assert_runs_equal(&plain, &shimmed);
}

static void test_child_after_fork_gets_a_hit(void** state) {
    static harness_result run;
    const char* argv[] = {MECH_CLIENT, "fork", origin_url("/fork"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &run), 0);
    assert_int_equal(run.exit_code, 0);
    /* parent's line, then the child's: the same response */
    char* newline = strchr(run.out, '\n');
    assert_non_null(newline);
    const size_t line = (size_t)(newline - run.out) + 1;
    assert_int_equal(run.size, 2 * line);
    assert_memory_equal(run.out, run.out + line, line);
    assert_int_equal(origin_count() - before, 1);
}

static void test_threads_each_get_their_own_response_cached(void** state) {
    static harness_result first, second;
    const char* argv[] = {MECH_CLIENT, "threads", "4", origin_url("/threads"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &second), 0);
    assert_non_null(strstr(first.out, "3 code=0 status=200 body=/threads?t=3 #"));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 4);
}

static void test_program_linked_with_shim_is_cached_without_preload(void** state) {
    static harness_result first, second;
    const char* argv[] = {MECH_CLIENT_LINKED, "easy", origin_url("/linked"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 0, argv, NULL, &first), 0);
    assert_int_equal(harness_run(*state, 0, argv, NULL, &second), 0);
    assert_non_null(strstr(first.out, "0 code=0 status=200 body=/linked #"));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 1);
}

static void check_two_builds(void** state, const char* module, const char* tag) {
    static harness_result first, second;
    char path1[64], path2[64], expect2[80];
    snprintf(path1, sizeof(path1), "/mixed-openssl-%s", tag);
    snprintf(path2, sizeof(path2), "/mixed-%s", tag);
    snprintf(expect2, sizeof(expect2), "%s #", path2);
    const char* argv[] = {MECH_CLIENT, "mixed", module, origin_url(path1), origin_url(path2), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &second), 0);
    assert_int_equal(first.exit_code, 0);
    assert_non_null(strstr(first.out, "body=/mixed-openssl-"));
    assert_non_null(strstr(first.out, expect2));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 2);
}

static void test_openssl_and_gnutls_builds_in_one_process_are_cached(void** state) {
    if (MECH_EXT_GNUTLS[0] == '\0') {
        skip();
    }
    check_two_builds(state, MECH_EXT_GNUTLS, "gnutls");
}

static void test_openssl_and_nss_builds_in_one_process_are_cached(void** state) {
    if (MECH_EXT_NSS[0] == '\0') {
        skip();
    }
    check_two_builds(state, MECH_EXT_NSS, "nss");
}

static const char k_pycurl_script[] =
    "import io, sys, pycurl\n"
    "body = io.BytesIO()\n"
    "c = pycurl.Curl()\n"
    "c.setopt(c.URL, sys.argv[1])\n"
    "c.setopt(c.WRITEDATA, body)\n"
    "c.perform()\n"
    "print(c.getinfo(c.RESPONSE_CODE), body.getvalue().decode())\n"
    "c.close()\n";

static void test_pycurl_through_libcurl_gnutls_second_get_is_a_hit(void** state) {
    static harness_result probe, first, second;
    const char* check[] = {CURLCACHE_SYSTEM_PYTHON3, "-c", "import pycurl", NULL};
    if (CURLCACHE_SYSTEM_PYTHON3[0] == '\0' || harness_run(*state, 0, check, NULL, &probe) != 0 ||
        probe.exit_code != 0) {
        skip(); /* python3-pycurl is not installed */
    }
    const char* argv[] = {CURLCACHE_SYSTEM_PYTHON3, "-c", k_pycurl_script, origin_url("/pycurl"),
                          NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, NULL, &first), 0);
    assert_int_equal(harness_run(*state, 1, argv, NULL, &second), 0);
    assert_int_equal(first.exit_code, 0);
    assert_non_null(strstr(first.out, "200 /pycurl #"));
    assert_runs_equal(&first, &second);
    assert_int_equal(origin_count() - before, 1);
}

/* The split build (x86-64): the preloaded stub loads the engine on the first libcurl call,
 * never in a process that does not call libcurl, nor under CURLCACHE_DISABLE. */
static void test_engine_is_loaded_only_for_libcurl_calls(void** state) {
    if (MECH_ENGINE_PATH[0] == '\0') {
        skip(); /* one-library build */
    }
    static harness_result run;
    const char* maps[] = {"/bin/cat", "/proc/self/maps", NULL};
    assert_int_equal(harness_run(*state, 1, maps, NULL, &run), 0);
    assert_non_null(strstr(run.out, "libcurlcache-preload"));
    assert_null(strstr(run.out, "libcurlcache-engine"));

    const char* argv[] = {MECH_CLIENT, "easy-engine", origin_url("/engine"), NULL};
    assert_int_equal(harness_run(*state, 1, argv, NULL, &run), 0);
    assert_non_null(strstr(run.out, "0 code=0 status=200 body=/engine #"));
    assert_non_null(strstr(run.out, "engine: mapped\n"));

    const char* disabled[] = {"CURLCACHE_DISABLE=yes", NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 1, argv, disabled, &run), 0);
    assert_non_null(strstr(run.out, "0 code=0 status=200 body=/engine #"));
    assert_non_null(strstr(run.out, "engine: not mapped\n"));
    assert_int_equal(origin_count() - before, 1);
}

/* A stub without its engine (a broken install) fails open: one warning on stderr, and every
 * libcurl call reaches libcurl. */
static void test_missing_engine_warns_once_and_passes_through(void** state) {
    if (MECH_ENGINE_PATH[0] == '\0') {
        skip(); /* one-library build */
    }
    const harness_scratch* scratch = *state;
    static harness_result run;
    char alone[400], preload[420];
    snprintf(alone, sizeof(alone), "%s/libcurlcache-preload.so", scratch->dir);
    const char* copy[] = {"/bin/cp", CURLCACHE_SHIM_PATH, alone, NULL};
    assert_int_equal(harness_run(*state, 0, copy, NULL, &run), 0);
    assert_int_equal(run.exit_code, 0);
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", alone);
    const char* env[] = {preload, NULL};
    const char* argv[] = {"/bin/sh", "-c", "exec \"$0\" easy \"$1\" \"$1\" 2>&1", MECH_CLIENT,
                          origin_url("/no-engine"), NULL};
    const long before = origin_count();
    assert_int_equal(harness_run(*state, 0, argv, env, &run), 0);
    assert_int_equal(run.exit_code, 0);
    assert_non_null(strstr(run.out, "0 code=0 status=200 body=/no-engine #"));
    assert_non_null(strstr(run.out, "1 code=0 status=200 body=/no-engine #"));
    const char* warning = strstr(run.out, "curlcache: cannot load the engine ");
    assert_non_null(warning);
    assert_null(strstr(warning + 1, "curlcache:"));
    assert_int_equal(origin_count() - before, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_program_without_curl_runs_unchanged_under_shim, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_get_is_answered_from_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_now_program_is_cached_under_shim, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disable_variable_passes_every_call_through, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deepbind_module_is_still_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deepbind_is_cleared_unless_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlopen_under_shim_keeps_the_callers_runpath, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_child_after_fork_gets_a_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_each_get_their_own_response_cached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_program_linked_with_shim_is_cached_without_preload,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_openssl_and_gnutls_builds_in_one_process_are_cached,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_is_loaded_only_for_libcurl_calls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_engine_warns_once_and_passes_through, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_openssl_and_nss_builds_in_one_process_are_cached,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pycurl_through_libcurl_gnutls_second_get_is_a_hit,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
