// The storage conformance group (see conformance.h).
#include "backends/registry.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "tests/backends/conformance.h" // last: cmocka's macros

extern char** environ;

namespace curlcache::tests {

namespace {

using backends::Blob;
using backends::Metadata;
using backends::Storage;

using Fixture = StorageFixture;

std::unique_ptr<Storage> open_or_fail(const std::string& name, const config::Settings& settings) {
    auto opened = backends::open(name, settings);
    if (!opened) {
        fail_msg("cannot open %s: %s", name.c_str(), opened.error().message.c_str());
    }
    return std::move(*opened);
}

Fixture& fixture_of(void** state) {
    return storage_fixture(state);
}

// Reopens the fixture's storage with a size limit (same cache location).
Storage& reopen_with_max_size(Fixture& fixture, uint64_t max_size) {
    fixture.storage.reset();
    fixture.settings.max_size = max_size;
    fixture.storage = open_or_fail(fixture.backend->backend, fixture.settings);
    return *fixture.storage;
}

void put_or_fail(Storage& storage, const Metadata& meta,
                 std::initializer_list<std::string_view> pieces) {
    std::vector<std::string_view> parts(pieces);
    auto done = storage.put(meta, parts);
    if (!done) {
        fail_msg("put %s: %s", meta.key.c_str(), done.error().message.c_str());
    }
}

std::optional<std::string> get_or_fail(Storage& storage, std::string_view key) {
    auto got = storage.get(key);
    if (!got) {
        fail_msg("get: %s", got.error().message.c_str());
    }
    if (!*got) {
        return std::nullopt;
    }
    assert_non_null(got->value().get());
    return *got->value();
}

void kill_writer(pid_t pid);

backends::Usage usage_or_fail(Storage& storage) {
    auto usage = storage.usage();
    if (!usage) {
        fail_msg("usage: %s", usage.error().message.c_str());
    }
    return *usage;
}

void test_put_then_get_returns_the_same_bytes(void** state) {
    auto& storage = *fixture_of(state).storage;
    put_or_fail(storage, test_meta(test_key(1)), {"hello, ", "world"});
    auto value = get_or_fail(storage, test_key(1));
    assert_true(value.has_value());
    assert_string_equal(value->c_str(), "hello, world");
}

void test_put_overwrites_the_previous_value(void** state) {
    auto& storage = *fixture_of(state).storage;
    put_or_fail(storage, test_meta(test_key(2)), {"one"});
    put_or_fail(storage, test_meta(test_key(2)), {"two, longer"});
    auto value = get_or_fail(storage, test_key(2));
    assert_true(value.has_value());
    assert_string_equal(value->c_str(), "two, longer");
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 1);
    assert_int_equal(usage.bytes, 11);
}

void test_remove_deletes_and_tells_whether_the_entry_existed(void** state) {
    auto& storage = *fixture_of(state).storage;
    put_or_fail(storage, test_meta(test_key(3)), {"gone soon"});
    auto removed = storage.remove(test_key(3));
    assert_true(removed.has_value());
    assert_true(*removed);
    assert_false(get_or_fail(storage, test_key(3)).has_value());
    removed = storage.remove(test_key(3));
    assert_true(removed.has_value());
    assert_false(*removed);
}

void test_get_of_an_unknown_key_is_a_miss_not_an_error(void** state) {
    auto& storage = *fixture_of(state).storage;
    auto got = storage.get(test_key(4));
    assert_true(got.has_value());
    assert_false(got->has_value());
}

void test_scan_lists_every_entry_with_its_metadata_and_size(void** state) {
    auto& storage = *fixture_of(state).storage;
    std::map<std::string, Metadata> expected;
    for (uint64_t i = 0; i < 300; ++i) { // more than one sqlite scan page
        Metadata meta = test_meta(test_key(100 + i), i % 3 == 0 ? 2000000000 + i : 0);
        meta.method = i % 2 ? "HEAD" : "GET";
        meta.status = 200 + static_cast<long>(i % 7);
        meta.created = 1700000000 + static_cast<int64_t>(i);
        meta.size = i * 3;
        std::string value(meta.size, 'v');
        put_or_fail(storage, meta, {value});
        expected[meta.key] = meta;
    }
    std::map<std::string, Metadata> seen;
    auto scanned = storage.scan([&](const Metadata& meta) {
        seen[meta.key] = meta;
        return true;
    });
    assert_true(scanned.has_value());
    assert_int_equal(seen.size(), expected.size());
    for (const auto& [key, want] : expected) {
        auto found = seen.find(key);
        assert_true(found != seen.end());
        const Metadata& got = found->second;
        assert_string_equal(got.method.c_str(), want.method.c_str());
        assert_string_equal(got.url.c_str(), want.url.c_str());
        assert_int_equal(got.status, want.status);
        assert_int_equal(got.created, want.created);
        assert_int_equal(got.expires, want.expires);
        assert_int_equal(got.size, want.size);
    }
    int visits = 0;
    scanned = storage.scan([&](const Metadata&) { return ++visits < 2; });
    assert_true(scanned.has_value());
    assert_int_equal(visits, 2);
}

void test_get_metadata_describes_an_entry_without_its_value(void** state) {
    auto& storage = *fixture_of(state).storage;
    Metadata meta = test_meta(test_key(40), 2000000000);
    meta.method = "HEAD";
    meta.status = 203;
    meta.created = 1700000123;
    put_or_fail(storage, meta, {"12345", "678"});
    auto got = storage.get_metadata(meta.key);
    assert_true(got.has_value());
    assert_true(got->has_value());
    const Metadata& found = **got;
    assert_string_equal(found.key.c_str(), meta.key.c_str());
    assert_string_equal(found.method.c_str(), "HEAD");
    assert_string_equal(found.url.c_str(), meta.url.c_str());
    assert_int_equal(found.status, 203);
    assert_int_equal(found.created, 1700000123);
    assert_int_equal(found.expires, 2000000000);
    assert_int_equal(found.size, 8);
    auto missing = storage.get_metadata(test_key(41));
    assert_true(missing.has_value());
    assert_false(missing->has_value());
}

void test_clear_removes_every_entry(void** state) {
    auto& storage = *fixture_of(state).storage;
    for (uint64_t i = 0; i < 20; ++i) {
        put_or_fail(storage, test_meta(test_key(i)), {"some bytes"});
    }
    assert_true(storage.clear().has_value());
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 0);
    assert_int_equal(usage.bytes, 0);
    for (uint64_t i = 0; i < 20; ++i) {
        assert_false(get_or_fail(storage, test_key(i)).has_value());
    }
    put_or_fail(storage, test_meta(test_key(1)), {"after clear"});
    assert_true(get_or_fail(storage, test_key(1)).has_value());
}

