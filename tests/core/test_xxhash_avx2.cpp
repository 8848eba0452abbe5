// The shim's XXH3 (shim/xxhash_dispatch.cpp, shim/xxhash_avx2.c) against libxxhash's.
//
// A key or a checksum written by one process is read by others: the shim (its own XXH3 for
// AVX2), the CLI and the core library (libxxhash.so's dispatch), and, through Redis or a
// shared folder, machines whose CPUs have no AVX2 (libxxhash's SSE2 code). All of them must
// compute the same digests, or every hit is a miss or a "corrupt" entry. Here the three are
// compared over every length up to 2 KiB and some large ones, with seeds and secrets, and a
// streamed state fed by both sides in pieces of every size (the engine resets and finishes a
// state with libxxhash's functions and feeds it through the dispatch).
//
// This executable defines the XXH3_*_dispatch functions itself (shim/xxhash_dispatch.cpp),
// so calls by name reach the shim's; libxxhash.so's own dispatch is looked up in that
// library.
#include "shim/xxhash_avx2.h"

#include <dlfcn.h>
#include <xxhash.h>
// The *_dispatch functions by their own names: XXH3_64bits and the rest stay libxxhash's.
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

extern "C" {
#include <cmocka.h>
}

namespace {

using H64 = XXH64_hash_t (*)(const void*, size_t);
using H64Seed = XXH64_hash_t (*)(const void*, size_t, XXH64_hash_t);
using H64Secret = XXH64_hash_t (*)(const void*, size_t, const void*, size_t);
using H128 = XXH128_hash_t (*)(const void*, size_t);
using H128Seed = XXH128_hash_t (*)(const void*, size_t, XXH64_hash_t);
using H128Secret = XXH128_hash_t (*)(const void*, size_t, const void*, size_t);
using Update = XXH_errorcode (*)(XXH3_state_t*, const void*, size_t);

// One implementation's entry points.
struct Xxh3 {
    const char* name;
    H64 h64;
    H64Seed h64_seed;
    H64Secret h64_secret;
    H128 h128;
    H128Seed h128_seed;
    H128Secret h128_secret;
    Update u64;
    Update u128;
};

template <typename F> F library_symbol(void* library, const char* name) {
    void* found = dlsym(library, name);
    if (found == nullptr) {
        fail_msg("libxxhash.so has no %s", name);
    }
    return reinterpret_cast<F>(found);
}

// libxxhash.so's dispatch: what the CLI and the core library call.
Xxh3 library_dispatch() {
    void* library = dlopen("libxxhash.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (library == nullptr) {
        fail_msg("libxxhash.so.0 is not loaded: %s", dlerror());
    }
    return {"libxxhash.so dispatch",
            library_symbol<H64>(library, "XXH3_64bits_dispatch"),
            library_symbol<H64Seed>(library, "XXH3_64bits_withSeed_dispatch"),
            library_symbol<H64Secret>(library, "XXH3_64bits_withSecret_dispatch"),
            library_symbol<H128>(library, "XXH3_128bits_dispatch"),
            library_symbol<H128Seed>(library, "XXH3_128bits_withSeed_dispatch"),
            library_symbol<H128Secret>(library, "XXH3_128bits_withSecret_dispatch"),
            library_symbol<Update>(library, "XXH3_64bits_update_dispatch"),
            library_symbol<Update>(library, "XXH3_128bits_update_dispatch")};
}

// The code every x86-64 CPU runs (libxxhash's plain entry points: baseline SSE2).
const Xxh3 k_baseline = {"libxxhash baseline",    XXH3_64bits,        XXH3_64bits_withSeed,
                         XXH3_64bits_withSecret,  XXH3_128bits,       XXH3_128bits_withSeed,
                         XXH3_128bits_withSecret, XXH3_64bits_update, XXH3_128bits_update};

// The shim's dispatch (defined in this executable).
const Xxh3 k_shim = {"shim dispatch",
                     XXH3_64bits_dispatch,
                     XXH3_64bits_withSeed_dispatch,
                     XXH3_64bits_withSecret_dispatch,
                     XXH3_128bits_dispatch,
                     XXH3_128bits_withSeed_dispatch,
                     XXH3_128bits_withSecret_dispatch,
                     XXH3_64bits_update_dispatch,
                     XXH3_128bits_update_dispatch};

// The shim's AVX2 code itself, whichever the dispatch chose.
const Xxh3 k_avx2 = {"shim AVX2",
                     curlcache_xxh3_64_avx2,
                     curlcache_xxh3_64_seed_avx2,
                     curlcache_xxh3_64_secret_avx2,
                     curlcache_xxh3_128_avx2,
                     curlcache_xxh3_128_seed_avx2,
                     curlcache_xxh3_128_secret_avx2,
                     curlcache_xxh3_64_update_avx2,
                     curlcache_xxh3_128_update_avx2};

std::vector<const Xxh3*> implementations() {
    static const Xxh3 library = library_dispatch();
    std::vector<const Xxh3*> all = {&library, &k_shim};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        all.push_back(&k_avx2);
    } else {
        std::printf("# this CPU has no AVX2: the shim's AVX2 code is not run here, its "
                    "dispatch is compared\n");
    }
    return all;
}

