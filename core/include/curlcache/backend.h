/*
 * curlcache/backend.h: the public, versioned C ABI of curlcache's storage backends.
 *
 * A backend plugin is a shared object that exports one function,
 *
 *     const curlcache_backend_plugin *curlcache_backend_plugin_entry(void);
 *
 * returning a static table: the ABI version it was built against, the table's own size,
 * the backend's name and version, and the operations below. curlcache loads a plugin with
 * dlopen(RTLD_NOW | RTLD_LOCAL) only when a config names it:
 *
 *     backend = "mine"                          # <libdir>/curlcache/backends/libcurlcache-backend-mine.so
 *     backend = "plugin:/opt/lib/libmine.so"    # any path
 *     backend = ["memory", "mine"]              # a tier, like the built-in backends
 *
 *     [mine]                                    # the plugin's settings: every key passed
 *     url = "mine://host/db"                    # through as a string, none rejected
 *
 * Versioning (as SQLite's extension API and GStreamer's plugin ABI): the table only ever
 * grows at its end. A host refuses a plugin whose major version is newer than its own,
 * and uses an older or smaller table (it checks `size` before reading a member that came
 * later: CURLCACHE_BACKEND_HAS). A plugin built against a newer minor version runs on an
 * older host, which ignores the members it does not know.
 *
 * Contract, the same as the built-in backends' (backends/storage.h):
 *  - the backend stores opaque bytes under a 32-hex-digit key with a little metadata; it
 *    never interprets the value (curlcache checks its own checksum on every read);
 *  - every operation on one store may be called from many threads at once;
 *  - a miss is not an error; an error says whether it was a failure or a timeout and
 *    carries a one-line message without credentials;
 *  - put replaces a value atomically: readers see the old value or the new one;
 *  - curlcache never lets a backend problem fail the program: it logs one warning and
 *    lets the transfer use the network. A plugin must not block for long (use timeouts),
 *    must not write to stdout, and must not call exit() or abort() on an error.
 *  - A plugin should link its client libraries statically with hidden symbols (its only
 *    exported symbol is the entry point), so that it cannot clash with another copy of the
 *    same library in the program it is loaded into. It must reach libcurl only through
 *    host->curl, never through its own curl_* references: inside a process that runs
 *    under the curlcache shim those would come back into the cache.
 *
 * See README.md, "Writing a backend", and examples/backend/ for a complete plugin.
 */
#ifndef CURLCACHE_BACKEND_H
#define CURLCACHE_BACKEND_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CURLCACHE_BACKEND_ABI_MAJOR 1
#define CURLCACHE_BACKEND_ABI_MINOR 1

/* The exported entry point's name, for dlsym. */
#define CURLCACHE_BACKEND_ENTRY "curlcache_backend_plugin_entry"

/* Marks the entry point as the plugin's one exported symbol (build with
 * -fvisibility=hidden). */
#define CURLCACHE_BACKEND_EXPORT __attribute__((visibility("default")))

/* What an operation returns. The numbers never change. */
typedef enum {
    CURLCACHE_BACKEND_OK = 0,
    CURLCACHE_BACKEND_FAILURE = 1, /* the store answered with an error, or I/O failed */
    CURLCACHE_BACKEND_TIMEOUT = 2  /* the store did not answer in time */
} curlcache_backend_status;

/* Filled in by a failing operation: one line, no "curlcache: " prefix, no credentials.
 * The host zeroes it before each call. */
#define CURLCACHE_BACKEND_MESSAGE_SIZE 256
typedef struct curlcache_backend_error {
    char message[CURLCACHE_BACKEND_MESSAGE_SIZE];
} curlcache_backend_error;

/* Log levels of host->log. */
typedef enum {
    CURLCACHE_BACKEND_LOG_ERROR = 0,
    CURLCACHE_BACKEND_LOG_WARNING = 1,
    CURLCACHE_BACKEND_LOG_INFO = 2,
    CURLCACHE_BACKEND_LOG_DEBUG = 3
} curlcache_backend_log_level;

/* The metadata stored beside each value. Strings are NUL-terminated and owned by the
 * caller for the duration of the call only. */
typedef struct curlcache_backend_metadata {
    const char *key;    /* 32 lower-case hex digits */
    const char *method; /* "GET" */
    const char *url;    /* redacted: never holds credentials */
    long status;        /* final HTTP status */
    int64_t created;    /* unix seconds */
    int64_t expires;    /* unix seconds; 0 = never expires */
    uint64_t size;      /* bytes of the value; filled in by the plugin in scan/get_metadata */
} curlcache_backend_metadata;

typedef struct curlcache_backend_usage {
    uint64_t entries;
    uint64_t bytes;     /* bytes of stored values (what max_size limits) */
    uint64_t max_bytes; /* 0 = unbounded */
} curlcache_backend_usage;

/* One byte range of a value being written. */
typedef struct curlcache_backend_bytes {
    const char *data;
    size_t size;
} curlcache_backend_bytes;

