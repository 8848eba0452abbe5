// The PostgreSQL plugin against a private PostgreSQL 15 (one server for the whole file):
// the storage conformance group, 4 processes x 1,000 operations, a server killed and
// restarted under an open storage, a hung server, coalescing locks across processes and
// their release when a process dies, a lock held past its ttl taken over, schema versions
// (1 upgraded), eviction over 100,000 rows, access times that never wait for a row another
// writer holds, tiers with sqlite, and passwords that never reach a message.
#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "tests/plugins/pg_server.h"
#include "tests/plugins/plugin_checks.h"
#include "tests/redis/fixture.h"

#include <csignal>
#include <libpq-fe.h>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::elapsed_ms;
using tests::open_or_fail;
using tests::put_text;
using tests::postgres::PgServer;
using tests::postgres::postgres_settings;

PgServer* g_server = nullptr;

// A table per scratch folder: every test starts empty.
std::string table_for(const std::string& scratch) {
    std::string table = "t_" + std::filesystem::path(scratch).filename().string();
    for (char& c : table) {
        // Lower case: the tests' own SQL names it unquoted.
        c = std::isalnum(static_cast<unsigned char>(c))
                ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                : '_';
    }
    return table;
}

const tests::ConformanceBackend k_postgres{"postgres", [](const std::string& scratch) {
                                               return postgres_settings(*g_server, table_for(scratch));
                                           }};

void test_four_processes_of_mixed_operations(void** state) {
    auto& fixture = tests::storage_fixture(state);
    tests::check_many_processes(k_postgres, fixture.scratch);
}

void test_a_value_over_a_megabyte_is_stored_as_chunk_rows(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string key = tests::test_key(1);
    const std::string value = tests::make_value(key, 1, 3 << 20);
    put_text(*fixture.storage, key, value);
    const std::string table = table_for(fixture.scratch);
    const std::string rows = std::to_string((value.size() + (1 << 20) - 1) >> 20); // 1 MiB each
    assert_string_equal(g_server->sql("SELECT count(*) FROM " + table + "_chunks").c_str(),
                        rows.c_str());
    auto got = fixture.storage->get(key);
    assert_true(got.has_value() && got->has_value());
    assert_true(*got->value() == value);
    assert_true(fixture.storage->remove(key).value_or(false));
    assert_string_equal(g_server->sql("SELECT count(*) FROM " + table + "_chunks").c_str(), "0");
    assert_true(fixture.storage->vacuum().has_value());
}

// Killed: the next operations fail (fail-open) within the connect timeout, and during the
// back-off at once; restarted: the same storage object works again with the old entries.
void test_a_killed_and_restarted_server_fails_open_then_recovers(void** state) {
    auto& fixture = tests::storage_fixture(state);
    backends::Storage& storage = *fixture.storage;
    const std::string key = tests::test_key(2);
    put_text(storage, key, "kept across the restart");
    g_server->kill9();
    int64_t start = tests::redis::now_ms();
    assert_false(storage.get(key).has_value());
    assert_true(elapsed_ms(start) < 1500);
    start = tests::redis::now_ms();
    assert_false(storage.put(tests::test_meta(tests::test_key(3)), {}).has_value());
    assert_true(elapsed_ms(start) < 100); // the back-off: no second connect attempt
    // The old postmaster's backends exit when they notice it is gone; then it restarts.
    g_server->start();
    const bool back = tests::redis::await(
        [&] {
            auto got = storage.get(key);
            if (!got) {
                print_message("%s\n", got.error().message.c_str());
            }
            return got.has_value() && got->has_value() &&
                   *got->value() == "kept across the restart";
        },
        10000);
    assert_true(back);
}

void test_a_hung_server_is_a_timeout_within_the_statement_timeout(void** state) {
    config::Settings settings = tests::storage_fixture(state).settings;
    tests::set_plugin_option(settings, "statement_timeout", "300ms");
    tests::check_a_hung_server_times_out(settings, [] { g_server->pause(); }, [] { g_server->resume(); });
}

// An open that times out (a hung server) makes the opens of every process pass through at
// once for a while (backends/backoff.h): the next open does not wait again.
void test_an_open_that_times_out_backs_off_the_next_opens(void** state) {
    config::Settings settings = tests::storage_fixture(state).settings;
    settings.name += "_backoff";
    tests::set_plugin_option(settings, "connect_timeout", "300");
    tests::check_an_open_that_times_out_backs_off(settings, [] { g_server->pause(); },
                                                  [] { g_server->resume(); });
}

