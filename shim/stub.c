/* The preload stub: libcurlcache-preload.so on x86-64. Every process started under
 * LD_PRELOAD maps it, curl or not, so it is small, plain C (no libstdc++), with no
 * constructors and nothing read at load time. Its exports (shim/preload.map: the libcurl
 * functions once per build, and dlopen) are tail jumps through a table of slots:
 *
 * - The first libcurl call fills the table: it loads the engine, libcurlcache-engine.so from
 *   the stub's own folder (RTLD_LOCAL: none of its symbols enter the program's scope), and
 *   takes its wrappers (curlcache_engine_attach, shim/stub_abi.h).
 * - Under CURLCACHE_DISABLE the engine is never loaded: each slot is filled, at its first
 *   call, with the real libcurl function, so the program runs libcurl's own code.
 * - If the engine cannot be loaded: one warning, then the same pass-through.
 *
 * A jump leaves the caller's return address and every argument register where they were:
 * the engine's wrappers see their caller as if they had been called directly (libcurl calling
 * itself is recognised by it), and the variadic functions keep %al and %xmm0-7. */
#define _GNU_SOURCE
#include "shim/real.h"
#include "shim/stub_abi.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if !defined(__x86_64__)
#error "the preload stub is x86-64 only; elsewhere the shim is built as one library"
#endif

#define HIDDEN __attribute__((visibility("hidden")))

_Static_assert(CURLCACHE_STUB_FUNCTION_COUNT == 20, "the assembly below counts 20 per build");

/* Where each export jumps; 0 until resolved. Read by the assembly without a lock (aligned
 * words, stored once with release order after what they point to is ready). */
HIDDEN void* curlcache_stub_slots[CURLCACHE_STUB_SLOT_COUNT];

/* clang-format off */
#define CURLCACHE_STUB_TRAMPOLINE(library, version, index, name)                                   \
    "    .globl curlcache_stub_" #library "_" #name "\n"                                           \
    "    .type curlcache_stub_" #library "_" #name ", @function\n"                                 \
    "    .symver curlcache_stub_" #library "_" #name ", curl_" #name version "\n"                  \
    "    .p2align 4\n"                                                                             \
    "curlcache_stub_" #library "_" #name ":\n"                                                     \
    "    movq curlcache_stub_slots+8*(20*" #library "+" #index ")(%rip), %r11\n"                   \
    "    testq %r11, %r11\n"                                                                       \
    "    jz 1f\n"                                                                                  \
    "    jmp *%r11\n"                                                                              \
    "1:  movl $(20*" #library "+" #index "), %r11d\n"                                              \
    "    jmp curlcache_stub_slow\n"                                                                \
    "    .size curlcache_stub_" #library "_" #name ", .-curlcache_stub_" #library "_" #name "\n"
#define CURLCACHE_STUB_OPENSSL(index, name, fails)                                                 \
    CURLCACHE_STUB_TRAMPOLINE(0, "@@CURL_OPENSSL_4", index, name)
#define CURLCACHE_STUB_GNUTLS(index, name, fails)                                                  \
    CURLCACHE_STUB_TRAMPOLINE(1, "@CURL_GNUTLS_3", index, name)
#define CURLCACHE_STUB_NSS(index, name, fails)                                                     \
    CURLCACHE_STUB_TRAMPOLINE(2, "@CURL_NSS_3", index, name)

/* The slow path of a trampoline, slot number in %r11d: keeps the argument registers (%rdi,
 * %rsi, %rdx, %rcx, %r8, %r9, %rax for a variadic call's vector count, %xmm0-7) across
 * curlcache_stub_resolve, then jumps where it says. The stack is 16-byte aligned at the call
 * (8 on entry + %rbp + 7 registers + 136). */
