/* The engine through the direct-link convenience (<curlcache/curl.h>, no LD_PRELOAD),
 * against a local origin that counts requests. Built once per backend: TEST_BACKEND is
 * "memory" or "sqlite". */
#include "tests/easy/capture.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

/* ---- tests ---- */

static void test_second_get_is_hit_with_identical_bytes(void** state) {
    (void)state;
    const char* url = origin_url(0, "/text/first");
    Capture live = {0}, hit = {0};
    long before = origin_count();
    assert_int_equal(fetch(url, &live), CURLE_OK);
    assert_int_equal(origin_count(), before + 1);
    assert_int_equal(fetch(url, &hit), CURLE_OK);
    assert_int_equal(origin_count(), before + 1);
    assert_string_equal(hit.body.data, "hello first\n");
    assert_same_buffer(&live.body, &hit.body);
    assert_same_buffer(&live.headers, &hit.headers);
    assert_int_equal(live.header_calls, hit.header_calls);
    capture_free(&live);
    capture_free(&hit);
}

static void test_getinfo_answers_from_entry_after_and_inside_callbacks(void** state) {
    (void)state;
    const char* url = origin_url(0, "/text/info");
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PRIVATE, (void*)&c);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        assert_int_equal(c.code_in_write, 200);
        assert_true(c.scheme_ok_in_header);
        long code = 0;
        char *type = NULL, *effective = NULL;
        void* priv = NULL;
        curl_off_t size = 0;
        long header_size = 0;
        struct curl_certinfo* certs = NULL;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
        curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective);
        curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
        curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &size);
        curl_easy_getinfo(h, CURLINFO_HEADER_SIZE, &header_size);
        assert_int_equal(curl_easy_getinfo(h, CURLINFO_CERTINFO, &certs), CURLE_OK);
        assert_int_equal(code, 200);
        assert_non_null(type);
        assert_string_equal(type, "text/plain");
        assert_string_equal(effective, url);
        assert_ptr_equal(priv, &c);
        assert_int_equal(size, (curl_off_t)strlen("hello info\n"));
        assert_int_equal(header_size, (long)c.headers.size);
        assert_non_null(certs);
        assert_int_equal(certs->num_of_certs, 0);
        curl_easy_cleanup(h);
        capture_free(&c);
    }
}

static void test_header_option_with_redirect_chain_replays_every_hop(void** state) {
    (void)state;
    const char* url = origin_url(0, "/redirect/1/chain");
    Buffer out[2] = {{NULL, 0}, {NULL, 0}};
    Capture headers[2];
    memset(headers, 0, sizeof headers);
    long redirects[2] = {0, 0};
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_HEADER, 1L);
        capture_on(h, &headers[round]);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects[round]);
        curl_easy_cleanup(h);
        out[round] = headers[round].body;
        headers[round].body.data = NULL;
    }
    assert_int_equal(origin_count(), before + 3);
    assert_int_equal(redirects[0], 2);
    assert_int_equal(redirects[1], 2);
    assert_same_buffer(&out[0], &out[1]);
    assert_same_buffer(&headers[0].headers, &headers[1].headers);
    /* The write callback got the three header blocks, then the body. */
    assert_non_null(strstr(out[1].data, "302"));
    assert_int_equal(out[1].size, headers[1].headers.size + strlen("hello chain\n"));
    assert_string_equal(out[1].data + headers[1].headers.size, "hello chain\n");
    for (int i = 0; i < 2; ++i) {
        buffer_free(&out[i]);
        capture_free(&headers[i]);
    }
}

/* A hit opens no connection, yet its timings are as a program expects them (README,
 * "Timings on a hit"): small, in libcurl's order, redirect_time > 0 after redirects, and the
 * _T (microsecond) infos equal to the double (second) ones. */
