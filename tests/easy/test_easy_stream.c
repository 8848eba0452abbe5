/* A miss streams its body into the storage while the transfer runs (core/easy/tee.cpp):
 * only what the program accepted is stored, header lines that CURLOPT_HEADER sends to the
 * write callback never enter the body, and a body that grows too large or a storage that
 * fails stores nothing while the program's output stays intact. Built once per backend. */
#include "tests/easy/capture.h"

#include <signal.h>
#include <sys/resource.h>

/* The bytes /size/N and /chunked/N send: byte i = 'a' + i % 26. */
static void assert_pattern_body(const Buffer* body, size_t n) {
    assert_int_equal(body->size, n);
    for (size_t i = 0; i < n; ++i) {
        if (body->data[i] != (char)('a' + i % 26)) {
            fail_msg("body byte %zu is %d", i, body->data[i]);
        }
    }
}

/* ---- pause during a miss ---- */

typedef struct {
    Capture capture;
    int calls;  /* write callback calls */
    int pauses; /* CURL_WRITEFUNC_PAUSE returned */
    int paused; /* waiting for the progress callback to resume */
    int every;  /* pause on every n-th call (each call's bytes once) */
} Pausing;

static size_t on_write_pausing(char* ptr, size_t size, size_t count, void* userdata) {
    Pausing* p = userdata;
    if (!p->paused && ++p->calls % p->every == 0) {
        p->paused = 1;
        p->pauses++;
        return CURL_WRITEFUNC_PAUSE; /* libcurl delivers these bytes again */
    }
    p->paused = 0;
    return on_write(ptr, size, count, &p->capture);
}

static int on_progress_resume(void* userdata, curl_off_t dltotal, curl_off_t dlnow,
                              curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    Pausing* p = userdata;
    if (p->paused) {
        curl_easy_pause(p->capture.handle, CURLPAUSE_CONT);
    }
    return 0;
}

static CURLcode fetch_pausing(const char* url, long header, int every, Pausing* p) {
    CURL* h = curl_easy_init();
    memset(p, 0, sizeof *p);
    p->every = every;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HEADER, header);
    capture_on(h, &p->capture);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write_pausing);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress_resume);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, p);
    CURLcode rc = curl_easy_perform(h);
    p->capture.handle = NULL;
    curl_easy_cleanup(h);
    return rc;
}

static void test_miss_paused_and_resumed_stores_the_exact_body(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/120000/pausemiss");
    long before = origin_count();
    Pausing live;
    assert_int_equal(fetch_pausing(url, 0, 3, &live), CURLE_OK);
    assert_true(live.pauses >= 2);
    assert_pattern_body(&live.capture.body, 120000);
    Capture hit = {0};
    assert_int_equal(fetch(url, &hit), CURLE_OK);
    assert_int_equal(origin_count(), before + 1);
    assert_pattern_body(&hit.body, 120000);
    assert_same_buffer(&live.capture.headers, &hit.headers);
    capture_free(&live.capture);
    capture_free(&hit);
}

/* With CURLOPT_HEADER every header line reaches the write callback too: pausing on each
 * call once makes libcurl deliver header lines and body pieces again (libcurl 7.88 then
 * hands the lines it buffered meanwhile to both callbacks as one piece). */
static void test_miss_paused_on_header_lines_stores_only_the_body(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/40000/pausehead");
    long before = origin_count();
    Pausing live;
    assert_int_equal(fetch_pausing(url, 1, 1, &live), CURLE_OK);
    assert_true(live.pauses >= 3);
    Pausing replayed;
    assert_int_equal(fetch_pausing(url, 1, 1000000, &replayed), CURLE_OK);
    assert_same_buffer(&live.capture.body, &replayed.capture.body);
    Capture plain = {0};
    assert_int_equal(fetch(url, &plain), CURLE_OK);
    assert_int_equal(origin_count(), before + 1);
    assert_pattern_body(&plain.body, 40000);
    capture_free(&live.capture);
    capture_free(&replayed.capture);
    capture_free(&plain);
}