void test_binary_values_round_trip_unchanged(void** state) {
    auto& storage = *fixture_of(state).storage;
    std::string bytes;
    for (int round = 0; round < 4; ++round) {
        for (int c = 0; c < 256; ++c) {
            bytes += static_cast<char>(c);
        }
        bytes.append(3, '\0');
    }
    std::string_view all(bytes);
    put_or_fail(storage, test_meta(test_key(5)),
                {all.substr(0, 1), "", all.substr(1, 700), all.substr(701)});
    auto value = get_or_fail(storage, test_key(5));
    assert_true(value.has_value());
    assert_int_equal(value->size(), bytes.size());
    assert_memory_equal(value->data(), bytes.data(), bytes.size());

    put_or_fail(storage, test_meta(test_key(6)), {});
    value = get_or_fail(storage, test_key(6));
    assert_true(value.has_value());
    assert_int_equal(value->size(), 0);
}

void test_a_100_mib_value_round_trips(void** state) {
    auto& storage = *fixture_of(state).storage;
    std::string big = make_value(test_key(7), 7, 100u << 20);
    std::string_view view(big);
    put_or_fail(storage, test_meta(test_key(7)), {view.substr(0, 1000), view.substr(1000)});
    auto got = storage.get(test_key(7));
    assert_true(got.has_value());
    assert_true(got->has_value());
    const std::string& value = *got->value();
    assert_int_equal(value.size(), big.size());
    assert_true(value == big);
    assert_true(value_is_intact(test_key(7), value));
}

void test_purge_expired_removes_only_entries_past_their_expiry(void** state) {
    auto& storage = *fixture_of(state).storage;
    put_or_fail(storage, test_meta(test_key(10), 0), {"never expires"});
    put_or_fail(storage, test_meta(test_key(11), 500), {"expired"});
    put_or_fail(storage, test_meta(test_key(12), 1000), {"expires now"});
    put_or_fail(storage, test_meta(test_key(13), 1001), {"still fresh"});
    auto purged = storage.purge_expired(1000);
    assert_true(purged.has_value());
    assert_int_equal(*purged, 2);
    assert_true(get_or_fail(storage, test_key(10)).has_value());
    assert_false(get_or_fail(storage, test_key(11)).has_value());
    assert_false(get_or_fail(storage, test_key(12)).has_value());
    assert_true(get_or_fail(storage, test_key(13)).has_value());
}

// The batch put of `curlcache export`: small values and a large one (a body file in SQLite),
// one of them replacing a stored value, each read back as put() would have stored it.
void test_put_many_stores_each_value_as_put_does(void** state) {
    auto& storage = *fixture_of(state).storage;
    put_or_fail(storage, test_meta(test_key(30)), {"old"});
    const std::string large(300 * 1024, 'L');
    const Metadata metas[] = {test_meta(test_key(30)), test_meta(test_key(31)),
                              test_meta(test_key(32)), test_meta(test_key(33))};
    const Storage::PutItem items[] = {
        {&metas[0], "replaced"}, {&metas[1], "one"}, {&metas[2], large}, {&metas[3], "three"}};
    auto done = storage.put_many(items);
    if (!done) {
        fail_msg("put_many: %s", done.error().message.c_str());
    }
    for (const auto& item : items) {
        auto got = get_or_fail(storage, item.meta->key);
        assert_true(got.has_value());
        assert_true(*got == item.value);
    }
}

