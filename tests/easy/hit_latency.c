/* Hit-path latency of the engine (not a ctest): one handle, the same URL performed many
 * times in-process after one miss; prints the median and 90th percentile per backend and
 * body size. Usage: easy_hit_latency [iterations]. Needs python3 (the loopback origin). */
#include <curl/curl.h>
#include <curlcache/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/easy/easy_support.h"

static size_t sink(char* ptr, size_t size, size_t count, void* userdata) {
    (void)ptr;
    *(size_t*)userdata += size * count;
    return size * count;
}

static int compare(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int measure(const char* backend, size_t body, int iterations) {
    if (scratch_begin(backend) != 0) {
        return 1;
    }
    const char* url = origin_url(0, "/size/%zu/latency-%s", body, backend);
    CURL* h = curl_easy_init();
    size_t received = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &received);
    if (curl_easy_perform(h) != CURLE_OK) { /* the miss that stores the entry */
        fprintf(stderr, "miss failed\n");
        return 1;
    }
    long before = origin_count();
    double* samples = calloc((size_t)iterations, sizeof *samples);
    for (int i = 0; i < iterations; ++i) {
        double start = now_us();
        CURLcode rc = curl_easy_perform(h);
        samples[i] = now_us() - start;
        if (rc != CURLE_OK) {
            fprintf(stderr, "hit failed: %d\n", rc);
            return 1;
        }
    }
    int all_hits = origin_count() == before;
    qsort(samples, (size_t)iterations, sizeof *samples, compare);
    printf("%-7s %8zu B  median %9.2f us  p90 %9.2f us  (%d hits%s)\n", backend, body,
           samples[iterations / 2], samples[iterations * 9 / 10], iterations,
           all_hits ? "" : ", NOT ALL HITS");
    free(samples);
    curl_easy_cleanup(h);
    scratch_end();
    return all_hits ? 0 : 1;
}

int main(int argc, char** argv) {
    int iterations = argc > 1 ? atoi(argv[1]) : 2000;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (origin_start() <= 0) {
        fprintf(stderr, "cannot start the origin\n");
        return 1;
    }
    int failed = 0;
    const char* backends[] = {"memory", "sqlite"};
    size_t sizes[] = {1024, 1024 * 1024};
    for (int b = 0; b < 2; ++b) {
        for (int s = 0; s < 2; ++s) {
            failed |=
                measure(backends[b], sizes[s], sizes[s] > 100000 ? iterations / 10 : iterations);
        }
    }
    origin_stop();
    curl_global_cleanup();
    return failed;
}
