// The curl_easy_* wrappers: pass through for libcurl's own calls (and CURLCACHE_DISABLE),
// otherwise hand the call to the engine with the guarded table of the caller's library.
// init/setopt/reset/cleanup/duphandle reach the engine from a program's callback too (see
// pass_through_handle_call); perform/getinfo/header made there pass through.
// Exceptions never leave a wrapper: should the engine throw, the call passes through.
#include "core/easy/engine.h"
#include "core/easy/handle_state.h"
#include "shim/guard.h"
#include "shim/library.h"
#include "shim/multi.h"
#include "shim/resolve.h"

#include <cstdarg>

namespace curlcache::shim {
namespace {

namespace engine = core::easy;

CURLcode real_setopt(const Real& r, CURL* handle, CURLoption option, va_list args) {
    Inside inside;
    return forward_setopt(r.api.easy_setopt, handle, option, args);
}

template <Library L> CURL* easy_init(const void* caller) noexcept {
    const Real& r = real(L);
    if (r.api.easy_init == nullptr) {
        warn_missing(L, "curl_easy_init");
        return nullptr;
    }
    if (!pass_through_handle_call(L, caller)) {
        try {
            return engine::easy_init(engine_api(L));
        } catch (...) {
        }
    }
    Inside inside;
    return r.api.easy_init();
}

template <Library L>
CURLcode easy_setopt(const void* caller, CURL* handle, CURLoption option, va_list args) noexcept {
    const Real& r = real(L);
    if (r.api.easy_setopt == nullptr) {
        warn_missing(L, "curl_easy_setopt");
        return CURLE_FAILED_INIT;
    }
    if (!pass_through_handle_call(L, caller)) {
        va_list copy;
        va_copy(copy, args);
        try {
            const CURLcode code = engine::easy_setopt(engine_api(L), handle, option, copy);
            va_end(copy);
            return code;
        } catch (...) {
        }
        va_end(copy);
    }
    return real_setopt(r, handle, option, args);
}

template <Library L> CURLcode easy_perform(const void* caller, CURL* handle) noexcept {
    const Real& r = real(L);
    if (r.api.easy_perform == nullptr) {
        warn_missing(L, "curl_easy_perform");
        return CURLE_FAILED_INIT;
    }
    if (!pass_through(L, caller)) {
        try {
            CurrentTransfer current(handle);
            return engine::easy_perform(engine_api(L), handle);
        } catch (...) {
        }
    }
    Inside inside;
    return r.api.easy_perform(handle);
}

template <Library L>
CURLcode easy_getinfo(const void* caller, CURL* handle, CURLINFO what, va_list args) noexcept {
    const Real& r = real(L);
    if (r.api.easy_getinfo == nullptr) {
        warn_missing(L, "curl_easy_getinfo");
        return CURLE_FAILED_INIT;
    }
    if (!pass_through(L, caller)) {
        va_list copy;
        va_copy(copy, args);
        try {
            const CURLcode code = engine::easy_getinfo(engine_api(L), handle, what, copy);
            va_end(copy);
            return code;
        } catch (...) {
        }
        va_end(copy);
    }
    void* out = va_arg(args, void*); // every CURLINFO takes one pointer
    Inside inside;
    return r.api.easy_getinfo(handle, what, out);
}

template <Library L> void easy_cleanup(const void* caller, CURL* handle) noexcept {
    const Real& r = real(L);
    if (r.api.easy_cleanup == nullptr) {
        warn_missing(L, "curl_easy_cleanup");
        return;
    }
    if (!pass_through_handle_call(L, caller) && !in_use_by_engine(handle)) {
        try {
            // libcurl takes a handle out of its multi on cleanup; so does the shim.
            multi_forget_easy(L, handle);
            engine::easy_cleanup(engine_api(L), handle);
            return;
        } catch (...) {
        }
    }
    Inside inside;
    r.api.easy_cleanup(handle);
}

template <Library L> void easy_reset(const void* caller, CURL* handle) noexcept {
    const Real& r = real(L);
    if (r.api.easy_reset == nullptr) {
        warn_missing(L, "curl_easy_reset");
        return;
    }
    if (!pass_through_handle_call(L, caller)) {
        try {
            if (in_use_by_engine(handle)) {
                // Its own callback: the state stays under the engine's frames.
                {
                    Inside inside;
                    r.api.easy_reset(handle);
                }
                engine::reset_options_during_transfer(handle);
                return;
            }
            engine::easy_reset(engine_api(L), handle);
            return;
        } catch (...) {
        }
    }
    Inside inside;
    r.api.easy_reset(handle);
}

template <Library L> CURL* easy_duphandle(const void* caller, CURL* handle) noexcept {
    const Real& r = real(L);
    if (r.api.easy_duphandle == nullptr) {
        warn_missing(L, "curl_easy_duphandle");
        return nullptr;
    }
    if (!pass_through_handle_call(L, caller)) {
        try {
            return engine::easy_duphandle(engine_api(L), handle);
        } catch (...) {
        }
    }
    Inside inside;
    return r.api.easy_duphandle(handle);
}

template <Library L>
CURLHcode easy_header(const void* caller, CURL* handle, const char* name, size_t index,
                      unsigned int origin, int request, curl_header** hout) noexcept {
    const Real& r = real(L);
    if (!pass_through(L, caller)) {
        try {
            return engine::easy_header(engine_api(L), handle, name, index, origin, request, hout);
        } catch (...) {
        }
    }
    if (r.api.easy_header == nullptr) {
        return CURLHE_NOT_BUILT_IN;
    }
    Inside inside;
    return r.api.easy_header(handle, name, index, origin, request, hout);
}

template <Library L>
curl_header* easy_nextheader(const void* caller, CURL* handle, unsigned int origin, int request,
                             curl_header* prev) noexcept {
    const Real& r = real(L);
    if (!pass_through(L, caller)) {
        try {
            return engine::easy_nextheader(engine_api(L), handle, origin, request, prev);
        } catch (...) {
        }
    }
    if (r.api.easy_nextheader == nullptr) {
        return nullptr;
    }
    Inside inside;
    return r.api.easy_nextheader(handle, origin, request, prev);
}

} // namespace
} // namespace curlcache::shim

