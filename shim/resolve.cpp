#include "shim/resolve.h"

#include "shim/guard.h"
#include "shim/real.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <atomic>
#include <cstdarg>

namespace curlcache::shim {
namespace {

using core::easy::CurlApi;

using detail::g_real;
pthread_once_t g_real_once[k_library_count] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                               PTHREAD_ONCE_INIT};

// The lookups: this library's own (shim/real.c), or, in the engine, the stub's, lent by
// curlcache_engine_attach before any wrapper runs (shim/engine_entry.cpp).
curlcache_stub_services g_services = {sizeof(curlcache_stub_services),
                                      &curlcache_shim_real_function, &curlcache_shim_real_dlopen};

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

void resolve_library(Library library) {
    Real& r = g_real[static_cast<int>(library)];
    r.api.library = info(library).soname;
    const auto resolve = [library]<typename Fn>(Fn& slot, const char* name) {
        slot = reinterpret_cast<Fn>(g_services.real_function(static_cast<int>(library), name));
    };
    CurlApi& a = r.api;
    resolve(a.easy_init, "curl_easy_init");
    resolve(a.easy_setopt, "curl_easy_setopt");
    resolve(a.easy_perform, "curl_easy_perform");
    resolve(a.easy_getinfo, "curl_easy_getinfo");
    resolve(a.easy_cleanup, "curl_easy_cleanup");
    resolve(a.easy_reset, "curl_easy_reset");
    resolve(a.easy_duphandle, "curl_easy_duphandle");
    resolve(a.easy_header, "curl_easy_header");
    resolve(a.easy_nextheader, "curl_easy_nextheader");
    resolve(a.easy_strerror, "curl_easy_strerror");
    resolve(a.multi_add_handle, "curl_multi_add_handle");
    resolve(a.multi_remove_handle, "curl_multi_remove_handle");
    resolve(a.multi_perform, "curl_multi_perform");
    resolve(a.multi_info_read, "curl_multi_info_read");
    resolve(a.multi_wait, "curl_multi_wait");
    resolve(a.multi_poll, "curl_multi_poll");
    resolve(a.multi_fdset, "curl_multi_fdset");
    resolve(a.multi_timeout, "curl_multi_timeout");
    resolve(a.multi_socket_action, "curl_multi_socket_action");
    resolve(a.multi_cleanup, "curl_multi_cleanup");
    resolve(r.multi_setopt, "curl_multi_setopt");
    if (a.easy_init != nullptr) {
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

using detail::g_engine_api;
pthread_once_t g_engine_once[k_library_count] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                                 PTHREAD_ONCE_INIT};

template <int I> void make_at() {
    g_engine_api[I] = make_engine_api<static_cast<Library>(I)>();
}
constexpr void (*k_makers[k_library_count])() = {&make_at<0>, &make_at<1>, &make_at<2>};

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

namespace detail {

Real g_real[k_library_count];
std::atomic<bool> g_real_ready[k_library_count];
core::easy::CurlApi g_engine_api[k_library_count];
std::atomic<bool> g_engine_ready[k_library_count];

const Real& make_real(Library library) noexcept {
    const int i = static_cast<int>(library);
    pthread_once(&g_real_once[i], k_resolvers[i]);
    g_real_ready[i].store(true, std::memory_order_release);
    return g_real[i];
}

const core::easy::CurlApi& make_engine_api(Library library) noexcept {
    const int i = static_cast<int>(library);
    pthread_once(&g_engine_once[i], k_makers[i]);
    g_engine_ready[i].store(true, std::memory_order_release);
    return g_engine_api[i];
}

} // namespace detail

void* real_dlopen(const char* file, int mode) noexcept {
    return g_services.real_dlopen(file, mode);
}

void use_stub_services(const curlcache_stub_services& services) noexcept {
    g_services = services;
}

void warn_missing(Library library, const char* function) noexcept {
    static std::atomic<bool> warned[k_library_count];
    if (warned[static_cast<int>(library)].exchange(true)) {
        return;
    }
    const char* line[] = {"curlcache: cannot find the real ", function, " of ",
                          info(library).soname, "; the call fails", nullptr};
    curlcache_shim_warn(line);
}

} // namespace curlcache::shim
