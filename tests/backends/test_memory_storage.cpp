// Memory backend: the conformance group, the entry-count bound, and hits that share the
// stored value instead of copying it.
#include "backends/registry.h"

#include <algorithm>
#include <string>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using tests::test_key;
using tests::test_meta;

const tests::ConformanceBackend k_memory{"memory",
                                         [](const std::string&) { return config::Settings{}; }};

std::unique_ptr<backends::Storage> open_memory(uint64_t max_entries) {
    config::Settings settings;
    settings.memory_max_entries = max_entries;
    auto opened = backends::open("memory", settings);
    if (!opened) {
        fail_msg("open: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

void put_text(backends::Storage& storage, uint64_t n, std::string_view text) {
    assert_true(storage.put(test_meta(test_key(n)), std::span(&text, 1)).has_value());
}

bool has_entry(backends::Storage& storage, uint64_t n) {
    auto got = storage.get(test_key(n));
    assert_true(got.has_value());
    return got->has_value();
}

void test_hits_share_the_stored_value_without_copying(void** /*state*/) {
    auto storage = open_memory(0);
    put_text(*storage, 1, std::string(4096, 's'));
    auto first = storage->get(test_key(1));
    auto second = storage->get(test_key(1));
    assert_true(first.has_value() && first->has_value());
    assert_true(second.has_value() && second->has_value());
    assert_ptr_equal(first->value().get(), second->value().get());
}

void test_max_entries_evicts_the_least_recently_used(void** /*state*/) {
    auto storage = open_memory(3);
    put_text(*storage, 1, "a");
    put_text(*storage, 2, "b");
    put_text(*storage, 3, "c");
    assert_true(has_entry(*storage, 1)); // 2 is now the oldest
    put_text(*storage, 4, "d");
    assert_true(has_entry(*storage, 1));
    assert_false(has_entry(*storage, 2));
    assert_true(has_entry(*storage, 3));
    assert_true(has_entry(*storage, 4));
    auto usage = storage->usage();
    assert_true(usage.has_value());
    assert_int_equal(usage->entries, 3);
}

void test_a_value_stays_valid_after_it_is_evicted(void** /*state*/) {
    auto storage = open_memory(1);
    put_text(*storage, 1, "kept alive by the caller");
    auto got = storage->get(test_key(1));
    assert_true(got.has_value() && got->has_value());
    backends::Blob held = **got;
    put_text(*storage, 2, "evicts 1");
    assert_false(has_entry(*storage, 1));
    assert_string_equal(held->c_str(), "kept alive by the caller");
}

void test_registry_lists_backends_default_first_and_rejects_unknown_names(void** /*state*/) {
    auto names = backends::compiled_in();
    assert_true(names.size() >= 3);
    assert_string_equal(names[0].c_str(), "sqlite"); // the default comes first
    auto opened = backends::open("carrier-pigeon", config::Settings{});
    assert_false(opened.has_value());
    assert_int_equal(static_cast<int>(opened.error().kind),
                     static_cast<int>(backends::ErrorKind::failure));
    const std::string& message = opened.error().message;
    assert_true(message.find("carrier-pigeon") != std::string::npos);
    for (const char* name : {"sqlite", "filesystem", "memory"}) {
        assert_true(std::find(names.begin(), names.end(), name) != names.end());
        assert_true(message.find(name) != std::string::npos); // the message lists them
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_share_the_stored_value_without_copying),
        cmocka_unit_test(test_max_entries_evicts_the_least_recently_used),
        cmocka_unit_test(test_a_value_stays_valid_after_it_is_evicted),
        cmocka_unit_test(test_registry_lists_backends_default_first_and_rejects_unknown_names),
    };
    int failed = tests::run_conformance(k_memory);
    failed += cmocka_run_group_tests_name("memory storage", tests, nullptr, nullptr);
    return failed;
}
