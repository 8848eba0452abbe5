// The tiered wrapper: reads go down the tiers and fill the upper ones, writes reach every
// tier, a failing tier is skipped and counted. Most cases use small in-test tiers that can
// be told to fail; the last runs memory over a real Redis.
#include "backends/redis_storage.h"
#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "tests/redis/fixture.h"

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <csetjmp>
extern "C" {
#include <cmocka.h>
}

#include <map>
#include <mutex>
#include <set>
#include <string>

using namespace curlcache;
using namespace curlcache::backends;

namespace {

// A map in memory that fails every operation while `broken` is set.
class FakeTier final : public Storage {
public:
    explicit FakeTier(std::string label) : m_label(std::move(label)) {}
    bool broken = false;
    ErrorKind broken_kind = ErrorKind::failure;
    std::map<std::string, std::pair<Metadata, std::string>, std::less<>> entries;

    std::string_view name() const override { return m_label; }
    std::string location() const override { return "fake:" + m_label; }
    Result<std::optional<Blob>> get(std::string_view key) override {
        if (broken) {
            return down();
        }
        auto found = entries.find(key);
        if (found == entries.end()) {
            return std::optional<Blob>{};
        }
        return std::optional<Blob>{std::make_shared<const std::string>(found->second.second)};
    }
    bool knows_metadata = true; // false: behaves like a backend without get_metadata
    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        if (broken) {
            return down();
        }
        if (!knows_metadata) {
            return Storage::get_metadata(key);
        }
        auto found = entries.find(key);
        if (found == entries.end()) {
            return std::optional<Metadata>{};
        }
        return std::optional<Metadata>{found->second.first};
    }
    std::string read_only; // a reason: the tier was opened read-only (writes fail)
    std::string read_only_reason() const override { return read_only; }
    Result<void> put(const Metadata& meta, Pieces value) override {
        if (broken) {
            return down();
        }
        if (!read_only.empty()) {
            return read_only_error(*this);
        }
        std::string all;
        for (auto piece : value) {
            all += piece;
        }
        Metadata stored = meta;
        stored.size = all.size();
        entries[meta.key] = {stored, all};
        return {};
    }
    Result<bool> remove(std::string_view key) override {
        if (broken) {
            return down();
        }
        auto found = entries.find(key);
        if (found == entries.end()) {
            return false;
        }
        entries.erase(found);
        return true;
    }
    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        if (broken) {
            return down();
        }
        for (const auto& [key, entry] : entries) {
            if (!visit(entry.first)) {
                break;
            }
        }
        return {};
    }
    Result<void> clear() override {
        if (broken) {
            return down();
        }
        entries.clear();
        return {};
    }
    Result<Usage> usage() override {
        if (broken) {
            return down();
        }
        Usage usage;
        for (const auto& [key, entry] : entries) {
            ++usage.entries;
            usage.bytes += entry.second.size();
        }
        return usage;
    }
    Result<bool> try_lock(std::string_view key, int64_t) override {
        if (broken) {
            return down();
        }
        return locks.emplace(key).second;
    }
    Result<void> unlock(std::string_view key) override {
        locks.erase(std::string(key));
        return {};
    }
    std::set<std::string> locks;

private:
    std::unexpected<Error> down() const { return std::unexpected(Error{broken_kind, m_label + " is down"}); }
    std::string m_label;
};

struct Tiers {
    FakeTier* top;
    FakeTier* middle;
    FakeTier* bottom;
    std::unique_ptr<TieredStorage> storage;
};

Tiers make_tiers() {
    std::vector<std::unique_ptr<Storage>> tiers;
    auto top = std::make_unique<FakeTier>("top");
    auto middle = std::make_unique<FakeTier>("middle");
    auto bottom = std::make_unique<FakeTier>("bottom");
    Tiers result{top.get(), middle.get(), bottom.get(), nullptr};
    tiers.push_back(std::move(top));
    tiers.push_back(std::move(middle));
    tiers.push_back(std::move(bottom));
    result.storage = std::make_unique<TieredStorage>(std::move(tiers));
    return result;
}

Metadata meta_for(const std::string& key, int64_t expires = 0) {
    Metadata meta;
    meta.key = key;
    meta.method = "GET";
    meta.url = "https://example.com/" + key;
    meta.status = 200;
    meta.created = 1700000000;
    meta.expires = expires;
    return meta;
}

void test_hit_in_lowest_tier_fills_upper_tiers_with_its_metadata(void**) {
    Tiers t = make_tiers();
    std::string_view pieces[] = {"body"};
    assert_true(t.bottom->put(meta_for("k", 1900000000), pieces).has_value());

    auto got = t.storage->get("k");
    assert_true(got && *got && ***got == "body");
    assert_int_equal(t.top->entries.count("k"), 1);
    assert_int_equal(t.middle->entries.count("k"), 1);
    assert_int_equal(t.top->entries["k"].first.expires, 1900000000);
    assert_string_equal(t.top->entries["k"].first.url.c_str(), "https://example.com/k");

    // The next read is answered by the first tier.
    got = t.storage->get("k");
    assert_true(got && *got && ***got == "body");
    auto stats = t.storage->tier_stats();
    assert_int_equal(stats.size(), 3);
    assert_string_equal(stats[0].name.c_str(), "top");
    assert_int_equal(stats[0].hits, 1);
    assert_int_equal(stats[0].misses, 1);
    assert_int_equal(stats[0].fills, 1);
    assert_int_equal(stats[1].hits, 0);
    assert_int_equal(stats[1].fills, 1);
    assert_int_equal(stats[2].hits, 1);
    assert_int_equal(stats[2].fills, 0);
}

