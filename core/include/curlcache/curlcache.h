/*
 * curlcache: an HTTP response cache for programs that use libcurl.
 *
 * The public C API of libcurlcache. Conventions, as in libcurl and hiredis:
 *  - handles are opaque; every function is named curlcache_<object>_<verb>;
 *  - functions that can fail return a curlcache_code (numbers never change);
 *    curlcache_strerror() describes every code and a cache handle keeps its last detailed
 *    message, readable with curlcache_errmsg();
 *  - strings are NUL-terminated UTF-8; the library copies every string it is given;
 *  - a curlcache handle may be used from several threads at once unless a function says
 *    otherwise; a curlcache_entry or curlcache_request belongs to one thread at a time.
 */
#ifndef CURLCACHE_CURLCACHE_H
#define CURLCACHE_CURLCACHE_H

#include <stddef.h>
#include <stdint.h>

#if defined(CURLCACHE_BUILDING)
#define CURLCACHE_EXPORT __attribute__((visibility("default")))
#else
#define CURLCACHE_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CURLCACHE_VERSION_MAJOR 0
#define CURLCACHE_VERSION_MINOR 1
#define CURLCACHE_VERSION_PATCH 0

/* Result codes. The numbers are part of the ABI and never change. */
typedef enum {
    CURLCACHE_OK = 0,
    CURLCACHE_E_MISS = 1,             /* no (fresh) entry for this request: not a failure */
    CURLCACHE_E_INVALID_ARGUMENT = 2, /* NULL handle, malformed key or glob, bad option */
    CURLCACHE_E_OUT_OF_MEMORY = 3,
    CURLCACHE_E_CONFIG = 4,           /* malformed config file or variable; see errmsg */
    CURLCACHE_E_BACKEND = 5,          /* the storage backend failed */
    CURLCACHE_E_TIMEOUT = 6,          /* the storage backend did not answer in time */
    CURLCACHE_E_CORRUPT = 7,          /* a stored entry failed its checksum (it was removed) */
    CURLCACHE_E_NOT_CACHEABLE = 8,    /* policy refuses to store this response */
    CURLCACHE_E_TOO_LARGE = 9,        /* the body exceeds max_entry_size */
    CURLCACHE_E_OFFLINE = 10,         /* offline mode and no entry: the network is not used */
    CURLCACHE_E_UNSUPPORTED = 11,     /* the backend or build does not offer this */
    CURLCACHE_E_IO = 12,              /* reading or writing a local file failed */
    CURLCACHE_E_INTERNAL = 13,        /* a bug: please report it */
    CURLCACHE_E_LAST                  /* not a code: one more than the highest */
} curlcache_code;

/* A human-readable sentence for every code, never NULL; "unknown curlcache_code" for values
 * outside the enum. Thread-safe. */
CURLCACHE_EXPORT const char *curlcache_strerror(curlcache_code code);

/* "0.1.0". Thread-safe; the string is static. */
CURLCACHE_EXPORT const char *curlcache_version(void);

/* Space-separated names of the backends compiled into this build ("sqlite filesystem
 * memory redis"). The string is static. */
CURLCACHE_EXPORT const char *curlcache_backends(void);

/* The backend plugins (curlcache/backend.h) installed in the plugin folder
 * ($CURLCACHE_PLUGIN_DIR, else <libdir>/curlcache/backends), one line each ending in
 * '\n': "NAME VERSION PATH" for a plugin that loads, "PATH: REASON" for one that cannot be
 * used; "" when there is none. Each plugin found is loaded (never unloaded) to read its
 * table. Built on the first call; the string is static. */
CURLCACHE_EXPORT const char *curlcache_plugins(void);

/* ------------------------------------------------------------------------------------ */
/* Opening a cache                                                                      */

/* The cache handle. Programs call it `curlcache`. C++ code that also has a namespace
 * named curlcache (this project's own sources: the library, the command) cannot declare a
 * type of that name in the global scope, so there the short name is left out and the same
 * type is written `curlcache_handle`: define CURLCACHE_NO_SHORT_HANDLE_NAME before
 * including this header (the library's own build does so implicitly). Both names denote
 * one type, so the ABI and every program's source are unaffected. */
typedef struct curlcache_handle curlcache_handle;
#if !(defined(__cplusplus) &&                                                               \
      (defined(CURLCACHE_BUILDING) || defined(CURLCACHE_NO_SHORT_HANDLE_NAME)))
typedef struct curlcache_handle curlcache;
#endif

