#include "shim/resolve.h"

#include "shim/guard.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstring>

namespace curlcache::shim {
namespace {

using core::easy::CurlApi;

Real g_real[k_library_count];
pthread_once_t g_real_once[k_library_count] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                               PTHREAD_ONCE_INIT};

// The load address of this shared object, to refuse our own wrappers as "real".
const void* own_base() {
    static const void* base = [] {
        Dl_info self{};
        dladdr(reinterpret_cast<const void*>(&own_base), &self);
        return static_cast<const void*>(self.dli_fbase);
    }();
    return base;
}

bool is_ours(void* symbol) {
    Dl_info where{};
    return symbol != nullptr && dladdr(symbol, &where) != 0 && where.dli_fbase == own_base();
}

// Where a symbol is looked up: the objects after us in the global scope, or one library.
struct Source {
    void* handle = RTLD_NEXT;
    bool versioned = true;
};

void* lookup(const Source& source, const char* name, const char* version) {
    dlerror();
    void* symbol = source.versioned ? dlvsym(source.handle, name, version) : nullptr;
    if (symbol == nullptr && (!source.versioned || source.handle != RTLD_NEXT)) {
        dlerror();
        symbol = dlsym(source.handle, name);
    }
    return is_ours(symbol) ? nullptr : symbol;
}

Source find_source(Library library) {
    const LibraryInfo& lib = info(library);
    if (lookup(Source{}, "curl_easy_init", lib.version) != nullptr) {
        return Source{};
    }
    // libcurl reached through an RTLD_LOCAL module (pycurl): not in the global scope. The
    // handle is kept open on purpose, so that the library can never be unloaded under us.
    if (void* handle = real_dlopen(lib.soname, RTLD_NOLOAD | RTLD_LAZY)) {
        return Source{handle, true};
    }
    // An unversioned libcurl, bound through our default-version wrappers.
    if (library == Library::openssl &&
        lookup(Source{RTLD_NEXT, false}, "curl_easy_init", nullptr) != nullptr) {
        return Source{RTLD_NEXT, false};
    }
    // A program linked with -lcurlcache-preload -lcurl under --as-needed: the linker found
    // every curl symbol in the shim and dropped libcurl, so nobody loaded it yet.
    if (void* handle = real_dlopen(lib.soname, RTLD_LAZY | RTLD_LOCAL)) {
        return Source{handle, true};
    }
    return Source{nullptr, false};
}

struct CodeSearch {
    std::uintptr_t address;
    CodeRange found;
};

int find_code_range(dl_phdr_info* object, size_t, void* data) {
    auto* search = static_cast<CodeSearch*>(data);
    for (ElfW(Half) i = 0; i < object->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = object->dlpi_phdr[i];
        if (segment.p_type != PT_LOAD || (segment.p_flags & PF_X) == 0) {
            continue;
        }
        const std::uintptr_t begin = object->dlpi_addr + segment.p_vaddr;
        const std::uintptr_t end = begin + segment.p_memsz;
        if (search->address >= begin && search->address < end) {
            search->found = CodeRange{begin, end};
            return 1;
        }
    }
    return 0;
}

template <typename Fn>
void resolve(Fn& slot, const Source& source, const char* name, const char* version) {
    slot = reinterpret_cast<Fn>(lookup(source, name, version));
}

void resolve_library(Library library) {
    Real& r = g_real[static_cast<int>(library)];
    const LibraryInfo& lib = info(library);
    r.api.library = lib.soname;
    const Source source = find_source(library);
    if (source.handle == nullptr) {
        return;
    }
    CurlApi& a = r.api;
    const char* v = lib.version;
    resolve(a.easy_init, source, "curl_easy_init", v);
    resolve(a.easy_setopt, source, "curl_easy_setopt", v);
    resolve(a.easy_perform, source, "curl_easy_perform", v);
    resolve(a.easy_getinfo, source, "curl_easy_getinfo", v);
    resolve(a.easy_cleanup, source, "curl_easy_cleanup", v);
    resolve(a.easy_reset, source, "curl_easy_reset", v);
    resolve(a.easy_duphandle, source, "curl_easy_duphandle", v);
    resolve(a.easy_header, source, "curl_easy_header", v);
    resolve(a.easy_nextheader, source, "curl_easy_nextheader", v);
    resolve(a.easy_strerror, source, "curl_easy_strerror", v);
    resolve(a.multi_add_handle, source, "curl_multi_add_handle", v);
    resolve(a.multi_remove_handle, source, "curl_multi_remove_handle", v);
    resolve(a.multi_perform, source, "curl_multi_perform", v);
    resolve(a.multi_info_read, source, "curl_multi_info_read", v);
    resolve(a.multi_wait, source, "curl_multi_wait", v);
    resolve(a.multi_poll, source, "curl_multi_poll", v);
    resolve(a.multi_fdset, source, "curl_multi_fdset", v);
    resolve(a.multi_timeout, source, "curl_multi_timeout", v);
    resolve(a.multi_socket_action, source, "curl_multi_socket_action", v);
    resolve(a.multi_cleanup, source, "curl_multi_cleanup", v);
    resolve(r.multi_setopt, source, "curl_multi_setopt", v);

    if (a.easy_init != nullptr) {
        // Pin the library: the pointers above must stay valid even if the program dlcloses
        // whatever brought libcurl in (the reference is never dropped).
        Dl_info where{};
        if (dladdr(reinterpret_cast<void*>(a.easy_init), &where) != 0 &&
            where.dli_fname != nullptr) {
            real_dlopen(where.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
        }
        r.code = code_range_of(reinterpret_cast<const void*>(a.easy_init));
    }
}

// pthread_once wants a plain function per library.
template <int I> void resolve_at() {
    resolve_library(static_cast<Library>(I));
}
constexpr void (*k_resolvers[k_library_count])() = {&resolve_at<0>, &resolve_at<1>, &resolve_at<2>};

// ---- the guarded table for the engine -------------------------------------------------

template <Library L, auto Member, typename Fn> struct Guarded;

template <Library L, auto Member, typename R, typename... Args>
struct Guarded<L, Member, R (*)(Args...)> {
    static R call(Args... args) {
        Inside inside;
        return (real(L).api.*Member)(args...);
    }
};

template <Library L> CURLcode guarded_setopt(CURL* handle, CURLoption option, ...) {
    va_list args;
    va_start(args, option);
    Inside inside;
    const CURLcode code = forward_setopt(real(L).api.easy_setopt, handle, option, args);
    va_end(args);
    return code;
}

template <Library L> CURLcode guarded_getinfo(CURL* handle, CURLINFO what, ...) {
    va_list args;
    va_start(args, what);
    void* out = va_arg(args, void*); // every CURLINFO takes one pointer
    va_end(args);
    Inside inside;
    return real(L).api.easy_getinfo(handle, what, out);
}

template <Library L> CurlApi make_engine_api() {
    const CurlApi& r = real(L).api;
    CurlApi a;
    a.library = r.library;
#define CURLCACHE_SHIM_GUARD(member)                                                               \
    a.member = r.member == nullptr                                                                 \
                   ? nullptr                                                                       \
                   : &Guarded<L, &CurlApi::member, decltype(CurlApi::member)>::call
    CURLCACHE_SHIM_GUARD(easy_init);
    CURLCACHE_SHIM_GUARD(easy_perform);
    CURLCACHE_SHIM_GUARD(easy_cleanup);
    CURLCACHE_SHIM_GUARD(easy_reset);
    CURLCACHE_SHIM_GUARD(easy_duphandle);
    CURLCACHE_SHIM_GUARD(easy_header);
    CURLCACHE_SHIM_GUARD(easy_nextheader);
    CURLCACHE_SHIM_GUARD(easy_strerror);
    CURLCACHE_SHIM_GUARD(multi_add_handle);
    CURLCACHE_SHIM_GUARD(multi_remove_handle);
    CURLCACHE_SHIM_GUARD(multi_perform);
    CURLCACHE_SHIM_GUARD(multi_info_read);
    CURLCACHE_SHIM_GUARD(multi_wait);
    CURLCACHE_SHIM_GUARD(multi_poll);
    CURLCACHE_SHIM_GUARD(multi_fdset);
    CURLCACHE_SHIM_GUARD(multi_timeout);
    CURLCACHE_SHIM_GUARD(multi_socket_action);
    CURLCACHE_SHIM_GUARD(multi_cleanup);
#undef CURLCACHE_SHIM_GUARD
    a.easy_setopt = r.easy_setopt == nullptr ? nullptr : &guarded_setopt<L>;
    a.easy_getinfo = r.easy_getinfo == nullptr ? nullptr : &guarded_getinfo<L>;
    return a;
}

CurlApi g_engine_api[k_library_count];
pthread_once_t g_engine_once[k_library_count] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                                 PTHREAD_ONCE_INIT};

template <int I> void make_at() {
    g_engine_api[I] = make_engine_api<static_cast<Library>(I)>();
}
constexpr void (*k_makers[k_library_count])() = {&make_at<0>, &make_at<1>, &make_at<2>};

// ---- dlopen -----------------------------------------------------------------------------

using DlopenFn = void* (*)(const char*, int);
std::atomic<DlopenFn> g_real_dlopen{nullptr};

} // namespace