static void test_hit_timings_are_ordered_and_count_the_redirects(void** state) {
    (void)state;
    static const CURLINFO k_doubles[] = {CURLINFO_NAMELOOKUP_TIME,    CURLINFO_CONNECT_TIME,
                                         CURLINFO_APPCONNECT_TIME,    CURLINFO_PRETRANSFER_TIME,
                                         CURLINFO_STARTTRANSFER_TIME, CURLINFO_TOTAL_TIME,
                                         CURLINFO_REDIRECT_TIME};
    static const CURLINFO k_micros[] = {CURLINFO_NAMELOOKUP_TIME_T,    CURLINFO_CONNECT_TIME_T,
                                        CURLINFO_APPCONNECT_TIME_T,    CURLINFO_PRETRANSFER_TIME_T,
                                        CURLINFO_STARTTRANSFER_TIME_T, CURLINFO_TOTAL_TIME_T,
                                        CURLINFO_REDIRECT_TIME_T};
    enum { lookup, connect, app, pre, start, total, redirect, count };
    const char* url = origin_url(0, "/redirect/1/timings");
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        long redirects = 0;
        double seconds[count];
        curl_off_t micros[count];
        curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects);
        for (int i = 0; i < count; ++i) {
            assert_int_equal(curl_easy_getinfo(h, k_doubles[i], &seconds[i]), CURLE_OK);
            assert_int_equal(curl_easy_getinfo(h, k_micros[i], &micros[i]), CURLE_OK);
        }
        curl_easy_cleanup(h);
        capture_free(&c);
        assert_int_equal(redirects, 2);
        if (round == 0) {
            continue; /* libcurl's own transfer */
        }
        assert_int_equal(origin_count(), before + 3); /* the hit reached no origin */
        for (int i = 0; i < count; ++i) {
            assert_true(micros[i] >= 0 && micros[i] < 10 * 1000 * 1000);
            assert_int_equal((curl_off_t)llround(seconds[i] * 1e6), micros[i]);
        }
        assert_int_equal(micros[app], 0); /* plain http: no TLS handshake, as libcurl says */
        assert_true(0 < micros[lookup] && micros[lookup] <= micros[connect]);
        assert_true(micros[connect] <= micros[pre] && micros[pre] <= micros[start]);
        assert_true(micros[start] <= micros[total]);
        assert_true(0 < micros[redirect] && micros[redirect] < micros[total]);
        assert_true(micros[redirect] <= micros[lookup]); /* the final request comes last */
    }
}

static void test_reused_handle_across_urls_hits_per_url(void** state) {
    (void)state;
    CURL* h = curl_easy_init();
    const char* names[] = {"ra", "rb", "ra", "rb"};
    long before = origin_count();
    for (int i = 0; i < 4; ++i) {
        Capture c = {0};
        char expected[64];
        snprintf(expected, sizeof expected, "hello %s\n", names[i]);
        curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/text/%s", names[i]));
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        assert_string_equal(c.body.data, expected);
        char* effective = NULL;
        curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective);
        assert_string_equal(effective, origin_url(1, "/text/%s", names[i]));
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
    curl_easy_cleanup(h);
}

