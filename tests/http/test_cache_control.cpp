// Cache-Control parsing (core/http/cache_control.h): directives, duplicates, quoting,
// malformed and hostile values, Pragma.
#include "core/http/cache_control.h"

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

CacheControl response(std::string_view header_lines) {
    return response_cache_control("HTTP/1.1 200 OK\r\n" + std::string(header_lines) + "\r\n");
}

CacheControl cc(std::string_view value) {
    return response("Cache-Control: " + std::string(value) + "\r\n");
}

bool has_invalid(const CacheControl& parsed, std::string_view name) {
    for (const std::string& bad : parsed.invalid) {
        if (bad == name) {
            return true;
        }
    }
    return false;
}

void test_no_header_is_not_present(void**) {
    CacheControl parsed = response("Content-Type: text/plain\r\n");
    assert_false(parsed.present);
    assert_false(parsed.no_cache);
    assert_false(parsed.max_age.has_value());
    assert_true(parsed.invalid.empty());
}

void test_every_boolean_directive(void**) {
    CacheControl parsed = cc("no-store, no-cache, must-revalidate, proxy-revalidate, private, "
                             "public, immutable, must-understand, no-transform, only-if-cached");
    assert_true(parsed.present);
    assert_true(parsed.no_store);
    assert_true(parsed.no_cache);
    assert_true(parsed.must_revalidate);
    assert_true(parsed.proxy_revalidate);
    assert_true(parsed.is_private);
    assert_true(parsed.is_public);
    assert_true(parsed.immutable);
    assert_true(parsed.must_understand);
    assert_true(parsed.no_transform);
    assert_true(parsed.only_if_cached);
    assert_true(parsed.no_cache_fields.empty());
    assert_true(parsed.private_fields.empty());
}

void test_every_delta_seconds_directive(void**) {
    CacheControl parsed = cc("max-age=1, s-maxage=2, min-fresh=3, max-stale=4, "
                             "stale-while-revalidate=5, stale-if-error=6");
    assert_int_equal(*parsed.max_age, 1);
    assert_int_equal(*parsed.s_maxage, 2);
    assert_int_equal(*parsed.min_fresh, 3);
    assert_int_equal(*parsed.max_stale, 4);
    assert_false(parsed.max_stale_any);
    assert_int_equal(*parsed.stale_while_revalidate, 5);
    assert_int_equal(*parsed.stale_if_error, 6);
    assert_true(parsed.invalid.empty());
}

void test_names_are_case_insensitive(void**) {
    CacheControl parsed = cc("MaX-AgE=3600, NO-STORE, Private");
    assert_int_equal(*parsed.max_age, 3600);
    assert_true(parsed.no_store);
    assert_true(parsed.is_private);
}

void test_unknown_directives_are_ignored(void**) {
    CacheControl parsed = cc("foobar, max-age=60, ext=\"a, b\", other=token");
    assert_int_equal(*parsed.max_age, 60);
    assert_true(parsed.invalid.empty());
    assert_false(parsed.no_cache);
}

void test_first_duplicate_wins_on_one_line(void**) {
    assert_int_equal(*cc("max-age=1800, max-age=1").max_age, 1800);
    assert_int_equal(*cc("max-age=1, max-age=1800").max_age, 1);
}

void test_first_duplicate_wins_across_lines(void**) {
    CacheControl parsed = response("Cache-Control: max-age=1800\r\nCache-Control: max-age=1\r\n");
    assert_int_equal(*parsed.max_age, 1800);
    parsed = response("Cache-Control: s-maxage=3600\r\nContent-Type: x\r\ncache-control: "
                      "max-age=1, no-cache\r\n");
    assert_int_equal(*parsed.s_maxage, 3600);
    assert_int_equal(*parsed.max_age, 1);
    assert_true(parsed.no_cache);
}

void test_invalid_first_occurrence_is_not_replaced(void**) {
    CacheControl parsed = cc("max-age=abc, max-age=60");
    assert_false(parsed.max_age.has_value());
    assert_true(has_invalid(parsed, "max-age"));
    assert_int_equal(parsed.invalid.size(), 1);
}

void test_quoted_delta_seconds_is_accepted(void**) {
    assert_int_equal(*cc("max-age=\"3600\"").max_age, 3600);
    assert_int_equal(*cc("stale-if-error=\"60\"").stale_if_error, 60);
}

