// cli/list_order: `curlcache list`'s entries come out in (URL, method, key) order (the HAR
// export's in (created, URL, key) order) whether they fit in one in-memory run or spill
// into several temporary files that are merged.
#include "cli/list_order.h"

#include <algorithm>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

extern "C" {
#include <cmocka.h>
}

namespace {

using curlcache::cli::ListedEntry;
using curlcache::cli::SortedEntries;

std::vector<ListedEntry> shuffled_entries(std::size_t count) {
    std::vector<ListedEntry> entries;
    for (std::size_t i = 0; i < count; ++i) {
        ListedEntry entry;
        entry.key = std::to_string(100000 + i);
        entry.method = i % 3 == 0 ? "POST" : "GET";
        entry.url = "https://example.com/" + std::to_string(i % 97); // several per URL
        entry.status = 200 + static_cast<long>(i % 5);
        entry.created = static_cast<int64_t>(i);
        entry.expires = i % 2 == 0 ? 0 : static_cast<int64_t>(i) + 1000;
        entry.size = i * 7;
        entries.push_back(entry);
    }
    std::shuffle(entries.begin(), entries.end(), std::mt19937(7));
    return entries;
}

std::vector<ListedEntry> listed(SortedEntries& sorted) {
    std::vector<ListedEntry> out;
    assert_true(sorted.each([&](ListedEntry& entry) {
        out.push_back(entry);
        return true;
    }));
    return out;
}

void assert_sorted_and_complete(const std::vector<ListedEntry>& out, std::size_t count) {
    assert_int_equal(out.size(), count);
    for (std::size_t i = 1; i < out.size(); ++i) {
        assert_true(std::tie(out[i - 1].url, out[i - 1].method, out[i - 1].key) <
                    std::tie(out[i].url, out[i].method, out[i].key));
    }
    for (const ListedEntry& entry : out) { // every field survives a run file
        const auto i = std::stoul(entry.key) - 100000;
        assert_string_equal(entry.method.c_str(), i % 3 == 0 ? "POST" : "GET");
        assert_string_equal(entry.url.c_str(),
                            ("https://example.com/" + std::to_string(i % 97)).c_str());
        assert_int_equal(entry.status, 200 + static_cast<long>(i % 5));
        assert_int_equal(entry.created, static_cast<int64_t>(i));
        assert_int_equal(entry.expires, i % 2 == 0 ? 0 : static_cast<int64_t>(i) + 1000);
        assert_int_equal(entry.size, i * 7);
    }
}

void test_entries_within_one_run_come_out_sorted(void** /*state*/) {
    SortedEntries sorted(curlcache::cli::EntryOrder::url_method_key, 1000);
    for (auto& entry : shuffled_entries(500)) {
        sorted.add(std::move(entry));
    }
    assert_int_equal(sorted.run_files(), 0);
    assert_sorted_and_complete(listed(sorted), 500);
}

void test_entries_spilled_to_run_files_are_merged_in_order_and_can_be_read_again(void** /*state*/) {
    SortedEntries sorted(curlcache::cli::EntryOrder::url_method_key, 64);
    for (auto& entry : shuffled_entries(1000)) {
        sorted.add(std::move(entry));
    }
    assert_int_equal(sorted.run_files(), 1000 / 64);
    assert_sorted_and_complete(listed(sorted), 1000);
    assert_sorted_and_complete(listed(sorted), 1000); // a second pass (list's column widths)
}

void test_a_visitor_that_stops_ends_the_walk(void** /*state*/) {
    SortedEntries sorted(curlcache::cli::EntryOrder::url_method_key, 16);
    for (auto& entry : shuffled_entries(100)) {
        sorted.add(std::move(entry));
    }
    int seen = 0;
    assert_true(sorted.each([&](ListedEntry&) { return ++seen < 10; }));
    assert_int_equal(seen, 10);
}

// A run file that no longer holds every record written to it (cut short here) makes each()
// report it rather than end that run early and list fewer entries as if they were all.
void test_a_run_file_cut_short_is_reported_not_taken_for_its_end(void** /*state*/) {
    SortedEntries sorted(curlcache::cli::EntryOrder::url_method_key, 64);
    for (auto& entry : shuffled_entries(1000)) {
        sorted.add(std::move(entry));
    }
    assert_true(sorted.run_files() > 1);
    std::FILE* run = sorted.run_file(1);
    assert_int_equal(std::fseek(run, 0, SEEK_END), 0);
    const long size = std::ftell(run);
    assert_int_equal(::ftruncate(::fileno(run), size / 2), 0);
    std::size_t seen = 0;
    assert_false(sorted.each([&](ListedEntry&) {
        ++seen;
        return true;
    }));
    assert_true(seen < 1000);
}

// The HAR export's order: oldest first, then URL, then key, across run files too.
void test_entries_in_created_order_are_merged_oldest_first(void** /*state*/) {
    SortedEntries sorted(curlcache::cli::EntryOrder::created_url_key, 64);
    auto entries = shuffled_entries(1000);
    for (auto& entry : entries) {
        entry.created = static_cast<int64_t>(std::stoul(entry.key) % 50); // many alike
        sorted.add(std::move(entry));
    }
    assert_int_equal(sorted.run_files(), 1000 / 64);
    const auto out = listed(sorted);
    assert_int_equal(out.size(), 1000);
    for (std::size_t i = 1; i < out.size(); ++i) {
        assert_true(std::tie(out[i - 1].created, out[i - 1].url, out[i - 1].key) <
                    std::tie(out[i].created, out[i].url, out[i].key));
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_within_one_run_come_out_sorted),
        cmocka_unit_test(
            test_entries_spilled_to_run_files_are_merged_in_order_and_can_be_read_again),
        cmocka_unit_test(test_a_visitor_that_stops_ends_the_walk),
        cmocka_unit_test(test_a_run_file_cut_short_is_reported_not_taken_for_its_end),
        cmocka_unit_test(test_entries_in_created_order_are_merged_oldest_first),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
