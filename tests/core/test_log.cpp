// Logging (core/log.h): prefix, levels, once-only warnings, owner-only append-mode file.
#include "core/log.h"

#include <sys/stat.h>

#include <cerrno>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include "tests/core/scratch.h"

using namespace curlcache;
namespace log = curlcache::core::log;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

int teardown(void** state) {
    log::configure(config::LogLevel::warning, ""); // back to stderr, file closed
    return scratch_teardown(state);
}

void test_file_is_owner_only_appended_and_prefixed(void**) {
    std::string path = scratch_path("log.txt");
    std::ofstream(path) << "earlier line\n";
    chmod(path.c_str(), 0600);
    log::configure(config::LogLevel::info, path);
    CURLCACHE_LOG(info, "hello %d", 42);
    CURLCACHE_LOG(warning, "careful");
    CURLCACHE_LOG(debug, "not shown");
    std::string text = slurp(path);
    assert_string_equal(text.c_str(),
                        "earlier line\ncurlcache: hello 42\ncurlcache: warning: careful\n");

    std::string fresh = scratch_path("new.log");
    log::configure(config::LogLevel::error, fresh);
    CURLCACHE_LOG(error, "%s", std::string(2000, 'x').c_str()); // longer than the fast buffer
    CURLCACHE_LOG(warning, "filtered");
    struct stat st;
    assert_int_equal(stat(fresh.c_str(), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    text = slurp(fresh);
    assert_int_equal(text.size(), strlen("curlcache: error: ") + 2000 + 1);
    assert_int_equal(count(text, "filtered"), 0);
}

void test_warn_once_warns_once_per_key(void**) {
    std::string path = scratch_path("once.log");
    log::configure(config::LogLevel::warning, path);
    for (int i = 0; i < 3; ++i) {
        log::warn_once("test-key-a", "backend down %d", i);
        log::warn_once("test-key-b", "other problem");
    }
    std::string text = slurp(path);
    assert_int_equal(count(text, "backend down"), 1);
    assert_int_equal(count(text, "backend down 0"), 1);
    assert_int_equal(count(text, "other problem"), 1);
}

// One cause, one warning: a full disk met by a put and by the statistics at exit, or a
// folder met by a get and then by a put's rename, are one cause each (issue 10).
void test_causes_group_errno_values_that_one_remedy_fixes(void**) {
    assert_string_equal(log::cause("filesystem", "put", ENOSPC).c_str(), "no-space");
    assert_string_equal(log::cause("stats", "flush", EDQUOT).c_str(), "no-space");
    assert_string_equal(log::cause("filesystem", "get", EISDIR).c_str(),
                        log::cause("filesystem", "put", ENOTEMPTY).c_str());
    assert_string_equal(log::cause("sqlite", "get", EACCES).c_str(),
                        log::cause("sqlite", "put", EROFS).c_str());
    // Different rooms, or different operations without an errno class, stay apart.
    assert_string_not_equal(log::cause("sqlite", "get", EACCES).c_str(),
                            log::cause("stats", "flush", EACCES).c_str());
    assert_string_not_equal(log::cause("redis", "get", 0).c_str(),
                            log::cause("redis", "put", 0).c_str());
    assert_string_equal(log::cause("redis", "get", EIO).c_str(), "redis:get");

    std::string path = scratch_path("causes.log");
    log::configure(config::LogLevel::warning, path);
    log::warn_once(log::cause("filesystem", "put", ENOSPC).c_str(), "put failed: /a/b: full");
    log::warn_once(log::cause("stats", "flush", ENOSPC).c_str(), "cannot save: /a/stats: full");
    assert_int_equal(count(slurp(path), "curlcache: warning: "), 1);
}

void test_threads_write_whole_lines(void**) {
    std::string path = scratch_path("threads.log");
    log::configure(config::LogLevel::info, path);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([t] {
            for (int i = 0; i < 200; ++i) {
                CURLCACHE_LOG(info, "thread %d line %d %s", t, i, "padding padding padding");
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    std::ifstream in(path);
    std::string line;
    size_t lines = 0;
    while (std::getline(in, line)) {
        assert_true(line.starts_with("curlcache: thread "));
        assert_true(line.ends_with(" padding padding padding"));
        ++lines;
    }
    assert_int_equal(lines, 800);
}

void test_unwritable_log_file_falls_back_to_stderr(void**) {
    log::configure(config::LogLevel::info, scratch_path("no/such/dir/x.log"));
    CURLCACHE_LOG(info, "still logged somewhere"); // must not crash; goes to stderr
    struct stat st;
    assert_int_not_equal(stat(scratch_path("no/such/dir/x.log"), &st), 0);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_is_owner_only_appended_and_prefixed,
                                        scratch_setup, teardown),
        cmocka_unit_test_setup_teardown(test_warn_once_warns_once_per_key, scratch_setup, teardown),
        cmocka_unit_test_setup_teardown(test_causes_group_errno_values_that_one_remedy_fixes,
                                        scratch_setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_write_whole_lines, scratch_setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_log_file_falls_back_to_stderr,
                                        scratch_setup, teardown),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
