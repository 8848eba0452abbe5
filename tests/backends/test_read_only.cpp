// Read-only caches (README.md, "Read-only caches"): the sqlite and filesystem backends open
// a cache read-only in mode "readonly" and when the user may read but not write it (here:
// a root cache read by uid 65534, in a forked child); hits are served, every write fails
// saying "read-only", nothing in the cache changes, and a missing cache is an empty one.
// base::Trust::read accepts root's folders that only root may write, and nothing else.
#include "backends/registry.h"
#include "base/private_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
namespace fs = std::filesystem;

constexpr uid_t k_nobody = 65534;
constexpr size_t k_large = 300 * 1024; // over the sqlite body-file threshold

using tests::scratch_of;
using tests::scratch_teardown;

int setup(void** state) {
    tests::scratch_setup(state);
    ::chmod(scratch_of(state).c_str(), 0755); // the reader reaches it
    return 0;
}

void skip_unless_root() {
    if (::geteuid() != 0) {
        skip(); // a cache of another user's needs root to make
    }
}

config::Settings settings_for(const std::string& backend, const std::string& name,
                              config::Mode mode = config::Mode::normal) {
    config::Settings settings;
    settings.backend = {backend};
    settings.name = name;
    settings.mode = mode;
    return settings;
}

// Every name under `dir` with its size, mode, owner and modification time.
std::map<std::string, std::string> listing(const std::string& dir) {
    std::map<std::string, std::string> out;
    if (!fs::exists(dir)) {
        return out;
    }
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        struct stat st {};
        ::lstat(entry.path().c_str(), &st);
        out[entry.path().string()] = std::to_string(st.st_size) + " " + std::to_string(st.st_mode) +
                                     " " + std::to_string(st.st_uid) + " " +
                                     std::to_string(st.st_mtim.tv_sec) + "." +
                                     std::to_string(st.st_mtim.tv_nsec);
    }
    return out;
}

// Stores a small and a large value (key 1, key 2) with write access, then closes.
void fill(const config::Settings& settings) {
    auto storage = backends::open(settings.backend.front(), settings);
    if (!storage) {
        fail_msg("open: %s", storage.error().message.c_str());
    }
    for (uint64_t n : {1u, 2u}) {
        std::string key = tests::test_key(n);
        std::string value = tests::make_value(key, n, n == 1 ? 100 : k_large);
        std::string_view piece(value);
        auto put = (*storage)->put(tests::test_meta(key), std::span(&piece, 1));
        if (!put) {
            fail_msg("put: %s", put.error().message.c_str());
        }
    }
}

// What a read-only storage must do: serve both values, scan and count them, refuse every
// write with "read-only". "" when it does, else the first thing that went wrong.
std::string read_only_behaviour(backends::Storage& storage) {
    if (storage.read_only_reason().empty()) {
        return "not read-only";
    }
    for (uint64_t n : {1u, 2u}) {
        std::string key = tests::test_key(n);
        auto got = storage.get(key);
        if (!got || !*got || !tests::value_is_intact(key, ***got)) {
            return "get " + std::to_string(n) + ": " +
                   (got ? "miss or damaged" : got.error().message);
        }
    }
    int scanned = 0;
    auto scan = storage.scan([&](const backends::Metadata&) { return ++scanned, true; });
    auto usage = storage.usage();
    if (!scan || scanned != 2 || !usage || usage->entries != 2) {
        return "scan or usage does not see the two entries";
    }
    std::string key = tests::test_key(3);
    std::string_view piece("x");
    std::vector<std::pair<std::string, backends::Error>> writes;
    auto collect = [&](const char* what, const auto& result) {
        writes.emplace_back(what, result ? backends::Error{} : result.error());
        if (result) {
            writes.back().second.message = "succeeded";
        }
    };
    collect("put", storage.put(tests::test_meta(key), std::span(&piece, 1)));
    collect("begin_put", storage.begin_put(10));
    collect("remove", storage.remove(tests::test_key(1)));
    collect("clear", storage.clear());
    collect("purge_expired", storage.purge_expired(INT64_MAX));
    collect("vacuum", storage.vacuum());
    for (const auto& [what, error] : writes) {
        if (error.message.find("read-only") == std::string::npos) {
            return what + ": " + error.message;
        }
    }
    return {};
}

void check_readonly_mode_serves_and_never_writes(const config::Settings& write,
                                                 const std::string& dir) {
    fill(write);
    auto before = listing(dir);
    config::Settings read = write;
    read.mode = config::Mode::readonly;
    {
        auto storage = backends::open(read.backend.front(), read);
        if (!storage) {
            fail_msg("open read-only: %s", storage.error().message.c_str());
        }
        std::string problem = read_only_behaviour(**storage);
        if (!problem.empty()) {
            fail_msg("%s", problem.c_str());
        }
    }
    auto after = listing(dir);
    for (const auto& [name, what] : after) {
        auto was = before.find(name);
        // SQLite may add -wal and -shm to read a database whose folder it may write.
        bool sqlite_index = name.ends_with("-shm") || name.ends_with("-wal");
        if (!sqlite_index && (was == before.end() || was->second != what)) {
            fail_msg("%s changed or appeared: %s", name.c_str(), what.c_str());
        }
    }
}

void test_sqlite_readonly_mode_serves_hits_and_refuses_writes(void** state) {
    const std::string& scratch = scratch_of(state);
    check_readonly_mode_serves_and_never_writes(settings_for("sqlite", scratch + "/c/cache.sqlite"),
                                                scratch + "/c");
}

