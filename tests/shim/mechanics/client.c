/* A libcurl program for the shim's mechanics tests. Its output depends only on what the
 * origin sent, so runs with and without the shim can be compared byte for byte.
 *
 *   client easy URL...          one new handle per URL, curl_easy_perform
 *   client multi-wait URL...    all URLs in one multi: perform + curl_multi_wait loop
 *   client multi-poll URL...    the same with curl_multi_poll
 *   client multi-fdset URL...   perform + curl_multi_timeout + curl_multi_fdset + select()
 *   client multi-socket URL...  event-driven: curl_multi_socket_action with socket and
 *                               timer callbacks around poll() (waits up to 10 s)
 *   client multi-abandon HIT1 HIT2 SLOW  all three in a multi, one perform, then: cleanup
 *                               of HIT2's handle while still added, removal of SLOW while
 *                               running, curl_multi_cleanup; prints what finished
 *   client multi-queue URL...   perform (+ wait) until nothing runs, then read every message:
 *                               prints each message's msgs_in_queue and result
 *   client fork URL             a GET, then fork: the child GETs the URL again
 *   client threads N URL        N threads, one GET each (URL + "?t=<i>")
 *   client mixed MODULE URL1 URL2  URL1 through this program's libcurl, then URL2 through
 *                               MODULE's ext_fetch (a module linked with the other libcurl
 *                               build, loaded RTLD_LOCAL): both builds in one process
 *
 * For each transfer it prints "<index> code=<CURLcode> status=<HTTP> body=<body>". */
#include <curl/curl.h>

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TRANSFERS 16

struct transfer {
    CURL* easy;
    char body[4096];
    size_t size;
    CURLcode code;
    long status;
    int done;
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

static void setup(struct transfer* t, const char* url) {
    memset(t, 0, sizeof(*t));
    t->easy = curl_easy_init();
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
}

static void report(int index, struct transfer* t) {
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
    printf("%d code=%d status=%ld body=%s\n", index, (int)t->code, t->status, t->body);
}

static int run_easy(int count, char** urls) {
    for (int i = 0; i < count; ++i) {
        struct transfer t;
        setup(&t, urls[i]);
        t.code = curl_easy_perform(t.easy);
        report(i, &t);
        curl_easy_cleanup(t.easy);
    }
    return 0;
}

enum drive { drive_wait, drive_poll, drive_fdset };

static void multi_wait_step(CURLM* multi, enum drive how) {
    if (how == drive_wait) {
        curl_multi_wait(multi, NULL, 0, 10000, NULL);
    } else if (how == drive_poll) {
        curl_multi_poll(multi, NULL, 0, 10000, NULL);
    } else {
        long timeout_ms = -1;
        curl_multi_timeout(multi, &timeout_ms);
        if (timeout_ms == 0) {
            return;
        }
        fd_set r, w, e;
        int maxfd = -1;
        FD_ZERO(&r);
        FD_ZERO(&w);
        FD_ZERO(&e);
        curl_multi_fdset(multi, &r, &w, &e, &maxfd);
        struct timeval tv = {0, 100 * 1000};
        if (timeout_ms > 0 && timeout_ms < 100) {
            tv.tv_usec = timeout_ms * 1000;
        }
        select(maxfd + 1, &r, &w, &e, &tv);
    }
}

/* Reads every waiting DONE message: records the result, removes the handle. */
static int read_done(CURLM* multi) {
    int finished = 0;
    CURLMsg* msg;
    int queued;
    while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        struct transfer* done = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char**)&done);
        done->code = msg->data.result;
        done->done = 1;
        curl_multi_remove_handle(multi, msg->easy_handle);
        ++finished;
    }
    return finished;
}

static int finish_multi(CURLM* multi, struct transfer* t, int count, int running) {
    for (int i = 0; i < count; ++i) {
        report(i, &t[i]);
        curl_easy_cleanup(t[i].easy);
    }
    curl_multi_cleanup(multi);
    printf("running=%d\n", running);
    return 0;
}

