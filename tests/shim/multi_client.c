/*
 * multi_client: a plain libcurl program that drives its transfers in one of the ways real
 * programs do, and prints what it received, for the shim's black-box tests (the output
 * with and without the shim must be byte-identical).
 *
 *   multi_client STYLE[,VARIANT...] URL...
 *
 * STYLE:   easy   (curl_easy_perform, one reused handle)
 *          dup    (curl_easy_duphandle of a template handle per URL, options set again)
 *          wait   (multi_perform + multi_wait)
 *          poll   (multi_perform + multi_poll)
 *          fdset  (multi_perform + multi_timeout + multi_fdset + select)
 *          socket (multi_socket_action with SOCKETFUNCTION/TIMERFUNCTION and poll)
 * VARIANT: header-in-body (CURLOPT_HEADER=1), abort-write (write callback returns 0),
 *          abort-header (header callback returns 0), abort-progress (XFERINFOFUNCTION
 *          returns 1), nofollow (no FOLLOWLOCATION), gzip (ACCEPT_ENCODING "gzip"),
 *          headers (a new CURLOPT_HTTPHEADER list per transfer, freed right after it while
 *          the handle still points at it, as some programs do), pause (the write
 *          callback returns CURL_WRITEFUNC_PAUSE once per transfer; the multi loop, or the
 *          progress callback under curl_easy_perform, resumes it with CURLPAUSE_CONT).
 *
 * Every transfer prints its CURLcode, header lines, body size and FNV-1a digest, the
 * getinfo values a program reads (no timings), and whether XFERINFOFUNCTION saw the final
 * size. A multi loop that takes longer than 2 s prints so: when only cache hits remain,
 * the shim must never block in wait/poll/select.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getopt */

#include <curl/curl.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

enum { k_max_transfers = 16, k_max_headers = 8192, k_max_sockets = 64 };
/* A loop that waits this long in one call has blocked: local transfers take milliseconds.
 * A run that takes k_slow_ms in all reports it (the shim must not block on hits). */
enum { k_wait_ms = 3000, k_slow_ms = 2000 };

struct Options {
    int header_in_body, abort_write, abort_header, abort_progress, nofollow, gzip, headers;
    int pause, unpause_in_progress;
};

struct Transfer {
    CURL* easy;
    const char* url;
    char headers[k_max_headers];
    size_t headers_len;
    size_t body_len;
    uint64_t digest;
    int write_calls;
    curl_off_t progress_now, progress_total;
    int progress_calls;
    int paused_once, paused_now;
    CURLcode result;
    int done;
    const struct Options* options;
};

static size_t on_write(char* data, size_t size, size_t n, void* user) {
    struct Transfer* t = user;
    size_t len = size * n;
    t->write_calls++;
    if (t->options->abort_write) {
        return 0;
    }
    if (t->options->pause && !t->paused_once) {
        /* Pause once; libcurl delivers the same data again after CURLPAUSE_CONT. */
        t->paused_once = 1;
        t->paused_now = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    for (size_t i = 0; i < len; ++i) {
        t->digest = (t->digest ^ (unsigned char)data[i]) * 1099511628211ull;
    }
    t->body_len += len;
    return len;
}

static size_t on_header(char* data, size_t size, size_t n, void* user) {
    struct Transfer* t = user;
    size_t len = size * n;
    if (t->options->abort_header) {
        return 0;
    }
    if (t->headers_len + len < k_max_headers) {
        memcpy(t->headers + t->headers_len, data, len);
        t->headers_len += len;
    }
    return len;
}

static int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    struct Transfer* t = user;
    (void)ultotal;
    (void)ulnow;
    t->progress_calls++;
    t->progress_now = dlnow;
    t->progress_total = dltotal;
    if (t->paused_now && t->options->unpause_in_progress) {
        /* curl_easy_perform cannot return to the program: it unpauses from here. */
        t->paused_now = 0;
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
    }
    /* Abort once the response is known (its size announced), not before the request. */
    return t->options->abort_progress && dltotal > 0 ? 1 : 0;
}

static void setup(struct Transfer* t, CURL* easy, const char* url, const struct Options* o) {
    memset(t, 0, sizeof *t);
    t->easy = easy;
    t->url = url;
    t->digest = 14695981039346656037ull;
    t->options = o;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(easy, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, o->nofollow ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_HEADER, o->header_in_body ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, o->gzip ? "gzip" : NULL);
}

static void print_string(const char* name, const char* value) {
    printf("%s: %s\n", name, value ? value : "(null)");
}