void test_max_size_evicts_least_recently_used_entries_first(void** state) {
    auto& fixture = fixture_of(state);
    auto& storage = reopen_with_max_size(fixture, 4096);
    std::string kib(1024, 'k');
    put_or_fail(storage, test_meta(test_key(20)), {kib});        // A
    put_or_fail(storage, test_meta(test_key(21)), {kib});        // B
    put_or_fail(storage, test_meta(test_key(22)), {kib});        // C
    assert_true(get_or_fail(storage, test_key(20)).has_value()); // A is now newer than B, C
    put_or_fail(storage, test_meta(test_key(23)), {kib});        // D: exactly full
    put_or_fail(storage, test_meta(test_key(24)), {kib});        // E: over, B goes first

    assert_true(get_or_fail(storage, test_key(20)).has_value());
    assert_false(get_or_fail(storage, test_key(21)).has_value());
    assert_true(get_or_fail(storage, test_key(23)).has_value());
    assert_true(get_or_fail(storage, test_key(24)).has_value());
    auto usage = usage_or_fail(storage);
    assert_true(usage.bytes <= 4096);
    assert_int_equal(usage.max_bytes, 4096);

    // A value larger than the whole cache is not stored and evicts nothing.
    std::string huge(8192, 'h');
    put_or_fail(storage, test_meta(test_key(25)), {huge});
    assert_false(get_or_fail(storage, test_key(25)).has_value());
    assert_true(get_or_fail(storage, test_key(24)).has_value());
}

void test_usage_counts_entries_and_value_bytes(void** state) {
    auto& storage = *fixture_of(state).storage;
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 0);
    assert_int_equal(usage.bytes, 0);
    put_or_fail(storage, test_meta(test_key(30)), {std::string(10, 'a')});
    put_or_fail(storage, test_meta(test_key(31)), {std::string(20, 'b')});
    put_or_fail(storage, test_meta(test_key(32)), {std::string(30, 'c'), "", std::string(5, 'd')});
    usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 3);
    assert_int_equal(usage.bytes, 65);
    assert_true(storage.remove(test_key(31)).has_value());
    usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 2);
    assert_int_equal(usage.bytes, 45);
}

// What usage() should say: a full recount through scan().
backends::Usage recount_or_fail(Storage& storage) {
    backends::Usage counted;
    auto scanned = storage.scan([&](const Metadata& meta) {
        ++counted.entries;
        counted.bytes += meta.size;
        return true;
    });
    if (!scanned) {
        fail_msg("scan: %s", scanned.error().message.c_str());
    }
    return counted;
}

void assert_usage_equals_recount(Storage& storage, const char* when) {
    auto usage = usage_or_fail(storage);
    auto counted = recount_or_fail(storage);
    if (usage.entries != counted.entries || usage.bytes != counted.bytes) {
        fail_msg("after %s: usage says %llu entries, %llu bytes; a recount finds %llu, %llu", when,
                 static_cast<unsigned long long>(usage.entries),
                 static_cast<unsigned long long>(usage.bytes),
                 static_cast<unsigned long long>(counted.entries),
                 static_cast<unsigned long long>(counted.bytes));
    }
}

// After a writer was killed, a write it had sent may still be applied by a server (a plugin's
// database) a moment later: polls until usage and a recount agree and hold still (2 s at
// most), then requires them equal.
void assert_usage_settles_to_recount(Storage& storage, const char* when) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto before = usage_or_fail(storage);
        auto counted = recount_or_fail(storage);
        auto after = usage_or_fail(storage);
        if (before.entries == counted.entries && before.bytes == counted.bytes &&
            after.entries == counted.entries && after.bytes == counted.bytes) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    assert_usage_equals_recount(storage, when);
}

// usage() reads counters where a backend keeps them (so that `curlcache stats` never scans
// a million entries): they must match a full recount after every kind of change - new
// keys, overwrites with other sizes, removes, streamed values and abandoned streams,
// evictions under max_size, purges, and a writer process SIGKILLed between puts.
void test_usage_stays_equal_to_a_recount_after_random_changes(void** state) {
    auto& fixture = fixture_of(state);
    auto& storage = reopen_with_max_size(fixture, 48 * 1024);
    uint64_t seed = 12345;
    auto next = [&](uint64_t bound) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return (seed >> 33) % bound;
    };
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 60; ++i) {
            uint64_t n = next(40);
            std::string value(1 + next(3000), static_cast<char>('a' + n % 26));
            switch (next(6)) {
            case 0:
                assert_true(storage.remove(test_key(n)).has_value());
                break;
            case 1: { // streamed, committed or abandoned
                auto stream = storage.begin_put(0);
                assert_true(stream.has_value());
                assert_true((*stream)->append(value).has_value());
                if (next(2) == 0) {
                    assert_true((*stream)->commit(test_meta(test_key(n)), "head").has_value());
                }
                break;
            }
            case 2: // already expired: gone by the next purge
                put_or_fail(storage, test_meta(test_key(n), now - 10), {value});
                break;
            default:
                put_or_fail(storage, test_meta(test_key(n), next(2) ? 0 : now + 3600), {value});
            }
            (void)get_or_fail(storage, test_key(next(40))); // a use, for LRU
        }
        assert_usage_equals_recount(storage, "random puts, removes and evictions");
        assert_true(usage_or_fail(storage).bytes <= 48 * 1024);
        assert_true(storage.purge_expired(now).has_value());
        assert_usage_equals_recount(storage, "a purge");
    }

    // A writer killed at some point of its puts leaves the counters exact (or repaired).
    int ready[2];
    assert_int_equal(::pipe(ready), 0);
    pid_t child = ::fork();
    assert_true(child >= 0);
    if (child == 0) {
        ::close(ready[0]);
        auto opened = backends::open(fixture.backend->backend, fixture.settings);
        if (!opened) {
            ::_exit(3);
        }
        for (uint64_t n = 0;; ++n) {
            std::string value(100 + n % 2000, 'w');
            std::string_view piece(value);
            (void)(*opened)->put(test_meta(test_key(100 + n % 50)), std::span(&piece, 1));
            if (n == 20 && ::write(ready[1], "1", 1) != 1) {
                ::_exit(1);
            }
        }
    }
    ::close(ready[1]);
    char byte = 0;
    assert_int_equal(::read(ready[0], &byte, 1), 1);
    ::close(ready[0]);
    kill_writer(child);
    assert_usage_settles_to_recount(storage, "a writer was killed between puts");
    assert_true(storage.clear().has_value());
    assert_usage_equals_recount(storage, "clear");
}