void test_filesystem_readonly_mode_serves_hits_and_refuses_writes(void** state) {
    const std::string& scratch = scratch_of(state);
    check_readonly_mode_serves_and_never_writes(settings_for("filesystem", scratch + "/fs"),
                                                scratch + "/fs");
}

void test_readonly_mode_opens_a_missing_cache_empty_and_creates_nothing(void** state) {
    const std::string& scratch = scratch_of(state);
    for (const char* backend : {"sqlite", "filesystem"}) {
        auto settings =
            settings_for(backend, scratch + "/missing/cache.sqlite", config::Mode::readonly);
        auto storage = backends::open(backend, settings);
        if (!storage) {
            fail_msg("%s: %s", backend, storage.error().message.c_str());
        }
        assert_false((*storage)->read_only_reason().empty());
        auto got = (*storage)->get(tests::test_key(1));
        assert_true(got && !*got);
        auto usage = (*storage)->usage();
        assert_true(usage && usage->entries == 0);
        std::string_view piece("x");
        auto put = (*storage)->put(tests::test_meta(tests::test_key(1)), std::span(&piece, 1));
        assert_false(put.has_value());
        assert_false(fs::exists(scratch + "/missing"));
    }
}

// Runs `check` in a child as uid/gid 65534; its exit status 0 means it passed, and what it
// prints on stderr says why not.
void as_nobody(const std::function<std::string()>& check) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        std::string problem = "cannot become uid 65534";
        if (::setresgid(k_nobody, k_nobody, k_nobody) == 0 &&
            ::setresuid(k_nobody, k_nobody, k_nobody) == 0) {
            problem = check();
        }
        if (!problem.empty()) {
            std::fprintf(stderr, "as uid 65534: %s\n", problem.c_str());
        }
        ::_exit(problem.empty() ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(::waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

// A root cache, folders 0755 and files 0644, as a shared cache root keeps.
void share(const std::string& dir) {
    ::chmod(dir.c_str(), 0755);
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        ::chmod(entry.path().c_str(), entry.is_directory() ? 0755 : 0644);
    }
}

void test_root_cache_is_read_only_for_another_user(void** state) {
    skip_unless_root();
    const std::string& scratch = scratch_of(state);
    for (const char* backend : {"sqlite", "filesystem"}) {
        std::string dir = scratch + "/" + backend;
        auto settings = settings_for(backend, dir + "/cache.sqlite");
        if (std::string(backend) == "filesystem") {
            settings.name = dir;
        }
        fill(settings);
        share(dir);
        auto before = listing(dir);
        as_nobody([&]() -> std::string {
            auto storage = backends::open(backend, settings);
            if (!storage) {
                return storage.error().message;
            }
            std::string problem = read_only_behaviour(**storage);
            if (problem.empty() &&
                (*storage)->read_only_reason().find("uid 0") == std::string::npos) {
                problem = "the reason does not say whose: " + (*storage)->read_only_reason();
            }
            return problem;
        });
        assert_true(listing(dir) == before);
    }
}

void test_root_cache_others_may_write_is_refused_for_reading_too(void** state) {
    skip_unless_root();
    const std::string& scratch = scratch_of(state);
    std::string dir = scratch + "/c";
    auto settings = settings_for("sqlite", dir + "/cache.sqlite");
    fill(settings);
    share(dir);
    ::chmod((dir + "/cache.sqlite").c_str(), 0666);
    as_nobody([&]() -> std::string {
        auto storage = backends::open("sqlite", settings);
        if (storage) {
            return "opened a database everyone may write";
        }
        if (storage.error().message.find("others may write it") == std::string::npos) {
            return "unexpected message: " + storage.error().message;
        }
        return {};
    });
}

void test_trust_read_accepts_only_root_folders_only_root_may_write(void** state) {
    skip_unless_root();
    const std::string& scratch = scratch_of(state);
    std::string shared = scratch + "/shared";
    std::string loose = scratch + "/loose";
    std::string daemons = scratch + "/daemons";
    for (const auto& [dir, mode] : {std::pair{shared, 0755}, {loose, 0775}, {daemons, 0755}}) {
        fs::create_directory(dir);
        ::chmod(dir.c_str(), static_cast<mode_t>(mode));
    }
    assert_int_equal(::chown(daemons.c_str(), 1, 1), 0);
    as_nobody([&]() -> std::string {
        if (auto own = base::open_private_dir(shared, false); own) {
            return "Trust::own accepted root's folder";
        }
        if (auto read = base::open_private_dir(shared, false, base::Trust::read); !read) {
            return "Trust::read refused root's 0755 folder: " + read.error().message;
        }
        auto group = base::open_private_dir(loose, false, base::Trust::read);
        if (group || group.error().message.find("others may write it") == std::string::npos) {
            return "Trust::read accepted root's 0775 folder";
        }
        auto other = base::open_private_dir(daemons, false, base::Trust::read);
        if (other || other.error().message.find("neither you") == std::string::npos) {
            return "Trust::read accepted a folder of uid 1";
        }
        return {};
    });
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_readonly_mode_serves_hits_and_refuses_writes,
                                        setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_filesystem_readonly_mode_serves_hits_and_refuses_writes, setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_readonly_mode_opens_a_missing_cache_empty_and_creates_nothing, setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(test_root_cache_is_read_only_for_another_user, setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_root_cache_others_may_write_is_refused_for_reading_too,
                                        setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_trust_read_accepts_only_root_folders_only_root_may_write, setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