static void report(struct Transfer* t) {
    CURL* e = t->easy;
    long code = -1, redirects = -1, header_size = -1, unmet = -1, version = -1;
    curl_off_t size = -1, length = -1, filetime = -1;
    char *ctype = NULL, *effective = NULL, *redirect_url = NULL, *scheme = NULL;
    void* priv = NULL;
    printf("== %s\nresult: %d (%s)\n", t->url, (int)t->result, curl_easy_strerror(t->result));
    fwrite(t->headers, 1, t->headers_len, stdout);
    /* How much of the body arrived before an abort depends on timing: not compared. */
    int partial = t->options->abort_write || t->options->abort_progress;
    if (partial) {
        printf("body: (cut by the abort)\n");
    } else {
        printf("body: %zu bytes, fnv1a %016" PRIx64 "\n", t->body_len, t->digest);
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(e, CURLINFO_HEADER_SIZE, &header_size);
    curl_easy_getinfo(e, CURLINFO_CONDITION_UNMET, &unmet);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &size);
    curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    curl_easy_getinfo(e, CURLINFO_FILETIME_T, &filetime);
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ctype);
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &effective);
    curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &redirect_url);
    curl_easy_getinfo(e, CURLINFO_SCHEME, &scheme);
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    printf("RESPONSE_CODE: %ld\nREDIRECT_COUNT: %ld\nHEADER_SIZE: %ld\nCONDITION_UNMET: %ld\n"
           "HTTP_VERSION: %ld\nSIZE_DOWNLOAD_T: %" CURL_FORMAT_CURL_OFF_T "\n"
           "CONTENT_LENGTH_DOWNLOAD_T: %" CURL_FORMAT_CURL_OFF_T "\n"
           "FILETIME_T: %" CURL_FORMAT_CURL_OFF_T "\n",
           code, redirects, header_size, unmet, version, partial ? (curl_off_t)-2 : size, length,
           filetime);
    print_string("CONTENT_TYPE", ctype);
    print_string("EFFECTIVE_URL", effective);
    print_string("REDIRECT_URL", redirect_url);
    print_string("SCHEME", scheme);
    printf("PRIVATE is the program's pointer: %s\n", priv == t ? "yes" : "no");
    /* libcurl calls the progress callback a timing-dependent number of times: only
     * whether it saw the final size is compared. */
    printf("progress: %s, final %" CURL_FORMAT_CURL_OFF_T "\n",
           t->progress_calls > 0 ? "called" : "never called",
           t->progress_calls > 0 && !partial ? t->progress_now : -1);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- multi_socket_action bookkeeping ---- */
struct SocketState {
    curl_socket_t fds[k_max_sockets];
    int events[k_max_sockets];
    int count;
    long timeout_ms; /* -1: none */
};

static int on_socket(CURL* easy, curl_socket_t s, int what, void* user, void* socketp) {
    struct SocketState* st = user;
    (void)easy;
    (void)socketp;
    for (int i = 0; i < st->count; ++i) {
        if (st->fds[i] == s) {
            if (what == CURL_POLL_REMOVE) {
                st->fds[i] = st->fds[st->count - 1];
                st->events[i] = st->events[st->count - 1];
                st->count--;
            } else {
                st->events[i] = what;
            }
            return 0;
        }
    }
    if (what != CURL_POLL_REMOVE && st->count < k_max_sockets) {
        st->fds[st->count] = s;
        st->events[st->count] = what;
        st->count++;
    }
    return 0;
}

static int on_timer(CURLM* multi, long timeout_ms, void* user) {
    (void)multi;
    ((struct SocketState*)user)->timeout_ms = timeout_ms;
    return 0;
}

/* The program's side of CURL_WRITEFUNC_PAUSE in a multi loop: resume what paused. */
static void unpause(struct Transfer* ts, int n) {
    for (int i = 0; i < n; ++i) {
        if (ts[i].paused_now) {
            ts[i].paused_now = 0;
            curl_easy_pause(ts[i].easy, CURLPAUSE_CONT);
        }
    }
}

static void drain(CURLM* multi) {
    CURLMsg* msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg == CURLMSG_DONE) {
            struct Transfer* t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
            if (t) {
                t->result = msg->data.result;
                t->done = 1;
            }
        }
    }
}