static int run_multi(int count, char** urls, enum drive how) {
    static struct transfer t[MAX_TRANSFERS];
    CURLM* multi = curl_multi_init();
    for (int i = 0; i < count; ++i) {
        setup(&t[i], urls[i]);
        curl_multi_add_handle(multi, t[i].easy);
    }
    int running = 1, finished = 0;
    /* The curl CLI's order (--parallel): wait first, then perform, then read messages. */
    while (finished < count) {
        multi_wait_step(multi, how);
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            fprintf(stderr, "client: curl_multi_perform failed\n");
            return 1;
        }
        finished += read_done(multi);
    }
    return finish_multi(multi, t, count, running);
}

struct events {
    struct pollfd fds[MAX_TRANSFERS * 2];
    nfds_t count;
    long timeout_ms; /* from the timer callback; -1 = none */
};

static int on_socket(CURL* easy, curl_socket_t socket, int what, void* userp, void* socketp) {
    (void)easy;
    (void)socketp;
    struct events* ev = userp;
    nfds_t i = 0;
    while (i < ev->count && ev->fds[i].fd != socket) {
        ++i;
    }
    if (what == CURL_POLL_REMOVE) {
        if (i < ev->count) {
            ev->fds[i] = ev->fds[--ev->count];
        }
        return 0;
    }
    if (i == ev->count) {
        if (ev->count == MAX_TRANSFERS * 2) {
            return -1;
        }
        ++ev->count;
    }
    ev->fds[i].fd = socket;
    ev->fds[i].events =
        (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    return 0;
}

static int on_timer(CURLM* multi, long timeout_ms, void* userp) {
    (void)multi;
    ((struct events*)userp)->timeout_ms = timeout_ms;
    return 0;
}

static int run_multi_socket(int count, char** urls) {
    static struct transfer t[MAX_TRANSFERS];
    static struct events ev;
    ev.timeout_ms = -1;
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &ev);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &ev);
    for (int i = 0; i < count; ++i) {
        setup(&t[i], urls[i]);
        curl_multi_add_handle(multi, t[i].easy);
    }
    int running = 0, finished = 0;
    while (finished < count) {
        int ready = poll(ev.fds, ev.count, ev.timeout_ms < 0 ? 10000 : (int)ev.timeout_ms);
        if (ready == 0) {
            ev.timeout_ms = -1;
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        } else if (ready > 0) {
            struct pollfd fired[MAX_TRANSFERS * 2];
            nfds_t n = ev.count;
            memcpy(fired, ev.fds, sizeof(fired[0]) * n);
            for (nfds_t i = 0; i < n; ++i) {
                if (fired[i].revents == 0) {
                    continue;
                }
                int mask = ((fired[i].revents & POLLIN) ? CURL_CSELECT_IN : 0) |
                           ((fired[i].revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                           ((fired[i].revents & (POLLERR | POLLHUP)) ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(multi, fired[i].fd, mask, &running);
            }
        }
        finished += read_done(multi);
    }
    return finish_multi(multi, t, count, running);
}

static int run_multi_abandon(char** urls) {
    static struct transfer t[3];
    CURLM* multi = curl_multi_init();
    for (int i = 0; i < 3; ++i) {
        setup(&t[i], urls[i]);
        curl_multi_add_handle(multi, t[i].easy);
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    CURLMsg* msg;
    int queued;
    while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
        struct transfer* done = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char**)&done);
        done->done = 1;
        done->code = msg->data.result;
    }
    curl_easy_cleanup(t[1].easy); /* still in the multi */
    curl_multi_remove_handle(multi, t[2].easy);
    curl_multi_cleanup(multi);
    printf("finished: %d %d %d body0=%s\n", t[0].done, t[1].done, t[2].done, t[0].body);
    curl_easy_cleanup(t[0].easy);
    curl_easy_cleanup(t[2].easy);
    return 0;
}

static int run_multi_queue(int count, char** urls) {
    static struct transfer t[MAX_TRANSFERS];
    CURLM* multi = curl_multi_init();
    for (int i = 0; i < count; ++i) {
        setup(&t[i], urls[i]);
        curl_multi_add_handle(multi, t[i].easy);
    }
    int running = 0;
    for (;;) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            return 1;
        }
        if (running == 0) {
            break;
        }
        curl_multi_wait(multi, NULL, 0, 10000, NULL);
    }
    CURLMsg* msg;
    int queued = -1, read = 0;
    while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
        printf("message %d: done=%d result=%d queued=%d\n", read++, msg->msg == CURLMSG_DONE,
               (int)msg->data.result, queued);
    }
    printf("after: queued=%d\n", queued);
    for (int i = 0; i < count; ++i) {
        curl_multi_remove_handle(multi, t[i].easy);
        report(i, &t[i]);
        curl_easy_cleanup(t[i].easy);
    }
    curl_multi_cleanup(multi);
    return 0;
}

