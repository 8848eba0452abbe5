// Finding the real libcurl functions behind the wrappers, lazily and once per library.
#pragma once

#include "core/easy/engine.h"
#include "shim/library.h"
#include "shim/stub_abi.h"

#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

namespace curlcache::shim {

// One executable segment of a loaded object.
struct CodeRange {
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    bool contains(const void* address) const noexcept {
        const auto at = reinterpret_cast<std::uintptr_t>(address);
        return at >= begin && at < end;
    }
};

// The executable segment that holds `address` (empty when none does).
CodeRange code_range_of(const void* address) noexcept;

struct Real {
    // The library's own functions (never a wrapper of ours). A pointer stays null when the
    // library is not loaded or lacks the function.
    core::easy::CurlApi api;
    CURLMcode (*multi_setopt)(CURLM*, CURLMoption, ...) = nullptr;
    // Where the library's code lies, to recognise libcurl calling itself.
    CodeRange code;
};

namespace detail {
// The tables behind real() and engine_api(), and whether each is made (set with release
// once its pthread_once returned): a wrapper reads one flag inline, several times per
// transfer, instead of calling a function that calls pthread_once.
extern Real g_real[k_library_count];
extern std::atomic<bool> g_real_ready[k_library_count];
extern core::easy::CurlApi g_engine_api[k_library_count];
extern std::atomic<bool> g_engine_ready[k_library_count];
const Real& make_real(Library library) noexcept;
const core::easy::CurlApi& make_engine_api(Library library) noexcept;
} // namespace detail

// The real functions of `library`, resolved on first use (thread-safe; pthread_once),
// through curlcache_shim_real_function (shim/real.h): this library's own, or the stub's.
inline const Real& real(Library library) noexcept {
    const auto i = static_cast<std::size_t>(library);
    return detail::g_real_ready[i].load(std::memory_order_acquire) ? detail::g_real[i]
                                                                     : detail::make_real(library);
}

// The table handed to the engine: every entry raises the Inside guard around the real
// call. Entries are null where the real function is.
inline const core::easy::CurlApi& engine_api(Library library) noexcept {
    const auto i = static_cast<std::size_t>(library);
    return detail::g_engine_ready[i].load(std::memory_order_acquire)
               ? detail::g_engine_api[i]
               : detail::make_engine_api(library);
}

// Calls a curl_easy_setopt-like function with the one variadic argument in `args`, read
// with the type its option number says (as libcurl reads it).
CURLcode forward_setopt(CURLcode (*setopt)(CURL*, CURLoption, ...), CURL* handle, CURLoption option,
                        va_list args);

// libc's dlopen (not the shim's wrapper); null if it cannot be found.
void* real_dlopen(const char* file, int mode) noexcept;

// The engine (split build): from now on, look up through the stub's functions. Called by
// curlcache_engine_attach, before any wrapper runs.
void use_stub_services(const curlcache_stub_services& services) noexcept;

// Writes one line to stderr the first time `what` fails (the shim never writes stdout).
void warn_missing(Library library, const char* function) noexcept;

} // namespace curlcache::shim
