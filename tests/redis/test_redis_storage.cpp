// The Redis backend against a private redis-server: the storage conformance cases (get,
// put, overwrite, remove, miss, scan, clear, binary and large values, usage, concurrent
// writers), Redis expiry, namespace isolation, locks and fork safety.
#include "backends/redis_storage.h"
#include "tests/redis/fixture.h"

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <csetjmp>
extern "C" {
#include <cmocka.h>
}

#include <algorithm>
#include <atomic>
#include <ctime>
#include <limits>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace curlcache;
using namespace curlcache::backends;
using curlcache::tests::redis::RedisServer;

namespace {

std::string g_scratch;
RedisServer* g_server = nullptr;
int g_counter = 0;

struct Fixture {
    std::string ns;
    std::unique_ptr<Storage> storage;
};

std::unique_ptr<Storage> open_ns(const std::string& ns) {
    auto opened = open_redis(tests::redis::redis_settings(*g_server, ns));
    if (!opened) {
        fail_msg("open_redis: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

int group_setup(void**) {
    g_scratch = tests::redis::make_scratch();
    g_server = new RedisServer(g_scratch);
    return 0;
}

int group_teardown(void**) {
    delete g_server;
    tests::redis::remove_tree(g_scratch);
    return 0;
}

int setup(void** state) {
    auto* fixture = new Fixture;
    fixture->ns = "test" + std::to_string(++g_counter);
    fixture->storage = open_ns(fixture->ns);
    *state = fixture;
    return 0;
}

int teardown(void** state) {
    delete static_cast<Fixture*>(*state);
    return 0;
}

Storage& storage_of(void** state) { return *static_cast<Fixture*>(*state)->storage; }

Metadata meta_for(std::string key, int64_t expires = 0) {
    Metadata meta;
    meta.key = std::move(key);
    meta.method = "GET";
    meta.url = "https://example.com/" + meta.key;
    meta.status = 200;
    meta.created = 1700000000;
    meta.expires = expires;
    return meta;
}

void put_text(Storage& storage, const std::string& key, std::string_view text,
              int64_t expires = 0) {
    std::string_view pieces[] = {text};
    auto stored = storage.put(meta_for(key, expires), pieces);
    if (!stored) {
        fail_msg("put: %s", stored.error().message.c_str());
    }
}

std::optional<std::string> get_text(Storage& storage, const std::string& key) {
    auto got = storage.get(key);
    if (!got) {
        fail_msg("get: %s", got.error().message.c_str());
    }
    if (!*got) {
        return std::nullopt;
    }
    return std::string(***got);
}

void test_put_then_get_returns_the_value(void** state) {
    Storage& storage = storage_of(state);
    put_text(storage, "k1", "hello");
    assert_true(get_text(storage, "k1") == "hello");
    assert_string_equal(std::string(storage.name()).c_str(), "redis");
}

void test_missing_key_is_an_empty_result_not_an_error(void** state) {
    auto got = storage_of(state).get("absent");
    assert_true(got.has_value());
    assert_false(got->has_value());
}

// A miss through open_value is one GETRANGE (an empty reply): an empty value is therefore
// stored as a hash, and still reads back as an empty value, whatever it replaces or is
// replaced by; the counters see it as any other entry.
void test_an_empty_value_reads_back_empty_and_a_missing_key_misses(void** state) {
    Storage& storage = storage_of(state);
    auto missing = storage.open_value("absent", 1024);
    assert_true(missing.has_value());
    assert_false(missing->has_value());
    put_text(storage, "e", "not empty");
    put_text(storage, "e", "");
    assert_true(get_text(storage, "e") == "");
    for (uint64_t whole_limit : {uint64_t{0}, uint64_t{1024}}) {
        auto opened = storage.open_value("e", whole_limit);
        assert_true(opened.has_value() && opened->has_value());
        if ((*opened)->whole) {
            assert_int_equal((*opened)->whole->size(), 0);
        } else {
            assert_int_equal((*opened)->reader->size(), 0);
        }
    }
    auto usage = storage.usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 1);
    assert_int_equal(usage->bytes, 0);
    put_text(storage, "e", "again");
    assert_true(get_text(storage, "e") == "again");
    assert_true(*storage.remove("e"));
    auto gone = storage.open_value("e", 1024);
    assert_true(gone.has_value());
    assert_false(gone->has_value());
}

void test_put_overwrites_and_remove_reports_existence(void** state) {
    Storage& storage = storage_of(state);
    put_text(storage, "k", "one");
    put_text(storage, "k", "two");
    assert_true(get_text(storage, "k") == "two");
    assert_true(*storage.remove("k"));
    assert_false(*storage.remove("k"));
    assert_false(get_text(storage, "k").has_value());
}

void test_pieces_are_stored_back_to_back_binary_safe(void** state) {
    Storage& storage = storage_of(state);
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all += static_cast<char>(i);
    }
    std::string head("\0head\r\n", 7);
    std::string_view pieces[] = {head, all, "", all};
    assert_true(storage.put(meta_for("bin"), pieces).has_value());
    assert_true(get_text(storage, "bin") == head + all + all);
    auto meta = storage.get_metadata("bin");
    assert_true(meta && *meta);
    assert_int_equal((*meta)->size, head.size() + 2 * all.size());
}

void test_large_value_round_trips(void** state) {
    // 100 MiB is about size, not timeouts: on a loaded 2-core machine moving it takes longer
    // than the fixture's 500 ms command timeout, whose failure would also leave a back-off
    // marker (backoff.h) that fails every later test's setup.
    auto settings = tests::redis::redis_settings(*g_server, static_cast<Fixture*>(*state)->ns);
    settings.redis_command_timeout_ms = 60'000;
    auto opened = open_redis(settings);
    assert_true(opened.has_value());
    Storage& storage = **opened;
    std::string body(100u << 20, '\0');
    for (size_t i = 0; i < body.size(); i += 4096) {
        body[i] = static_cast<char>(i / 4096);
    }
    std::string_view pieces[] = {"head", body};
    assert_true(storage.put(meta_for("big"), pieces).has_value());
    auto got = storage.get("big");
    assert_true(got && *got);
    assert_int_equal((**got)->size(), body.size() + 4);
    assert_true(std::string_view(***got).substr(4) == body);
}

void test_scan_lists_metadata_with_sizes_and_can_stop(void** state) {
    Storage& storage = storage_of(state);
    for (int i = 0; i < 1200; ++i) {
        put_text(storage, "key" + std::to_string(i), std::string(static_cast<size_t>(i % 7), 'x'));
    }
    size_t seen = 0;
    uint64_t bytes = 0;
    bool metadata_right = true;
    assert_true(storage
                    .scan([&](const Metadata& meta) {
                        ++seen;
                        bytes += meta.size;
                        int i = std::stoi(meta.key.substr(3));
                        metadata_right = metadata_right && meta.method == "GET" &&
                                         meta.url == "https://example.com/" + meta.key &&
                                         meta.status == 200 && meta.created == 1700000000 &&
                                         meta.size == static_cast<uint64_t>(i % 7);
                        return true;
                    })
                    .has_value());
    assert_int_equal(seen, 1200);
    assert_true(metadata_right);
    auto usage = storage.usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 1200);
    assert_int_equal(usage->bytes, bytes);
    size_t visited = 0;
    assert_true(storage.scan([&](const Metadata&) { return ++visited < 3; }).has_value());
    assert_int_equal(visited, 3);
}

// An expiring entry gets a Redis TTL: redis.keep_stale (7 days by default) after it goes
// stale, so that it can still be revalidated or served stale; counted from when it was
// stored for one stale from the start.
void test_expiry_becomes_a_redis_ttl(void** state) {
    Storage& storage = storage_of(state);
    auto ns = static_cast<Fixture*>(*state)->ns;
    constexpr int64_t k_week = 7 * 86400;
    const int64_t now = static_cast<int64_t>(time(nullptr));
    put_text(storage, "later", "v", now + 3600);
    put_text(storage, "never", "v");
    auto stale = meta_for("stale", 1); // no-cache: stale from the start
    stale.created = now;
    std::string_view pieces[] = {"v"};
    assert_true(storage.put(stale, pieces).has_value());
    auto ttl_of = [&](const std::string& item) {
        std::string reply = g_server->command({"TTL", ns + item});
        assert_true(reply.starts_with("(integer) "));
        return std::stoll(reply.substr(10));
    };
    assert_int_equal(ttl_of(":e:never"), -1);
    const int64_t later = ttl_of(":m:later");
    assert_true(later > k_week + 3500 && later <= k_week + 3600);
    const int64_t kept = ttl_of(":e:stale");
    assert_true(kept > k_week - 100 && kept <= k_week);
    assert_true(get_text(storage, "stale").has_value()); // stale, and there to revalidate
    // Overwriting without expiry removes the TTL.
    put_text(storage, "later", "v");
    assert_int_equal(ttl_of(":e:later"), -1);

    // keep_stale = 0: dropped when it goes stale; "never": no TTL at all.
    config::Settings settings = tests::redis::redis_settings(*g_server, ns + "-0");
    settings.redis_keep_stale = 0;
    auto dropping = open_redis(settings);
    assert_true(dropping.has_value());
    put_text(**dropping, "soon", "v", static_cast<int64_t>(time(nullptr)) + 1);
    assert_true(
        tests::redis::await([&] { return !get_text(**dropping, "soon").has_value(); }, 3000));
    assert_true((*dropping)->put(stale, pieces).has_value());
    assert_false(get_text(**dropping, "stale").has_value());
    // "never", and a keep_stale too large for a Redis time, mean no TTL.
    for (int64_t keep : {int64_t{-1}, std::numeric_limits<int64_t>::max() / 2}) {
        settings = tests::redis::redis_settings(*g_server, ns + "-never");
        settings.redis_keep_stale = keep;
        auto keeping = open_redis(settings);
        assert_true(keeping.has_value());
        put_text(**keeping, "past", "v", now - 10);
        assert_string_equal(g_server->command({"TTL", ns + "-never:e:past"}).c_str(),
                            "(integer) -1");
        assert_true(get_text(**keeping, "past").has_value());
    }
}

void test_namespaces_do_not_see_each_other(void** state) {
    Storage& a = storage_of(state);
    auto ns = static_cast<Fixture*>(*state)->ns;
    // "<ns>:m" is a namespace whose keys look like "<ns>:m:m:<key>": no crosstalk either.
    auto b = open_ns(ns + ":m");
    auto c = open_ns("other" + ns);
    put_text(a, "same", "from a");
    put_text(*b, "same", "from b");
    put_text(*c, "same", "from c");
    assert_true(get_text(a, "same") == "from a");
    assert_true(get_text(*b, "same") == "from b");
    assert_int_equal(a.usage()->entries, 1);
    assert_int_equal(b->usage()->entries, 1);
    assert_true(a.clear().has_value());
    assert_false(get_text(a, "same").has_value());
    assert_true(get_text(*b, "same") == "from b");
    assert_true(get_text(*c, "same") == "from c");
    assert_string_equal(g_server->command({"EXISTS", ns + ":m:m:same"}).c_str(), "(integer) 1");
}

void test_clear_removes_every_entry_in_batches(void** state) {
    Storage& storage = storage_of(state);
    for (int i = 0; i < 1100; ++i) {
        put_text(storage, "c" + std::to_string(i), "v");
    }
    assert_true(storage.clear().has_value());
    assert_int_equal(storage.usage()->entries, 0);
    auto ns = static_cast<Fixture*>(*state)->ns;
    assert_string_equal(g_server->command({"EXISTS", ns + ":e:c5"}).c_str(), "(integer) 0");
}

void test_concurrent_writers_and_readers_see_whole_values(void** state) {
    Storage& storage = storage_of(state);
    std::atomic<int> torn{0}, errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                std::string key = "w" + std::to_string(i % 20);
                std::string value(1000 + static_cast<size_t>(t * 100), static_cast<char>('a' + t));
                std::string_view pieces[] = {value};
                if (!storage.put(meta_for(key), pieces)) {
                    ++errors;
                }
                auto got = storage.get(key);
                if (!got) {
                    ++errors;
                } else if (*got) {
                    const std::string& v = ***got;
                    char c = v.empty() ? '?' : v[0];
                    if (v.size() != 1000 + static_cast<size_t>((c - 'a') * 100) ||
                        v.find_first_not_of(c) != std::string::npos) {
                        ++torn;
                    }
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    assert_int_equal(errors.load(), 0);
    assert_int_equal(torn.load(), 0);
    assert_int_equal(storage.usage()->entries, 20);
}

// purge removes what is past its keep_stale (what Redis would drop by itself), nothing else.
void test_purge_expired_leaves_fresh_entries(void** state) {
    Storage& storage = storage_of(state);
    int64_t now = time(nullptr);
    put_text(storage, "fresh", "v", now + 3600);
    put_text(storage, "past", "v", now - 10); // stale, kept for a week
    auto purged = storage.purge_expired(now);
    assert_true(purged.has_value());
    assert_int_equal(*purged, 0);
    assert_true(get_text(storage, "past").has_value());
    purged = storage.purge_expired(now + 7 * 86400);
    assert_true(purged.has_value());
    assert_int_equal(*purged, 1);
    assert_false(get_text(storage, "past").has_value());
    assert_true(get_text(storage, "fresh").has_value());
}

void test_lock_is_exclusive_until_unlocked_or_expired(void** state) {
    Storage& storage = storage_of(state);
    auto other = open_ns(static_cast<Fixture*>(*state)->ns);
    assert_true(*storage.try_lock("L", 10000));
    assert_false(*other->try_lock("L", 10000));
    // Unlocking what another holder holds does nothing (compare-and-delete).
    assert_true(other->unlock("L").has_value());
    assert_false(*other->try_lock("L", 10000));
    assert_true(storage.unlock("L").has_value());
    assert_true(*other->try_lock("L", 100));
    // A lock left behind expires and is taken over.
    assert_true(tests::redis::await([&] { return *storage.try_lock("L", 10000); }, 3000));
    assert_true(storage.unlock("L").has_value());
}

void test_forked_child_uses_its_own_connection(void** state) {
    Storage& storage = storage_of(state);
    put_text(storage, "before", "parent");
    pid_t child = fork();
    if (child == 0) {
        bool ok = true;
        for (int i = 0; i < 50 && ok; ++i) {
            auto got = storage.get("before");
            ok = got && *got && ***got == "parent";
            std::string_view pieces[] = {"child"};
            ok = ok && storage.put(meta_for("c" + std::to_string(i)), pieces).has_value();
        }
        _exit(ok ? 0 : 1);
    }
    for (int i = 0; i < 50; ++i) {
        assert_true(get_text(storage, "before") == "parent");
    }
    int status = 0;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(get_text(storage, "c49") == "child");
}

void test_max_size_keeps_recently_used_entries_and_clear_resets_it(void** state) {
    auto ns = static_cast<Fixture*>(*state)->ns + "-bounded";
    config::Settings settings = tests::redis::redis_settings(*g_server, ns);
    settings.max_size = 64 * 1024;
    auto opened = open_redis(settings);
    assert_true(opened.has_value());
    Storage& storage = **opened;
    std::string kib(1024, 'k');
    put_text(storage, "hot", kib);
    for (int i = 0; i < 300; ++i) {
        put_text(storage, "cold" + std::to_string(i), kib);
        assert_true(get_text(storage, "hot").has_value()); // used all along: never evicted
    }
    auto usage = storage.usage();
    assert_true(usage.has_value());
    assert_true(usage->bytes <= settings.max_size);
    assert_true(usage->entries >= 50); // evicted down to 90%, not emptied
    assert_int_equal(usage->max_bytes, settings.max_size);
    assert_false(get_text(storage, "cold0").has_value());
    assert_true(get_text(storage, "cold299").has_value());
    std::string huge(128 * 1024, 'h');
    put_text(storage, "huge", huge); // larger than the cache: not stored, nothing evicted
    assert_false(get_text(storage, "huge").has_value());
    assert_true(get_text(storage, "cold299").has_value());
    assert_true(storage.clear().has_value());
    assert_string_equal(g_server->command({"EXISTS", ns + ":lru", ns + ":bytes"}).c_str(),
                        "(integer) 0");
}

// Calls of one Redis command so far ("scan" -> cmdstat_scan's calls).
long long command_calls(const std::string& command) {
    std::string info = g_server->command({"INFO", "commandstats"});
    auto at = info.find("cmdstat_" + command + ":calls=");
    return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + 15 + command.size());
}

// `curlcache stats` on a million entries: usage() reads counters, it never scans (after a
// namespace's one-time recount), and the counters follow puts, overwrites and removes.
void test_usage_reads_counters_without_scanning(void** state) {
    Storage& storage = storage_of(state);
    put_text(storage, "first", "1");
    assert_true(storage.usage().has_value()); // a new namespace: the one-time recount
    long long scans = command_calls("scan");
    for (int i = 0; i < 200; ++i) {
        put_text(storage, "k" + std::to_string(i), std::string(10, 'v'));
    }
    put_text(storage, "k0", std::string(30, 'w'));
    assert_true(storage.remove("k1").value());
    auto usage = storage.usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 200);
    assert_int_equal(usage->bytes, 1 + 198 * 10 + 30);
    assert_int_equal(command_calls("scan"), scans);
}

