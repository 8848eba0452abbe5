/*
 * XXH3 compiled for AVX2, for the shim's engine (shim/xxhash_dispatch.cpp picks it when the
 * CPU has AVX2; everything else uses libxxhash.a, built by Debian for baseline x86-64: SSE2).
 *
 * This is Debian's own xxhash.h (libxxhash-dev) in its documented header-only mode
 * (XXH_INLINE_ALL), built with -mavx2 (shim/CMakeLists.txt): the same library and version as
 * libxxhash.a, so both compute the same digests over the same XXH3_state_t, and a hash state
 * may be fed by one and finished by the other. A C file on purpose: its functions are all
 * static, so no AVX2 code can be shared with (and chosen by the linker for) the rest of the
 * engine, as an inline C++ function instantiated here could be.
 */
#if !defined(__AVX2__)
#error "xxhash_avx2.c must be compiled with -mavx2"
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "shim/xxhash_avx2.h"

XXH64_hash_t curlcache_xxh3_64_avx2(const void* input, size_t len) {
    return XXH3_64bits(input, len);
}
XXH64_hash_t curlcache_xxh3_64_seed_avx2(const void* input, size_t len, XXH64_hash_t seed) {
    return XXH3_64bits_withSeed(input, len, seed);
}
XXH64_hash_t curlcache_xxh3_64_secret_avx2(const void* input, size_t len, const void* secret,
                                           size_t secret_len) {
    return XXH3_64bits_withSecret(input, len, secret, secret_len);
}
XXH_errorcode curlcache_xxh3_64_update_avx2(XXH3_state_t* state, const void* input,
                                            size_t len) {
    return XXH3_64bits_update(state, input, len);
}
XXH128_hash_t curlcache_xxh3_128_avx2(const void* input, size_t len) {
    return XXH3_128bits(input, len);
}
XXH128_hash_t curlcache_xxh3_128_seed_avx2(const void* input, size_t len, XXH64_hash_t seed) {
    return XXH3_128bits_withSeed(input, len, seed);
}
XXH128_hash_t curlcache_xxh3_128_secret_avx2(const void* input, size_t len, const void* secret,
                                             size_t secret_len) {
    return XXH3_128bits_withSecret(input, len, secret, secret_len);
}
XXH_errorcode curlcache_xxh3_128_update_avx2(XXH3_state_t* state, const void* input,
                                             size_t len) {
    return XXH3_128bits_update(state, input, len);
}
