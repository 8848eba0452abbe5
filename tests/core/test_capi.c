/* The public C API (curlcache/curlcache.h), used exactly as a C program would. */
#include <curlcache/curlcache.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/core/scratch.h"

static const char k_headers[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\n\r\n";

/* Opens a cache on <scratch>/<file> with the given extra settings (NULL-terminated). */
static curlcache* open_cache(const char* backend, const char* file, const char* extra1,
                             const char* extra2) {
    char backend_arg[64], name_arg[PATH_MAX + 300];
    snprintf(backend_arg, sizeof backend_arg, "backend=%s", backend);
    snprintf(name_arg, sizeof name_arg, "name=%s", scratch_path(file));
    const char* args[] = {backend_arg, name_arg, extra1, extra2, NULL};
    curlcache* cache = NULL;
    curlcache_code code = curlcache_open(&cache, args);
    if (code != CURLCACHE_OK) {
        print_error("curlcache_open: %s: %s\n", curlcache_strerror(code), curlcache_errmsg(cache));
    }
    assert_int_equal(code, CURLCACHE_OK);
    return cache;
}

static curlcache_code store(curlcache* cache, const char* method, const char* url,
                            const char* headers, const char* body) {
    curlcache_request* request = curlcache_request_new(method, url);
    assert_non_null(request);
    curlcache_code code =
        curlcache_store(cache, request, headers, strlen(headers), body, strlen(body));
    curlcache_request_free(request);
    return code;
}

static curlcache_code lookup(curlcache* cache, const char* url, curlcache_entry** entry) {
    curlcache_request* request = curlcache_request_new("GET", url);
    assert_non_null(request);
    curlcache_code code = curlcache_lookup(cache, request, entry);
    curlcache_request_free(request);
    return code;
}

static void key_of(curlcache* cache, const char* url, char key[33]) {
    curlcache_request* request = curlcache_request_new("GET", url);
    assert_int_equal(curlcache_request_key(cache, request, key), CURLCACHE_OK);
    curlcache_request_free(request);
}

static uint64_t entry_count(curlcache* cache) {
    uint64_t entries = 99, bytes = 0;
    assert_int_equal(curlcache_count(cache, &entries, &bytes), CURLCACHE_OK);
    return entries;
}

static void test_strerror_walks_every_code_distinct_and_non_empty(void** state) {
    (void)state;
    const char* unknown = curlcache_strerror((curlcache_code)-1);
    assert_string_equal(unknown, "unknown curlcache_code");
    assert_string_equal(curlcache_strerror(CURLCACHE_E_LAST), unknown);
    assert_string_equal(curlcache_strerror((curlcache_code)(CURLCACHE_E_LAST + 7)), unknown);
    for (int code = 0; code < CURLCACHE_E_LAST; ++code) {
        const char* message = curlcache_strerror((curlcache_code)code);
        assert_non_null(message);
        assert_true(message[0] != '\0');
        assert_string_not_equal(message, unknown);
        for (int other = 0; other < code; ++other) {
            assert_string_not_equal(message, curlcache_strerror((curlcache_code)other));
        }
    }
}

static void test_version_and_backends_are_reported(void** state) {
    (void)state;
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", CURLCACHE_VERSION_MAJOR,
             CURLCACHE_VERSION_MINOR, CURLCACHE_VERSION_PATCH);
    assert_string_equal(curlcache_version(), expected);
    assert_non_null(strstr(curlcache_backends(), "sqlite"));
    assert_non_null(strstr(curlcache_backends(), "memory"));
}

static void test_open_with_arguments_uses_backend_and_name(void** state) {
    (void)state;
    curlcache* cache = open_cache("sqlite", "named.sqlite", NULL, NULL);
    struct stat st;
    assert_int_equal(stat(scratch_path("named.sqlite"), &st), 0);
    assert_int_equal(curlcache_tier_count(cache), 1);
    curlcache_tier tier;
    assert_int_equal(curlcache_tier_get(cache, 0, &tier), CURLCACHE_OK);
    assert_string_equal(tier.backend, "sqlite");
    assert_int_equal(tier.entries, 0);
    assert_int_equal(curlcache_tier_get(cache, 1, &tier), CURLCACHE_E_INVALID_ARGUMENT);
    assert_string_equal(curlcache_errmsg(cache), "no such tier");
    curlcache_close(cache);
}

