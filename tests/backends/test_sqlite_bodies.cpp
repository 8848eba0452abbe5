// SQLite body files: large values live in "<database>.bodies/", small ones inline; every
// path that deletes a row deletes its file; orphans and stale temp files are swept; a
// damaged or missing file is a miss; owner-only modes; many processes; an old schema.
#include "backends/registry.h"
#include "backends/sqlite_storage.h"
#include "backends/tiered_storage.h"
#include "core/cache.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::make_value;
using tests::test_key;
using tests::test_meta;
namespace fs = std::filesystem;

int setup(void** state) {
    *state = new std::string(tests::make_scratch());
    return 0;
}

int teardown(void** state) {
    auto* scratch = static_cast<std::string*>(*state);
    tests::remove_scratch(*scratch);
    delete scratch;
    return 0;
}

const std::string& scratch_of(void** state) {
    return *static_cast<std::string*>(*state);
}

config::Settings settings_in(const std::string& scratch) {
    config::Settings settings;
    settings.name = scratch + "/cache.sqlite";
    settings.sqlite_busy_timeout_ms = 30000;
    return settings;
}

std::string bodies_of(const config::Settings& settings) {
    return backends::sqlite_bodies_path(backends::sqlite_database_path(settings));
}

std::unique_ptr<backends::Storage> open_or_fail(const config::Settings& settings) {
    auto opened = backends::open("sqlite", settings);
    if (!opened) {
        fail_msg("open: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

// Body files in place ("kk/<key>.<suffix>"), not temp files.
std::vector<std::string> body_files(const std::string& bodies) {
    std::vector<std::string> files;
    std::error_code missing;
    for (fs::recursive_directory_iterator it(bodies, missing), end; !missing && it != end; ++it) {
        if (it->is_regular_file() && it.depth() == 1) {
            files.push_back(fs::relative(it->path(), bodies).string());
        }
    }
    return files;
}

// A value of `size` bytes whose first 100 bytes go in as a separate piece (like an entry
// head), stored with put().
std::string put_value(backends::Storage& storage, uint64_t n, size_t size, int64_t expires = 0) {
    std::string key = test_key(n);
    std::string value = make_value(key, n, size);
    std::string_view view(value);
    const std::string_view pieces[] = {view.substr(0, 100), view.substr(100)};
    auto done = storage.put(test_meta(key, expires), pieces);
    if (!done) {
        fail_msg("put: %s", done.error().message.c_str());
    }
    return value;
}

std::optional<std::string> get_value(backends::Storage& storage, uint64_t n) {
    auto got = storage.get(test_key(n));
    if (!got) {
        fail_msg("get: %s", got.error().message.c_str());
    }
    return *got ? std::optional<std::string>(*got->value()) : std::nullopt;
}

uint64_t entries_of(backends::Storage& storage) {
    auto usage = storage.usage();
    assert_true(usage.has_value());
    return usage->entries;
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    assert_int_equal(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

void test_a_large_value_lives_in_a_body_file_and_a_small_one_inline(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    std::string small = put_value(*storage, 1, 4000);
    assert_true(body_files(bodies_of(settings)).empty());

    std::string large = put_value(*storage, 2, 1u << 20);
    auto files = body_files(bodies_of(settings));
    assert_int_equal(files.size(), 1);
    std::string key = test_key(2);
    assert_true(files[0].starts_with(key.substr(0, 2) + "/" + key + "."));
    // The first piece stays in the row; the file holds the rest.
    assert_int_equal(fs::file_size(bodies_of(settings) + "/" + files[0]), large.size() - 100);
    assert_true(get_value(*storage, 2) == large);
    assert_true(get_value(*storage, 1) == small);
    auto usage = storage->usage();
    assert_int_equal(usage->bytes, small.size() + large.size());

    // A streamed body above the threshold goes to a file as well, without a hint too.
    std::string streamed = make_value(test_key(3), 3, 600 * 1024);
    auto stream = storage->begin_put(0);
    assert_true(stream.has_value());
    for (size_t at = 100; at < streamed.size(); at += 8192) {
        assert_true((*stream)->append(std::string_view(streamed).substr(at, 8192)).has_value());
    }
    assert_true((*stream)
                    ->commit(test_meta(test_key(3)), std::string_view(streamed).substr(0, 100))
                    .has_value());
    assert_int_equal(body_files(bodies_of(settings)).size(), 2);
    assert_true(get_value(*storage, 3) == streamed);
}

void test_body_files_and_folders_are_owner_only(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    put_value(*storage, 1, 1u << 20);
    std::string bodies = bodies_of(settings);
    auto files = body_files(bodies);
    assert_int_equal(files.size(), 1);
    assert_int_equal(mode_of(bodies), 0700);
    assert_int_equal(mode_of(bodies + "/" + files[0].substr(0, 2)), 0700);
    assert_int_equal(mode_of(bodies + "/" + files[0]), 0600);
    // A temp file of a stream in progress too.
    auto stream = storage->begin_put(1u << 20);
    assert_true(stream.has_value());
    bool seen_temp = false;
    for (const auto& entry : fs::directory_iterator(bodies)) {
        if (entry.path().filename().string().starts_with("tmp-")) {
            seen_temp = true;
            assert_int_equal(mode_of(entry.path().string()), 0600);
        }
    }
    assert_true(seen_temp);
}

void test_an_aborted_stream_leaves_no_file(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    {
        auto stream = storage->begin_put(2u << 20);
        assert_true(stream.has_value());
        assert_true((*stream)->append(std::string(2u << 20, 'a')).has_value());
    }
    assert_true(fs::is_empty(bodies_of(settings)));
}

void test_body_files_go_with_remove_purge_clear_and_replacement(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    std::string bodies = bodies_of(settings);

    put_value(*storage, 1, 1u << 20);
    assert_int_equal(body_files(bodies).size(), 1);
    assert_true(*storage->remove(test_key(1)));
    assert_true(body_files(bodies).empty());

    put_value(*storage, 2, 1u << 20);
    std::string newer = put_value(*storage, 2, 2u << 20); // large over large
    assert_int_equal(body_files(bodies).size(), 1);
    assert_true(get_value(*storage, 2) == newer);
    std::string small = put_value(*storage, 2, 1000); // small over large
    assert_true(body_files(bodies).empty());
    assert_true(get_value(*storage, 2) == small);

    put_value(*storage, 3, 1u << 20, 500);
    put_value(*storage, 4, 1u << 20, 0);
    auto purged = storage->purge_expired(1000);
    assert_true(purged.has_value());
    assert_int_equal(*purged, 1);
    assert_int_equal(body_files(bodies).size(), 1);
    assert_true(get_value(*storage, 4).has_value());

    put_value(*storage, 5, 300 * 1024);
    assert_int_equal(body_files(bodies).size(), 2);
    assert_true(storage->clear().has_value());
    assert_true(body_files(bodies).empty());
    assert_int_equal(entries_of(*storage), 0);
}

void test_eviction_deletes_the_body_files_of_evicted_entries(void** state) {
    auto settings = settings_in(scratch_of(state));
    settings.max_size = 3u << 20;
    auto storage = open_or_fail(settings);
    for (uint64_t n = 1; n <= 8; ++n) {
        put_value(*storage, n, 1u << 20);
    }
    uint64_t entries = entries_of(*storage);
    assert_true(entries <= 2);
    assert_int_equal(body_files(bodies_of(settings)).size(), entries);
    assert_true(get_value(*storage, 8).has_value());
    assert_false(get_value(*storage, 1).has_value());
}

void set_mtime(const std::string& path, std::time_t when) {
    struct timeval times[2] = {{when, 0}, {when, 0}};
    assert_int_equal(::utimes(path.c_str(), times), 0);
}

void test_vacuum_and_clear_sweep_orphans_and_stale_temp_files(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    std::string kept = put_value(*storage, 1, 1u << 20);
    std::string bodies = bodies_of(settings);
    // A writer that died after placing its file, one that died while writing, and one
    // that is still writing.
    fs::create_directories(bodies + "/ab");
    std::ofstream(bodies + "/ab/" + test_key(9) + ".0123456789abcdef") << "orphan";
    std::ofstream(bodies + "/tmp-dead") << "stale";
    set_mtime(bodies + "/tmp-dead", std::time(nullptr) - 7200);
    std::ofstream(bodies + "/tmp-alive") << "writing";

    assert_true(storage->vacuum().has_value());
    assert_int_equal(body_files(bodies).size(), 1);
    assert_false(fs::exists(bodies + "/tmp-dead"));
    assert_true(fs::exists(bodies + "/tmp-alive"));
    assert_true(get_value(*storage, 1) == kept);

    std::ofstream(bodies + "/ab/" + test_key(10) + ".fedcba9876543210") << "orphan";
    assert_true(storage->clear().has_value());
    assert_true(body_files(bodies).empty());
    assert_true(fs::exists(bodies + "/tmp-alive"));
}

void test_a_dead_writers_temp_file_goes_at_once_and_counts_until_then(void** state) {
    auto settings = settings_in(scratch_of(state));
    tests::check_dead_writer_leftovers({"sqlite", nullptr}, settings, bodies_of(settings), "tmp-",
                                       bodies_of(settings) + "/.swept");
}

// A writer killed between placing its body file and committing its row leaves an orphan;
// a row whose file was lost counts against max_size: purge leaves neither.
void test_purge_removes_orphan_body_files_and_rows_without_their_file(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    std::string bodies = bodies_of(settings);
    std::string kept = put_value(*storage, 1, 1u << 20);
    put_value(*storage, 2, 1u << 20);
    auto files = body_files(bodies);
    assert_int_equal(files.size(), 2);
    for (const auto& name : files) {
        if (name.find(test_key(2)) != std::string::npos) {
            fs::remove(bodies + "/" + name);
        }
    }
    fs::create_directories(bodies + "/ab");
    std::ofstream(bodies + "/ab/" + test_key(9) + ".0123456789abcdef") << "orphan";

    auto purged = storage->purge_expired(1000);
    assert_true(purged.has_value());
    assert_int_equal(body_files(bodies).size(), 1);
    assert_int_equal(entries_of(*storage), 1);
    assert_true(get_value(*storage, 1) == kept);
}

void test_a_deleted_body_file_is_a_miss_and_the_entry_goes(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    put_value(*storage, 1, 1u << 20);
    auto files = body_files(bodies_of(settings));
    assert_int_equal(files.size(), 1);
    fs::remove(bodies_of(settings) + "/" + files[0]);
    assert_false(get_value(*storage, 1).has_value());
    assert_int_equal(entries_of(*storage), 0);
}

void test_a_damaged_body_file_makes_find_a_miss_and_removes_the_entry(void** state) {
    auto settings = settings_in(scratch_of(state));
    settings.backend = {"sqlite"};
    auto cache = core::Cache::open(settings);
    assert_true(cache.has_value());
    core::Entry entry;
    entry.method = "GET";
    entry.url = "http://example.test/large";
    entry.status = 200;
    entry.header_blocks = {"HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n"};
    std::string body(2u << 20, 'b');
    entry.body = body; // a view: `body` outlives the entry
    core::Key key{11, 12};
    auto stored = (*cache)->store(key, entry);
    assert_true(stored.has_value() && *stored);
    auto found = (*cache)->find(key);
    assert_true(found.has_value() && found->has_value());

    std::string bodies = bodies_of(settings);
    auto files = body_files(bodies);
    assert_int_equal(files.size(), 1);
    {
        std::fstream file(bodies + "/" + files[0], std::ios::binary | std::ios::in | std::ios::out);
        file.seekp(1000000);
        file << "damaged";
    }
    found = (*cache)->find(key);
    assert_true(found.has_value());
    assert_false(found->has_value());
    assert_int_equal((*cache)->stats().corrupt.load(), 1);
    assert_int_equal(entries_of((*cache)->storage()), 0);
    assert_true(body_files(bodies).empty());

    // A truncated file alike.
    stored = (*cache)->store(key, entry);
    assert_true(stored.has_value() && *stored);
    files = body_files(bodies);
    assert_int_equal(files.size(), 1);
    fs::resize_file(bodies + "/" + files[0], 1000);
    found = (*cache)->find(key);
    assert_true(found.has_value());
    assert_false(found->has_value());
    assert_int_equal(entries_of((*cache)->storage()), 0);
}

// 4 processes, each 150 mixed operations on 12 shared keys with values around the file
// threshold (puts, streams, gets, removes): no error, no torn value, and afterwards the
// bodies folder holds exactly the files the rows name.
void test_four_processes_with_large_values_never_tear_or_leak_files(void** state) {
    auto settings = settings_in(scratch_of(state));
    constexpr int k_processes = 4;
    constexpr int k_ops = 150;
    std::vector<pid_t> children;
    for (int child = 0; child < k_processes; ++child) {
        pid_t pid = ::fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            auto opened = backends::open("sqlite", settings);
            if (!opened) {
                ::_exit(3);
            }
            auto& storage = **opened;
            int code = 0;
            for (int i = 0; i < k_ops && code == 0; ++i) {
                std::string key = test_key(static_cast<uint64_t>(i * 7 + child * 5) % 12);
                size_t size = 64 * 1024 + static_cast<size_t>((i * 7919 + child * 104729) % 400000);
                std::string value = make_value(key, static_cast<uint64_t>(child * 1000 + i), size);
                std::string_view view(value);
                switch (i % 4) {
                case 0: {
                    const std::string_view pieces[] = {view.substr(0, 100), view.substr(100)};
                    code = storage.put(test_meta(key), pieces) ? 0 : 1;
                    break;
                }
                case 1: {
                    auto stream = storage.begin_put(i % 8 == 1 ? size : 0);
                    bool ok = stream.has_value();
                    for (size_t at = 100; ok && at < value.size(); at += 32768) {
                        ok = (*stream)->append(view.substr(at, 32768)).has_value();
                    }
                    ok = ok && (*stream)->commit(test_meta(key), view.substr(0, 100));
                    code = ok ? 0 : 1;
                    break;
                }
                case 2: {
                    auto got = storage.get(key);
                    code = !got ? 1 : (*got && !tests::value_is_intact(key, *got->value())) ? 2 : 0;
                    break;
                }
                default:
                    code = i % 16 == 3 && !storage.remove(key) ? 1 : 0;
                    break;
                }
            }
            opened->reset();
            ::_exit(code);
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        assert_int_equal(::waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    auto storage = open_or_fail(settings);
    uint64_t with_files = 0;
    for (uint64_t k = 0; k < 12; ++k) {
        auto got = storage->get(test_key(k));
        assert_true(got.has_value());
        if (*got) {
            assert_true(tests::value_is_intact(test_key(k), *got->value()));
            with_files += (*got)->get()->size() > backends::k_sqlite_body_file_threshold + 100;
        }
    }
    auto files = body_files(bodies_of(settings));
    assert_true(files.size() >= with_files);
    assert_true(storage->vacuum().has_value()); // nothing to sweep: no orphan was left
    assert_int_equal(body_files(bodies_of(settings)).size(), files.size());
}

// The schema of the first release (user_version 1, no body column).
constexpr const char* k_schema_v1 = R"sql(
CREATE TABLE entries (key TEXT PRIMARY KEY NOT NULL, method TEXT NOT NULL, url TEXT NOT NULL,
    status INTEGER NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
    size INTEGER NOT NULL, accessed INTEGER NOT NULL, value BLOB NOT NULL);
CREATE INDEX entries_accessed ON entries(accessed);
CREATE INDEX entries_expires ON entries(expires) WHERE expires > 0;
CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
INSERT INTO totals VALUES (0, 0, 0);
CREATE TRIGGER entries_insert AFTER INSERT ON entries BEGIN
    UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.size WHERE id = 0; END;
CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN
    UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.size WHERE id = 0; END;
CREATE TRIGGER entries_resize AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 0; END;
PRAGMA journal_mode = WAL;
PRAGMA user_version = 1;
)sql";

int64_t query_integer(const std::string& path, const char* sql) {
    sqlite3* raw = nullptr;
    assert_int_equal(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, sqlite3_close);
    sqlite3_stmt* stmt = nullptr;
    assert_int_equal(sqlite3_prepare_v2(db.get(), sql, -1, &stmt, nullptr), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

void test_a_database_of_the_previous_schema_still_reads_and_gains_body_files(void** state) {
    auto settings = settings_in(scratch_of(state));
    std::string old_value = make_value(test_key(1), 1, 300 * 1024);
    {
        sqlite3* raw = nullptr;
        assert_int_equal(sqlite3_open(settings.name.c_str(), &raw), SQLITE_OK);
        std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, sqlite3_close);
        assert_int_equal(sqlite3_exec(db.get(), k_schema_v1, nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_stmt* stmt = nullptr;
        assert_int_equal(sqlite3_prepare_v2(db.get(),
                                            "INSERT INTO entries VALUES (?1, 'GET', "
                                            "'http://origin.test/old', 200, 1700000000, 0, ?2, "
                                            "1, ?3)",
                                            -1, &stmt, nullptr),
                         SQLITE_OK);
        std::string key = test_key(1);
        sqlite3_bind_text(stmt, 1, key.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(old_value.size()));
        sqlite3_bind_blob(stmt, 3, old_value.data(), static_cast<int>(old_value.size()),
                          SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
        sqlite3_finalize(stmt);
    }
    auto storage = open_or_fail(settings);
    assert_true(get_value(*storage, 1) == old_value);
    std::string large = put_value(*storage, 2, 1u << 20);
    assert_true(get_value(*storage, 2) == large);
    assert_int_equal(body_files(bodies_of(settings)).size(), 1);
    auto usage = storage->usage();
    assert_int_equal(usage->entries, 2);
    assert_int_equal(usage->bytes, old_value.size() + large.size());
    storage.reset();
    assert_int_equal(query_integer(settings.name, "PRAGMA user_version"), 2);
    // A second open of the migrated file changes nothing.
    storage = open_or_fail(settings);
    assert_true(get_value(*storage, 1) == old_value);
    assert_true(get_value(*storage, 2) == large);
}

void test_an_in_memory_database_never_uses_body_files(void** state) {
    config::Settings settings;
    settings.sqlite_use_memory = true;
    settings.name = scratch_of(state) + "/memory-" + std::to_string(::getpid());
    auto storage = open_or_fail(settings);
    std::string large = put_value(*storage, 1, 1u << 20);
    auto stream = storage->begin_put(1u << 20);
    assert_true(stream.has_value());
    std::string streamed = make_value(test_key(2), 2, 1u << 20);
    assert_true((*stream)->append(std::string_view(streamed).substr(100)).has_value());
    assert_true((*stream)
                    ->commit(test_meta(test_key(2)), std::string_view(streamed).substr(0, 100))
                    .has_value());
    assert_true(get_value(*storage, 1) == large);
    assert_true(get_value(*storage, 2) == streamed);
    for (const auto& entry : fs::directory_iterator(scratch_of(state))) {
        fail_msg("unexpected file %s", entry.path().c_str());
    }
}

void test_flush_writes_access_times_and_leaves_the_storage_usable(void** state) {
    auto settings = settings_in(scratch_of(state));
    auto storage = open_or_fail(settings);
    put_value(*storage, 1, 1000);
    int64_t before = query_integer(settings.name, "SELECT accessed FROM entries");
    assert_true(get_value(*storage, 1).has_value());
    storage->flush();
    assert_true(query_integer(settings.name, "SELECT accessed FROM entries") > before);
    std::string large = put_value(*storage, 2, 1u << 20);
    put_value(*storage, 4, 5000);
    assert_true(fs::file_size(settings.name + "-wal") > 0);
    storage->flush();
    // Checkpointed and truncated: the next process reads the database file alone.
    assert_int_equal(fs::file_size(settings.name + "-wal"), 0);
    storage->flush();
    assert_true(get_value(*storage, 2) == large);
    put_value(*storage, 3, 1000);
    assert_int_equal(entries_of(*storage), 4);
}

void test_a_corrupt_database_takes_its_body_files_aside_with_it(void** state) {
    auto settings = settings_in(scratch_of(state));
    {
        auto storage = open_or_fail(settings);
        put_value(*storage, 1, 1u << 20);
    }
    {
        std::ofstream garbage(settings.name, std::ios::binary | std::ios::trunc);
        garbage << std::string(8192, '\x5a');
    }
    ::unlink((settings.name + "-wal").c_str());
    auto storage = open_or_fail(settings);
    assert_false(get_value(*storage, 1).has_value());
    std::vector<std::string> aside;
    for (const auto& entry : fs::directory_iterator(scratch_of(state))) {
        std::string name = entry.path().filename().string();
        if (name.starts_with("cache.sqlite.corrupt-") && name.ends_with(".bodies")) {
            aside.push_back(entry.path().string());
        }
    }
    assert_int_equal(aside.size(), 1);
    assert_int_equal(body_files(aside[0]).size(), 1);
    assert_true(body_files(bodies_of(settings)).empty());
    std::string fresh = put_value(*storage, 2, 1u << 20);
    assert_true(get_value(*storage, 2) == fresh);
    assert_int_equal(body_files(bodies_of(settings)).size(), 1);
}

void test_a_tiered_stream_reaches_every_tier_and_sqlite_writes_its_file(void** state) {
    auto settings = settings_in(scratch_of(state));
    settings.backend = {"memory", "sqlite"};
    auto opened = backends::open_tiered(
        settings, [](std::string_view name, const config::Settings& tier_settings) {
            return backends::open(name, tier_settings);
        });
    assert_true(opened.has_value());
    auto* tiered = backends::as_tiered(**opened);
    assert_non_null(tiered);
    std::string value = make_value(test_key(1), 1, 1u << 20);
    std::string_view view(value);
    auto stream = (*opened)->begin_put(value.size() - 100);
    assert_true(stream.has_value());
    for (size_t at = 100; at < value.size(); at += 16384) {
        assert_true((*stream)->append(view.substr(at, 16384)).has_value());
    }
    // The sqlite tier writes while the bytes arrive: its temp file already holds them.
    uint64_t temp_bytes = 0;
    for (const auto& entry : fs::directory_iterator(bodies_of(settings))) {
        temp_bytes += entry.is_regular_file() ? entry.file_size() : 0;
    }
    assert_true(temp_bytes >= value.size() - 100 - 256 * 1024);
    assert_true((*stream)->commit(test_meta(test_key(1)), view.substr(0, 100)).has_value());
    for (size_t tier = 0; tier < 2; ++tier) {
        auto got = tiered->tier(tier).get(test_key(1));
        assert_true(got.has_value() && got->has_value());
        assert_true(*got->value() == value);
    }
    assert_int_equal(body_files(bodies_of(settings)).size(), 1);
    (*opened)->flush();
    assert_true(get_value(**opened, 1) == value);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_large_value_lives_in_a_body_file_and_a_small_one_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_files_and_folders_are_owner_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_aborted_stream_leaves_no_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_files_go_with_remove_purge_clear_and_replacement,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_deletes_the_body_files_of_evicted_entries,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_vacuum_and_clear_sweep_orphans_and_stale_temp_files,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_dead_writers_temp_file_goes_at_once_and_counts_until_then, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_purge_removes_orphan_body_files_and_rows_without_their_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_deleted_body_file_is_a_miss_and_the_entry_goes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_damaged_body_file_makes_find_a_miss_and_removes_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_four_processes_with_large_values_never_tear_or_leak_files, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_database_of_the_previous_schema_still_reads_and_gains_body_files, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_an_in_memory_database_never_uses_body_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_flush_writes_access_times_and_leaves_the_storage_usable, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_corrupt_database_takes_its_body_files_aside_with_it, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tiered_stream_reaches_every_tier_and_sqlite_writes_its_file, setup, teardown),
    };
    return cmocka_run_group_tests_name("sqlite body files", tests, nullptr, nullptr);
}