// The exported entry points, one set per libcurl build. Each takes its own return address
// (libcurl calling itself is recognised by it) and forwards to the templates above.
#define CURLCACHE_SHIM_EASY(tag, L)                                                                \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_init)                                                     \
    CURL* curlcache_shim_##tag##_easy_init() noexcept {                                            \
        return curlcache::shim::easy_init<L>(__builtin_return_address(0));                         \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_setopt)                                                   \
    CURLcode curlcache_shim_##tag##_easy_setopt(CURL* handle, CURLoption option, ...) noexcept {   \
        va_list args;                                                                              \
        va_start(args, option);                                                                    \
        const CURLcode code =                                                                      \
            curlcache::shim::easy_setopt<L>(__builtin_return_address(0), handle, option, args);    \
        va_end(args);                                                                              \
        return code;                                                                               \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_perform)                                                  \
    CURLcode curlcache_shim_##tag##_easy_perform(CURL* handle) noexcept {                          \
        return curlcache::shim::easy_perform<L>(__builtin_return_address(0), handle);              \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_getinfo)                                                  \
    CURLcode curlcache_shim_##tag##_easy_getinfo(CURL* handle, CURLINFO what, ...) noexcept {      \
        va_list args;                                                                              \
        va_start(args, what);                                                                      \
        const CURLcode code =                                                                      \
            curlcache::shim::easy_getinfo<L>(__builtin_return_address(0), handle, what, args);     \
        va_end(args);                                                                              \
        return code;                                                                               \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_cleanup)                                                  \
    void curlcache_shim_##tag##_easy_cleanup(CURL* handle) noexcept {                              \
        curlcache::shim::easy_cleanup<L>(__builtin_return_address(0), handle);                     \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_reset)                                                    \
    void curlcache_shim_##tag##_easy_reset(CURL* handle) noexcept {                                \
        curlcache::shim::easy_reset<L>(__builtin_return_address(0), handle);                       \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_duphandle)                                                \
    CURL* curlcache_shim_##tag##_easy_duphandle(CURL* handle) noexcept {                           \
        return curlcache::shim::easy_duphandle<L>(__builtin_return_address(0), handle);            \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_header)                                                   \
    CURLHcode curlcache_shim_##tag##_easy_header(CURL* handle, const char* name, size_t index,     \
                                                 unsigned int origin, int request,                 \
                                                 curl_header** hout) noexcept {                    \
        return curlcache::shim::easy_header<L>(__builtin_return_address(0), handle, name, index,   \
                                               origin, request, hout);                             \
    }                                                                                              \
    CURLCACHE_SHIM_EXPORT(tag, curl_easy_nextheader)                                               \
    curl_header* curlcache_shim_##tag##_easy_nextheader(CURL* handle, unsigned int origin,         \
                                                        int request, curl_header* prev) noexcept { \
        return curlcache::shim::easy_nextheader<L>(__builtin_return_address(0), handle, origin,    \
                                                   request, prev);                                 \
    }

CURLCACHE_SHIM_FOR_EACH_LIBRARY(CURLCACHE_SHIM_EASY)

#if CURLCACHE_SHIM_SPLIT
// The engine's wrappers by slot (shim/stub_abi.h), for curlcache_engine_attach.
void curlcache::shim::easy_entries(void** entries) noexcept {
    CURLCACHE_STUB_EASY_FUNCTIONS(CURLCACHE_SHIM_ENTRY)
}
#endif
