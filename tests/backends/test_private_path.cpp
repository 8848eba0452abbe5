// base/private_path.h and its use by every backend that keeps files: folders, files and
// links that another user owns or can write are refused with a message naming the path and
// the reason; nothing is created through a link. "Another user" is uid/gid 65534 (nobody,
// nogroup): tests that need chown to make one run as root and are skipped otherwise.
#include "backends/file_lock.h"
#include "backends/filesystem_storage.h"
#include "backends/registry.h"
#include "backends/sqlite_storage.h"
#include "base/private_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
namespace fs = std::filesystem;

constexpr uid_t k_other = 65534;

struct Scratch {
    std::string path;
};

int setup(void** state) {
    *state = new Scratch{tests::make_scratch()};
    return 0;
}

int teardown(void** state) {
    auto* scratch = static_cast<Scratch*>(*state);
    tests::remove_scratch(scratch->path);
    delete scratch;
    return 0;
}

const std::string& scratch_of(void** state) {
    return static_cast<Scratch*>(*state)->path;
}

void skip_unless_root() {
    if (::geteuid() != 0) {
        skip(); // making a file another user's needs chown
    }
}

// Runs `body` with each variable set to its value (nullptr: unset), then restores them all.
void with_env(std::initializer_list<std::pair<const char*, const char*>> changes,
              const std::function<void()>& body) {
    std::vector<std::pair<const char*, std::optional<std::string>>> saved;
    for (const auto& [name, value] : changes) {
        const char* old = std::getenv(name);
        saved.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
        value ? ::setenv(name, value, 1) : ::unsetenv(name);
    }
    body();
    for (const auto& [name, old] : saved) {
        old ? ::setenv(name, old->c_str(), 1) : ::unsetenv(name);
    }
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    assert_int_equal(::lstat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The refusal's message names `path` and says why.
void assert_refused(const base::PathError& error, const std::string& path, const std::string& why) {
    if (!error.refused || !contains(error.message, path) || !contains(error.message, why)) {
        fail_msg("expected a refusal of %s (%s), got: %s", path.c_str(), why.c_str(),
                 error.message.c_str());
    }
}

// open_private_dir(path) is refused; the message names `shown` and says `why`.
void assert_dir_refused(const std::string& path, const std::string& shown, const std::string& why,
                        bool create = false) {
    auto dir = base::open_private_dir(path, create);
    assert_false(dir.has_value());
    assert_refused(dir.error(), shown, why);
}

void test_missing_folders_are_created_owner_only_and_links_resolved(void** state) {
    const std::string& scratch = scratch_of(state);
    auto dir = base::open_private_dir(scratch + "/a/b", true);
    assert_true(dir.has_value());
    assert_int_equal(mode_of(scratch + "/a"), 0700);
    assert_int_equal(mode_of(scratch + "/a/b"), 0700);
    // A link the user owns is followed; the returned path has none left.
    fs::create_directory_symlink(scratch + "/a", scratch + "/link");
    auto linked = base::open_private_dir(scratch + "/link/b/../b", false);
    assert_true(linked.has_value());
    assert_string_equal(linked->path.c_str(), fs::canonical(scratch + "/a/b").c_str());
    auto missing = base::open_private_dir(scratch + "/none", false);
    assert_false(missing.has_value());
    assert_int_equal(missing.error().code, ENOENT);
}

void test_a_folder_another_user_owns_is_refused(void** state) {
    skip_unless_root();
    const std::string& scratch = scratch_of(state);
    fs::create_directory(scratch + "/theirs");
    assert_int_equal(::chown((scratch + "/theirs").c_str(), k_other, k_other), 0);
    assert_dir_refused(scratch + "/theirs", scratch + "/theirs", "owned by uid 65534", true);
}

void test_a_folder_others_can_write_is_refused(void** state) {
    const std::string& scratch = scratch_of(state);
    fs::create_directory(scratch + "/open");
    ::chmod((scratch + "/open").c_str(), 0707);
    assert_dir_refused(scratch + "/open", scratch + "/open", "everyone may write it (mode 0707)");
    if (::geteuid() == 0) {
        // Group-writable is fine only for a group of the user alone (OpenSSH's rule).
        ::chmod((scratch + "/open").c_str(), 0770);
        assert_int_equal(::chown((scratch + "/open").c_str(), 0, k_other), 0);
        assert_dir_refused(scratch + "/open", scratch + "/open", "group 65534 may write it");
    }
}

void test_a_world_writable_folder_on_the_way_must_be_sticky(void** state) {
    const std::string& scratch = scratch_of(state);
    fs::create_directories(scratch + "/shared/mine");
    ::chmod((scratch + "/shared").c_str(), 0777);
    assert_dir_refused(scratch + "/shared/mine", scratch + "/shared", "not sticky");
    ::chmod((scratch + "/shared").c_str(), 01777); // like /tmp: others cannot rename ours
    assert_true(base::open_private_dir(scratch + "/shared/mine", false).has_value());
}

void test_a_link_another_user_planted_on_the_way_is_refused(void** state) {
    skip_unless_root();
    const std::string& scratch = scratch_of(state);
    fs::create_directory(scratch + "/real");
    fs::create_directory_symlink(scratch + "/real", scratch + "/planted");
    assert_int_equal(::lchown((scratch + "/planted").c_str(), k_other, k_other), 0);
    assert_dir_refused(scratch + "/planted/cache", scratch + "/planted",
                       "symbolic link owned by uid 65534", true);
    assert_false(fs::exists(scratch + "/real/cache")); // nothing created through it
}

void test_files_are_never_opened_through_a_link_even_a_dangling_one(void** state) {
    const std::string& scratch = scratch_of(state);
    auto dir = base::open_private_dir(scratch, false);
    assert_true(dir.has_value());
    write_file(scratch + "/victim", "the user's own file");
    fs::create_symlink(scratch + "/victim", scratch + "/to-victim");
    fs::create_symlink(scratch + "/nowhere", scratch + "/dangling");
    auto opened = base::open_private(*dir->fd, "to-victim", O_RDWR | O_CREAT | O_TRUNC,
                                     scratch + "/to-victim");
    assert_false(opened.has_value());
    assert_refused(opened.error(), scratch + "/to-victim", "symbolic link");
    assert_string_equal(read_text(scratch + "/victim").c_str(), "the user's own file");
    auto dangling =
        base::open_private(*dir->fd, "dangling", O_RDWR | O_CREAT, scratch + "/dangling");
    assert_false(dangling.has_value());
    assert_refused(dangling.error(), scratch + "/dangling", "symbolic link");
    assert_false(fs::exists(scratch + "/nowhere"));
    auto entry = base::check_private_entry(*dir->fd, "dangling", scratch + "/dangling");
    assert_false(entry.has_value());
    assert_true(base::check_private_entry(*dir->fd, "absent", scratch + "/absent").has_value());
}

void test_a_file_another_user_owns_or_can_write_is_refused(void** state) {
    const std::string& scratch = scratch_of(state);
    auto dir = base::open_private_dir(scratch, false);
    assert_true(dir.has_value());
    write_file(scratch + "/open", "x");
    ::chmod((scratch + "/open").c_str(), 0666);
    auto open = base::open_private(*dir->fd, "open", O_RDWR, scratch + "/open");
    assert_false(open.has_value());
    assert_refused(open.error(), scratch + "/open", "mode 0666");
    auto created = base::open_private(*dir->fd, "new", O_RDWR | O_CREAT, scratch + "/new");
    assert_true(created.has_value());
    assert_int_equal(mode_of(scratch + "/new"), 0600);
    if (::geteuid() == 0) {
        write_file(scratch + "/theirs", "x");
        assert_int_equal(::chown((scratch + "/theirs").c_str(), k_other, k_other), 0);
        auto theirs = base::open_private(*dir->fd, "theirs", O_RDWR, scratch + "/theirs");
        assert_false(theirs.has_value());
        assert_refused(theirs.error(), scratch + "/theirs", "owned by uid 65534");
    }
}

// With TMPDIR set: `mine` is the per-user folder, used by sqlite.use_temp and without HOME.
void check_temp_folder_use(const std::string& mine) {
    assert_string_equal(base::private_temp_dir().c_str(), mine.c_str());
    // Without HOME the cache goes there, never to a shared /tmp/.cache.
    with_env({{"XDG_CACHE_HOME", nullptr}, {"HOME", nullptr}}, [&] {
        assert_string_equal(base::user_cache_dir().c_str(), mine.c_str());
        assert_string_equal(backends::user_cache_dir().c_str(), mine.c_str());
    });
    config::Settings settings;
    settings.name = "temp.sqlite";
    settings.sqlite_use_temp = true;
    assert_string_equal(backends::sqlite_database_path(settings).c_str(),
                        (mine + "/temp.sqlite").c_str());
    auto storage = backends::open("sqlite", settings);
    assert_true(storage.has_value());
    assert_int_equal(mode_of(mine), 0700);
    storage->reset();
    if (::geteuid() == 0) {
        // Another user made the per-user folder first: refused, not used.
        fs::remove_all(mine);
        fs::create_directory(mine);
        assert_int_equal(::chown(mine.c_str(), k_other, k_other), 0);
        auto refused = backends::open("sqlite", settings);
        assert_false(refused.has_value());
        assert_true(contains(refused.error().message, "refused " + mine));
    }
}

void test_shared_temp_folders_are_used_through_a_per_user_folder(void** state) {
    const std::string& scratch = scratch_of(state);
    fs::create_directory(scratch + "/tmp");
    ::chmod((scratch + "/tmp").c_str(), 01777);
    with_env({{"TMPDIR", (scratch + "/tmp").c_str()}}, [&] {
        check_temp_folder_use(scratch + "/tmp/curlcache-" + std::to_string(::geteuid()));
    });
}

// The attacks of the issue against the sqlite backend: a database another user created
// and filled, and links at the database's siblings.
void test_sqlite_refuses_a_foreign_database_and_linked_siblings(void** state) {
    const std::string& scratch = scratch_of(state);
    config::Settings settings;
    settings.name = scratch + "/cache.sqlite";
    auto made = backends::open("sqlite", settings);
    assert_true(made.has_value());
    made->reset();
    write_file(scratch + "/victim", "the user's own file");
    for (const char* suffix : {"-wal", "-shm", ".bodies", ".locks", ".stats"}) {
        std::string sibling = settings.name + suffix;
        fs::remove_all(sibling);
        fs::create_symlink(scratch + "/victim", sibling);
        auto opened = backends::open("sqlite", settings);
        assert_false(opened.has_value());
        if (!contains(opened.error().message, "refused " + sibling) ||
            !contains(opened.error().message, "symbolic link")) {
            fail_msg("%s: %s", suffix, opened.error().message.c_str());
        }
        fs::remove(sibling);
    }
    assert_string_equal(read_text(scratch + "/victim").c_str(), "the user's own file");
    fs::create_symlink(scratch + "/elsewhere.sqlite", scratch + "/dangling.sqlite");
    settings.name = scratch + "/dangling.sqlite";
    assert_false(backends::open("sqlite", settings).has_value());
    assert_false(fs::exists(scratch + "/elsewhere.sqlite"));
    if (::geteuid() == 0) {
        settings.name = scratch + "/cache.sqlite";
        fs::remove(settings.name + "-wal");
        fs::remove(settings.name + "-shm");
        assert_int_equal(::chown(settings.name.c_str(), k_other, k_other), 0);
        auto foreign = backends::open("sqlite", settings);
        assert_false(foreign.has_value());
        assert_true(contains(foreign.error().message, "owned by uid 65534"));
    }
}

void test_filesystem_refuses_a_foreign_tree(void** state) {
    const std::string& scratch = scratch_of(state);
    config::Settings settings;
    settings.name = scratch + "/tree";
    fs::create_directory(settings.name);
    ::chmod(settings.name.c_str(), 0777);
    auto opened = backends::open("filesystem", settings);
    assert_false(opened.has_value());
    assert_true(contains(opened.error().message, "refused " + settings.name));
    ::chmod(settings.name.c_str(), 0700);
    write_file(scratch + "/victim", "x");
    fs::create_symlink(scratch + "/victim", settings.name + "/stats");
    assert_false(backends::open("filesystem", settings).has_value());
    fs::remove(settings.name + "/stats");
    assert_true(backends::open("filesystem", settings).has_value());
}

// An entry file that is not the user's (a tree that was shared once) is never served.
void test_filesystem_never_serves_an_entry_file_another_user_owns(void** state) {
    skip_unless_root();
    config::Settings settings;
    settings.name = scratch_of(state) + "/tree";
    auto storage = backends::open("filesystem", settings);
    assert_true(storage.has_value());
    std::string key = tests::test_key(1);
    std::string_view value = "the attacker's body";
    assert_true((*storage)->put(tests::test_meta(key), std::span(&value, 1)).has_value());
    assert_true((*storage)->get(key).has_value() && (*storage)->get(key)->has_value());
    std::string path = backends::filesystem_entry_path(settings.name, key);
    assert_int_equal(::chown(path.c_str(), k_other, k_other), 0);
    auto got = (*storage)->get(key);
    assert_true(got.has_value());
    assert_false(got->has_value());
}

// Another user could hold a read lock on a lock file they can read: it is made 0600 again.
void test_a_readable_lock_file_becomes_owner_only(void** state) {
    std::string dir = scratch_of(state) + "/cache.locks";
    fs::create_directory(dir);
    ::chmod(dir.c_str(), 0700);
    write_file(dir + "/keys.lock", "");
    ::chmod((dir + "/keys.lock").c_str(), 0644);
    backends::FileLocks locks(dir);
    auto locked = locks.try_lock("00aabbccddeeff");
    assert_true(locked.has_value() && *locked);
    assert_int_equal(mode_of(dir + "/keys.lock"), 0600);
}

// A lock file another user created and holds must not make a miss wait for lock_timeout:
// it is refused at once.
void test_a_foreign_lock_file_is_refused_without_waiting(void** state) {
    skip_unless_root();
    const std::string& scratch = scratch_of(state);
    std::string dir = scratch + "/cache.locks";
    fs::create_directory(dir);
    ::chmod(dir.c_str(), 0777);
    assert_int_equal(::chown(dir.c_str(), k_other, k_other), 0);
    base::Fd held(::open((dir + "/keys.lock").c_str(), O_RDWR | O_CREAT, 0666));
    assert_true(static_cast<bool>(held));
    assert_int_equal(::fchown(*held, k_other, k_other), 0);
    struct flock whole {};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET;
    assert_int_equal(::fcntl(*held, F_OFD_SETLK, &whole), 0);
    backends::FileLocks locks(dir);
    auto start = std::chrono::steady_clock::now();
    auto locked = locks.try_lock("00aabbccddeeff");
    assert_false(locked.has_value());
    assert_true(contains(locked.error().message, "refused " + dir));
    assert_false(locks.try_lock("00aabbccddeeff").has_value()); // remembered, not retried
    assert_true(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

} // namespace

int main() {
    const CMUnitTest cases[] = {
        cmocka_unit_test_setup_teardown(
            test_missing_folders_are_created_owner_only_and_links_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_folder_another_user_owns_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_folder_others_can_write_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_world_writable_folder_on_the_way_must_be_sticky,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_link_another_user_planted_on_the_way_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_files_are_never_opened_through_a_link_even_a_dangling_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_another_user_owns_or_can_write_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_temp_folders_are_used_through_a_per_user_folder,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_refuses_a_foreign_database_and_linked_siblings,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_filesystem_refuses_a_foreign_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_filesystem_never_serves_an_entry_file_another_user_owns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_readable_lock_file_becomes_owner_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_foreign_lock_file_is_refused_without_waiting, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("private paths", cases, nullptr, nullptr);
}
