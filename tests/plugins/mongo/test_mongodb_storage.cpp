// The mongodb or gridfs plugin (argv[1]) against the project's MongoDB wire-protocol test
// server (tests/plugins/mongo/mongo_server.py over mongomock; not a real mongod): the
// storage conformance group, 4 processes x 1,000 operations, where values live (document or
// GridFS, one file per stored version, none left behind), streamed reads in bounded memory,
// expired entries filtered on read, a server killed and restarted under an open storage, a
// hung server, the shared back-off, coalescing locks with takeover, passwords that never
// reach a message, tiers with sqlite.
#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "tests/plugins/mongo/mongo_server.h"
#include "tests/plugins/plugin_checks.h"
#include "tests/redis/fixture.h"

#include <mongoc/mongoc.h>

#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::elapsed_ms;
using tests::open_or_fail;
using tests::put_text;
using tests::mongo::MongoServer;

MongoServer* g_server = nullptr;
std::string g_backend = "mongodb";

// A database per scratch folder: every test starts empty.
std::string database_for(const std::string& scratch) {
    std::string name = "t_" + std::filesystem::path(scratch).filename().string();
    for (char& c : name) {
        c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    }
    return name;
}

tests::ConformanceBackend g_conformance{"", [](const std::string& scratch) {
                                            return tests::mongo::mongo_settings(*g_server, g_backend,
                                                                                database_for(scratch));
                                        }};

