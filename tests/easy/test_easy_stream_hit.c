/* A large hit is streamed from storage (core/easy/replay.cpp, issue 11): its body is read a
 * chunk at a time while it is delivered, each chunk checked against the digest stored in
 * the entry's head before the program sees it. A corrupt chunk never reaches the program as
 * good data: in the first chunk it makes the lookup a miss (the origin answers); further on
 * the transfer fails (CURLE_PARTIAL_FILE) after the good bytes before it, and the entry is
 * removed. Built once per backend; the corruption cases flip a byte of the stored file, so
 * they run for the backends that keep values in files (sqlite body files, filesystem). */
#include "tests/easy/capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Above the engine's 4 MiB stream threshold: 6 chunks of 1 MiB. */
#define BIG (6u << 20)

static int on_disk(void) {
    return strcmp(TEST_BACKEND, "memory") != 0;
}

/* The bytes /size/N sends: byte i = 'a' + i % 26. Fails unless `body` is a prefix of them. */
static void assert_pattern_prefix(const Buffer* body) {
    for (size_t i = 0; i < body->size; ++i) {
        if (body->data[i] != (char)('a' + i % 26)) {
            fail_msg("body byte %zu is %d: wrong bytes reached the program", i, body->data[i]);
        }
    }
}

/* The largest regular file below `dir`: the stored large value (a body file, an entry file). */
static void largest_file(const char* dir, char* best, off_t* best_size) {
    DIR* d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent* e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            largest_file(path, best, best_size);
        } else if (S_ISREG(st.st_mode) && st.st_size > *best_size) {
            *best_size = st.st_size;
            snprintf(best, 4096, "%s", path);
        }
    }
    closedir(d);
}

/* Flips one byte of the stored value's file at `fraction` of its length (a body byte). */
static void corrupt_stored_body(double fraction) {
    char path[4096] = "";
    off_t size = 0;
    largest_file(scratch_dir(), path, &size);
    assert_true(size >= (off_t)BIG);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = (off_t)((double)size * fraction);
    unsigned char byte = 0;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

static void store_big(const char* url) {
    long before = origin_count();
    Capture miss = {0};
    assert_int_equal(fetch(url, &miss), CURLE_OK);
    assert_int_equal(miss.body.size, BIG);
    assert_int_equal(origin_count(), before + 1);
    buffer_free(&miss.body);
    buffer_free(&miss.headers);
}

static void test_large_hit_is_delivered_exactly_in_bounded_pieces(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/%u/streamed", BIG);
    store_big(url);
    long before = origin_count();
    Capture hit = {0};
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    capture_on(h, &hit);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_off_t size = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &size); /* after the reader went */
    hit.handle = NULL;
    curl_easy_cleanup(h);
    assert_int_equal(size, BIG);
    assert_int_equal(origin_count(), before); /* a hit */
    assert_int_equal(hit.body.size, BIG);
    assert_pattern_prefix(&hit.body);
    assert_true(hit.max_write <= CURL_MAX_WRITE_SIZE);
    buffer_free(&hit.body);
    buffer_free(&hit.headers);
}

/* ---- the body is read from storage while it is delivered ---- */

typedef struct {
    Capture capture;
    int corrupted;
} Corrupting;

/* Once 2 MiB have been delivered, damages the stored body near its end: a hit that read
 * the whole value before delivering would never notice. */
static size_t on_write_corrupting(char* ptr, size_t size, size_t count, void* userdata) {
    Corrupting* c = userdata;
    size_t n = on_write(ptr, size, count, &c->capture);
    if (!c->corrupted && c->capture.body.size >= (2u << 20)) {
        c->corrupted = 1;
        corrupt_stored_body(0.75);
    }
    return n;
}

