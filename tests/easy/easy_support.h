/* Fixture of the engine tests: a scratch directory and clean CURLCACHE_* environment per
 * test, the counting origin (origin.py) per group, and a way to reopen the process-wide
 * cache after the environment changed. */
#ifndef CURLCACHE_TESTS_EASY_SUPPORT_H
#define CURLCACHE_TESTS_EASY_SUPPORT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts tests/easy/origin.py on a free loopback port; returns the port or -1. */
int origin_start(void);
/* Stops the origin started by origin_start (by its PID) and waits for it. */
void origin_stop(void);
/* Requests the origin has answered so far (asked with plain libcurl, never cached); -1 on
 * error. */
long origin_count(void);
int origin_port(void);
/* "http://127.0.0.1:PORT" + path, in a static buffer per call slot (0..3). */
const char* origin_url(int slot, const char* path_format, ...);

/* Makes a scratch directory, clears CURLCACHE_*, points XDG folders and HOME into it and
 * sets CURLCACHE_BACKEND (and CURLCACHE_NAME for sqlite). Returns 0 on success. */
int scratch_begin(const char* backend);
/* Closes the process-wide cache, removes the scratch directory and the variables. */
void scratch_end(void);
const char* scratch_dir(void);

/* Closes the engine's process-wide cache so the next transfer reopens it (after setenv). */
void engine_reopen_cache(void);

#ifdef __cplusplus
}
#endif

#endif
