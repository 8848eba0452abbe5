/* Finding the real libcurl functions and libc's dlopen (shim/real.h). Plain C: it runs in
 * the preload stub, which must not bring libstdc++ into every process. */
#define _GNU_SOURCE
#include "shim/real.h"

#include <ctype.h>
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN const struct curlcache_shim_library curlcache_shim_libraries[CURLCACHE_SHIM_LIBRARY_COUNT] = {
    {"CURL_OPENSSL_4", "libcurl.so.4"},
    {"CURL_GNUTLS_3", "libcurl-gnutls.so.4"},
    {"CURL_NSS_3", "libcurl-nss.so.4"},
};

/* This object's extent (linker-defined): a lookup that lands in it found our own wrapper. */
extern const char __ehdr_start[] HIDDEN;
extern const char _end[] HIDDEN;

static int is_ours(const void* symbol) {
    const uintptr_t at = (uintptr_t)symbol;
    return at >= (uintptr_t)__ehdr_start && at < (uintptr_t)_end;
}

/* Where a build's functions are looked up: the objects after us in the global scope, or one
 * library's handle; versioned (dlvsym) or not. handle NULL: the build is not there. */
struct source {
    void* handle;
    int versioned;
};

static void* lookup(struct source source, const char* name, const char* version) {
    dlerror();
    void* symbol = source.versioned ? dlvsym(source.handle, name, version) : NULL;
    if (symbol == NULL && (!source.versioned || source.handle != RTLD_NEXT)) {
        dlerror();
        symbol = dlsym(source.handle, name);
    }
    return is_ours(symbol) ? NULL : symbol;
}

static struct source find_source(int library) {
    const struct curlcache_shim_library* lib = &curlcache_shim_libraries[library];
    const struct source next = {RTLD_NEXT, 1};
    if (lookup(next, "curl_easy_init", lib->version) != NULL) {
        return next;
    }
    /* libcurl reached through an RTLD_LOCAL module (pycurl): not in the global scope. The
     * handle is kept open on purpose, so that the library can never be unloaded under us. */
    void* handle = curlcache_shim_real_dlopen(lib->soname, RTLD_NOLOAD | RTLD_LAZY);
    if (handle != NULL) {
        return (struct source){handle, 1};
    }
    /* An unversioned libcurl, bound through our default-version wrappers. */
    const struct source unversioned = {RTLD_NEXT, 0};
    if (library == 0 && lookup(unversioned, "curl_easy_init", NULL) != NULL) {
        return unversioned;
    }
    /* A program linked with -lcurlcache-preload -lcurl under --as-needed: the linker found
     * every curl symbol in the shim and dropped libcurl, so nobody loaded it yet. */
    handle = curlcache_shim_real_dlopen(lib->soname, RTLD_LAZY | RTLD_LOCAL);
    if (handle != NULL) {
        return (struct source){handle, 1};
    }
    return (struct source){NULL, 0};
}