std::vector<unsigned char> bytes(size_t n, uint64_t seed) {
    std::vector<unsigned char> out(n);
    uint64_t x = seed | 1;
    for (auto& b : out) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b = static_cast<unsigned char>(x >> 24);
    }
    return out;
}

// Every length up to 2 KiB crosses each of XXH3's size classes (0, 1-3, 4-8, 9-16, 17-128,
// 129-240, then stripes and 1 KiB blocks); the large ones cross many blocks and a tail.
std::vector<size_t> lengths() {
    std::vector<size_t> all;
    for (size_t n = 0; n <= 2048; ++n) {
        all.push_back(n);
    }
    for (size_t n : {4095u, 4096u, 4097u, 65543u, (1u << 20) + 13}) {
        all.push_back(n);
    }
    return all;
}

void expect_equal_64(const Xxh3& impl, const char* what, size_t n, XXH64_hash_t want,
                     XXH64_hash_t got) {
    if (want != got) {
        fail_msg("%s: %s of %zu bytes is %016llx, libxxhash's baseline %016llx", impl.name, what, n,
                 static_cast<unsigned long long>(got), static_cast<unsigned long long>(want));
    }
}

void expect_equal_128(const Xxh3& impl, const char* what, size_t n, XXH128_hash_t want,
                      XXH128_hash_t got) {
    if (!XXH128_isEqual(want, got)) {
        fail_msg("%s: %s of %zu bytes differs from libxxhash's baseline", impl.name, what, n);
    }
}

void test_one_shot_digests_agree(void**) {
    const auto all = implementations();
    const auto data = bytes((1u << 20) + 13, 0x1234567);
    const auto secret = bytes(192, 0xabcdef); // above XXH3_SECRET_SIZE_MIN (136)
    const XXH64_hash_t seeds[] = {0, 1, 0x9E3779B97F4A7C15ull};
    for (size_t n : lengths()) {
        const unsigned char* p = data.data();
        const auto h64 = k_baseline.h64(p, n);
        const auto h128 = k_baseline.h128(p, n);
        const auto h64_secret = k_baseline.h64_secret(p, n, secret.data(), secret.size());
        const auto h128_secret = k_baseline.h128_secret(p, n, secret.data(), secret.size());
        for (const Xxh3* impl : all) {
            expect_equal_64(*impl, "XXH3_64bits", n, h64, impl->h64(p, n));
            expect_equal_128(*impl, "XXH3_128bits", n, h128, impl->h128(p, n));
            expect_equal_64(*impl, "XXH3_64bits_withSecret", n, h64_secret,
                            impl->h64_secret(p, n, secret.data(), secret.size()));
            expect_equal_128(*impl, "XXH3_128bits_withSecret", n, h128_secret,
                             impl->h128_secret(p, n, secret.data(), secret.size()));
            for (XXH64_hash_t seed : seeds) {
                expect_equal_64(*impl, "XXH3_64bits_withSeed", n, k_baseline.h64_seed(p, n, seed),
                                impl->h64_seed(p, n, seed));
                expect_equal_128(*impl, "XXH3_128bits_withSeed", n,
                                 k_baseline.h128_seed(p, n, seed), impl->h128_seed(p, n, seed));
            }
        }
    }
}

// A state reset and finished by libxxhash, fed in pieces that alternate between the
// implementation under test and libxxhash's baseline; piece sizes cycle through 1..300 so
// that pieces end at every offset of XXH3's 256-byte buffer and its 1 KiB blocks.
template <typename Digest>
void feed(const Xxh3& impl, bool wide, const std::vector<unsigned char>& data, size_t n,
          size_t start, Digest finish) {
    XXH3_state_t* state = XXH3_createState();
    assert_non_null(state);
    if (wide) {
        XXH3_128bits_reset(state);
    } else {
        XXH3_64bits_reset(state);
    }
    size_t at = 0;
    size_t piece = start;
    bool mine = true;
    while (at < n) {
        const size_t take = piece < n - at ? piece : n - at;
        Update update =
            wide ? (mine ? impl.u128 : k_baseline.u128) : (mine ? impl.u64 : k_baseline.u64);
        assert_int_equal(update(state, data.data() + at, take), XXH_OK);
        at += take;
        piece = piece % 300 + 1;
        mine = !mine;
    }
    finish(state);
    XXH3_freeState(state);
}

void test_streamed_digests_agree(void**) {
    const auto all = implementations();
    const auto data = bytes((1u << 20) + 13, 0x7654321);
    for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{257}, size_t{1024},
                     size_t{4097}, size_t{65543}, (size_t{1} << 20) + 13}) {
        const auto h64 = k_baseline.h64(data.data(), n);
        const auto h128 = k_baseline.h128(data.data(), n);
        for (const Xxh3* impl : all) {
            for (size_t start = 1; start <= 300; start += (n > 70000 ? 97 : 1)) {
                feed(*impl, false, data, n, start, [&](XXH3_state_t* s) {
                    expect_equal_64(*impl, "streamed XXH3_64bits", n, h64, XXH3_64bits_digest(s));
                });
                feed(*impl, true, data, n, start, [&](XXH3_state_t* s) {
                    expect_equal_128(*impl, "streamed XXH3_128bits", n, h128,
                                     XXH3_128bits_digest(s));
                });
            }
        }
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_shot_digests_agree),
        cmocka_unit_test(test_streamed_digests_agree),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
