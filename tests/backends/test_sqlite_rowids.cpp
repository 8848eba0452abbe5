// SQLite rowids (backends/sqlite_connection.h, key_rowid): a row is stored under 63 bits of
// its key's hash so that a hit is one descent by rowid. A forced collision (another key's row
// under that rowid) is never served and is replaced by the next store, body file included;
// rows stored under other rowids, as every cache made before this change holds them, are
// still found, overwritten, removed, and moved to their hash by vacuum.
#include "backends/registry.h"
#include "backends/sqlite_connection.h"
#include "backends/sqlite_storage.h"

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::make_value;
using tests::scratch_of;
using tests::scratch_setup;
using tests::scratch_teardown;
using tests::test_key;
using tests::test_meta;
namespace fs = std::filesystem;

using tests::sqlite_settings;

std::unique_ptr<backends::Storage> open_or_fail(const config::Settings& settings) {
    auto opened = backends::open("sqlite", settings);
    if (!opened) {
        fail_msg("open: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

void put_or_fail(backends::Storage& storage, const std::string& key, const std::string& value) {
    std::string_view piece = value;
    auto done = storage.put(test_meta(key), std::span(&piece, 1));
    if (!done) {
        fail_msg("put: %s", done.error().message.c_str());
    }
}

// The value stored for key, or "" for a miss.
std::string value_of(backends::Storage& storage, const std::string& key) {
    auto got = storage.get(key);
    if (!got) {
        fail_msg("get: %s", got.error().message.c_str());
    }
    return *got && **got ? std::string(***got) : std::string();
}

// A second connection to the database, as another program (or an older build) would open it.
struct Raw {
    explicit Raw(const std::string& path) {
        sqlite3* raw = nullptr;
        assert_int_equal(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
        db.reset(raw);
        sqlite3_busy_timeout(raw, 30000);
    }
    void exec(const std::string& sql) {
        char* message = nullptr;
        if (sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
            std::string text = message ? message : "?";
            sqlite3_free(message);
            fail_msg("%s: %s", sql.c_str(), text.c_str());
        }
    }
    int64_t integer(const std::string& sql) {
        sqlite3_stmt* raw = nullptr;
        assert_int_equal(sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &raw, nullptr), SQLITE_OK);
        std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, sqlite3_finalize);
        assert_int_equal(sqlite3_step(stmt.get()), SQLITE_ROW);
        return sqlite3_column_int64(stmt.get(), 0);
    }
    // Rows whose rowid is not their key's hash.
    int64_t misplaced() {
        sqlite3_stmt* raw = nullptr;
        assert_int_equal(sqlite3_prepare_v2(db.get(), "SELECT rowid, key FROM entries", -1, &raw,
                                            nullptr),
                         SQLITE_OK);
        std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, sqlite3_finalize);
        int64_t count = 0;
        while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
            const auto* key = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
            count += sqlite3_column_int64(stmt.get(), 0) != backends::sqlite::key_rowid(key) ? 1 : 0;
        }
        return count;
    }
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db{nullptr, sqlite3_close};
};

size_t files_in(const std::string& dir) {
    size_t count = 0;
    std::error_code missing;
    for (fs::recursive_directory_iterator it(dir, missing), end; !missing && it != end; ++it) {
        count += it->is_regular_file() && it.depth() == 1 ? 1 : 0;
    }
    return count;
}

void test_a_row_is_stored_under_its_keys_hash(void** state) {
    config::Settings settings = sqlite_settings(scratch_of(state));
    auto storage = open_or_fail(settings);
    for (uint64_t n = 0; n < 50; ++n) {
        put_or_fail(*storage, test_key(n), "value " + std::to_string(n));
    }
    put_or_fail(*storage, test_key(7), "replaced");
    Raw raw(settings.name);
    assert_int_equal(raw.integer("SELECT count(*) FROM entries"), 50);
    assert_int_equal(raw.misplaced(), 0);
    assert_true(raw.integer("SELECT min(rowid) FROM entries") >= 0);
    assert_string_equal(value_of(*storage, test_key(7)).c_str(), "replaced");
}