/* ---- CURLOPT_HEADER: header lines never enter the stored body ---- */

static CURLcode fetch_with_header(const char* url, long header, Capture* c) {
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_HEADER, header);
    capture_on(h, c);
    CURLcode rc = curl_easy_perform(h);
    c->handle = NULL;
    curl_easy_cleanup(h);
    return rc;
}

/* CURLOPT_HEADER is not part of the key: a program without it gets the stored body alone. */
static void test_header_option_redirect_chain_stores_body_without_header_lines(void** state) {
    (void)state;
    const char* url = origin_url(0, "/redirect/2/hdrchain");
    long before = origin_count();
    Capture live = {0}, hit = {0}, plain = {0};
    assert_int_equal(fetch_with_header(url, 1, &live), CURLE_OK);
    assert_int_equal(origin_count(), before + 4); /* three redirects, then the text */
    assert_int_equal(fetch_with_header(url, 1, &hit), CURLE_OK);
    assert_int_equal(fetch_with_header(url, 0, &plain), CURLE_OK);
    assert_int_equal(origin_count(), before + 4);
    assert_same_buffer(&live.body, &hit.body);
    assert_same_buffer(&live.headers, &hit.headers);
    assert_string_equal(plain.body.data, "hello hdrchain\n");
    /* the live output: four header blocks, then the body */
    assert_int_equal(live.body.size, live.headers.size + strlen("hello hdrchain\n"));
    assert_memory_equal(live.body.data, live.headers.data, live.headers.size);
    capture_free(&live);
    capture_free(&hit);
    capture_free(&plain);
}

static void test_header_option_large_and_trailer_bodies_are_stored_exactly(void** state) {
    (void)state;
    const char* urls[] = {origin_url(0, "/size/100000/hdrlarge"),
                          origin_url(1, "/trailer/hdrtrailer"),
                          origin_url(2, "/chunked/30000/hdrchunked")};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; ++i) {
        long before = origin_count();
        Capture live = {0}, hit = {0}, plain = {0};
        assert_int_equal(fetch_with_header(urls[i], 1, &live), CURLE_OK);
        assert_int_equal(fetch_with_header(urls[i], 1, &hit), CURLE_OK);
        assert_int_equal(fetch_with_header(urls[i], 0, &plain), CURLE_OK);
        assert_int_equal(origin_count(), before + 1);
        assert_same_buffer(&live.body, &hit.body);
        assert_same_buffer(&live.headers, &hit.headers);
        /* the live output is the header blocks, then the body (trailers go to the header
         * callback only) */
        assert_true(plain.body.size > 0);
        assert_true(live.body.size > plain.body.size);
        size_t head = live.body.size - plain.body.size;
        assert_true(head <= live.headers.size);
        assert_memory_equal(live.body.data, live.headers.data, head);
        assert_memory_equal(plain.body.data, live.body.data + head, plain.body.size);
        capture_free(&live);
        capture_free(&hit);
        capture_free(&plain);
    }
}

/* A 100 Continue block comes before the response: its lines are not body either. */
static void test_header_option_after_100_continue_stores_only_the_body(void** state) {
    (void)state;
    setenv("CURLCACHE_ALLOWABLE_METHODS", "GET,HEAD,POST", 1);
    engine_reopen_cache();
    const char* url = origin_url(0, "/echo/continue");
    long before = origin_count();
    Capture c[3];
    memset(c, 0, sizeof c);
    struct curl_slist* expect = curl_slist_append(NULL, "Expect: 100-continue");
    for (int round = 0; round < 3; ++round) {
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "data");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, expect);
        curl_easy_setopt(h, CURLOPT_HEADER, round < 2 ? 1L : 0L);
        capture_on(h, &c[round]);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        c[round].handle = NULL;
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(expect);
    assert_int_equal(origin_count(), before + 1);
    assert_non_null(strstr(c[0].headers.data, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"));
    assert_same_buffer(&c[0].body, &c[1].body);
    assert_same_buffer(&c[0].headers, &c[1].headers);
    assert_string_equal(c[2].body.data, "POST - data");
    for (int i = 0; i < 3; ++i) {
        capture_free(&c[i]);
    }
}

/* ---- nothing stored, output intact ---- */

/* No Content-Length: the sink has started before the body grows past the limit. */
static void test_chunked_body_past_max_entry_size_stores_nothing(void** state) {
    (void)state;
    setenv("CURLCACHE_MAX_ENTRY_SIZE", "20000", 1);
    engine_reopen_cache();
    const char* url = origin_url(0, "/chunked/100000/toolarge");
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(url, &c), CURLE_OK);
        assert_pattern_body(&c.body, 100000);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
    /* a body under the limit is still stored */
    const char* small = origin_url(1, "/chunked/10000/small");
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        assert_int_equal(fetch(small, &c), CURLE_OK);
        assert_pattern_body(&c.body, 10000);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 3);
}

