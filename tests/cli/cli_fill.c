/* cli_fill: stores entries through the public C API, so that the curlcache command's tests
 * can fill a cache without the preload shim or a server.
 *
 *   cli_fill [KEY=VALUE ...] -- [METHOD] URL STATUS BODY [URL STATUS BODY ...]
 *
 * KEY=VALUE are curlcache_open() settings ("backend=sqlite", "name=/tmp/c.sqlite"). Each
 * URL is stored as a GET (or METHOD when the word before it is all capitals) with the
 * response "HTTP/1.1 STATUS ...", a Content-Type and a Content-Length; BODY is the body
 * text, or "@FILE" for the bytes of FILE. Prints each stored key on stdout. Exit 0 when
 * everything was stored, 1 otherwise (with a message on stderr). */
#include <curlcache/curlcache.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_body(const char* arg, char** data, size_t* size) {
    if (arg[0] != '@') {
        *size = strlen(arg);
        *data = malloc(*size + 1);
        if (*data == NULL) {
            return -1;
        }
        memcpy(*data, arg, *size + 1);
        return 0;
    }
    FILE* file = fopen(arg + 1, "rb");
    if (file == NULL) {
        perror(arg + 1);
        return -1;
    }
    size_t capacity = 65536;
    *size = 0;
    *data = malloc(capacity);
    while (*data != NULL) {
        size_t n = fread(*data + *size, 1, capacity - *size, file);
        *size += n;
        if (*size < capacity) {
            break;
        }
        capacity *= 2;
        char* bigger = realloc(*data, capacity);
        if (bigger == NULL) {
            free(*data);
            *data = NULL;
        }
        *data = bigger;
    }
    fclose(file);
    return *data == NULL ? -1 : 0;
}

static int is_method(const char* word) {
    if (*word == '\0') {
        return 0;
    }
    for (; *word != '\0'; ++word) {
        if (*word < 'A' || *word > 'Z') {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char** argv) {
    const char* settings[64];
    int n = 0;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0 && n < 63; ++i) {
        settings[n++] = argv[i];
    }
    settings[n] = NULL;
    if (i >= argc) {
        fprintf(stderr, "usage: cli_fill [KEY=VALUE ...] -- [METHOD] URL STATUS BODY ...\n");
        return 2;
    }
    ++i;
    curlcache* cache = NULL;
    curlcache_code code = curlcache_open(&cache, settings);
    if (code != CURLCACHE_OK) {
        fprintf(stderr, "cli_fill: open: %s\n", cache ? curlcache_errmsg(cache) : "");
        curlcache_close(cache);
        return 1;
    }
    int status = 0;
    while (i < argc) {
        const char* method = "GET";
        if (is_method(argv[i])) {
            method = argv[i++];
        }
        if (i + 3 > argc) {
            fprintf(stderr, "cli_fill: URL STATUS BODY expected\n");
            status = 2;
            break;
        }
        const char* url = argv[i];
        long http_status = strtol(argv[i + 1], NULL, 10);
        char* body = NULL;
        size_t body_size = 0;
        if (read_body(argv[i + 2], &body, &body_size) != 0) {
            status = 1;
            break;
        }
        i += 3;
        char headers[512];
        int headers_size = snprintf(headers, sizeof headers,
                                    "HTTP/1.1 %ld Test\r\nContent-Type: text/plain\r\n"
                                    "Content-Length: %zu\r\n\r\n",
                                    http_status, body_size);
        curlcache_request* request = curlcache_request_new(method, url);
        char key[33] = "";
        code = request
                   ? curlcache_store(cache, request, headers, (size_t)headers_size, body, body_size)
                   : CURLCACHE_E_OUT_OF_MEMORY;
        if (code == CURLCACHE_OK) {
            code = curlcache_request_key(cache, request, key);
        }
        curlcache_request_free(request);
        free(body);
        if (code != CURLCACHE_OK) {
            fprintf(stderr, "cli_fill: %s: %s (%s)\n", url, curlcache_strerror(code),
                    curlcache_errmsg(cache));
            status = 1;
            break;
        }
        printf("%s\n", key);
    }
    curlcache_close(cache);
    return status;
}
