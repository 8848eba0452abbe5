// The backends room's storage conformance group (tests/backends/conformance.*) against the
// Redis backend opened through the registry, on a private redis-server; plus its
// many-processes check. One case of the group does not apply to Redis and is left out:
// purge_expired with a made-up clock (expires = 500 s after 1970): the Redis backend turns
// expiry into a real Redis TTL, so such entries are gone at once (test_redis_storage's TTL
// case covers the Redis behaviour).
#include "tests/redis/fixture.h"

#include "tests/backends/conformance.h" // after every other header (cmocka macros)

#include <cstring>
#include <string>
#include <vector>

using namespace curlcache;

namespace {

tests::redis::RedisServer* g_server = nullptr;

const tests::ConformanceBackend k_redis{"redis", [](const std::string& scratch) {
    config::Settings settings;
    settings.backend = {"redis"};
    settings.redis_url = g_server->url();
    settings.name = "conformance-" + scratch.substr(scratch.rfind('/') + 1);
    // The group moves 100 MiB values and runs 8 writer threads: on a loaded 2-core machine
    // that outlasts the 1 s default, and a timeout would leave a back-off marker (backoff.h)
    // failing the tests after it. Timeouts have their own tests (test_redis_reliability).
    settings.redis_command_timeout_ms = 60'000;
    return settings;
}};

void test_many_processes_share_one_redis_cache(void**) {
    std::string scratch = tests::make_scratch();
    tests::check_many_processes(k_redis, scratch);
    tests::remove_scratch(scratch);
}

bool applies_to_redis(const char* name) {
    return std::strstr(name, "test_purge_expired_removes_only_entries_past_their_expiry") == nullptr;
}

} // namespace

int main() {
    std::string scratch = tests::redis::make_scratch();
    int failed = 0;
    {
        tests::redis::RedisServer server(scratch);
        g_server = &server;
        std::vector<CMUnitTest> group;
        for (const auto& test : tests::conformance_tests(k_redis)) {
            if (applies_to_redis(test.name)) {
                group.push_back(test);
            }
        }
        group.push_back(CMUnitTest{"redis: test_many_processes_share_one_redis_cache",
                                   test_many_processes_share_one_redis_cache, nullptr, nullptr,
                                   nullptr});
        failed = _cmocka_run_group_tests("redis conformance", group.data(), group.size(),
                                         nullptr, nullptr);
        g_server = nullptr;
    }
    tests::redis::remove_tree(scratch);
    return failed;
}
