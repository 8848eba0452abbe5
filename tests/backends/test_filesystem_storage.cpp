// Filesystem backend: the conformance group, many processes on one folder, damaged entry
// files, the sharded layout, leftover temp files and owner-only modes.
#include "backends/filesystem_storage.h"
#include "backends/registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::test_key;
using tests::test_meta;

const tests::ConformanceBackend k_filesystem{"filesystem", [](const std::string& scratch) {
                                                 config::Settings settings;
                                                 settings.name = scratch + "/cache";
                                                 return settings;
                                             }};

using Fixture = tests::StorageFixture;

Fixture& fixture_of(void** state) {
    return tests::storage_fixture(state);
}

void put_text(backends::Storage& storage, uint64_t n, std::string_view text) {
    auto done = storage.put(test_meta(test_key(n)), std::span(&text, 1));
    if (!done) {
        fail_msg("put: %s", done.error().message.c_str());
    }
}

std::string entry_path(const Fixture& fixture, uint64_t n) {
    return backends::filesystem_entry_path(fixture.settings.name, test_key(n));
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    assert_int_equal(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

// A damaged file must read as a miss (or an error), never crash or return wrong bytes.
void assert_reads_as_miss_or_error(backends::Storage& storage, uint64_t n) {
    auto got = storage.get(test_key(n));
    assert_true(!got.has_value() || !got->has_value());
}

void test_four_processes_share_one_folder_without_errors_or_torn_values(void** state) {
    tests::check_many_processes(k_filesystem, fixture_of(state).scratch);
}

void test_entries_live_in_folders_named_after_the_first_two_key_digits(void** state) {
    auto& fixture = fixture_of(state);
    put_text(*fixture.storage, 1, "sharded");
    std::string key = test_key(1);
    std::string expected = fixture.settings.name + "/" + key.substr(0, 2) + "/" + key;
    assert_string_equal(entry_path(fixture, 1).c_str(), expected.c_str());
    assert_true(std::filesystem::is_regular_file(expected));
    assert_string_equal(backends::filesystem_entry_path("/c", "../etc/passwd").c_str(), "");
    assert_string_equal(backends::filesystem_entry_path("/c", "A").c_str(), "");
}

void test_a_truncated_entry_file_reads_as_a_miss(void** state) {
    auto& fixture = fixture_of(state);
    put_text(*fixture.storage, 1, std::string(10000, 'x'));
    put_text(*fixture.storage, 2, std::string(10000, 'y'));
    put_text(*fixture.storage, 3, "fine");
    std::filesystem::resize_file(entry_path(fixture, 1), 5000); // inside the value
    std::filesystem::resize_file(entry_path(fixture, 2), 10);   // inside the header
    assert_reads_as_miss_or_error(*fixture.storage, 1);
    assert_reads_as_miss_or_error(*fixture.storage, 2);
    // A corrupt entry is a miss and is removed (DESIGN.md): the files are gone.
    assert_false(std::filesystem::exists(entry_path(fixture, 1)));
    assert_false(std::filesystem::exists(entry_path(fixture, 2)));

    // Scans skip them, and the next put writes a whole entry again.
    int visited = 0;
    assert_true(fixture.storage->scan([&](const backends::Metadata&) { return ++visited > 0; })
                    .has_value());
    assert_int_equal(visited, 1);
    put_text(*fixture.storage, 1, "whole again");
    auto got = fixture.storage->get(test_key(1));
    assert_true(got.has_value() && got->has_value());
    assert_string_equal((*got)->get()->c_str(), "whole again");
}

void test_garbage_and_extended_entry_files_read_as_a_miss(void** state) {
    auto& fixture = fixture_of(state);
    put_text(*fixture.storage, 1, "will be overwritten with garbage");
    put_text(*fixture.storage, 2, "will grow");
    std::ofstream(entry_path(fixture, 1), std::ios::binary | std::ios::trunc)
        << std::string(300, '\x7f');
    std::ofstream(entry_path(fixture, 2), std::ios::binary | std::ios::app) << "tail";
    assert_reads_as_miss_or_error(*fixture.storage, 1);
    assert_reads_as_miss_or_error(*fixture.storage, 2);
}

void test_an_entry_file_under_another_key_name_is_not_served(void** state) {
    auto& fixture = fixture_of(state);
    put_text(*fixture.storage, 1, "belongs to key 1");
    std::string other = entry_path(fixture, 2);
    std::filesystem::create_directories(std::filesystem::path(other).parent_path());
    std::filesystem::copy_file(entry_path(fixture, 1), other);
    assert_reads_as_miss_or_error(*fixture.storage, 2);
}

void test_leftover_temp_files_are_not_listed(void** state) {
    auto& fixture = fixture_of(state);
    put_text(*fixture.storage, 1, "real");
    std::string folder = std::filesystem::path(entry_path(fixture, 1)).parent_path().string();
    std::ofstream(folder + "/.tmp-1-1-" + test_key(1)) << "half written";
    auto usage = fixture.storage->usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 1);
}

void test_a_dead_writers_temp_file_goes_at_once_and_counts_until_then(void** state) {
    auto& fixture = fixture_of(state);
    tests::check_dead_writer_leftovers(k_filesystem, fixture.settings,
                                       fixture.settings.name + "/tmp", ".tmp-");
}

void test_cache_files_and_folders_are_owner_only(void** state) {
    auto& fixture = fixture_of(state);
    config::Settings settings = fixture.settings;
    settings.name = fixture.scratch + "/deep/er/cache";
    auto opened = backends::open("filesystem", settings);
    assert_true(opened.has_value());
    std::string_view text = "private";
    assert_true((*opened)->put(test_meta(test_key(1)), std::span(&text, 1)).has_value());
    std::string path = backends::filesystem_entry_path(settings.name, test_key(1));
    assert_int_equal(mode_of(fixture.scratch + "/deep"), 0700);
    assert_int_equal(mode_of(settings.name), 0700);
    assert_int_equal(mode_of(std::filesystem::path(path).parent_path().string()), 0700);
    assert_int_equal(mode_of(path), 0600);
}

void test_default_folder_is_under_the_user_cache_home(void** state) {
    auto& fixture = fixture_of(state);
    std::string xdg = fixture.scratch + "/xdg";
    ::setenv("XDG_CACHE_HOME", xdg.c_str(), 1);
    std::string dir = backends::filesystem_cache_dir(config::Settings{});
    ::unsetenv("XDG_CACHE_HOME");
    assert_string_equal(dir.c_str(), (xdg + "/curlcache/http_cache").c_str());
}

// Streams a value of `size` bytes (its first 100 bytes are the head) and returns it.
std::string stream_value(backends::Storage& storage, uint64_t n, size_t size, uint64_t hint) {
    std::string value = tests::make_value(test_key(n), n, size);
    std::string_view view(value);
    auto stream = storage.begin_put(hint);
    assert_true(stream.has_value());
    for (size_t at = 100; at < value.size(); at += 16384) {
        assert_true((*stream)->append(view.substr(at, 16384)).has_value());
    }
    auto meta = test_meta(test_key(n), 2000000000);
    meta.status = 203;
    assert_true((*stream)->commit(meta, view.substr(0, 100)).has_value());
    return value;
}

uint32_t format_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char header[12] = {};
    in.read(header, sizeof header);
    uint32_t version = 0;
    std::memcpy(&version, header + 8, sizeof version);
    return version;
}