void test_coalescing_locks_hold_across_processes_until_released_or_dead(void** state) {
    auto& fixture = tests::storage_fixture(state);
    auto other = open_or_fail(fixture.settings); // its own session
    const std::string key = tests::test_key(5);
    assert_true(fixture.storage->try_lock(key, 30000).value_or(false));
    assert_false(other->try_lock(key, 30000).value_or(true));
    assert_true(fixture.storage->unlock(key).has_value());
    assert_true(other->try_lock(key, 30000).value_or(false));
    assert_true(other->unlock(key).has_value());

    // A process that dies holding a lock loses it with its session.
    const std::string orphan = tests::test_key(6);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    const pid_t child = fork();
    if (child == 0) {
        auto mine = backends::open("postgres", fixture.settings);
        const bool locked = mine && (*mine)->try_lock(orphan, 30000).value_or(false);
        const char answer = locked ? 'y' : 'n';
        (void)!write(ready[1], &answer, 1);
        pause(); // killed below, lock held
        _exit(0);
    }
    char answer = 0;
    assert_int_equal(read(ready[0], &answer, 1), 1);
    assert_int_equal(answer, 'y');
    assert_false(fixture.storage->try_lock(orphan, 30000).value_or(true));
    ::kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    assert_true(tests::redis::await(
        [&] { return fixture.storage->try_lock(orphan, 30000).value_or(false); }, 10000));
    close(ready[0]);
    close(ready[1]);
}

void test_a_table_of_another_schema_version_is_refused(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    assert_string_equal(g_server->sql("UPDATE " + table + "_meta SET version = 3").c_str(), "");
    auto opened = backends::open("postgres", fixture.settings);
    assert_false(opened.has_value());
    if (opened.error().message.find("schema version 3, this plugin reads 2") == std::string::npos) {
        fail_msg("%s", opened.error().message.c_str());
    }
}

// Schema 1 (no totals, no lock rows) is upgraded in place when a process opens it.
void test_a_table_of_schema_1_is_upgraded(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    put_text(*fixture.storage, tests::test_key(1), "abc");
    put_text(*fixture.storage, tests::test_key(2), "defgh");
    assert_string_equal(g_server
                            ->sql("ALTER TABLE " + table +
                                  "_meta DROP COLUMN total, DROP "
                                  "COLUMN entries; DROP TABLE " +
                                  table + "_locks; UPDATE " + table + "_meta SET version = 1")
                            .c_str(),
                        "");
    auto upgraded = open_or_fail(fixture.settings);
    auto usage = upgraded->usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 2);
    assert_int_equal(usage->bytes, 8);
    assert_true(upgraded->try_lock(tests::test_key(1), 30000).value_or(false));
    assert_true(upgraded->unlock(tests::test_key(1)).has_value());
    assert_string_equal(g_server->sql("SELECT version FROM " + table + "_meta").c_str(), "2");
}

// A lock held past its ttl by a live holder is taken over; the old holder's unlock then
// leaves the new holder's lock alone.
void test_a_lock_held_past_its_ttl_is_taken_over(void** state) {
    auto& fixture = tests::storage_fixture(state);
    auto second = open_or_fail(fixture.settings); // other sessions, as other processes
    auto third = open_or_fail(fixture.settings);
    const std::string key = tests::test_key(7);
    constexpr int64_t k_ttl = 1000;
    const int64_t start = tests::redis::now_ms();
    assert_true(fixture.storage->try_lock(key, k_ttl).value_or(false));
    // Refused within its ttl (a loaded machine may already be past it: then taken at once).
    const bool early = second->try_lock(key, 30000).value_or(false);
    assert_true(!early || elapsed_ms(start) >= k_ttl);
    assert_true(early || tests::redis::await(
                             [&] { return second->try_lock(key, 30000).value_or(false); }, 10000));
    assert_true(elapsed_ms(start) >= k_ttl);
    assert_false(third->try_lock(key, 30000).value_or(true)); // the taker's, for 30 s
    assert_true(fixture.storage->unlock(key).has_value());    // the stuck holder wakes up
    assert_false(third->try_lock(key, 30000).value_or(true));
    assert_false(fixture.storage->try_lock(key, 30000).value_or(true));
    assert_true(second->unlock(key).has_value());
    assert_true(third->try_lock(key, 30000).value_or(false));
    assert_true(third->unlock(key).has_value());
}

