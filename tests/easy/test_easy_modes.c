/* The engine's key and policy decisions seen from a program (direct-link convenience):
 * decoded bodies, credentials, size limit, modes, fork. Built once per backend. */
#include "tests/easy/capture.h"

#include <sys/wait.h>
#include <unistd.h>

static void test_accept_encoding_hit_replays_decoded_body_and_wire_size(void** state) {
    (void)state;
    const char* url = origin_url(0, "/gzip/enc");
    Capture c[2];
    memset(c, 0, sizeof c);
    curl_off_t wire[2] = {0, 0};
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        capture_on(h, &c[round]);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &wire[round]);
        curl_easy_cleanup(h);
    }
    assert_int_equal(origin_count(), before + 1);
    assert_int_equal(c[1].body.size, 50 * strlen("hello enc\n"));
    assert_same_buffer(&c[0].body, &c[1].body);
    assert_same_buffer(&c[0].headers, &c[1].headers);
    assert_non_null(strstr(c[1].headers.data, "Content-Encoding: gzip"));
    assert_int_equal(wire[0], wire[1]);
    assert_true(wire[1] < (curl_off_t)c[1].body.size); /* the compressed size */
    /* without ACCEPT_ENCODING it is another request (raw gzip bytes) */
    Capture raw = {0};
    assert_int_equal(fetch(url, &raw), CURLE_OK);
    assert_int_equal(origin_count(), before + 2);
    assert_int_equal((curl_off_t)raw.body.size, wire[0]);
    capture_free(&raw);
    capture_free(&c[0]);
    capture_free(&c[1]);
}

static CURLcode fetch_as(const char* url, const char* userpwd, Capture* c) {
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    capture_on(h, c);
    CURLcode rc = curl_easy_perform(h);
    c->handle = NULL;
    curl_easy_cleanup(h);
    return rc;
}

static void test_credentials_separate_entries_per_user(void** state) {
    (void)state;
    const char* url = origin_url(0, "/auth/who");
    Capture a = {0}, b = {0}, a2 = {0};
    long before = origin_count();
    assert_int_equal(fetch_as(url, "alice:one", &a), CURLE_OK);
    assert_int_equal(fetch_as(url, "bob:two", &b), CURLE_OK);
    assert_int_equal(fetch_as(url, "alice:one", &a2), CURLE_OK);
    assert_int_equal(origin_count(), before + 2);
    assert_same_buffer(&a.body, &a2.body);
    assert_string_not_equal(a.body.data, b.body.data);
    capture_free(&a);
    capture_free(&b);
    capture_free(&a2);
}

static void test_body_over_max_entry_size_passes_uncached(void** state) {
    (void)state;
    setenv("CURLCACHE_MAX_ENTRY_SIZE", "2000", 1);
    engine_reopen_cache();
    const char* url = origin_url(0, "/size/5000/big");
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(url, &c), CURLE_OK);
        assert_int_equal(c.body.size, 5000);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
}

static void test_readonly_mode_never_stores(void** state) {
    (void)state;
    setenv("CURLCACHE_MODE", "readonly", 1);
    engine_reopen_cache();
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(origin_url(0, "/text/ro"), &c), CURLE_OK);
        assert_string_equal(c.body.data, "hello ro\n");
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
}

static void test_refresh_mode_always_fetches_and_then_serves_normally(void** state) {
    (void)state;
    setenv("CURLCACHE_MODE", "refresh", 1);
    engine_reopen_cache();
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(origin_url(0, "/text/refresh"), &c), CURLE_OK);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
    if (strcmp(TEST_BACKEND, "sqlite") == 0) { /* the stored entry outlives the reopen */
        unsetenv("CURLCACHE_MODE");
        engine_reopen_cache();
        Capture c = {0};
        assert_int_equal(fetch(origin_url(0, "/text/refresh"), &c), CURLE_OK);
        assert_int_equal(origin_count(), before + 2);
        capture_free(&c);
    }
}

static void test_disable_passes_everything_through(void** state) {
    (void)state;
    setenv("CURLCACHE_DISABLE", "1", 1);
    engine_reopen_cache();
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(origin_url(0, "/text/disabled"), &c), CURLE_OK);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
}

