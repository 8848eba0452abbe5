/* XXH3 built for AVX2 (shim/xxhash_avx2.c): call only when the CPU has AVX2. */
#pragma once

#include <xxhash.h>

#ifdef __cplusplus
extern "C" {
#endif

XXH64_hash_t curlcache_xxh3_64_avx2(const void* input, size_t len);
XXH64_hash_t curlcache_xxh3_64_seed_avx2(const void* input, size_t len, XXH64_hash_t seed);
XXH64_hash_t curlcache_xxh3_64_secret_avx2(const void* input, size_t len, const void* secret,
                                           size_t secret_len);
XXH_errorcode curlcache_xxh3_64_update_avx2(XXH3_state_t* state, const void* input, size_t len);
XXH128_hash_t curlcache_xxh3_128_avx2(const void* input, size_t len);
XXH128_hash_t curlcache_xxh3_128_seed_avx2(const void* input, size_t len, XXH64_hash_t seed);
XXH128_hash_t curlcache_xxh3_128_secret_avx2(const void* input, size_t len, const void* secret,
                                             size_t secret_len);
XXH_errorcode curlcache_xxh3_128_update_avx2(XXH3_state_t* state, const void* input,
                                             size_t len);

#ifdef __cplusplus
}
#endif