// max_size over 100,000 rows: the least recently used go, found through the accessed index
// in a batch; the totals row is kept exact (no count or sum over the table).
void test_eviction_over_a_hundred_thousand_rows(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    constexpr int k_rows = 100000;
    constexpr int k_size = 1000;
    assert_string_equal(
        g_server
            ->sql("INSERT INTO " + table +
                  " (key, method, url, status, created, expires, "
                  "size, accessed, value) SELECT 'k' || i, 'GET', 'http://x/' || i, 200, 0, 0, " +
                  std::to_string(k_size) + ", i, '\\x00'::bytea FROM generate_series(1, " +
                  std::to_string(k_rows) + ") AS i; UPDATE " + table +
                  "_meta SET total = " + std::to_string(int64_t{k_rows} * k_size) +
                  ", entries = " + std::to_string(k_rows) + "; ANALYZE " + table)
            .c_str(),
        "");
    config::Settings settings = fixture.settings;
    settings.max_size = uint64_t{k_rows} * k_size;
    auto limited = open_or_fail(settings);
    const std::string value(2500, 'v'); // three rows must go
    int64_t slowest = 0;
    for (int i = 0; i < 5; ++i) {
        const int64_t start = tests::redis::now_ms();
        put_text(*limited, "new" + std::to_string(i), value);
        slowest = std::max(slowest, elapsed_ms(start));
    }
    print_message("5 puts with eviction over %d rows: the slowest took %lld ms\n", k_rows,
                  static_cast<long long>(slowest));
    // 5 x 2500 bytes freed 13 rows of 1000: k1 .. k13 (least recently used first) are gone.
    assert_string_equal(g_server
                            ->sql("SELECT count(*) FROM " + table +
                                  " WHERE key IN ('k1', "
                                  "'k13')")
                            .c_str(),
                        "0");
    assert_string_equal(g_server
                            ->sql("SELECT count(*) FROM " + table +
                                  " WHERE key IN ('k14', "
                                  "'new0', 'new4')")
                            .c_str(),
                        "3");
    auto usage = limited->usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, k_rows - 13 + 5);
    assert_int_equal(usage->bytes, uint64_t{k_rows - 13} * k_size + 5 * value.size());
    assert_true(usage->bytes <= settings.max_size);
    assert_string_equal(g_server
                            ->sql("SELECT (SELECT total FROM " + table +
                                  "_meta) = "
                                  "(SELECT sum(size) FROM " +
                                  table + ")")
                            .c_str(),
                        "t");
}

// Access times are written without waiting for a row another transaction holds (a writer
// replacing or evicting it): that row keeps its time, the others get theirs at once. When
// the batch waited, two writers flushing theirs inside a put could deadlock.
void test_access_times_skip_a_row_another_writer_holds(void** state) {
    auto& fixture = tests::storage_fixture(state);
    const std::string table = table_for(fixture.scratch);
    const std::string held = tests::test_key(1), free = tests::test_key(2);
    put_text(*fixture.storage, held, "held");
    put_text(*fixture.storage, free, "free");
    assert_string_equal(g_server->sql("UPDATE " + table + " SET accessed = 1").c_str(), "");
    PGconn* writer = PQconnectdb(g_server->url().c_str());
    assert_int_equal(PQstatus(writer), CONNECTION_OK);
    PGresult* locked = PQexec(writer, ("BEGIN; SELECT 1 FROM " + table + " WHERE key = '" +
                                       held + "' FOR UPDATE")
                                          .c_str());
    assert_int_equal(PQresultStatus(locked), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(locked), 1);
    PQclear(locked);
    for (const std::string& key : {held, free}) {
        auto got = fixture.storage->get(key);
        assert_true(got && *got);
    }
    const int64_t start = tests::redis::now_ms();
    fixture.storage->flush(); // writes the batch: immediately, the held row left out
    const int64_t took = elapsed_ms(start);
    const std::string times = "SELECT accessed > 1 FROM " + table + " WHERE key = '";
    assert_string_equal(g_server->sql(times + free + "'").c_str(), "t");
    assert_string_equal(g_server->sql(times + held + "'").c_str(), "f");
    PQclear(PQexec(writer, "ROLLBACK"));
    PQfinish(writer);
    print_message("the access-time batch beside a held row took %lld ms\n",
                  static_cast<long long>(took));
}

