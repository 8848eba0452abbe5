/* The shim's dynamic symbol table: exactly the libcurl functions it interposes, once per
 * libcurl build (OpenSSL, GnuTLS, NSS) with that build's version, plus dlopen; no
 * dependency on libcurl. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const char* const k_interposed[] = {
    "curl_easy_init",      "curl_easy_setopt",      "curl_easy_perform",
    "curl_easy_getinfo",   "curl_easy_cleanup",     "curl_easy_reset",
    "curl_easy_duphandle", "curl_easy_header",      "curl_easy_nextheader",
    "curl_multi_setopt",   "curl_multi_add_handle", "curl_multi_remove_handle",
    "curl_multi_perform",  "curl_multi_info_read",  "curl_multi_wait",
    "curl_multi_poll",     "curl_multi_timeout",    "curl_multi_socket_action",
    "curl_multi_fdset",    "curl_multi_cleanup",
};
#define INTERPOSED_COUNT (sizeof(k_interposed) / sizeof(k_interposed[0]))

static int setup(void** state) {
    static harness_scratch scratch;
    *state = &scratch;
    return harness_scratch_make(&scratch);
}

static int teardown(void** state) {
    harness_scratch_remove(*state);
    return 0;
}

static int listed(const char* symbol, const char* name, const char* version_sep) {
    char expected[128];
    snprintf(expected, sizeof(expected), "%s%s", name, version_sep);
    return strcmp(symbol, expected) == 0;
}

/* `nm -D --defined-only` of `library`: one "address type symbol" line per symbol. */
static char* defined_symbols(void** state, const char* library) {
    static harness_result result;
    const char* argv[] = {"/usr/bin/nm", "-D", "--defined-only", library, NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &result), 0);
    assert_int_equal(result.exit_code, 0);
    return result.out;
}

static void test_shim_exports_only_interposed_functions_and_dlopen(void** state) {
    char* symbols = defined_symbols(state, CURLCACHE_SHIM_PATH);

    int seen_openssl[INTERPOSED_COUNT] = {0}, seen_gnutls[INTERPOSED_COUNT] = {0},
        seen_nss[INTERPOSED_COUNT] = {0};
    int dlopen_new = 0, dlopen_old = 0, functions = 0;
    char* save = NULL;
    for (char* line = strtok_r(symbols, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char address[32], type[4], symbol[256];
        assert_int_equal(sscanf(line, "%31s %3s %255s", address, type, symbol), 3);
        if (strcmp(type, "A") == 0) {
            /* version definitions: only the nodes of preload.map */
            assert_true(strcmp(symbol, "CURL_OPENSSL_4") == 0 ||
                        strcmp(symbol, "CURL_GNUTLS_3") == 0 || strcmp(symbol, "CURL_NSS_3") == 0 ||
                        strcmp(symbol, "GLIBC_2.2.5") == 0 || strcmp(symbol, "GLIBC_2.34") == 0);
            continue;
        }
        ++functions;
        assert_string_equal(type, "T");
        if (strcmp(symbol, "dlopen@@GLIBC_2.34") == 0) {
            ++dlopen_new;
            continue;
        }
        if (strcmp(symbol, "dlopen@GLIBC_2.2.5") == 0) {
            ++dlopen_old;
            continue;
        }
        int known = 0;
        for (size_t i = 0; i < INTERPOSED_COUNT; ++i) {
            if (listed(symbol, k_interposed[i], "@@CURL_OPENSSL_4")) {
                ++seen_openssl[i];
                known = 1;
            } else if (listed(symbol, k_interposed[i], "@CURL_GNUTLS_3")) {
                ++seen_gnutls[i];
                known = 1;
            } else if (listed(symbol, k_interposed[i], "@CURL_NSS_3")) {
                ++seen_nss[i];
                known = 1;
            }
        }
        if (!known) {
            fail_msg("unexpected export: %s", symbol);
        }
    }
    for (size_t i = 0; i < INTERPOSED_COUNT; ++i) {
        assert_int_equal(seen_openssl[i], 1);
        assert_int_equal(seen_gnutls[i], 1);
        assert_int_equal(seen_nss[i], 1);
    }
    assert_int_equal(dlopen_new, 1);
    assert_int_equal(dlopen_old, 1);
    assert_int_equal(functions, 3 * (int)INTERPOSED_COUNT + 2);
}

/* Calls `check` with each (NEEDED) line of `readelf -d` of the shim; returns their number. */
static int each_needed_library(void** state, void (*check)(const char* line)) {
    static harness_result result;
    const char* argv[] = {"/usr/bin/readelf", "-d", CURLCACHE_SHIM_PATH, NULL};
    assert_int_equal(harness_run(*state, 0, argv, NULL, &result), 0);
    assert_int_equal(result.exit_code, 0);
    int needed = 0;
    char* save = NULL;
    for (char* line = strtok_r(result.out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "(NEEDED)") != NULL) {
            ++needed;
            check(line);
        }
    }
    return needed;
}

static void refuse_libcurl(const char* line) {
    if (strstr(line, "[libcurl") != NULL) {
        fail_msg("the shim needs a libcurl: %s", line);
    }
}

static void test_shim_does_not_depend_on_libcurl(void** state) {
    /* Loading either libcurl is the program's business: the shim finds it at run time. */
    assert_true(each_needed_library(state, refuse_libcurl) > 0);
}

/* Every program started under LD_PRELOAD loads the shim and what it needs, curl or not. With
 * its dependencies linked in (the default build) it needs libc alone: libxxhash.so and
 * libm.so, which it needed before, are loaded only when a long body is hashed or SQLite
 * calls a math function (shim/xxhash_dispatch.cpp, shim/libm_lazy.cpp). */
static void refuse_all_but_libc(const char* line) {
    if (strstr(line, "[libc.so.6]") == NULL && strstr(line, "[ld-linux-x86-64.so.2]") == NULL) {
        fail_msg("the shim loads more than libc at start-up: %s", line);
    }
}

static void test_shim_needs_only_libc_at_start_up(void** state) {
#if CURLCACHE_SHIM_STATIC_DEPS
    assert_true(each_needed_library(state, refuse_all_but_libc) > 0);
#else
    (void)state; /* sanitizer builds and -DCURLCACHE_SHIM_STATIC_DEPS=OFF link shared */
    (void)refuse_all_but_libc;
#endif
}

/* The split build's engine (libcurlcache-engine.so, loaded RTLD_LOCAL by the stub) exports
 * its entry point alone. */
static void test_engine_exports_only_its_entry_point(void** state) {
    if (MECH_ENGINE_PATH[0] == '\0') {
        skip(); /* one-library build */
    }
    int functions = 0;
    char* save = NULL;
    for (char* line = strtok_r(defined_symbols(state, MECH_ENGINE_PATH), "\n", &save);
         line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char address[32], type[4], name[256];
        assert_int_equal(sscanf(line, "%31s %3s %255s", address, type, name), 3);
        const char* symbol = name;
        if (strcmp(type, "A") == 0) {
            continue; /* a version node */
        }
        ++functions;
        if (strcmp(symbol, "curlcache_engine_attach") != 0) {
            fail_msg("unexpected export of the engine: %s", symbol);
        }
    }
    assert_int_equal(functions, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shim_exports_only_interposed_functions_and_dlopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_does_not_depend_on_libcurl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shim_needs_only_libc_at_start_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_exports_only_its_entry_point, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