// A namespace an older version filled has no counters: the first usage() adopts its
// entries; vacuum recounts after entries vanished behind curlcache's back.
void test_counters_are_rebuilt_for_old_namespaces_and_by_vacuum(void** state) {
    auto* fixture = static_cast<Fixture*>(*state);
    Storage& storage = storage_of(state);
    for (int i = 0; i < 30; ++i) {
        put_text(storage, "k" + std::to_string(i), std::string(i + 1, 'v'));
    }
    const std::string& ns = fixture->ns;
    g_server->command({"DEL", ns + ":usage", ns + ":sizes", ns + ":exp", ns + ":lru"});
    auto usage = storage.usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 30);
    assert_int_equal(usage->bytes, 30 * 31 / 2);
    g_server->command({"DEL", ns + ":e:k29", ns + ":m:k29"}); // e.g. a maxmemory policy
    assert_int_equal(storage.usage()->entries, 30);       // the counters cannot know
    assert_true(storage.vacuum().has_value());
    usage = storage.usage();
    assert_int_equal(usage->entries, 29);
    assert_int_equal(usage->bytes, 29 * 30 / 2);
}

void test_keys_with_colons_are_refused(void** state) {
    Storage& storage = storage_of(state);
    std::string_view pieces[] = {"v"};
    assert_false(storage.put(meta_for("a:b"), pieces).has_value());
    auto got = storage.get("a:b");
    assert_true(got && !*got);
}

