// flock-based locks for file backends: exclusive within and across processes, released on
// unlock and when the holder dies, folder created owner-only, storage calls forwarded.
#include "backends/file_lock.h"
#include "backends/registry.h"
#include "tests/redis/fixture.h"

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <csetjmp>
extern "C" {
#include <cmocka.h>
}

#include <csignal>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace curlcache;
using namespace curlcache::backends;

namespace {

std::string g_scratch;

int setup(void**) {
    g_scratch = tests::redis::make_scratch();
    return 0;
}

int teardown(void**) {
    tests::redis::remove_tree(g_scratch);
    return 0;
}

void test_lock_is_exclusive_in_one_process_until_unlocked(void**) {
    FileLocks locks(g_scratch + "/c.locks");
    FileLocks others(g_scratch + "/c.locks"); // another cache object on the same files
    assert_true(*locks.try_lock("k1"));
    assert_false(*locks.try_lock("k1"));
    assert_false(*others.try_lock("k1"));
    assert_true(*others.try_lock("k2"));
    struct stat info {};
    assert_int_equal(stat((g_scratch + "/c.locks").c_str(), &info), 0);
    assert_int_equal(info.st_mode & 0777, 0700);
    assert_true(locks.unlock("k1").has_value());
    assert_true(*others.try_lock("k1"));
    assert_true(others.unlock("k1").has_value());
    assert_true(others.unlock("never-held").has_value());
    assert_false(locks.try_lock("../escape").has_value());
}

void test_lock_held_by_another_process_is_taken_over_when_it_dies(void**) {
    std::string dir = g_scratch + "/d.locks";
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t holder = fork();
    if (holder == 0) {
        FileLocks locks(dir);
        bool locked = locks.try_lock("key").value_or(false);
        char byte = locked ? 'y' : 'n';
        (void)!write(ready[1], &byte, 1);
        pause(); // holds the lock until killed
        _exit(0);
    }
    char byte = 0;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(byte, 'y');
    FileLocks locks(dir);
    assert_false(*locks.try_lock("key"));
    kill(holder, SIGKILL);
    waitpid(holder, nullptr, 0);
    assert_true(*locks.try_lock("key")); // the kernel released the dead holder's flock
    close(ready[0]);
    close(ready[1]);
}

void test_forked_child_does_not_release_its_parents_lock(void**) {
    FileLocks locks(g_scratch + "/e.locks");
    assert_true(*locks.try_lock("key"));
    pid_t child = fork();
    if (child == 0) {
        bool ok = locks.unlock("key").has_value() && !*locks.try_lock("key");
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FileLocks other(g_scratch + "/e.locks");
    assert_false(*other.try_lock("key"));
}

void test_wrapped_storage_forwards_and_locks_next_to_the_cache(void**) {
    config::Settings settings;
    settings.name = g_scratch + "/cache-dir";
    auto opened = backends::open("filesystem", settings);
    if (!opened) {
        skip(); // the filesystem backend is not usable in this build
    }
    std::string dir = lock_dir_for(**opened);
    assert_string_equal(dir.c_str(), (g_scratch + "/cache-dir.locks").c_str());
    auto storage = with_file_locks(std::move(*opened), dir);
    Metadata meta;
    meta.key = "0123456789abcdef0123456789abcdef";
    std::string_view pieces[] = {"value"};
    assert_true(storage->put(meta, pieces).has_value());
    auto got = storage->get(meta.key);
    assert_true(got && *got && ***got == "value");
    assert_string_equal(std::string(storage->name()).c_str(), "filesystem");
    assert_true(*storage->try_lock(meta.key, 1000));
    FileLocks other(dir);
    assert_false(*other.try_lock(meta.key));
    assert_true(storage->unlock(meta.key).has_value());
    assert_true(*other.try_lock(meta.key));

    config::Settings memory;
    auto in_memory = backends::open("memory", memory);
    assert_true(in_memory.has_value());
    assert_string_equal(lock_dir_for(**in_memory).c_str(), "");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_is_exclusive_in_one_process_until_unlocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_held_by_another_process_is_taken_over_when_it_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_does_not_release_its_parents_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapped_storage_forwards_and_locks_next_to_the_cache, setup, teardown),
    };
    return cmocka_run_group_tests_name("file_lock", tests, nullptr, nullptr);
}