void test_eight_concurrent_writers_never_tear_a_value(void** state) {
    auto& storage = *fixture_of(state).storage;
    constexpr int k_threads = 8;
    constexpr int k_ops = 300;
    constexpr uint64_t k_pool = 32;
    std::atomic<int> errors{0};
    std::atomic<int> torn{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < k_ops; ++i) {
                std::string key = test_key((static_cast<uint64_t>(i) * 7 + t) % k_pool);
                if (i % 3 != 2) {
                    // Mostly small values; every 50th crosses the sqlite streaming threshold.
                    size_t size = i % 50 == 0 ? 300 * 1024 : static_cast<size_t>(i * 37 % 8000);
                    std::string value =
                        make_value(key, static_cast<uint64_t>(t * 100000 + i), size);
                    std::string_view piece(value);
                    if (!storage.put(test_meta(key), std::span(&piece, 1))) {
                        ++errors;
                    }
                } else {
                    auto got = storage.get(key);
                    if (!got) {
                        ++errors;
                    } else if (*got && !value_is_intact(key, *got->value())) {
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
    for (uint64_t k = 0; k < k_pool; ++k) {
        auto value = get_or_fail(storage, test_key(k));
        assert_true(value.has_value());
        assert_true(value_is_intact(test_key(k), *value));
    }
}

// Streams `tail` in through begin_put(hint) in appends of `chunk` bytes, then commits with
// `head`; the stored value must be head + tail.
std::unique_ptr<backends::PutStream> begin_or_fail(Storage& storage, uint64_t hint) {
    auto stream = storage.begin_put(hint);
    if (!stream) {
        fail_msg("begin_put: %s", stream.error().message.c_str());
    }
    assert_non_null(stream->get());
    return std::move(*stream);
}

void append_or_fail(backends::PutStream& stream, std::string_view bytes, size_t chunk) {
    for (size_t at = 0; at < bytes.size(); at += chunk) {
        auto added = stream.append(bytes.substr(at, chunk));
        if (!added) {
            fail_msg("append: %s", added.error().message.c_str());
        }
    }
}

void stream_or_fail(Storage& storage, const Metadata& meta, std::string_view head,
                    std::string_view tail, uint64_t hint, size_t chunk) {
    auto stream = begin_or_fail(storage, hint);
    append_or_fail(*stream, tail, chunk);
    auto committed = stream->commit(meta, head);
    if (!committed) {
        fail_msg("commit %s: %s", meta.key.c_str(), committed.error().message.c_str());
    }
}

void check_streamed(Storage& storage, uint64_t n, size_t tail_size, bool with_hint,
                    size_t chunk) {
    std::string key = test_key(n);
    std::string value = make_value(key, n, tail_size);
    // The head is the value's first 100 bytes (its hash and key), the tail the rest.
    std::string_view view(value);
    std::string_view head = view.substr(0, 100), tail = view.substr(100);
    stream_or_fail(storage, test_meta(key), head, tail, with_hint ? tail.size() : 0, chunk);
    auto got = get_or_fail(storage, key);
    assert_true(got.has_value());
    assert_int_equal(got->size(), value.size());
    assert_true(*got == value);
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.bytes, value.size());
}

void test_a_small_streamed_value_reads_back_whole(void** state) {
    check_streamed(*fixture_of(state).storage, 50, 1000, true, 1000);
}

void test_a_large_streamed_value_with_a_size_hint_reads_back_whole(void** state) {
    check_streamed(*fixture_of(state).storage, 51, 3u << 20, true, 16384);
}

void test_a_large_streamed_value_without_a_size_hint_reads_back_whole(void** state) {
    check_streamed(*fixture_of(state).storage, 52, 3u << 20, false, 16384);
}

void test_a_value_streamed_in_many_small_appends_reads_back_whole(void** state) {
    check_streamed(*fixture_of(state).storage, 53, 700 * 1024 + 17, false, 997);
}

void test_a_stream_destroyed_before_commit_stores_nothing(void** state) {
    auto& storage = *fixture_of(state).storage;
    for (uint64_t hint : {uint64_t{0}, uint64_t{4} << 20}) {
        auto stream = begin_or_fail(storage, hint);
        append_or_fail(*stream, std::string(4u << 20, 'x'), 65536);
        stream.reset();
    }
    assert_false(get_or_fail(storage, test_key(54)).has_value());
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 0);
    assert_int_equal(usage.bytes, 0);
}

void test_two_streams_of_one_key_leave_one_whole_value_in_either_order(void** state) {
    auto& storage = *fixture_of(state).storage;
    for (int order = 0; order < 2; ++order) {
        std::string key = test_key(55 + static_cast<uint64_t>(order));
        std::string first = make_value(key, 1, 2u << 20);
        std::string second = make_value(key, 2, 300 * 1024);
        auto a = begin_or_fail(storage, first.size() - 100);
        auto b = begin_or_fail(storage, 0);
        // Interleaved appends, as two downloads of one URL would do.
        for (size_t at = 100; at < first.size() || at < second.size(); at += 50000) {
            if (at < first.size()) {
                append_or_fail(*a, std::string_view(first).substr(at, 50000), 50000);
            }
            if (at < second.size()) {
                append_or_fail(*b, std::string_view(second).substr(at, 50000), 50000);
            }
        }
        auto& early = order == 0 ? a : b;
        auto& late = order == 0 ? b : a;
        const std::string& late_value = order == 0 ? second : first;
        const std::string& early_value = order == 0 ? first : second;
        assert_true(early->commit(test_meta(key), std::string_view(early_value).substr(0, 100))
                        .has_value());
        assert_true(late->commit(test_meta(key), std::string_view(late_value).substr(0, 100))
                        .has_value());
        auto got = get_or_fail(storage, key);
        assert_true(got.has_value());
        assert_true(*got == late_value);
    }
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 2);
}