void test_fill_from_tier_without_metadata_copies_key_and_size(void**) {
    Tiers t = make_tiers();
    t.bottom->knows_metadata = false;
    std::string_view pieces[] = {"12345"};
    assert_true(t.bottom->put(meta_for("k", 1900000000), pieces).has_value());
    auto got = t.storage->get("k");
    assert_true(got && *got && ***got == "12345");
    assert_int_equal(t.top->entries.count("k"), 1);
    assert_int_equal(t.top->entries["k"].first.size, 5);
    assert_int_equal(t.top->entries["k"].first.expires, 0);
    assert_true(t.top->entries["k"].first.created > 0);
    assert_int_equal(t.storage->tier_stats()[2].errors, 0);
}

void test_put_writes_every_tier_and_miss_is_empty(void**) {
    Tiers t = make_tiers();
    std::string_view pieces[] = {"he", "llo"};
    assert_true(t.storage->put(meta_for("p"), pieces).has_value());
    assert_string_equal(t.top->entries["p"].second.c_str(), "hello");
    assert_string_equal(t.middle->entries["p"].second.c_str(), "hello");
    assert_string_equal(t.bottom->entries["p"].second.c_str(), "hello");
    auto missing = t.storage->get("absent");
    assert_true(missing && !*missing);
    assert_true(*t.storage->remove("p"));
    assert_true(t.top->entries.empty() && t.bottom->entries.empty());
    assert_false(*t.storage->remove("p"));
}

void test_failing_tier_is_skipped_and_counted(void**) {
    Tiers t = make_tiers();
    t.middle->broken = true;
    t.middle->broken_kind = ErrorKind::timeout;
    std::string_view pieces[] = {"v"};
    assert_true(t.storage->put(meta_for("f"), pieces).has_value());
    t.top->entries.clear();
    auto got = t.storage->get("f");
    assert_true(got && *got && ***got == "v");
    auto stats = t.storage->tier_stats();
    assert_int_equal(stats[1].errors, 3); // the put, the get, and the fill from below
    assert_int_equal(stats[1].timeouts, 3);
    assert_int_equal(stats[2].hits, 1);
    assert_int_equal(stats[0].fills, 1); // the top tier was filled past the broken one
    assert_int_equal(t.storage->usage()->entries, 1);
}

void test_every_tier_failing_is_an_error_not_a_miss(void**) {
    Tiers t = make_tiers();
    t.top->broken = t.middle->broken = t.bottom->broken = true;
    assert_false(t.storage->get("x").has_value());
    std::string_view pieces[] = {"v"};
    assert_false(t.storage->put(meta_for("x"), pieces).has_value());
    assert_false(t.storage->scan([](const Metadata&) { return true; }).has_value());
}

// A seeded cache on a read-only volume under a writable one: stores and fills go to the
// writable tiers without counting the read-only one as failing; reads still reach it.
void test_read_only_tier_is_read_and_left_out_of_stores(void**) {
    Tiers t = make_tiers();
    t.middle->read_only = "read-only file system";
    t.middle->entries["seed"] = {meta_for("seed"), "seeded"};
    assert_string_equal(t.storage->read_only_reason().c_str(), "");
    std::string_view pieces[] = {"v"};
    assert_true(t.storage->put(meta_for("p"), pieces).has_value());
    auto stream = t.storage->begin_put(1);
    assert_true(stream.has_value());
    assert_true((*stream)->append("w").has_value());
    assert_true((*stream)->commit(meta_for("q"), "").has_value());
    assert_true(t.top->entries.contains("p") && t.bottom->entries.contains("q"));
    assert_int_equal(t.middle->entries.size(), 1);
    auto seeded = t.storage->get("seed");
    assert_true(seeded && *seeded && ***seeded == "seeded");
    assert_string_equal(t.top->entries["seed"].second.c_str(), "seeded"); // filled above it
    t.top->entries.clear();
    auto got = t.storage->get("p"); // from the bottom: the fill skips the middle
    assert_true(got && *got && ***got == "v");
    auto stats = t.storage->tier_stats();
    assert_int_equal(stats[1].errors, 0);
    assert_int_equal(stats[0].fills, 2);

    // Every tier read-only: the whole cache is, and says why for each tier.
    t.top->read_only = t.bottom->read_only = "mode is \"readonly\"";
    std::string why = t.storage->read_only_reason();
    assert_non_null(strstr(why.c_str(), "top fake:top: mode is"));
    assert_non_null(strstr(why.c_str(), "middle fake:middle: read-only file system"));
    auto refused = t.storage->put(meta_for("r"), pieces);
    assert_false(refused.has_value());
    assert_non_null(strstr(refused.error().message.c_str(), "read-only"));
    assert_false(t.storage->begin_put(1).has_value());
    assert_int_equal(t.storage->tier_stats()[0].errors, 0);
}