static void run_multi(const char* style, struct Transfer* ts, int n) {
    CURLM* multi = curl_multi_init();
    struct SocketState st = {.count = 0, .timeout_ms = -1};
    int running = 0;
    for (int i = 0; i < n; ++i) {
        curl_multi_add_handle(multi, ts[i].easy);
    }
    double start = now_ms();
    if (strcmp(style, "socket") == 0) {
        curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &st);
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &st);
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        drain(multi);
        unpause(ts, n);
        while (running) {
            struct pollfd pfds[k_max_sockets];
            for (int i = 0; i < st.count; ++i) {
                pfds[i].fd = st.fds[i];
                pfds[i].events = (short)(((st.events[i] & CURL_POLL_IN) ? POLLIN : 0) |
                                         ((st.events[i] & CURL_POLL_OUT) ? POLLOUT : 0));
                pfds[i].revents = 0;
            }
            int wait = st.timeout_ms < 0 ? k_wait_ms : (int)st.timeout_ms;
            int ready = poll(pfds, (nfds_t)st.count, wait);
            if (ready <= 0) {
                curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
            } else {
                for (int i = 0; i < st.count && i < k_max_sockets; ++i) {
                    if (pfds[i].revents) {
                        int mask = ((pfds[i].revents & POLLIN) ? CURL_CSELECT_IN : 0) |
                                   ((pfds[i].revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                                   ((pfds[i].revents & (POLLERR | POLLHUP)) ? CURL_CSELECT_ERR : 0);
                        curl_multi_socket_action(multi, pfds[i].fd, mask, &running);
                    }
                }
            }
            drain(multi);
            unpause(ts, n);
        }
    } else {
        do {
            curl_multi_perform(multi, &running);
            drain(multi);
            unpause(ts, n);
            if (!running) {
                break;
            }
            if (strcmp(style, "wait") == 0) {
                curl_multi_wait(multi, NULL, 0, k_wait_ms, NULL);
            } else if (strcmp(style, "poll") == 0) {
                curl_multi_poll(multi, NULL, 0, k_wait_ms, NULL);
            } else {
                fd_set r, w, x;
                int maxfd = -1;
                long timeout = -1;
                FD_ZERO(&r);
                FD_ZERO(&w);
                FD_ZERO(&x);
                curl_multi_timeout(multi, &timeout);
                curl_multi_fdset(multi, &r, &w, &x, &maxfd);
                if (timeout < 0 || timeout > k_wait_ms) {
                    timeout = k_wait_ms;
                }
                struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
                if (maxfd < 0) {
                    /* libcurl's advice: nothing to wait on, so wait a little (100 ms at
                     * most) before asking again. */
                    if (timeout > 100) {
                        tv.tv_sec = 0;
                        tv.tv_usec = 100000;
                    }
                }
                select(maxfd + 1, &r, &w, &x, &tv);
            }
        } while (running);
        drain(multi);
    }
    double took = now_ms() - start;
    for (int i = 0; i < n; ++i) {
        curl_multi_remove_handle(multi, ts[i].easy);
        if (!ts[i].done) {
            printf("transfer %d never reported done\n", i);
        }
    }
    curl_multi_cleanup(multi);
    if (took > k_slow_ms) {
        printf("the %s loop took longer than %d ms\n", style, k_slow_ms);
    }
}

int main(int argc, char** argv) {
    if (argc < 3 || argc - 2 > k_max_transfers) {
        fprintf(stderr, "usage: multi_client STYLE[,VARIANT...] URL...\n");
        return 2;
    }
    static struct Options options;
    char style[64];
    snprintf(style, sizeof style, "%s", argv[1]);
    char* variants = strchr(style, ',');
    if (variants) {
        *variants++ = '\0';
        for (char* v = strtok(variants, ","); v; v = strtok(NULL, ",")) {
            options.header_in_body |= strcmp(v, "header-in-body") == 0;
            options.abort_write |= strcmp(v, "abort-write") == 0;
            options.abort_header |= strcmp(v, "abort-header") == 0;
            options.abort_progress |= strcmp(v, "abort-progress") == 0;
            options.nofollow |= strcmp(v, "nofollow") == 0;
            options.gzip |= strcmp(v, "gzip") == 0;
            options.headers |= strcmp(v, "headers") == 0;
            options.pause |= strcmp(v, "pause") == 0;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static struct Transfer ts[k_max_transfers];
    int n = argc - 2;
    options.unpause_in_progress = strcmp(style, "easy") == 0 || strcmp(style, "dup") == 0;
    if (strcmp(style, "easy") == 0 || strcmp(style, "dup") == 0) {
        CURL* easy = curl_easy_init();
        if (strcmp(style, "dup") == 0) {
            /* A template that is never performed itself. */
            curl_easy_setopt(easy, CURLOPT_USERAGENT, "multi_client-template");
        }
        for (int i = 0; i < n; ++i) {
            CURL* h = strcmp(style, "dup") == 0 ? curl_easy_duphandle(easy) : easy;
            struct curl_slist* list = NULL;
            setup(&ts[i], h, argv[2 + i], &options);
            if (options.headers) {
                char line[64];
                snprintf(line, sizeof line, "X-Transfer: %d", i);
                list = curl_slist_append(list, line);
                list = curl_slist_append(list, "Accept: */*");
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
            }
            ts[i].result = curl_easy_perform(h);
            ts[i].done = 1;
            curl_slist_free_all(list); /* the handle still points at it until re-set */
            report(&ts[i]);
            if (h != easy) {
                curl_easy_cleanup(h);
            }
        }
        curl_easy_cleanup(easy);
    } else {
        for (int i = 0; i < n; ++i) {
            setup(&ts[i], curl_easy_init(), argv[2 + i], &options);
        }
        run_multi(style, ts, n);
        for (int i = 0; i < n; ++i) {
            report(&ts[i]);
            curl_easy_cleanup(ts[i].easy);
        }
    }
    curl_global_cleanup();
    return 0;
}
