/*
 * sqlite_client: a libcurl program that uses SQLite itself, in one process, as Python, PHP,
 * R and GDAL do. Run by program_sqlite.py with and without the shim: the shim's engine has
 * its own, private SQLite (linked in statically and hidden, then configured with its own
 * allocator and no memory statistics: backends/sqlite_private.cpp). None of that may reach
 * the program's SQLite: the program's configuration calls must still succeed after the
 * transfers, its allocator must see none of the engine's allocations, and its memory
 * statistics must stay on.
 *
 *   sqlite_client MODE[,sabotage] URL...
 *
 * MODE: plain  the program leaves SQLite's configuration alone until after the transfers;
 *       count  before any libcurl call it installs a counting SQLITE_CONFIG_MALLOC (which
 *              forwards to SQLite's default methods, from SQLITE_CONFIG_GETMALLOC) and
 *              SQLITE_CONFIG_MEMSTATUS 1.
 * sabotage (program_sqlite.py --self-check): right after the first transfer, the program
 *       does to its own SQLite what an engine sharing it would do: SQLITE_CONFIG_MEMSTATUS 0,
 *       sqlite3_initialize(), one allocation. The facts below then differ.
 *
 * The URLs are performed on one reused easy handle (a second run under the shim is a hit);
 * each prints its CURLcode, status, body size and FNV-1a digest. Then the facts, as lines
 * that are the same in every run (no pointers, no timings):
 *   - the program's SQLite allocations outstanding and memory in use, unchanged across the
 *     transfers (nobody else allocated through the program's SQLite);
 *   - count mode: the counting allocator called during the transfers: never;
 *   - sqlite3_config(SQLITE_CONFIG_MULTITHREAD) after the transfers: 0 (SQLITE_OK: nobody
 *     initialised the program's SQLite);
 *   - a table in :memory: created, filled and read back;
 *   - sqlite3_memory_used() > 0 (memory statistics still on);
 *   - count mode: the counting allocator called during that work (it is still installed).
 */
#include <curl/curl.h>
#include <sqlite3.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { k_max_urls = 16 };

/* ---- the program's own counting allocator ---- */
static sqlite3_mem_methods g_default;
static unsigned long g_calls; /* xMalloc, xFree and xRealloc calls */

static void* count_malloc(int n) {
    g_calls++;
    return g_default.xMalloc(n);
}
static void count_free(void* p) {
    g_calls++;
    g_default.xFree(p);
}
static void* count_realloc(void* p, int n) {
    g_calls++;
    return g_default.xRealloc(p, n);
}
static int count_size(void* p) {
    return g_default.xSize(p);
}
static int count_roundup(int n) {
    return g_default.xRoundup(n);
}
static int count_init(void* app) {
    return g_default.xInit(app);
}
static void count_shutdown(void* app) {
    g_default.xShutdown(app);
}

static void configure_counting(void) {
    static sqlite3_mem_methods counting;
    printf("config GETMALLOC before the transfers: %d\n",
           sqlite3_config(SQLITE_CONFIG_GETMALLOC, &g_default));
    counting = (sqlite3_mem_methods){count_malloc,  count_free, count_realloc,  count_size,
                                     count_roundup, count_init, count_shutdown, g_default.pAppData};
    printf("config MALLOC (counting) before the transfers: %d\n",
           sqlite3_config(SQLITE_CONFIG_MALLOC, &counting));
    printf("config MEMSTATUS 1 before the transfers: %d\n",
           sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1));
}

/* What a shim that shared the program's SQLite would do to it (backends/sqlite_private.cpp,
 * then its first database). */
static void sabotage(void) {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
    sqlite3_free(sqlite3_malloc(64));
}

/* ---- the transfers ---- */
struct Body {
    size_t len;
    uint64_t digest;
};

static size_t on_write(char* data, size_t size, size_t n, void* user) {
    struct Body* b = user;
    size_t len = size * n;
    for (size_t i = 0; i < len; ++i) {
        b->digest = (b->digest ^ (unsigned char)data[i]) * 1099511628211ull;
    }
    b->len += len;
    return len;
}