void test_get_after_replacing_a_streamed_value_reads_the_new_one(void** state) {
    auto& storage = *fixture_of(state).storage;
    std::string key = test_key(57);
    std::string large = make_value(key, 3, 2u << 20);
    stream_or_fail(storage, test_meta(key), std::string_view(large).substr(0, 100),
                   std::string_view(large).substr(100), large.size(), 65536);
    assert_true(*get_or_fail(storage, key) == large);
    std::string small = make_value(key, 4, 500);
    stream_or_fail(storage, test_meta(key), std::string_view(small).substr(0, 100),
                   std::string_view(small).substr(100), 0, 4096);
    assert_true(*get_or_fail(storage, key) == small);
    std::string again = make_value(key, 5, 1u << 20);
    put_or_fail(storage, test_meta(key), {std::string_view(again).substr(0, 100),
                                          std::string_view(again).substr(100)});
    assert_true(*get_or_fail(storage, key) == again);
    auto usage = usage_or_fail(storage);
    assert_int_equal(usage.entries, 1);
    assert_int_equal(usage.bytes, again.size());
}

// Backends that keep values outside the process stream large ones (open_value gives a
// reader), and so do the plugins here (ABI 1.1: postgres, dynamodb, mongodb, gridfs,
// examples/backend); the others may hand the value whole.
bool must_stream(const Fixture& fixture) {
    const std::string& name = fixture.backend->backend;
    return name == "sqlite" || name == "filesystem" || name == "redis" || name == "postgres" ||
           name == "dynamodb" || name == "mongodb" || name == "gridfs" || name.starts_with("plugin:");
}

std::string read_or_fail(backends::ValueReader& reader, uint64_t offset, size_t length) {
    std::string out(length, '\0');
    auto read = reader.read(offset, out);
    if (!read) {
        fail_msg("read %llu+%zu: %s", static_cast<unsigned long long>(offset), length,
                 read.error().message.c_str());
    }
    return out;
}

backends::StoredValue open_or_fail_value(Storage& storage, std::string_view key,
                                         uint64_t whole_limit) {
    auto opened = storage.open_value(key, whole_limit);
    if (!opened) {
        fail_msg("open_value: %s", opened.error().message.c_str());
    }
    assert_true(opened->has_value());
    return std::move(**opened);
}

void test_open_value_reads_small_values_whole_and_large_ones_in_any_range(void** state) {
    Fixture& fixture = fixture_of(state);
    Storage& storage = *fixture.storage;
    std::string small_key = test_key(58), large_key = test_key(59);
    std::string small = make_value(small_key, 6, 1000);
    std::string large = make_value(large_key, 7, 3u << 20);
    put_or_fail(storage, test_meta(small_key), {small});
    put_or_fail(storage, test_meta(large_key), {std::string_view(large).substr(0, 300),
                                                std::string_view(large).substr(300)});
    backends::StoredValue whole = open_or_fail_value(storage, small_key, 64 * 1024);
    assert_non_null(whole.whole.get()); // one read for a small value
    assert_true(*whole.whole == small);
    backends::StoredValue big = open_or_fail_value(storage, large_key, 64 * 1024);
    if (must_stream(fixture)) {
        assert_null(big.whole.get());
    }
    if (big.whole) {
        assert_true(*big.whole == large);
        return;
    }
    assert_non_null(big.reader.get());
    assert_int_equal(big.reader->size(), large.size());
    const std::pair<uint64_t, size_t> ranges[] = {
        {0, 28}, {0, 300}, {290, 20}, {1u << 20, 1u << 20}, {large.size() - 5, 5}, {12345, 0}};
    for (const auto& [offset, length] : ranges) {
        assert_true(read_or_fail(*big.reader, offset, length) == large.substr(offset, length));
    }
    std::string past(10, '\0');
    assert_false(big.reader->read(large.size() - 5, past).has_value());
    auto missing = storage.open_value(test_key(60), 64 * 1024);
    assert_true(missing.has_value());
    assert_false(missing->has_value());
}