void test_directive_inside_quoted_string_is_not_a_directive(void**) {
    assert_int_equal(*cc("extension=\"max-age=3600\", max-age=1").max_age, 1);
    assert_int_equal(*cc("max-age=1, extension=\"max-age=3600\"").max_age, 1);
    assert_int_equal(*cc("ext=\"a\\\", max-age=5\", max-age=2").max_age, 2);
}

void test_malformed_values_are_invalid(void**) {
    const char* const bad[] = {
        "max-age='3600'", "max-age=3600.0", "max-age=3600.5", "max-age=a3600",    "max-age=3600a",
        "max-age=-3600",  "max-age=",       "max-age",        "max-age =3600",    "max-age= 3600",
        "max-age=\"\"",   "max-age=\"36",   "max-age=+1",     "max-age=\"3600\"x"};
    for (const char* value : bad) {
        CacheControl parsed = cc(value);
        if (parsed.max_age.has_value() || !has_invalid(parsed, "max-age")) {
            fail_msg("accepted: %s", value);
        }
    }
}

void test_leading_zeros_are_fine(void**) {
    assert_int_equal(*cc("max-age=003600").max_age, 3600);
    assert_int_equal(*cc("max-age=0").max_age, 0);
}

void test_huge_values_saturate(void**) {
    assert_int_equal(*cc("max-age=2147483647").max_age, 2147483647);
    assert_int_equal(*cc("max-age=2147483648").max_age, k_delta_seconds_max);
    assert_int_equal(*cc("max-age=2147483649").max_age, k_delta_seconds_max);
    assert_int_equal(*cc("max-age=99999999999999999999999999999999").max_age, k_delta_seconds_max);
}

void test_parse_delta_seconds(void**) {
    assert_int_equal(*parse_delta_seconds("60"), 60);
    assert_int_equal(*parse_delta_seconds("\"60\""), 60);
    assert_int_equal(*parse_delta_seconds("0"), 0);
    assert_int_equal(*parse_delta_seconds("18446744073709551616"), k_delta_seconds_max);
    assert_false(parse_delta_seconds("").has_value());
    assert_false(parse_delta_seconds("\"\"").has_value());
    assert_false(parse_delta_seconds("\"").has_value());
    assert_false(parse_delta_seconds("-1").has_value());
    assert_false(parse_delta_seconds(" 1").has_value());
    assert_false(parse_delta_seconds("1 ").has_value());
    assert_false(parse_delta_seconds("1e3").has_value());
    assert_false(parse_delta_seconds("'1'").has_value());
}

void test_max_stale_with_and_without_value(void**) {
    CacheControl any = cc("max-stale");
    assert_true(any.max_stale_any);
    assert_false(any.max_stale.has_value());
    CacheControl bounded = cc("max-stale=30");
    assert_false(bounded.max_stale_any);
    assert_int_equal(*bounded.max_stale, 30);
    CacheControl bad = cc("max-stale=soon");
    assert_false(bad.max_stale_any);
    assert_false(bad.max_stale.has_value());
    assert_true(has_invalid(bad, "max-stale"));
}

void test_qualified_no_cache_and_private_list_fields(void**) {
    CacheControl parsed = cc("no-cache=\"Set-Cookie, X-Token\", private=\"Authorization\"");
    assert_false(parsed.no_cache);
    assert_false(parsed.is_private);
    assert_int_equal(parsed.no_cache_fields.size(), 2);
    assert_string_equal(parsed.no_cache_fields[0].c_str(), "set-cookie");
    assert_string_equal(parsed.no_cache_fields[1].c_str(), "x-token");
    assert_int_equal(parsed.private_fields.size(), 1);
    assert_string_equal(parsed.private_fields[0].c_str(), "authorization");
}

void test_qualified_token_form_and_empty_list(void**) {
    CacheControl token = cc("no-cache=Set-Cookie");
    assert_false(token.no_cache);
    assert_int_equal(token.no_cache_fields.size(), 1);
    assert_string_equal(token.no_cache_fields[0].c_str(), "set-cookie");
    // An empty list is read as the plain directive, the stricter choice.
    assert_true(cc("no-cache=\"\"").no_cache);
    assert_true(cc("private=\" , \"").is_private);
}

void test_separators_and_whitespace(void**) {
    CacheControl parsed = cc(" ,, max-age=5 ,\tno-store , ,");
    assert_int_equal(*parsed.max_age, 5);
    assert_true(parsed.no_store);
    assert_true(cc("").present);
    assert_true(cc("").invalid.empty());
}