static void test_open_reports_config_error_with_message(void** state) {
    (void)state;
    const char* args[] = {"backend=memory", "mode=fast", NULL};
    curlcache* cache = NULL;
    assert_int_equal(curlcache_open(&cache, args), CURLCACHE_E_CONFIG);
    assert_non_null(cache);
    assert_true(strlen(curlcache_errmsg(cache)) > 0);
    /* Every call on a handle whose open failed is refused, not a crash. */
    uint64_t entries = 0;
    assert_int_equal(curlcache_count(cache, &entries, NULL), CURLCACHE_E_INVALID_ARGUMENT);
    curlcache_close(cache);
}

static void test_open_reads_config_file_then_environment_then_arguments(void** state) {
    (void)state;
    FILE* file = fopen(scratch_path("config.toml"), "w");
    assert_non_null(file);
    fputs("backend = \"memory\"\nexpire_after = \"1h\"\nmode = \"readonly\"\n", file);
    fclose(file);
    char config_arg[PATH_MAX + 300];
    snprintf(config_arg, sizeof config_arg, "config=%s", scratch_path("config.toml"));

    /* The file alone: readonly, so nothing is stored. */
    const char* file_only[] = {config_arg, NULL};
    curlcache* cache = NULL;
    assert_int_equal(curlcache_open(&cache, file_only), CURLCACHE_OK);
    assert_int_equal(store(cache, "GET", "http://h/c", k_headers, "x"), CURLCACHE_E_NOT_CACHEABLE);
    curlcache_close(cache);

    /* The environment overrides the file... */
    setenv("CURLCACHE_MODE", "normal", 1);
    cache = NULL;
    assert_int_equal(curlcache_open(&cache, file_only), CURLCACHE_OK);
    assert_int_equal(store(cache, "GET", "http://h/c", k_headers, "x"), CURLCACHE_OK);
    curlcache_entry* entry = NULL;
    assert_int_equal(curlcache_entry_get(cache, "http://h/c", &entry), CURLCACHE_OK);
    assert_int_equal(curlcache_entry_expires(entry) - curlcache_entry_created(entry), 3600);
    curlcache_entry_free(entry);
    curlcache_close(cache);

    /* ...and the arguments override both. */
    const char* with_argument[] = {config_arg, "mode=readonly", NULL};
    cache = NULL;
    assert_int_equal(curlcache_open(&cache, with_argument), CURLCACHE_OK);
    assert_int_equal(store(cache, "GET", "http://h/c", k_headers, "x"), CURLCACHE_E_NOT_CACHEABLE);
    curlcache_close(cache);
}

static void test_null_arguments_are_rejected(void** state) {
    (void)state;
    assert_int_equal(curlcache_open(NULL, NULL), CURLCACHE_E_INVALID_ARGUMENT);
    assert_null(curlcache_request_new(NULL, "http://h/"));
    assert_null(curlcache_request_new("GET", NULL));
    curlcache_entry* entry = NULL;
    assert_int_equal(curlcache_lookup(NULL, NULL, &entry), CURLCACHE_E_INVALID_ARGUMENT);
    assert_int_equal(curlcache_delete(NULL, "x", NULL), CURLCACHE_E_INVALID_ARGUMENT);
    assert_int_equal(curlcache_clear(NULL), CURLCACHE_E_INVALID_ARGUMENT);
    assert_int_equal(curlcache_stats_get(NULL, NULL), CURLCACHE_E_INVALID_ARGUMENT);
    assert_int_equal(curlcache_request_add_header(NULL, "A: b"), CURLCACHE_E_INVALID_ARGUMENT);
    assert_int_equal(curlcache_entry_body(NULL, NULL, NULL), CURLCACHE_E_INVALID_ARGUMENT);
    assert_null(curlcache_entry_url(NULL));
    assert_string_equal(curlcache_errmsg(NULL), "");
    curlcache_close(NULL);
    curlcache_entry_free(NULL);
    curlcache_request_free(NULL);
}