// A reader sees the value it opened, or fails: never bytes of a value that replaced it.
void test_a_reader_never_mixes_the_value_it_opened_with_a_new_one(void** state) {
    Storage& storage = *fixture_of(state).storage;
    std::string key = test_key(61);
    std::string first = make_value(key, 8, 3u << 20);
    std::string second = make_value(key, 9, 3u << 20);
    put_or_fail(storage, test_meta(key), {first});
    backends::StoredValue opened = open_or_fail_value(storage, key, 64 * 1024);
    put_or_fail(storage, test_meta(key), {second});
    if (opened.whole) {
        assert_true(*opened.whole == first);
    } else {
        std::string out(first.size(), '\0');
        auto read = opened.reader->read(0, out);
        assert_true(!read || out == first);
        std::string tail(1u << 20, '\0');
        read = opened.reader->read(2u << 20, tail);
        assert_true(!read || tail == first.substr(2u << 20, 1u << 20));
    }
    opened = open_or_fail_value(storage, key, 64 * 1024);
    assert_true(storage.remove(key).has_value());
    if (opened.reader) {
        std::string out(1u << 20, '\0');
        auto read = opened.reader->read(1u << 20, out);
        assert_true(!read || out == second.substr(1u << 20, 1u << 20));
    }
}

uint64_t fnv1a(std::string_view bytes) {
    uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : bytes) {
        hash = (hash ^ c) * 1099511628211ull;
    }
    return hash;
}

} // namespace

std::vector<CMUnitTest> conformance_tests(const ConformanceBackend& backend) {
    struct Case {
        const char* name;
        CMUnitTestFunction function;
    };
    static const Case k_cases[] = {
        {"test_put_then_get_returns_the_same_bytes", test_put_then_get_returns_the_same_bytes},
        {"test_put_overwrites_the_previous_value", test_put_overwrites_the_previous_value},
        {"test_remove_deletes_and_tells_whether_the_entry_existed",
         test_remove_deletes_and_tells_whether_the_entry_existed},
        {"test_get_of_an_unknown_key_is_a_miss_not_an_error",
         test_get_of_an_unknown_key_is_a_miss_not_an_error},
        {"test_scan_lists_every_entry_with_its_metadata_and_size",
         test_scan_lists_every_entry_with_its_metadata_and_size},
        {"test_get_metadata_describes_an_entry_without_its_value",
         test_get_metadata_describes_an_entry_without_its_value},
        {"test_clear_removes_every_entry", test_clear_removes_every_entry},
        {"test_binary_values_round_trip_unchanged", test_binary_values_round_trip_unchanged},
        {"test_a_100_mib_value_round_trips", test_a_100_mib_value_round_trips},
        {"test_purge_expired_removes_only_entries_past_their_expiry",
         test_purge_expired_removes_only_entries_past_their_expiry},
        {"test_put_many_stores_each_value_as_put_does", test_put_many_stores_each_value_as_put_does},
        {"test_max_size_evicts_least_recently_used_entries_first",
         test_max_size_evicts_least_recently_used_entries_first},
        {"test_usage_counts_entries_and_value_bytes", test_usage_counts_entries_and_value_bytes},
        {"test_usage_stays_equal_to_a_recount_after_random_changes",
         test_usage_stays_equal_to_a_recount_after_random_changes},
        {"test_eight_concurrent_writers_never_tear_a_value",
         test_eight_concurrent_writers_never_tear_a_value},
        {"test_a_small_streamed_value_reads_back_whole",
         test_a_small_streamed_value_reads_back_whole},
        {"test_a_large_streamed_value_with_a_size_hint_reads_back_whole",
         test_a_large_streamed_value_with_a_size_hint_reads_back_whole},
        {"test_a_large_streamed_value_without_a_size_hint_reads_back_whole",
         test_a_large_streamed_value_without_a_size_hint_reads_back_whole},
        {"test_a_value_streamed_in_many_small_appends_reads_back_whole",
         test_a_value_streamed_in_many_small_appends_reads_back_whole},
        {"test_a_stream_destroyed_before_commit_stores_nothing",
         test_a_stream_destroyed_before_commit_stores_nothing},
        {"test_two_streams_of_one_key_leave_one_whole_value_in_either_order",
         test_two_streams_of_one_key_leave_one_whole_value_in_either_order},
        {"test_get_after_replacing_a_streamed_value_reads_the_new_one",
         test_get_after_replacing_a_streamed_value_reads_the_new_one},
        {"test_open_value_reads_small_values_whole_and_large_ones_in_any_range",
         test_open_value_reads_small_values_whole_and_large_ones_in_any_range},
        {"test_a_reader_never_mixes_the_value_it_opened_with_a_new_one",
         test_a_reader_never_mixes_the_value_it_opened_with_a_new_one},
    };
    static std::deque<std::string> names; // cmocka keeps the pointers
    std::vector<CMUnitTest> tests;
    for (const auto& c : k_cases) {
        names.push_back(backend.backend + ": " + c.name);
        tests.push_back(CMUnitTest{names.back().c_str(), c.function, storage_fixture_setup,
                                   storage_fixture_teardown,
                                   const_cast<ConformanceBackend*>(&backend)});
    }
    return tests;
}

