// SQLite backend: the conformance group, many processes on one file, recovery from a file
// that is not (or no longer) a database, owner-only files, cache naming, shared in-memory
// databases and busy-timeout reporting.
#include "backends/registry.h"
#include "backends/sqlite_storage.h"
#include "core/log.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <vector>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::scratch_of;
using tests::scratch_setup;
using tests::scratch_teardown;
using tests::test_key;
using tests::test_meta;

const tests::ConformanceBackend k_sqlite{"sqlite", tests::sqlite_settings};

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const std::string& value) : m_name(name) {
        if (const char* old = std::getenv(name)) {
            m_old = old;
        }
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (m_old) {
            ::setenv(m_name, m_old->c_str(), 1);
        } else {
            ::unsetenv(m_name);
        }
    }

  private:
    const char* m_name;
    std::optional<std::string> m_old;
};

std::unique_ptr<backends::Storage> open_or_fail(const config::Settings& settings) {
    auto opened = backends::open("sqlite", settings);
    if (!opened) {
        fail_msg("open: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

void put_text(backends::Storage& storage, uint64_t n, std::string_view text) {
    auto done = storage.put(test_meta(test_key(n)), std::span(&text, 1));
    if (!done) {
        fail_msg("put: %s", done.error().message.c_str());
    }
}

bool has_entry(backends::Storage& storage, uint64_t n) {
    auto got = storage.get(test_key(n));
    if (!got) {
        fail_msg("get: %s", got.error().message.c_str());
    }
    return got->has_value();
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    assert_int_equal(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

int count_lines_containing(const std::string& path, std::string_view needle) {
    std::ifstream in(path);
    int count = 0;
    for (std::string line; std::getline(in, line);) {
        count += line.find(needle) != std::string::npos ? 1 : 0;
    }
    return count;
}

std::vector<std::string> names_starting_with(const std::string& dir, std::string_view prefix) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::string name = entry.path().filename().string();
        if (name.starts_with(prefix)) {
            names.push_back(name);
        }
    }
    return names;
}

// Opens a cache whose file was damaged in `damage`, and checks that it was moved aside with
// one warning and that the fresh database works.
void check_recovers_from(const std::string& scratch,
                         const std::function<void(const std::string&)>& damage) {
    config::Settings settings = k_sqlite.settings(scratch);
    {
        auto storage = open_or_fail(settings);
        put_text(*storage, 1, "before the damage");
    }
    damage(settings.name);
    std::string log = scratch + "/log.txt";
    core::log::configure(config::LogLevel::warning, log);
    auto storage = open_or_fail(settings);
    core::log::configure(config::LogLevel::warning, "");

    assert_false(has_entry(*storage, 1));
    put_text(*storage, 2, "after the recovery");
    assert_true(has_entry(*storage, 2));
    // Exactly one database moved aside (its WAL, when there is one, goes along with it).
    auto aside = names_starting_with(scratch, "cache.sqlite.corrupt-");
    std::erase_if(aside, [](const std::string& name) { return name.ends_with("-wal"); });
    assert_int_equal(aside.size(), 1);
    assert_int_equal(count_lines_containing(log, "corrupt"), 1);
}

void test_four_processes_share_one_database_without_errors_or_torn_values(void** state) {
    tests::check_many_processes(k_sqlite, scratch_of(state));
}

void test_a_garbage_file_is_moved_aside_and_replaced_by_a_fresh_database(void** state) {
    check_recovers_from(scratch_of(state), [](const std::string& path) {
        std::string garbage;
        for (int i = 0; i < 8192; ++i) {
            garbage += static_cast<char>((i * 7919) >> 3);
        }
        std::ofstream(path, std::ios::binary | std::ios::trunc) << garbage;
    });
}

void test_damaged_pages_behind_a_valid_header_are_detected_and_replaced(void** state) {
    check_recovers_from(scratch_of(state), [](const std::string& path) {
        std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
        file.seekp(100); // keep the 100-byte header, destroy the schema page behind it
        file << std::string(4000, '\xEE');
    });
}

void test_garbage_written_under_an_open_cache_never_crashes_and_is_replaced(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    std::string log = scratch_of(state) + "/log.txt";
    core::log::configure(config::LogLevel::warning, log);
    auto storage = open_or_fail(settings);
    for (uint64_t i = 0; i < 50; ++i) {
        put_text(*storage, i, std::string(3000, 'a'));
    }
    { // checkpoint so that the entries live in the main file, then overwrite it in place
        auto vacuumed = storage->vacuum();
        assert_true(vacuumed.has_value());
        auto size = std::filesystem::file_size(settings.name);
        std::fstream file(settings.name, std::ios::binary | std::ios::in | std::ios::out);
        file << std::string(size, '\x5a');
    }
    // Each read is the right value, a miss or an error: never a crash, never wrong bytes.
    for (uint64_t i = 0; i < 50; ++i) {
        auto got = storage->get(test_key(i));
        if (got && *got) {
            assert_string_equal((*got)->get()->c_str(), std::string(3000, 'a').c_str());
        }
    }
    // Writing works again at the latest on the second try (after the file was replaced).
    bool stored = false;
    for (int attempt = 0; attempt < 2 && !stored; ++attempt) {
        std::string_view text = "fresh";
        stored = storage->put(test_meta(test_key(100)), std::span(&text, 1)).has_value() &&
                 has_entry(*storage, 100);
    }
    core::log::configure(config::LogLevel::warning, "");
    assert_true(stored);
    assert_true(count_lines_containing(log, "corrupt") <= 1);
}

void test_database_files_and_folders_are_owner_only(void** state) {
    const std::string& scratch = scratch_of(state);
    config::Settings settings;
    settings.name = scratch + "/a/b/cache"; // no extension: ".sqlite" is added
    auto storage = open_or_fail(settings);
    put_text(*storage, 1, "private");
    assert_int_equal(mode_of(scratch + "/a"), 0700);
    assert_int_equal(mode_of(scratch + "/a/b"), 0700);
    assert_int_equal(mode_of(scratch + "/a/b/cache.sqlite"), 0600);
    assert_int_equal(mode_of(scratch + "/a/b/cache.sqlite-wal"), 0600);
    assert_int_equal(mode_of(scratch + "/a/b/cache.sqlite-shm"), 0600);
}

void test_cache_names_resolve_like_requests_cache(void** state) {
    const std::string& scratch = scratch_of(state);
    ScopedEnv xdg("XDG_CACHE_HOME", scratch + "/xdg");
    ScopedEnv tmp("TMPDIR", scratch + "/tmp");
    config::Settings settings;
    assert_string_equal(backends::sqlite_database_path(settings).c_str(),
                        (scratch + "/xdg/curlcache/http_cache.sqlite").c_str());
    settings.name = "mine";
    assert_string_equal(backends::sqlite_database_path(settings).c_str(), "mine.sqlite");
    settings.name = "mine.db";
    assert_string_equal(backends::sqlite_database_path(settings).c_str(), "mine.db");
    settings.sqlite_use_cache_dir = true;
    assert_string_equal(backends::sqlite_database_path(settings).c_str(),
                        (scratch + "/xdg/curlcache/mine.db").c_str());
    settings.sqlite_use_cache_dir = false;
    settings.sqlite_use_temp = true;
    // Through a per-user folder: a shared name in a temp folder could be another user's.
    assert_string_equal(backends::sqlite_database_path(settings).c_str(),
                        (scratch + "/tmp/curlcache-" + std::to_string(::geteuid()) + "/mine.db")
                            .c_str());
    settings.name = "/abs/olute";
    assert_string_equal(backends::sqlite_database_path(settings).c_str(), "/abs/olute.sqlite");

    // The default location is created on first open.
    auto storage = open_or_fail(config::Settings{});
    put_text(*storage, 1, "default");
    assert_int_equal(mode_of(scratch + "/xdg/curlcache"), 0700);
    assert_int_equal(mode_of(scratch + "/xdg/curlcache/http_cache.sqlite"), 0600);
}

void test_memory_databases_with_the_same_name_are_shared(void** /*state*/) {
    config::Settings settings;
    settings.sqlite_use_memory = true;
    settings.name = "shared-" + std::to_string(::getpid());
    auto first = open_or_fail(settings);
    auto second = open_or_fail(settings);
    put_text(*first, 1, "in memory");
    assert_true(has_entry(*second, 1));
    settings.name = "other-" + std::to_string(::getpid());
    auto other = open_or_fail(settings);
    assert_false(has_entry(*other, 1));
}

void test_a_writer_holding_the_lock_past_the_busy_timeout_is_a_timeout(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    settings.sqlite_busy_timeout_ms = 50;
    auto storage = open_or_fail(settings);
    put_text(*storage, 1, "readable while locked");

    sqlite3* raw = nullptr;
    assert_int_equal(sqlite3_open(settings.name.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> other(raw, sqlite3_close);
    assert_int_equal(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
                     SQLITE_OK);

    std::string_view text = "blocked";
    auto done = storage->put(test_meta(test_key(2)), std::span(&text, 1));
    assert_false(done.has_value());
    assert_int_equal(static_cast<int>(done.error().kind),
                     static_cast<int>(backends::ErrorKind::timeout));
    assert_true(has_entry(*storage, 1)); // WAL: readers are not blocked by the writer

    assert_int_equal(sqlite3_exec(other.get(), "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    put_text(*storage, 2, "after the lock");
    assert_true(has_entry(*storage, 2));
}

void test_a_forked_child_can_keep_using_the_parents_storage(void** state) {
    auto storage = open_or_fail(k_sqlite.settings(scratch_of(state)));
    put_text(*storage, 1, "from the parent");
    pid_t pid = ::fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        std::string_view text = "from the child";
        bool ok = storage->put(test_meta(test_key(2)), std::span(&text, 1)).has_value();
        auto got = storage->get(test_key(1));
        ok = ok && got.has_value() && got->has_value();
        storage.reset();
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(::waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(has_entry(*storage, 2));
    put_text(*storage, 3, "parent still fine");
    assert_true(has_entry(*storage, 3));
}

uint64_t bytes_on_disk(const std::string& database) {
    uint64_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
        std::error_code missing;
        auto size = std::filesystem::file_size(database + suffix, missing);
        total += missing ? 0 : size;
    }
    return total;
}

void test_vacuum_gives_back_the_space_of_removed_entries(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    auto storage = open_or_fail(settings);
    std::string value(20000, 'v');
    for (uint64_t i = 0; i < 100; ++i) {
        put_text(*storage, i, value);
    }
    for (uint64_t i = 0; i < 95; ++i) {
        assert_true(storage->remove(test_key(i)).has_value());
    }
    uint64_t before = bytes_on_disk(settings.name);
    assert_true(storage->vacuum().has_value());
    uint64_t after = bytes_on_disk(settings.name);
    assert_true(after * 4 < before);
    assert_true(has_entry(*storage, 99));
    assert_false(has_entry(*storage, 0));
}

int64_t query_integer(sqlite3* db, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &raw, nullptr), SQLITE_OK);
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, sqlite3_finalize);
    assert_int_equal(sqlite3_step(stmt.get()), SQLITE_ROW);
    return sqlite3_column_int64(stmt.get(), 0);
}

// purge, vacuum and clear find the body files rows name through a partial index, not by
// reading every row (3 s a purge at a million entries): the query plan says so, for a new
// database and for one an older version made without the index (after its first purge).
void test_purge_finds_body_files_through_an_index_not_a_scan(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    auto plan_uses_index = [&] {
        sqlite3* raw = nullptr;
        assert_int_equal(sqlite3_open(settings.name.c_str(), &raw), SQLITE_OK);
        std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, sqlite3_close);
        sqlite3_stmt* stmt_raw = nullptr;
        assert_int_equal(sqlite3_prepare_v2(db.get(),
                                            "EXPLAIN QUERY PLAN SELECT body FROM entries WHERE "
                                            "body IS NOT NULL",
                                            -1, &stmt_raw, nullptr),
                         SQLITE_OK);
        std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(stmt_raw, sqlite3_finalize);
        std::string plan;
        while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
            plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 3));
        }
        return plan.find("entries_body") != std::string::npos;
    };
    {
        auto storage = open_or_fail(settings);
        put_text(*storage, 1, "one");
    }
    assert_true(plan_uses_index());
    {
        sqlite3* raw = nullptr;
        assert_int_equal(sqlite3_open(settings.name.c_str(), &raw), SQLITE_OK);
        std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, sqlite3_close);
        assert_int_equal(sqlite3_exec(db.get(), "DROP INDEX entries_body", nullptr, nullptr, nullptr),
                         SQLITE_OK);
    }
    assert_false(plan_uses_index()); // as an older version left it
    auto storage = open_or_fail(settings);
    assert_true(storage->purge_expired(0).has_value());
    assert_true(plan_uses_index());
    assert_true(has_entry(*storage, 1));
}