/* Writes past 256 KiB fail (EFBIG), whatever the permissions (the tests may run as root):
 * the storage fails while the body streams in or when it is committed. */
static void test_storage_failing_during_a_miss_leaves_output_intact(void** state) {
    (void)state;
    static const char* const backends[] = {"sqlite", "filesystem"};
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; ++b) {
        char name[600];
        snprintf(name, sizeof name, "%s/failing-%s", scratch_dir(), backends[b]);
        setenv("CURLCACHE_BACKEND", backends[b], 1);
        setenv("CURLCACHE_NAME", name, 1);
        engine_reopen_cache();
        const char* url = origin_url(0, "/size/2000000/failing-%s", backends[b]);
        long before = origin_count();
        struct rlimit saved;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
        struct rlimit low = saved;
        low.rlim_cur = 256 * 1024;
        Capture c = {0};
        void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
        CURLcode rc = fetch(url, &c);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        signal(SIGXFSZ, old_handler);
        assert_int_equal(rc, CURLE_OK);
        assert_pattern_body(&c.body, 2000000);
        capture_free(&c);
        /* nothing was stored: the next fetch goes to the origin, and is stored */
        for (int round = 0; round < 2; ++round) {
            Capture again = {0};
            assert_int_equal(fetch(url, &again), CURLE_OK);
            assert_pattern_body(&again.body, 2000000);
            capture_free(&again);
        }
        assert_int_equal(origin_count(), before + 2);
    }
}

/* ---- empty bodies ---- */

static void test_empty_body_and_head_are_stored_and_replayed(void** state) {
    (void)state;
    const char* empty = origin_url(0, "/size/0/empty");
    const char* head = origin_url(1, "/size/5000/head");
    long before = origin_count();
    Capture e[2], n[2];
    memset(e, 0, sizeof e);
    memset(n, 0, sizeof n);
    for (int round = 0; round < 2; ++round) {
        assert_int_equal(fetch(empty, &e[round]), CURLE_OK);
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, head);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        capture_on(h, &n[round]);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        n[round].handle = NULL;
        curl_easy_cleanup(h);
    }
    assert_int_equal(origin_count(), before + 2);
    for (int round = 0; round < 2; ++round) {
        assert_int_equal(e[round].body.size, 0);
        assert_int_equal(n[round].body.size, 0);
        assert_non_null(strstr(e[round].headers.data, "Content-Length: 0\r\n"));
        assert_non_null(strstr(n[round].headers.data, "Content-Length: 5000\r\n"));
    }
    assert_same_buffer(&e[0].headers, &e[1].headers);
    assert_same_buffer(&n[0].headers, &n[1].headers);
    for (int i = 0; i < 2; ++i) {
        capture_free(&e[i]);
        capture_free(&n[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_paused_and_resumed_stores_the_exact_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_miss_paused_on_header_lines_stores_only_the_body,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_header_option_redirect_chain_stores_body_without_header_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_header_option_large_and_trailer_bodies_are_stored_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_option_after_100_continue_stores_only_the_body,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body_past_max_entry_size_stores_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_storage_failing_during_a_miss_leaves_output_intact,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_body_and_head_are_stored_and_replayed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
