// Request coalescing end to end: 8 `curl` commands started together under the preload
// shim miss the same slow URL (scripts/origin.py /slow/MS); the origin must see it once
// and every curl must print the same body. Once with a Redis cache (Redis locks) and once
// with a SQLite cache (a byte-range-locked file next to it). Skipped when the shim is not built.
#include "tests/redis/fixture.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

// cmocka last: its macros (fail, ...) clash with names in the standard headers.
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <csetjmp>
extern "C" {
#include <cmocka.h>
}

using namespace curlcache;

namespace {

constexpr int k_processes = 8;

std::string g_scratch;
std::string g_shim;
tests::redis::RedisServer* g_redis = nullptr;
tests::redis::Origin* g_origin = nullptr;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs argv with `env` added to a clean environment; returns the exit status (-1: signal).
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::string& out) {
    pid_t child = fork();
    if (child == 0) {
        clearenv();
        for (const auto& entry : env) {
            putenv(const_cast<char*>(entry.c_str()));
        }
        std::FILE* file = std::freopen(out.c_str(), "w", stdout);
        (void)file;
        std::vector<char*> args;
        for (const auto& arg : argv) {
            args.push_back(const_cast<char*>(arg.c_str()));
        }
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    return child;
}

// How many times the origin served each of `paths` (its request log, one "GET path" a line).
std::vector<int> origin_counts(const std::vector<std::string>& paths) {
    std::string out = g_scratch + "/log.txt";
    pid_t child = spawn({"curl", "-s", g_origin->url("/__log")},
                        {"PATH=/usr/bin:/bin"}, out);
    waitpid(child, nullptr, 0);
    std::vector<int> counts(paths.size(), 0);
    std::istringstream lines(read_file(out));
    std::string line;
    while (std::getline(lines, line)) {
        for (size_t i = 0; i < paths.size(); ++i) {
            counts[i] += line == "GET " + paths[i] ? 1 : 0;
        }
    }
    return counts;
}

int origin_count(const std::string& path) { return origin_counts({path})[0]; }

int group_setup(void**) {
    g_scratch = tests::redis::make_scratch();
    g_shim = std::string(CURLCACHE_BINARY_DIR) + "/lib/libcurlcache-preload.so";
    g_origin = new tests::redis::Origin;
    g_redis = new tests::redis::RedisServer(g_scratch);
    return 0;
}

int group_teardown(void**) {
    delete g_redis;
    delete g_origin;
    tests::redis::remove_tree(g_scratch);
    return 0;
}

std::vector<std::string> shim_env(const std::vector<std::string>& cache_env,
                                  const std::string& home) {
    mkdir(home.c_str(), 0700);
    std::vector<std::string> env{"PATH=/usr/bin:/bin", "LD_PRELOAD=" + g_shim, "HOME=" + home,
                                 "XDG_CACHE_HOME=" + home + "/cache",
                                 "XDG_CONFIG_HOME=" + home + "/config",
                                 "CURLCACHE_LOG_FILE=" + home + "/curlcache.log"};
    env.insert(env.end(), cache_env.begin(), cache_env.end());
    return env;
}

int wait_ok(const std::vector<pid_t>& children) {
    int ok = 0;
    for (pid_t child : children) {
        int status = 0;
        waitpid(child, &status, 0);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : 0;
    }
    return ok;
}

// 8 curl commands started together, each fetching the same 20 slow URLs in one command:
// the origin must serve each URL exactly once (20 requests in all), and all 8 outputs must
// be identical.
void eight_curls_fetch_once(const std::vector<std::string>& cache_env, const std::string& tag) {
    struct stat info {};
    if (stat(g_shim.c_str(), &info) != 0) {
        skip();
    }
    constexpr int k_urls = 20;
    std::string home = g_scratch + "/home-" + tag;
    auto env = shim_env(cache_env, home);
    env.push_back("CURLCACHE_LOCK_TIMEOUT=20s");
    std::vector<std::string> paths;
    std::vector<std::string> argv{"curl", "-s", "-f"};
    for (int i = 0; i < k_urls; ++i) {
        paths.push_back("/slow/100?k=" + tag + "-" + std::to_string(i));
        argv.push_back(g_origin->url(paths.back()));
    }
    std::vector<pid_t> children;
    for (int i = 0; i < k_processes; ++i) {
        children.push_back(spawn(argv, env, home + "/out" + std::to_string(i)));
    }
    assert_int_equal(wait_ok(children), k_processes);
    std::string first = read_file(home + "/out0");
    assert_true(first.starts_with("curlcache test origin"));
    for (int i = 1; i < k_processes; ++i) {
        assert_true(read_file(home + "/out" + std::to_string(i)) == first);
    }
    auto counts = origin_counts(paths);
    int total = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
        total += counts[i];
        if (counts[i] != 1) {
            std::fprintf(stderr, "origin saw %s %d times; curlcache log:\n%s\n",
                         paths[i].c_str(), counts[i],
                         read_file(home + "/curlcache.log").c_str());
        }
    }
    assert_int_equal(total, k_urls);
}