static void test_duphandle_copies_options_and_hits(void** state) {
    (void)state;
    Capture c = {0}, d = {0};
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/text/dup"));
    capture_on(h, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long before = origin_count();
    CURL* copy = curl_easy_duphandle(h);
    curl_easy_setopt(copy, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(copy, CURLOPT_HEADERDATA, &d);
    assert_int_equal(curl_easy_perform(copy), CURLE_OK);
    assert_int_equal(origin_count(), before);
    assert_same_buffer(&c.body, &d.body);
    assert_same_buffer(&c.headers, &d.headers);
    curl_easy_cleanup(copy);
    curl_easy_cleanup(h);
    capture_free(&c);
    capture_free(&d);
}

static void test_reset_forgets_recorded_options(void** state) {
    (void)state;
    Capture c = {0}, d = {0};
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/text/reset"));
    curl_easy_setopt(h, CURLOPT_HEADER, 1L);
    capture_on(h, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/text/reset"));
    capture_on(h, &d);
    long before = origin_count();
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(origin_count(), before);          /* HEADER is not part of the key */
    assert_string_equal(d.body.data, "hello reset\n"); /* no headers in the body any more */
    assert_true(c.body.size > d.body.size);
    curl_easy_cleanup(h);
    capture_free(&c);
    capture_free(&d);
}

static void test_write_callback_abort_is_write_error_live_and_on_hit(void** state) {
    (void)state;
    char error[CURL_ERROR_SIZE];
    /* live: nothing stored, so the next request goes to the origin again */
    Capture refuse = {0};
    refuse.abort_write = 1;
    long before = origin_count();
    assert_int_equal(fetch(origin_url(0, "/text/abort-live"), &refuse), CURLE_WRITE_ERROR);
    Capture ok = {0};
    assert_int_equal(fetch(origin_url(0, "/text/abort-live"), &ok), CURLE_OK);
    assert_int_equal(origin_count(), before + 2);
    /* hit */
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/text/abort-live"));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    Capture refuse_hit = {0};
    refuse_hit.abort_write = 1;
    capture_on(h, &refuse_hit);
    assert_int_equal(curl_easy_perform(h), CURLE_WRITE_ERROR);
    assert_int_equal(origin_count(), before + 2);
    assert_true(strlen(error) > 0);
    curl_easy_cleanup(h);
    capture_free(&refuse);
    capture_free(&ok);
    capture_free(&refuse_hit);
}

static void test_failonerror_404_returns_22_and_error_text(void** state) {
    (void)state;
    setenv("CURLCACHE_ALLOWABLE_CODES", "200,404", 1);
    engine_reopen_cache();
    const char* url = origin_url(0, "/status/404/missing");
    Capture stored = {0};
    assert_int_equal(fetch(url, &stored), CURLE_OK); /* recorded without FAILONERROR */
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        /* round 0: a hit; round 1: live (another URL), to compare the shapes */
        char error[CURL_ERROR_SIZE] = "";
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, round == 0 ? url : origin_url(1, "/status/404/live"));
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_HTTP_RETURNED_ERROR);
        assert_string_equal(error, "The requested URL returned error: 404");
        assert_int_equal(c.body.size, 0);
        assert_true(c.headers.size > 0);
        assert_memory_equal(c.headers.data, "HTTP/1.1 404", 12);
        assert_memory_equal(c.headers.data + c.headers.size - 4, "\r\n\r\n", 4);
        if (round == 0) {
            assert_int_equal(origin_count(), before);
            /* as libcurl does live: every header line, the blank line too, then the error */
            assert_same_buffer(&c.headers, &stored.headers);
        }
        curl_easy_cleanup(h);
        capture_free(&c);
    }
    capture_free(&stored);
}

static void test_nobody_delivers_headers_only_and_hits(void** state) {
    (void)state;
    const char* url = origin_url(0, "/text/head");
    Capture c[2];
    memset(c, 0, sizeof c);
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        capture_on(h, &c[round]);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_cleanup(h);
        assert_int_equal(c[round].body.size, 0);
    }
    assert_int_equal(origin_count(), before + 1);
    assert_same_buffer(&c[0].headers, &c[1].headers);
    capture_free(&c[0]);
    capture_free(&c[1]);
}

static void test_if_none_match_and_timecondition_get_304_on_hit(void** state) {
    (void)state;
    const char* url = origin_url(0, "/text/cond");
    Capture first = {0};
    assert_int_equal(fetch(url, &first), CURLE_OK);
    long before = origin_count();

    Capture c = {0};
    struct curl_slist* list = curl_slist_append(NULL, "If-None-Match: \"cond-v1\"");
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    capture_on(h, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long code = 0, unmet = -1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h, CURLINFO_CONDITION_UNMET, &unmet);
    assert_int_equal(code, 304);
    assert_int_equal(unmet, 1); /* libcurl 7.88 sets it for any 304, measured live */
    assert_int_equal(c.body.size, 0);
    assert_memory_equal(c.headers.data, "HTTP/1.1 304", 12);
    assert_non_null(strstr(c.headers.data, "ETag: \"cond-v1\""));
    assert_null(strstr(c.headers.data, "Content-Length"));
    curl_slist_free_all(list); /* freed while the handle still points at it */

    /* TIMECONDITION: If-Modified-Since after Last-Modified -> 304, CONDITION_UNMET = 1 */
    Capture t = {0};
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_TIMECONDITION, (long)CURL_TIMECOND_IFMODSINCE);
    curl_easy_setopt(h, CURLOPT_TIMEVALUE, 1700000000L);
    capture_on(h, &t);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h, CURLINFO_CONDITION_UNMET, &unmet);
    assert_int_equal(code, 304);
    assert_int_equal(unmet, 1);
    assert_int_equal(t.body.size, 0);

    /* An older time: the full response, as the origin would send */
    Capture full = {0};
    curl_easy_setopt(h, CURLOPT_TIMEVALUE, 1000000000L);
    capture_on(h, &full);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_string_equal(full.body.data, "hello cond\n");
    assert_int_equal(origin_count(), before);
    curl_easy_cleanup(h);
    capture_free(&first);
    capture_free(&c);
    capture_free(&t);
    capture_free(&full);
}