void test_scan_and_usage_come_from_lowest_working_tier(void**) {
    Tiers t = make_tiers();
    std::string_view pieces[] = {"abc"};
    assert_true(t.bottom->put(meta_for("only-below"), pieces).has_value());
    assert_true(t.middle->put(meta_for("middle"), pieces).has_value());
    size_t seen = 0;
    assert_true(t.storage->scan([&](const Metadata& meta) {
        assert_string_equal(meta.key.c_str(), "only-below");
        return ++seen > 0;
    }).has_value());
    assert_int_equal(seen, 1);
    t.bottom->broken = true;
    assert_int_equal(t.storage->usage()->entries, 1); // the middle tier's
    assert_true(t.storage->clear().has_value() == false); // bottom could not be cleared
    assert_true(t.middle->entries.empty());
}

void test_locks_use_the_lowest_tier(void**) {
    Tiers t = make_tiers();
    assert_true(*t.storage->try_lock("k", 1000));
    assert_false(*t.storage->try_lock("k", 1000));
    assert_int_equal(t.bottom->locks.count("k"), 1);
    assert_true(t.top->locks.empty());
    assert_true(t.storage->unlock("k").has_value());
    assert_true(t.bottom->locks.empty());
}

void test_memory_over_redis_fills_memory_from_redis(void**) {
    std::string scratch = tests::redis::make_scratch();
    {
        tests::redis::RedisServer server(scratch);
        config::Settings settings = tests::redis::redis_settings(server, "tiers");
        settings.backend = {"memory", "redis"};
        // As the registry does: each tier opens with its own name only.
        auto open_one = [](std::string_view name, const config::Settings& s) {
            config::Settings one = s;
            one.backend = {std::string(name)};
            return name == "redis" ? open_redis(one) : backends::open(name, one);
        };
        auto first = open_tiered(settings, open_one);
        assert_true(first.has_value());
        TieredStorage* tiered = as_tiered(**first);
        assert_non_null(tiered);
        std::string_view pieces[] = {"shared body"};
        assert_true((*first)->put(meta_for("r"), pieces).has_value());

        // A second process's cache: empty memory, same Redis.
        auto second = open_tiered(settings, open_one);
        assert_true(second.has_value());
        TieredStorage* other = as_tiered(**second);
        auto got = other->get("r");
        assert_true(got && *got && ***got == "shared body");
        got = other->get("r");
        assert_true(got && *got);
        auto stats = other->tier_stats();
        assert_string_equal(stats[0].name.c_str(), "memory");
        assert_string_equal(stats[1].name.c_str(), "redis");
        assert_int_equal(stats[0].hits, 1);
        assert_int_equal(stats[1].hits, 1);
        assert_int_equal(stats[0].fills, 1);
        assert_true(other->location().find("redis://127.0.0.1:") != std::string::npos);

        // A single name is that backend itself; a tier that cannot open names itself.
        settings.backend = {"redis"};
        auto single = open_tiered(settings, open_one);
        assert_true(single && as_tiered(**single) == nullptr);
        settings.backend = {"memory", "redis"};
        settings.redis_url = "redis://127.0.0.1:" + std::to_string(tests::redis::free_port());
        // A tier that cannot be opened is skipped and counted; the others work.
        auto down = open_tiered(settings, open_one);
        assert_true(down.has_value());
        TieredStorage* partial = as_tiered(**down);
        assert_true(partial->tier(1).location().starts_with("(unavailable: tier 2 (redis): "));
        assert_true(partial->put(meta_for("p"), pieces).has_value());
        got = partial->get("p");
        assert_true(got && *got && ***got == "shared body");
        assert_true(partial->tier_stats()[1].errors >= 1);
        // With no tier at all, the open fails and names the last one.
        settings.backend = {"redis", "redis"};
        auto none = open_tiered(settings, open_one);
        assert_false(none.has_value());
        assert_true(none.error().message.starts_with("tier 2 (redis): "));
    }
    tests::redis::remove_tree(scratch);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_in_lowest_tier_fills_upper_tiers_with_its_metadata),
        cmocka_unit_test(test_fill_from_tier_without_metadata_copies_key_and_size),
        cmocka_unit_test(test_put_writes_every_tier_and_miss_is_empty),
        cmocka_unit_test(test_failing_tier_is_skipped_and_counted),
        cmocka_unit_test(test_every_tier_failing_is_an_error_not_a_miss),
        cmocka_unit_test(test_read_only_tier_is_read_and_left_out_of_stores),
        cmocka_unit_test(test_scan_and_usage_come_from_lowest_working_tier),
        cmocka_unit_test(test_locks_use_the_lowest_tier),
        cmocka_unit_test(test_memory_over_redis_fills_memory_from_redis),
    };
    return cmocka_run_group_tests_name("tiered_storage", tests, nullptr, nullptr);
}
