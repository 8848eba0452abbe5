#include "tests/plugins/plugin_checks.h"

#include "backends/registry.h"
#include "tests/redis/fixture.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <malloc.h>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace curlcache::tests {

std::unique_ptr<backends::Storage> open_or_fail(const config::Settings& settings) {
    auto opened = backends::open(settings.backend.front(), settings);
    if (!opened) {
        fail_msg("open: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

void put_text(backends::Storage& storage, const std::string& key, std::string_view text, int64_t expires) {
    auto done = storage.put(test_meta(key, expires), std::span(&text, 1));
    if (!done) {
        fail_msg("put: %s", done.error().message.c_str());
    }
}

int64_t elapsed_ms(int64_t since) {
    return redis::now_ms() - since;
}

void set_plugin_option(config::Settings& settings, const std::string& key, const std::string& value) {
    auto& table = settings.plugin_tables[settings.backend.front()];
    std::erase_if(table, [&](const auto& pair) { return pair.first == key; });
    table.emplace_back(key, value);
}

void check_a_hung_server_times_out(const config::Settings& settings, const std::function<void()>& pause,
                                   const std::function<void()>& resume) {
    auto storage = open_or_fail(settings);
    const std::string key = test_key(4000);
    put_text(*storage, key, "x");
    pause();
    const int64_t start = redis::now_ms();
    auto got = storage->get(key);
    const int64_t took = elapsed_ms(start);
    resume();
    assert_false(got.has_value());
    print_message("a hung server answered in %lld ms: %s\n", static_cast<long long>(took),
                  got.error().message.c_str());
    assert_int_equal(static_cast<int>(got.error().kind), static_cast<int>(backends::ErrorKind::timeout));
    assert_true(took >= 250 && took < 2000);
}

void check_an_open_that_times_out_backs_off(const config::Settings& settings,
                                            const std::function<void()>& pause,
                                            const std::function<void()>& resume) {
    const std::string& backend = settings.backend.front();
    pause();
    int64_t start = redis::now_ms();
    auto first = backends::open(backend, settings);
    const int64_t first_took = elapsed_ms(start);
    start = redis::now_ms();
    auto second = backends::open(backend, settings);
    const int64_t second_took = elapsed_ms(start);
    resume();
    assert_false(first.has_value());
    print_message("%s\n", first.error().message.c_str());
    assert_int_equal(static_cast<int>(first.error().kind), static_cast<int>(backends::ErrorKind::timeout));
    assert_true(first_took >= 250);
    assert_false(second.has_value());
    print_message("%s\n", second.error().message.c_str());
    assert_true(second_took < 100);
    assert_true(second.error().message.find(backend + " was down or did not answer") != std::string::npos);
}

} // namespace curlcache::tests

namespace curlcache::tests {

namespace {

// The bytes [at, at + n) of a value that is never held whole: byte i is a hash of (seed, i).
std::string pattern(uint64_t seed, uint64_t at, size_t n) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        uint64_t x = (at + i) * 0x9e3779b97f4a7c15ull ^ seed;
        x ^= x >> 29;
        out[i] = static_cast<char>(x * 0xbf58476d1ce4e5b9ull >> 56);
    }
    return out;
}

constexpr size_t k_piece = 1u << 20;

void stream_pattern(backends::Storage& storage, const std::string& key, uint64_t seed, size_t size) {
    auto stream = storage.begin_put(size);
    if (!stream) {
        fail_msg("begin_put: %s", stream.error().message.c_str());
    }
    for (size_t at = 0; at < size; at += k_piece) {
        auto appended = (*stream)->append(pattern(seed, at, std::min(k_piece, size - at)));
        if (!appended) {
            fail_msg("append: %s", appended.error().message.c_str());
        }
    }
    auto committed = (*stream)->commit(test_meta(key), "");
    if (!committed) {
        fail_msg("commit: %s", committed.error().message.c_str());
    }
}

std::unique_ptr<backends::ValueReader> open_reader(backends::Storage& storage, const std::string& key) {
    auto opened = storage.open_value(key, 64 * 1024);
    if (!opened) {
        fail_msg("open_value: %s", opened.error().message.c_str());
    }
    assert_true(opened->has_value());
    assert_null((*opened)->whole.get()); // streamed, not read whole
    assert_non_null((*opened)->reader.get());
    return std::move((*opened)->reader);
}

long status_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field)) {
            return std::strtol(line.c_str() + std::strlen(field) + 1, nullptr, 10);
        }
    }
    return -1;
}

} // namespace

void check_streamed_reads(backends::Storage& storage, const std::string& key, size_t size) {
    const uint64_t seed = 0x5eed;
    stream_pattern(storage, key, seed, size);
    auto reader = open_reader(storage, key);
    assert_int_equal(reader->size(), size);
    // Ranges inside and across chunk boundaries of every plugin (DynamoDB 350,000 bytes,
    // GridFS 255 KiB, PostgreSQL 1 MiB), the first and last bytes, an empty one.
    const std::pair<uint64_t, size_t> ranges[] = {
        {0, 1}, {0, 5000}, {349990, 20}, {255 * 1024 - 7, 14}, {(1u << 20) - 3, 6},
        {700000 - 1, 700002}, {size / 2 + 1, 3 * k_piece + 17}, {size - 5, 5}, {12345, 0}};
    for (const auto& [offset, length] : ranges) {
        std::string out(length, '\0');
        auto read = reader->read(offset, out);
        if (!read) {
            fail_msg("read %llu+%zu: %s", static_cast<unsigned long long>(offset), length,
                     read.error().message.c_str());
        }
        assert_true(out == pattern(seed, offset, length));
    }
    std::string past(10, '\0');
    assert_false(reader->read(size - 5, past).has_value());
    reader.reset();

    // Peak memory of a whole read, 1 MiB at a time as the host reads a hit.
    std::string out(k_piece, '\0');
    malloc_trim(0); // what earlier tests freed leaves the resident set: RSS grows from here
    {
        std::ofstream reset("/proc/self/clear_refs");
        reset << "5"; // VmHWM := VmRSS
    }
    const long before = status_kib("VmRSS:");
    reader = open_reader(storage, key);
    bool same = true;
    for (size_t at = 0; at < size; at += k_piece) {
        const size_t n = std::min(k_piece, size - at);
        auto read = reader->read(at, std::span(out.data(), n));
        if (!read) {
            fail_msg("read %zu+%zu: %s", at, n, read.error().message.c_str());
        }
        same = same && std::string_view(out.data(), n) == pattern(seed, at, n);
    }
    reader.reset();
    assert_true(same);
    const long grown = status_kib("VmHWM:") - before;
    print_message("a %zu MiB value read in 1 MiB ranges raised the peak by %ld KiB\n", size >> 20, grown);
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(before > 0 && grown >= 0 && static_cast<size_t>(grown) < size / 2 / 1024);
#endif

    // Opened, then replaced (or removed): the tail is no longer that value's.
    reader = open_reader(storage, key);
    put_text(storage, key, "replaced");
    assert_false(reader->read(size - k_piece, std::span(out.data(), k_piece)).has_value());
    reader.reset();
    stream_pattern(storage, key, seed, size); // (mongodb keeps a value under 15 MiB whole)
    reader = open_reader(storage, key);
    assert_true(storage.remove(key).value_or(false));
    assert_false(reader->read(size - k_piece, std::span(out.data(), k_piece)).has_value());
}

} // namespace curlcache::tests
