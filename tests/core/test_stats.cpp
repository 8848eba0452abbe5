// Persistent statistics (core/stats.h): file locations, locked read-modify-write across
// processes, and fork safety.
#include "backends/registry.h"
#include "core/cache.h"
#include "core/stats.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

extern "C" {
#include <cmocka.h>
}

#include "tests/core/scratch.h"

using namespace curlcache;
using namespace curlcache::core;

namespace {

// A storage that only has a name and a location, for the path rules.
class NamedStorage : public backends::Storage {
  public:
    NamedStorage(std::string name, std::string location)
        : m_name(std::move(name)), m_location(std::move(location)) {}
    std::string_view name() const override { return m_name; }
    std::string location() const override { return m_location; }
    backends::Result<std::optional<backends::Blob>> get(std::string_view) override {
        return std::optional<backends::Blob>();
    }
    backends::Result<void> put(const backends::Metadata&, backends::Pieces) override { return {}; }
    backends::Result<bool> remove(std::string_view) override { return false; }
    backends::Result<void> scan(const std::function<bool(const backends::Metadata&)>&) override {
        return {};
    }
    backends::Result<void> clear() override { return {}; }
    backends::Result<backends::Usage> usage() override { return backends::Usage{}; }

  private:
    std::string m_name, m_location;
};

void test_stats_file_sits_next_to_each_backend(void**) {
    config::Settings settings;
    assert_string_equal(stats::file_path(settings, NamedStorage("memory", "")).c_str(), "");
    assert_string_equal(stats::file_path(settings, NamedStorage("sqlite", "/d/c.sqlite")).c_str(),
                        "/d/c.sqlite.stats");
    assert_string_equal(
        stats::file_path(settings, NamedStorage("sqlite", "file:x?mode=memory&cache=shared"))
            .c_str(),
        "");
    assert_string_equal(stats::file_path(settings, NamedStorage("filesystem", "/d/dir")).c_str(),
                        "/d/dir/stats");
    // A relative cache name is resolved against the directory at open time.
    char previous[PATH_MAX];
    assert_non_null(getcwd(previous, sizeof previous));
    assert_int_equal(chdir(g_scratch), 0);
    std::string relative = std::string(g_scratch) + "/rel.sqlite.stats";
    assert_string_equal(stats::file_path(settings, NamedStorage("sqlite", "rel.sqlite")).c_str(),
                        relative.c_str());
    assert_int_equal(chdir(previous), 0);
    std::string expected = std::string(scratch_path("cache")) + "/curlcache/curlcache.stats";
    assert_string_equal(
        stats::file_path(settings, NamedStorage("redis", "redis://h:1/0 x")).c_str(),
        expected.c_str());
    settings.name = "team/ns";
    expected = std::string(scratch_path("cache")) + "/curlcache/team_ns.stats";
    assert_string_equal(
        stats::file_path(settings, NamedStorage("redis", "redis://h:1/0 x")).c_str(),
        expected.c_str());
    struct stat st;
    assert_int_equal(stat((std::string(scratch_path("cache")) + "/curlcache").c_str(), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

void test_missing_file_reads_as_zero_and_damaged_lines_are_skipped(void**) {
    std::string path = scratch_path("s.stats");
    auto empty = stats::read_file(path);
    assert_true(empty.has_value());
    assert_true(empty->empty());
    std::ofstream(path) << "garbage line\nhits 7\nunknown_counter 9\nmisses notanumber\nstores 2";
    auto read = stats::read_file(path);
    assert_true(read.has_value());
    assert_int_equal(read->hits, 7);
    assert_int_equal(read->misses, 0);
    assert_int_equal(read->stores, 2);
}

void test_concurrent_processes_add_up_exactly(void**) {
    std::string path = scratch_path("shared.stats");
    constexpr int k_children = 4, k_rounds = 50;
    pid_t pids[k_children];
    for (int i = 0; i < k_children; ++i) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            stats::Counters delta;
            delta.hits = 1;
            delta.bytes_served = 10;
            for (int round = 0; round < k_rounds; ++round) {
                if (!stats::add_to_file(path, delta)) {
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    for (pid_t pid : pids) {
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    auto total = stats::read_file(path);
    assert_true(total.has_value());
    assert_int_equal(total->hits, k_children * k_rounds);
    assert_int_equal(total->bytes_served, 10 * k_children * k_rounds);
    struct stat st;
    assert_int_equal(stat(path.c_str(), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(stats::zero_file(path).has_value());
    assert_true(stats::read_file(path)->empty());
}

// A forked child starts from zero: the parent's unflushed counts are flushed once, by the
// parent, and the child's own counts are flushed at its exit.
void test_forked_child_does_not_count_parent_twice(void**) {
    config::Settings settings;
    settings.backend = {"sqlite"};
    settings.name = scratch_path("fork.sqlite");
    auto cache = Cache::open(settings);
    assert_true(cache.has_value());
    std::string path = (*cache)->stats_path();
    assert_string_equal(path.c_str(), (std::string(settings.name) + ".stats").c_str());
    (*cache)->stats().hits += 5;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (*cache)->stats().hits += 1;
        std::exit(0); // atexit flush: the child's 1 only
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(stats::read_file(path)->hits, 1);
    cache->reset(); // the parent's 5
    assert_int_equal(stats::read_file(path)->hits, 6);
}

void test_flush_keeps_counts_when_the_file_cannot_be_written(void**) {
    config::Settings settings;
    settings.backend = {"sqlite"};
    settings.name = scratch_path("ro.sqlite");
    auto cache = Cache::open(settings);
    assert_true(cache.has_value());
    // A directory where the stats file should be: every write fails.
    assert_int_equal(mkdir((*cache)->stats_path().c_str(), 0700), 0);
    (*cache)->stats().misses += 3;
    (*cache)->flush_stats();
    assert_int_equal((*cache)->stats().misses.load(), 3);
    assert_int_equal(rmdir((*cache)->stats_path().c_str()), 0);
    (*cache)->flush_stats();
    assert_int_equal((*cache)->stats().misses.load(), 0);
    assert_int_equal(stats::read_file((*cache)->stats_path())->misses, 3);
}

void test_filesystem_stats_recreate_a_removed_cache_folder(void**) {
    config::Settings settings;
    settings.backend = {"filesystem"};
    settings.name = scratch_path("fs-cache");
    auto cache = Cache::open(settings);
    assert_true(cache.has_value());
    std::string path = (*cache)->stats_path();
    assert_string_equal(path.c_str(), (settings.name + "/stats").c_str());
    (*cache)->stats().misses += 2;
    // The folder goes away under a running program (`rm -rf` of the cache): the counts
    // are still saved, into a recreated owner-only folder.
    std::string command = "rm -rf '" + settings.name + "'";
    assert_int_equal(system(command.c_str()), 0);
    cache->reset();
    struct stat st;
    assert_int_equal(stat(settings.name.c_str(), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stats::read_file(path)->misses, 2);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stats_file_sits_next_to_each_backend, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_missing_file_reads_as_zero_and_damaged_lines_are_skipped, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes_add_up_exactly, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_does_not_count_parent_twice,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_flush_keeps_counts_when_the_file_cannot_be_written,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_filesystem_stats_recreate_a_removed_cache_folder,
                                        scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