static void test_range_and_resume_get_206_from_cached_body(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/1000/range");
    Capture first = {0};
    assert_int_equal(fetch(url, &first), CURLE_OK);
    assert_int_equal(first.body.size, 1000);
    long before = origin_count();

    Capture c = {0};
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RANGE, "10-19");
    capture_on(h, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 206);
    assert_int_equal(c.body.size, 10);
    assert_memory_equal(c.body.data, first.body.data + 10, 10);
    assert_non_null(strstr(c.headers.data, "Content-Range: bytes 10-19/1000\r\n"));
    assert_non_null(strstr(c.headers.data, "Content-Length: 10\r\n"));

    Capture r = {0};
    curl_easy_setopt(h, CURLOPT_RANGE, NULL);
    curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)990);
    capture_on(h, &r);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(r.body.size, 10);
    assert_memory_equal(r.body.data, first.body.data + 990, 10);
    assert_int_equal(origin_count(), before);
    curl_easy_cleanup(h);
    capture_free(&first);
    capture_free(&c);
    capture_free(&r);
}

static void test_curl_easy_header_answers_from_entry(void** state) {
    (void)state;
    const char* url = origin_url(0, "/text/hdr");
    size_t live_count = 0;
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        struct curl_header* hdr = NULL;
        assert_int_equal(curl_easy_header(h, "x-multi", 0, CURLH_HEADER, -1, &hdr), CURLHE_OK);
        assert_string_equal(hdr->value, "a");
        assert_int_equal(hdr->amount, 2);
        assert_int_equal(curl_easy_header(h, "X-Multi", 1, CURLH_HEADER, -1, &hdr), CURLHE_OK);
        assert_string_equal(hdr->value, "b");
        assert_int_equal(hdr->index, 1);
        assert_int_equal(curl_easy_header(h, "X-Multi", 2, CURLH_HEADER, -1, &hdr),
                         CURLHE_BADINDEX);
        assert_int_equal(curl_easy_header(h, "X-None", 0, CURLH_HEADER, -1, &hdr), CURLHE_MISSING);
        assert_int_equal(curl_easy_header(h, "ETag", 0, CURLH_HEADER, 1, &hdr), CURLHE_NOREQUEST);
        size_t count = 0;
        struct curl_header* prev = NULL;
        while ((prev = curl_easy_nextheader(h, CURLH_HEADER, -1, prev)) != NULL) {
            ++count;
        }
        if (round == 0) {
            live_count = count;
        } else {
            assert_int_equal(count, live_count);
        }
        curl_easy_cleanup(h);
        capture_free(&c);
    }
    assert_true(live_count >= 7);
}

static int g_progress_calls;
static curl_off_t g_progress_now;
static int g_progress_abort;

static int on_progress(void* p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)p;
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    g_progress_calls++;
    g_progress_now = dlnow;
    return g_progress_abort;
}

static void test_progress_callback_sees_totals_and_can_abort_a_hit(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/5000/progress");
    Capture first = {0};
    assert_int_equal(fetch(url, &first), CURLE_OK);
    for (int abort_it = 0; abort_it < 2; ++abort_it) {
        Capture c = {0};
        g_progress_calls = 0;
        g_progress_now = 0;
        g_progress_abort = abort_it;
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        capture_on(h, &c);
        CURLcode rc = curl_easy_perform(h);
        assert_true(g_progress_calls >= 1);
        if (abort_it) {
            assert_int_equal(rc, CURLE_ABORTED_BY_CALLBACK);
        } else {
            assert_int_equal(rc, CURLE_OK);
            assert_int_equal(g_progress_now, 5000);
        }
        curl_easy_cleanup(h);
        capture_free(&c);
    }
    capture_free(&first);
}

static void test_default_fwrite_goes_to_writedata_on_hit(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/40000/fwrite");
    char* contents[2] = {NULL, NULL};
    size_t sizes[2] = {0, 0};
    for (int round = 0; round < 2; ++round) {
        FILE* file = open_memstream(&contents[round], &sizes[round]);
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, file);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_cleanup(h);
        fclose(file);
    }
    assert_int_equal(sizes[0], 40000);
    assert_int_equal(sizes[1], 40000);
    assert_memory_equal(contents[0], contents[1], 40000);
    free(contents[0]);
    free(contents[1]);
}