// A value of `size` bytes whose first bytes name its version (as an entry's checksum does).
std::string versioned_value(char version, size_t size) {
    std::string value(size, '\0');
    for (size_t i = 0; i < size; ++i) {
        value[i] = static_cast<char>((i * 131 + static_cast<size_t>(version)) & 0xff);
    }
    value.replace(0, 40, std::string(40, version));
    return value;
}

std::unique_ptr<Storage> open_patient(void** state) {
    auto settings = tests::redis::redis_settings(*g_server, static_cast<Fixture*>(*state)->ns);
    settings.redis_command_timeout_ms = 60'000; // moves tens of MiB on a loaded machine
    auto opened = open_redis(settings);
    assert_true(opened.has_value());
    return std::move(*opened);
}

// Stores `value` whole (a string) or streamed in (a hash of pieces).
void store(Storage& storage, const std::string& key, std::string_view value, bool streamed) {
    if (!streamed) {
        put_text(storage, key, value);
        return;
    }
    auto stream = storage.begin_put(0);
    assert_true(stream.has_value());
    for (size_t at = 100; at < value.size(); at += 1u << 16) {
        assert_true((*stream)->append(value.substr(at, 1u << 16)).has_value());
    }
    assert_true((*stream)->commit(meta_for(key), value.substr(0, 100)).has_value());
}

