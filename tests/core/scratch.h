/* Test fixture shared by the core tests (C and C++): a scratch directory made with mkdtemp
 * and a clean environment. Setup clears every CURLCACHE_* variable and points the XDG
 * folders and HOME into the scratch directory, so that no user or system configuration,
 * cache or stats file takes part; teardown removes the directory and the variables. */
#ifndef CURLCACHE_TESTS_CORE_SCRATCH_H
#define CURLCACHE_TESTS_CORE_SCRATCH_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char** environ;

static char g_scratch[PATH_MAX];

static void scratch_clear_curlcache_env(void) {
    for (;;) {
        char name[256] = "";
        for (char** env = environ; env && *env; ++env) {
            if (strncmp(*env, "CURLCACHE_", 10) == 0) {
                const char* eq = strchr(*env, '=');
                size_t len = eq ? (size_t)(eq - *env) : strlen(*env);
                if (len < sizeof name) {
                    memcpy(name, *env, len);
                    name[len] = '\0';
                }
                break;
            }
        }
        if (!name[0]) {
            return;
        }
        unsetenv(name); /* environ changed: scan again */
    }
}

static int scratch_setup(void** state) {
    (void)state;
    const char* tmp = getenv("TMPDIR");
    snprintf(g_scratch, sizeof g_scratch, "%s/curlcache-core-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_scratch)) {
        return -1;
    }
    scratch_clear_curlcache_env();
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config", g_scratch);
    setenv("XDG_CONFIG_HOME", path, 1);
    snprintf(path, sizeof path, "%s/cache", g_scratch);
    setenv("XDG_CACHE_HOME", path, 1);
    setenv("HOME", g_scratch, 1);
    /* The API tests store responses without freshness headers and expect them back: the
       config decides (tests/http/ and tests/shim/http_semantics*.py cover the RFC rules). */
    setenv("CURLCACHE_HERMETIC", "1", 1);
    return 0;
}

static int scratch_teardown(void** state) {
    (void)state;
    scratch_clear_curlcache_env();
    char command[PATH_MAX + 32];
    snprintf(command, sizeof command, "rm -rf '%s'", g_scratch);
    return system(command) == 0 ? 0 : -1;
}

/* "<scratch>/<name>" in a static buffer (one at a time). */
__attribute__((unused)) static const char* scratch_path(const char* name) {
    static char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", g_scratch, name);
    return path;
}

#endif