static void test_store_then_lookup_is_a_hit_with_every_field(void** state) {
    (void)state;
    curlcache* cache = open_cache("sqlite", "c.sqlite", NULL, NULL);
    curlcache_entry* entry = NULL;
    assert_int_equal(lookup(cache, "http://example.test/a", &entry), CURLCACHE_E_MISS);
    assert_null(entry);
    assert_int_equal(store(cache, "GET", "http://example.test/a", k_headers, "hello"),
                     CURLCACHE_OK);
    assert_int_equal(lookup(cache, "HTTP://EXAMPLE.test:80/a#frag", &entry), CURLCACHE_OK);
    assert_non_null(entry);
    assert_int_equal(curlcache_entry_status(entry), 200);
    assert_string_equal(curlcache_entry_method(entry), "GET");
    assert_string_equal(curlcache_entry_url(entry), "http://example.test/a");
    assert_string_equal(curlcache_entry_effective_url(entry), "http://example.test/a");
    assert_string_equal(curlcache_entry_content_type(entry), "text/plain");
    assert_int_equal(strlen(curlcache_entry_key(entry)), 32);
    assert_int_equal(curlcache_entry_expires(entry), 0);
    assert_true(curlcache_entry_created(entry) > 0);
    assert_int_equal(curlcache_entry_response_count(entry), 1);
    const char* headers = NULL;
    size_t size = 0;
    assert_int_equal(curlcache_entry_headers(entry, 0, &headers, &size), CURLCACHE_OK);
    assert_int_equal(size, strlen(k_headers));
    assert_memory_equal(headers, k_headers, size);
    assert_int_equal(curlcache_entry_headers(entry, 1, &headers, &size),
                     CURLCACHE_E_INVALID_ARGUMENT);
    const void* body = NULL;
    assert_int_equal(curlcache_entry_body(entry, &body, &size), CURLCACHE_OK);
    assert_int_equal(size, 5);
    assert_memory_equal(body, "hello", 5);
    curlcache_entry_free(entry);

    curlcache_stats stats;
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.hits, 1);
    assert_int_equal(stats.misses, 1);
    assert_int_equal(stats.stores, 1);
    assert_int_equal(stats.bytes_served, 5);
    assert_int_equal(stats.bytes_downloaded, 5);
    curlcache_close(cache);
}

static void test_redirect_chain_is_split_into_responses(void** state) {
    (void)state;
    curlcache* cache = open_cache("memory", "unused", NULL, NULL);
    const char* chain = "HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n"
                        "HTTP/2 200\r\ncontent-type: application/json\r\n\r\n";
    assert_int_equal(store(cache, "GET", "http://h/a", chain, "{}"), CURLCACHE_OK);
    curlcache_entry* entry = NULL;
    assert_int_equal(lookup(cache, "http://h/a", &entry), CURLCACHE_OK);
    assert_int_equal(curlcache_entry_response_count(entry), 2);
    assert_int_equal(curlcache_entry_status(entry), 200);
    assert_string_equal(curlcache_entry_content_type(entry), "application/json");
    const char* block = NULL;
    size_t size = 0;
    assert_int_equal(curlcache_entry_headers(entry, 0, &block, &size), CURLCACHE_OK);
    assert_int_equal(size, strlen("HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n"));
    curlcache_entry_free(entry);
    curlcache_close(cache);
}

static void test_policy_refusals_have_their_codes(void** state) {
    (void)state;
    curlcache* cache = open_cache("memory", "unused", "max_entry_size=4", NULL);
    assert_int_equal(store(cache, "GET", "http://h/big", k_headers, "12345"),
                     CURLCACHE_E_TOO_LARGE);
    assert_int_equal(store(cache, "GET", "http://h/fail", "HTTP/1.1 500 Oops\r\n\r\n", "x"),
                     CURLCACHE_E_NOT_CACHEABLE);
    assert_true(strlen(curlcache_errmsg(cache)) > 0);
    assert_int_equal(store(cache, "POST", "http://h/post", k_headers, "x"),
                     CURLCACHE_E_NOT_CACHEABLE);
    assert_int_equal(store(cache, "GET", "http://h/ok", k_headers, "1234"), CURLCACHE_OK);
    assert_string_equal(curlcache_errmsg(cache), ""); /* success clears the message */
    assert_int_equal(entry_count(cache), 1);
    curlcache_close(cache);

    cache = open_cache("memory", "unused", "mode=readonly", NULL);
    assert_int_equal(store(cache, "GET", "http://h/ok", k_headers, "1"), CURLCACHE_E_NOT_CACHEABLE);
    curlcache_close(cache);
}