/* Opens a cache. Settings come, lowest precedence first, from the built-in defaults, the
 * config file (CURLCACHE_CONFIG, then $XDG_CONFIG_HOME/curlcache/config.toml, then
 * /etc/curlcache.toml; never the current directory), the CURLCACHE_* environment, and last
 * `settings`: a NULL-terminated array of "key=value" strings using the TOML key names
 * ("backend=memory", "name=/tmp/c.sqlite", "sqlite.fast_save=true"), or NULL. The special
 * key "config" names the file to read instead of searching.
 *
 * On success *cache is a new handle to release with curlcache_close(). On failure *cache
 * is still set when it could be allocated, so that curlcache_errmsg() tells what went
 * wrong (file:line and key for a config error); close it all the same.
 * Returns CURLCACHE_OK, CURLCACHE_E_CONFIG, CURLCACHE_E_BACKEND, CURLCACHE_E_TIMEOUT,
 * CURLCACHE_E_INVALID_ARGUMENT (cache == NULL) or CURLCACHE_E_OUT_OF_MEMORY. */
CURLCACHE_EXPORT curlcache_code curlcache_open(curlcache_handle **cache, const char *const *settings);

/* Releases the handle and everything it owns; flushes statistics. NULL is ignored. Not to
 * be called while another thread uses the handle. */
CURLCACHE_EXPORT void curlcache_close(curlcache_handle *cache);

/* The last detailed message for this handle (empty when the last call succeeded). The
 * string belongs to the handle and is valid until its next call from the same thread.
 * Messages are kept per thread: a call on another thread neither replaces nor clears it. */
CURLCACHE_EXPORT const char *curlcache_errmsg(const curlcache_handle *cache);

/* ------------------------------------------------------------------------------------ */
/* Requests and entries                                                                 */

typedef struct curlcache_request curlcache_request;

/* A request description: method ("GET") and URL. Returns NULL when out of memory or an
 * argument is NULL. Free with curlcache_request_free(). */
CURLCACHE_EXPORT curlcache_request *curlcache_request_new(const char *method, const char *url);
CURLCACHE_EXPORT void curlcache_request_free(curlcache_request *request);

/* A request header line as sent, "Accept: text/html". Only headers named in the
 * match_headers setting take part in the key. */
CURLCACHE_EXPORT curlcache_code curlcache_request_add_header(curlcache_request *request,
                                                             const char *line);

/* The request body (copied). */
CURLCACHE_EXPORT curlcache_code curlcache_request_set_body(curlcache_request *request,
                                                           const void *data, size_t size);

/* A transfer option that changes what the program receives, so that it becomes part of
 * the key: "follow_location" ("1"), "accept_encoding" ("gzip"), "range" ("0-99"),
 * "nobody" ("1"), "http_version", "credentials" (digested with a salt, never stored).
 * Unknown names are still part of the key. */
CURLCACHE_EXPORT curlcache_code curlcache_request_set_option(curlcache_request *request,
                                                             const char *name,
                                                             const char *value);

/* The key of a request: 32 lower-case hex digits and a NUL written to key_hex. */
CURLCACHE_EXPORT curlcache_code curlcache_request_key(curlcache_handle *cache,
                                                      const curlcache_request *request,
                                                      char key_hex[33]);

typedef struct curlcache_entry curlcache_entry;

/* Looks the request up. CURLCACHE_OK and a new *entry on a fresh hit; CURLCACHE_E_MISS
 * when there is no entry or it is stale; a backend error otherwise (a corrupt entry is
 * removed and reported as CURLCACHE_E_MISS). Counts a hit or a miss in the statistics.
 * A request the policy excludes (method, do-not-cache rule, mode off) is CURLCACHE_E_MISS
 * and counted as passthrough. In offline mode stale entries are served, and a miss or an
 * excluded request is CURLCACHE_E_OFFLINE; in refresh mode every lookup is a miss. */
CURLCACHE_EXPORT curlcache_code curlcache_lookup(curlcache_handle *cache,
                                                 const curlcache_request *request,
                                                 curlcache_entry **entry);

/* Reads an entry by key (32 hex digits) or by URL (GET), fresh or not, without counting
 * statistics. CURLCACHE_E_MISS when there is none. */
CURLCACHE_EXPORT curlcache_code curlcache_entry_get(curlcache_handle *cache, const char *key_or_url,
                                                    curlcache_entry **entry);

CURLCACHE_EXPORT void curlcache_entry_free(curlcache_entry *entry);

