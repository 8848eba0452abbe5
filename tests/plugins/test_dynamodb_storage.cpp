// The DynamoDB plugin against dynalite or Amazon's DynamoDB Local (one server for the whole
// file, a table per test; test_dynamodb_storage [dynalite|dynamodb-local]):
// the storage conformance group, 4 processes x 1,000 operations, chunked values (one
// version per stored value, old chunks removed, orphans purged, readers never mixing two
// versions, streamed reads in bounded memory), expired items filtered on read, a server killed and restarted under an open
// storage, a hung server, coalescing locks with takeover, a missing table, credentials
// from a profile file, and tiers with sqlite.
#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "tests/plugins/dynalite_server.h"
#include "tests/plugins/plugin_checks.h"
#include "tests/redis/fixture.h"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using Json = nlohmann::json;
using tests::dynamodb::DynamoServer;
using tests::dynamodb::dynamodb_settings;

DynamoServer* g_server = nullptr;

// A table per scratch folder: every test starts empty.
std::string table_for(const std::string& scratch) {
    return "t_" + std::filesystem::path(scratch).filename().string();
}

const tests::ConformanceBackend k_dynamodb{"dynamodb", [](const std::string& scratch) {
                                               return dynamodb_settings(*g_server, table_for(scratch));
                                           }};

using tests::open_or_fail;

// The items of a table, behind the plugin's back: kind ("h", "c", "l") -> count.
std::map<std::string, int> kinds(const std::string& table) {
    std::map<std::string, int> counts;
    Json next;
    do {
        Json request = {{"TableName", table}};
        if (!next.is_null()) {
            request["ExclusiveStartKey"] = next;
        }
        const Json answer = g_server->call("Scan", request);
        for (const Json& item : answer.value("Items", Json::array())) {
            ++counts[item["t"]["S"].get<std::string>()];
        }
        next = answer.value("LastEvaluatedKey", Json());
    } while (next.is_object());
    return counts;
}

void test_four_processes_of_mixed_operations(void** state) {
    auto& fixture = tests::storage_fixture(state);
    tests::check_many_processes(k_dynamodb, fixture.scratch);
}

void test_a_large_value_is_chunk_items_and_a_head_and_replacing_it_drops_the_old_chunks(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    const std::string key = tests::test_key(1);
    const std::string value = tests::make_value(key, 1, 1 << 20);
    tests::put_text(*fixture.storage, key, value);
    auto counts = kinds(table);
    assert_int_equal(counts["h"], 1);
    assert_int_equal(counts["c"], 3); // 350 KB each
    const std::string other = tests::make_value(key, 2, 800 * 1000);
    tests::put_text(*fixture.storage, key, other);
    counts = kinds(table);
    assert_int_equal(counts["h"], 1);
    assert_int_equal(counts["c"], 3); // the new version's; the old ones went
    auto got = fixture.storage->get(key);
    assert_true(got.has_value() && got->has_value());
    assert_true(*got->value() == other);
    assert_true(fixture.storage->remove(key).value_or(false));
    counts = kinds(table);
    assert_int_equal(counts["h"] + counts["c"], 0);
}

// A Scan page holds at most 1 MB of items, and the filter on heads applies after that:
// pages of chunk items come back empty with a next key, and are followed.
void test_scan_and_usage_follow_pages_the_filter_left_empty(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    const std::string big = tests::make_value(tests::test_key(14), 14, 4 << 20);
    tests::put_text(*fixture.storage, tests::test_key(14), big);
    tests::put_text(*fixture.storage, tests::test_key(15), "small");
    int empty_pages = 0;
    Json next;
    do {
        Json request = {{"TableName", table},
                        {"FilterExpression", "#t = :h"},
                        {"ExpressionAttributeNames", {{"#t", "t"}}},
                        {"ExpressionAttributeValues", {{":h", {{"S", "h"}}}}}};
        if (!next.is_null()) {
            request["ExclusiveStartKey"] = next;
        }
        const Json answer = g_server->call("Scan", request);
        next = answer.value("LastEvaluatedKey", Json());
        empty_pages += answer.value("Count", -1) == 0 && next.is_object() ? 1 : 0;
    } while (next.is_object());
    print_message("%d empty pages with a next key\n", empty_pages);
    assert_true(empty_pages > 0); // the case is really there
    int seen = 0;
    assert_true(fixture.storage->scan([&](const backends::Metadata&) { return ++seen > 0; }).has_value());
    assert_int_equal(seen, 2);
    auto usage = fixture.storage->usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 2);
    assert_int_equal(usage->bytes, big.size() + 5);
}

