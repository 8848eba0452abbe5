/* The shared libraries export only their own API: libcurlcache.so only curlcache_*
 * symbols, the preload shim (when it is built) only curl_* functions and dlopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/core/scratch.h"

typedef int (*symbol_check)(const char* name);

static int is_linker_symbol(const char* name) {
    return strcmp(name, "_init") == 0 || strcmp(name, "_fini") == 0;
}

static int curlcache_prefixed(const char* name) {
    return strncmp(name, "curlcache_", 10) == 0;
}

static int shim_allowed(const char* name) {
    return strncmp(name, "curl_", 5) == 0 || strcmp(name, "dlopen") == 0;
}

/* Runs nm on `library`; fails the test for each defined dynamic symbol `allowed` rejects.
 * Returns how many symbols were checked. */
static int check_exports(const char* library, symbol_check allowed) {
    char command[PATH_MAX + 64];
    snprintf(command, sizeof command, "nm -D --defined-only '%s'", library);
    FILE* nm = popen(command, "r");
    assert_non_null(nm);
    char line[1024];
    int checked = 0, bad = 0;
    while (fgets(line, sizeof line, nm)) {
        char address[64], type[8], name[512];
        if (sscanf(line, "%63s %7s %511s", address, type, name) != 3) {
            continue;
        }
        /* Type 'A' entries are version nodes (CURL_OPENSSL_4, ...), not symbols. */
        char* at = strchr(name, '@'); /* "curl_easy_init@@CURL_OPENSSL_4": the version */
        if (at) {
            *at = '\0';
        }
        if (strcmp(type, "A") == 0 || is_linker_symbol(name)) {
            continue;
        }
        ++checked;
        if (!allowed(name)) {
            print_error("%s exports %s (%s)\n", library, name, type);
            ++bad;
        }
    }
    assert_int_equal(pclose(nm), 0);
    assert_int_equal(bad, 0);
    return checked;
}

static void test_libcurlcache_exports_only_curlcache_symbols(void** state) {
    (void)state;
    const char* library = CURLCACHE_BINARY_DIR "/lib/libcurlcache.so";
    assert_int_equal(access(library, R_OK), 0);
    int checked = check_exports(library, curlcache_prefixed);
    assert_true(checked >= 40); /* the public API is there at all */
}

static void test_preload_shim_exports_only_curl_functions_and_dlopen(void** state) {
    (void)state;
    const char* library = CURLCACHE_BINARY_DIR "/lib/libcurlcache-preload.so";
    if (access(library, R_OK) != 0) {
        skip(); /* the shim is not built in this tree */
    }
    int checked = check_exports(library, shim_allowed);
    assert_true(checked > 0);
}

static void test_checker_catches_a_foreign_symbol(void** state) {
    (void)state;
    /* The rule itself must be able to fail: libc exports plenty without our prefix. */
    assert_false(curlcache_prefixed("malloc"));
    assert_false(curlcache_prefixed("curlcache")); /* the prefix includes the underscore */
    assert_false(shim_allowed("curlcache_open"));
    assert_true(shim_allowed("curl_easy_perform"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libcurlcache_exports_only_curlcache_symbols),
        cmocka_unit_test(test_preload_shim_exports_only_curl_functions_and_dlopen),
        cmocka_unit_test(test_checker_catches_a_foreign_symbol),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
