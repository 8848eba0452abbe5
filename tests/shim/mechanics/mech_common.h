/* Fixtures shared by the mechanics test files: one origin per group, one scratch (and so
 * one empty cache) per test. */
#ifndef CURLCACHE_TESTS_SHIM_MECHANICS_COMMON_H
#define CURLCACHE_TESTS_SHIM_MECHANICS_COMMON_H

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int g_origin_port;
static int g_origin_pid;

static int group_setup(void** state) {
    (void)state;
    return harness_origin_start(&g_origin_port, &g_origin_pid);
}

static int group_teardown(void** state) {
    (void)state;
    harness_origin_stop(g_origin_pid);
    return 0;
}

static int setup(void** state) {
    static harness_scratch scratch;
    *state = &scratch;
    return harness_scratch_make(&scratch);
}

static int teardown(void** state) {
    harness_scratch_remove(*state);
    return 0;
}

/* "http://127.0.0.1:<port><path>" in a static buffer (one of four, rotating). */
static const char* origin_url(const char* path) {
    static char urls[4][256];
    static int next;
    char* url = urls[next++ % 4];
    snprintf(url, sizeof(urls[0]), "http://127.0.0.1:%d%s", g_origin_port, path);
    return url;
}

/* The extra environment of a run under the shim: NULL, or, for a sanitizer build's shim
 * (CURLCACHE_SANITIZE), the ASan runtime preloaded ahead of it, as uninstrumented programs
 * need, and no leak report (the shim keeps its cache to the end on purpose). */
static inline const char* const* shim_env(void) {
    static char preload[1024];
    static const char* env[3];
    if (MECH_ASAN_RUNTIME[0] == '\0') {
        return NULL;
    }
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", MECH_ASAN_RUNTIME, CURLCACHE_SHIM_PATH);
    env[0] = preload;
    env[1] = "ASAN_OPTIONS=detect_leaks=0";
    env[2] = NULL;
    return env;
}

/* Two runs of a program printed the same bytes and ended the same way. */
static inline void assert_runs_equal(const harness_result* a, const harness_result* b) {
    assert_int_equal(a->exit_code, b->exit_code);
    assert_int_equal(a->size, b->size);
    assert_memory_equal(a->out, b->out, a->size);
}

static long origin_count(void) {
    long count = harness_origin_count(g_origin_port);
    assert_true(count >= 0);
    return count;
}

#endif