// A head whose chunks are gone (a clear() that ran under a stream, a chunk lost) is a miss
// and is removed, not an error on every read.
void test_a_head_without_its_chunks_is_a_miss_and_goes(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    const std::string key = tests::test_key(16);
    tests::put_text(*fixture.storage, key, tests::make_value(key, 16, 1 << 20));
    const Json head = g_server->call("GetItem", {{"TableName", table}, {"Key", {{"k", {{"S", key}}}}}});
    const std::string version = head["Item"]["v"]["S"].get<std::string>();
    g_server->call("DeleteItem", {{"TableName", table}, {"Key", {{"k", {{"S", version + "#1"}}}}}});
    auto got = fixture.storage->get(key);
    if (!got) {
        fail_msg("%s", got.error().message.c_str());
    }
    assert_false(got->has_value());
    assert_int_equal(kinds(table)["h"], 0);
}

// A writer replaces a chunked value again and again while readers read it: every read is
// one whole version (its hash checks), or an error, never a mix of two.
void test_readers_never_combine_chunks_of_two_versions(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string key = tests::test_key(2);
    tests::put_text(*fixture.storage, key, tests::make_value(key, 0, 900 * 1000));
    std::atomic<bool> done{false};
    std::atomic<int> whole{0}, torn{0};
    std::thread writer([&] {
        for (uint64_t round = 1; round <= 12; ++round) {
            tests::put_text(*fixture.storage, key, tests::make_value(key, round, 900 * 1000));
        }
        done = true;
    });
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r) {
        readers.emplace_back([&] {
            while (!done) {
                auto got = fixture.storage->get(key);
                if (got && *got) {
                    (tests::value_is_intact(key, *got->value()) ? whole : torn)++;
                }
            }
        });
    }
    writer.join();
    for (auto& reader : readers) {
        reader.join();
    }
    print_message("%d whole reads during 12 replacements\n", whole.load());
    assert_int_equal(torn.load(), 0);
    assert_true(whole.load() > 0);
}

// Streamed reads (ABI 1.1): an 18 MiB value (54 chunk items) read in ranges from the version
// it opened, in bounded memory; replaced or removed, its reader fails.
void test_a_large_value_streams_in_ranges_from_the_version_it_opened(void** state) {
    auto& fixture = tests::storage_fixture(state);
    tests::check_streamed_reads(*fixture.storage, tests::test_key(20), 18u << 20);
}

void test_purge_removes_chunks_no_head_names_once_they_are_old(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    const auto chunk = [&](const std::string& k, int64_t written) {
        g_server->call("PutItem", {{"TableName", table},
                                   {"Item", {{"k", {{"S", k}}}, {"t", {{"S", "c"}}}, {"d", {{"B", "eHl6"}}},
                                             {"w", {{"N", std::to_string(written)}}}}}});
    };
    const int64_t now = std::time(nullptr);
    chunk("00000000deadbeef#1", now - 7200); // a crashed writer's, two hours ago
    chunk("00000000feedface#1", now);       // a writer still at work
    tests::put_text(*fixture.storage, tests::test_key(3), tests::make_value(tests::test_key(3), 3, 400 * 1000));
    auto purged = fixture.storage->purge_expired(now);
    assert_true(purged.has_value());
    assert_int_equal(*purged, 0);
    auto counts = kinds(table);
    assert_int_equal(counts["c"], 2 + 1); // the live value's two and the young orphan
    auto got = fixture.storage->get(tests::test_key(3));
    assert_true(got.has_value() && got->has_value());
}

// The conformance group's purge case uses a made-up clock (expires = 500 s after 1970),
// which the plugin's filter on read (below) rightly turns into misses; this is the same
// with real times, plus the chunks of an expired value.
void test_purge_removes_expired_heads_and_their_chunks(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const int64_t now = std::time(nullptr);
    tests::put_text(*fixture.storage, tests::test_key(11), "never expires");
    tests::put_text(*fixture.storage, tests::test_key(12), tests::make_value(tests::test_key(12), 12, 500 * 1000),
             now - 5);
    tests::put_text(*fixture.storage, tests::test_key(13), "fresh for an hour", now + 3600);
    auto purged = fixture.storage->purge_expired(now);
    assert_true(purged.has_value());
    assert_int_equal(*purged, 1);
    auto counts = kinds(table_for(fixture.scratch));
    assert_int_equal(counts["h"], 2);
    assert_int_equal(counts["c"], 0);
    assert_true(fixture.storage->get(tests::test_key(13)).value_or(std::nullopt).has_value());
}