// Documents in database.collection, counted behind the plugin's back.
int64_t count(const std::string& database, const std::string& collection) {
    mongoc_client_t* client = mongoc_client_new(g_server->url().c_str());
    mongoc_collection_t* c = mongoc_client_get_collection(client, database.c_str(), collection.c_str());
    bson_t filter = BSON_INITIALIZER;
    bson_error_t error;
    const int64_t n = mongoc_collection_count_documents(c, &filter, nullptr, nullptr, nullptr, &error);
    if (n < 0) {
        fail_msg("count %s.%s: %s", database.c_str(), collection.c_str(), error.message);
    }
    bson_destroy(&filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return n;
}

std::string bucket() {
    return g_backend == "gridfs" ? "fs" : "responses";
}

std::optional<std::string> get_text(backends::Storage& storage, const std::string& key) {
    auto got = storage.get(key);
    if (!got) {
        fail_msg("get: %s", got.error().message.c_str());
    }
    return got->has_value() ? std::optional<std::string>(*got->value()) : std::nullopt;
}

// 4 x 1,000 operations for both. A gridfs put is five commands to the Python test server (a
// chunk, the file, the head, the old file's two deletions): 4 x 1,000 took 18.7 s under a
// load of 16 while mongomock scanned whole collections for every lookup, 3.1 s with the
// server's hash indexes (mongo_server.py).
void test_four_processes_of_mixed_operations(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const int64_t start = tests::redis::now_ms();
    tests::check_many_processes(g_conformance, fixture.scratch, 1000);
    print_message("4 x 1,000 operations in %lld ms\n", static_cast<long long>(elapsed_ms(start)));
}

// mongodb: a value over 15 MiB goes to GridFS, smaller ones stay in the document; gridfs:
// every value's bytes are a GridFS file. Each version its own file; the replaced one, and
// the file of a removed entry, are deleted.
void test_values_live_in_documents_or_gridfs_one_file_per_version(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string db = database_for(fixture.scratch);
    const std::string files = bucket() + ".files", chunks = bucket() + ".chunks";
    const std::string key = tests::test_key(1);
    put_text(*fixture.storage, key, "small");
    assert_int_equal(count(db, files), g_backend == "gridfs" ? 1 : 0);
    const std::string big = tests::make_value(key, 1, 16u << 20);
    put_text(*fixture.storage, key, big);
    assert_int_equal(count(db, files), 1);
    assert_int_equal(count(db, chunks), (big.size() + 255 * 1024 - 1) / (255 * 1024));
    assert_true(get_text(*fixture.storage, key) == big);
    const std::string bigger = tests::make_value(key, 2, (16u << 20) + 1);
    put_text(*fixture.storage, key, bigger); // a new file; the old one deleted after
    assert_int_equal(count(db, files), 1);
    assert_true(get_text(*fixture.storage, key) == bigger);
    // A streamed value: the head in the document, the tail in GridFS once over 15 MiB.
    auto stream = fixture.storage->begin_put(0);
    assert_true(stream.has_value());
    const std::string tail = tests::make_value(key, 3, 16u << 20);
    for (size_t at = 0; at < tail.size(); at += 1 << 20) {
        assert_true((*stream)->append(std::string_view(tail).substr(at, 1 << 20)).has_value());
    }
    assert_true((*stream)->commit(tests::test_meta(key), "HEAD").has_value());
    stream->reset();
    assert_true(get_text(*fixture.storage, key) == "HEAD" + tail);
    assert_int_equal(count(db, files), 1);
    assert_true(fixture.storage->remove(key).value_or(false));
    assert_int_equal(count(db, files), 0);
    assert_int_equal(count(db, chunks), 0);
    // A stream that is not committed leaves nothing behind.
    stream = fixture.storage->begin_put(0);
    assert_true(stream.has_value());
    assert_true((*stream)->append(tail).has_value());
    stream->reset();
    assert_int_equal(count(db, chunks), 0);
    assert_false(get_text(*fixture.storage, key).has_value());
}

// Streamed reads (ABI 1.1): an 18 MiB value (a GridFS file of 73 chunks, in both plugins)
// read in ranges of the file it opened, in bounded memory; replaced or removed, its reader
// fails.
void test_a_large_value_streams_in_ranges_from_the_file_it_opened(void** state) {
    auto& fixture = tests::storage_fixture(state);
    tests::check_streamed_reads(*fixture.storage, tests::test_key(20), 18u << 20);
}

// The heads' collection name.
std::string heads() {
    return g_backend == "gridfs" ? "fs.heads" : "responses";
}

// Runs `command` on the test server's database `database` behind the plugin's back.
void command(const std::string& database, const bson_t* body, bson_t* reply) {
    mongoc_client_t* client = mongoc_client_new(g_server->url().c_str());
    bson_error_t error;
    const bool ok = mongoc_client_command_simple(client, database.c_str(), body, nullptr, reply, &error);
    mongoc_client_destroy(client);
    if (!ok) {
        fail_msg("command on %s: %s", database.c_str(), error.message);
    }
}

// MongoDB's TTL monitor runs once a minute: reads filter expired entries themselves. Here
// an entry's expires is moved into the past behind the plugin's back, its expire_at (the
// TTL index's field) left in the future.
void test_expired_entries_are_filtered_on_read_and_ttl_indexed(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string db = database_for(fixture.scratch);
    const int64_t now = std::time(nullptr);
    put_text(*fixture.storage, tests::test_key(2), "soon past", now + 3600);
    put_text(*fixture.storage, tests::test_key(3), "future", now + 3600);
    bson_t* update = BCON_NEW("update", BCON_UTF8(heads().c_str()), "updates", "[", "{", "q", "{", "_id",
                              BCON_UTF8(tests::test_key(2).c_str()), "}", "u", "{", "$set", "{",
                              "expires", BCON_INT64(now - 1), "}", "}", "}", "]");
    bson_t reply;
    command(db, update, &reply);
    bson_destroy(update);
    bson_destroy(&reply);
    assert_int_equal(count(db, heads()), 2);
    assert_false(get_text(*fixture.storage, tests::test_key(2)).has_value());
    assert_true(get_text(*fixture.storage, tests::test_key(3)) == "future");
    auto meta = fixture.storage->get_metadata(tests::test_key(2));
    assert_true(meta.has_value() && !meta->has_value());
    int seen = 0;
    assert_true(fixture.storage->scan([&](const backends::Metadata&) { return ++seen > 0; }).has_value());
    assert_int_equal(seen, 1);
    auto usage = fixture.storage->usage();
    assert_true(usage.has_value() && usage->entries == 1);
    auto purged = fixture.storage->purge_expired(now);
    assert_true(purged.has_value() && *purged == 1);
    assert_int_equal(count(db, heads()), 1);
    // The TTL index: MongoDB itself deletes a head once its expire_at has passed.
    bson_t* list = BCON_NEW("listIndexes", BCON_UTF8(heads().c_str()));
    command(db, list, &reply);
    bson_destroy(list);
    char* json = bson_as_relaxed_extended_json(&reply, nullptr);
    print_message("%s\n", json);
    assert_non_null(std::strstr(json, "{ \"key\" : { \"expire_at\" : 1 }, \"expireAfterSeconds\" : 0, \"name\" : \"expire_at_ttl\""));
    bson_free(json);
    bson_destroy(&reply);
}

// Killed: the next operations fail (fail-open) within the connect timeout, then at once
// for a moment; restarted (empty: the test server keeps its data in memory), the same
// storage object works again.
void test_a_killed_and_restarted_server_fails_open_then_recovers(void** state) {
    auto& fixture = tests::storage_fixture(state);
    backends::Storage& storage = *fixture.storage;
    const std::string key = tests::test_key(4);
    put_text(storage, key, "before the kill");
    g_server->kill9();
    int64_t start = tests::redis::now_ms();
    assert_false(storage.get(key).has_value());
    assert_true(elapsed_ms(start) < 2500);
    start = tests::redis::now_ms();
    assert_false(storage.put(tests::test_meta(tests::test_key(5)), {}).has_value());
    assert_true(elapsed_ms(start) < 100); // no second connect attempt at once
    g_server->start();
    const bool back = tests::redis::await(
        [&] {
            std::string_view text = "after the restart";
            if (!storage.put(tests::test_meta(key), std::span(&text, 1))) {
                return false;
            }
            auto got = storage.get(key);
            return got.has_value() && got->has_value() && *got->value() == text;
        },
        10000);
    assert_true(back);
}

void test_a_hung_server_is_a_timeout_within_the_operation_timeout(void** state) {
    config::Settings settings = tests::storage_fixture(state).settings;
    tests::set_plugin_option(settings, "operation_timeout", "300ms");
    tests::check_a_hung_server_times_out(settings, [] { g_server->pause(); }, [] { g_server->resume(); });
}

// An open that times out makes the opens of every process pass through at once for a
// while (backends/backoff.h).
void test_an_open_that_times_out_backs_off_the_next_opens(void** state) {
    config::Settings settings = tests::storage_fixture(state).settings;
    settings.name += "_backoff";
    tests::set_plugin_option(settings, "connect_timeout", "300");
    tests::check_an_open_that_times_out_backs_off(settings, [] { g_server->pause(); },
                                                  [] { g_server->resume(); });
}

// A lock document per key: one holder at a time across processes; a holder that died is
// taken over once its time has passed.
void test_coalescing_locks_are_documents_taken_over_after_their_time(void** state) {
    auto& fixture = tests::storage_fixture(state);
    auto other = open_or_fail(fixture.settings);
    const std::string key = tests::test_key(7);
    assert_true(fixture.storage->try_lock(key, 30000).value_or(false));
    assert_false(other->try_lock(key, 30000).value_or(true));
    assert_true(other->unlock(key).has_value()); // not its lock: nothing happens
    assert_false(other->try_lock(key, 30000).value_or(true));
    assert_true(fixture.storage->unlock(key).has_value());
    assert_true(other->try_lock(key, 30000).value_or(false));
    assert_true(other->unlock(key).has_value());

    const std::string orphan = tests::test_key(8);
    const pid_t child = fork();
    if (child == 0) {
        auto mine = backends::open(g_backend, fixture.settings);
        _exit(mine && (*mine)->try_lock(orphan, 500).value_or(false) ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const int64_t start = tests::redis::now_ms();
    assert_false(fixture.storage->try_lock(orphan, 30000).value_or(true));
    assert_true(tests::redis::await([&] { return fixture.storage->try_lock(orphan, 30000).value_or(false); },
                                    5000));
    assert_true(elapsed_ms(start) >= 300);
}

void test_a_password_never_reaches_a_message(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    const int refusing = tests::redis::free_port();
    tests::set_plugin_option(settings, "url", "mongodb://cache:s3cret-pw@127.0.0.1:" + std::to_string(refusing) + "/");
    tests::set_plugin_option(settings, "connect_timeout", "500");
    auto opened = backends::open(g_backend, settings);
    assert_false(opened.has_value());
    const std::string& message = opened.error().message;
    print_message("%s\n", message.c_str());
    assert_true(message.find("s3cret") == std::string::npos);
    assert_true(message.find("127.0.0.1:" + std::to_string(refusing)) != std::string::npos);
    tests::set_plugin_option(settings, "url", "mongodb://cache:s3cret-pw@[not a uri");
    opened = backends::open(g_backend, settings);
    assert_false(opened.has_value());
    print_message("%s\n", opened.error().message.c_str());
    assert_true(opened.error().message.find("s3cret") == std::string::npos);
}

void test_sqlite_and_mongodb_tiers(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    tests::set_plugin_option(settings, "database", database_for(fixture.scratch) + "_tier");
    settings.backend = {"sqlite", g_backend};
    settings.name = fixture.scratch + "/tier.sqlite"; // sqlite's; the plugin takes database above
    auto opened = backends::open_tiered(settings, [](std::string_view name, const config::Settings& s) {
        return backends::open(name, s);
    });
    if (!opened) {
        fail_msg("%s", opened.error().message.c_str());
    }
    backends::TieredStorage* tiers = backends::as_tiered(**opened);
    assert_non_null(tiers);
    put_text(**opened, tests::test_key(9), "in both tiers");
    auto below = tiers->tier(1).get(tests::test_key(9));
    assert_true(below.has_value() && below->has_value());
    assert_int_equal(count(database_for(fixture.scratch) + "_tier", heads()), 1);
    assert_true(tiers->tier(0).remove(tests::test_key(9)).value_or(false));
    auto got = (*opened)->get(tests::test_key(9)); // from the plugin, filling sqlite again
    assert_true(got.has_value() && got->has_value());
    auto refilled = tiers->tier(0).get(tests::test_key(9));
    assert_true(refilled.has_value() && refilled->has_value());
}

// purge_expired with a made-up clock (expires = 500 s after 1970) does not apply: such
// entries are expired now, and reads filter them (test_expired_entries_are_filtered_on_read_and_ttl_indexed).
bool applies(const char* name) {
    return std::strstr(name, "test_purge_expired_removes_only_entries_past_their_expiry") == nullptr;
}

} // namespace

int main(int argc, char** argv) {
    g_backend = argc > 1 ? argv[1] : "mongodb";
    g_conformance.backend = g_backend;
    mongoc_log_set_handler(nullptr, nullptr); // the test's own libmongoc: quiet
    mongoc_init();
    // The shared back-off's markers (backends/backoff.h) go in a folder of this test's own.
    const std::string cache_home = tests::redis::make_scratch();
    setenv("XDG_CACHE_HOME", cache_home.c_str(), 1);
    int failed = 0;
    {
        MongoServer server;
        g_server = &server;
        std::vector<CMUnitTest> group;
        for (const auto& test : tests::conformance_tests(g_conformance)) {
            if (applies(test.name)) {
                group.push_back(test);
            }
        }
        const std::string name = g_backend + " conformance";
        failed += _cmocka_run_group_tests(name.c_str(), group.data(), group.size(), nullptr, nullptr);
        const CMUnitTest own[] = {
#define CASE(name) cmocka_unit_test_prestate_setup_teardown(name, tests::storage_fixture_setup, \
    tests::storage_fixture_teardown, &g_conformance)
            CASE(test_four_processes_of_mixed_operations),
            CASE(test_values_live_in_documents_or_gridfs_one_file_per_version),
            CASE(test_a_large_value_streams_in_ranges_from_the_file_it_opened),
            CASE(test_expired_entries_are_filtered_on_read_and_ttl_indexed),
            CASE(test_a_killed_and_restarted_server_fails_open_then_recovers),
            CASE(test_a_hung_server_is_a_timeout_within_the_operation_timeout),
            CASE(test_an_open_that_times_out_backs_off_the_next_opens),
            CASE(test_coalescing_locks_are_documents_taken_over_after_their_time),
            CASE(test_a_password_never_reaches_a_message),
            CASE(test_sqlite_and_mongodb_tiers),
#undef CASE
        };
        failed += cmocka_run_group_tests_name(g_backend.c_str(), own, nullptr, nullptr);
        g_server = nullptr;
    }
    tests::redis::remove_tree(cache_home);
    mongoc_cleanup();
    return failed == 0 ? 0 : 1;
}
