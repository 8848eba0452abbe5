/* A C program linked with the shared libcurlcache.so (not the static engine) gets the
 * engine through <curlcache/curl.h>: offline mode answers without any network. */
/* cmocka needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* clang-format off */
#include <cmocka.h>
/* clang-format on */

#include <curl/curl.h>
#include <curlcache/curl.h>

#include <stdlib.h>
#include <string.h>

static void test_shared_library_engine_answers_offline_miss(void** state) {
    (void)state;
    setenv("CURLCACHE_BACKEND", "memory", 1);
    setenv("CURLCACHE_MODE", "offline", 1);
    char error[CURL_ERROR_SIZE] = "";
    CURL* h = curl_easy_init();
    assert_non_null(h);
    /* port 9 (discard) on loopback: offline mode must not even try it */
    assert_int_equal(curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:9/shared"), CURLE_OK);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    assert_int_equal(curl_easy_perform(h), CURLE_COULDNT_CONNECT);
    assert_string_equal(error, "curlcache: offline and not cached: http://127.0.0.1:9/shared");
    char* effective = NULL;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective);
    assert_string_equal(effective, "http://127.0.0.1:9/shared");
    curl_easy_cleanup(h);
    unsetenv("CURLCACHE_BACKEND");
    unsetenv("CURLCACHE_MODE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_library_engine_answers_offline_miss),
    };
    return cmocka_run_group_tests_name("easy_shared", tests, NULL, NULL);
}