int run_conformance(const ConformanceBackend& backend) {
    auto tests = conformance_tests(backend);
    std::string group = backend.backend + " conformance";
    return _cmocka_run_group_tests(group.c_str(), tests.data(), tests.size(), nullptr, nullptr);
}

namespace {

constexpr size_t k_stalled_bytes = 2u << 20;

// A child process that has streamed k_stalled_bytes into the cache and waits to be killed.
pid_t start_stalled_writer(const ConformanceBackend& backend, const config::Settings& settings) {
    int ready[2];
    assert_int_equal(::pipe(ready), 0);
    pid_t pid = ::fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ::close(ready[0]);
        auto opened = backends::open(backend.backend, settings);
        if (!opened) {
            ::_exit(3);
        }
        auto stream = (*opened)->begin_put(0);
        if (!stream || !(*stream)->append(std::string(k_stalled_bytes, 'x'))) {
            ::_exit(1);
        }
        if (::write(ready[1], "1", 1) != 1) {
            ::_exit(1);
        }
        for (;;) {
            ::pause(); // until SIGKILL, mid-body
        }
    }
    ::close(ready[1]);
    char byte = 0;
    ssize_t got = ::read(ready[0], &byte, 1);
    ::close(ready[0]);
    if (got != 1) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        fail_msg("the writer failed before its body was half written (status %d)", status);
    }
    return pid;
}

void kill_writer(pid_t pid) {
    assert_int_equal(::kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(::waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
}

// Sizes of the temp files in `folder`.
std::vector<uint64_t> temp_files_in(const std::string& folder, std::string_view prefix) {
    std::vector<uint64_t> sizes;
    std::error_code missing;
    for (std::filesystem::directory_iterator it(folder, missing), end; !missing && it != end;
         ++it) {
        if (it->is_regular_file() && it->path().filename().string().starts_with(prefix)) {
            sizes.push_back(it->file_size());
        }
    }
    return sizes;
}

} // namespace

void check_dead_writer_leftovers(const ConformanceBackend& backend,
                                 const config::Settings& settings,
                                 const std::string& temp_folder, std::string_view prefix,
                                 const std::string& stamp) {
    config::Settings limited = settings;
    limited.max_size = k_stalled_bytes + k_stalled_bytes / 2; // 3 MiB
    auto storage = open_or_fail(backend.backend, limited);
    pid_t writer = start_stalled_writer(backend, settings);
    auto temps = temp_files_in(temp_folder, prefix);
    assert_int_equal(temps.size(), 1);
    assert_true(temps[0] >= k_stalled_bytes);

    // Alive: kept by purge and vacuum, counted in usage and within max_size.
    assert_true(storage->purge_expired(0).has_value());
    assert_true(storage->vacuum().has_value());
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 1);
    auto usage = storage->usage();
    assert_true(usage.has_value());
    assert_true(usage->bytes >= k_stalled_bytes);
    const size_t entry = 600 * 1024;
    for (uint64_t n = 1; n <= 2; ++n) {
        std::string key = test_key(n);
        std::string value = make_value(key, n, entry);
        std::string_view piece(value);
        assert_true(storage->put(test_meta(key), std::span(&piece, 1)).has_value());
    }
    auto first = storage->get(test_key(1));
    assert_true(first.has_value() && !first->has_value()); // evicted for the live temp file
    auto second = storage->get(test_key(2));
    assert_true(second.has_value() && second->has_value());

    // Dead: still there (nothing waits an hour any more) until purge removes it at once.
    kill_writer(writer);
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 1);
    auto purged = storage->purge_expired(0);
    assert_true(purged.has_value());
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 0);

    // The next dead writers' files go when a process opens the cache, and with usage().
    kill_writer(start_stalled_writer(backend, settings));
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 1);
    if (!stamp.empty()) {
        auto reopened = open_or_fail(backend.backend, settings);
        assert_int_equal(temp_files_in(temp_folder, prefix).size(), 1); // swept a moment ago
        std::filesystem::last_write_time(stamp, std::filesystem::last_write_time(stamp) -
                                                    std::chrono::minutes(2));
    }
    auto reopened = open_or_fail(backend.backend, settings);
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 0);
    kill_writer(start_stalled_writer(backend, settings));
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 1);
    usage = storage->usage();
    assert_true(usage.has_value());
    assert_true(usage->bytes < k_stalled_bytes);
    assert_int_equal(temp_files_in(temp_folder, prefix).size(), 0);
}