void test_a_password_never_reaches_a_message(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    const int refusing = tests::redis::free_port();
    settings.plugin_tables["postgres"] = {
        {"url", "postgresql://postgres:s3cret-pw@127.0.0.1:" + std::to_string(refusing) + "/postgres"},
        {"connect_timeout", "500"}};
    auto opened = backends::open("postgres", settings);
    assert_false(opened.has_value());
    const std::string& message = opened.error().message;
    print_message("%s\n", message.c_str());
    assert_true(message.find("s3cret") == std::string::npos);
    assert_true(message.find("127.0.0.1:" + std::to_string(refusing)) != std::string::npos);
    // Nor the location of an open one.
    settings.plugin_tables["postgres"] = {
        {"url", "postgresql://postgres:s3cret-pw@127.0.0.1:" + std::to_string(g_server->port()) + "/postgres"}};
    auto storage = open_or_fail(settings);
    assert_true(storage->location().find("s3cret") == std::string::npos);
}

void test_sqlite_and_postgres_tiers(void** state) {
    auto& fixture = tests::storage_fixture(state);
    config::Settings settings = fixture.settings;
    settings.backend = {"sqlite", "postgres"};
    settings.name = fixture.scratch + "/tier.sqlite"; // sqlite's; postgres takes table below
    settings.plugin_tables["postgres"].push_back({"table", table_for(fixture.scratch) + "_tier"});
    auto opened = backends::open_tiered(settings, [](std::string_view name, const config::Settings& s) {
        return backends::open(name, s);
    });
    if (!opened) {
        fail_msg("%s", opened.error().message.c_str());
    }
    backends::TieredStorage* tiers = backends::as_tiered(**opened);
    assert_non_null(tiers);
    put_text(**opened, tests::test_key(8), "in both tiers");
    auto below = tiers->tier(1).get(tests::test_key(8));
    assert_true(below.has_value() && below->has_value());
    assert_true(tiers->tier(0).remove(tests::test_key(8)).value_or(false));
    auto got = (*opened)->get(tests::test_key(8)); // from postgres, filling sqlite again
    assert_true(got.has_value() && got->has_value());
    auto refilled = tiers->tier(0).get(tests::test_key(8));
    assert_true(refilled.has_value() && refilled->has_value());
}

} // namespace

int main() {
    if (tests::postgres::bindir().empty()) {
        std::fprintf(stderr, "PostgreSQL 15 is not installed (scripts/install-deps.sh)\n");
        return 77;
    }
    const std::string dir = tests::redis::make_scratch();
    // The shared back-off's markers (backends/backoff.h) go in a folder of this test's own.
    const std::string cache_home = tests::redis::make_scratch();
    setenv("XDG_CACHE_HOME", cache_home.c_str(), 1);
    int failed = 0;
    {
        PgServer server(dir);
        g_server = &server;
        failed += tests::run_conformance(k_postgres);
        const CMUnitTest own[] = {
#define CASE(name) cmocka_unit_test_prestate_setup_teardown(name, tests::storage_fixture_setup, \
    tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_postgres))
            CASE(test_four_processes_of_mixed_operations),
            CASE(test_a_value_over_a_megabyte_is_stored_as_chunk_rows),
            CASE(test_a_killed_and_restarted_server_fails_open_then_recovers),
            CASE(test_a_hung_server_is_a_timeout_within_the_statement_timeout),
            CASE(test_an_open_that_times_out_backs_off_the_next_opens),
            CASE(test_coalescing_locks_hold_across_processes_until_released_or_dead),
            CASE(test_a_table_of_another_schema_version_is_refused),
            CASE(test_a_table_of_schema_1_is_upgraded),
            CASE(test_a_lock_held_past_its_ttl_is_taken_over),
            CASE(test_eviction_over_a_hundred_thousand_rows),
            CASE(test_access_times_skip_a_row_another_writer_holds),
            CASE(test_a_password_never_reaches_a_message),
            CASE(test_sqlite_and_postgres_tiers),
#undef CASE
        };
        failed += cmocka_run_group_tests_name("postgres", own, nullptr, nullptr);
        g_server = nullptr;
    }
    tests::redis::remove_tree(dir);
    tests::redis::remove_tree(cache_home);
    return failed == 0 ? 0 : 1;
}
