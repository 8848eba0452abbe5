/* The public functions core/capi_cli.cpp adds for the curlcache command:
 * curlcache_store_with_key() and curlcache_glob_match(). */
#include <curlcache/curlcache.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/core/scratch.h"

static const char k_headers[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
static const char k_key[] = "0123456789abcdef0123456789abcdef";

static curlcache* open_sqlite(void) {
    char name[PATH_MAX + 300];
    snprintf(name, sizeof name, "name=%s", scratch_path("c.sqlite"));
    const char* args[] = {"backend=sqlite", name, NULL};
    curlcache* cache = NULL;
    assert_int_equal(curlcache_open(&cache, args), CURLCACHE_OK);
    return cache;
}

static curlcache_code store_with_key(curlcache* cache, const char* key, const char* headers,
                                     const char* body) {
    curlcache_request* request = curlcache_request_new("GET", "http://example.test/a");
    assert_non_null(request);
    curlcache_code code =
        curlcache_store_with_key(cache, key, request, headers, strlen(headers), body, strlen(body));
    curlcache_request_free(request);
    return code;
}

static uint64_t entry_count(curlcache* cache) {
    uint64_t entries = 99, bytes = 0;
    assert_int_equal(curlcache_count(cache, &entries, &bytes), CURLCACHE_OK);
    return entries;
}

static void test_store_with_key_stores_under_the_given_key_only(void** state) {
    (void)state;
    curlcache* cache = open_sqlite();
    assert_int_equal(store_with_key(cache, k_key, k_headers, "body"), CURLCACHE_OK);
    assert_int_equal(entry_count(cache), 1);

    curlcache_entry* entry = NULL;
    assert_int_equal(curlcache_entry_get(cache, k_key, &entry), CURLCACHE_OK);
    assert_string_equal(curlcache_entry_key(entry), k_key);
    assert_string_equal(curlcache_entry_url(entry), "http://example.test/a");
    assert_int_equal(curlcache_entry_status(entry), 200);
    const void* body = NULL;
    size_t size = 0;
    assert_int_equal(curlcache_entry_body(entry, &body, &size), CURLCACHE_OK);
    assert_int_equal(size, 4);
    assert_memory_equal(body, "body", 4);
    const char* headers = NULL;
    assert_int_equal(curlcache_entry_headers(entry, 0, &headers, &size), CURLCACHE_OK);
    assert_int_equal(size, strlen(k_headers));
    assert_memory_equal(headers, k_headers, size);
    curlcache_entry_free(entry);

    /* The request's own key holds nothing: the entry went under k_key alone. */
    curlcache_request* request = curlcache_request_new("GET", "http://example.test/a");
    char own[33];
    assert_int_equal(curlcache_request_key(cache, request, own), CURLCACHE_OK);
    assert_string_not_equal(own, k_key);
    assert_int_equal(curlcache_entry_get(cache, own, &entry), CURLCACHE_E_MISS);
    curlcache_request_free(request);

    curlcache_stats stats;
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.stores, 1);
    assert_int_equal(stats.bytes_downloaded, 0);
    curlcache_close(cache);
}

static void test_store_with_key_rejects_what_is_not_a_key(void** state) {
    (void)state;
    curlcache* cache = open_sqlite();
    const char* bad[] = {"", "0123", "0123456789ABCDEF0123456789ABCDEF",
                         "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        assert_int_equal(store_with_key(cache, bad[i], k_headers, "x"),
                         CURLCACHE_E_INVALID_ARGUMENT);
        assert_true(strlen(curlcache_errmsg(cache)) > 0);
    }
    assert_int_equal(curlcache_store_with_key(cache, NULL, NULL, NULL, 0, NULL, 0),
                     CURLCACHE_E_INVALID_ARGUMENT);
    assert_int_equal(entry_count(cache), 0);
    curlcache_close(cache);
}

static void test_store_with_key_applies_the_store_policy(void** state) {
    (void)state;
    curlcache* cache = open_sqlite();
    assert_int_equal(store_with_key(cache, k_key, "HTTP/1.1 404 Not Found\r\n\r\n", "gone"),
                     CURLCACHE_E_NOT_CACHEABLE);
    assert_int_equal(entry_count(cache), 0);
    curlcache_close(cache);
}

static void test_glob_match_is_the_delete_glob(void** state) {
    (void)state;
    assert_true(curlcache_glob_match("http://a.test/*", "http://a.test/x/y?z"));
    assert_true(curlcache_glob_match("*/b?n", "http://o.test/bin"));
    assert_true(curlcache_glob_match("*", ""));
    assert_false(curlcache_glob_match("http://a.test/?", "http://a.test/xy"));
    assert_false(curlcache_glob_match("http://a.test/[x]", "http://a.test/x"));
    assert_false(curlcache_glob_match(NULL, "x"));
    assert_false(curlcache_glob_match("x", NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_with_key_stores_under_the_given_key_only,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_store_with_key_rejects_what_is_not_a_key,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_store_with_key_applies_the_store_policy, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test(test_glob_match_is_the_delete_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