// DynamoDB's TTL deletes late: an expired item is a miss on read before it goes.
void test_expired_items_are_misses_though_still_stored(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string key = tests::test_key(4);
    tests::put_text(*fixture.storage, key, "expired ten seconds ago", std::time(nullptr) - 10);
    auto got = fixture.storage->get(key);
    assert_true(got.has_value());
    assert_false(got->has_value());
    auto meta = fixture.storage->get_metadata(key);
    assert_true(meta.has_value());
    assert_false(meta->has_value());
    const Json item = g_server->call("GetItem", {{"TableName", table_for(fixture.scratch)},
                                                 {"Key", {{"k", {{"S", key}}}}}});
    assert_true(item.contains("Item"));
    assert_string_equal(item["Item"]["ttl"]["N"].get<std::string>().c_str(),
                        item["Item"]["e"]["N"].get<std::string>().c_str());
}

// Killed: the next operations fail (fail-open) at once, during the back-off without a
// second connect; restarted (on the same port; the server keeps nothing): the same storage
// works again once its table is back.
void test_a_killed_and_restarted_server_fails_open_then_recovers(void** state) {
    auto& fixture = tests::storage_fixture(state);
    backends::Storage& storage = *fixture.storage;
    tests::put_text(storage, tests::test_key(5), "before the kill");
    g_server->kill9();
    int64_t start = tests::redis::now_ms();
    assert_false(storage.get(tests::test_key(5)).has_value());
    assert_true(tests::elapsed_ms(start) < 1500);
    start = tests::redis::now_ms();
    assert_false(storage.put(tests::test_meta(tests::test_key(6)), {}).has_value());
    assert_true(tests::elapsed_ms(start) < 100);
    g_server->start();
    auto reopened = open_or_fail(fixture.settings); // creates the table again
    const bool back = tests::redis::await(
        [&] {
            tests::put_text(*reopened, tests::test_key(5), "after the restart");
            auto got = storage.get(tests::test_key(5));
            return got.has_value() && got->has_value() && *got->value() == "after the restart";
        },
        5000);
    assert_true(back);
}

void test_a_hung_server_is_a_timeout_within_the_request_timeout(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    tests::set_plugin_option(settings, "request_timeout", "300ms");
    tests::check_a_hung_server_times_out(settings, [] { g_server->pause(); }, [] { g_server->resume(); });
}

// An open that times out makes the opens of every process pass through at once for a
// while (backends/backoff.h): the next open does not wait again.
void test_an_open_that_times_out_backs_off_the_next_opens(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    tests::set_plugin_option(settings, "request_timeout", "300");
    settings.name += "_backoff";
    tests::check_an_open_that_times_out_backs_off(settings, [] { g_server->pause(); },
                                                  [] { g_server->resume(); });
}

void test_coalescing_locks_are_exclusive_and_an_expired_one_is_taken_over(void** state) {
    auto& fixture = tests::storage_fixture(state);
    auto other = open_or_fail(fixture.settings);
    const std::string key = tests::test_key(8);
    assert_true(fixture.storage->try_lock(key, 30000).value_or(false));
    assert_false(other->try_lock(key, 30000).value_or(true));
    assert_true(other->unlock(key).has_value()); // not its lock: nothing happens
    assert_false(other->try_lock(key, 30000).value_or(true));
    assert_true(fixture.storage->unlock(key).has_value());
    assert_true(other->try_lock(key, 30000).value_or(false));
    // A holder that died: its lock expires and is taken over.
    const std::string orphan = tests::test_key(9);
    assert_true(fixture.storage->try_lock(orphan, 50).value_or(false));
    assert_false(other->try_lock(orphan, 30000).value_or(true));
    assert_true(tests::redis::await([&] { return other->try_lock(orphan, 30000).value_or(false); }, 5000));
}

void test_a_missing_table_is_an_error_unless_create_table(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    settings.name += "_missing";
    std::erase_if(settings.plugin_tables["dynamodb"], [](const auto& kv) { return kv.first == "create_table"; });
    auto opened = backends::open("dynamodb", settings);
    assert_false(opened.has_value());
    print_message("%s\n", opened.error().message.c_str());
    assert_true(opened.error().message.find("does not exist (set dynamodb.create_table = true") !=
                std::string::npos);
}

// Without the environment's key pair: the profile of AWS_SHARED_CREDENTIALS_FILE (or
// ~/.aws/credentials); with neither, a clear error.
void test_credentials_come_from_a_profile_when_not_in_the_environment(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string file = fixture.scratch + "/credentials";
    std::ofstream(file) << "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"
                           "\n[ci]\naws_access_key_id=AKIDCI\naws_secret_access_key=s3cret-ci\n";
    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SHARED_CREDENTIALS_FILE", file.c_str(), 1);
    setenv("AWS_PROFILE", "ci", 1);
    auto with_profile = backends::open("dynamodb", fixture.settings);
    setenv("AWS_PROFILE", "nobody", 1);
    auto without = backends::open("dynamodb", fixture.settings);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTESTDYNALITE", 1);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_PROFILE");
    if (!with_profile) {
        fail_msg("%s", with_profile.error().message.c_str());
    }
    assert_false(without.has_value());
    print_message("%s\n", without.error().message.c_str());
    assert_true(without.error().message.find("no AWS credentials") != std::string::npos);
    assert_true(without.error().message.find("s3cret") == std::string::npos);
}

