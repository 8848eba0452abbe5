// Policy rules (core/policy.h): mode, methods, codes, size, URL rules, no-store, expiry.
#include "core/policy.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" {
#include <cmocka.h>
}

#include "tests/core/scratch.h"

using namespace curlcache;
using namespace curlcache::core;
using policy::Verdict;

namespace {

Entry response(long status, std::string_view headers, std::string_view body = "body") {
    Entry entry;
    entry.method = "GET";
    entry.url = "http://example.test/path";
    entry.status = status;
    entry.header_blocks = {"HTTP/1.1 " + std::to_string(status) + " X\r\n" + std::string(headers) +
                           "\r\n"};
    entry.body = body;
    return entry;
}

void test_off_and_disable_touch_nothing(void**) {
    config::Settings settings;
    settings.mode = config::Mode::off;
    assert_int_equal(policy::request(settings, "GET", "http://h/"), Verdict::disabled);
    assert_false(policy::may_serve(settings));
    assert_int_equal(policy::store(settings, response(200, "")), Verdict::disabled);
    config::Settings disabled;
    disabled.disable = true;
    assert_int_equal(policy::request(disabled, "GET", "http://h/"), Verdict::disabled);
    assert_false(policy::may_serve(disabled));
}

void test_normal_mode_serves_fetches_and_stores(void**) {
    config::Settings settings;
    assert_int_equal(policy::request(settings, "GET", "http://h/"), Verdict::ok);
    assert_true(policy::may_serve(settings));
    assert_true(policy::may_fetch(settings));
    assert_false(policy::serve_stale(settings));
    assert_int_equal(policy::store(settings, response(200, "")), Verdict::ok);
}

void test_readonly_serves_but_never_stores(void**) {
    config::Settings settings;
    settings.mode = config::Mode::readonly;
    assert_true(policy::may_serve(settings));
    assert_int_equal(policy::store(settings, response(200, "")), Verdict::mode);
}

void test_refresh_never_serves_but_stores(void**) {
    config::Settings settings;
    settings.mode = config::Mode::refresh;
    assert_false(policy::may_serve(settings));
    assert_true(policy::may_fetch(settings));
    assert_int_equal(policy::store(settings, response(200, "")), Verdict::ok);
}

void test_offline_serves_stale_and_never_fetches(void**) {
    config::Settings settings;
    settings.mode = config::Mode::offline;
    assert_true(policy::may_serve(settings));
    assert_true(policy::serve_stale(settings));
    assert_false(policy::may_fetch(settings));
}

void test_only_allowable_methods_case_insensitive(void**) {
    config::Settings settings;
    assert_int_equal(policy::request(settings, "head", "http://h/"), Verdict::ok);
    assert_int_equal(policy::request(settings, "POST", "http://h/"), Verdict::method);
    settings.allowable_methods = {"GET", "POST"};
    assert_int_equal(policy::request(settings, "POST", "http://h/"), Verdict::ok);
    Entry post = response(200, "");
    post.method = "DELETE";
    assert_int_equal(policy::store(settings, post), Verdict::method);
}

void test_only_allowable_codes_are_stored(void**) {
    config::Settings settings;
    settings.hermetic = true;
    assert_int_equal(policy::store(settings, response(404, "")), Verdict::status);
    settings.allowable_codes = {200, 404};
    assert_int_equal(policy::store(settings, response(404, "")), Verdict::ok);
    assert_int_equal(policy::store(settings, response(500, "")), Verdict::status);
}

void test_bodies_over_max_entry_size_are_not_stored(void**) {
    config::Settings settings;
    settings.max_entry_size = 4;
    assert_int_equal(policy::store(settings, response(200, "", "1234")), Verdict::ok);
    assert_int_equal(policy::store(settings, response(200, "", "12345")), Verdict::too_large);
}

void test_cache_control_no_store_is_honoured_on_last_response(void**) {
    config::Settings settings;
    assert_int_equal(policy::store(settings, response(200, "Cache-Control: no-store\r\n")),
                     Verdict::no_store);
    assert_int_equal(
        policy::store(settings, response(200, "cache-control: private, NO-STORE \r\n")),
        Verdict::no_store);
    assert_int_equal(policy::store(settings, response(200, "Cache-Control: no-cache\r\n")),
                     Verdict::ok);
    assert_int_equal(policy::store(settings, response(200, "X-Note: no-store\r\n")), Verdict::ok);
    assert_int_equal(policy::store(settings, response(200, "Cache-Control: max-age=0\r\n")),
                     Verdict::ok); // freshness comes from the config, not the origin
    // A redirect hop that said no-store does not decide for the final response.
    Entry chain = response(200, "");
    chain.header_blocks.insert(chain.header_blocks.begin(),
                               "HTTP/1.1 302 Found\r\nCache-Control: no-store\r\n\r\n");
    assert_int_equal(policy::store(settings, chain), Verdict::ok);
}

void test_url_rules_first_match_wins_and_do_not_cache(void**) {
    config::Settings settings;
    settings.expire_after = 100;
    settings.urls_expire_after = {
        {"*.example.test/static/*", true, 3600},
        {"*.example.test/private/*", false, -1},
        {"*.example.test/*", true, 60},
        {"localhost:8080/*", true, 5},
    };
    int64_t now = 1000;
    assert_int_equal(policy::expires_at(settings, "https://www.example.test/static/a.css", now),
                     4600);
    assert_int_equal(policy::expires_at(settings, "https://www.example.test/other", now), 1060);
    assert_int_equal(policy::expires_at(settings, "https://elsewhere.test/x", now), 1100);
    assert_int_equal(policy::expires_at(settings, "http://localhost:8080/x", now), 1005);
    assert_int_equal(policy::request(settings, "GET", "https://a.example.test/private/k?x=1"),
                     Verdict::url_rule);
    assert_int_equal(policy::request(settings, "GET", "https://a.example.test/public"),
                     Verdict::ok);
    Entry entry = response(200, "");
    entry.url = "https://a.example.test/private/k";
    assert_int_equal(policy::store(settings, entry), Verdict::url_rule);
}

void test_url_rules_match_host_with_or_without_port(void**) {
    assert_true(policy::url_rule_matches("127.0.0.1/*", "http://127.0.0.1:8080/a"));
    assert_true(policy::url_rule_matches("127.0.0.1:8080/*", "http://127.0.0.1:8080/a"));
    assert_false(policy::url_rule_matches("127.0.0.1:9999/*", "http://127.0.0.1:8080/a"));
    assert_true(policy::url_rule_matches("h/", "http://h"));
    assert_false(policy::url_rule_matches("*y=/a", "http://h/a?x=1&y=/a")); // query is not path
    assert_true(policy::url_rule_matches("h/a", "http://h/a?x=1&y=/a"));
    assert_true(policy::url_rule_matches("h/a", "http://u:p@h/a"));
}

void test_expire_after_never_and_zero(void**) {
    config::Settings settings;
    assert_int_equal(policy::expires_at(settings, "http://h/", 1000), 0); // -1: never
    settings.expire_after = 0;
    int64_t expires = policy::expires_at(settings, "http://h/", 1000);
    Entry entry;
    entry.expires = expires;
    assert_false(entry.fresh(1000)); // stale at once
}

// Without hermetic the RFC decides what is stored: heuristically cacheable codes, others
// only with explicit freshness; allowable_codes narrows that only when the user set it.
void test_http_rules_decide_storable_statuses(void**) {
    config::Settings settings;
    assert_int_equal(policy::store(settings, response(404, "")), Verdict::ok);
    assert_int_equal(policy::store(settings, response(301, "")), Verdict::ok);
    assert_int_equal(policy::store(settings, response(500, "")), Verdict::http);
    assert_int_equal(policy::store(settings, response(500, "Cache-Control: max-age=60\r\n")),
                     Verdict::ok);
    assert_int_equal(policy::store(settings, response(200, "Cache-Control: no-store\r\n")),
                     Verdict::no_store);
    settings.allowable_codes = {200};
    settings.origins["allowable_codes"] = config::Origin{config::Origin::Kind::file, "c:1"};
    assert_int_equal(policy::store(settings, response(404, "")), Verdict::status);
    // private responses in a shared cache, and a shared cache's Authorization rule.
    Entry secret = response(200, "Cache-Control: private, max-age=60\r\n");
    assert_int_equal(policy::store(settings, secret), Verdict::ok);
    settings.cache_type = config::CacheType::shared_cache;
    assert_int_equal(policy::store(settings, secret), Verdict::http);
    policy::StoreRequest with_credentials;
    with_credentials.authorization = true;
    Entry plain = response(200, "Cache-Control: max-age=60\r\n");
    assert_int_equal(policy::store(settings, plain, 4, with_credentials), Verdict::http);
    Entry open = response(200, "Cache-Control: public, max-age=60\r\n");
    assert_int_equal(policy::store(settings, open, 4, with_credentials), Verdict::ok);
}

// stamp_freshness puts the origin's lifetime into expires (one comparison per hit); the
// configured lifetime stands in only where the origin gave none, or always when hermetic.
void test_stamp_freshness_follows_origin_or_config(void**) {
    config::Settings settings;
    Entry fresh = response(200, "Cache-Control: max-age=100\r\n");
    fresh.created = 5000;
    policy::stamp_freshness(settings, fresh);
    assert_int_equal(fresh.expires, 5100);
    assert_true(fresh.fresh(5099));
    assert_false(fresh.fresh(5100));

    Entry revalidate = response(200, "Cache-Control: no-cache, max-age=100\r\n");
    revalidate.created = 5000;
    policy::stamp_freshness(settings, revalidate);
    assert_false(revalidate.fresh(5000));

    Entry bare = response(200, "");
    bare.created = 5000;
    policy::stamp_freshness(settings, bare); // no lifetime, no Last-Modified: stale at once
    assert_false(bare.fresh(5000));
    settings.expire_after = 60; // the user's lifetime replaces the heuristic...
    policy::stamp_freshness(settings, bare);
    assert_int_equal(bare.expires, 5060);
    policy::stamp_freshness(settings, fresh); // ...but not the origin's own
    assert_int_equal(fresh.expires, 5100);

    settings.hermetic = true;
    settings.expire_after = config::Settings::k_auto; // hermetic + auto: never
    policy::stamp_freshness(settings, revalidate);
    assert_int_equal(revalidate.expires, 0);
    assert_true(revalidate.fresh(1u << 30));
}

void test_glob_matching(void**) {
    assert_true(policy::glob_match("*", ""));
    assert_true(policy::glob_match("a*c", "abbbc"));
    assert_true(policy::glob_match("a?c", "abc"));
    assert_false(policy::glob_match("a?c", "ac"));
    assert_true(policy::glob_match("http://h/*/x", "http://h/a/b/x"));
    assert_false(policy::glob_match("http://h/*", "https://h/a"));
    assert_true(policy::glob_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaab"));
    assert_false(policy::glob_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa"));
    assert_false(policy::glob_match("A", "a")); // case-sensitive
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_and_disable_touch_nothing),
        cmocka_unit_test(test_normal_mode_serves_fetches_and_stores),
        cmocka_unit_test(test_readonly_serves_but_never_stores),
        cmocka_unit_test(test_refresh_never_serves_but_stores),
        cmocka_unit_test(test_offline_serves_stale_and_never_fetches),
        cmocka_unit_test(test_only_allowable_methods_case_insensitive),
        cmocka_unit_test(test_only_allowable_codes_are_stored),
        cmocka_unit_test(test_bodies_over_max_entry_size_are_not_stored),
        cmocka_unit_test(test_cache_control_no_store_is_honoured_on_last_response),
        cmocka_unit_test(test_url_rules_first_match_wins_and_do_not_cache),
        cmocka_unit_test(test_url_rules_match_host_with_or_without_port),
        cmocka_unit_test(test_expire_after_never_and_zero),
        cmocka_unit_test(test_http_rules_decide_storable_statuses),
        cmocka_unit_test(test_stamp_freshness_follows_origin_or_config),
        cmocka_unit_test(test_glob_matching),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
