/* What the program's callbacks receive, captured for comparison, and the per-test fixture
 * shared by the engine tests (included by one test file each: static functions). */
#ifndef CURLCACHE_TESTS_EASY_CAPTURE_H
#define CURLCACHE_TESTS_EASY_CAPTURE_H

/* cmocka needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* clang-format off */
#include <cmocka.h>
/* clang-format on */

#include <curl/curl.h>
#include <curlcache/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/easy/easy_support.h"

#ifndef TEST_BACKEND
#define TEST_BACKEND "memory"
#endif

typedef struct {
    char* data;
    size_t size;
} Buffer;

static inline void buffer_add(Buffer* b, const char* data, size_t size) {
    b->data = realloc(b->data, b->size + size + 1);
    memcpy(b->data + b->size, data, size);
    b->size += size;
    b->data[b->size] = '\0';
}

static inline void buffer_free(Buffer* b) {
    free(b->data);
    b->data = NULL;
    b->size = 0;
}

typedef struct {
    Buffer body;
    Buffer headers;
    CURL* handle;
    long code_in_write;      /* RESPONSE_CODE asked inside the write callback */
    int scheme_ok_in_header; /* SCHEME asked inside the header callback was "HTTP" */
    int header_calls;
    int abort_write;  /* the write callback refuses data */
    size_t max_write; /* the largest single write callback call */
} Capture;

static inline size_t on_write(char* ptr, size_t size, size_t count, void* userdata) {
    Capture* c = userdata;
    if (c->abort_write) {
        return 0;
    }
    if (c->handle) {
        curl_easy_getinfo(c->handle, CURLINFO_RESPONSE_CODE, &c->code_in_write);
    }
    buffer_add(&c->body, ptr, size * count);
    if (size * count > c->max_write) {
        c->max_write = size * count;
    }
    return size * count;
}

static inline size_t on_header(char* ptr, size_t size, size_t count, void* userdata) {
    Capture* c = userdata;
    if (c->handle) {
        char* scheme = NULL;
        curl_easy_getinfo(c->handle, CURLINFO_SCHEME, &scheme);
        if (c->header_calls == 0) {
            c->scheme_ok_in_header = 1;
        }
        if (!scheme || strcmp(scheme, "HTTP") != 0) {
            c->scheme_ok_in_header = 0;
        }
    }
    c->header_calls++;
    buffer_add(&c->headers, ptr, size * count);
    return size * count;
}

static inline void capture_free(Capture* c) {
    buffer_free(&c->body);
    buffer_free(&c->headers);
}

static inline void capture_on(CURL* h, Capture* c) {
    c->handle = h;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
}

/* One GET on a fresh handle; the capture gets what the callbacks saw. */
static inline CURLcode fetch(const char* url, Capture* c) {
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    capture_on(h, c);
    CURLcode rc = curl_easy_perform(h);
    c->handle = NULL;
    curl_easy_cleanup(h);
    return rc;
}

static inline void assert_same_buffer(const Buffer* a, const Buffer* b) {
    assert_int_equal(a->size, b->size);
    if (a->size) {
        assert_memory_equal(a->data, b->data, a->size);
    }
}

/* ---- fixture ---- */

static inline int group_setup(void** state) {
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return origin_start() > 0 ? 0 : -1;
}

static inline int group_teardown(void** state) {
    (void)state;
    origin_stop();
    curl_global_cleanup();
    return 0;
}

static inline int setup(void** state) {
    (void)state;
    return scratch_begin(TEST_BACKEND);
}

static inline int teardown(void** state) {
    (void)state;
    scratch_end();
    return 0;
}

#endif