/* Entry accessors. Returned pointers belong to the entry and live as long as it. */
CURLCACHE_EXPORT const char *curlcache_entry_key(const curlcache_entry *entry);
CURLCACHE_EXPORT const char *curlcache_entry_method(const curlcache_entry *entry);
CURLCACHE_EXPORT const char *curlcache_entry_url(const curlcache_entry *entry);
CURLCACHE_EXPORT const char *curlcache_entry_effective_url(const curlcache_entry *entry);
CURLCACHE_EXPORT const char *curlcache_entry_content_type(const curlcache_entry *entry); /* or NULL */
CURLCACHE_EXPORT long curlcache_entry_status(const curlcache_entry *entry);
CURLCACHE_EXPORT int64_t curlcache_entry_created(const curlcache_entry *entry);  /* unix s */
CURLCACHE_EXPORT int64_t curlcache_entry_expires(const curlcache_entry *entry);  /* 0=never */
/* One line that says whether the entry is fresh now, for how long, and why ("fresh for 59m
 * more: max-age 1h, age 48s"; "stale for 3m: revalidated on next use (ETag)"). */
CURLCACHE_EXPORT const char *curlcache_entry_freshness(const curlcache_entry *entry);
/* What entered the entry's key besides its URL, as (name, value) pairs, so that two
 * entries for one URL can be told apart (`curlcache show`, `list --why`): "method"; a
 * matched request header ("header accept-language"); a transfer option that changes what
 * the program receives ("option accept_encoding", "option follow_location", ...); "body"
 * (its size and a digest); "credentials" ("yes": never the credentials); and for a variant
 * of a response with Vary, each nominated request header ("vary accept-language", its
 * value or "(absent)"). An entry stored before these were recorded has "method" and
 * "recorded" = "no". Pointers belong to the entry. curlcache_entry_key_part() returns
 * CURLCACHE_E_INVALID_ARGUMENT for an index out of range or a NULL argument. */
CURLCACHE_EXPORT size_t curlcache_entry_key_part_count(const curlcache_entry *entry);
CURLCACHE_EXPORT curlcache_code curlcache_entry_key_part(const curlcache_entry *entry,
                                                         size_t index, const char **name,
                                                         const char **value);
/* Number of responses recorded (more than one when redirects were followed). */
CURLCACHE_EXPORT size_t curlcache_entry_response_count(const curlcache_entry *entry);
/* The raw header block of response `index` (status line, header lines, blank line). */
CURLCACHE_EXPORT curlcache_code curlcache_entry_headers(const curlcache_entry *entry,
                                                        size_t index, const char **data,
                                                        size_t *size);
/* The body as the program received it. */
CURLCACHE_EXPORT curlcache_code curlcache_entry_body(const curlcache_entry *entry,
                                                     const void **data, size_t *size);

/* Stores a response for the request: the raw header block(s) as received, every
 * response's block one after another (status line ... blank line), and the body.
 * CURLCACHE_E_NOT_CACHEABLE or CURLCACHE_E_TOO_LARGE when policy refuses it. */
CURLCACHE_EXPORT curlcache_code curlcache_store(curlcache_handle *cache,
                                                const curlcache_request *request,
                                                const char *headers, size_t headers_size,
                                                const void *body, size_t body_size);

/* ------------------------------------------------------------------------------------ */
/* Managing a cache                                                                     */

/* What curlcache_scan() reports for each entry. Pointers are valid during the call. */
typedef struct {
    const char *key;
    const char *method;
    const char *url;
    long status;
    int64_t created; /* unix seconds */
    int64_t expires; /* unix seconds, 0 = never */
    uint64_t size;   /* stored bytes */
} curlcache_meta;

/* Return 0 to go on, non-zero to stop. */
typedef int (*curlcache_scan_callback)(const curlcache_meta *meta, void *userp);

CURLCACHE_EXPORT curlcache_code curlcache_scan(curlcache_handle *cache, curlcache_scan_callback cb,
                                               void *userp);

/* Deletes by key (32 hex digits), by exact URL, or by URL glob ('*' and '?'); *removed
 * (may be NULL) gets how many entries went. An exact URL is normalised as keys are (case
 * of scheme and host, default port, credentials) and removes the entries stored for it
 * with any method or option. A glob is matched, case-sensitively, against the stored URLs
 * as curlcache_scan() reports them ("http://example.com/api*"); '*' also matches '/'. */
CURLCACHE_EXPORT curlcache_code curlcache_delete(curlcache_handle *cache, const char *key_url_or_glob,
                                                 uint64_t *removed);