static void test_post_passes_through_by_default(void** state) {
    (void)state;
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/echo/post"));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "a=1");
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        assert_string_equal(c.body.data, "POST - a=1");
        curl_easy_cleanup(h);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 2);
}

static void test_offline_miss_fails_without_network(void** state) {
    (void)state;
    setenv("CURLCACHE_MODE", "offline", 1);
    engine_reopen_cache();
    char error[CURL_ERROR_SIZE] = "";
    long before = origin_count();
    Capture c = {0};
    CURL* h = curl_easy_init();
    const char* url = origin_url(0, "/text/offline");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    capture_on(h, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_COULDNT_CONNECT);
    assert_int_equal(origin_count(), before);
    char expected[600];
    snprintf(expected, sizeof expected, "curlcache: offline and not cached: %s", url);
    assert_string_equal(error, expected);
    assert_int_equal(c.body.size + c.headers.size, 0);
    /* what the cache cannot answer (a POST) does not reach the network either */
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x=1");
    assert_int_equal(curl_easy_perform(h), CURLE_COULDNT_CONNECT);
    assert_int_equal(origin_count(), before);
    curl_easy_cleanup(h);
    capture_free(&c);
}

static void test_request_header_changes_nothing_unless_matched(void** state) {
    (void)state;
    /* The program's own header list is read at perform time; it can be freed afterwards. */
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        struct curl_slist* list = curl_slist_append(NULL, round ? "X-Var: two" : "X-Var: one");
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/echo/hdr"));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_slist_free_all(list);
        curl_easy_cleanup(h);
        assert_string_equal(c.body.data, "GET one "); /* X-Var is not in match_headers */
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 1);
}

/* libcurl reads POSTFIELDS and HTTPHEADER at perform: a program may rewrite their bytes
 * in place between two transfers of one handle, without a setopt. Each is then another
 * request (the handle's key memo compares them, core/key.h), and going back is a hit. */
static void test_bytes_rewritten_in_place_make_another_request(void** state) {
    (void)state;
    setenv("CURLCACHE_ALLOWABLE_METHODS", "GET,HEAD,POST", 1);
    setenv("CURLCACHE_MATCH_HEADERS", "X-Var", 1);
    engine_reopen_cache();
    char body[] = "a=1";
    struct curl_slist* list = curl_slist_append(NULL, "X-Var: one");
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, origin_url(0, "/echo/inplace"));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    static const struct {
        const char* body;
        const char* var;
        const char* expected;
        int asks_origin;
    } rounds[] = {
        {"a=1", "one", "POST one a=1", 1}, {"a=1", "one", "POST one a=1", 0},
        {"a=2", "one", "POST one a=2", 1}, {"a=2", "one", "POST one a=2", 0},
        {"a=2", "two", "POST two a=2", 1}, {"a=2", "two", "POST two a=2", 0},
        {"a=1", "one", "POST one a=1", 0},
    };
    for (size_t i = 0; i < sizeof rounds / sizeof rounds[0]; ++i) {
        memcpy(body, rounds[i].body, 3);
        memcpy(list->data + 7, rounds[i].var, 3);
        Capture c = {0};
        capture_on(h, &c);
        long before = origin_count();
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        assert_string_equal(c.body.data, rounds[i].expected);
        assert_int_equal(origin_count(), before + rounds[i].asks_origin);
        capture_free(&c);
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(list);
}

typedef struct {
    int index;
    int failures;
} ThreadJob;