// A large value is read in pipelined pieces; one replaced (or removed) while it is read makes
// the read fail once the pieces asked for after the change arrive, and nothing delivered
// before that comes from the new value. Both layouts, replaced by either.
void test_a_value_replaced_mid_read_fails_the_read_and_never_mixes(void** state) {
    auto storage = open_patient(state);
    const size_t size = 40u << 20;
    const std::string first = versioned_value('A', size);
    const std::string second = versioned_value('B', size);
    for (int round = 0; round < 6; ++round) {
        const bool streamed = round % 2 == 1;
        const bool remove_it = round >= 4;
        store(*storage, "big", first, streamed);
        auto opened = storage->open_value("big", 64 * 1024);
        assert_true(opened && *opened && (*opened)->reader);
        ValueReader& reader = *(*opened)->reader;
        assert_int_equal(reader.size(), size);
        std::string chunk(1u << 20, '\0');
        uint64_t at = 0;
        for (; at < (6u << 20); at += chunk.size()) {
            assert_true(reader.read(at, chunk).has_value());
            assert_true(chunk == std::string_view(first).substr(at, chunk.size()));
        }
        if (remove_it) {
            assert_true(*storage->remove("big"));
        } else {
            store(*storage, "big", second, round < 2 ? !streamed : streamed);
        }
        bool failed = false;
        for (; at < size && !failed; at += chunk.size()) {
            std::fill(chunk.begin(), chunk.end(), '\0');
            auto read = reader.read(at, chunk);
            failed = !read.has_value();
            if (!failed) {
                assert_true(chunk == std::string_view(first).substr(at, chunk.size()));
            }
        }
        assert_true(failed);
    }
}