static void test_stale_entry_is_a_miss_unless_offline(void** state) {
    (void)state;
    curlcache* cache = open_cache("sqlite", "stale.sqlite", "expire_after=0", NULL);
    assert_int_equal(store(cache, "GET", "http://h/s", k_headers, "old"), CURLCACHE_OK);
    curlcache_entry* entry = NULL;
    assert_int_equal(lookup(cache, "http://h/s", &entry), CURLCACHE_E_MISS);
    assert_null(entry);
    /* Still there for the management API. */
    assert_int_equal(curlcache_entry_get(cache, "http://h/s", &entry), CURLCACHE_OK);
    curlcache_entry_free(entry);
    curlcache_close(cache);

    cache = open_cache("sqlite", "stale.sqlite", "mode=offline", NULL);
    assert_int_equal(lookup(cache, "http://h/s", &entry), CURLCACHE_OK);
    curlcache_entry_free(entry);
    assert_int_equal(lookup(cache, "http://h/never-stored", &entry), CURLCACHE_E_OFFLINE);
    assert_non_null(strstr(curlcache_errmsg(cache), "http://h/never-stored"));
    curlcache_request* post = curlcache_request_new("POST", "http://h/s");
    assert_int_equal(curlcache_lookup(cache, post, &entry), CURLCACHE_E_OFFLINE);
    curlcache_request_free(post);
    curlcache_close(cache);

    cache = open_cache("sqlite", "stale.sqlite", "mode=refresh", NULL);
    assert_int_equal(lookup(cache, "http://h/s", &entry), CURLCACHE_E_MISS);
    curlcache_close(cache);
}

static void test_options_and_credentials_change_key_never_stored(void** state) {
    (void)state;
    curlcache* cache = open_cache("memory", "unused", NULL, NULL);
    char plain[33], follow[33], secret[33];
    key_of(cache, "http://h/x", plain);
    curlcache_request* request = curlcache_request_new("GET", "http://h/x");
    assert_int_equal(curlcache_request_set_option(request, "follow_location", "1"), CURLCACHE_OK);
    assert_int_equal(curlcache_request_key(cache, request, follow), CURLCACHE_OK);
    assert_int_equal(curlcache_request_set_option(request, "credentials", "alice:s3cret"),
                     CURLCACHE_OK);
    assert_int_equal(curlcache_request_key(cache, request, secret), CURLCACHE_OK);
    assert_string_not_equal(plain, follow);
    assert_string_not_equal(follow, secret);
    assert_int_equal(curlcache_store(cache, request, k_headers, strlen(k_headers), "b", 1),
                     CURLCACHE_OK);
    curlcache_request_free(request);

    request = curlcache_request_new("GET", "http://bob:hunter2@h/y");
    assert_int_equal(curlcache_store(cache, request, k_headers, strlen(k_headers), "b", 1),
                     CURLCACHE_OK);
    curlcache_request_free(request);
    curlcache_entry* entry = NULL;
    assert_int_equal(curlcache_entry_get(cache, secret, &entry), CURLCACHE_OK);
    assert_string_equal(curlcache_entry_url(entry), "http://h/x");
    curlcache_entry_free(entry);
    assert_int_equal(curlcache_entry_get(cache, "http://h/y", &entry), CURLCACHE_OK); /* by scan */
    assert_null(strstr(curlcache_entry_url(entry), "hunter2"));
    curlcache_entry_free(entry);
    curlcache_close(cache);
}

struct scan_state {
    int seen;
    int stop_after;
    int found_b;
};