// The curl that holds the download lock is killed mid-download: the 7 curls waiting for it
// still finish, with the body the origin sends (a waiter takes the download over: at once
// for a file lock, once the lock's time runs out for Redis).
void killed_lock_holder(const std::vector<std::string>& cache_env, const std::string& tag) {
    struct stat info {};
    if (stat(g_shim.c_str(), &info) != 0) {
        skip();
    }
    std::string home = g_scratch + "/crash-" + tag;
    auto env = shim_env(cache_env, home);
    env.push_back("CURLCACHE_LOCK_TIMEOUT=3s");
    std::string path = "/slow/1500?k=crash-" + tag;
    std::string url = g_origin->url(path);
    std::string plain = home + "/plain";
    waitpid(spawn({"curl", "-s", "-f", g_origin->url("/slow/0?k=crash-" + tag)},
                  {"PATH=/usr/bin:/bin"}, plain),
            nullptr, 0);
    pid_t holder = spawn({"curl", "-s", "-f", url}, env, home + "/holder");
    // The holder has taken the lock once its request reaches the origin (bounded poll).
    for (int i = 0; i < 500 && origin_count(path) == 0; ++i) {
        usleep(10000);
    }
    assert_int_equal(origin_count(path), 1);
    std::vector<pid_t> waiters;
    for (int i = 0; i < k_processes - 1; ++i) {
        waiters.push_back(spawn({"curl", "-s", "-f", url}, env, home + "/out" + std::to_string(i)));
    }
    kill(holder, SIGKILL);
    waitpid(holder, nullptr, 0);
    assert_int_equal(wait_ok(waiters), k_processes - 1);
    std::string expected = read_file(plain); // /slow/MS serves the same body for any MS
    assert_true(expected.starts_with("curlcache test origin"));
    for (int i = 0; i < k_processes - 1; ++i) {
        assert_true(read_file(home + "/out" + std::to_string(i)) == expected);
    }
}

void test_killed_lock_holder_curl_leaves_the_others_correct_with_sqlite(void**) {
    killed_lock_holder({"CURLCACHE_BACKEND=sqlite", "CURLCACHE_NAME=" + g_scratch + "/crash.sqlite"},
                       "sqlite");
}

void test_killed_lock_holder_curl_leaves_the_others_correct_with_redis(void**) {
    killed_lock_holder({"CURLCACHE_BACKEND=redis", "CURLCACHE_REDIS_URL=" + g_redis->url(),
                        "CURLCACHE_NAME=crash"},
                       "redis");
}

void test_eight_curls_under_the_shim_share_one_download_through_redis(void**) {
    eight_curls_fetch_once({"CURLCACHE_BACKEND=redis", "CURLCACHE_REDIS_URL=" + g_redis->url(),
                            "CURLCACHE_NAME=e2e"},
                           "redis");
}

void test_eight_curls_under_the_shim_share_one_download_through_sqlite(void**) {
    eight_curls_fetch_once({"CURLCACHE_BACKEND=sqlite",
                            "CURLCACHE_NAME=" + g_scratch + "/e2e.sqlite"},
                           "sqlite");
}

// A tiered cache (sqlite over redis) under the shim: an entry only Redis has is served
// from it and copied into SQLite, which then answers alone while Redis does not respond.
void test_tiered_cache_under_the_shim_fills_sqlite_from_redis(void**) {
    struct stat info {};
    if (stat(g_shim.c_str(), &info) != 0) {
        skip();
    }
    std::string home = g_scratch + "/home-tiered";
    mkdir(home.c_str(), 0700);
    std::vector<std::string> env{"PATH=/usr/bin:/bin", "LD_PRELOAD=" + g_shim, "HOME=" + home,
                                 "XDG_CACHE_HOME=" + home + "/cache",
                                 "XDG_CONFIG_HOME=" + home + "/config",
                                 "CURLCACHE_LOG_FILE=" + home + "/curlcache.log",
                                 "CURLCACHE_BACKEND=sqlite,redis",
                                 "CURLCACHE_REDIS_URL=" + g_redis->url()};
    std::string path = "/text?k=tiered";
    auto run_curl = [&](const std::string& out) {
        pid_t child = spawn({"curl", "-s", "-f", g_origin->url(path)}, env, home + "/" + out);
        int status = 0;
        waitpid(child, &status, 0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    };
    assert_true(run_curl("first"));
    assert_int_equal(origin_count(path), 1);
    // Forget the SQLite tier: only Redis has the entry now.
    tests::redis::remove_tree(home + "/cache");
    assert_true(run_curl("second"));
    assert_int_equal(origin_count(path), 1);
    // Redis stops answering: SQLite, filled by the second run, answers alone.
    g_redis->pause();
    bool third = run_curl("third");
    g_redis->resume();
    assert_true(third);
    assert_int_equal(origin_count(path), 1);
    std::string first = read_file(home + "/first");
    assert_true(first.starts_with("curlcache test origin"));
    assert_true(read_file(home + "/second") == first);
    assert_true(read_file(home + "/third") == first);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_curls_under_the_shim_share_one_download_through_redis),
        cmocka_unit_test(test_eight_curls_under_the_shim_share_one_download_through_sqlite),
        cmocka_unit_test(test_killed_lock_holder_curl_leaves_the_others_correct_with_sqlite),
        cmocka_unit_test(test_killed_lock_holder_curl_leaves_the_others_correct_with_redis),
        cmocka_unit_test(test_tiered_cache_under_the_shim_fills_sqlite_from_redis),
    };
    return cmocka_run_group_tests_name("coalesce_shim", tests, group_setup, group_teardown);
}