static void test_stored_body_is_read_while_it_is_delivered(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/%u/read-late", BIG);
    store_big(url);
    CURL* h = curl_easy_init();
    Corrupting c;
    memset(&c, 0, sizeof c);
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    capture_on(h, &c.capture);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write_corrupting);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    long before = origin_count();
    CURLcode rc = curl_easy_perform(h);
    c.capture.handle = NULL;
    curl_easy_cleanup(h);
    assert_int_equal(origin_count(), before); /* it was a hit */
    assert_true(c.corrupted);
    assert_int_equal(rc, CURLE_PARTIAL_FILE);
    assert_non_null(strstr(error, "checksum"));
    assert_true(c.capture.body.size >= (2u << 20));
    assert_true(c.capture.body.size < BIG);
    assert_pattern_prefix(&c.capture.body);
    buffer_free(&c.capture.body);
    buffer_free(&c.capture.headers);
}

/* ---- corruption found before or during the hit ---- */

static void test_corrupt_middle_chunk_fails_the_transfer_and_removes_the_entry(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/%u/middle", BIG);
    store_big(url);
    corrupt_stored_body(0.5);
    long before = origin_count();
    Capture hit = {0};
    assert_int_equal(fetch(url, &hit), CURLE_PARTIAL_FILE);
    assert_int_equal(origin_count(), before);
    assert_true(hit.body.size < BIG);
    assert_pattern_prefix(&hit.body); /* only the good chunks before the bad one */
    buffer_free(&hit.body);
    buffer_free(&hit.headers);
    /* The entry went: the next transfer is a miss, whole and exact. */
    Capture again = {0};
    assert_int_equal(fetch(url, &again), CURLE_OK);
    assert_int_equal(origin_count(), before + 1);
    assert_int_equal(again.body.size, BIG);
    assert_pattern_prefix(&again.body);
    buffer_free(&again.body);
    buffer_free(&again.headers);
}

static void test_corrupt_first_chunk_is_a_miss_answered_by_the_origin(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/%u/first", BIG);
    store_big(url);
    corrupt_stored_body(0.02); /* within the first MiB of the body */
    long before = origin_count();
    Capture hit = {0};
    assert_int_equal(fetch(url, &hit), CURLE_OK);
    assert_int_equal(origin_count(), before + 1);
    assert_int_equal(hit.body.size, BIG);
    assert_pattern_prefix(&hit.body);
    buffer_free(&hit.body);
    buffer_free(&hit.headers);
}

/* A range of a streamed body reads only the chunks it needs, and checks them. */
static void test_range_of_a_large_hit_is_cut_from_the_stored_chunks(void** state) {
    (void)state;
    const char* url = origin_url(0, "/size/%u/range", BIG);
    store_big(url);
    CURL* h = curl_easy_init();
    Capture c = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RANGE, "3145720-3145739");
    capture_on(h, &c);
    long before = origin_count();
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    c.handle = NULL;
    curl_easy_cleanup(h);
    assert_int_equal(origin_count(), before);
    assert_int_equal(code, 206);
    assert_int_equal(c.body.size, 20);
    for (size_t i = 0; i < 20; ++i) {
        assert_int_equal(c.body.data[i], (char)('a' + (3145720 + i) % 26));
    }
    buffer_free(&c.body);
    buffer_free(&c.headers);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_large_hit_is_delivered_exactly_in_bounded_pieces,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_of_a_large_hit_is_cut_from_the_stored_chunks,
                                        setup, teardown),
    };
    const struct CMUnitTest on_disk_tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_body_is_read_while_it_is_delivered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_corrupt_middle_chunk_fails_the_transfer_and_removes_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_first_chunk_is_a_miss_answered_by_the_origin,
                                        setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("easy_stream_hit_" TEST_BACKEND, tests, group_setup,
                                             group_teardown);
    if (on_disk()) { /* a skipped test fails CI: the memory backend has no file to damage */
        failed += cmocka_run_group_tests_name("easy_stream_hit_damaged_" TEST_BACKEND,
                                              on_disk_tests, group_setup, group_teardown);
    }
    return failed;
}
