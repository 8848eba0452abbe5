// Request coalescing across processes: 8 forked processes miss the same keys together
// against a slow local origin (scripts/origin.py, /slow/MS); the origin must see each key
// once, with Redis locks and with file locks (one byte-range-locked file). A lock holder killed
// mid-way does not stop the others. coalesce=false lets every process download (the control case).
#include "backends/file_lock.h"
#include "backends/redis_storage.h"
#include "backends/registry.h"
#include "core/cache.h"
#include "core/coalesce.h"
#include "tests/redis/fixture.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include <curl/curl.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace curlcache;
using namespace curlcache::backends;
using curlcache::core::CoalesceOptions;
using curlcache::core::MissLock;
using curlcache::core::MissRole;

namespace {

constexpr int k_processes = 8;
constexpr int k_origin_delay_ms = 300;

std::string g_scratch;
tests::redis::RedisServer* g_redis = nullptr;
tests::redis::Origin* g_origin = nullptr;

size_t append_body(char* data, size_t size, size_t count, void* userp) {
    static_cast<std::string*>(userp)->append(data, size * count);
    return size * count;
}

std::optional<std::string> http_get(const std::string& url) {
    CURL* curl = curl_easy_init();
    std::string body;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    CURLcode result = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    if (result != CURLE_OK) {
        return std::nullopt;
    }
    return body;
}

std::string origin_url(const std::string& key) {
    return g_origin->url("/slow/" + std::to_string(k_origin_delay_ms) + "?k=" + key);
}

// How many times the origin was asked for `key` since the last reset.
int origin_count(const std::string& key) {
    auto log = http_get(g_origin->url("/__log"));
    if (!log) {
        fail_msg("origin log unreadable");
    }
    std::istringstream lines(*log);
    std::string line;
    int count = 0;
    std::string expected = "GET /slow/" + std::to_string(k_origin_delay_ms) + "?k=" + key;
    while (std::getline(lines, line)) {
        count += line == expected ? 1 : 0;
    }
    return count;
}

int group_setup(void**) {
    g_scratch = tests::redis::make_scratch();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_origin = new tests::redis::Origin;
    g_redis = new tests::redis::RedisServer(g_scratch);
    return 0;
}

int group_teardown(void**) {
    delete g_redis;
    delete g_origin;
    curl_global_cleanup();
    tests::redis::remove_tree(g_scratch);
    return 0;
}

using OpenStorage = std::function<std::unique_ptr<Storage>()>;

OpenStorage redis_opener(const std::string& ns) {
    return [ns] {
        auto opened = open_redis(tests::redis::redis_settings(*g_redis, ns));
        return opened ? std::move(*opened) : nullptr;
    };
}

OpenStorage filesystem_opener(const std::string& dir) {
    return [dir]() -> std::unique_ptr<Storage> {
        config::Settings settings;
        settings.name = dir;
        auto opened = backends::open("filesystem", settings);
        if (!opened) {
            return nullptr;
        }
        std::string locks = lock_dir_for(**opened);
        return with_file_locks(std::move(*opened), locks);
    };
}

// What the engine does on a miss, at storage level: look, coalesce, download and store
// when leading (or alone), then release. True when the body is the origin's.
bool fetch_through_cache(Storage& storage, const std::string& key, const CoalesceOptions& options) {
    std::optional<std::string> body;
    auto look = [&] {
        auto got = storage.get(key);
        if (got && *got) {
            body = ***got;
            return true;
        }
        return false;
    };
    if (!look()) {
        MissLock lock;
        MissRole role = core::coalesce(storage, key, options, look, lock);
        if (role != MissRole::served) {
            body = http_get(origin_url(key));
            if (!body) {
                return false;
            }
            Metadata meta;
            meta.key = key;
            meta.method = "GET";
            meta.url = origin_url(key);
            meta.status = 200;
            std::string_view pieces[] = {*body};
            (void)storage.put(meta, pieces);
            lock.release();
        }
    }
    return body && body->find("curlcache test origin") == 0;
}

// Forks `count` processes that start together (released through a pipe) and run `work`;
// returns how many exited successfully.
int run_together(int count, const std::function<bool(int)>& work) {
    int go[2];
    if (pipe(go) != 0) {
        std::abort();
    }
    std::vector<pid_t> children;
    for (int i = 0; i < count; ++i) {
        pid_t child = fork();
        if (child == 0) {
            close(go[1]);
            char byte = 0;
            bool ok = read(go[0], &byte, 1) == 1 && work(i);
            _exit(ok ? 0 : 1);
        }
        children.push_back(child);
    }
    close(go[0]);
    std::string release(static_cast<size_t>(count), 'g');
    (void)!write(go[1], release.data(), release.size());
    close(go[1]);
    int ok = 0;
    for (pid_t child : children) {
        int status = 0;
        waitpid(child, &status, 0);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : 0;
    }
    return ok;
}

void reset_origin() {
    assert_true(http_get(g_origin->url("/__reset")).has_value());
}

void eight_processes_download_each_key_once(const OpenStorage& open, const std::string& tag) {
    reset_origin();
    std::vector<std::string> keys{tag + "a", tag + "b", tag + "c"};
    CoalesceOptions options{true, 10000};
    int ok = run_together(k_processes, [&](int i) {
        auto storage = open();
        if (!storage) {
            return false;
        }
        bool all = true;
        for (size_t k = 0; k < keys.size(); ++k) {
            all = fetch_through_cache(*storage, keys[(k + static_cast<size_t>(i)) % keys.size()],
                                      options) &&
                  all;
        }
        return all;
    });
    assert_int_equal(ok, k_processes);
    for (const auto& key : keys) {
        assert_int_equal(origin_count(key), 1);
    }
}

void test_redis_locks_let_one_of_eight_processes_download(void**) {
    eight_processes_download_each_key_once(redis_opener("co1"), "redis");
}

void test_file_locks_let_one_of_eight_processes_download(void**) {
    eight_processes_download_each_key_once(filesystem_opener(g_scratch + "/fs-cache"), "files");
}

void test_without_coalescing_every_process_downloads(void**) {
    reset_origin();
    CoalesceOptions off{false, 10000};
    int ok = run_together(k_processes, [&](int) {
        auto storage = redis_opener("co-off")();
        return storage && fetch_through_cache(*storage, "off", off);
    });
    assert_int_equal(ok, k_processes);
    assert_int_equal(origin_count("off"), k_processes);
}

// One process takes the lead and dies before storing; the others still finish.
void killed_holder_is_taken_over(const OpenStorage& open, const std::string& key,
                                 int64_t lock_timeout_ms, bool exactly_once) {
    reset_origin();
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t holder = fork();
    if (holder == 0) {
        auto storage = open();
        MissLock lock;
        CoalesceOptions options{true, lock_timeout_ms};
        bool lead =
            storage && core::coalesce(
                           *storage, key, options, [] { return false; }, lock) == MissRole::lead;
        char byte = lead ? 'y' : 'n';
        (void)!write(ready[1], &byte, 1);
        pause(); // "downloading" until killed
        _exit(0);
    }
    char byte = 0;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(byte, 'y');
    std::thread killer([&] {
        // Let the others start waiting on the held lock, then kill the holder.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        kill(holder, SIGKILL);
    });
    CoalesceOptions options{true, lock_timeout_ms};
    int ok = run_together(k_processes - 1, [&](int) {
        auto storage = open();
        return storage && fetch_through_cache(*storage, key, options);
    });
    killer.join();
    waitpid(holder, nullptr, 0);
    close(ready[0]);
    close(ready[1]);
    assert_int_equal(ok, k_processes - 1);
    int count = origin_count(key);
    assert_true(count >= 1);
    if (exactly_once) {
        assert_int_equal(count, 1);
    }
}

void test_killed_lock_holder_file_lock_is_taken_over_at_once(void**) {
    killed_holder_is_taken_over(filesystem_opener(g_scratch + "/fs-kill"), "fkill", 10000, true);
}

void test_killed_lock_holder_redis_lock_expires_and_others_finish(void**) {
    killed_holder_is_taken_over(redis_opener("co-kill"), "rkill", 1500, false);
}

// The engine's entry point: coalesce_miss waits for an entry stored through the Cache and
// returns it decoded.
void test_coalesce_miss_serves_the_entry_another_holder_stores(void**) {
    config::Settings settings = tests::redis::redis_settings(*g_redis, "co-cache");
    settings.lock_timeout_ms = 5000;
    auto storage = open_redis(settings);
    assert_true(storage.has_value());
    auto cache = core::Cache::with_storage(settings, std::move(*storage));
    auto other = open_redis(settings);
    assert_true(other.has_value());

    core::Request request;
    request.url = "http://127.0.0.1/coalesced";
    core::Key key = cache->key(request);
    assert_true(*(*other)->try_lock(key.hex(), 5000)); // another process is downloading

    std::thread downloader([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(150)); // the download
        core::Entry entry;
        entry.method = "GET";
        entry.url = request.url;
        entry.status = 200;
        // Fresh by the origin's word: a waiter serves only a fresh entry.
        entry.header_blocks = {
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\r\n"};
        entry.body = "hello";
        (void)cache->store(key, entry);
        (void)(*other)->unlock(key.hex());
    });
    auto coalesced = core::coalesce_miss(*cache, key);
    downloader.join();
    assert_int_equal(static_cast<int>(coalesced.role), static_cast<int>(MissRole::served));
    assert_true(coalesced.entry.has_value());
    assert_true(coalesced.entry->body == "hello");
    assert_false(coalesced.lock.held());

    // With nobody holding the lock, the caller leads, and the lock is really held.
    core::Request second;
    second.url = "http://127.0.0.1/lead";
    core::Key lead_key = cache->key(second);
    auto lead = core::coalesce_miss(*cache, lead_key);
    assert_int_equal(static_cast<int>(lead.role), static_cast<int>(MissRole::lead));
    assert_true(lead.lock.held());
    assert_false(*(*other)->try_lock(lead_key.hex(), 1000));
    lead.lock.release();
    assert_true(*(*other)->try_lock(lead_key.hex(), 1000));
}

// A thread that holds the lock (a multi handle it drives) and misses the same key again
// (a second handle for the same URL) must not wait for itself; another thread does wait.
void test_lock_holder_thread_does_not_wait_for_itself(void**) {
    auto storage = redis_opener("co-self")();
    assert_non_null(storage.get());
    CoalesceOptions options{true, 5000};
    MissLock first;
    assert_int_equal(static_cast<int>(core::coalesce(
                         *storage, "self", options, [] { return false; }, first)),
                     static_cast<int>(MissRole::lead));
    int64_t start = tests::redis::now_ms();
    MissLock second;
    assert_int_equal(static_cast<int>(core::coalesce(
                         *storage, "self", options, [] { return false; }, second)),
                     static_cast<int>(MissRole::alone));
    assert_true(tests::redis::now_ms() - start < 1000);
    assert_false(second.held());

    std::atomic<bool> stored{false};
    MissRole other_role = MissRole::alone;
    std::thread other([&] {
        MissLock lock;
        other_role = core::coalesce(
            *storage, "self", options, [&] { return stored.load(); }, lock);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // the download
    stored = true;
    first.release();
    other.join();
    assert_int_equal(static_cast<int>(other_role), static_cast<int>(MissRole::served));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_locks_let_one_of_eight_processes_download),
        cmocka_unit_test(test_file_locks_let_one_of_eight_processes_download),
        cmocka_unit_test(test_without_coalescing_every_process_downloads),
        cmocka_unit_test(test_killed_lock_holder_file_lock_is_taken_over_at_once),
        cmocka_unit_test(test_killed_lock_holder_redis_lock_expires_and_others_finish),
        cmocka_unit_test(test_coalesce_miss_serves_the_entry_another_holder_stores),
        cmocka_unit_test(test_lock_holder_thread_does_not_wait_for_itself),
    };
    return cmocka_run_group_tests_name("coalesce", tests, group_setup, group_teardown);
}