void check_many_processes(const ConformanceBackend& backend, const std::string& scratch, int ops) {
    constexpr int k_processes = 4;
    constexpr uint64_t k_pool = 64;
    config::Settings settings = backend.settings(scratch);
    auto unique_key = [](int child, int i) { return test_key(1000000 + child * 10000 + i); };

    std::vector<pid_t> children;
    for (int child = 0; child < k_processes; ++child) {
        pid_t pid = ::fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            // Exit codes: 0 fine, 1 an operation failed, 2 a torn value, 3 cannot open.
            auto opened = backends::open(backend.backend, settings);
            if (!opened) {
                std::fprintf(stderr, "child %d: %s\n", child, opened.error().message.c_str());
                ::_exit(3);
            }
            Storage& storage = **opened;
            int code = 0;
            for (int i = 0; i < ops && code == 0; ++i) {
                bool own = i % 10 == 0;
                std::string key =
                    own ? unique_key(child, i)
                        : test_key((static_cast<uint64_t>(i) * 13 + child * 16) % k_pool);
                if (own || i % 2 == 0) {
                    std::string value = make_value(key, static_cast<uint64_t>(child * ops + i),
                                                   static_cast<size_t>((i * 131) % 20000));
                    std::string_view piece(value);
                    auto done = storage.put(test_meta(key), std::span(&piece, 1));
                    if (!done) {
                        std::fprintf(stderr, "child %d put: %s\n", child,
                                     done.error().message.c_str());
                        code = 1;
                    }
                } else {
                    auto got = storage.get(key);
                    if (!got) {
                        std::fprintf(stderr, "child %d get: %s\n", child,
                                     got.error().message.c_str());
                        code = 1;
                    } else if (*got && !value_is_intact(key, *got->value())) {
                        code = 2;
                    }
                }
            }
            opened->reset();
            ::_exit(code);
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        assert_int_equal(::waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }

    auto storage = open_or_fail(backend.backend, settings);
    std::vector<std::string> written;
    for (int child = 0; child < k_processes; ++child) {
        for (int i = 0; i < ops; ++i) {
            if (i % 10 == 0) {
                written.push_back(unique_key(child, i));
            } else if (i % 2 == 0) {
                written.push_back(test_key((static_cast<uint64_t>(i) * 13 + child * 16) % k_pool));
            }
        }
    }
    for (const auto& key : written) {
        auto value = get_or_fail(*storage, key);
        assert_true(value.has_value());
        assert_true(value_is_intact(key, *value));
    }
}

int storage_fixture_setup(void** state) {
    auto* fixture = new StorageFixture;
    fixture->backend = static_cast<const ConformanceBackend*>(*state);
    fixture->scratch = make_scratch();
    fixture->settings = fixture->backend->settings(fixture->scratch);
    fixture->storage = open_or_fail(fixture->backend->backend, fixture->settings);
    *state = fixture;
    return 0;
}

int storage_fixture_teardown(void** state) {
    auto* fixture = static_cast<StorageFixture*>(*state);
    fixture->storage.reset();
    remove_scratch(fixture->scratch);
    delete fixture;
    return 0;
}

StorageFixture& storage_fixture(void** state) {
    return *static_cast<StorageFixture*>(*state);
}

std::string make_scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/curlcache-backends-XXXXXX";
    if (!::mkdtemp(pattern.data())) {
        fail_msg("mkdtemp %s: %s", pattern.c_str(), std::strerror(errno));
    }
    remove_scratch(""); // clears the variables
    return pattern;
}

int scratch_setup(void** state) {
    *state = new std::string(make_scratch());
    return 0;
}

int scratch_teardown(void** state) {
    auto* scratch = static_cast<std::string*>(*state);
    remove_scratch(*scratch);
    delete scratch;
    return 0;
}

const std::string& scratch_of(void** state) {
    return *static_cast<std::string*>(*state);
}

void remove_scratch(const std::string& path) {
    if (!path.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::vector<std::string> names;
    for (char** env = environ; env && *env; ++env) {
        if (std::strncmp(*env, "CURLCACHE_", 10) == 0) {
            const char* equals = std::strchr(*env, '=');
            names.emplace_back(*env,
                               equals ? static_cast<size_t>(equals - *env) : std::strlen(*env));
        }
    }
    for (const auto& name : names) {
        ::unsetenv(name.c_str());
    }
}

std::string test_key(uint64_t n) {
    char text[33];
    std::snprintf(text, sizeof text, "%016llx%016llx",
                  static_cast<unsigned long long>(fnv1a(std::to_string(n))),
                  static_cast<unsigned long long>(n));
    return text;
}

std::string make_value(std::string_view key, uint64_t seed, size_t size) {
    std::string value(8, '\0');
    value.append(key);
    value.reserve(8 + key.size() + size);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < size; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        value.push_back(static_cast<char>(x >> 24));
    }
    uint64_t hash = fnv1a(std::string_view(value).substr(8));
    std::memcpy(value.data(), &hash, sizeof hash);
    return value;
}

bool value_is_intact(std::string_view key, std::string_view value) {
    if (value.size() < 8 + key.size() || value.substr(8, key.size()) != key) {
        return false;
    }
    uint64_t hash = 0;
    std::memcpy(&hash, value.data(), sizeof hash);
    return hash == fnv1a(value.substr(8));
}

Metadata test_meta(std::string_view key, int64_t expires) {
    Metadata meta;
    meta.key = std::string(key);
    meta.method = "GET";
    meta.url = "http://origin.test/item/" + meta.key;
    meta.status = 200;
    meta.created = 1700000000;
    meta.expires = expires;
    return meta;
}

config::Settings sqlite_settings(const std::string& scratch) {
    config::Settings settings;
    settings.name = scratch + "/cache.sqlite";
    settings.sqlite_busy_timeout_ms = 30000;
    return settings;
}

} // namespace curlcache::tests
