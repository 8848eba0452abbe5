// The math functions the statically linked SQLite refers to (its SQL math functions: acos(),
// pow(), ... which curlcache's statements never call), for the shim only: without these the
// shim would need libm.so.6 loaded into every program started under LD_PRELOAD, curl or
// not (about 0.1 ms of start-up measured with /bin/true, the largest part of what the shim
// cost a process that never uses libcurl). Each one loads libm.so.6 at its first call and
// forwards to it. Hidden like every symbol of the shim (preload.map): the program's own
// calls still go to libm.
#include "shim/resolve.h"

#include <dlfcn.h>

#include <atomic>
#include <limits>

namespace {

std::atomic<void*> g_libm{nullptr};

void* libm_symbol(const char* name) noexcept {
    void* library = g_libm.load(std::memory_order_acquire);
    if (library == nullptr) {
        library = curlcache::shim::real_dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (library == nullptr) {
            return nullptr;
        }
        g_libm.store(library, std::memory_order_release);
    }
    return dlsym(library, name);
}

using Unary = double (*)(double);
using Binary = double (*)(double, double);

template <typename Fn, typename... Args> double forward(const char* name, Args... args) noexcept {
    // Looked up at each call: SQLite calls these only for SQL that uses them, never ours.
    auto fn = reinterpret_cast<Fn>(libm_symbol(name));
    return fn != nullptr ? fn(args...) : std::numeric_limits<double>::quiet_NaN();
}

} // namespace

#define CURLCACHE_LIBM_UNARY(name)                                                                 \
    extern "C" double name(double x) {                                                             \
        return forward<Unary>(#name, x);                                                           \
    }
#define CURLCACHE_LIBM_BINARY(name)                                                                \
    extern "C" double name(double x, double y) {                                                   \
        return forward<Binary>(#name, x, y);                                                       \
    }

CURLCACHE_LIBM_UNARY(acos)
CURLCACHE_LIBM_UNARY(acosh)
CURLCACHE_LIBM_UNARY(asin)
CURLCACHE_LIBM_UNARY(asinh)
CURLCACHE_LIBM_UNARY(atan)
CURLCACHE_LIBM_UNARY(atanh)
CURLCACHE_LIBM_UNARY(cos)
CURLCACHE_LIBM_UNARY(cosh)
CURLCACHE_LIBM_UNARY(exp)
CURLCACHE_LIBM_UNARY(log)
CURLCACHE_LIBM_UNARY(sin)
CURLCACHE_LIBM_UNARY(sinh)
CURLCACHE_LIBM_UNARY(sqrt)
CURLCACHE_LIBM_UNARY(tan)
CURLCACHE_LIBM_UNARY(tanh)
CURLCACHE_LIBM_UNARY(trunc)
CURLCACHE_LIBM_BINARY(atan2)
CURLCACHE_LIBM_BINARY(fmod)
CURLCACHE_LIBM_BINARY(pow)
