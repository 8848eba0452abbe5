#include "tests/plugins/plugin_checks.h"

#include "backends/registry.h"
#include "tests/redis/fixture.h"

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