void test_many_hits_record_access_times_without_waiting_for_a_writer(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    auto storage = open_or_fail(settings);
    constexpr uint64_t k_entries = 1100; // more than one batch of access times
    for (uint64_t i = 0; i < k_entries; ++i) {
        put_text(*storage, i, "x");
    }
    sqlite3* raw = nullptr;
    assert_int_equal(sqlite3_open(settings.name.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> other(raw, sqlite3_close);
    int64_t written = query_integer(other.get(), "SELECT max(accessed) FROM entries");

    // Another process holds the write lock: hits neither wait for it nor fail.
    assert_int_equal(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
                     SQLITE_OK);
    auto start = std::chrono::steady_clock::now();
    uint64_t hits = 0;
    for (uint64_t i = 0; i < k_entries; ++i) {
        auto got = storage->get(test_key(i));
        hits += got && *got ? 1 : 0;
    }
    auto waited = std::chrono::steady_clock::now() - start;
    // Released before asserting: a failed assertion must not leave the lock to later tests.
    assert_int_equal(sqlite3_exec(other.get(), "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    assert_int_equal(hits, k_entries);
    assert_true(waited < std::chrono::milliseconds(settings.sqlite_busy_timeout_ms / 2));

    // Without a writer, a full batch of hits is written without any put.
    for (uint64_t i = 0; i < k_entries; ++i) {
        assert_true(has_entry(*storage, i));
    }
    std::string newer = "SELECT count(*) FROM entries WHERE accessed > " + std::to_string(written);
    assert_true(query_integer(other.get(), newer.c_str()) >= 1024);
}

// A hit's value is copied into a string the connection hands out again once no one holds
// it: a value a caller still holds never changes under later hits, of any size.
void test_values_held_by_callers_never_change_under_later_hits(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    auto storage = open_or_fail(settings);
    const size_t sizes[] = {1024, 100, 4096, 0, 16384};
    std::vector<std::string> values;
    for (uint64_t i = 0; i < std::size(sizes); ++i) {
        values.push_back(tests::make_value(test_key(i), i, sizes[i]));
        std::string_view value = values.back();
        assert_true(storage->put(test_meta(test_key(i)), std::span(&value, 1)).has_value());
    }
    auto get = [&](uint64_t i) {
        auto got = storage->get(test_key(i));
        assert_true(got && *got);
        assert_true(***got == values[i]);
        return **got;
    };
    std::vector<backends::Blob> held;
    for (int round = 0; round < 3; ++round) {
        for (uint64_t i = 0; i < std::size(sizes); ++i) {
            held.push_back(get(i));
            (void)get((i + 1) % std::size(sizes)); // a value let go at once
            for (size_t h = 0; h < held.size(); ++h) {
                assert_true(*held[h] == values[h % std::size(sizes)]);
            }
        }
        held.clear();
    }
}

// A process that only had hits writes at exit only the access times that move an entry's
// stored one by 10 minutes or more (the stored time as its hit read it).
void test_a_reading_process_writes_only_access_times_older_than_ten_minutes(void** state) {
    config::Settings settings = k_sqlite.settings(scratch_of(state));
    {
        auto storage = open_or_fail(settings);
        put_text(*storage, 1, "recent");
        put_text(*storage, 2, "old");
    }
    sqlite3* raw = nullptr;
    assert_int_equal(sqlite3_open(settings.name.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, sqlite3_close);
    int64_t eleven_minutes = int64_t{11} * 60 * 1000 * 1000;
    std::string age = "UPDATE entries SET accessed = accessed - " + std::to_string(eleven_minutes) +
                      " WHERE key = '" + test_key(2) + "'";
    assert_int_equal(sqlite3_exec(db.get(), age.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    auto accessed = [&](uint64_t n) {
        std::string sql = "SELECT accessed FROM entries WHERE key = '" + test_key(n) + "'";
        return query_integer(db.get(), sql.c_str());
    };
    int64_t recent = accessed(1), old = accessed(2);
    {
        auto storage = open_or_fail(settings);
        assert_true(has_entry(*storage, 1));
        assert_true(has_entry(*storage, 2));
    }
    assert_int_equal(accessed(1), recent);
    assert_true(accessed(2) > old + eleven_minutes / 2);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_four_processes_share_one_database_without_errors_or_torn_values, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_garbage_file_is_moved_aside_and_replaced_by_a_fresh_database, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_damaged_pages_behind_a_valid_header_are_detected_and_replaced, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_garbage_written_under_an_open_cache_never_crashes_and_is_replaced, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(test_database_files_and_folders_are_owner_only,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_cache_names_resolve_like_requests_cache, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_memory_databases_with_the_same_name_are_shared,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_writer_holding_the_lock_past_the_busy_timeout_is_a_timeout, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_many_hits_record_access_times_without_waiting_for_a_writer, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(test_vacuum_gives_back_the_space_of_removed_entries,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_purge_finds_body_files_through_an_index_not_a_scan,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_a_forked_child_can_keep_using_the_parents_storage,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_values_held_by_callers_never_change_under_later_hits,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_reading_process_writes_only_access_times_older_than_ten_minutes, scratch_setup,
            scratch_teardown),
    };
    int failed = tests::run_conformance(k_sqlite);
    failed += cmocka_run_group_tests_name("sqlite storage", tests, nullptr, nullptr);
    return failed;
}