CURLCACHE_EXPORT curlcache_code curlcache_clear(curlcache_handle *cache);
/* Removes expired entries. */
CURLCACHE_EXPORT curlcache_code curlcache_purge(curlcache_handle *cache, uint64_t *removed);
CURLCACHE_EXPORT curlcache_code curlcache_vacuum(curlcache_handle *cache);
CURLCACHE_EXPORT curlcache_code curlcache_count(curlcache_handle *cache, uint64_t *entries,
                                                uint64_t *bytes);

/* Called after each copied entry; return non-zero to stop. total may be 0 if unknown.
 * curlcache_copy() stores entries in batches and calls it for each entry of a batch once
 * the batch is stored: after a stop, *copied counts the whole batch. */
typedef int (*curlcache_progress_callback)(uint64_t done, uint64_t total, void *userp);

/* Copies every entry of `from` into `to` (overwriting same keys). *copied may be NULL. */
CURLCACHE_EXPORT curlcache_code curlcache_copy(curlcache_handle *from, curlcache_handle *to,
                                               curlcache_progress_callback progress,
                                               void *userp, uint64_t *copied);

/* Statistics, persisted across processes next to the cache. */
typedef struct {
    uint64_t hits;
    uint64_t misses;
    uint64_t stores;
    uint64_t errors;             /* backend failures and timeouts */
    uint64_t errors_timeout;     /* of which timeouts */
    uint64_t corrupt;            /* corrupt entries found (and removed) */
    uint64_t passthrough;        /* transfers the cache did not touch */
    uint64_t bytes_served;       /* body bytes answered from the cache */
    uint64_t bytes_downloaded;   /* body bytes fetched from the network on misses */
} curlcache_stats;

CURLCACHE_EXPORT curlcache_code curlcache_stats_get(curlcache_handle *cache, curlcache_stats *stats);
CURLCACHE_EXPORT curlcache_code curlcache_stats_zero(curlcache_handle *cache);

/* ------------------------------------------------------------------------------------ */
/* Configuration and storage facts, for the curlcache command                           */

/* One setting as the configuration resolved it (`curlcache config`). Pointers are valid
 * during the callback only. */
typedef struct {
    const char *key;    /* TOML key, "sqlite.fast_save" */
    const char *env;    /* its variable, "CURLCACHE_SQLITE_FAST_SAVE", or "" when none */
    const char *value;  /* the effective value, rendered as it would be written in TOML */
    const char *origin; /* "default", "file", "environment" or "argument" */
    const char *where;  /* "path/config.toml:12", "CURLCACHE_MODE", or "" for a default */
    const char *help;   /* one line */
} curlcache_setting;

/* Return 0 to go on, non-zero to stop. */
typedef int (*curlcache_setting_callback)(const curlcache_setting *setting, void *userp);
/* Receives one line (no "curlcache: " prefix, no newline), e.g. a warning. */
typedef void (*curlcache_message_callback)(const char *message, void *userp);

/* Resolves the settings exactly as curlcache_open() would with the same `settings`
 * argument, without opening any storage, and calls `cb` once per known setting in table
 * order. Warnings (unknown keys, ...) go to `warn` when not NULL. On CURLCACHE_E_CONFIG
 * the one-line message ("path:line: ...") is copied into `error` (at most error_size
 * bytes, NUL-terminated) when `error` is not NULL. Thread-safe.
 * Returns CURLCACHE_OK, CURLCACHE_E_CONFIG, CURLCACHE_E_INVALID_ARGUMENT (cb == NULL) or
 * CURLCACHE_E_OUT_OF_MEMORY. */
CURLCACHE_EXPORT curlcache_code curlcache_config_describe(const char *const *settings,
                                                          curlcache_setting_callback cb,
                                                          void *userp,
                                                          curlcache_message_callback warn,
                                                          char *error, size_t error_size);

/* Parses one config file on top of the built-in defaults only, ignoring the environment
 * (`curlcache config --check FILE`). Warnings go to `warn` when not NULL.
 * Returns CURLCACHE_OK; CURLCACHE_E_CONFIG with "path:line: ..." in `error`;
 * CURLCACHE_E_IO when the file cannot be read; CURLCACHE_E_INVALID_ARGUMENT (path NULL). */
CURLCACHE_EXPORT curlcache_code curlcache_config_check(const char *path,
                                                       curlcache_message_callback warn,
                                                       void *userp, char *error,
                                                       size_t error_size);

/* One storage tier of an open cache (a plain cache has one; a tiered cache lists its
 * tiers first tier first). Strings belong to the handle and stay valid until it closes. */