static int run_fork(char* url) {
    run_easy(1, &url);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        run_easy(1, &url);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

struct thread_arg {
    char url[1024];
    struct transfer t;
};

static void* thread_main(void* p) {
    struct thread_arg* arg = p;
    setup(&arg->t, arg->url);
    arg->t.code = curl_easy_perform(arg->t.easy);
    curl_easy_getinfo(arg->t.easy, CURLINFO_RESPONSE_CODE, &arg->t.status);
    curl_easy_cleanup(arg->t.easy);
    return NULL;
}

static int run_threads(int n, const char* url) {
    static struct thread_arg args[MAX_TRANSFERS];
    pthread_t threads[MAX_TRANSFERS];
    for (int i = 0; i < n; ++i) {
        snprintf(args[i].url, sizeof(args[i].url), "%s?t=%d", url, i);
        pthread_create(&threads[i], NULL, thread_main, &args[i]);
    }
    for (int i = 0; i < n; ++i) {
        pthread_join(threads[i], NULL);
        printf("%d code=%d status=%ld body=%s\n", i, (int)args[i].t.code, args[i].t.status,
               args[i].t.body);
    }
    return 0;
}

/* Whether the split shim's engine is mapped into this process (/proc/self/maps). */
static void report_engine(void) {
    FILE* maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int mapped = 0;
    while (maps != NULL && fgets(line, sizeof(line), maps) != NULL) {
        mapped |= strstr(line, "libcurlcache-engine") != NULL;
    }
    if (maps != NULL) {
        fclose(maps);
    }
    printf("engine: %s\n", mapped ? "mapped" : "not mapped");
}

static int run_mixed(const char* module_name, char* url1, const char* url2) {
    run_easy(1, &url1);
    fflush(stdout);
    void* module = dlopen(module_name, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    int (*fetch)(const char*) = (int (*)(const char*))dlsym(module, "ext_fetch");
    return fetch != NULL ? fetch(url2) : 1;
}

int main(int argc, char** argv) {
    if (argc < 3 || argc - 2 > MAX_TRANSFERS) {
        fprintf(stderr, "usage: client easy|multi-wait|multi-poll|multi-fdset|fork|threads ...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char* mode = argv[1];
    int rc = 2;
    if (strcmp(mode, "easy") == 0) {
        rc = run_easy(argc - 2, argv + 2);
    } else if (strcmp(mode, "easy-engine") == 0) {
        rc = run_easy(argc - 2, argv + 2);
        report_engine();
    } else if (strcmp(mode, "multi-wait") == 0) {
        rc = run_multi(argc - 2, argv + 2, drive_wait);
    } else if (strcmp(mode, "multi-poll") == 0) {
        rc = run_multi(argc - 2, argv + 2, drive_poll);
    } else if (strcmp(mode, "multi-fdset") == 0) {
        rc = run_multi(argc - 2, argv + 2, drive_fdset);
    } else if (strcmp(mode, "multi-socket") == 0) {
        rc = run_multi_socket(argc - 2, argv + 2);
    } else if (strcmp(mode, "multi-abandon") == 0 && argc == 5) {
        rc = run_multi_abandon(argv + 2);
    } else if (strcmp(mode, "multi-queue") == 0) {
        rc = run_multi_queue(argc - 2, argv + 2);
    } else if (strcmp(mode, "fork") == 0) {
        rc = run_fork(argv[2]);
    } else if (strcmp(mode, "mixed") == 0 && argc == 5) {
        rc = run_mixed(argv[2], argv[3], argv[4]);
    } else if (strcmp(mode, "threads") == 0 && argc == 4) {
        int n = atoi(argv[2]);
        rc = n > 0 && n <= MAX_TRANSFERS ? run_threads(n, argv[3]) : 2;
    }
    curl_global_cleanup();
    return rc;
}
