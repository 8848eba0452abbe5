// Freshness, age, storability and reuse (core/http/freshness.h): RFC 9111 §3, §4.2 and
// RFC 5861, with the edge cases of the http-tests/cache-tests suite (Age and Expires
// parsing, s-maxage in shared caches, heuristics).
#include "core/http/freshness.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <limits>
#include <set>
#include <string>

extern "C" {
#include <cmocka.h>
}

using namespace curlcache::core::http;

namespace {

constexpr int64_t k_now = 1700000000; // 2023-11-14T22:13:20Z

std::string http_date(int64_t when) {
    time_t t = static_cast<time_t>(when);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char text[64];
    strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return text;
}

std::string block(std::string_view lines, long status = 200) {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\n" + std::string(lines) + "\r\n";
}

// The freshness of a response received at k_now (sent at k_now) under `rules`.
Freshness fresh_of(std::string_view lines, long status = 200, FreshnessRules rules = {}) {
    std::string b = block(lines, status);
    return analyse(status, b, response_cache_control(b), k_now, k_now, rules);
}

FreshnessRules shared() {
    FreshnessRules rules;
    rules.type = CacheType::shared_cache;
    return rules;
}

std::string date_now() {
    return "Date: " + http_date(k_now) + "\r\n";
}

void test_max_age_sets_an_explicit_lifetime(void**) {
    Freshness f = fresh_of(date_now() + "Cache-Control: max-age=3600\r\n");
    assert_int_equal(f.source, LifetimeSource::explicit_);
    assert_int_equal(f.lifetime, 3600);
    assert_int_equal(f.corrected_initial_age, 0);
    assert_int_equal(f.stale_at(), k_now + 3600);
    assert_true(f.fresh(k_now + 3599));
    assert_false(f.fresh(k_now + 3600));
    assert_int_equal(f.current_age(k_now + 10), 10);
    assert_int_equal(f.request_time, k_now);
    assert_int_equal(f.response_time, k_now);
}

void test_max_age_zero_and_invalid_max_age_are_stale(void**) {
    assert_false(fresh_of("Cache-Control: max-age=0\r\n").fresh(k_now));
    const char* const bad[] = {"max-age=-3600", "max-age=3600a", "max-age='3600'",
                               "max-age=3600.0"};
    for (const char* value : bad) {
        Freshness f = fresh_of(date_now() + "Cache-Control: " + value +
                               "\r\nExpires: " + http_date(k_now + 3600) + "\r\n");
        if (f.source != LifetimeSource::explicit_ || f.lifetime != 0 || f.fresh(k_now)) {
            fail_msg("fresh with %s", value);
        }
    }
}

void test_huge_max_age_saturates_and_stays_fresh(void**) {
    Freshness f = fresh_of("Cache-Control: max-age=99999999999\r\n");
    assert_int_equal(f.lifetime, k_delta_seconds_max);
    assert_true(f.fresh(k_now + 86400L * 365 * 60));
}

void test_age_header_is_part_of_the_age(void**) {
    Freshness f = fresh_of(date_now() + "Cache-Control: max-age=3600\r\nAge: 7200\r\n");
    assert_int_equal(f.corrected_initial_age, 7200);
    assert_false(f.fresh(k_now));
    f = fresh_of(date_now() + "Cache-Control: max-age=3600\r\nAge: 600\r\n");
    assert_int_equal(f.stale_at(), k_now + 3000);
    assert_int_equal(f.current_age(k_now + 100), 700);
}

void test_apparent_age_comes_from_date(void**) {
    Freshness f =
        fresh_of("Date: " + http_date(k_now - 7200) + "\r\nCache-Control: max-age=3600\r\n");
    assert_int_equal(f.corrected_initial_age, 7200);
    assert_false(f.fresh(k_now));
    // A Date in the future is no negative age.
    f = fresh_of("Date: " + http_date(k_now + 500) + "\r\nCache-Control: max-age=3600\r\n");
    assert_int_equal(f.corrected_initial_age, 0);
}

void test_response_delay_is_added_to_age(void**) {
    std::string b = block(date_now() + "Cache-Control: max-age=60\r\nAge: 5\r\n");
    Freshness f = analyse(200, b, response_cache_control(b), k_now - 10, k_now, {});
    assert_int_equal(f.corrected_initial_age, 15);
    assert_int_equal(f.stale_at(), k_now + 45);
}

void test_age_values_that_are_ignored_or_used(void**) {
    struct Case {
        const char* age;
        bool fresh;
    } cases[] = {{"Age: abc\r\n", true},
                 {"Age: -7200\r\n", true},
                 {"Age: 7200.0\r\n", true},
                 {"Age: 2147483647\r\n", false},
                 {"Age: 2147483648\r\n", false},
                 {"Age: 2147483649\r\n", false},
                 {"Age: 99999999999999999999999\r\n", false},
                 {"Age: 7200, 0\r\n", false},
                 {"Age: 0, 7200\r\n", true},
                 {"Age: 7200\r\nAge: 0\r\n", false},
                 {"Age: 0\r\nAge: 7200\r\n", true},
                 {"Age: 0, 0\r\n", true},
                 {"Age: \r\n", true}};
    for (const Case& c : cases) {
        Freshness f = fresh_of(date_now() + "Cache-Control: max-age=3600\r\n" + c.age);
        if (f.fresh(k_now) != c.fresh) {
            fail_msg("%s", c.age);
        }
    }
}

void test_expires_minus_date(void**) {
    Freshness f = fresh_of(date_now() + "Expires: " + http_date(k_now + 30 * 86400) + "\r\n");
    assert_int_equal(f.source, LifetimeSource::explicit_);
    assert_int_equal(f.lifetime, 30 * 86400);
    assert_false(
        fresh_of(date_now() + "Expires: " + http_date(k_now - 86400) + "\r\n").fresh(k_now));
    assert_false(fresh_of(date_now() + "Expires: " + http_date(k_now) + "\r\n").fresh(k_now));
    // Expires older than Date, both in the future.
    f = fresh_of("Date: " + http_date(k_now + 400) + "\r\nExpires: " + http_date(k_now + 300) +
                 "\r\n");
    assert_int_equal(f.lifetime, 0);
}

void test_expires_with_missing_or_invalid_date_uses_response_time(void**) {
    Freshness f = fresh_of("Expires: " + http_date(k_now + 10) + "\r\n");
    assert_int_equal(f.lifetime, 10);
    f = fresh_of("Date: foo\r\nExpires: " + http_date(k_now + 10) + "\r\n");
    assert_int_equal(f.lifetime, 10);
    assert_true(f.fresh(k_now + 9));
}

void test_age_beyond_expires_is_stale(void**) {
    Freshness f = fresh_of("Date: " + http_date(k_now - 10) +
                           "\r\nExpires: " + http_date(k_now + 10) + "\r\nAge: 25\r\n");
    assert_false(f.fresh(k_now));
    f = fresh_of("Date: " + http_date(k_now + 10) + "\r\nExpires: " + http_date(k_now + 20) +
                 "\r\nAge: 15\r\n");
    assert_false(f.fresh(k_now));
}

void test_invalid_expires_is_already_expired(void**) {
    const char* const bad[] = {"0",
                               "-1",
                               "",
                               "Thu, 18 Aug 2050 02:01:18 UTC",
                               "Thu, 18 Aug 2050 02:01:18 AEST",
                               "Thu, 18 Aug 50 02:01:18 GMT",
                               "Thu 18 Aug 2050 02:01:18 GMT",
                               "Thu, 18  Aug  2050 02:01:18 GMT",
                               "Thu, 18-Aug-2050 02:01:18 GMT",
                               "Thu, 18 Aug 2050 02.01.18 GMT",
                               "Thu, 18 Aug 2050 2:01:18 GMT",
                               "Thu, 30 Feb 2050 02:01:18 GMT",
                               "Thu, 18 Aug 2050 24:01:18 GMT",
                               "Thu, 18 Foo 2050 02:01:18 GMT",
                               "Xyz, 18 Aug 2050 02:01:18 GMT",
                               "Thursday, 18-Aug-2050 02:01:18 GMT",
                               "Thu Aug 8 02:01:18 2050"};
    for (const char* value : bad) {
        Freshness f = fresh_of(date_now() + "Expires: " + value + "\r\n");
        if (f.source != LifetimeSource::explicit_ || f.lifetime != 0) {
            fail_msg("Expires accepted: %s", value);
        }
    }
    // The first Expires line counts.
    Freshness f = fresh_of(date_now() + "Expires: Thu, 18 Aug 2050 2:01:18 GMT\r\nExpires: " +
                           http_date(k_now + 60) + "\r\n");
    assert_int_equal(f.lifetime, 0);
}

void test_expires_in_every_http_date_form(void**) {
    const char* const good[] = {
        "Tue, 19 Jan 2038 14:14:08 GMT",    "Sun, 21 Nov 2286 04:46:39 GMT",
        "Thursday, 18-Aug-50 02:01:18 GMT", "Thu Aug  8 02:01:18 2050",
        "Thu Aug 18 02:01:18 2050",         "THU, 18 Aug 2050 02:01:18 GMT",
        "Thu, 18 AUG 2050 02:01:18 GMT",    "Thu, 18 Aug 2050 02:01:18 gMT"};
    for (const char* value : good) {
        Freshness f = fresh_of(date_now() + "Expires: " + value + "\r\n");
        if (!f.fresh(k_now + 86400L * 365 * 10)) {
            fail_msg("Expires refused: %s", value);
        }
    }
    // Exact values: IMF-fixdate, and an RFC 850 year more than 50 years ahead is in the past.
    Freshness f = fresh_of("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                           "Expires: Sunday, 06-Nov-94 08:50:37 GMT\r\n");
    assert_int_equal(f.lifetime, 60);
    f = fresh_of("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nExpires: Sun Nov  6 08:49:47 1994\r\n");
    assert_int_equal(f.lifetime, 10);
    f = fresh_of(
        "Date: Sun, 29 Feb 2004 00:00:00 GMT\r\nExpires: Mon, 01 Mar 2004 00:00:00 GMT\r\n");
    assert_int_equal(f.lifetime, 86400);
    assert_int_equal(f.corrected_initial_age, k_now - 1078012800);
}

void test_max_age_wins_over_expires(void**) {
    Freshness f = fresh_of(
        date_now() + "Cache-Control: max-age=3600\r\nExpires: " + http_date(k_now - 7200) + "\r\n");
    assert_int_equal(f.lifetime, 3600);
    f = fresh_of(date_now() + "Cache-Control: max-age=3600\r\nExpires: 0\r\n");
    assert_int_equal(f.lifetime, 3600);
    f = fresh_of(date_now() + "Expires: " + http_date(k_now + 3600) +
                 "\r\nCache-Control: max-age=0\r\n");
    assert_int_equal(f.lifetime, 0);
}

void test_s_maxage_only_in_a_shared_cache(void**) {
    Freshness f = fresh_of("Cache-Control: s-maxage=3600, max-age=1\r\n");
    assert_int_equal(f.lifetime, 1);
    assert_false(f.must_revalidate);
    f = fresh_of("Cache-Control: s-maxage=3600\r\nCache-Control: max-age=1\r\n");
    assert_int_equal(f.lifetime, 1);
    f = fresh_of("Cache-Control: s-maxage=3600\r\n", 200, shared());
    assert_int_equal(f.lifetime, 3600);
    assert_true(f.must_revalidate); // s-maxage implies proxy-revalidate
    assert_int_equal(
        fresh_of("Cache-Control: max-age=3600, s-maxage=1\r\n", 200, shared()).lifetime, 1);
    assert_int_equal(
        fresh_of("Cache-Control: max-age=3600\r\nCache-Control: s-maxage=1\r\n", 200, shared())
            .lifetime,
        1);
    assert_int_equal(
        fresh_of("Cache-Control: max-age=1, s-maxage=3600\r\n", 200, shared()).lifetime, 3600);
    f = fresh_of("Expires: " + http_date(k_now - 10) +
                     "\r\nCache-Control: max-age=0, s-maxage=3600\r\n",
                 200, shared());
    assert_int_equal(f.lifetime, 3600);
    // An unreadable s-maxage is stale in a shared cache and ignored in a private one.
    assert_int_equal(fresh_of("Cache-Control: s-maxage=x, max-age=60\r\n", 200, shared()).lifetime,
                     0);
    assert_int_equal(fresh_of("Cache-Control: s-maxage=x, max-age=60\r\n").lifetime, 60);
}

void test_heuristic_from_last_modified(void**) {
    // The lifetime under `rules` of a 200 last modified `ago` seconds before its Date.
    auto lifetime = [](int64_t ago, FreshnessRules rules = {}) {
        Freshness f =
            fresh_of(date_now() + "Last-Modified: " + http_date(k_now - ago) + "\r\n", 200, rules);
        assert_int_equal(f.source, LifetimeSource::heuristic);
        return f.lifetime;
    };
    assert_int_equal(lifetime(100000), 10000);
    assert_int_equal(lifetime(10 * 86400), 86400); // heuristic_max
    FreshnessRules rules;
    rules.heuristic_fraction = 0.5;
    rules.heuristic_max = 1000;
    assert_int_equal(lifetime(600, rules), 300);
    assert_int_equal(lifetime(6000, rules), 1000);
    // Odd rules stay in range: no cap beyond 2^31, nothing below 0, NaN is 0.
    rules.heuristic_fraction = 1e30;
    rules.heuristic_max = std::numeric_limits<int64_t>::max();
    assert_int_equal(lifetime(6000, rules), k_delta_seconds_max);
    rules.heuristic_fraction = -1;
    assert_int_equal(lifetime(6000, rules), 0);
    rules.heuristic_fraction = std::numeric_limits<double>::quiet_NaN();
    assert_int_equal(lifetime(6000, rules), 0);
}

void test_no_heuristic_without_cause(void**) {
    std::string lm = date_now() + "Last-Modified: " + http_date(k_now - 100000) + "\r\n";
    Freshness f = fresh_of(lm, 500);
    assert_int_equal(f.source, LifetimeSource::none);
    assert_int_equal(f.lifetime, 0);
    assert_false(f.fresh(k_now));
    assert_int_equal(fresh_of(lm + "Cache-Control: public\r\n", 599).source,
                     LifetimeSource::heuristic);
    assert_int_equal(fresh_of(date_now()).source, LifetimeSource::none);
    assert_int_equal(
        fresh_of(date_now() + "Last-Modified: " + http_date(k_now + 50) + "\r\n").source,
        LifetimeSource::none);
    assert_int_equal(fresh_of(date_now() + "Last-Modified: yesterday\r\n").source,
                     LifetimeSource::none);
    // Explicit freshness forbids the heuristic.
    assert_int_equal(fresh_of(lm + "Cache-Control: max-age=0\r\n").source,
                     LifetimeSource::explicit_);
}

void test_configured_lifetime_replaces_the_heuristic(void**) {
    FreshnessRules rules;
    rules.configured_lifetime = 600;
    std::string lm = date_now() + "Last-Modified: " + http_date(k_now - 100000) + "\r\n";
    Freshness f = fresh_of(lm, 200, rules);
    assert_int_equal(f.source, LifetimeSource::configured);
    assert_int_equal(f.lifetime, 600);
    assert_int_equal(fresh_of("", 500, rules).source, LifetimeSource::configured);
    assert_int_equal(fresh_of("Cache-Control: max-age=5\r\n", 200, rules).lifetime, 5);
    rules.configured_lifetime = FreshnessRules::k_forever;
    f = fresh_of(lm, 200, rules);
    assert_int_equal(f.source, LifetimeSource::forever);
    assert_int_equal(f.stale_at(), std::numeric_limits<int64_t>::max());
    assert_true(f.fresh(std::numeric_limits<int64_t>::max() - 1));
    f = fresh_of("Cache-Control: no-cache\r\n", 200, rules);
    assert_false(f.fresh(k_now));
}

void test_directive_flags_are_carried(void**) {
    Freshness f = fresh_of("Cache-Control: max-age=60, no-cache\r\n");
    assert_true(f.no_cache);
    assert_false(f.fresh(k_now));
    assert_true(fresh_of("Cache-Control: max-age=60, no-cache=\"Set-Cookie\"\r\n").no_cache);
    assert_true(fresh_of("Pragma: no-cache\r\n").no_cache);
    assert_true(fresh_of("Cache-Control: must-revalidate\r\n").must_revalidate);
    assert_false(fresh_of("Cache-Control: proxy-revalidate\r\n").must_revalidate);
    assert_true(fresh_of("Cache-Control: proxy-revalidate\r\n", 200, shared()).must_revalidate);
    assert_true(fresh_of("Cache-Control: immutable\r\n").immutable);
    f = fresh_of("Cache-Control: max-age=1, stale-while-revalidate=30, stale-if-error=400\r\n");
    assert_int_equal(f.stale_while_revalidate, 30);
    assert_int_equal(f.stale_if_error, 400);
    f = fresh_of("Cache-Control: max-age=1\r\n");
    assert_int_equal(f.stale_while_revalidate, 0);
    assert_int_equal(f.stale_if_error, 0);
    assert_false(f.no_cache || f.must_revalidate || f.immutable);
}

void test_arithmetic_saturates(void**) {
    Freshness f;
    f.response_time = std::numeric_limits<int64_t>::max() - 5;
    f.lifetime = k_delta_seconds_max;
    f.corrected_initial_age = 0;
    f.source = LifetimeSource::explicit_;
    assert_int_equal(f.stale_at(), std::numeric_limits<int64_t>::max());
    assert_int_equal(f.current_age(std::numeric_limits<int64_t>::min()),
                     std::numeric_limits<int64_t>::min());
    std::string b = block("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nAge: 2147483648\r\n"
                          "Cache-Control: max-age=2147483648\r\n");
    f = analyse(200, b, response_cache_control(b), std::numeric_limits<int64_t>::min(),
                std::numeric_limits<int64_t>::max(), {});
    assert_int_equal(f.corrected_initial_age, k_delta_seconds_max);
    assert_int_equal(f.lifetime, k_delta_seconds_max);
}

void test_heuristically_cacheable_statuses(void**) {
    std::set<long> expected = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    for (long status = 0; status < 1000; ++status) {
        if (heuristically_cacheable(status) != (expected.count(status) == 1)) {
            fail_msg("status %ld", status);
        }
    }
}

// --- storable() ---

constexpr CacheType k_private = CacheType::private_cache;
constexpr CacheType k_shared = CacheType::shared_cache;

// One storable() question and its answer.
struct StoreCase {
    long status;
    const char* lines;
    Storable expected;
    CacheType type = k_private;
    const char* request_lines = ""; // "" = the request had no Cache-Control
    bool authorization = false;
};

template <size_t N> void check_store(const StoreCase (&cases)[N]) {
    for (const StoreCase& c : cases) {
        std::string b = block(c.lines, c.status);
        CacheControl response_cc = response_cache_control(b);
        CacheControl request_cc = request_cache_control({c.request_lines});
        StoreQuestion q;
        q.status = c.status;
        q.block = b;
        q.response_cc = &response_cc;
        q.request_cc = *c.request_lines ? &request_cc : nullptr;
        q.request_has_authorization = c.authorization;
        q.type = c.type;
        Storable got = storable(q);
        if (got != c.expected) {
            fail_msg("%ld %s: %s, expected %s", c.status, c.lines, describe(got),
                     describe(c.expected));
        }
    }
}

void test_storable_final_cacheable_responses(void**) {
    const StoreCase cases[] = {
        {200, "", Storable::ok},
        {404, "", Storable::ok},
        {500, "Cache-Control: max-age=60\r\n", Storable::ok},
        {500, "Expires: 0\r\n", Storable::ok},
        {500, "Cache-Control: public\r\n", Storable::ok},
        {500, "Cache-Control: private\r\n", Storable::ok},
        {302, "Cache-Control: no-cache, max-age=0\r\n", Storable::ok},
        {500, "Cache-Control: s-maxage=60\r\n", Storable::ok, k_shared},
    };
    check_store(cases);
}

void test_storable_refuses_what_it_cannot_reuse(void**) {
    const StoreCase cases[] = {
        {500, "", Storable::status},
        {302, "", Storable::status},
        {500, "Cache-Control: s-maxage=60\r\n", Storable::status},
        {100, "Cache-Control: max-age=60\r\n", Storable::status},
        {304, "Cache-Control: max-age=60\r\n", Storable::status},
        {0, "", Storable::status},
        {1000, "Cache-Control: max-age=60\r\n", Storable::status},
    };
    check_store(cases);
    StoreQuestion empty; // no block, no Cache-Control at all
    empty.status = 200;
    assert_int_equal(storable(empty), Storable::ok);
}

void test_storable_no_store_in_response_or_request(void**) {
    const StoreCase cases[] = {
        {200, "Cache-Control: no-store, max-age=60\r\n", Storable::no_store},
        {200, "Cache-Control: max-age=60\r\n", Storable::no_store, k_private,
         "Cache-Control: no-store"},
        {200, "", Storable::ok, k_private, "Cache-Control: max-age=0"},
    };
    check_store(cases);
}

void test_storable_must_understand(void**) {
    const StoreCase cases[] = {
        // A status this cache understands: no-store is overridden.
        {200, "Cache-Control: must-understand, no-store, max-age=60\r\n", Storable::ok},
        {299, "Cache-Control: must-understand, no-store, max-age=60\r\n",
         Storable::must_understand},
        {599, "Cache-Control: must-understand, max-age=60\r\n", Storable::must_understand},
        // The request's no-store still counts.
        {200, "Cache-Control: must-understand, no-store\r\n", Storable::no_store, k_private,
         "Cache-Control: no-store"},
    };
    check_store(cases);
}

void test_storable_private_only_in_a_private_cache(void**) {
    const StoreCase cases[] = {
        {200, "Cache-Control: private, max-age=60\r\n", Storable::ok},
        {200, "Cache-Control: private, max-age=60\r\n", Storable::is_private, k_shared},
        {200, "Cache-Control: private=\"Set-Cookie\"\r\n", Storable::is_private, k_shared},
    };
    check_store(cases);
}

void test_storable_authorization_in_a_shared_cache(void**) {
    const StoreCase cases[] = {
        {200, "Cache-Control: max-age=60\r\n", Storable::authorization, k_shared, "", true},
        {200, "Cache-Control: public\r\n", Storable::ok, k_shared, "", true},
        {200, "Cache-Control: s-maxage=60\r\n", Storable::ok, k_shared, "", true},
        {200, "Cache-Control: must-revalidate, max-age=60\r\n", Storable::ok, k_shared, "", true},
        {200, "Cache-Control: max-age=60\r\n", Storable::ok, k_private, "", true},
    };
    check_store(cases);
}

void test_storable_partial_and_vary_star(void**) {
    const StoreCase cases[] = {
        {206, "Content-Range: bytes 0-9/100\r\n", Storable::partial},
        // A 200 with Content-Range is a whole response (cache-tests headers-store-Content-Range).
        {200, "Content-Range: bytes 0-9/100\r\n", Storable::ok},
        {200, "Vary: *\r\n", Storable::vary_star},
        {200, "Vary: Accept, *\r\n", Storable::vary_star},
        {200, "Vary: Accept\r\nVary: Origin\r\n", Storable::ok},
    };
    check_store(cases);
}

void test_describe_every_reason(void**) {
    std::set<std::string> seen;
    for (Storable why :
         {Storable::ok, Storable::no_store, Storable::is_private, Storable::authorization,
          Storable::status, Storable::must_understand, Storable::partial, Storable::vary_star}) {
        const char* text = describe(why);
        assert_non_null(text);
        assert_true(std::strlen(text) > 0);
        seen.insert(text);
    }
    assert_int_equal(seen.size(), 8);
}

// --- usable(), serve_stale_while_revalidate(), serve_stale_on_error() ---

// A response fresh for `lifetime` seconds from k_now.
Freshness stored_for(int64_t lifetime) {
    Freshness f;
    f.request_time = k_now;
    f.response_time = k_now;
    f.lifetime = lifetime;
    f.source = LifetimeSource::explicit_;
    return f;
}

CacheControl req(std::string_view value) {
    return request_cache_control({"Cache-Control: " + std::string(value)});
}

void test_usable_fresh_and_stale(void**) {
    Freshness f = stored_for(100);
    assert_int_equal(usable(f, {}, k_now + 99).use, Use::fresh);
    assert_int_equal(usable(f, {}, k_now + 100).use, Use::revalidate);
    assert_string_equal(usable(f, {}, k_now + 100).reason, "stale");
    assert_int_equal(usable(stored_for(0), {}, k_now).use, Use::revalidate);
}

void test_usable_stored_no_cache_always_revalidates(void**) {
    Freshness f = stored_for(100);
    f.no_cache = true;
    assert_int_equal(usable(f, {}, k_now).use, Use::revalidate);
    assert_string_equal(usable(f, {}, k_now).reason, "no-cache");
    assert_int_equal(usable(f, req("max-stale"), k_now).use, Use::revalidate);
}

void test_usable_request_no_cache_and_max_age(void**) {
    Freshness f = stored_for(3600);
    assert_int_equal(usable(f, req("no-cache"), k_now).use, Use::revalidate);
    assert_int_equal(usable(f, request_cache_control({"Pragma: no-cache"}), k_now).use,
                     Use::revalidate);
    assert_int_equal(usable(f, req("max-age=0"), k_now).use, Use::revalidate);
    assert_string_equal(usable(f, req("max-age=0"), k_now).reason, "request max-age=0");
    assert_int_equal(usable(f, req("max-age=600"), k_now + 600).use, Use::fresh);
    assert_int_equal(usable(f, req("max-age=600"), k_now + 601).use, Use::revalidate);
    // An Age'd response that is fresh but older than the request allows.
    f.corrected_initial_age = 1800;
    assert_int_equal(usable(f, req("max-age=600"), k_now).use, Use::revalidate);
    // A request max-age never makes a stale response usable.
    assert_int_equal(usable(stored_for(10), req("max-age=600"), k_now + 20).use, Use::revalidate);
}

void test_usable_min_fresh(void**) {
    Freshness f = stored_for(1500);
    assert_int_equal(usable(f, req("min-fresh=2000"), k_now).use, Use::revalidate);
    assert_string_equal(usable(f, req("min-fresh=2000"), k_now).reason, "request min-fresh");
    assert_int_equal(usable(f, req("min-fresh=1000"), k_now + 500).use, Use::fresh);
    assert_int_equal(usable(f, req("min-fresh=1000"), k_now + 501).use, Use::revalidate);
    f.corrected_initial_age = 1000;
    assert_int_equal(usable(f, req("min-fresh=1000"), k_now).use, Use::revalidate);
    assert_int_equal(usable(f, req("min-fresh=2147483648"), k_now).use, Use::revalidate);
}

void test_usable_max_stale(void**) {
    Freshness f = stored_for(1500);
    f.corrected_initial_age = 2000; // stale by 500
    assert_int_equal(usable(f, req("max-stale=1000"), k_now).use, Use::stale_ok);
    assert_int_equal(usable(f, req("max-stale=1000"), k_now + 500).use, Use::stale_ok);
    assert_int_equal(usable(f, req("max-stale=1000"), k_now + 501).use, Use::revalidate);
    assert_int_equal(usable(f, req("max-stale"), k_now + 86400 * 365).use, Use::stale_ok);
    f.must_revalidate = true;
    assert_int_equal(usable(f, req("max-stale"), k_now).use, Use::revalidate);
    assert_string_equal(usable(f, req("max-stale"), k_now).reason, "must-revalidate");
    // A fresh response is fresh, whatever max-stale says.
    assert_int_equal(usable(stored_for(100), req("max-stale=10"), k_now).use, Use::fresh);
}

void test_stale_while_revalidate_window(void**) {
    Freshness f = stored_for(1);
    f.stale_while_revalidate = 4;
    assert_false(serve_stale_while_revalidate(f, {}, k_now)); // still fresh
    assert_true(serve_stale_while_revalidate(f, {}, k_now + 1));
    assert_true(serve_stale_while_revalidate(f, {}, k_now + 5));
    assert_false(serve_stale_while_revalidate(f, {}, k_now + 6));
    assert_false(serve_stale_while_revalidate(f, req("no-cache"), k_now + 1));
    assert_false(serve_stale_while_revalidate(f, req("max-age=100"), k_now + 1));
    assert_false(serve_stale_while_revalidate(f, req("min-fresh=1"), k_now + 1));
    Freshness strict = f;
    strict.must_revalidate = true;
    assert_false(serve_stale_while_revalidate(strict, {}, k_now + 1));
    strict = f;
    strict.no_cache = true;
    assert_false(serve_stale_while_revalidate(strict, {}, k_now + 1));
    assert_false(serve_stale_while_revalidate(stored_for(1), {}, k_now + 1));
}

void test_stale_if_error_windows(void**) {
    Freshness f = stored_for(2);
    assert_false(serve_stale_on_error(f, {}, 0, k_now + 10));
    f.stale_if_error = 60;
    assert_true(serve_stale_on_error(f, {}, 0, k_now + 10));
    assert_true(serve_stale_on_error(f, {}, 0, k_now + 62));
    assert_false(serve_stale_on_error(f, {}, 0, k_now + 63));
    // The request's window and the configured one are permissions too.
    Freshness plain = stored_for(2);
    assert_true(serve_stale_on_error(plain, req("stale-if-error=100"), 0, k_now + 50));
    assert_true(serve_stale_on_error(plain, {}, 300, k_now + 300));
    assert_false(serve_stale_on_error(plain, {}, 300, k_now + 303));
    // Never against no-cache or must-revalidate, nor a request no-cache alone.
    Freshness strict = f;
    strict.must_revalidate = true;
    assert_false(serve_stale_on_error(strict, {}, 1000, k_now + 10));
    strict = f;
    strict.no_cache = true;
    assert_false(serve_stale_on_error(strict, req("stale-if-error=100"), 1000, k_now + 10));
    assert_false(serve_stale_on_error(f, req("no-cache"), 0, k_now + 10));
    assert_true(serve_stale_on_error(f, req("no-cache, stale-if-error=30"), 0, k_now + 10));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_age_sets_an_explicit_lifetime),
        cmocka_unit_test(test_max_age_zero_and_invalid_max_age_are_stale),
        cmocka_unit_test(test_huge_max_age_saturates_and_stays_fresh),
        cmocka_unit_test(test_age_header_is_part_of_the_age),
        cmocka_unit_test(test_apparent_age_comes_from_date),
        cmocka_unit_test(test_response_delay_is_added_to_age),
        cmocka_unit_test(test_age_values_that_are_ignored_or_used),
        cmocka_unit_test(test_expires_minus_date),
        cmocka_unit_test(test_expires_with_missing_or_invalid_date_uses_response_time),
        cmocka_unit_test(test_age_beyond_expires_is_stale),
        cmocka_unit_test(test_invalid_expires_is_already_expired),
        cmocka_unit_test(test_expires_in_every_http_date_form),
        cmocka_unit_test(test_max_age_wins_over_expires),
        cmocka_unit_test(test_s_maxage_only_in_a_shared_cache),
        cmocka_unit_test(test_heuristic_from_last_modified),
        cmocka_unit_test(test_no_heuristic_without_cause),
        cmocka_unit_test(test_configured_lifetime_replaces_the_heuristic),
        cmocka_unit_test(test_directive_flags_are_carried),
        cmocka_unit_test(test_arithmetic_saturates),
        cmocka_unit_test(test_heuristically_cacheable_statuses),
        cmocka_unit_test(test_storable_final_cacheable_responses),
        cmocka_unit_test(test_storable_refuses_what_it_cannot_reuse),
        cmocka_unit_test(test_storable_no_store_in_response_or_request),
        cmocka_unit_test(test_storable_must_understand),
        cmocka_unit_test(test_storable_private_only_in_a_private_cache),
        cmocka_unit_test(test_storable_authorization_in_a_shared_cache),
        cmocka_unit_test(test_storable_partial_and_vary_star),
        cmocka_unit_test(test_describe_every_reason),
        cmocka_unit_test(test_usable_fresh_and_stale),
        cmocka_unit_test(test_usable_stored_no_cache_always_revalidates),
        cmocka_unit_test(test_usable_request_no_cache_and_max_age),
        cmocka_unit_test(test_usable_min_fresh),
        cmocka_unit_test(test_usable_max_stale),
        cmocka_unit_test(test_stale_while_revalidate_window),
        cmocka_unit_test(test_stale_if_error_windows),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
