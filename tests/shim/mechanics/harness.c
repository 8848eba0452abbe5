#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static void clear_environment(void) {
    for (;;) {
        char name[256] = "";
        for (char** e = environ; *e != NULL; ++e) {
            if (strncmp(*e, "CURLCACHE_", 10) == 0 || strncmp(*e, "LD_PRELOAD=", 11) == 0) {
                const char* eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof(name)) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (name[0] == '\0') {
            return;
        }
        unsetenv(name);
    }
}

int harness_scratch_make(harness_scratch* scratch) {
    clear_environment();
    const char* tmp = getenv("TMPDIR");
    snprintf(scratch->dir, sizeof(scratch->dir), "%s/curlcache-shim-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(scratch->dir) == NULL) {
        return -1;
    }
    snprintf(scratch->cache, sizeof(scratch->cache), "%s/cache.sqlite", scratch->dir);
    return 0;
}

void harness_scratch_remove(harness_scratch* scratch) {
    if (scratch->dir[0] == '\0') {
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", scratch->dir, (char*)NULL);
        _exit(127);
    }
    if (pid > 0) {
        waitpid(pid, NULL, 0);
    }
    clear_environment();
    scratch->dir[0] = '\0';
}

int harness_run(const harness_scratch* scratch, int preload, const char* const argv[],
                const char* const env[], harness_result* result) {
    memset(result, 0, sizeof(*result));
    int out[2];
    if (pipe(out) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
        }
        setenv("CURLCACHE_BACKEND", "sqlite", 1);
        setenv("CURLCACHE_NAME", scratch->cache, 1);
        if (preload) {
            setenv("LD_PRELOAD", CURLCACHE_SHIM_PATH, 1);
        }
        for (size_t i = 0; env != NULL && env[i] != NULL; ++i) {
            putenv((char*)env[i]);
        }
        execv(argv[0], (char* const*)argv);
        _exit(127);
    }
    close(out[1]);
    for (;;) {
        size_t room = sizeof(result->out) - 1 - result->size;
        char sink[4096];
        ssize_t n = room > 0 ? read(out[0], result->out + result->size, room)
                             : read(out[0], sink, sizeof(sink));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (room > 0) {
            result->size += (size_t)n;
        }
    }
    close(out[0]);
    result->out[result->size] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}

int harness_origin_start(int* port, int* pid) {
    int out[2];
    if (pipe(out) != 0) {
        return -1;
    }
    pid_t child = fork();
    if (child < 0) {
        return -1;
    }
    if (child == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execl(CURLCACHE_PYTHON3, CURLCACHE_PYTHON3, CURLCACHE_MECHANICS_DIR "/origin_counter.py",
              (char*)NULL);
        _exit(127);
    }
    close(out[1]);
    /* The origin prints its port once it listens: wait for that line, never sleep. */
    char line[32] = "";
    size_t used = 0;
    while (used < sizeof(line) - 1) {
        ssize_t n = read(out[0], line + used, 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || line[used] == '\n') {
            break;
        }
        ++used;
    }
    line[used] = '\0';
    close(out[0]);
    *pid = (int)child;
    *port = atoi(line);
    if (*port <= 0) {
        harness_origin_stop(*pid);
        return -1;
    }
    return 0;
}

void harness_origin_stop(int pid) {
    if (pid > 0) {
        kill((pid_t)pid, SIGTERM);
        waitpid((pid_t)pid, NULL, 0);
    }
}

long harness_origin_count(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long count = -1;
    if (connect(fd, (struct sockaddr*)&address, sizeof(address)) == 0) {
        const char request[] = "GET /count HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (write(fd, request, sizeof(request) - 1) == (ssize_t)(sizeof(request) - 1)) {
            char reply[2048];
            size_t used = 0;
            ssize_t n;
            while (used < sizeof(reply) - 1 &&
                   (n = read(fd, reply + used, sizeof(reply) - 1 - used)) > 0) {
                used += (size_t)n;
            }
            reply[used] = '\0';
            const char* body = strstr(reply, "\r\n\r\n");
            if (body != NULL) {
                count = strtol(body + 4, NULL, 10);
            }
        }
    }
    close(fd);
    return count;
}