bool has_temp_files(const std::string& dir) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (entry.path().filename().string().starts_with(".tmp-")) {
            return true;
        }
    }
    return false;
}

void test_a_large_stream_is_written_tail_first_and_reads_back_with_its_metadata(void** state) {
    auto& fixture = fixture_of(state);
    auto& storage = *fixture.storage;
    std::string large = stream_value(storage, 1, 3u << 20, 3u << 20);
    std::string small = stream_value(storage, 2, 5000, 0);
    assert_int_equal(format_of(entry_path(fixture, 1)), 2);
    assert_int_equal(format_of(entry_path(fixture, 2)), 1);
    auto got = storage.get(test_key(1));
    assert_true(got.has_value() && got->has_value());
    assert_true(*got->value() == large);
    auto meta = storage.get_metadata(test_key(1));
    assert_true(meta.has_value() && meta->has_value());
    assert_int_equal((*meta)->status, 203);
    assert_int_equal((*meta)->expires, 2000000000);
    assert_int_equal((*meta)->size, large.size());
    assert_string_equal((*meta)->url.c_str(), test_meta(test_key(1)).url.c_str());
    int listed = 0;
    assert_true(storage
                    .scan([&](const backends::Metadata& m) {
                        listed += m.key == test_key(1) && m.size == large.size() ? 1 : 0;
                        return true;
                    })
                    .has_value());
    assert_int_equal(listed, 1);
    auto usage = storage.usage();
    assert_int_equal(usage->bytes, large.size() + small.size());
    assert_false(has_temp_files(fixture.settings.name));
}

