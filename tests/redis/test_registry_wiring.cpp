// How this room's pieces are wired in: "redis" is a registry backend, several names open a
// tiered cache (core::Cache::open -> backends::open_tiered over the registry), and file
// backends get cross-process coalescing locks from the registry.
#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "tests/redis/fixture.h"

#include <algorithm>
#include <string>
#include <sys/stat.h>

// cmocka last: its macros (fail, ...) clash with names in the standard headers.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <csetjmp>
extern "C" {
#include <cmocka.h>
}

using namespace curlcache;
using namespace curlcache::backends;

namespace {

std::string g_scratch;

int setup(void**) {
    g_scratch = tests::redis::make_scratch();
    return 0;
}

int teardown(void**) {
    tests::redis::remove_tree(g_scratch);
    return 0;
}

void test_redis_is_a_compiled_in_backend(void**) {
    auto names = compiled_in();
    assert_true(std::find(names.begin(), names.end(), "redis") != names.end());
    tests::redis::RedisServer server(g_scratch);
    auto opened = open("redis", tests::redis::redis_settings(server, "wiring"));
    assert_true(opened.has_value());
    assert_string_equal(std::string((*opened)->name()).c_str(), "redis");
}

void test_several_backend_names_open_a_tiered_cache(void**) {
    tests::redis::RedisServer server(g_scratch);
    config::Settings settings = tests::redis::redis_settings(server, "wiring");
    settings.backend = {"memory", "redis"};
    auto opened = open_tiered(settings, [](std::string_view name, const config::Settings& all) {
        return open(name, all);
    });
    assert_true(opened.has_value());
    TieredStorage* tiered = as_tiered(**opened);
    assert_non_null(tiered);
    assert_int_equal(tiered->tier_count(), 2);
    assert_string_equal(std::string(tiered->tier(0).name()).c_str(), "memory");
    assert_string_equal(std::string(tiered->tier(1).name()).c_str(), "redis");

    // Redis down at open: the memory tier still serves, the Redis tier counts errors.
    server.stop();
    auto down = open_tiered(settings, [](std::string_view name, const config::Settings& all) {
        return open(name, all);
    });
    assert_true(down.has_value());
    TieredStorage* partial = as_tiered(**down);
    assert_non_null(partial);
    assert_true(partial->tier(1).location().starts_with("(unavailable: tier 2 (redis): "));
}

void test_sqlite_cache_gets_cross_process_locks_beside_it(void**) {
    config::Settings settings;
    settings.name = g_scratch + "/locks.sqlite";
    auto first = open("sqlite", settings);
    auto second = open("sqlite", settings);
    assert_true(first.has_value() && second.has_value());
    std::string key = "0123456789abcdef0123456789abcdef";
    assert_true(*(*first)->try_lock(key, 1000));
    assert_false(*(*second)->try_lock(key, 1000));
    struct stat info {};
    assert_int_equal(stat((g_scratch + "/locks.sqlite.locks").c_str(), &info), 0);
    assert_true((*first)->unlock(key).has_value());
    assert_true(*(*second)->try_lock(key, 1000));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_is_a_compiled_in_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_backend_names_open_a_tiered_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_cache_gets_cross_process_locks_beside_it, setup, teardown),
    };
    return cmocka_run_group_tests_name("registry_wiring", tests, nullptr, nullptr);
}