// Pieces read ahead and then skipped (a jump backwards or forwards) are dropped, and reads
// anywhere return the value's bytes.
void test_a_reader_reads_any_range_after_reading_ahead(void** state) {
    auto storage = open_patient(state);
    const std::string value = versioned_value('C', 21u << 20);
    put_text(*storage, "wide", value);
    auto opened = storage->open_value("wide", 4096);
    assert_true(opened && *opened && (*opened)->reader);
    ValueReader& reader = *(*opened)->reader;
    const std::pair<uint64_t, size_t> ranges[] = {{0, 100},        {100, 3u << 20}, {(3u << 20) + 100, 5u << 20},
                                                  {1000, 10},      {20u << 20, 1u << 20},
                                                  {9u << 20, 123}, {(21u << 20) - 1, 1}};
    for (const auto& [offset, length] : ranges) {
        std::string out(length, '\0');
        assert_true(reader.read(offset, out).has_value());
        assert_true(out == std::string_view(value).substr(offset, length));
    }
}

// The namespace's temporary keys (a streamed value's pieces), separated by spaces.
std::string temp_keys(const std::string& ns) {
    return g_server->command(
        {"EVAL", "return table.concat(redis.call('keys', ARGV[1]), ' ')", "0", ns + ":t:*"});
}

