/* A libcurl program for the shim's edge cases: calls made from inside a callback, exit()
 * while another thread transfers, and cookies through a share handle.
 *
 *   edge nested ACTION DRIVER URL_A URL_B URL_NEW
 *       Handle A fetches URL_A (DRIVER: easy = curl_easy_perform, multi = a multi handle);
 *       handle B is set up for URL_B (with CURLOPT_RANGE "0-3", except for setopt, reset-self
 *       and none: a stale range would make B pass through). On A's first write callback:
 *         setopt     sets B's URL to URL_NEW
 *         reset      curl_easy_reset(B), then B's URL (URL_NEW) and output again
 *         cleanup    curl_easy_cleanup(B), then a new B for URL_NEW
 *         duphandle  B2 = curl_easy_duphandle(B) without the range, its own output; B2 is
 *                    performed instead of B (so it fetches URL_B)
 *         reset-self curl_easy_reset(A), inside A's own transfer (libcurl lets it finish);
 *                    then A performs again with no URL ("A again code=3"); B (no range)
 *                    fetches URL_B
 *         none       nothing (B has no range either)
 *       Then B performs. Prints "A code=.. body=.." and "B code=.. status=.. body=..".
 *   edge exit-mid-transfer URL
 *       A second thread GETs URL (a slow response); main calls exit(0) once the transfer is
 *       under way. A handler registered first (so run last) waits for the transfer to end.
 *   edge share-cookies SHARE_COOKIES A_COOKIES URL_SET URL_ECHO
 *       One share handle (with CURL_LOCK_DATA_COOKIE when SHARE_COOKIES is 1). Handle A, on
 *       the share (A_COOKIES: 1 = CURLOPT_COOKIEFILE "", ALL = CURLOPT_COOKIELIST "ALL",
 *       reset = COOKIEJAR then curl_easy_reset (which drops the share too), reset-file =
 *       COOKIEFILE "" then curl_easy_reset, 0 = no cookie option), GETs URL_SET (which sets a cookie), then URL_ECHO; handle B,
 *       on the share with CURLOPT_COOKIEFILE "", GETs URL_ECHO. Prints both echo bodies
 *       (the Cookie header the origin received). */
#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct transfer {
    char body[4096];
    size_t size;
};

static size_t on_data(char* data, size_t size, size_t count, void* userp) {
    struct transfer* t = userp;
    size_t n = size * count;
    size_t room = sizeof(t->body) - 1 - t->size;
    memcpy(t->body + t->size, data, n < room ? n : room);
    t->size += n < room ? n : room;
    t->body[t->size] = '\0';
    return n;
}

static void set_output(CURL* easy, struct transfer* t) {
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
}


/* LeakSanitizer's interface, present only in a sanitizer build. */
extern void __lsan_disable(void) __attribute__((weak));
extern void __lsan_enable(void) __attribute__((weak));

/* ---- nested --------------------------------------------------------------------------- */

struct nested {
    const char* action;
    const char* url_new;
    CURL* a;
    CURL* b;
    struct transfer a_out, b_out;
    int done;
};

static struct nested g_nested;

static size_t on_a_data(char* data, size_t size, size_t count, void* userp) {
    struct nested* n = userp;
    if (!n->done) {
        n->done = 1;
        if (strcmp(n->action, "setopt") == 0) {
            curl_easy_setopt(n->b, CURLOPT_URL, n->url_new);
        } else if (strcmp(n->action, "reset") == 0) {
            curl_easy_reset(n->b);
            curl_easy_setopt(n->b, CURLOPT_URL, n->url_new);
            set_output(n->b, &n->b_out);
        } else if (strcmp(n->action, "cleanup") == 0) {
            curl_easy_cleanup(n->b);
            n->b = curl_easy_init();
            curl_easy_setopt(n->b, CURLOPT_URL, n->url_new);
            set_output(n->b, &n->b_out);
        } else if (strcmp(n->action, "reset-self") == 0) {
            curl_easy_reset(n->a);
        } else if (strcmp(n->action, "duphandle") == 0) {
            CURL* copy = curl_easy_duphandle(n->b);
            curl_easy_cleanup(n->b);
            n->b = copy;
            curl_easy_setopt(n->b, CURLOPT_RANGE, (char*)NULL);
            set_output(n->b, &n->b_out);
        }
    }
    return on_data(data, size, count, &n->a_out);
}

