/*
 * curl_loop: sequential GETs on one libcurl easy handle, each timed on its own; prints
 * the median and spread. The benchmark runs it as is (against an origin or a proxy) and
 * under LD_PRELOAD=libcurlcache-preload.so (hits answered by the shim). It is a plain
 * libcurl program: it knows nothing about curlcache.
 *
 *   curl_loop [-n COUNT] [-w WARMUP] [-x PROXY] [-e BYTES] URL
 *
 *   -n  timed transfers (default 1000)       -w  untimed transfers first (default 2)
 *   -x  CURLOPT_PROXY                         -e  expected body size: anything else fails
 * URL may contain one "%d", replaced by the transfer's index (distinct URLs: all misses).
 * Output, one line: n=.. median_us=.. p10_us=.. p90_us=.. mean_us=.. bytes_per_transfer=..
 * Exit status 1 on any failed transfer, non-200 status or unexpected size.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getopt */

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
    (void)data;
    *(size_t*)user += size * nmemb;
    return size * nmemb;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int compare_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static double percentile(const double* sorted, int n, double p) {
    int i = (int)(p * (n - 1) + 0.5);
    return sorted[i];
}

/* One transfer; returns 0 when it succeeded with status 200 and the expected size. */
static int transfer(CURL* curl, const char* pattern, int index, long long expected) {
    char url[2048];
    size_t received = 0;
    long status = 0;
    if (strstr(pattern, "%d")) {
        snprintf(url, sizeof url, pattern, index);
    } else {
        snprintf(url, sizeof url, "%s", pattern);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &received);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200 || (expected >= 0 && (long long)received != expected)) {
        fprintf(stderr, "curl_loop: %s: %s, status %ld, %zu bytes\n", url, curl_easy_strerror(rc),
                status, received);
        return -1;
    }
    return 0;
}

int main(int argc, char** argv) {
    int count = 1000, warmup = 2, opt;
    long long expected = -1;
    const char* proxy = NULL;
    while ((opt = getopt(argc, argv, "n:w:x:e:")) != -1) {
        switch (opt) {
        case 'n':
            count = atoi(optarg);
            break;
        case 'w':
            warmup = atoi(optarg);
            break;
        case 'x':
            proxy = optarg;
            break;
        case 'e':
            expected = atoll(optarg);
            break;
        default:
            fprintf(stderr, "usage: curl_loop [-n N] [-w W] [-x PROXY] [-e BYTES] URL\n");
            return 2;
        }
    }
    if (optind != argc - 1 || count < 1 || warmup < 0) {
        fprintf(stderr, "usage: curl_loop [-n N] [-w W] [-x PROXY] [-e BYTES] URL\n");
        return 2;
    }
    const char* url = argv[optind];
    double* samples = malloc(sizeof(double) * (size_t)count);
    if (!samples || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    CURL* curl = curl_easy_init();
    if (!curl) {
        return 1;
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_PROXY, proxy ? proxy : "");
    curl_easy_setopt(curl, CURLOPT_NOPROXY, proxy ? "" : "*");

    int failed = 0;
    for (int i = 0; i < warmup && !failed; ++i) {
        failed = transfer(curl, url, -1 - i, expected) != 0;
    }
    double total = 0;
    for (int i = 0; i < count && !failed; ++i) {
        double t0 = now_us();
        failed = transfer(curl, url, i, expected) != 0;
        samples[i] = now_us() - t0;
        total += samples[i];
    }
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    if (failed) {
        free(samples);
        return 1;
    }
    qsort(samples, (size_t)count, sizeof(double), compare_double);
    printf("n=%d median_us=%.2f p10_us=%.2f p90_us=%.2f mean_us=%.2f bytes_per_transfer=%lld\n",
           count, percentile(samples, count, 0.5), percentile(samples, count, 0.1),
           percentile(samples, count, 0.9), total / count, expected);
    free(samples);
    return 0;
}