void test_an_aborted_stream_leaves_no_temp_file(void** state) {
    auto& fixture = fixture_of(state);
    {
        auto stream = fixture.storage->begin_put(0);
        assert_true(stream.has_value());
        assert_true((*stream)->append(std::string(2u << 20, 'a')).has_value());
        assert_true(has_temp_files(fixture.settings.name)); // written while it arrives
    }
    assert_false(has_temp_files(fixture.settings.name));
    assert_int_equal(fixture.storage->usage()->entries, 0);
}

void test_a_damaged_tail_first_file_reads_as_a_miss(void** state) {
    auto& fixture = fixture_of(state);
    stream_value(*fixture.storage, 1, 1u << 20, 0);
    stream_value(*fixture.storage, 2, 1u << 20, 0);
    std::filesystem::resize_file(entry_path(fixture, 1), 600000); // inside the tail
    { // a head size larger than the value
        std::fstream file(entry_path(fixture, 2), std::ios::binary | std::ios::in | std::ios::out);
        file.seekp(56);
        uint64_t huge = uint64_t{1} << 40;
        file.write(reinterpret_cast<const char*>(&huge), sizeof huge);
    }
    assert_reads_as_miss_or_error(*fixture.storage, 1);
    assert_reads_as_miss_or_error(*fixture.storage, 2);
    assert_false(std::filesystem::exists(entry_path(fixture, 1)));
}

// Read system calls this process made so far (/proc/self/io).
long long reads_so_far() {
    std::ifstream io("/proc/self/io");
    std::string name;
    long long value = 0;
    while (io >> name >> value) {
        if (name == "syscr:") {
            return value;
        }
    }
    fail_msg("no syscr in /proc/self/io");
    return 0;
}

// `curlcache stats` at a million entries: usage() reads the ledger, not every entry file.
void test_usage_reads_the_ledger_without_opening_entry_files(void** state) {
    auto& storage = *fixture_of(state).storage;
    for (uint64_t n = 0; n < 300; ++n) {
        put_text(storage, n, "value " + std::to_string(n));
    }
    long long before = reads_so_far();
    auto usage = storage.usage();
    long long reads = reads_so_far() - before;
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 300);
    assert_true(reads < 20);
}

// Over k_walk_evict_entries (2048) entries a store that passes max_size evicts from one
// shard (stat only) instead of reading the whole tree, and keeps the cache within bounds,
// the newest entries kept.
void test_a_large_full_cache_evicts_shard_by_shard(void** state) {
    auto& fixture = fixture_of(state);
    constexpr uint64_t k_entries = 2200;
    for (uint64_t n = 0; n < k_entries; ++n) {
        put_text(*fixture.storage, n, std::string(100, 'o'));
    }
    uint64_t full = fixture.storage->usage()->bytes;
    fixture.storage.reset();
    fixture.settings.max_size = full;
    auto opened = backends::open("filesystem", fixture.settings);
    assert_true(opened.has_value());
    auto& storage = **opened;
    long long before = reads_so_far();
    for (uint64_t n = k_entries; n < k_entries + 100; ++n) {
        put_text(storage, n, std::string(100, 'n'));
        assert_true(storage.usage()->bytes <= full);
    }
    // A walk reads every entry file at least once: more than k_entries reads.
    assert_true(reads_so_far() - before < static_cast<long long>(k_entries));
    for (uint64_t n = k_entries; n < k_entries + 100; ++n) {
        auto got = storage.get(test_key(n));
        assert_true(got.has_value() && got->has_value());
    }
}