__asm__(
    "    .text\n"
    CURLCACHE_STUB_EASY_FUNCTIONS(CURLCACHE_STUB_OPENSSL)
    CURLCACHE_STUB_MULTI_FUNCTIONS(CURLCACHE_STUB_OPENSSL)
    CURLCACHE_STUB_EASY_FUNCTIONS(CURLCACHE_STUB_GNUTLS)
    CURLCACHE_STUB_MULTI_FUNCTIONS(CURLCACHE_STUB_GNUTLS)
    CURLCACHE_STUB_EASY_FUNCTIONS(CURLCACHE_STUB_NSS)
    CURLCACHE_STUB_MULTI_FUNCTIONS(CURLCACHE_STUB_NSS)
    "    .p2align 4\n"
    "    .type curlcache_stub_slow, @function\n"
    "curlcache_stub_slow:\n"
    "    .cfi_startproc\n"
    "    pushq %rbp\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %rbp, 0\n"
    "    movq %rsp, %rbp\n"
    "    .cfi_def_cfa_register %rbp\n"
    "    pushq %rdi\n"
    "    pushq %rsi\n"
    "    pushq %rdx\n"
    "    pushq %rcx\n"
    "    pushq %r8\n"
    "    pushq %r9\n"
    "    pushq %rax\n"
    "    subq $136, %rsp\n"
    "    movaps %xmm0, 0(%rsp)\n"
    "    movaps %xmm1, 16(%rsp)\n"
    "    movaps %xmm2, 32(%rsp)\n"
    "    movaps %xmm3, 48(%rsp)\n"
    "    movaps %xmm4, 64(%rsp)\n"
    "    movaps %xmm5, 80(%rsp)\n"
    "    movaps %xmm6, 96(%rsp)\n"
    "    movaps %xmm7, 112(%rsp)\n"
    "    movl %r11d, %edi\n"
    "    call curlcache_stub_resolve\n"
    "    movq %rax, %r11\n"
    "    movaps 0(%rsp), %xmm0\n"
    "    movaps 16(%rsp), %xmm1\n"
    "    movaps 32(%rsp), %xmm2\n"
    "    movaps 48(%rsp), %xmm3\n"
    "    movaps 64(%rsp), %xmm4\n"
    "    movaps 80(%rsp), %xmm5\n"
    "    movaps 96(%rsp), %xmm6\n"
    "    movaps 112(%rsp), %xmm7\n"
    "    addq $136, %rsp\n"
    "    popq %rax\n"
    "    popq %r9\n"
    "    popq %r8\n"
    "    popq %rcx\n"
    "    popq %rdx\n"
    "    popq %rsi\n"
    "    popq %rdi\n"
    "    popq %rbp\n"
    "    .cfi_def_cfa %rsp, 8\n"
    "    jmp *%r11\n"
    "    .cfi_endproc\n"
    "    .size curlcache_stub_slow, .-curlcache_stub_slow\n");
/* clang-format on */

/* What a pass-through slot runs when libcurl lacks the function (or is not loaded): the
 * wrappers' answers in that case (shim/easy.cpp, shim/multi.cpp). */
static intptr_t fail_null(void) {
    return 0;
}
static intptr_t fail_easy(void) {
    return CURLE_FAILED_INIT;
}
static intptr_t fail_multi(void) {
    return CURLM_INTERNAL_ERROR;
}
static intptr_t fail_header(void) {
    return CURLHE_NOT_BUILT_IN;
}
static intptr_t fail_quiet(void) {
    return 0;
}

#define CURLCACHE_STUB_NAME(index, name, fails) "curl_" #name,
static const char* const k_names[CURLCACHE_STUB_FUNCTION_COUNT] = {
    CURLCACHE_STUB_EASY_FUNCTIONS(CURLCACHE_STUB_NAME)
        CURLCACHE_STUB_MULTI_FUNCTIONS(CURLCACHE_STUB_NAME)};
#define CURLCACHE_STUB_FAIL(index, name, fails) &fail_##fails,
static intptr_t (*const k_fails[CURLCACHE_STUB_FUNCTION_COUNT])(void) = {
    CURLCACHE_STUB_EASY_FUNCTIONS(CURLCACHE_STUB_FAIL)
        CURLCACHE_STUB_MULTI_FUNCTIONS(CURLCACHE_STUB_FAIL)};

HIDDEN void* curlcache_stub_resolve(unsigned slot);

