// Invalidation (core/http/invalidation.h): unsafe methods and the URLs a response removes,
// with Location and Content-Location resolved as RFC 3986 §5.2 says.
#include "core/http/invalidation.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" {
#include <cmocka.h>
}

using namespace curlcache::core::http;

namespace {

std::string targets(std::string_view url, std::string_view lines) {
    std::string out;
    for (const std::string& target :
         invalidation_targets(url, "HTTP/1.1 201 Created\r\n" + std::string(lines) + "\r\n")) {
        out += target + " ";
    }
    return out;
}

std::string location(std::string_view base, std::string_view reference) {
    std::vector<std::string> found = invalidation_targets(
        base, "HTTP/1.1 303 See Other\r\nLocation: " + std::string(reference) + "\r\n\r\n");
    return found.size() == 2 ? found[1] : "(none)";
}

void test_safe_and_unsafe_methods(void**) {
    for (const char* safe : {"GET", "HEAD", "OPTIONS", "TRACE"}) {
        assert_false(is_unsafe(safe));
    }
    for (const char* unsafe : {"POST", "PUT", "DELETE", "PATCH", "PURGE", "get", "Head", ""}) {
        assert_true(is_unsafe(unsafe));
    }
}

void test_only_non_error_responses_invalidate(void**) {
    assert_true(invalidates("POST", 200));
    assert_true(invalidates("DELETE", 204));
    assert_true(invalidates("PUT", 303));
    assert_true(invalidates("PATCH", 399));
    assert_false(invalidates("POST", 199));
    assert_false(invalidates("POST", 400));
    assert_false(invalidates("POST", 500));
    assert_false(invalidates("GET", 200));
    assert_false(invalidates("HEAD", 204));
}

void test_request_url_alone_and_first(void**) {
    assert_string_equal(targets("http://example.test/a?x=1", "").c_str(),
                        "http://example.test/a?x=1 ");
    assert_string_equal(targets("http://example.test/a#frag", "").c_str(),
                        "http://example.test/a ");
}

void test_location_and_content_location_of_the_same_origin(void**) {
    assert_string_equal(targets("http://example.test/items",
                                "Location: /items/7\r\nContent-Location: http://example.test/c\r\n")
                            .c_str(),
                        "http://example.test/items http://example.test/items/7 "
                        "http://example.test/c ");
}

void test_other_origins_are_ignored(void**) {
    const char* const others[] = {"http://other.test/a",         "https://example.test/a",
                                  "http://example.test:8080/a",  "//other.test/a",
                                  "mailto:someone@example.test", "urn:isbn:1"};
    for (const char* other : others) {
        if (location("http://example.test/x", other) != "(none)") {
            fail_msg("kept %s", other);
        }
    }
}

void test_origin_compares_case_and_default_ports(void**) {
    assert_string_equal(location("http://example.test/x", "HTTP://EXAMPLE.test:80/y").c_str(),
                        "HTTP://EXAMPLE.test:80/y");
    assert_string_equal(location("https://example.test:443/x", "https://example.test/y").c_str(),
                        "https://example.test/y");
    assert_string_equal(location("http://u:p@example.test:0080/x", "http://example.test/y").c_str(),
                        "http://example.test/y");
    assert_string_equal(location("http://[::1]:8080/x", "/y").c_str(), "http://[::1]:8080/y");
    assert_string_equal(location("http://[::1]:8080/x", "http://[::1]/y").c_str(), "(none)");
}

void test_relative_references_resolve_as_rfc_3986_says(void**) {
    // RFC 3986 §5.4.1 normal examples (same origin only).
    const char* const base = "http://a/b/c/d;p?q";
    struct Case {
        const char* reference;
        const char* resolved;
    } cases[] = {{"g", "http://a/b/c/g"},
                 {"./g", "http://a/b/c/g"},
                 {"g/", "http://a/b/c/g/"},
                 {"/g", "http://a/g"},
                 {"?y", "http://a/b/c/d;p?y"},
                 {"g?y", "http://a/b/c/g?y"},
                 {"#s", "(none)"}, // the request URL itself
                 {"g#s", "http://a/b/c/g"},
                 {";x", "http://a/b/c/;x"},
                 {".", "http://a/b/c/"},
                 {"./", "http://a/b/c/"},
                 {"..", "http://a/b/"},
                 {"../g", "http://a/b/g"},
                 {"../..", "http://a/"},
                 {"../../g", "http://a/g"},
                 {"../../../g", "http://a/g"},
                 {"/./g", "http://a/g"},
                 {"/../g", "http://a/g"},
                 {"g.", "http://a/b/c/g."},
                 {"..g", "http://a/b/c/..g"},
                 {"./../g", "http://a/b/g"},
                 {"g/./h", "http://a/b/c/g/h"},
                 {"g/../h", "http://a/b/c/h"},
                 {"g;x=1/../y", "http://a/b/c/y"},
                 {"http://a/b/../z", "http://a/z"},
                 {"http:g", "(none)"}}; // strict: no authority, so no origin
    for (const Case& c : cases) {
        std::string got = location(base, c.reference);
        if (got != c.resolved) {
            fail_msg("%s -> %s, expected %s", c.reference, got.c_str(), c.resolved);
        }
    }
    assert_string_equal(location("http://a", "g").c_str(), "http://a/g");
    assert_string_equal(location("http://a?q", "").c_str(), "(none)");
}

void test_urls_without_scheme_are_http(void**) {
    assert_string_equal(targets("example.test/a", "Location: b\r\n").c_str(),
                        "example.test/a http://example.test/b ");
}

void test_no_duplicates(void**) {
    assert_string_equal(targets("http://h/a", "Location: /a\r\nContent-Location: /a\r\n").c_str(),
                        "http://h/a ");
    assert_string_equal(targets("http://h/a", "Location: /b\r\nContent-Location: b\r\n").c_str(),
                        "http://h/a http://h/b ");
}

void test_hostile_values_do_not_break(void**) {
    const char* const junk[] = {
        "",        ":",        "//",       "///",      "?",    "#", "../../../../..",
        "http://", "http://[", "\\\\evil", "%2e%2e/x", ":::::"};
    for (const char* value : junk) {
        (void)location("http://h/a/b", value);
        (void)location("", value);
        (void)location(value, value);
    }
    assert_string_equal(location("http://h/a/b", "%2e%2e/x").c_str(), "http://h/a/%2e%2e/x");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safe_and_unsafe_methods),
        cmocka_unit_test(test_only_non_error_responses_invalidate),
        cmocka_unit_test(test_request_url_alone_and_first),
        cmocka_unit_test(test_location_and_content_location_of_the_same_origin),
        cmocka_unit_test(test_other_origins_are_ignored),
        cmocka_unit_test(test_origin_compares_case_and_default_ports),
        cmocka_unit_test(test_relative_references_resolve_as_rfc_3986_says),
        cmocka_unit_test(test_urls_without_scheme_are_http),
        cmocka_unit_test(test_no_duplicates),
        cmocka_unit_test(test_hostile_values_do_not_break),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