static void transfer(CURL* easy, const char* url) {
    struct Body body = {0, 14695981039346656037ull};
    long status = -1;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    printf("== %s\nresult: %d (%s)\nRESPONSE_CODE: %ld\nbody: %zu bytes, fnv1a %016" PRIx64 "\n",
           url, (int)rc, curl_easy_strerror(rc), status, body.len, body.digest);
}

/* ---- the program's own SQLite work, after the transfers ---- */
static int print_row(void* user, int n, char** values, char** names) {
    (void)user;
    printf("row:");
    for (int i = 0; i < n; ++i) {
        printf(" %s=%s", names[i], values[i] ? values[i] : "NULL");
    }
    printf("\n");
    return 0;
}

static int use_sqlite(void) {
    sqlite3* db = NULL;
    int rc = sqlite3_open(":memory:", &db);
    printf("open :memory:: %d\n", rc);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return 1;
    }
    static const char* const steps[] = {
        "CREATE TABLE fruit(id INTEGER PRIMARY KEY, name TEXT, weight REAL)",
        "INSERT INTO fruit(name, weight) VALUES ('apple', 0.2), ('pear', 0.25), ('fig', 0.05)",
        "UPDATE fruit SET weight = weight * 2 WHERE name = 'fig'",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; ++i) {
        char* error = NULL;
        rc = sqlite3_exec(db, steps[i], NULL, NULL, &error);
        printf("exec %zu: %d%s%s\n", i, rc, error ? " " : "", error ? error : "");
        sqlite3_free(error);
    }
    rc = sqlite3_exec(db, "SELECT id, name, weight FROM fruit ORDER BY id", print_row, NULL, NULL);
    printf("select: %d\n", rc);
    printf("changes: %d\n", sqlite3_total_changes(db));
    printf("sqlite3_memory_used() > 0 with a database open: %s\n",
           sqlite3_memory_used() > 0 ? "yes" : "no");
    printf("close: %d\n", sqlite3_close(db));
    return 0;
}

static sqlite3_int64 outstanding_allocations(void) {
    sqlite3_int64 now = -1, highwater = -1;
    sqlite3_status64(SQLITE_STATUS_MALLOC_COUNT, &now, &highwater, 0);
    return now;
}

static void report_change(const char* what, sqlite3_int64 before, sqlite3_int64 after) {
    if (before == after) {
        printf("%s across the transfers: unchanged\n", what);
    } else {
        printf("%s across the transfers: changed (%lld -> %lld)\n", what, (long long)before,
               (long long)after);
    }
}

int main(int argc, char** argv) {
    if (argc < 3 || argc - 2 > k_max_urls) {
        fprintf(stderr, "usage: sqlite_client plain|count[,sabotage] URL...\n");
        return 2;
    }
    int count = strncmp(argv[1], "count", 5) == 0;
    int sabotaging = strstr(argv[1], ",sabotage") != NULL;
    /* The program's library, by the calls the program makes (not the engine's copy). */
    printf("sqlite: %s %s\n", sqlite3_libversion(), sqlite3_sourceid());
    if (count) {
        configure_counting();
    }
    sqlite3_int64 allocations = outstanding_allocations();
    sqlite3_int64 used = sqlite3_memory_used();
    unsigned long calls = g_calls;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL* easy = curl_easy_init();
    for (int i = 2; i < argc; ++i) {
        transfer(easy, argv[i]);
        if (sabotaging && i == 2) {
            sabotage();
        }
    }
    curl_easy_cleanup(easy);

    sqlite3_int64 allocations_after = outstanding_allocations();
    sqlite3_int64 used_after = sqlite3_memory_used();
    /* The figures only when they differ: they are not the same from run to run then. */
    report_change("SQLite allocations outstanding", allocations, allocations_after);
    report_change("sqlite3_memory_used()", used, used_after);
    if (count) {
        printf("counting allocator called during the transfers: %s\n",
               g_calls == calls ? "never" : "yes");
    }
    printf("config MULTITHREAD after the transfers: %d\n",
           sqlite3_config(SQLITE_CONFIG_MULTITHREAD));
    calls = g_calls;
    int failed = use_sqlite();
    if (count) {
        printf("counting allocator called during the program's own SQLite work: %s\n",
               g_calls != calls ? "yes" : "never");
    }
    printf("sqlite3_shutdown: %d\n", sqlite3_shutdown());
    curl_global_cleanup();
    return failed;
}
