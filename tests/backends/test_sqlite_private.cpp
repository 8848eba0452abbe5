// SQLite configured as the shim's engine configures its own copy
// (backends::configure_private_sqlite: no memory statistics, curlcache's allocator with one
// spare block): this process owns its SQLite alone, so it may. The conformance group, values
// on both sides of the spare block's bounds read by several threads at once, and a second
// configuration once SQLite is in use (refused, harmless).
#include "backends/registry.h"
#include "backends/sqlite_storage.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::make_value;
using tests::scratch_of;
using tests::scratch_setup;
using tests::scratch_teardown;
using tests::test_key;
using tests::test_meta;
using tests::value_is_intact;

const tests::ConformanceBackend k_sqlite{"sqlite", tests::sqlite_settings};

// Around the spare block's bounds (1 KiB, 64 KiB) and the inline read limit (16 KiB: larger
// values are read through blob I/O, not copied by SQLite), up to a body file (128 KiB).
constexpr size_t k_sizes[] = {0,     100,   1000,  1024,  1025,  2048,  9000,
                              16384, 16385, 40000, 65536, 65537, 90000, 200000};

void test_values_of_every_size_read_by_four_threads_stay_intact(void** state) {
    auto opened = backends::open("sqlite", k_sqlite.settings(scratch_of(state)));
    if (!opened) {
        fail_msg("open: %s", opened.error().message.c_str());
    }
    backends::Storage& storage = **opened;
    const size_t count = std::size(k_sizes);
    for (size_t i = 0; i < count; ++i) {
        std::string value = make_value(test_key(i), i, k_sizes[i]);
        std::string_view piece = value;
        auto done = storage.put(test_meta(test_key(i)), std::span(&piece, 1));
        if (!done) {
            fail_msg("put: %s", done.error().message.c_str());
        }
    }
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int round = 0; round < 100; ++round) {
                // Each thread walks the sizes in its own order, so that blocks of every
                // size pass through the spare between threads.
                for (size_t j = 0; j < count; ++j) {
                    size_t i = (j * (2 * t + 1) + static_cast<size_t>(round)) % count;
                    auto got = storage.get(test_key(i));
                    if (!got || !*got || !**got || !value_is_intact(test_key(i), ***got) ||
                        (***got).size() != 8 + test_key(i).size() + k_sizes[i]) {
                        bad.fetch_add(1);
                    }
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    assert_int_equal(bad.load(), 0);
    // Statistics are off: SQLite no longer counts what it allocates.
    assert_int_equal(sqlite3_memory_used(), 0);
}

void test_a_second_configuration_once_sqlite_is_in_use_is_refused(void** state) {
    auto opened = backends::open("sqlite", k_sqlite.settings(scratch_of(state)));
    assert_true(opened.has_value());
    assert_false(backends::configure_private_sqlite());
    std::string value = make_value(test_key(1), 1, 3000);
    std::string_view piece = value;
    assert_true((*opened)->put(test_meta(test_key(1)), std::span(&piece, 1)).has_value());
    auto got = (*opened)->get(test_key(1));
    assert_true(got && *got && **got && ***got == value);
}

} // namespace

int main() {
    // Before any other use of SQLite in this process, as the engine does.
    if (!backends::configure_private_sqlite()) {
        std::fprintf(stderr, "configure_private_sqlite() refused before SQLite's first use\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values_of_every_size_read_by_four_threads_stay_intact,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_second_configuration_once_sqlite_is_in_use_is_refused, scratch_setup,
            scratch_teardown),
    };
    int failed =
        cmocka_run_group_tests_name("sqlite private configuration", tests, nullptr, nullptr);
    return failed + tests::run_conformance(k_sqlite);
}