// Purge: an entry file's access time is its expiry stamp, so a purge of a large cache lists
// the shards with fstatat and reads only the files whose stamp has passed; the header
// decides, so a stamp moved earlier (strictatime, a copy, an older version) removes nothing
// that has not expired, and hits leave the stamp alone.
void test_purge_reads_only_files_whose_expiry_stamp_has_passed(void** state) {
    auto& fixture = fixture_of(state);
    auto& storage = *fixture.storage;
    const int64_t now = std::time(nullptr);
    auto put_expiring = [&](uint64_t n, int64_t expires) {
        std::string_view text = "value";
        assert_true(storage.put(test_meta(test_key(n), expires), std::span(&text, 1)).has_value());
    };
    for (uint64_t n = 0; n < 300; ++n) {
        put_expiring(n, n % 2 == 0 ? 0 : now + 3600);
    }
    for (uint64_t n = 300; n < 310; ++n) {
        put_expiring(n, now - 10);
    }
    // A hit, then a put that writes the hit's access time: the stamp stays.
    assert_true(storage.get(test_key(1)).has_value());
    put_expiring(400, 0);
    struct stat st {};
    assert_int_equal(::stat(entry_path(fixture, 1).c_str(), &st), 0);
    assert_int_equal(st.st_atime, now + 3600);
    // Stamps moved into the past on entries that have not expired.
    timespec past[2] = {{1, 0}, {0, UTIME_OMIT}};
    assert_int_equal(::utimensat(AT_FDCWD, entry_path(fixture, 2).c_str(), past, 0), 0);
    assert_int_equal(::utimensat(AT_FDCWD, entry_path(fixture, 3).c_str(), past, 0), 0);

    long long before = reads_so_far();
    auto purged = storage.purge_expired(now);
    long long reads = reads_so_far() - before;
    assert_true(purged.has_value());
    assert_int_equal(*purged, 10);
    assert_true(reads < 100); // a read of every file would be over 300
    for (uint64_t n = 0; n < 300; ++n) {
        auto got = storage.get(test_key(n));
        assert_true(got.has_value() && got->has_value());
    }
    for (uint64_t n = 300; n < 310; ++n) {
        assert_false(std::filesystem::exists(entry_path(fixture, n)));
    }
    assert_int_equal(storage.usage()->entries, 301);
}

} // namespace

int main() {
    const struct CMUnitTest cases[] = {
        cmocka_unit_test_prestate_setup_teardown(
            test_four_processes_share_one_folder_without_errors_or_torn_values,
            tests::storage_fixture_setup, tests::storage_fixture_teardown,
            const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_entries_live_in_folders_named_after_the_first_two_key_digits,
            tests::storage_fixture_setup, tests::storage_fixture_teardown,
            const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_a_truncated_entry_file_reads_as_a_miss, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_garbage_and_extended_entry_files_read_as_a_miss, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_an_entry_file_under_another_key_name_is_not_served, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_leftover_temp_files_are_not_listed, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_a_dead_writers_temp_file_goes_at_once_and_counts_until_then,
            tests::storage_fixture_setup, tests::storage_fixture_teardown,
            const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_cache_files_and_folders_are_owner_only, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_default_folder_is_under_the_user_cache_home, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_a_large_stream_is_written_tail_first_and_reads_back_with_its_metadata,
            tests::storage_fixture_setup, tests::storage_fixture_teardown,
            const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_an_aborted_stream_leaves_no_temp_file, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_a_damaged_tail_first_file_reads_as_a_miss, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_usage_reads_the_ledger_without_opening_entry_files, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_a_large_full_cache_evicts_shard_by_shard, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
        cmocka_unit_test_prestate_setup_teardown(
            test_purge_reads_only_files_whose_expiry_stamp_has_passed, tests::storage_fixture_setup,
            tests::storage_fixture_teardown, const_cast<tests::ConformanceBackend*>(&k_filesystem)),
    };
    int failed = tests::run_conformance(k_filesystem);
    failed += cmocka_run_group_tests_name("filesystem storage", cases, nullptr, nullptr);
    return failed;
}
