/* Helpers shared by the shim's mechanics tests: a scratch directory, a clean environment,
 * running a program (optionally under the shim) with its stdout captured, and the counting
 * origin (origin_counter.py) on a free loopback port. */
#ifndef CURLCACHE_TESTS_SHIM_MECHANICS_HARNESS_H
#define CURLCACHE_TESTS_SHIM_MECHANICS_HARNESS_H

#include <stddef.h>

#define HARNESS_OUTPUT_MAX 65536

typedef struct {
    char dir[256];   /* scratch directory (mkdtemp), removed by harness_scratch_remove */
    char cache[320]; /* <dir>/cache.sqlite: the cache the programs under test use */
} harness_scratch;

typedef struct {
    int exit_code; /* exit status, or 128 + signal */
    size_t size;
    char out[HARNESS_OUTPUT_MAX]; /* stdout, NUL-terminated */
} harness_result;

/* Clears every CURLCACHE_* and LD_PRELOAD variable of this process, makes a scratch dir. */
int harness_scratch_make(harness_scratch* scratch);
void harness_scratch_remove(harness_scratch* scratch);

/* Runs argv[0] (a path) with the environment of this process plus `env` (NULL-terminated
 * "K=V" strings, may be NULL), the cache pointed at the scratch's, and LD_PRELOAD=<shim>
 * when `preload` is set. Fails (returns -1) only when the program cannot be run at all. */
int harness_run(const harness_scratch* scratch, int preload, const char* const argv[],
                const char* const env[], harness_result* result);

/* The origin: started on a free port, stopped by PID. */
int harness_origin_start(int* port, int* pid);
void harness_origin_stop(int pid);
/* How many requests the origin has answered (its /count), or -1. */
long harness_origin_count(int port);

#endif
