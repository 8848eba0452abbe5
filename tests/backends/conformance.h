// The storage conformance group: one set of cmocka tests that every backend must pass
// (get/put, overwrite, remove, miss, scan, get_metadata, clear, binary and 100 MiB values, expiry,
// max_size eviction, usage, 8 concurrent writers), plus helpers shared by the backend tests.
//
// Running it against a backend takes a registry name and a Settings factory. For Redis,
// with the fixture of tests/redis (a server the test started on a free loopback port):
//
//     #include "tests/redis/fixture.h"
//     #include "tests/backends/conformance.h" // last
//
//     static tests::redis::RedisServer* g_server; // started in main() before the run
//     static const tests::ConformanceBackend k_redis{"redis", [](const std::string& scratch) {
//         // a fresh namespace per test: the scratch folder's unique name
//         return tests::redis::redis_settings(*g_server,
//         std::filesystem::path(scratch).filename());
//     }};
//     int failed = tests::run_conformance(k_redis);
//
// and add conformance.cpp to that test's sources in CMake:
//     curlcache_add_test(test_redis_conformance test_redis_conformance.cpp
//                        ${CMAKE_SOURCE_DIR}/tests/backends/conformance.cpp ...)
//
// Each test gets a new scratch folder (mkdtemp, removed afterwards) with CURLCACHE_*
// variables cleared, asks the factory for settings and opens the backend through
// backends::open(). Tests that need a size limit copy those settings and set max_size.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// cmocka needs these before its header, and its macros (fail, ...) clash with names in the
// standard library: include this header after every other one.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

namespace curlcache::tests {

struct ConformanceBackend {
    std::string backend; // registry name: "sqlite", "filesystem", "memory", "redis"
    // Settings for a fresh, empty cache whose files (if any) live under `scratch`.
    std::function<config::Settings(const std::string& scratch)> settings;
};

// The group's tests, each carrying `backend` (which must outlive the run) as its state.
std::vector<CMUnitTest> conformance_tests(const ConformanceBackend& backend);

// Runs the group under the name "<backend> conformance"; returns the number of failures.
int run_conformance(const ConformanceBackend& backend);

// 4 forked processes x `ops` (1,000) mixed puts and gets on one cache: no error, no torn
// value, and every entry written is readable afterwards. Fails the calling cmocka test
// otherwise.
void check_many_processes(const ConformanceBackend& backend, const std::string& scratch,
                          int ops = 1000);

// The fixture of every conformance test, for a backend's own tests too: give the
// ConformanceBackend as initial state (cmocka_unit_test_prestate_setup_teardown). Setup makes
// a scratch folder, clears CURLCACHE_* and opens the backend; teardown undoes all three.
struct StorageFixture {
    const ConformanceBackend* backend = nullptr;
    std::string scratch;
    config::Settings settings;
    std::unique_ptr<backends::Storage> storage;
};
int storage_fixture_setup(void** state);
int storage_fixture_teardown(void** state);
StorageFixture& storage_fixture(void** state);

// A new scratch folder (mkdtemp under $TMPDIR or /tmp); clears CURLCACHE_* variables.
std::string make_scratch();
// Removes `path` and everything under it; clears CURLCACHE_* variables again.
void remove_scratch(const std::string& path);

// Crash leftovers (backends/temp_files.h), for a file-based backend whose temp files are
// named `prefix`* in `temp_folder`: a forked child streams 2 MiB into `settings`' cache and
// stops mid-body. While it lives, its temp file survives purge and vacuum and counts in
// usage and within max_size (an older entry is evicted for it); once it is SIGKILLed, purge
// removes the file at once - and so do an open and usage() for the next killed writers.
// `stamp`: a file whose mtime limits sweeps on open to one a minute ("" for none); the
// check makes it two minutes old before it opens the cache again.
void check_dead_writer_leftovers(const ConformanceBackend& backend,
                                 const config::Settings& settings,
                                 const std::string& temp_folder, std::string_view prefix,
                                 const std::string& stamp = "");

// A cmocka fixture holding one scratch folder (make_scratch) as the test's state.
int scratch_setup(void** state);
int scratch_teardown(void** state);
const std::string& scratch_of(void** state);

// A 32-hex-digit key, like core::Key::hex(), different for every n.
std::string test_key(uint64_t n);

// A value that proves its own integrity: an FNV-1a hash of the rest, then the key, then
// `size` pseudo-random bytes derived from seed.
std::string make_value(std::string_view key, uint64_t seed, size_t size);
bool value_is_intact(std::string_view key, std::string_view value);

// Metadata for a test entry ("GET", a URL naming the key, status 200).
backends::Metadata test_meta(std::string_view key, int64_t expires = 0);

// A SQLite cache in `scratch` (cache.sqlite), with a long busy timeout: a slow fsync on a
// loaded machine must not turn into a failed test.
config::Settings sqlite_settings(const std::string& scratch);

} // namespace curlcache::tests