static CURLcode perform_with(const char* driver, CURL* easy) {
    if (strcmp(driver, "multi") != 0) {
        return curl_easy_perform(easy);
    }
    CURLM* multi = curl_multi_init();
    curl_multi_add_handle(multi, easy);
    int running = 1;
    CURLcode code = CURLE_FAILED_INIT;
    while (running > 0) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            break;
        }
        if (running > 0) {
            curl_multi_wait(multi, NULL, 0, 10000, NULL);
        }
    }
    CURLMsg* msg;
    int queued;
    while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
            code = msg->data.result;
        }
    }
    curl_multi_remove_handle(multi, easy);
    curl_multi_cleanup(multi);
    return code;
}

static int run_nested(char** argv) {
    struct nested* n = &g_nested;
    n->action = argv[0];
    n->url_new = argv[4];
    n->b = curl_easy_init();
    curl_easy_setopt(n->b, CURLOPT_URL, argv[3]);
    if (strcmp(n->action, "setopt") != 0 && strcmp(n->action, "reset-self") != 0 &&
        strcmp(n->action, "none") != 0) {
        curl_easy_setopt(n->b, CURLOPT_RANGE, "0-3");
    }
    set_output(n->b, &n->b_out);

    CURL* a = curl_easy_init();
    n->a = a;
    curl_easy_setopt(a, CURLOPT_URL, argv[2]);
    curl_easy_setopt(a, CURLOPT_WRITEFUNCTION, on_a_data);
    curl_easy_setopt(a, CURLOPT_WRITEDATA, n);
    const CURLcode a_code = perform_with(argv[1], a);
    printf("A code=%d body=%s\n", (int)a_code, n->a_out.body);
    if (strcmp(n->action, "reset-self") == 0) {
        struct transfer again;
        memset(&again, 0, sizeof(again));
        set_output(a, &again);
        const CURLcode again_code = curl_easy_perform(a); /* the reset dropped the URL */
        printf("A again code=%d body=%s\n", (int)again_code, again.body);
    }
    curl_easy_cleanup(a);

    const CURLcode b_code = curl_easy_perform(n->b);
    long status = 0;
    curl_easy_getinfo(n->b, CURLINFO_RESPONSE_CODE, &status);
    printf("B code=%d status=%ld body=%s\n", (int)b_code, status, n->b_out.body);
    curl_easy_cleanup(n->b);
    return n->done ? 0 : 1;
}

/* ---- exit-mid-transfer ----------------------------------------------------------------- */

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_changed = PTHREAD_COND_INITIALIZER;
static int g_started, g_finished;
static struct transfer g_worker_out;

static int on_progress(void* userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)userp, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    pthread_mutex_lock(&g_mutex);
    if (!g_started) {
        g_started = 1;
        pthread_cond_broadcast(&g_changed);
    }
    pthread_mutex_unlock(&g_mutex);
    return 0;
}

static void* worker_main(void* url) {
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, (const char*)url);
    set_output(easy, &g_worker_out);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    const CURLcode code = curl_easy_perform(easy);
    curl_easy_cleanup(easy);
    /* Printed before the exit handler may go on: after "exiting" in the output. */
    printf("worker code=%d body=%s\n", (int)code, g_worker_out.body);
    fflush(stdout);
    pthread_mutex_lock(&g_mutex);
    g_finished = 1;
    pthread_cond_broadcast(&g_changed);
    pthread_mutex_unlock(&g_mutex);
    return NULL;
}

