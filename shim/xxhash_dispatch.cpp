// libxxhash's runtime dispatch (XXH3_*_dispatch, which picks the AVX2/AVX-512 code), for
// the shim only, without loading libxxhash.so into every process at start-up.
//
// The engine calls the *_dispatch functions (core/key.cpp, core/entry.cpp). libxxhash ships
// them only in its shared library, so the shim used to need libxxhash.so.0 loaded into every
// program started under LD_PRELOAD, curl or not. Here they are defined in the shim, which
// links libxxhash.a (baseline x86-64: SSE2): short inputs (keys, headers, small bodies,
// where the vector width hardly matters) are hashed by that code, and libxxhash.so.0 is
// loaded once, when it pays (see dispatch() below), and used from then on. Both compute the
// same XXH3 over the same XXH3_state_t (one Debian package builds both), so a digest may
// mix the two. Where the library cannot be loaded, everything stays on the static code.
#include "shim/resolve.h"

#include <dlfcn.h>
#include <pthread.h>
#include <xxhash.h>

#include <atomic>

namespace {

// XXH3 uses no vector code up to 240 bytes. Longer inputs load the dispatch when one is
// long enough for the wider vectors to be worth a library load (a 1 MiB checksum is about
// twice as fast with AVX2), or once the process has hashed enough long inputs that it is a
// loop of hits (in-process: a 1 KiB hit then costs ~1,400 instructions less) rather than
// one `curl` run, which never pays the load.
constexpr size_t k_vector_from = 241;
constexpr size_t k_dispatch_from = 64 * 1024;
constexpr uint64_t k_dispatch_after_bytes = 1 << 20;

struct Dispatch {
    XXH64_hash_t (*h64)(const void*, size_t) = nullptr;
    XXH64_hash_t (*h64_seed)(const void*, size_t, XXH64_hash_t) = nullptr;
    XXH64_hash_t (*h64_secret)(const void*, size_t, const void*, size_t) = nullptr;
    XXH_errorcode (*h64_update)(XXH3_state_t*, const void*, size_t) = nullptr;
    XXH128_hash_t (*h128)(const void*, size_t) = nullptr;
    XXH128_hash_t (*h128_seed)(const void*, size_t, XXH64_hash_t) = nullptr;
    XXH128_hash_t (*h128_secret)(const void*, size_t, const void*, size_t) = nullptr;
    XXH_errorcode (*h128_update)(XXH3_state_t*, const void*, size_t) = nullptr;
};

Dispatch g_dispatch;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
std::atomic<int> g_state{0};           // 0 not tried, 1 loaded, 2 unavailable
std::atomic<uint64_t> g_long_bytes{0}; // hashed by the static code, inputs >= k_vector_from

template <typename Fn> bool find(void* library, const char* name, Fn& slot) {
    slot = reinterpret_cast<Fn>(dlsym(library, name));
    return slot != nullptr;
}

// Loads libxxhash.so.0 and its dispatch functions, once (pthread_once).
void load() noexcept {
    void* library = curlcache::shim::real_dlopen("libxxhash.so.0", RTLD_NOW | RTLD_LOCAL);
    Dispatch d;
    bool ok = library != nullptr && find(library, "XXH3_64bits_dispatch", d.h64) &&
              find(library, "XXH3_64bits_withSeed_dispatch", d.h64_seed) &&
              find(library, "XXH3_64bits_withSecret_dispatch", d.h64_secret) &&
              find(library, "XXH3_64bits_update_dispatch", d.h64_update) &&
              find(library, "XXH3_128bits_dispatch", d.h128) &&
              find(library, "XXH3_128bits_withSeed_dispatch", d.h128_seed) &&
              find(library, "XXH3_128bits_withSecret_dispatch", d.h128_secret) &&
              find(library, "XXH3_128bits_update_dispatch", d.h128_update);
    if (ok) {
        g_dispatch = d;
    }
    g_state.store(ok ? 1 : 2, std::memory_order_release);
}

// The loaded dispatch table, or nullptr (static code).
const Dispatch* dispatch(size_t length) noexcept {
    if (length < k_vector_from) {
        return nullptr;
    }
    int state = g_state.load(std::memory_order_acquire);
    if (state == 0) {
        if (length < k_dispatch_from &&
            g_long_bytes.fetch_add(length, std::memory_order_relaxed) + length <
                k_dispatch_after_bytes) {
            return nullptr;
        }
        pthread_once(&g_once, load);
        state = g_state.load(std::memory_order_acquire);
    }
    return state == 1 ? &g_dispatch : nullptr;
}

// Through the loaded dispatch when `length` is worth it, else the static code.
template <typename Fn, typename... Args>
auto hash(Fn Dispatch::*member, Fn fallback, size_t length, Args... args) {
    const Dispatch* d = dispatch(length);
    return (d != nullptr ? d->*member : fallback)(args...);
}

} // namespace

extern "C" {

XXH64_hash_t XXH3_64bits_dispatch(const void* input, size_t len) {
    return hash(&Dispatch::h64, &XXH3_64bits, len, input, len);
}
XXH64_hash_t XXH3_64bits_withSeed_dispatch(const void* input, size_t len, XXH64_hash_t seed) {
    return hash(&Dispatch::h64_seed, &XXH3_64bits_withSeed, len, input, len, seed);
}
XXH64_hash_t XXH3_64bits_withSecret_dispatch(const void* input, size_t len, const void* secret,
                                             size_t secret_len) {
    return hash(&Dispatch::h64_secret, &XXH3_64bits_withSecret, len, input, len, secret,
                secret_len);
}
XXH_errorcode XXH3_64bits_update_dispatch(XXH3_state_t* state, const void* input, size_t len) {
    return hash(&Dispatch::h64_update, &XXH3_64bits_update, len, state, input, len);
}
XXH128_hash_t XXH3_128bits_dispatch(const void* input, size_t len) {
    return hash(&Dispatch::h128, &XXH3_128bits, len, input, len);
}
XXH128_hash_t XXH3_128bits_withSeed_dispatch(const void* input, size_t len, XXH64_hash_t seed) {
    return hash(&Dispatch::h128_seed, &XXH3_128bits_withSeed, len, input, len, seed);
}
XXH128_hash_t XXH3_128bits_withSecret_dispatch(const void* input, size_t len, const void* secret,
                                               size_t secret_len) {
    return hash(&Dispatch::h128_secret, &XXH3_128bits_withSecret, len, input, len, secret,
                secret_len);
}
XXH_errorcode XXH3_128bits_update_dispatch(XXH3_state_t* state, const void* input, size_t len) {
    return hash(&Dispatch::h128_update, &XXH3_128bits_update, len, state, input, len);
}

} // extern "C"