// A streamed value is invisible until commit; an abandoned one, or one whose temporary hash
// vanished (expired) before commit, leaves the old value and no temporary keys; a committed
// one (a hash of pieces) leaves no temporary keys and keeps its own expiry (none, or the
// entry's), and reads back whole through get() and in pieces through open_value().
void test_a_streamed_value_appears_whole_at_commit_and_leaves_nothing_behind(void** state) {
    auto storage = open_patient(state);
    const std::string& ns = static_cast<Fixture*>(*state)->ns;
    put_text(*storage, "s", "old");
    const std::string tail = versioned_value('D', (3u << 20) + 5);
    for (int round = 0; round < 3; ++round) {
        auto stream = storage->begin_put(0);
        assert_true(stream.has_value());
        for (size_t at = 0; at < tail.size(); at += 65536) {
            assert_true((*stream)->append(std::string_view(tail).substr(at, 65536)).has_value());
        }
        assert_true(get_text(*storage, "s") == "old");
        assert_string_not_equal(temp_keys(ns).c_str(), "");
        if (round == 1) {
            std::string keys = temp_keys(ns);
            assert_true(keys.starts_with(ns + ":t:") && keys.find(' ') == std::string::npos);
            assert_string_equal(g_server->command({"DEL", keys}).c_str(), "(integer) 1");
            assert_false((*stream)->commit(meta_for("s"), "head").has_value());
        }
        stream->reset();
        assert_true(get_text(*storage, "s") == "old");
        assert_string_equal(temp_keys(ns).c_str(), "");
    }
    const int64_t expires = static_cast<int64_t>(time(nullptr)) + 3600;
    for (int64_t expiry : {int64_t{0}, expires}) {
        auto stream = storage->begin_put(tail.size());
        assert_true(stream.has_value());
        assert_true((*stream)->append(tail).has_value());
        assert_true((*stream)->commit(meta_for("s", expiry), "head").has_value());
        stream->reset();
        assert_true(get_text(*storage, "s") == "head" + tail);
        assert_string_equal(g_server->command({"TYPE", ns + ":e:s"}).c_str(), "hash");
        auto opened = storage->open_value("s", 4096);
        assert_true(opened && *opened && (*opened)->reader);
        std::string out(tail.size() + 4, '\0');
        assert_true((*opened)->reader->read(0, out).has_value());
        assert_true(out == "head" + tail);
        auto whole = storage->open_value("s", 8u << 20);
        assert_true(whole && *whole && (*whole)->whole && *(*whole)->whole == "head" + tail);
        assert_string_equal(temp_keys(ns).c_str(), "");
        // Expiring: kept a week (redis.keep_stale) past the hour it is fresh for.
        std::string ttl = g_server->command({"TTL", ns + ":e:s"});
        const long long left = ttl.starts_with("(integer) ") ? std::stoll(ttl.substr(10)) : -2;
        assert_true(expiry == 0 ? left == -1 : left > 608300 && left <= 608400);
        assert_string_equal(g_server->command({"TTL", ns + ":e:s"}).c_str(),
                            g_server->command({"TTL", ns + ":m:s"}).c_str());
        auto usage = storage->usage();
        assert_true(usage.has_value());
        assert_int_equal(usage->entries, 1);
        assert_int_equal(usage->bytes, 4 + tail.size());
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_then_get_returns_the_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_is_an_empty_result_not_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_empty_value_reads_back_empty_and_a_missing_key_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_overwrites_and_remove_reports_existence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pieces_are_stored_back_to_back_binary_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_value_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_lists_metadata_with_sizes_and_can_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_becomes_a_redis_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_do_not_see_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_removes_every_entry_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_and_readers_see_whole_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_expired_leaves_fresh_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_is_exclusive_until_unlocked_or_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_child_uses_its_own_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_size_keeps_recently_used_entries_and_clear_resets_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_with_colons_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_reads_counters_without_scanning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_are_rebuilt_for_old_namespaces_and_by_vacuum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_value_replaced_mid_read_fails_the_read_and_never_mixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_reader_reads_any_range_after_reading_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_streamed_value_appears_whole_at_commit_and_leaves_nothing_behind, setup, teardown),
    };
    return cmocka_run_group_tests_name("redis_storage", tests, group_setup, group_teardown);
}