// Key A's row sits under key B's rowid (what a 63-bit collision of their hashes would give).
void test_a_forced_collision_is_never_served_and_is_replaced_by_the_next_store(void** state) {
    config::Settings settings = sqlite_settings(scratch_of(state));
    const std::string a = test_key(1), b = test_key(2);
    const std::string large_a = make_value(a, 1, 300 * 1024); // in a body file
    std::string bodies = backends::sqlite_bodies_path(backends::sqlite_database_path(settings));
    auto storage = open_or_fail(settings);
    put_or_fail(*storage, a, large_a);
    assert_int_equal(files_in(bodies), 1);
    Raw raw(settings.name);
    raw.exec("UPDATE entries SET rowid = " + std::to_string(backends::sqlite::key_rowid(b)) +
             " WHERE key = '" + a + "'");

    // B finds A's row under its rowid: a miss, never A's value. A is still found by its key.
    assert_true(value_of(*storage, b).empty());
    auto meta = storage->get_metadata(b);
    assert_true(meta && !meta->has_value());
    assert_true(value_of(*storage, a) == large_a);

    // Storing B replaces A's row (and its body file): A is a miss from then on, never B.
    put_or_fail(*storage, b, "value of b");
    assert_string_equal(value_of(*storage, b).c_str(), "value of b");
    assert_true(value_of(*storage, a).empty());
    assert_int_equal(files_in(bodies), 0);
    auto usage = storage->usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 1);
    assert_int_equal(usage->bytes, 10);

    // Removing A does not remove B; storing A again puts it back under its own hash.
    auto removed = storage->remove(a);
    assert_true(removed && !*removed);
    put_or_fail(*storage, a, "value of a");
    assert_string_equal(value_of(*storage, a).c_str(), "value of a");
    assert_string_equal(value_of(*storage, b).c_str(), "value of b");
    assert_int_equal(raw.misplaced(), 0);
    assert_int_equal(raw.integer("SELECT entries FROM totals"), 2);
}

// A cache made before this change: rowids 1, 2, 3, ... given by SQLite, as the earlier
// upsert (without a rowid) stored them, here into the same schema through its statement.
void test_rows_of_an_earlier_cache_are_served_and_moved_by_vacuum(void** state) {
    config::Settings settings = sqlite_settings(scratch_of(state));
    open_or_fail(settings); // the schema, as any version makes it
    {
        Raw raw(settings.name);
        raw.exec("BEGIN");
        for (uint64_t n = 0; n < 40; ++n) {
            std::string value = "old " + std::to_string(n);
            raw.exec("INSERT INTO entries (key, method, url, status, created, expires, size, "
                     "accessed, value, body) VALUES ('" + test_key(n) + "', 'GET', 'u', 200, 1, 0, " +
                     std::to_string(value.size()) + ", " + std::to_string(n + 1) + ", CAST('" +
                     value + "' AS BLOB), NULL)");
        }
        raw.exec("COMMIT");
        assert_int_equal(raw.integer("SELECT max(rowid) FROM entries"), 40);
        assert_int_equal(raw.misplaced(), 40);
    }
    auto storage = open_or_fail(settings);
    for (uint64_t n = 0; n < 40; ++n) {
        assert_string_equal(value_of(*storage, test_key(n)).c_str(), ("old " + std::to_string(n)).c_str());
    }
    put_or_fail(*storage, test_key(3), "new 3");
    auto removed = storage->remove(test_key(4));
    assert_true(removed && *removed);
    Raw raw(settings.name);
    assert_int_equal(raw.misplaced(), 38); // the overwritten row moved to its hash
    assert_string_equal(value_of(*storage, test_key(3)).c_str(), "new 3");
    assert_true(value_of(*storage, test_key(4)).empty());

    assert_true(storage->vacuum().has_value());
    assert_int_equal(raw.misplaced(), 0);
    assert_int_equal(raw.integer("SELECT count(*) FROM entries"), 39);
    assert_int_equal(raw.integer("SELECT entries FROM totals"), 39);
    for (uint64_t n = 0; n < 40; ++n) {
        std::string expected = n == 3 ? "new 3" : n == 4 ? "" : "old " + std::to_string(n);
        assert_string_equal(value_of(*storage, test_key(n)).c_str(), expected.c_str());
    }
    // An earlier build still finds every row by its key after the move.
    assert_int_equal(raw.integer("SELECT count(*) FROM entries WHERE key = '" + test_key(5) + "'"), 1);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_row_is_stored_under_its_keys_hash, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_forced_collision_is_never_served_and_is_replaced_by_the_next_store,
            scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_rows_of_an_earlier_cache_are_served_and_moved_by_vacuum,
                                        scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests_name("sqlite rowids", tests, nullptr, nullptr);
}