static int on_meta(const curlcache_meta* meta, void* userp) {
    struct scan_state* s = userp;
    ++s->seen;
    if (strcmp(meta->url, "http://h/b") == 0) {
        s->found_b = 1;
        assert_int_equal(meta->status, 200);
        assert_string_equal(meta->method, "GET");
        assert_int_equal(strlen(meta->key), 32);
        assert_true(meta->size > 0);
    }
    return s->stop_after && s->seen >= s->stop_after;
}

static void test_scan_delete_by_key_url_glob_and_clear(void** state) {
    (void)state;
    curlcache* cache = open_cache("sqlite", "m.sqlite", NULL, NULL);
    const char* urls[] = {"http://h/a", "http://h/b", "http://h/dir/1", "http://h/dir/2",
                          "http://h/other?x=1"};
    for (size_t i = 0; i < 5; ++i) {
        assert_int_equal(store(cache, "GET", urls[i], k_headers, "x"), CURLCACHE_OK);
    }
    struct scan_state s = {0, 0, 0};
    assert_int_equal(curlcache_scan(cache, on_meta, &s), CURLCACHE_OK);
    assert_int_equal(s.seen, 5);
    assert_true(s.found_b);
    struct scan_state stop = {0, 2, 0};
    assert_int_equal(curlcache_scan(cache, on_meta, &stop), CURLCACHE_OK);
    assert_int_equal(stop.seen, 2);

    char key[33];
    key_of(cache, "http://h/a", key);
    uint64_t removed = 99;
    assert_int_equal(curlcache_delete(cache, key, &removed), CURLCACHE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(curlcache_delete(cache, key, &removed), CURLCACHE_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(curlcache_delete(cache, "HTTP://H/b", &removed), CURLCACHE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(curlcache_delete(cache, "http://h/dir/*", &removed), CURLCACHE_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(curlcache_delete(cache, "http://h/other?x=1", &removed), CURLCACHE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(entry_count(cache), 0);
    assert_int_equal(curlcache_delete(cache, "", &removed), CURLCACHE_E_INVALID_ARGUMENT);

    assert_int_equal(store(cache, "GET", "http://h/again", k_headers, "x"), CURLCACHE_OK);
    assert_int_equal(curlcache_clear(cache), CURLCACHE_OK);
    assert_int_equal(entry_count(cache), 0);
    assert_int_equal(curlcache_vacuum(cache), CURLCACHE_OK);
    curlcache_close(cache);
}

static void test_purge_removes_only_expired_entries(void** state) {
    (void)state;
    curlcache* keeps = open_cache("sqlite", "p.sqlite", NULL, NULL);
    curlcache* expires = open_cache("sqlite", "p.sqlite", "expire_after=0", NULL);
    assert_int_equal(store(keeps, "GET", "http://h/keep", k_headers, "x"), CURLCACHE_OK);
    assert_int_equal(store(expires, "GET", "http://h/gone", k_headers, "x"), CURLCACHE_OK);
    assert_int_equal(entry_count(keeps), 2);
    uint64_t removed = 0;
    assert_int_equal(curlcache_purge(keeps, &removed), CURLCACHE_OK);
    assert_int_equal(removed, 1);
    curlcache_entry* entry = NULL;
    assert_int_equal(curlcache_entry_get(keeps, "http://h/keep", &entry), CURLCACHE_OK);
    curlcache_entry_free(entry);
    assert_int_equal(curlcache_entry_get(keeps, "http://h/gone", &entry), CURLCACHE_E_MISS);
    curlcache_close(expires);
    curlcache_close(keeps);
}

struct progress_state {
    uint64_t calls, last_done, last_total;
};

static int on_progress(uint64_t done, uint64_t total, void* userp) {
    struct progress_state* p = userp;
    ++p->calls;
    p->last_done = done;
    p->last_total = total;
    return 0;
}

// Stores `count` entries http://h/<name>/<i> with the body "body <i>" in `from`, copies them
// into `to`, and checks what was copied, the progress calls and every `step`-th body.
static void store_copy_and_check(curlcache* from, curlcache* to, const char* name, int count,
                                 int step) {
    for (int i = 0; i < count; ++i) {
        char url[64], body[32];
        snprintf(url, sizeof url, "http://h/%s/%d", name, i);
        snprintf(body, sizeof body, "body %d", i);
        assert_int_equal(store(from, "GET", url, k_headers, body), CURLCACHE_OK);
    }
    struct progress_state p = {0, 0, 0};
    uint64_t copied = 0;
    assert_int_equal(curlcache_copy(from, to, on_progress, &p, &copied), CURLCACHE_OK);
    assert_int_equal(copied, count);
    assert_int_equal(p.calls, count);
    assert_int_equal(p.last_done, count);
    assert_int_equal(p.last_total, count);
    assert_int_equal(entry_count(to), count);
    for (int i = 0; i < count; i += step) {
        char url[64], body[32];
        snprintf(url, sizeof url, "http://h/%s/%d", name, i);
        snprintf(body, sizeof body, "body %d", i);
        curlcache_entry* entry = NULL;
        assert_int_equal(lookup(to, url, &entry), CURLCACHE_OK);
        const void* data = NULL;
        size_t size = 0;
        assert_int_equal(curlcache_entry_body(entry, &data, &size), CURLCACHE_OK);
        assert_int_equal(size, strlen(body));
        assert_memory_equal(data, body, size);
        curlcache_entry_free(entry);
    }
}

static void test_copy_between_two_caches_keeps_entries(void** state) {
    (void)state;
    curlcache* from = open_cache("sqlite", "from.sqlite", NULL, NULL);
    curlcache* to = open_cache("filesystem", "to-dir", NULL, NULL);
    store_copy_and_check(from, to, "copy", 3, 1);
    assert_int_equal(curlcache_copy(from, from, NULL, NULL, NULL), CURLCACHE_E_INVALID_ARGUMENT);
    curlcache_close(to);
    curlcache_close(from);
}

// More entries than a copy keeps in memory (4,096): their list goes through a temporary file
// and comes back whole.
static void test_copy_of_more_entries_than_held_in_memory_keeps_every_one(void** state) {
    (void)state;
    curlcache* from = open_cache("memory", "big-from", NULL, NULL);
    curlcache* to = open_cache("memory", "big-to", NULL, NULL);
    store_copy_and_check(from, to, "many", 5000, 977);
    curlcache_close(to);
    curlcache_close(from);
}

static void test_stats_persist_across_opens_and_zero(void** state) {
    (void)state;
    curlcache* cache = open_cache("sqlite", "s.sqlite", NULL, NULL);
    curlcache_entry* entry = NULL;
    assert_int_equal(lookup(cache, "http://h/st", &entry), CURLCACHE_E_MISS);
    assert_int_equal(store(cache, "GET", "http://h/st", k_headers, "12345"), CURLCACHE_OK);
    assert_int_equal(lookup(cache, "http://h/st", &entry), CURLCACHE_OK);
    curlcache_entry_free(entry);
    curlcache_close(cache);

    struct stat st;
    assert_int_equal(stat(scratch_path("s.sqlite.stats"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    cache = open_cache("sqlite", "s.sqlite", NULL, NULL);
    curlcache_stats stats;
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.hits, 1);
    assert_int_equal(stats.misses, 1);
    assert_int_equal(stats.stores, 1);
    assert_int_equal(stats.bytes_served, 5);
    assert_int_equal(stats.bytes_downloaded, 5);
    assert_int_equal(stats.errors, 0);
    assert_int_equal(lookup(cache, "http://h/st", &entry), CURLCACHE_OK); /* unflushed */
    curlcache_entry_free(entry);
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.hits, 2);
    curlcache_close(cache);

    cache = open_cache("sqlite", "s.sqlite", NULL, NULL);
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.hits, 2);
    assert_int_equal(curlcache_stats_zero(cache), CURLCACHE_OK);
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.hits + stats.misses + stats.stores + stats.bytes_served, 0);
    curlcache_close(cache);

    cache = open_cache("sqlite", "s.sqlite", NULL, NULL);
    assert_int_equal(curlcache_stats_get(cache, &stats), CURLCACHE_OK);
    assert_int_equal(stats.hits, 0);
    curlcache_close(cache);
}

static void test_several_backends_make_tiers_with_stats_beside_the_last(void** state) {
    (void)state;
    curlcache* cache = open_cache("memory,sqlite", "tiers.sqlite", NULL, NULL);
    assert_int_equal(curlcache_tier_count(cache), 2);
    curlcache_tier tier;
    assert_int_equal(curlcache_tier_get(cache, 0, &tier), CURLCACHE_OK);
    assert_string_equal(tier.backend, "memory");
    assert_int_equal(curlcache_tier_get(cache, 1, &tier), CURLCACHE_OK);
    assert_string_equal(tier.backend, "sqlite");
    assert_int_equal(store(cache, "GET", "http://h/t", k_headers, "tiered"), CURLCACHE_OK);
    assert_int_equal(curlcache_tier_get(cache, 1, &tier), CURLCACHE_OK);
    assert_int_equal(tier.entries, 1);
    curlcache_entry* entry = NULL;
    assert_int_equal(lookup(cache, "http://h/t", &entry), CURLCACHE_OK);
    curlcache_entry_free(entry);
    curlcache_close(cache);
    struct stat st;
    assert_int_equal(stat(scratch_path("tiers.sqlite.stats"), &st), 0);

    /* The lower tier kept the entry for the next process. */
    cache = open_cache("sqlite", "tiers.sqlite", NULL, NULL);
    assert_int_equal(lookup(cache, "http://h/t", &entry), CURLCACHE_OK);
    curlcache_entry_free(entry);
    curlcache_close(cache);
}

struct thread_case {
    curlcache* cache;
    pthread_barrier_t errored, succeeded;
    char seen[128];
};

static void* erring_thread(void* userp) {
    struct thread_case* t = userp;
    curlcache_tier tier;
    curlcache_tier_get(t->cache, 5, &tier); /* fails: "no such tier" */
    pthread_barrier_wait(&t->errored);
    pthread_barrier_wait(&t->succeeded);
    snprintf(t->seen, sizeof t->seen, "%s", curlcache_errmsg(t->cache));
    return NULL;
}

static void test_errmsg_is_kept_per_thread(void** state) {
    (void)state;
    struct thread_case t;
    t.cache = open_cache("memory", "unused", NULL, NULL);
    pthread_barrier_init(&t.errored, NULL, 2);
    pthread_barrier_init(&t.succeeded, NULL, 2);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, erring_thread, &t), 0);
    pthread_barrier_wait(&t.errored);
    assert_string_equal(curlcache_errmsg(t.cache), ""); /* the other thread's failure */
    uint64_t entries = 0;
    assert_int_equal(curlcache_count(t.cache, &entries, NULL), CURLCACHE_OK);
    pthread_barrier_wait(&t.succeeded);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_string_equal(t.seen, "no such tier"); /* not cleared by this thread's success */
    pthread_barrier_destroy(&t.errored);
    pthread_barrier_destroy(&t.succeeded);
    curlcache_close(t.cache);
}

#define T(name) cmocka_unit_test_setup_teardown(name, scratch_setup, scratch_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_strerror_walks_every_code_distinct_and_non_empty),
        T(test_version_and_backends_are_reported),
        T(test_open_with_arguments_uses_backend_and_name),
        T(test_open_reports_config_error_with_message),
        T(test_open_reads_config_file_then_environment_then_arguments),
        T(test_null_arguments_are_rejected),
        T(test_errmsg_is_kept_per_thread),
        T(test_store_then_lookup_is_a_hit_with_every_field),
        T(test_redirect_chain_is_split_into_responses),
        T(test_policy_refusals_have_their_codes),
        T(test_stale_entry_is_a_miss_unless_offline),
        T(test_options_and_credentials_change_key_never_stored),
        T(test_scan_delete_by_key_url_glob_and_clear),
        T(test_purge_removes_only_expired_entries),
        T(test_copy_between_two_caches_keeps_entries),
        T(test_copy_of_more_entries_than_held_in_memory_keeps_every_one),
        T(test_stats_persist_across_opens_and_zero),
        T(test_several_backends_make_tiers_with_stats_beside_the_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