void test_sqlite_and_dynamodb_tiers(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    tests::set_plugin_option(settings, "table", table_for(fixture.scratch) + "_tier");
    settings.backend = {"sqlite", "dynamodb"};
    settings.name = fixture.scratch + "/tier.sqlite"; // sqlite's; dynamodb takes the table
    auto opened = backends::open_tiered(settings, [](std::string_view name, const config::Settings& s) {
        return backends::open(name, s);
    });
    if (!opened) {
        fail_msg("%s", opened.error().message.c_str());
    }
    backends::TieredStorage* tiers = backends::as_tiered(**opened);
    assert_non_null(tiers);
    tests::put_text(**opened, tests::test_key(10), "in both tiers");
    auto below = tiers->tier(1).get(tests::test_key(10));
    assert_true(below.has_value() && below->has_value());
    assert_true(tiers->tier(0).remove(tests::test_key(10)).value_or(false));
    auto got = (*opened)->get(tests::test_key(10)); // from dynamodb, filling sqlite again
    assert_true(got.has_value() && got->has_value());
    auto refilled = tiers->tier(0).get(tests::test_key(10));
    assert_true(refilled.has_value() && refilled->has_value());
}

} // namespace

int main(int argc, char** argv) {
    const auto kind = tests::dynamodb::kind_named(argc > 1 ? argv[1] : "dynalite");
    if (!kind) {
        std::fprintf(stderr, "usage: %s [dynalite|dynamodb-local]\n", argv[0]);
        return 2;
    }
    const std::string problem = tests::dynamodb::missing(*kind);
    if (!problem.empty()) {
        std::fprintf(stderr, "%s\n", problem.c_str());
        return 77;
    }
    const std::string server_name = tests::dynamodb::kind_name(*kind);
    // The shared back-off's markers (backends/backoff.h) go in a folder of this test's own.
    const std::string cache_home = tests::redis::make_scratch();
    setenv("XDG_CACHE_HOME", cache_home.c_str(), 1);
    int failed = 0;
    {
        DynamoServer server(*kind);
        g_server = &server;
        std::vector<CMUnitTest> group;
        for (const auto& test : tests::conformance_tests(k_dynamodb)) {
            if (std::strstr(test.name, "test_purge_expired_removes_only_entries_past_their_expiry") == nullptr) {
                group.push_back(test);
            }
        }
        failed += _cmocka_run_group_tests((server_name + ": dynamodb conformance").c_str(), group.data(),
                                          group.size(), nullptr, nullptr);
        const CMUnitTest own[] = {
#define CASE(name) cmocka_unit_test_prestate_setup_teardown(name, tests::storage_fixture_setup, \
    tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_dynamodb))
            CASE(test_four_processes_of_mixed_operations),
            CASE(test_a_large_value_is_chunk_items_and_a_head_and_replacing_it_drops_the_old_chunks),
            CASE(test_readers_never_combine_chunks_of_two_versions),
            CASE(test_a_large_value_streams_in_ranges_from_the_version_it_opened),
            CASE(test_scan_and_usage_follow_pages_the_filter_left_empty),
            CASE(test_a_head_without_its_chunks_is_a_miss_and_goes),
            CASE(test_purge_removes_chunks_no_head_names_once_they_are_old),
            CASE(test_purge_removes_expired_heads_and_their_chunks),
            CASE(test_expired_items_are_misses_though_still_stored),
            CASE(test_a_hung_server_is_a_timeout_within_the_request_timeout),
            CASE(test_an_open_that_times_out_backs_off_the_next_opens),
            CASE(test_coalescing_locks_are_exclusive_and_an_expired_one_is_taken_over),
            CASE(test_a_missing_table_is_an_error_unless_create_table),
            CASE(test_credentials_come_from_a_profile_when_not_in_the_environment),
            CASE(test_sqlite_and_dynamodb_tiers),
            CASE(test_a_killed_and_restarted_server_fails_open_then_recovers),
#undef CASE
        };
        failed += cmocka_run_group_tests_name((server_name + ": dynamodb").c_str(), own, nullptr, nullptr);
        g_server = nullptr;
    }
    tests::redis::remove_tree(cache_home);
    return failed == 0 ? 0 : 1;
}