/* Where get() delivers a value: call write() any number of times with consecutive pieces
 * (a large value need never be held whole by the plugin). size_hint() may be called first
 * with the total size, so that the host allocates once. A non-zero return from write()
 * means the host gave up: stop and return CURLCACHE_BACKEND_FAILURE. */
typedef struct curlcache_backend_sink {
    void *context;
    void (*size_hint)(void *context, uint64_t total);
    int (*write)(void *context, const char *data, size_t size);
} curlcache_backend_sink;

/* Called for each entry by scan() (and once by get_metadata() on a hit). Return non-zero
 * to continue, zero to stop the scan. */
typedef int (*curlcache_backend_visit)(void *context, const curlcache_backend_metadata *meta);

/* The process's real libcurl (the build already loaded: libcurl.so.4, else
 * libcurl-gnutls.so.4; else libcurl.so.4 is loaded), resolved by the host in that library
 * itself: calls through these never pass through the curlcache shim. NULL when libcurl
 * cannot be loaded. */
typedef struct curlcache_backend_curl {
    size_t size; /* sizeof(curlcache_backend_curl) of the host */
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *handle);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *handle);
    void (*easy_reset)(CURL *handle);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
} curlcache_backend_curl;

/* One setting of the plugin's config table ([name] in the config file), as text: TOML
 * strings as they are, numbers and booleans written out ("5000", "true"). */
typedef struct curlcache_backend_setting {
    const char *key;
    const char *value;
} curlcache_backend_setting;

/* What the host hands open(). Valid until close() returns (copy what you keep longer
 * than that only if you must; the strings never change while the store is open). */
typedef struct curlcache_backend_host {
    uint32_t abi_major; /* the host's CURLCACHE_BACKEND_ABI_MAJOR */
    uint32_t abi_minor;
    size_t size;        /* sizeof(curlcache_backend_host) of the host */
    /* Writes one line through curlcache's log ("curlcache: <backend>: <message>"), if the
     * level is enabled (log_enabled says so without formatting anything). Thread-safe. */
    void (*log)(const struct curlcache_backend_host *host, curlcache_backend_log_level level,
                const char *message);
    int (*log_enabled)(curlcache_backend_log_level level);
    const curlcache_backend_curl *curl;
    /* The cache: its name ("" = the backend's default) and size limit (0 = unbounded). */
    const char *cache_name;
    uint64_t max_size;
    /* The plugin's config table, in file order. */
    const curlcache_backend_setting *settings;
    size_t setting_count;
} curlcache_backend_host;

/* The value of `key` in the plugin's config table, or NULL. */
static inline const char *curlcache_backend_setting_get(const curlcache_backend_host *host,
                                                        const char *key) {
    size_t i;
    for (i = 0; i < host->setting_count; ++i) {
        const char *a = host->settings[i].key, *b = key;
        while (*a != '\0' && *a == *b) {
            ++a;
            ++b;
        }
        if (*a == *b) {
            return host->settings[i].value;
        }
    }
    return NULL;
}

typedef struct curlcache_backend_store curlcache_backend_store;   /* the plugin's own */
typedef struct curlcache_backend_stream curlcache_backend_stream; /* the plugin's own */
typedef struct curlcache_backend_value curlcache_backend_value;   /* the plugin's own (1.1) */

