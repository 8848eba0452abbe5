// backends/backoff.h: the back-off marker a remote backend shares between processes. Each
// SharedBackoff object below plays one process (the marker file is what they share).
#include "backends/backoff.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using backends::SharedBackoff;

constexpr const char* k_server = "redis://127.0.0.1:6379/0";

std::string g_scratch; // one for the group; each test takes its own folder in it

int group_setup(void**) {
    g_scratch = tests::make_scratch();
    return 0;
}

int group_teardown(void**) {
    tests::remove_scratch(g_scratch);
    return 0;
}

// A marker folder of its own for each test (not created: SharedBackoff does that).
std::string fresh_folder() {
    static int count = 0;
    return g_scratch + "/backoff" + std::to_string(++count);
}

int64_t now_ms() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

std::string contents(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// What the clock would do: the marker's time has passed (its wait kept).
void expire(const std::string& path) {
    int64_t until = 0, wait = 0;
    assert_int_equal(std::sscanf(contents(path).c_str(), "%ld %ld", &until, &wait), 2);
    std::ofstream(path, std::ios::trunc) << (now_ms() - 1) << ' ' << wait << '\n';
}

int64_t wait_of(const std::string& path) {
    int64_t until = 0, wait = 0;
    assert_int_equal(std::sscanf(contents(path).c_str(), "%ld %ld", &until, &wait), 2);
    return wait;
}

void test_no_marker_goes_ahead_and_success_touches_nothing(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff process(k_server, folder);
    assert_false(process.check().has_value());
    process.succeeded();
    struct stat st {};
    assert_int_equal(::stat(folder.c_str(), &st), -1); // nothing written
}

void test_failure_makes_other_processes_pass_through(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff first(k_server, folder);
    assert_false(first.check().has_value());
    SharedBackoff::Wait wait = first.failed();
    assert_int_equal(wait.wait_ms, SharedBackoff::k_first.count());

    SharedBackoff second(k_server, folder);
    auto held = second.check();
    assert_true(held.has_value());
    assert_int_equal(held->wait_ms, SharedBackoff::k_first.count());
    assert_true(second.describe(*held).find(first.path()) != std::string::npos);
    // Another server is not held back by this one's marker.
    SharedBackoff other("redis://127.0.0.1:6380/0", folder);
    assert_false(other.check().has_value());
    // The marker is private: a folder and a file of the user's that no one else may write.
    struct stat st {};
    assert_int_equal(::stat(first.path().c_str(), &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(::stat(folder.c_str(), &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
}

void test_first_retry_after_expiry_claims_then_doubles_up_to_the_cap(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff first(k_server, folder);
    first.failed();
    int64_t expected = SharedBackoff::k_first.count();
    for (int round = 0; round < 10; ++round) {
        expire(first.path());
        SharedBackoff retrying(k_server, folder);
        assert_false(retrying.check().has_value()); // this one finds out...
        SharedBackoff meanwhile(k_server, folder);
        assert_true(meanwhile.check().has_value()); // ...the others still pass through
        retrying.failed();
        expected = std::min<int64_t>(expected * 2, SharedBackoff::k_most.count());
        assert_int_equal(wait_of(first.path()), expected);
    }
    assert_int_equal(expected, SharedBackoff::k_most.count());
}

void test_success_after_the_back_off_removes_the_marker(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff first(k_server, folder);
    first.failed();
    expire(first.path());
    SharedBackoff retrying(k_server, folder);
    assert_false(retrying.check().has_value());
    retrying.succeeded();
    assert_int_equal(::access(first.path().c_str(), F_OK), -1);
    SharedBackoff next(k_server, folder);
    assert_false(next.check().has_value());
    // A failure then starts again from the first wait.
    assert_int_equal(next.failed().wait_ms, SharedBackoff::k_first.count());
}

void test_a_failure_within_the_back_off_does_not_extend_it(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff first(k_server, folder);
    SharedBackoff::Wait wait = first.failed();
    SharedBackoff running(k_server, folder); // a process already using the server
    SharedBackoff::Wait again = running.failed();
    assert_int_equal(again.until_ms, wait.until_ms);
    assert_int_equal(again.wait_ms, wait.wait_ms);
    // Its later success ends the back-off for everyone.
    running.succeeded();
    assert_int_equal(::access(first.path().c_str(), F_OK), -1);
}

void test_damaged_or_far_future_markers_are_ignored(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff first(k_server, folder);
    first.failed();
    const char* bad[] = {"", "garbage\n", "123\n", "99999999999999 5000\n", "-5 -5\n"};
    for (const char* text : bad) {
        std::ofstream(first.path(), std::ios::trunc) << text;
        SharedBackoff reader(k_server, folder);
        assert_false(reader.check().has_value());
    }
    // A clock far ahead (or a planted marker) never holds longer than k_most.
    std::ofstream(first.path(), std::ios::trunc)
        << (now_ms() + 10 * SharedBackoff::k_most.count()) << " 5000\n";
    SharedBackoff reader(k_server, folder);
    assert_false(reader.check().has_value());
}

void test_marker_that_is_a_link_or_not_the_users_is_ignored(void**) {
    const std::string folder = fresh_folder();
    SharedBackoff first(k_server, folder);
    first.failed();
    std::string real = first.path() + ".real";
    assert_int_equal(::rename(first.path().c_str(), real.c_str()), 0);
    assert_int_equal(::symlink(real.c_str(), first.path().c_str()), 0);
    SharedBackoff reader(k_server, folder);
    assert_false(reader.check().has_value());
    // A failure replaces the link with a marker; it never writes through it.
    std::string before = contents(real);
    reader.failed();
    assert_string_equal(contents(real).c_str(), before.c_str());
    struct stat st {};
    assert_int_equal(::lstat(first.path().c_str(), &st), 0);
    assert_true(S_ISREG(st.st_mode));

    if (::geteuid() == 0) { // a marker another user planted is not trusted
        assert_int_equal(::chown(first.path().c_str(), 65534, 65534), 0);
        SharedBackoff third(k_server, folder);
        assert_false(third.check().has_value());
        // A group- or world-writable marker neither.
        assert_int_equal(::chown(first.path().c_str(), 0, 0), 0);
        assert_int_equal(::chmod(first.path().c_str(), 0666), 0);
        assert_false(third.check().has_value());
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_marker_goes_ahead_and_success_touches_nothing),
        cmocka_unit_test(test_failure_makes_other_processes_pass_through),
        cmocka_unit_test(test_first_retry_after_expiry_claims_then_doubles_up_to_the_cap),
        cmocka_unit_test(test_success_after_the_back_off_removes_the_marker),
        cmocka_unit_test(test_a_failure_within_the_back_off_does_not_extend_it),
        cmocka_unit_test(test_damaged_or_far_future_markers_are_ignored),
        cmocka_unit_test(test_marker_that_is_a_link_or_not_the_users_is_ignored),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