// Forwards the one variadic argument of curl_easy_setopt with the type its option number
// says (libcurl reads it the same way).
CURLcode forward_setopt(CURLcode (*setopt)(CURL*, CURLoption, ...), CURL* handle, CURLoption option,
                        va_list args) {
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        return setopt(handle, option, va_arg(args, long));
    }
    if (option < CURLOPTTYPE_FUNCTIONPOINT) {
        return setopt(handle, option, va_arg(args, void*));
    }
    if (option < CURLOPTTYPE_OFF_T) {
        using AnyFunction = void (*)();
        return setopt(handle, option, va_arg(args, AnyFunction));
    }
    if (option < CURLOPTTYPE_BLOB) {
        return setopt(handle, option, va_arg(args, curl_off_t));
    }
    return setopt(handle, option, va_arg(args, void*));
}

CodeRange code_range_of(const void* address) noexcept {
    CodeSearch search{reinterpret_cast<std::uintptr_t>(address), {}};
    dl_iterate_phdr(find_code_range, &search);
    return search.found;
}

const Real& real(Library library) noexcept {
    const int i = static_cast<int>(library);
    pthread_once(&g_real_once[i], k_resolvers[i]);
    return g_real[i];
}

const CurlApi& engine_api(Library library) noexcept {
    const int i = static_cast<int>(library);
    pthread_once(&g_engine_once[i], k_makers[i]);
    return g_engine_api[i];
}

void* real_dlopen_function() noexcept {
    DlopenFn fn = g_real_dlopen.load(std::memory_order_acquire);
    if (fn == nullptr) {
        dlerror();
        fn = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
        if (fn == nullptr || is_ours(reinterpret_cast<void*>(fn))) {
            return nullptr;
        }
        g_real_dlopen.store(fn, std::memory_order_release);
    }
    return reinterpret_cast<void*>(fn);
}

void* real_dlopen(const char* file, int mode) noexcept {
    auto fn = reinterpret_cast<DlopenFn>(real_dlopen_function());
    return fn == nullptr ? nullptr : fn(file, mode);
}

void warn_missing(Library library, const char* function) noexcept {
    static std::atomic<bool> warned[k_library_count];
    if (warned[static_cast<int>(library)].exchange(true)) {
        return;
    }
    const char* parts[] = {"curlcache: cannot find the real ", function, " of ",
                           info(library).soname, "; the call fails\n"};
    for (const char* part : parts) {
        ssize_t ignored = write(STDERR_FILENO, part, std::strlen(part));
        (void)ignored;
    }
}

} // namespace curlcache::shim
