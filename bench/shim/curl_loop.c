/*
 * curl_loop: sequential GETs on one libcurl easy handle, each timed on its own; prints
 * the median and spread. The benchmark runs it as is (against an origin or a proxy) and
 * under LD_PRELOAD=libcurlcache-preload.so (hits answered by the shim). It is a plain
 * libcurl program: it knows nothing about curlcache.
 *
 *   curl_loop [-n COUNT] [-w WARMUP] [-x PROXY] [-e BYTES] [-k heap|fresh] [-H HEADER]...
 *             [-s STATUS] URL
 *
 *   -n  timed transfers (default 1000)       -w  untimed transfers first (default 2)
 *   -x  CURLOPT_PROXY                         -e  expected body size: anything else fails
 *   -k  keep one copy of each body in memory, the least a cache holding bodies in memory
 *       does (the benchmark's floor): a buffer of the expected size (-e; a cache would size it from
 *       Content-Length) is allocated before each transfer, the body copied into it as it
 *       arrives and the buffer released after the transfer, all inside the timed window.
 *       "heap": malloc/free (glibc may hand back pages it already holds); "fresh": an
 *       anonymous mmap/munmap, so every page is new (page faults and zeroing included).
 *   -H  a request header, "Name: value" (repeatable; CURLOPT_HTTPHEADER): a request
 *       Cache-Control directive, a header named by Vary, If-None-Match
 *   -s  the status every transfer must have (default 200; -s 304 with -e -1 for a bare
 *       conditional request)
 * URL may contain one "%d", replaced by the transfer's index (distinct URLs: all misses).
 * Output, one line: n=.. median_us=.. p10_us=.. p90_us=.. mean_us=.. bytes_per_transfer=..
 * minflt_per_transfer=.. cpu_us_per_transfer=.. (minor page faults and CPU time, user + system,
 * of the whole process, all threads, during the timed loop, per transfer).
 * Exit status 1 on any failed transfer, another status than -s or unexpected size.
 */
#define _DEFAULT_SOURCE /* clock_gettime, getopt, MAP_ANONYMOUS */

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum keep_mode { KEEP_NONE, KEEP_HEAP, KEEP_FRESH };

/* One transfer's body: its size so far and, with -k, the copy being kept. */
struct body {
    size_t received;
    char* copy;
    size_t capacity;
};

static size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
    struct body* body = user;
    size_t n = size * nmemb;
    if (body->copy && body->received <= body->capacity && n <= body->capacity - body->received) {
        memcpy(body->copy + body->received, data, n);
    }
    body->received += n;
    return n;
}

static int keep_begin(struct body* body, enum keep_mode mode, long long expected) {
    if (mode == KEEP_NONE || expected <= 0) {
        return 0;
    }
    body->capacity = (size_t)expected;
    if (mode == KEEP_HEAP) {
        body->copy = malloc(body->capacity);
    } else {
        void* p =
            mmap(NULL, body->capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        body->copy = p == MAP_FAILED ? NULL : p;
    }
    return body->copy ? 0 : -1;
}

static void keep_end(struct body* body, enum keep_mode mode) {
    if (!body->copy) {
        return;
    }
    if (mode == KEEP_HEAP) {
        free(body->copy);
    } else {
        munmap(body->copy, body->capacity);
    }
    body->copy = NULL;
}

/* The whole process's minor page faults and CPU time (user + system, us) so far. */
static void usage_now(long* faults, double* cpu_us) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        *faults = 0;
        *cpu_us = 0;
        return;
    }
    *faults = usage.ru_minflt;
    *cpu_us = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 +
              (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
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

static long want_status = 200; /* -s */

/* One timed transfer; returns 0 when it succeeded with status -s and the expected size. Not
 * inlined: bench-shim counts the instructions inside it (callgrind). */
__attribute__((noinline)) static int transfer(CURL* curl, const char* pattern, int index,
                                              long long expected, enum keep_mode keep) {
    char buffer[2048];
    const char* url = pattern; /* set before every transfer, as a program fetching it would */
    struct body body = {0, NULL, 0};
    long status = 0;
    if (strstr(pattern, "%d")) {
        snprintf(buffer, sizeof buffer, pattern, index);
        url = buffer;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    if (keep_begin(&body, keep, expected) != 0) {
        fprintf(stderr, "curl_loop: no memory for a copy of %lld bytes\n", expected);
        return -1;
    }
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(curl);
    keep_end(&body, keep);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != want_status ||
        (expected >= 0 && (long long)body.received != expected)) {
        fprintf(stderr, "curl_loop: %s: %s, status %ld, %zu bytes\n", url, curl_easy_strerror(rc),
                status, body.received);
        return -1;
    }
    return 0;
}

int main(int argc, char** argv) {
    int count = 1000, warmup = 2, opt;
    long long expected = -1;
    const char* proxy = NULL;
    enum keep_mode keep = KEEP_NONE;
    struct curl_slist* headers = NULL;
    const char* usage = "usage: curl_loop [-n N] [-w W] [-x PROXY] [-e BYTES] [-k heap|fresh] "
                        "[-H HEADER]... [-s STATUS] URL\n";
    while ((opt = getopt(argc, argv, "n:w:x:e:k:H:s:")) != -1) {
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
        case 'k':
            keep = strcmp(optarg, "heap") == 0    ? KEEP_HEAP
                   : strcmp(optarg, "fresh") == 0 ? KEEP_FRESH
                                                  : KEEP_NONE;
            if (keep == KEEP_NONE) {
                fputs(usage, stderr);
                return 2;
            }
            break;
        case 'H':
            headers = curl_slist_append(headers, optarg);
            break;
        case 's':
            want_status = atol(optarg);
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || count < 1 || warmup < 0 || (keep != KEEP_NONE && expected <= 0)) {
        fputs(usage, stderr);
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
    if (headers) {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    }

    int failed = 0;
    for (int i = 0; i < warmup && !failed; ++i) {
        failed = transfer(curl, url, -1 - i, expected, keep) != 0;
    }
    double total = 0;
    long faults, faults_end;
    double cpu_us, cpu_us_end;
    usage_now(&faults, &cpu_us);
    for (int i = 0; i < count && !failed; ++i) {
        double t0 = now_us();
        failed = transfer(curl, url, i, expected, keep) != 0;
        samples[i] = now_us() - t0;
        total += samples[i];
    }
    usage_now(&faults_end, &cpu_us_end);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    if (failed) {
        free(samples);
        return 1;
    }
    qsort(samples, (size_t)count, sizeof(double), compare_double);
    printf("n=%d median_us=%.2f p10_us=%.2f p90_us=%.2f mean_us=%.2f bytes_per_transfer=%lld "
           "minflt_per_transfer=%.1f cpu_us_per_transfer=%.1f\n",
           count, percentile(samples, count, 0.5), percentile(samples, count, 0.1),
           percentile(samples, count, 0.9), total / count, expected,
           (double)(faults_end - faults) / count, (cpu_us_end - cpu_us) / count);
    free(samples);
    return 0;
}