static void* thread_main(void* arg) {
    ThreadJob* job = arg;
    CURL* h = curl_easy_init();
    for (int round = 0; round < 3; ++round) {
        for (int which = 0; which < 2; ++which) {
            Capture c = {0};
            char path[64], expected[64];
            if (which == 0) {
                snprintf(path, sizeof path, "/text/thread%d", job->index);
                snprintf(expected, sizeof expected, "hello thread%d\n", job->index);
            } else {
                snprintf(path, sizeof path, "/text/shared");
                snprintf(expected, sizeof expected, "hello shared\n");
            }
            char url[128];
            snprintf(url, sizeof url, "http://127.0.0.1:%d%s", origin_port(), path);
            curl_easy_setopt(h, CURLOPT_URL, url);
            capture_on(h, &c);
            if (curl_easy_perform(h) != CURLE_OK || !c.body.data ||
                strcmp(c.body.data, expected) != 0) {
                job->failures++;
            }
            capture_free(&c);
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void test_eight_threads_with_their_own_handles(void** state) {
    (void)state;
    pthread_t threads[8];
    ThreadJob jobs[8];
    long before = origin_count();
    for (int i = 0; i < 8; ++i) {
        jobs[i].index = i;
        jobs[i].failures = 0;
        assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 8; ++i) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    long after = origin_count();
    /* 8 own URLs once each, the shared one at least once and at most once per thread */
    assert_true(after - before >= 9);
    assert_true(after - before <= 16);
    /* everything is cached now */
    ThreadJob again = {.index = 0, .failures = 0};
    thread_main(&again);
    assert_int_equal(again.failures, 0);
    assert_int_equal(origin_count(), after);
}

/* A copy of header text without its Date line. */
static Buffer without_date(const Buffer* headers) {
    Buffer out = {0};
    const char* p = headers->data;
    const char* end = p + headers->size;
    while (p < end) {
        const char* eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        if (!(len >= 5 && strncasecmp(p, "date:", 5) == 0)) {
            buffer_add(&out, p, len);
        }
        p += len;
    }
    return out;
}

static void test_stale_entry_is_revalidated_and_304_replays_it(void** state) {
    (void)state;
    setenv("CURLCACHE_EXPIRE_AFTER", "0", 1); /* every entry is stale at once */
    engine_reopen_cache();
    const char* url = origin_url(0, "/text/reval");
    Capture first = {0};
    long before = origin_count();
    assert_int_equal(fetch(url, &first), CURLE_OK);
    for (int round = 0; round < 2; ++round) {
        Capture c = {0};
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        capture_on(h, &c);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        assert_int_equal(code, 200); /* the origin said 304: the program sees the entry */
        assert_same_buffer(&first.body, &c.body);
        /* ...with its header fields updated from the 304 (RFC 9111 §4.3.4): the same lines
           but for the Date, which is the 304's own. */
        Buffer stored = without_date(&first.headers), replayed = without_date(&c.headers);
        assert_same_buffer(&stored, &replayed);
        buffer_free(&stored);
        buffer_free(&replayed);
        curl_easy_cleanup(h);
        capture_free(&c);
    }
    assert_int_equal(origin_count(), before + 3); /* one fetch, two revalidations */
    capture_free(&first);
}

/* A revalidated replay answers getinfo for the program's own URL, credentials included,
 * exactly as the real transfer did (they are never stored: the replay puts them back). */
static char* effective_url_of(const char* url, char* out, size_t size) {
    CURL* h = curl_easy_init();
    Capture c = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    capture_on(h, &c);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    char* effective = NULL;
    assert_int_equal(curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective), CURLE_OK);
    assert_non_null(effective);
    snprintf(out, size, "%s", effective);
    curl_easy_cleanup(h);
    capture_free(&c);
    return out;
}

static void test_revalidated_replay_reports_the_programs_url(void** state) {
    (void)state;
    setenv("CURLCACHE_EXPIRE_AFTER", "0", 1); /* every entry is stale at once */
    engine_reopen_cache();
    const char* plain = origin_url(0, "/text/reval-cred");
    char url[512];
    snprintf(url, sizeof url, "http://carol:s3cret@%s", plain + strlen("http://"));
    char live[512], replayed[512];
    long before = origin_count();
    effective_url_of(url, live, sizeof live);         /* miss: real libcurl's answer */
    effective_url_of(url, replayed, sizeof replayed); /* stale: revalidated, 304 replayed */
    assert_int_equal(origin_count(), before + 2);
    assert_string_equal(replayed, live);
}

static int g_pauses;

static size_t on_write_pausing(char* ptr, size_t size, size_t count, void* userdata) {
    if (g_pauses++ == 0) {
        return CURL_WRITEFUNC_PAUSE; /* the same bytes come again */
    }
    return on_write(ptr, size, count, userdata);
}

static void test_write_pause_on_hit_redelivers_the_same_bytes(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/50000/pause");
    Capture first = {0}, c = {0};
    assert_int_equal(fetch(url, &first), CURLE_OK);
    long before = origin_count();
    g_pauses = 0;
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    capture_on(h, &c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write_pausing);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_int_equal(origin_count(), before);
    assert_true(g_pauses > 1);
    assert_same_buffer(&first.body, &c.body);
    curl_easy_cleanup(h);
    capture_free(&first);
    capture_free(&c);
}

static void test_large_body_arrives_in_chunks_of_at_most_16k(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/100000/chunks");
    Capture first = {0}, c = {0};
    assert_int_equal(fetch(url, &first), CURLE_OK);
    assert_int_equal(fetch(url, &c), CURLE_OK);
    assert_same_buffer(&first.body, &c.body);
    assert_int_equal(c.body.size, 100000);
    assert_true(c.max_write > 0);
    assert_true(c.max_write <= CURL_MAX_WRITE_SIZE);
    capture_free(&first);
    capture_free(&c);
}

static void test_headerdata_alone_sends_headers_to_the_write_callback(void** state) {
    (void)state;
    const char* url = origin_url(0, "/redirect/0/hdrdata");
    Capture body[2], heads[2];
    memset(body, 0, sizeof body);
    memset(heads, 0, sizeof heads);
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body[round]);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &heads[round]); /* no HEADERFUNCTION */
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        struct curl_header* location = NULL;
        assert_int_equal(curl_easy_header(h, "Location", 0, CURLH_HEADER, 0, &location), CURLHE_OK);
        assert_string_equal(location->value, "/text/hdrdata");
        curl_easy_cleanup(h);
    }
    assert_int_equal(origin_count(), before + 2);
    assert_string_equal(body[1].body.data, "hello hdrdata\n");
    assert_true(heads[1].body.size > 0); /* on_write appends to .body */
    assert_same_buffer(&heads[0].body, &heads[1].body);
    assert_same_buffer(&body[0].body, &body[1].body);
    for (int i = 0; i < 2; ++i) {
        capture_free(&body[i]);
        capture_free(&heads[i]);
    }
}