typedef struct {
    const char *backend;  /* "sqlite" */
    const char *location; /* where its data lives: a path, "redis://host:port/0 ns", ... */
    uint64_t entries;
    uint64_t bytes;       /* bytes of stored values, what max_size limits */
    uint64_t max_bytes;   /* 0 = unbounded */
} curlcache_tier;

/* How many tiers the cache has (at least 1 for an open cache; 0 for NULL). */
CURLCACHE_EXPORT size_t curlcache_tier_count(curlcache_handle *cache);

/* Fills *tier for tier `index`, asking the backend for its usage. Returns CURLCACHE_OK,
 * CURLCACHE_E_INVALID_ARGUMENT (index out of range, NULL), or a backend error. */
CURLCACHE_EXPORT curlcache_code curlcache_tier_get(curlcache_handle *cache, size_t index,
                                                   curlcache_tier *tier);

/* 1 when `text` matches `pattern` as curlcache_delete() matches URL globs ('*' any run of
 * characters, '?' one, nothing else special), 0 otherwise (and for NULL). Lets a program
 * select entries exactly as a delete would (`curlcache list --url GLOB`). Thread-safe. */
CURLCACHE_EXPORT int curlcache_glob_match(const char *pattern, const char *text);

/* Whether the cache exists: CURLCACHE_OK, or CURLCACHE_E_MISS with "no cache at PATH" as
 * the handle's message when no tier holds stored data yet (a SQLite database or a
 * filesystem cache folder that does not exist). A memory tier never counts (it is this
 * process's own); a Redis namespace or a plugin's store always does (an empty one is not
 * missing). The inspecting commands (stats, list, show, export) open a cache with
 * mode=readonly, which creates nothing, and then ask this. */
CURLCACHE_EXPORT curlcache_code curlcache_exists(curlcache_handle *cache);

/* `curlcache run --stats`: the counters of one run, whatever else uses the cache. */
typedef struct {
    uint64_t hits;
    uint64_t misses;
    uint64_t stores;
    uint64_t passthrough;
    uint64_t errors;
    uint64_t bytes_served;
    uint64_t bytes_downloaded;
    uint64_t time_saved_ms; /* the recorded transfer times of the hits' responses */
} curlcache_run_stats;

/* Creates an empty run statistics file, private to the user, and writes its path (NUL-
 * terminated) into `path` (`size` bytes). Put it in front of CURLCACHE_RUN_STATS (paths
 * separated by ':') in the environment of the programs of the run: each of their processes
 * then adds its counters to it at exit, as to the cache's own statistics, for every
 * backend. CURLCACHE_E_IO when it cannot be created, CURLCACHE_E_INVALID_ARGUMENT when
 * `path` is NULL or too small. */
CURLCACHE_EXPORT curlcache_code curlcache_run_stats_begin(char *path, size_t size);
/* Reads a run statistics file into *stats and removes it. CURLCACHE_E_IO on failure. */
CURLCACHE_EXPORT curlcache_code curlcache_run_stats_end(const char *path,
                                                        curlcache_run_stats *stats);

/* Like curlcache_store() (same policy checks, same result codes), but stores the response
 * under `key_hex` (32 lower-case hex digits, as curlcache_entry_key() gives) instead of the
 * key computed from the request. For restoring an exported entry (`curlcache import --har`):
 * an export keeps the entry's method, URL and key, not every transfer option that went
 * into the key (the HTTP version a program asked for, redirects followed, ...), so only the
 * recorded key makes the restored entry answer the same program again. Counts a store, not
 * a download. CURLCACHE_E_INVALID_ARGUMENT when key_hex is not a key. */
CURLCACHE_EXPORT curlcache_code curlcache_store_with_key(curlcache_handle *cache,
                                                         const char *key_hex,
                                                         const curlcache_request *request,
                                                         const char *headers,
                                                         size_t headers_size, const void *body,
                                                         size_t body_size);

/* ------------------------------------------------------------------------------------ */
/* libcurl convenience: cached transfers for a program that links libcurlcache.         */
/*
 * Include <curlcache/curl.h> after <curl/curl.h> and link -lcurlcache: curl_easy_setopt,
 * curl_easy_perform, curl_easy_getinfo, curl_easy_cleanup, curl_easy_reset and
 * curl_easy_duphandle then go through the functions below, which answer repeated requests
 * from the process-wide cache (opened lazily from the standard configuration). The same
 * engine serves the preload shim.
 */

#ifdef __cplusplus
}
#endif

#endif /* CURLCACHE_CURLCACHE_H */