static struct source g_sources[CURLCACHE_SHIM_LIBRARY_COUNT];
static pthread_once_t g_source_once[CURLCACHE_SHIM_LIBRARY_COUNT] = {
    PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

struct needed_search {
    const char* file; /* the base name looked for */
    int found;
};

/* dl_iterate_phdr callback, stops at the first object (the program): is search->file one of
 * its DT_NEEDED entries? */
static int search_program(struct dl_phdr_info* object, size_t size, void* data) {
    (void)size;
    struct needed_search* search = data;
    const ElfW(Dyn)* dynamic = NULL;
    for (ElfW(Half) i = 0; i < object->dlpi_phnum; ++i) {
        if (object->dlpi_phdr[i].p_type == PT_DYNAMIC) {
            dynamic = (const ElfW(Dyn)*)(object->dlpi_addr + object->dlpi_phdr[i].p_vaddr);
        }
    }
    const char* strings = NULL;
    for (const ElfW(Dyn)* d = dynamic; d != NULL && d->d_tag != DT_NULL; ++d) {
        if (d->d_tag == DT_STRTAB) {
            /* the loader may have relocated it in place, or not */
            uintptr_t at = d->d_un.d_ptr;
            strings = (const char*)(at < object->dlpi_addr ? at + object->dlpi_addr : at);
        }
    }
    for (const ElfW(Dyn)* d = dynamic; strings != NULL && d->d_tag != DT_NULL; ++d) {
        if (d->d_tag == DT_NEEDED && strcmp(strings + d->d_un.d_val, search->file) == 0) {
            search->found = 1;
        }
    }
    return 1;
}

/* Whether the program itself names `path`'s file as DT_NEEDED: then the library is one of the
 * initial objects, which are never unloaded. */
static int needed_by_program(const char* path) {
    const char* slash = strrchr(path, '/');
    struct needed_search search = {slash != NULL ? slash + 1 : path, 0};
    dl_iterate_phdr(search_program, &search);
    return search.found;
}

static void settle(int library) {
    struct source source = find_source(library);
    if (source.handle == RTLD_NEXT) {
        /* Pin the library: the pointers handed out must stay valid even if the program
         * dlcloses whatever brought libcurl in (the reference is never dropped). Not needed
         * for a library the program itself needs (the curl CLI's): that dlopen would cost
         * ~200k instructions, building the search list of libcurl's 30 dependencies. */
        void* init = lookup(source, "curl_easy_init", curlcache_shim_libraries[library].version);
        Dl_info where;
        if (init != NULL && dladdr(init, &where) != 0 && where.dli_fname != NULL &&
            !needed_by_program(where.dli_fname)) {
            curlcache_shim_real_dlopen(where.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
        }
    }
    g_sources[library] = source;
}

static void settle_0(void) {
    settle(0);
}
static void settle_1(void) {
    settle(1);
}
static void settle_2(void) {
    settle(2);
}
static void (*const k_settlers[CURLCACHE_SHIM_LIBRARY_COUNT])(void) = {settle_0, settle_1,
                                                                        settle_2};

HIDDEN void* curlcache_shim_real_function(int library, const char* name) {
    if (library < 0 || library >= CURLCACHE_SHIM_LIBRARY_COUNT) {
        return NULL;
    }
    pthread_once(&g_source_once[library], k_settlers[library]);
    const struct source source = g_sources[library];
    if (source.handle == NULL) {
        return NULL;
    }
    return lookup(source, name, curlcache_shim_libraries[library].version);
}

typedef void* (*dlopen_fn)(const char*, int);
static dlopen_fn g_real_dlopen;

HIDDEN void* curlcache_shim_real_dlopen_function(void) {
    dlopen_fn fn = __atomic_load_n(&g_real_dlopen, __ATOMIC_ACQUIRE);
    if (fn == NULL) {
        dlerror();
        void* found = dlsym(RTLD_NEXT, "dlopen");
        if (found == NULL || is_ours(found)) {
            return NULL;
        }
        fn = (dlopen_fn)found;
        __atomic_store_n(&g_real_dlopen, fn, __ATOMIC_RELEASE);
    }
    return (void*)fn;
}

HIDDEN void* curlcache_shim_real_dlopen(const char* file, int mode) {
    dlopen_fn fn = (dlopen_fn)curlcache_shim_real_dlopen_function();
    return fn == NULL ? NULL : fn(file, mode);
}

static pthread_once_t g_disabled_once = PTHREAD_ONCE_INIT;
static int g_disabled;

static void read_disabled(void) {
    const char* value = getenv("CURLCACHE_DISABLE");
    if (value == NULL) {
        return;
    }
    while (isspace((unsigned char)*value)) {
        ++value;
    }
    size_t length = strlen(value);
    while (length > 0 && isspace((unsigned char)value[length - 1])) {
        --length;
    }
    static const char* const k_yes[] = {"1", "true", "yes", "on"};
    for (size_t i = 0; i < sizeof k_yes / sizeof k_yes[0]; ++i) {
        if (length == strlen(k_yes[i]) && strncasecmp(value, k_yes[i], length) == 0) {
            g_disabled = 1;
        }
    }
}

HIDDEN int curlcache_shim_disabled(void) {
    pthread_once(&g_disabled_once, read_disabled);
    return g_disabled;
}

HIDDEN void curlcache_shim_warn(const char* const* pieces) {
    char line[512];
    size_t used = 0;
    for (; *pieces != NULL; ++pieces) {
        const size_t length = strlen(*pieces);
        const size_t room = sizeof line - 1 - used;
        const size_t take = length < room ? length : room;
        memcpy(line + used, *pieces, take);
        used += take;
    }
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored;
}
