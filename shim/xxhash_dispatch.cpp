// libxxhash's runtime dispatch (XXH3_*_dispatch, which picks the AVX2 code), for the shim
// only, without libxxhash.so.
//
// The engine calls the *_dispatch functions (core/key.cpp, core/entry.cpp). libxxhash ships
// them only in its shared library, so the shim once needed libxxhash.so.0 loaded into every
// program started under LD_PRELOAD, curl or not, and later loaded it at run time once the
// hashing was worth a library load. Here they are defined in the shim: on a CPU with AVX2,
// XXH3 built for AVX2 (xxhash_avx2.c: Debian's xxhash.h, header-only mode, -mavx2); elsewhere
// libxxhash.a (baseline x86-64: SSE2). Both are the one Debian package's code, so they
// compute the same XXH3 over the same XXH3_state_t. A 1 KiB checksum takes ~450 instructions
// with AVX2 against ~1,160 with SSE2 (callgrind); a 1 MiB one about half the time.
#if CURLCACHE_XXH3_AVX2
#include "shim/xxhash_avx2.h"
#endif

#include <xxhash.h>

namespace {

struct Table {
    XXH64_hash_t (*h64)(const void*, size_t);
    XXH64_hash_t (*h64_seed)(const void*, size_t, XXH64_hash_t);
    XXH64_hash_t (*h64_secret)(const void*, size_t, const void*, size_t);
    XXH_errorcode (*h64_update)(XXH3_state_t*, const void*, size_t);
    XXH128_hash_t (*h128)(const void*, size_t);
    XXH128_hash_t (*h128_seed)(const void*, size_t, XXH64_hash_t);
    XXH128_hash_t (*h128_secret)(const void*, size_t, const void*, size_t);
    XXH_errorcode (*h128_update)(XXH3_state_t*, const void*, size_t);
};

// The code for this CPU: libxxhash.a's until the engine is loaded (constant-initialized, so
// even a static initializer that hashed would find it), then XXH3 for AVX2 where the CPU
// has it. Set once, by the loader, before any call can come from the program.
Table g_table = {XXH3_64bits,          XXH3_64bits_withSeed,  XXH3_64bits_withSecret,
                 XXH3_64bits_update,   XXH3_128bits,          XXH3_128bits_withSeed,
                 XXH3_128bits_withSecret, XXH3_128bits_update};

#if CURLCACHE_XXH3_AVX2
[[gnu::constructor]] void choose_avx2() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        g_table = Table{curlcache_xxh3_64_avx2,         curlcache_xxh3_64_seed_avx2,
                        curlcache_xxh3_64_secret_avx2,  curlcache_xxh3_64_update_avx2,
                        curlcache_xxh3_128_avx2,        curlcache_xxh3_128_seed_avx2,
                        curlcache_xxh3_128_secret_avx2, curlcache_xxh3_128_update_avx2};
    }
}
#endif

} // namespace

extern "C" {

XXH64_hash_t XXH3_64bits_dispatch(const void* input, size_t len) {
    return g_table.h64(input, len);
}
XXH64_hash_t XXH3_64bits_withSeed_dispatch(const void* input, size_t len, XXH64_hash_t seed) {
    return g_table.h64_seed(input, len, seed);
}
XXH64_hash_t XXH3_64bits_withSecret_dispatch(const void* input, size_t len, const void* secret,
                                             size_t secret_len) {
    return g_table.h64_secret(input, len, secret, secret_len);
}
XXH_errorcode XXH3_64bits_update_dispatch(XXH3_state_t* state, const void* input, size_t len) {
    return g_table.h64_update(state, input, len);
}
XXH128_hash_t XXH3_128bits_dispatch(const void* input, size_t len) {
    return g_table.h128(input, len);
}
XXH128_hash_t XXH3_128bits_withSeed_dispatch(const void* input, size_t len, XXH64_hash_t seed) {
    return g_table.h128_seed(input, len, seed);
}
XXH128_hash_t XXH3_128bits_withSecret_dispatch(const void* input, size_t len, const void* secret,
                                               size_t secret_len) {
    return g_table.h128_secret(input, len, secret, secret_len);
}
XXH_errorcode XXH3_128bits_update_dispatch(XXH3_state_t* state, const void* input, size_t len) {
    return g_table.h128_update(state, input, len);
}

} // extern "C"