static void test_forked_child_reopens_the_cache(void** state) {
    (void)state;
    const char* url = origin_url(0, "/text/forked");
    Capture parent = {0};
    assert_int_equal(fetch(url, &parent), CURLE_OK);
    long before = origin_count();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        Capture c = {0};
        int ok =
            fetch(url, &c) == CURLE_OK && c.body.data && strcmp(c.body.data, "hello forked\n") == 0;
        /* in a file-backed cache the child finds the parent's entry */
        if (strcmp(TEST_BACKEND, "sqlite") == 0 && origin_count() != before) {
            ok = 0;
        }
        Capture d = {0};
        ok = ok && fetch(origin_url(0, "/text/child"), &d) == CURLE_OK;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the parent's own connection still works, and sees the child's entry (sqlite) */
    Capture again = {0};
    long mid = origin_count();
    assert_int_equal(fetch(url, &again), CURLE_OK);
    assert_int_equal(origin_count(), mid);
    if (strcmp(TEST_BACKEND, "sqlite") == 0) {
        Capture child = {0};
        assert_int_equal(fetch(origin_url(0, "/text/child"), &child), CURLE_OK);
        assert_int_equal(origin_count(), mid);
        capture_free(&child);
    }
    capture_free(&parent);
    capture_free(&again);
}

static void test_non_http_scheme_passes_through(void** state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/file.txt", scratch_dir());
    FILE* file = fopen(path, "w");
    fputs("local\n", file);
    fclose(file);
    char url[700];
    snprintf(url, sizeof url, "file://%s", path);
    Capture c = {0};
    assert_int_equal(fetch(url, &c), CURLE_OK);
    assert_string_equal(c.body.data, "local\n");
    capture_free(&c);
}

static void test_cookie_engine_gets_the_set_cookie_of_a_hit(void** state) {
    (void)state;
    const char* url = origin_url(0, "/cookie/flavour");
    char jar[700];
    snprintf(jar, sizeof jar, "%s/jar.txt", scratch_dir());
    char jars[2][2048];
    long before = origin_count();
    for (int round = 0; round < 2; ++round) { /* live, then a hit: the same jar */
        remove(jar);
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_COOKIEJAR, jar);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_cleanup(h); /* writes the jar */
        capture_free(&c);
        FILE* file = fopen(jar, "r");
        assert_non_null(file);
        size_t got = fread(jars[round], 1, sizeof jars[round] - 1, file);
        jars[round][got] = '\0';
        fclose(file);
        assert_non_null(strstr(jars[round], "127.0.0.1\tFALSE\t/\tFALSE\t0\tflavour\t1"));
    }
    assert_int_equal(origin_count(), before + 1);
    assert_string_equal(jars[0], jars[1]);
}

static void test_statistics_count_hits_misses_and_pass_throughs(void** state) {
    (void)state;
    if (strcmp(TEST_BACKEND, "sqlite") != 0) {
        skip(); /* the memory backend keeps no statistics file */
    }
    const char* url = origin_url(0, "/text/stats");
    for (int round = 0; round < 3; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(url, &c), CURLE_OK);
        capture_free(&c);
    }
    Capture post = {0};
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/echo/stats"));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x");
    capture_on(h, &post);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    capture_free(&post);
    engine_reopen_cache(); /* closing the process-wide cache saves its counters */

    curlcache_handle* cache = NULL;
    assert_int_equal(curlcache_open(&cache, NULL), CURLCACHE_OK);
    curlcache_stats stats;
    memset(&stats, 0, sizeof stats);
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.misses, 1);
    assert_int_equal(stats.hits, 2);
    assert_int_equal(stats.stores, 1);
    assert_int_equal(stats.passthrough, 1);
    assert_int_equal(stats.bytes_served, 2 * strlen("hello stats\n"));
    curlcache_close(cache);
}

static void fetch_twice_from_origin(const char* path) {
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(origin_url(0, "%s", path), &c), CURLE_OK);
        assert_non_null(c.body.data);
        assert_memory_equal(c.body.data, "hello ", 6);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
}

static void test_unopenable_cache_fails_open(void** state) {
    (void)state;
    setenv("CURLCACHE_BACKEND", "sqlite", 1);
    setenv("CURLCACHE_NAME", "/proc/curlcache-nowhere/cache.sqlite", 1);
    engine_reopen_cache();
    fetch_twice_from_origin("/text/unopenable");
}

static void test_malformed_config_fails_open(void** state) {
    (void)state;
    setenv("CURLCACHE_MODE", "sideways", 1);
    engine_reopen_cache();
    fetch_twice_from_origin("/text/badconfig");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_encoding_hit_replays_decoded_body_and_wire_size,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_separate_entries_per_user, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_body_over_max_entry_size_passes_uncached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readonly_mode_never_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_mode_always_fetches_and_then_serves_normally,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_passes_everything_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_reopens_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_http_scheme_passes_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookie_engine_gets_the_set_cookie_of_a_hit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_statistics_count_hits_misses_and_pass_throughs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_cache_fails_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_config_fails_open, setup, teardown),
    };
    return cmocka_run_group_tests_name("easy_modes_" TEST_BACKEND, tests, group_setup,
                                       group_teardown);
}
