// Vary (core/http/vary.h): nominated names and the canonical text of a request's values.
#include "core/http/vary.h"

#include <algorithm>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include <cmocka.h>
}

using namespace curlcache::core::http;

namespace {

using Lines = std::vector<std::string>;

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& name : names) {
        out += name + "|";
    }
    return out;
}

void test_no_vary_gives_no_names(void**) {
    assert_true(vary_names("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n").empty());
    assert_true(vary_names("").empty());
    assert_true(vary_names("HTTP/1.1 200 OK\r\nVary:\r\n\r\n").empty());
    assert_true(vary_names("HTTP/1.1 200 OK\r\nVary: , ,\r\n\r\n").empty());
}

void test_names_are_lower_case_sorted_and_unique(void**) {
    auto names = vary_names("HTTP/1.1 200 OK\r\nVary: User-Agent, Accept-Encoding\r\n"
                            "vary: accept-encoding,Origin\r\nX-Vary: Cookie\r\n\r\n");
    assert_string_equal(joined(names).c_str(), "accept-encoding|origin|user-agent|");
}

void test_star_wins(void**) {
    auto names = vary_names("HTTP/1.1 200 OK\r\nVary: Accept\r\nVary: Origin, *\r\n\r\n");
    assert_string_equal(joined(names).c_str(), "*|");
    for (const char* lines : {"Vary: *\n", "Vary: *, *\n", "Vary: *\nVary: *\n", "Vary: , *\n",
                              "Vary:\nVary: *\n", "Vary: *, Foo\n", "Vary: Foo, *\n"}) {
        assert_string_equal(joined(vary_names("HTTP/2 200\n" + std::string(lines) + "\n")).c_str(),
                            "*|");
    }
}

void test_variant_of_absent_empty_and_present(void**) {
    Lines names = {"accept", "accept-language", "x-empty"};
    Lines request = {"Accept: text/html", "X-Empty;"};
    assert_string_equal(variant_of(names, request).c_str(),
                        "accept:text/html\naccept-language\nx-empty:\n");
    assert_string_equal(variant_of({}, request).c_str(), "");
}

void test_variant_of_names_compare_case_insensitively(void**) {
    Lines names = {"accept-encoding"};
    assert_string_equal(variant_of(names, {"ACCEPT-ENCODING: gzip"}).c_str(),
                        "accept-encoding:gzip\n");
}

void test_variant_of_values_keep_their_case(void**) {
    Lines names = {"accept-encoding"};
    assert_string_not_equal(variant_of(names, {"Accept-Encoding: GZIP"}).c_str(),
                            variant_of(names, {"Accept-Encoding: gzip"}).c_str());
}

void test_variant_of_joins_lines_and_folds_whitespace(void**) {
    Lines names = {"accept"};
    std::string one_line = variant_of(names, {"Accept: text/html ,  image/png,\t*/*"});
    std::string two_lines = variant_of(names, {"Accept: text/html", "Accept:  image/png , */*  "});
    assert_string_equal(one_line.c_str(), "accept:text/html,image/png,*/*\n");
    assert_string_equal(two_lines.c_str(), one_line.c_str());
    assert_string_equal(variant_of(names, {"Accept: a   b\t\tc"}).c_str(), "accept:a b c\n");
    assert_string_not_equal(variant_of(names, {"Accept: a b"}).c_str(),
                            variant_of(names, {"Accept: ab"}).c_str());
}

void test_variant_of_follows_libcurl_header_lists(void**) {
    Lines names = {"accept"};
    // "Accept:" removes the header in libcurl: nothing is sent.
    assert_string_equal(variant_of(names, {"Accept:"}).c_str(), "accept\n");
    assert_string_equal(variant_of(names, {"Accept: "}).c_str(), "accept\n");
    // "Accept;" sends it empty.
    assert_string_equal(variant_of(names, {"Accept;"}).c_str(), "accept:\n");
    assert_string_equal(variant_of(names, {"Accept: x\r\n"}).c_str(), "accept:x\n");
    assert_string_equal(variant_of(names, {"garbage", "", ":", "Accept-X: y"}).c_str(), "accept\n");
}

void test_variant_of_orders_by_names(void**) {
    Lines request = {"B: 2", "A: 1"};
    assert_string_equal(variant_of({"a", "b"}, request).c_str(), "a:1\nb:2\n");
    assert_string_equal(variant_of({"b", "a"}, request).c_str(), "b:2\na:1\n");
}

void test_variant_of_keeps_no_credential(void**) {
    Lines names = {"accept", "authorization", "cookie", "proxy-authorization"};
    Lines request = {"Accept: a", "Authorization: Bearer s3cret", "Cookie: id=s3cret",
                     "Proxy-Authorization: Basic s3cret"};
    const std::string variant = variant_of(names, request);
    assert_null(strstr(variant.c_str(), "s3cret"));
    assert_int_equal(std::count(variant.begin(), variant.end(), '#'), 3);
    // Equal values still select the same variant, different ones a different variant.
    assert_string_equal(variant.c_str(), variant_of(names, request).c_str());
    Lines spaced = {"Accept: a", "Authorization:  Bearer s3cret ", "Cookie: id=s3cret",
                    "Proxy-Authorization: Basic s3cret"};
    assert_string_equal(variant.c_str(), variant_of(names, spaced).c_str());
    Lines other = {"Accept: a", "Authorization: Bearer other", "Cookie: id=s3cret",
                   "Proxy-Authorization: Basic s3cret"};
    assert_string_not_equal(variant.c_str(), variant_of(names, other).c_str());
    // Absent stays absent.
    assert_string_equal(variant_of({"cookie"}, {"Accept: a"}).c_str(), "cookie\n");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_vary_gives_no_names),
        cmocka_unit_test(test_names_are_lower_case_sorted_and_unique),
        cmocka_unit_test(test_star_wins),
        cmocka_unit_test(test_variant_of_absent_empty_and_present),
        cmocka_unit_test(test_variant_of_keeps_no_credential),
        cmocka_unit_test(test_variant_of_names_compare_case_insensitively),
        cmocka_unit_test(test_variant_of_values_keep_their_case),
        cmocka_unit_test(test_variant_of_joins_lines_and_folds_whitespace),
        cmocka_unit_test(test_variant_of_follows_libcurl_header_lists),
        cmocka_unit_test(test_variant_of_orders_by_names),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