static void test_chunked_trailers_come_after_the_body_on_a_hit(void** state) {
    (void)state;
    const char* url = origin_url(0, "/trailer/tr");
    Capture c[2];
    memset(c, 0, sizeof c);
    long before = origin_count();
    for (int round = 0; round < 2; ++round) {
        CURL* h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        capture_on(h, &c[round]);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        struct curl_header* trailer = NULL;
        assert_int_equal(curl_easy_header(h, "X-Checksum", 0, CURLH_TRAILER, -1, &trailer),
                         CURLHE_OK);
        assert_string_equal(trailer->value, "tr");
        assert_int_equal(curl_easy_header(h, "X-Checksum", 0, CURLH_HEADER, -1, &trailer),
                         CURLHE_MISSING);
        curl_easy_cleanup(h);
    }
    assert_int_equal(origin_count(), before + 1);
    assert_string_equal(c[1].body.data, "hello tr\n");
    assert_same_buffer(&c[0].headers, &c[1].headers);
    assert_non_null(strstr(c[1].headers.data, "X-Checksum: tr\r\n"));
    capture_free(&c[0]);
    capture_free(&c[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_get_is_hit_with_identical_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_getinfo_answers_from_entry_after_and_inside_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_option_with_redirect_chain_replays_every_hop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hit_timings_are_ordered_and_count_the_redirects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reused_handle_across_urls_hits_per_url, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_duphandle_copies_options_and_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_forgets_recorded_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_callback_abort_is_write_error_live_and_on_hit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_failonerror_404_returns_22_and_error_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nobody_delivers_headers_only_and_hits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_if_none_match_and_timecondition_get_304_on_hit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_range_and_resume_get_206_from_cached_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curl_easy_header_answers_from_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_callback_sees_totals_and_can_abort_a_hit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_fwrite_goes_to_writedata_on_hit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_post_passes_through_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_miss_fails_without_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_header_changes_nothing_unless_matched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bytes_rewritten_in_place_make_another_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eight_threads_with_their_own_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_entry_is_revalidated_and_304_replays_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revalidated_replay_reports_the_programs_url, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_pause_on_hit_redelivers_the_same_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large_body_arrives_in_chunks_of_at_most_16k, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chunked_trailers_come_after_the_body_on_a_hit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_headerdata_alone_sends_headers_to_the_write_callback,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("easy_" TEST_BACKEND, tests, group_setup, group_teardown);
}
