/* Plugins that are wrong in one way each, for the loader's tests (test_plugin_loader.cpp).
 * Compiled once per case with one of:
 *   ODD_NO_ENTRY      exports no entry point
 *   ODD_NEWER_MAJOR   a table of ABI major 2
 *   ODD_SHORT_TABLE   ABI 1.0's required operations only (size ends before purge_expired),
 *                     as a plugin of an older minor would be: the host must use defaults
 *   ODD_TINY_TABLE    a table too short to hold the required operations
 *   ODD_OPEN_FAILS    open() fails with the value of its setting "reason" (or of "missing")
 * Otherwise it is a one-entry store (enough for the short-table case). */
#include <curlcache/backend.h>

#include <stdio.h>
#include <string.h>

struct curlcache_backend_store {
    char key[33];
    char value[64];
    size_t size;
    int full;
};
static struct curlcache_backend_store g_store;

static curlcache_backend_status open_store(const curlcache_backend_host *host,
                                           curlcache_backend_store **store,
                                           curlcache_backend_error *error) {
#ifdef ODD_OPEN_FAILS
    const char *reason = curlcache_backend_setting_get(host, "reason");
    snprintf(error->message, sizeof error->message, "odd: %s; curl %s",
             reason ? reason : "missing",
             host->curl && host->curl->easy_init ? "handed over" : "missing");
    *store = NULL;
    (void)g_store;
    return CURLCACHE_BACKEND_TIMEOUT;
#else
    (void)host;
    (void)error;
    memset(&g_store, 0, sizeof g_store);
    *store = &g_store;
    return CURLCACHE_BACKEND_OK;
#endif
}

static void close_store(curlcache_backend_store *store) {
    (void)store;
}

static curlcache_backend_status get(curlcache_backend_store *s, const char *key,
                                    const curlcache_backend_sink *sink, int *found,
                                    curlcache_backend_error *error) {
    (void)error;
    *found = s->full && strcmp(s->key, key) == 0;
    if (*found) {
        sink->write(sink->context, s->value, s->size);
    }
    return CURLCACHE_BACKEND_OK;
}

static curlcache_backend_status put(curlcache_backend_store *s,
                                    const curlcache_backend_metadata *meta,
                                    const curlcache_backend_bytes *pieces, size_t count,
                                    curlcache_backend_error *error) {
    size_t i, size = 0;
    for (i = 0; i < count; ++i) {
        if (size + pieces[i].size > sizeof s->value) {
            snprintf(error->message, sizeof error->message, "odd: value too large");
            return CURLCACHE_BACKEND_FAILURE;
        }
        memcpy(s->value + size, pieces[i].data, pieces[i].size);
        size += pieces[i].size;
    }
    snprintf(s->key, sizeof s->key, "%s", meta->key);
    s->size = size;
    s->full = 1;
    return CURLCACHE_BACKEND_OK;
}

static curlcache_backend_status remove_entry(curlcache_backend_store *s, const char *key,
                                             int *existed, curlcache_backend_error *error) {
    (void)error;
    *existed = s->full && strcmp(s->key, key) == 0;
    if (*existed) {
        s->full = 0;
    }
    return CURLCACHE_BACKEND_OK;
}

static curlcache_backend_status scan(curlcache_backend_store *s, curlcache_backend_visit visit,
                                     void *context, curlcache_backend_error *error) {
    (void)error;
    if (s->full) {
        curlcache_backend_metadata meta = {s->key, "GET", "http://odd/", 200, 1, 0, s->size};
        visit(context, &meta);
    }
    return CURLCACHE_BACKEND_OK;
}

static curlcache_backend_status clear(curlcache_backend_store *s, curlcache_backend_error *error) {
    (void)error;
    s->full = 0;
    return CURLCACHE_BACKEND_OK;
}

static curlcache_backend_status usage(curlcache_backend_store *s, curlcache_backend_usage *usage,
                                      curlcache_backend_error *error) {
    (void)error;
    usage->entries = (uint64_t)s->full;
    usage->bytes = s->full ? s->size : 0;
    usage->max_bytes = 0;
    return CURLCACHE_BACKEND_OK;
}

static curlcache_backend_plugin g_plugin = {
#ifdef ODD_NEWER_MAJOR
    2, 0,
#else
    CURLCACHE_BACKEND_ABI_MAJOR, CURLCACHE_BACKEND_ABI_MINOR,
#endif
#if defined(ODD_SHORT_TABLE)
    offsetof(curlcache_backend_plugin, purge_expired),
#elif defined(ODD_TINY_TABLE)
    offsetof(curlcache_backend_plugin, get),
#else
    sizeof(curlcache_backend_plugin),
#endif
    "odd", "0.0.1", "a test plugin", open_store, close_store, NULL, get, put, remove_entry,
    scan, clear, usage,
    /* Past a short table's end: what an older plugin's table would not have. The host must
     * not call them (they would crash the test). */
    (void *)1, (void *)1, (void *)1, (void *)1, (void *)1, (void *)1, (void *)1, (void *)1,
    (void *)1, (void *)1, (void *)1, (void *)1, (void *)1};

#ifndef ODD_NO_ENTRY
CURLCACHE_BACKEND_EXPORT const curlcache_backend_plugin *curlcache_backend_plugin_entry(void) {
    return &g_plugin;
}
#else
CURLCACHE_BACKEND_EXPORT const curlcache_backend_plugin *something_else(void) {
    return &g_plugin;
}
#endif