typedef struct curlcache_backend_plugin {
    /* ABI 1.0. */
    uint32_t abi_major; /* CURLCACHE_BACKEND_ABI_MAJOR */
    uint32_t abi_minor; /* CURLCACHE_BACKEND_ABI_MINOR */
    size_t size;        /* sizeof(curlcache_backend_plugin) */
    const char *name;        /* "postgres": also names the config table */
    const char *version;     /* the plugin's own version, "1.2.0" */
    const char *description; /* one line for `curlcache --version` */

    /* Required. open() connects/creates what it needs (or fails with a message naming
     * what it could not reach); close() releases everything. */
    curlcache_backend_status (*open)(const curlcache_backend_host *host,
                                     curlcache_backend_store **store,
                                     curlcache_backend_error *error);
    void (*close)(curlcache_backend_store *store);
    /* Where the data lives, for messages (no credentials). Valid until close(). */
    const char *(*location)(curlcache_backend_store *store);

    /* Required. *found = 1 and the value written into the sink on a hit, *found = 0 on a
     * miss. May count the access for LRU eviction, cheaply. */
    curlcache_backend_status (*get)(curlcache_backend_store *store, const char *key,
                                    const curlcache_backend_sink *sink, int *found,
                                    curlcache_backend_error *error);
    /* Required. Stores or atomically replaces the value (the pieces one after another)
     * under meta->key; may evict least-recently-used entries to stay within max_size; a
     * value larger than max_size is not stored (and is no error). */
    curlcache_backend_status (*put)(curlcache_backend_store *store,
                                    const curlcache_backend_metadata *meta,
                                    const curlcache_backend_bytes *pieces, size_t count,
                                    curlcache_backend_error *error);
    /* Required. *existed = 1 when the key was there. */
    curlcache_backend_status (*remove)(curlcache_backend_store *store, const char *key,
                                       int *existed, curlcache_backend_error *error);
    /* Required. Every entry's metadata, size filled in, until visit returns 0. */
    curlcache_backend_status (*scan)(curlcache_backend_store *store,
                                     curlcache_backend_visit visit, void *context,
                                     curlcache_backend_error *error);
    /* Required. Removes every entry of this cache (only this cache). */
    curlcache_backend_status (*clear)(curlcache_backend_store *store,
                                      curlcache_backend_error *error);
    /* Required. */
    curlcache_backend_status (*usage)(curlcache_backend_store *store,
                                      curlcache_backend_usage *usage,
                                      curlcache_backend_error *error);

    /* Optional (NULL: the host scans and removes). Entries with expires in (0, now]. */
    curlcache_backend_status (*purge_expired)(curlcache_backend_store *store, int64_t now,
                                              uint64_t *removed, curlcache_backend_error *error);
    /* Optional. Writes what the process deferred; called at exit (close() may not be). */
    void (*flush)(curlcache_backend_store *store);
    /* Optional. Reclaims space after deletions. */
    curlcache_backend_status (*vacuum)(curlcache_backend_store *store,
                                       curlcache_backend_error *error);
    /* Optional (NULL: no shared lock, always granted). Cross-process lock for request
     * coalescing: *acquired = 1 when the caller now holds it; held at most ttl_ms. */
    curlcache_backend_status (*try_lock)(curlcache_backend_store *store, const char *key,
                                         int64_t ttl_ms, int *acquired,
                                         curlcache_backend_error *error);
    curlcache_backend_status (*unlock)(curlcache_backend_store *store, const char *key,
                                       curlcache_backend_error *error);
    /* Optional (NULL: unknown). Calls visit once with one entry's metadata (size filled in)
     * on a hit, without reading the value; not at all on a miss. */
    curlcache_backend_status (*get_metadata)(curlcache_backend_store *store, const char *key,
                                             curlcache_backend_visit visit, void *context,
                                             curlcache_backend_error *error);

    /* Optional, all four or none (NULL: the host collects the value and calls put()).
     * A value whose tail streams in: begin_put, append any number of times, then commit
     * with the metadata and the head (stored value = head + tail, atomically, as put).
     * close_stream always ends a stream, committed or not; an uncommitted one leaves
     * nothing behind. One thread uses a stream at a time. */
    curlcache_backend_status (*begin_put)(curlcache_backend_store *store, uint64_t size_hint,
                                          curlcache_backend_stream **stream,
                                          curlcache_backend_error *error);
    curlcache_backend_status (*append)(curlcache_backend_stream *stream, const char *data,
                                       size_t size, curlcache_backend_error *error);
    curlcache_backend_status (*commit)(curlcache_backend_stream *stream,
                                       const curlcache_backend_metadata *meta,
                                       const char *head, size_t head_size,
                                       curlcache_backend_error *error);
    void (*close_stream)(curlcache_backend_stream *stream);

    /* ABI 1.1. Optional, all three or none (NULL: the host reads a hit with get(), holding
     * the whole value in memory). A value read in pieces, so that a large hit is streamed
     * to the program with bounded memory. open_value finds `key`: *found = 0 on a miss;
     * on a hit *size is the value's size, and either the whole value is written into
     * `sink` (allowed, and best, when *size <= whole_limit: one round trip for a small
     * value; *value stays NULL) or *value is set to a reader. read_range fills `into` with
     * `size` bytes from `offset` (offset + size <= *size; the host asks for about 1 MiB at
     * a time). A reader sees the value it opened: if that value was replaced or removed
     * since, read_range returns bytes of the old value or fails - never bytes of the new
     * one. close_value always ends a reader. One thread uses a reader at a time; readers
     * of one store may be used from many threads at once. */
    curlcache_backend_status (*open_value)(curlcache_backend_store *store, const char *key,
                                           uint64_t whole_limit,
                                           const curlcache_backend_sink *sink, int *found,
                                           uint64_t *size, curlcache_backend_value **value,
                                           curlcache_backend_error *error);
    curlcache_backend_status (*read_range)(curlcache_backend_value *value, uint64_t offset,
                                           char *into, size_t size,
                                           curlcache_backend_error *error);
    void (*close_value)(curlcache_backend_value *value);

    /* Later minor versions add members here, and only here. */
} curlcache_backend_plugin;

/* True when `table` is long enough to hold `member` (a member a later minor added). */
#define CURLCACHE_BACKEND_HAS(table, member)                                                    \
    ((table)->size >= offsetof(curlcache_backend_plugin, member) +                              \
                          sizeof(((curlcache_backend_plugin *)0)->member) &&                    \
     (table)->member != NULL)

/* The entry point every plugin defines (and exports). */
typedef const curlcache_backend_plugin *(*curlcache_backend_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* CURLCACHE_BACKEND_H */