/* Registered before any curl call, so it runs after every handler the shim registers:
 * the transfer then goes on while (and after) the shim shuts down. */
static void wait_for_worker(void) {
    pthread_mutex_lock(&g_mutex);
    while (!g_finished) {
        pthread_cond_wait(&g_changed, &g_mutex);
    }
    pthread_mutex_unlock(&g_mutex);
}

static int run_exit_mid_transfer(char* url) {
    atexit(wait_for_worker);
    pthread_t worker;
    if (pthread_create(&worker, NULL, worker_main, url) != 0) {
        return 1;
    }
    pthread_mutex_lock(&g_mutex);
    while (!g_started) {
        pthread_cond_wait(&g_changed, &g_mutex);
    }
    pthread_mutex_unlock(&g_mutex);
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}

/* ---- share-cookies ------------------------------------------------------------------ */

static CURLcode get(CURL* easy, const char* url, struct transfer* out) {
    memset(out, 0, sizeof(*out));
    curl_easy_setopt(easy, CURLOPT_URL, url);
    set_output(easy, out);
    return curl_easy_perform(easy);
}

static int run_share_cookies(char** argv) {
    CURLSH* share = curl_share_init();
    if (strcmp(argv[0], "1") == 0) {
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    }
    struct transfer out;
    CURL* a = curl_easy_init();
    curl_easy_setopt(a, CURLOPT_SHARE, share);
    if (strcmp(argv[1], "1") == 0) {
        curl_easy_setopt(a, CURLOPT_COOKIEFILE, "");
    } else if (strcmp(argv[1], "ALL") == 0) {
        curl_easy_setopt(a, CURLOPT_COOKIELIST, "ALL");
    } else if (strcmp(argv[1], "reset") == 0) {
        /* COOKIEJAR starts the cookie engine at once; curl_easy_reset keeps it running. */
        curl_easy_setopt(a, CURLOPT_COOKIEJAR, "reset-jar.txt");
        curl_easy_reset(a);
    } else if (strcmp(argv[1], "reset-file") == 0) {
        /* COOKIEFILE is only loaded (starting the engine) when a transfer begins: a reset
         * before that drops it. libcurl 7.88 leaks the dropped list; LeakSanitizer, when
         * present, is told to ignore that one allocation. */
        if (__lsan_disable != NULL) {
            __lsan_disable();
        }
        curl_easy_setopt(a, CURLOPT_COOKIEFILE, "");
        if (__lsan_enable != NULL) {
            __lsan_enable();
        }
        curl_easy_reset(a);
    }
    const CURLcode set_code = get(a, argv[2], &out);
    printf("A set code=%d\n", (int)set_code);
    const CURLcode a_code = get(a, argv[3], &out);
    printf("A echo code=%d body=%s\n", (int)a_code, out.body);

    CURL* b = curl_easy_init();
    curl_easy_setopt(b, CURLOPT_SHARE, share);
    curl_easy_setopt(b, CURLOPT_COOKIEFILE, "");
    const CURLcode b_code = get(b, argv[3], &out);
    printf("B echo code=%d body=%s\n", (int)b_code, out.body);

    curl_easy_cleanup(a);
    curl_easy_cleanup(b);
    curl_share_cleanup(share);
    return 0;
}

int main(int argc, char** argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (argc == 7 && strcmp(argv[1], "nested") == 0) {
        rc = run_nested(argv + 2);
    } else if (argc == 3 && strcmp(argv[1], "exit-mid-transfer") == 0) {
        rc = run_exit_mid_transfer(argv[2]);
    } else if (argc == 6 && strcmp(argv[1], "share-cookies") == 0) {
        rc = run_share_cookies(argv + 2);
    } else {
        fprintf(stderr, "usage: edge nested|exit-mid-transfer|share-cookies ...\n");
    }
    curl_global_cleanup();
    return rc;
}
