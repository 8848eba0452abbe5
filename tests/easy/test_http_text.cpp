// The engine's HTTP text helpers and option recording, without a network.
#include "core/easy/cookies.h"
#include "core/easy/handle_state.h"
#include "core/easy/http_text.h"
#include "core/easy/request_plan.h"
#include "core/key.h"

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

using namespace curlcache::core::easy;

namespace {

void test_status_code_reads_http1_and_http2_lines(void**) {
    assert_int_equal(status_code("HTTP/1.1 200 OK\r\n").value_or(0), 200);
    assert_int_equal(status_code("HTTP/2 304 \r\n").value_or(0), 304);
    assert_false(status_code("Content-Type: x\r\n").has_value());
    assert_false(status_code("HTTP/1.1 20 OK\r\n").has_value());
    assert_true(status_protocol("HTTP/2 200 \r\n") == "HTTP/2");
}

void test_header_value_is_case_insensitive_and_trimmed(void**) {
    std::string block = "HTTP/1.1 200 OK\r\nETag:  \"x\" \r\ncontent-type: a/b\r\n\r\n";
    assert_true(header_value(block, "etag").value_or("") == "\"x\"");
    assert_true(header_value(block, "Content-Type").value_or("") == "a/b");
    assert_false(header_value(block, "Missing").has_value());
}

void test_http_dates_in_all_three_forms(void**) {
    const int64_t expected = 784111777; // Sun, 06 Nov 1994 08:49:37 GMT
    assert_int_equal(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").value_or(0), expected);
    assert_int_equal(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").value_or(0), expected);
    assert_int_equal(parse_http_date("Sun Nov  6 08:49:37 1994").value_or(0), expected);
    assert_false(parse_http_date("yesterday").has_value());
}

void test_etag_matching_is_weak_and_takes_lists(void**) {
    assert_true(etag_matches("\"a\"", "\"a\""));
    assert_true(etag_matches("W/\"a\"", "\"a\""));
    assert_true(etag_matches("\"b\", \"a\"", "W/\"a\""));
    assert_true(etag_matches("*", "\"a\""));
    assert_false(etag_matches("\"b\"", "\"a\""));
    assert_false(etag_matches("\"a\"", ""));
}

void test_ranges_are_single_and_satisfiable(void**) {
    auto r = parse_range("10-19", 100);
    assert_true(r && r->first == 10 && r->last == 19);
    r = parse_range("90-", 100);
    assert_true(r && r->first == 90 && r->last == 99);
    r = parse_range("-5", 100);
    assert_true(r && r->first == 95 && r->last == 99);
    r = parse_range("50-500", 100);
    assert_true(r && r->last == 99);
    assert_false(parse_range("100-", 100).has_value()); // past the end: the origin says 416
    assert_false(parse_range("0-1,5-6", 100).has_value());
    assert_false(parse_range("9-3", 100).has_value());
    assert_false(parse_range("x-", 100).has_value());
}

void test_userinfo_is_removed_and_put_back(void**) {
    const char* url = "http://user:pw@host:8080/p?q=a@b";
    assert_true(url_userinfo(url) == "user:pw");
    assert_true(without_userinfo(url) == "http://host:8080/p?q=a@b");
    assert_true(with_userinfo("http://host/p", "u:p") == "http://u:p@host/p");
    assert_true(url_userinfo("http://host/p@x").empty());
}

OptionArg number(long v) {
    OptionArg a{};
    a.number = v;
    return a;
}

OptionArg pointer(const void* p) {
    OptionArg a{};
    a.pointer = const_cast<void*>(p);
    return a;
}

void test_method_follows_libcurl_option_rules(void**) {
    Options o;
    record_option(o, CURLOPT_NOBODY, number(1));
    assert_true(o.method == MethodKind::head);
    record_option(o, CURLOPT_NOBODY, number(0));
    assert_true(o.method == MethodKind::get);
    record_option(o, CURLOPT_POSTFIELDS, pointer("a=1"));
    assert_true(o.method == MethodKind::post);
    record_option(o, CURLOPT_HTTPGET, number(1));
    assert_true(o.method == MethodKind::get);
    record_option(o, CURLOPT_POSTFIELDSIZE, number(2));
    record_option(o, CURLOPT_COPYPOSTFIELDS, pointer("xyz"));
    assert_true(o.copied_postfields && *o.copied_postfields == "xy");
}

void test_plan_passes_through_what_it_cannot_answer(void**) {
    curlcache::config::Settings settings;
    Options o;
    assert_non_null(plan_transfer(o, settings).passthrough); // no URL
    o.url = "ftp://host/file";
    assert_non_null(plan_transfer(o, settings).passthrough);
    o.url = "http://host/";
    assert_null(plan_transfer(o, settings).passthrough);
    record_option(o, CURLOPT_UPLOAD, number(1));
    assert_non_null(plan_transfer(o, settings).passthrough);
    record_option(o, CURLOPT_UPLOAD, number(0));
    record_option(o, CURLOPT_POSTFIELDS, pointer("a=1"));
    assert_non_null(plan_transfer(o, settings).passthrough); // POST is not an allowed method
    settings.allowable_methods.push_back("POST");
    Plan plan = plan_transfer(o, settings);
    assert_null(plan.passthrough);
    assert_string_equal(plan.request.body.c_str(), "a=1");
}

void test_plan_keeps_conditions_and_credentials_out_of_headers(void**) {
    curlcache::config::Settings settings;
    Options o;
    o.url = "http://user:pw@host/";
    curl_slist inm{const_cast<char*>("If-None-Match: \"v1\""), nullptr};
    curl_slist auth{const_cast<char*>("Authorization: Bearer t"), &inm};
    curl_slist accept{const_cast<char*>("Accept: application/json"), &auth};
    curl_slist host{const_cast<char*>("Host: other.example"), &accept};
    o.httpheader = &host;
    Plan plan = plan_transfer(o, settings);
    assert_null(plan.passthrough);
    assert_true(plan.if_none_match.value_or("") == "\"v1\"");
    assert_int_equal(plan.request.headers.size(), 2); // Host and Accept
    assert_non_null(strstr(plan.request.credentials.c_str(), "Bearer t"));
    assert_non_null(strstr(plan.request.credentials.c_str(), "user:pw"));
    bool accept_in_key = false, host_in_key = false;
    for (const auto& [name, value] : plan.request.options) {
        accept_in_key |= name == "header:accept" && value == "application/json";
        host_in_key |= name == "header:host" && value == "other.example";
    }
    assert_true(accept_in_key);
    assert_true(host_in_key);
}

// CURLOPT_HTTP_VERSION splits entries only where libcurl 7.88 answers differently: the
// curl CLI always sets 2TLS (libcurl's default), pycurl and a HAR import set nothing.
void test_http_version_splits_keys_only_where_the_response_differs(void**) {
    curlcache::config::Settings settings;
    auto key_for = [&](const char* url, long version) {
        Options o;
        o.url = url;
        record_option(o, CURLOPT_HTTP_VERSION, number(version));
        Plan plan = plan_transfer(o, settings);
        assert_null(plan.passthrough);
        return curlcache::core::make_key(plan.request, settings);
    };
    const char* plain = "http://host/x";
    const auto plain_default = key_for(plain, CURL_HTTP_VERSION_NONE);
    assert_true(key_for(plain, CURL_HTTP_VERSION_2TLS) == plain_default);
    assert_true(key_for(plain, CURL_HTTP_VERSION_1_1) == plain_default);
    assert_false(key_for(plain, CURL_HTTP_VERSION_1_0) == plain_default);
    assert_false(key_for(plain, CURL_HTTP_VERSION_2_0) == plain_default); // h2c upgrade
    assert_false(key_for(plain, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE) == plain_default);
    const char* tls = "https://host/x";
    const auto tls_default = key_for(tls, CURL_HTTP_VERSION_NONE);
    assert_true(key_for(tls, CURL_HTTP_VERSION_2TLS) == tls_default);
    assert_true(key_for(tls, CURL_HTTP_VERSION_2_0) == tls_default);
    assert_false(key_for(tls, CURL_HTTP_VERSION_1_1) == tls_default); // no HTTP/2 then
    assert_false(key_for(tls, CURL_HTTP_VERSION_3) == tls_default);
    // The scheme in any case is TLS: the same key as the lower-case URL's for each version.
    for (long version : {CURL_HTTP_VERSION_NONE, CURL_HTTP_VERSION_2_0, CURL_HTTP_VERSION_1_1}) {
        assert_true(key_for("HTTPS://host/x", version) == key_for(tls, version));
    }
}

// The request's Cache-Control (or Pragma) is read for its directives; a Range header of
// one byte range becomes the plan's range.
void test_plan_reads_request_directives_and_range_header(void**) {
    curlcache::config::Settings settings;
    Options o;
    o.url = "http://host/";
    curl_slist range{const_cast<char*>("Range: bytes=10-19"), nullptr};
    curl_slist cc{const_cast<char*>("Cache-Control: max-stale=60, min-fresh=5"), &range};
    o.httpheader = &cc;
    Plan plan = plan_transfer(o, settings);
    assert_null(plan.passthrough);
    assert_true(plan.cache_control.has_value());
    assert_int_equal(plan.cache_control->max_stale.value_or(-1), 60);
    assert_int_equal(plan.cache_control->min_fresh.value_or(-1), 5);
    assert_true(plan.range.value_or("") == "10-19");
    curl_slist two{const_cast<char*>("Range: bytes=0-1,5-6"), nullptr};
    o.httpheader = &two;
    assert_non_null(plan_transfer(o, settings).passthrough); // several ranges
    o.httpheader = nullptr;
    assert_false(plan_transfer(o, settings).cache_control.has_value());
}

void test_cookie_lines_follow_libcurl_rules(void**) {
    auto line = cookie_file_line("a=1", "http://Example.com:8080/x/y?q", 1000);
    assert_true(line.value_or("") == "example.com\tFALSE\t/x/\tFALSE\t0\ta\t1");
    line = cookie_file_line("b=2; Domain=.example.com; Path=/p; Max-Age=60; Secure; HttpOnly",
                            "https://www.example.com/", 1000);
    assert_true(line.value_or("") == "#HttpOnly_.example.com\tTRUE\t/p\tTRUE\t1060\tb\t2");
    line = cookie_file_line("c=3; Expires=Wed, 01 Jan 2031 00:00:00 GMT", "http://h/", 0);
    assert_true(line.value_or("") == "h\tFALSE\t/\tFALSE\t1924992000\tc\t3");
    assert_false(cookie_file_line("d=4; Domain=other.com", "http://example.com/", 0).has_value());
    assert_false(cookie_file_line("noequals", "http://example.com/", 0).has_value());
    assert_true(resolve_location("http://h/a/b?q", "c") == "http://h/a/c");
    assert_true(resolve_location("http://h/a/b", "/c") == "http://h/c");
    assert_true(resolve_location("http://h", "c") == "http://h/c");
}

void test_lines_are_walked_as_split_lines_cuts_them(void**) {
    for (std::string_view block : {std::string_view("HTTP/1.1 200 OK\r\nA: 1\r\n\r\n"),
                                   std::string_view(""), std::string_view("no newline"),
                                   std::string_view("a\n\nb\r\nlast"), std::string_view("\n")}) {
        std::vector<std::string_view> walked;
        for (std::string_view line : lines_of(block)) {
            walked.push_back(line);
        }
        assert_true(walked == split_lines(block));
    }
}

void test_url_parts_are_kept_per_url_and_settings(void**) {
    using curlcache::core::normalize_url;
    using curlcache::core::url_credentials;
    curlcache::config::Settings settings;
    UrlMemo memo;
    const std::string a = "HTTP://u:p@Example.com:80/x/../y?b=2&a=1&t=9#f";
    const curlcache::core::UrlParts& first = remembered_url_parts(memo, a, settings);
    assert_true(first.normalized == normalize_url(a, settings));
    assert_true(first.userinfo == url_credentials(a));
    // Another URL, then settings that change the normalised form: never the kept parts.
    const std::string b = "http://example.com/z";
    assert_true(remembered_url_parts(memo, b, settings).normalized == normalize_url(b, settings));
    assert_true(remembered_url_parts(memo, b, settings).userinfo.empty());
    settings.ignored_parameters = {"t"};
    assert_true(remembered_url_parts(memo, a, settings).normalized == normalize_url(a, settings));
    settings.sort_query = !settings.sort_query;
    assert_true(remembered_url_parts(memo, a, settings).normalized == normalize_url(a, settings));
    assert_true(normalize_url(a, settings).find("t=9") == std::string::npos);
}

// The key the handle's memo gives for the plan of `o`'s next transfer; it must be the key a
// fresh computation gives (from the request alone, with no memo of any kind).
curlcache::core::Key memo_key(const Options& o, const curlcache::config::Settings& settings,
                              UrlMemo& url_memo, curlcache::core::KeyMemo& key_memo) {
    const Plan plan = plan_transfer(o, settings, &url_memo);
    assert_null(plan.passthrough);
    assert_non_null(plan.url_parts);
    const curlcache::core::Key kept =
        curlcache::core::make_key(plan.request, settings, *plan.url_parts, key_memo);
    assert_true(kept == curlcache::core::make_key(plan.request, settings));
    return kept;
}

// Each input of the key changed between two transfers of one handle, by setopt or in the
// program's own memory (POSTFIELDS and HTTPHEADER bytes rewritten in place, as libcurl
// reads them at perform): the second transfer gets the key a fresh computation gives, never
// the memo's. Each step also checks that the change does change the key, so that a memo
// that stopped comparing that input fails here.
void test_key_memo_gives_the_fresh_key_whatever_changed(void**) {
    using curlcache::core::Key;
    curlcache::config::Settings settings;
    settings.name = "/tmp/one.sqlite";
    settings.backend = {"sqlite"};
    settings.allowable_methods = {"GET", "HEAD", "POST", "FETCH"};
    settings.match_headers = {"X-Var"};
    UrlMemo url_memo;
    curlcache::core::KeyMemo key_memo;
    Options o;
    o.url = "http://host/a";
    Key last = memo_key(o, settings, url_memo, key_memo);
    auto changed = [&](const char* what) {
        const Key key = memo_key(o, settings, url_memo, key_memo);
        if (key == last) {
            print_error("the key did not change with %s\n", what);
        }
        assert_false(key == last);
        // The same request again: the memo's key, still the fresh one.
        assert_true(memo_key(o, settings, url_memo, key_memo) == key);
        assert_true(key_memo.valid);
        last = key;
    };
    // Nothing changed: the kept key.
    assert_true(memo_key(o, settings, url_memo, key_memo) == last);
    assert_true(key_memo.valid);

    o.custom_request = "FETCH"; // the method
    changed("the method");
    o.custom_request.reset();
    changed("the method back");

    o.url = "http://host/b"; // the URL
    changed("the URL");

    char body[] = "a=1"; // POSTFIELDS, then its bytes rewritten in place
    record_option(o, CURLOPT_POSTFIELDS, pointer(body));
    changed("a POST body");
    body[2] = '2';
    changed("the POST body's bytes");

    char var[] = "X-Var: one"; // a matched header, then its bytes rewritten in place
    char other[] = "X-Other: 1";
    curl_slist other_item{other, nullptr};
    curl_slist var_item{var, &other_item};
    record_option(o, CURLOPT_HTTPHEADER, pointer(&var_item));
    changed("a matched header");
    std::memcpy(var + 7, "two", 3);
    changed("the matched header's bytes");
    other[9] = '2'; // not matched: not part of the key
    assert_true(memo_key(o, settings, url_memo, key_memo) == last);

    record_option(o, CURLOPT_FOLLOWLOCATION, number(1)); // the key options
    changed("FOLLOWLOCATION");
    char accept[] = "Accept: text/html"; // an option read from the header list, in place
    curl_slist accept_item{accept, nullptr};
    other_item.next = &accept_item;
    changed("an Accept header");
    std::memcpy(accept + 8, "TEXT", 4);
    changed("the Accept header's bytes");

    record_option(o, CURLOPT_USERPWD, pointer("alice:one")); // the credentials
    changed("USERPWD");
    record_option(o, CURLOPT_USERPWD, pointer("alice:two"));
    changed("another USERPWD");
    char auth[] = "Authorization: Bearer t1"; // credentials from the header list, in place
    curl_slist auth_item{auth, nullptr};
    accept_item.next = &auth_item;
    changed("an Authorization header");
    auth[23] = '2';
    changed("the Authorization header's bytes");
    o.url = "http://u:p@host/b"; // credentials in the URL (the normalised URL is the same)
    changed("the URL's userinfo");

    // The settings the key is worked out under: another cache (the credentials' salt), and
    // another match_headers.
    curlcache::config::Settings other_cache = settings;
    other_cache.name = "/tmp/two.sqlite";
    assert_false(memo_key(o, other_cache, url_memo, key_memo) == last);
    last = memo_key(o, settings, url_memo, key_memo);
    curlcache::config::Settings no_match = settings;
    no_match.match_headers.clear();
    assert_false(memo_key(o, no_match, url_memo, key_memo) == last);
    assert_true(memo_key(o, settings, url_memo, key_memo) == last);

    // Taken away again, each alone: the credentials (with no header lines at all), then the
    // matched header (with no credentials).
    o.url = "http://host/b";
    accept_item.next = nullptr;
    other_item.next = nullptr;
    record_option(o, CURLOPT_HTTPHEADER, pointer(nullptr));
    changed("no header lines");
    record_option(o, CURLOPT_USERPWD, pointer(nullptr));
    changed("no credentials");
    record_option(o, CURLOPT_HTTPHEADER, pointer(&var_item));
    changed("the matched header again");
    record_option(o, CURLOPT_HTTPHEADER, pointer(nullptr));
    changed("no matched header");
}

// A body larger than 64 KiB is not kept by the memo; its key is still the right one.
void test_key_memo_leaves_large_bodies_alone(void**) {
    curlcache::config::Settings settings;
    settings.allowable_methods = {"POST"};
    UrlMemo url_memo;
    curlcache::core::KeyMemo key_memo;
    Options o;
    o.url = "http://host/upload";
    std::string body((64u << 10) + 1, 'x');
    record_option(o, CURLOPT_POSTFIELDS, pointer(body.data()));
    record_option(o, CURLOPT_POSTFIELDSIZE, number(static_cast<long>(body.size())));
    const curlcache::core::Key first = memo_key(o, settings, url_memo, key_memo);
    assert_false(key_memo.valid);
    assert_true(key_memo.body.empty());
    body.back() = 'y';
    assert_false(memo_key(o, settings, url_memo, key_memo) == first);
    body.resize(100);
    record_option(o, CURLOPT_POSTFIELDSIZE, number(100));
    memo_key(o, settings, url_memo, key_memo);
    assert_true(key_memo.valid);
}

// is_http_url() reads the scheme in place; it must say what the scheme before the URL's
// first "://" says (http or https in any case).
void test_http_urls_are_those_whose_scheme_is_http(void**) {
    auto reference = [](std::string_view url) {
        const size_t colon = url.find("://");
        if (colon == std::string_view::npos) {
            return false;
        }
        const std::string_view scheme = url.substr(0, colon);
        return iequals(scheme, "http") || iequals(scheme, "https");
    };
    const char* urls[] = {"http://h/",  "HTTP://h",   "HtTpS://h/x", "https://",  "http://",
                          "https:/h",   "http:/h",    "httpx://h",   "ftp://h/",  "http",
                          "",           "h/http://x", "xhttp://h",   "http:://h", "https ://h",
                          "hTTp://a@b", "HTTPS:///",  "httP:",       "https",     "http\xC8://h"};
    for (const char* url : urls) {
        if (is_http_url(url) != reference(url)) {
            print_error("%s\n", url);
        }
        assert_true(is_http_url(url) == reference(url));
    }
}

} // namespace

int main() {
    const CMUnitTest tests[] = {
        cmocka_unit_test(test_status_code_reads_http1_and_http2_lines),
        cmocka_unit_test(test_header_value_is_case_insensitive_and_trimmed),
        cmocka_unit_test(test_http_dates_in_all_three_forms),
        cmocka_unit_test(test_etag_matching_is_weak_and_takes_lists),
        cmocka_unit_test(test_ranges_are_single_and_satisfiable),
        cmocka_unit_test(test_userinfo_is_removed_and_put_back),
        cmocka_unit_test(test_method_follows_libcurl_option_rules),
        cmocka_unit_test(test_plan_passes_through_what_it_cannot_answer),
        cmocka_unit_test(test_plan_keeps_conditions_and_credentials_out_of_headers),
        cmocka_unit_test(test_cookie_lines_follow_libcurl_rules),
        cmocka_unit_test(test_http_version_splits_keys_only_where_the_response_differs),
        cmocka_unit_test(test_plan_reads_request_directives_and_range_header),
        cmocka_unit_test(test_lines_are_walked_as_split_lines_cuts_them),
        cmocka_unit_test(test_url_parts_are_kept_per_url_and_settings),
        cmocka_unit_test(test_key_memo_gives_the_fresh_key_whatever_changed),
        cmocka_unit_test(test_key_memo_leaves_large_bodies_alone),
        cmocka_unit_test(test_http_urls_are_those_whose_scheme_is_http),
    };
    return cmocka_run_group_tests_name("easy_http_text", tests, nullptr, nullptr);
}
