/* A program outside the tree that uses an installed curlcache through find_package or
 * pkg-config: it opens a memory cache, stores a response and reads it back. */
#include <curlcache/curlcache.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    const char *settings[] = {"backend=memory", NULL};
    curlcache *cache = NULL;
    curlcache_code rc = curlcache_open(&cache, settings);
    if (rc != CURLCACHE_OK) {
        fprintf(stderr, "open: %s: %s\n", curlcache_strerror(rc), curlcache_errmsg(cache));
        curlcache_close(cache);
        return 1;
    }
    curlcache_request *req = curlcache_request_new("GET", "http://example.invalid/x");
    /* Fresh for a minute by the origin's word: the response headers decide (RFC 9111). */
    const char headers[] = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\r\n";
    rc = curlcache_store(cache, req, headers, strlen(headers), "hello", 5);
    curlcache_entry *entry = NULL;
    if (rc == CURLCACHE_OK) {
        rc = curlcache_lookup(cache, req, &entry);
    }
    const void *body = NULL;
    size_t size = 0;
    if (rc == CURLCACHE_OK) {
        rc = curlcache_entry_body(entry, &body, &size);
    }
    int ok = rc == CURLCACHE_OK && size == 5 && memcmp(body, "hello", 5) == 0;
    printf("curlcache %s: %s\n", curlcache_version(), ok ? "hit" : curlcache_strerror(rc));
    curlcache_entry_free(entry);
    curlcache_request_free(req);
    curlcache_close(cache);
    return ok ? 0 : 1;
}