/* The engine's path: its file name in the folder the stub was loaded from (or, for a stub
 * found by bare name, the same search). */
static void engine_path(char* path, size_t size) {
    Dl_info self;
    const char* stub = NULL;
    if (dladdr((const void*)&curlcache_stub_resolve, &self) != 0) {
        stub = self.dli_fname;
    }
    const char* slash = stub != NULL ? strrchr(stub, '/') : NULL;
    const size_t folder = slash != NULL ? (size_t)(slash - stub) + 1 : 0;
    const size_t name = sizeof CURLCACHE_ENGINE_FILE;
    if (folder + name > size) {
        path[0] = '\0';
        return;
    }
    memcpy(path, stub, folder);
    memcpy(path + folder, CURLCACHE_ENGINE_FILE, name);
}

static void load_engine(void) {
    if (curlcache_shim_disabled()) {
        return;
    }
    char path[4096];
    engine_path(path, sizeof path);
    static const struct curlcache_stub_services services = {
        sizeof(struct curlcache_stub_services), &curlcache_shim_real_function,
        &curlcache_shim_real_dlopen};
    static void* entries[CURLCACHE_STUB_SLOT_COUNT];
    const char* why = NULL;
    void* engine = path[0] != '\0' ? curlcache_shim_real_dlopen(path, RTLD_LAZY | RTLD_LOCAL) : NULL;
    if (engine == NULL) {
        why = path[0] != '\0' ? dlerror() : "path too long";
    } else {
        dlerror();
        const curlcache_engine_attach_fn attach =
            (curlcache_engine_attach_fn)dlsym(engine, CURLCACHE_ENGINE_ATTACH);
        if (attach == NULL) {
            why = dlerror();
        } else if (attach(&services, entries, CURLCACHE_STUB_SLOT_COUNT) != 0) {
            why = "it does not match this libcurlcache-preload.so";
        }
    }
    if (why != NULL) {
        const char* line[] = {"curlcache: cannot load the engine ", path, " (",
                              why != NULL ? why : "unknown error",
                              "); libcurl calls pass through uncached", NULL};
        curlcache_shim_warn(line);
        return; /* a loaded but unusable engine stays: unloading it could run its code */
    }
    for (unsigned slot = 0; slot < CURLCACHE_STUB_SLOT_COUNT; ++slot) {
        __atomic_store_n(&curlcache_stub_slots[slot], entries[slot], __ATOMIC_RELEASE);
    }
}

static pthread_once_t g_load_once = PTHREAD_ONCE_INIT;

/* Called by the slow path: what slot `slot` jumps to from now on. */
HIDDEN void* curlcache_stub_resolve(unsigned slot) {
    pthread_once(&g_load_once, load_engine);
    if (slot >= CURLCACHE_STUB_SLOT_COUNT) {
        return (void*)&fail_null; /* cannot happen: the assembly passes its own number */
    }
    void* target = __atomic_load_n(&curlcache_stub_slots[slot], __ATOMIC_ACQUIRE);
    if (target != NULL) {
        return target;
    }
    {
        /* Pass-through (disabled, or no engine): libcurl's own function. */
        const int library = (int)(slot / CURLCACHE_STUB_FUNCTION_COUNT);
        const unsigned index = slot % CURLCACHE_STUB_FUNCTION_COUNT;
        target = curlcache_shim_real_function(library, k_names[index]);
        if (target == NULL) {
            target = (void*)k_fails[index];
            static int warned[CURLCACHE_SHIM_LIBRARY_COUNT];
            /* header lookups answer "not built in" quietly, as the wrappers do */
            if (k_fails[index] != &fail_header && k_fails[index] != &fail_quiet &&
                !__atomic_exchange_n(&warned[library], 1, __ATOMIC_RELAXED)) {
                const char* line[] = {"curlcache: cannot find the real ", k_names[index], " of ",
                                      curlcache_shim_libraries[library].soname,
                                      "; the call fails", NULL};
                curlcache_shim_warn(line);
            }
        }
    }
    __atomic_store_n(&curlcache_stub_slots[slot], target, __ATOMIC_RELEASE);
    return target;
}