void test_garbage_never_breaks_the_parser(void**) {
    const char* const junk[] = {"=",
                                "==,=",
                                "\"",
                                "\"unterminated, max-age=5",
                                "=5, max-age=7",
                                "\\",
                                ",,,,",
                                "max-age=\"\\",
                                "a=\"\\\"",
                                "@@@, no-store"};
    for (const char* value : junk) {
        (void)cc(value);
    }
    assert_int_equal(*cc("=5, max-age=7").max_age, 7);
    assert_true(cc("@@@, no-store").no_store);
    assert_false(cc("\"unterminated, max-age=5").max_age.has_value());
}

void test_pragma_no_cache_only_without_cache_control(void**) {
    assert_true(response("Pragma: no-cache\r\n").no_cache);
    assert_true(response("Pragma: x, NO-CACHE\r\n").no_cache);
    assert_false(response("Pragma: unrecognised-extension\r\n").no_cache);
    CacheControl both = response("Pragma: no-cache\r\nCache-Control: max-age=60\r\n");
    assert_false(both.no_cache);
    assert_int_equal(*both.max_age, 60);
}

void test_response_block_skips_status_line_and_handles_bare_newlines(void**) {
    CacheControl parsed =
        response_cache_control("HTTP/2 200\nCache-Control: max-age=9\nVary: a\n\n");
    assert_true(parsed.present);
    assert_int_equal(*parsed.max_age, 9);
    assert_false(response_cache_control("").present);
    assert_int_equal(*response_cache_control("Cache-Control: max-age=3").max_age, 3);
}

void test_request_lines(void**) {
    std::vector<std::string> lines = {"Accept: */*", "cache-control: max-age=0, min-fresh=10",
                                      "Cache-Control: max-stale, only-if-cached"};
    CacheControl parsed = request_cache_control(lines);
    assert_true(parsed.present);
    assert_int_equal(*parsed.max_age, 0);
    assert_int_equal(*parsed.min_fresh, 10);
    assert_true(parsed.max_stale_any);
    assert_true(parsed.only_if_cached);
    assert_false(request_cache_control({}).present);
    assert_true(request_cache_control({"Pragma: no-cache"}).no_cache);
    assert_false(request_cache_control({"Pragma: no-cache", "Cache-Control: max-stale"}).no_cache);
    assert_false(request_cache_control({"X-Cache-Control: no-cache"}).no_cache);
}

void test_list_tokens_and_list_has(void**) {
    std::vector<std::string> items = list_tokens(" Accept ,, USER-Agent,\t,x ");
    assert_int_equal(items.size(), 3);
    assert_string_equal(items[0].c_str(), "accept");
    assert_string_equal(items[1].c_str(), "user-agent");
    assert_string_equal(items[2].c_str(), "x");
    assert_true(list_tokens("").empty());
    assert_true(list_tokens(" , ").empty());
    assert_true(list_has("close, X-Hop", "x-hop"));
    assert_true(list_has("*", "*"));
    assert_false(list_has("close, X-Hop", "x"));
    assert_false(list_has("", ""));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_header_is_not_present),
        cmocka_unit_test(test_every_boolean_directive),
        cmocka_unit_test(test_every_delta_seconds_directive),
        cmocka_unit_test(test_names_are_case_insensitive),
        cmocka_unit_test(test_unknown_directives_are_ignored),
        cmocka_unit_test(test_first_duplicate_wins_on_one_line),
        cmocka_unit_test(test_first_duplicate_wins_across_lines),
        cmocka_unit_test(test_invalid_first_occurrence_is_not_replaced),
        cmocka_unit_test(test_quoted_delta_seconds_is_accepted),
        cmocka_unit_test(test_directive_inside_quoted_string_is_not_a_directive),
        cmocka_unit_test(test_malformed_values_are_invalid),
        cmocka_unit_test(test_leading_zeros_are_fine),
        cmocka_unit_test(test_huge_values_saturate),
        cmocka_unit_test(test_parse_delta_seconds),
        cmocka_unit_test(test_max_stale_with_and_without_value),
        cmocka_unit_test(test_qualified_no_cache_and_private_list_fields),
        cmocka_unit_test(test_qualified_token_form_and_empty_list),
        cmocka_unit_test(test_separators_and_whitespace),
        cmocka_unit_test(test_garbage_never_breaks_the_parser),
        cmocka_unit_test(test_pragma_no_cache_only_without_cache_control),
        cmocka_unit_test(test_response_block_skips_status_line_and_handles_bare_newlines),
        cmocka_unit_test(test_request_lines),
        cmocka_unit_test(test_list_tokens_and_list_has),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
