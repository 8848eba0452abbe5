// Validation (core/http/validation.h): conditional lines, 304 selection, 304 header update
// and Age.
#include "core/http/validation.h"

#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

extern "C" {
#include <cmocka.h>
}

using namespace curlcache::core::http;

namespace {

constexpr const char* k_lm = "Tue, 15 Nov 1994 12:45:26 GMT";

std::string not_modified(std::string_view lines) {
    return "HTTP/1.1 304 Not Modified\r\n" + std::string(lines) + "\r\n";
}

void test_conditional_lines(void**) {
    auto both = conditional_lines("\"abc\"", k_lm);
    assert_int_equal(both.size(), 2);
    assert_string_equal(both[0].c_str(), "If-None-Match: \"abc\"");
    assert_string_equal(both[1].c_str(), (std::string("If-Modified-Since: ") + k_lm).c_str());
    auto weak = conditional_lines("W/\"abc\"", "");
    assert_int_equal(weak.size(), 1);
    assert_string_equal(weak[0].c_str(), "If-None-Match: W/\"abc\"");
    auto date = conditional_lines("", k_lm);
    assert_int_equal(date.size(), 1);
    assert_string_equal(date[0].c_str(), (std::string("If-Modified-Since: ") + k_lm).c_str());
    assert_true(conditional_lines("", "").empty());
}

void test_conditional_lines_refuse_line_breaks(void**) {
    assert_true(conditional_lines("\"a\"\r\nX-Evil: 1", "").empty());
    assert_true(conditional_lines("  ", "\n").empty());
}

void test_selects_by_strong_etag(void**) {
    std::string block = not_modified("ETag: \"abc\"\r\n");
    assert_true(selects(block, "\"abc\"", ""));
    assert_false(selects(block, "\"xyz\"", ""));
    assert_false(selects(block, "W/\"abc\"", "")); // strong comparison
    assert_false(selects(block, "", k_lm));
    // The ETag decides even when Last-Modified matches.
    assert_false(
        selects(not_modified("ETag: \"new\"\r\nLast-Modified: " + std::string(k_lm) + "\r\n"),
                "\"old\"", k_lm));
}

void test_selects_by_weak_etag(void**) {
    std::string block = not_modified("ETag: W/\"abc\"\r\n");
    assert_true(selects(block, "W/\"abc\"", ""));
    assert_true(selects(block, "\"abc\"", ""));
    assert_false(selects(block, "W/\"abd\"", ""));
    assert_false(selects(block, "", ""));
}

void test_selects_by_last_modified(void**) {
    std::string block = not_modified("Last-Modified: " + std::string(k_lm) + "\r\n");
    assert_true(selects(block, "", k_lm));
    assert_true(selects(block, "", "Tuesday, 15-Nov-94 12:45:26 GMT")); // same instant
    assert_false(selects(block, "", "Tue, 15 Nov 1994 12:45:27 GMT"));
    assert_false(selects(block, "", ""));
    assert_false(selects(not_modified("Last-Modified: junk\r\n"), "", "other junk"));
}

void test_selects_without_validator(void**) {
    assert_true(selects(not_modified("Date: x\r\n"), "", ""));
    assert_true(selects(not_modified(""), "\"abc\"", k_lm));
}

const char* const k_stored = "HTTP/1.1 200 OK\r\n"
                             "Date: old\r\n"
                             "Cache-Control: max-age=1\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 36\r\n"
                             "X-Multi: a\r\n"
                             "ETag: \"abc\"\r\n"
                             "X-Multi: b\r\n"
                             "\r\n";

void test_merge_replaces_in_place_and_appends_new(void**) {
    std::string merged = merge_not_modified(
        k_stored, not_modified("Date: new\r\ncache-control: max-age=3600\r\nX-New: 1\r\n"));
    assert_string_equal(merged.c_str(), "HTTP/1.1 200 OK\r\n"
                                        "Date: new\r\n"
                                        "cache-control: max-age=3600\r\n"
                                        "Content-Type: text/plain\r\n"
                                        "Content-Length: 36\r\n"
                                        "X-Multi: a\r\n"
                                        "ETag: \"abc\"\r\n"
                                        "X-Multi: b\r\n"
                                        "X-New: 1\r\n"
                                        "\r\n");
}

void test_merge_replaces_every_line_of_a_name(void**) {
    std::string merged = merge_not_modified(k_stored, not_modified("X-Multi: c\r\nX-Multi: d\r\n"));
    assert_string_equal(merged.c_str(), "HTTP/1.1 200 OK\r\n"
                                        "Date: old\r\n"
                                        "Cache-Control: max-age=1\r\n"
                                        "Content-Type: text/plain\r\n"
                                        "Content-Length: 36\r\n"
                                        "X-Multi: c\r\n"
                                        "X-Multi: d\r\n"
                                        "ETag: \"abc\"\r\n"
                                        "\r\n");
}

void test_merge_never_changes_body_and_connection_fields(void**) {
    std::string update = not_modified("Content-Length: 10\r\nContent-Type: text/html\r\n"
                                      "Content-Encoding: gzip\r\nContent-Range: bytes 0-1/2\r\n"
                                      "Transfer-Encoding: chunked\r\nTrailer: X\r\n"
                                      "Connection: close, X-Hop\r\nKeep-Alive: timeout=5\r\n"
                                      "Proxy-Connection: close\r\nTE: trailers\r\n"
                                      "Upgrade: h2c\r\nX-Hop: 1\r\n"
                                      "Proxy-Authenticate: Basic\r\nProxy-Authorization: x\r\n"
                                      "Proxy-Authentication-Info: y\r\n");
    assert_string_equal(merge_not_modified(k_stored, update).c_str(), k_stored);
}

void test_merge_keeps_status_line_and_line_endings(void**) {
    std::string merged = merge_not_modified("HTTP/2 200\nETag: \"a\"\nX-Old: 1\n\n",
                                            not_modified("ETag: \"a\"\r\nX-Old: 2\r\n"));
    assert_string_equal(merged.c_str(), "HTTP/2 200\nETag: \"a\"\nX-Old: 2\n\n");
}

void test_merge_drops_continuations_of_replaced_fields(void**) {
    std::string merged =
        merge_not_modified("HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nX-Keep: c\r\n\td\r\n\r\n",
                           not_modified("X-Long: new\r\n"));
    assert_string_equal(merged.c_str(),
                        "HTTP/1.1 200 OK\r\nX-Long: new\r\nX-Keep: c\r\n\td\r\n\r\n");
}

void test_merge_finishes_a_block_without_blank_line(void**) {
    assert_string_equal(
        merge_not_modified("HTTP/1.1 200 OK\r\nA: 1", not_modified("B: 2\r\n")).c_str(),
        "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n");
    assert_string_equal(merge_not_modified("HTTP/1.1 200 OK\r\n", not_modified("B:\r\n")).c_str(),
                        "HTTP/1.1 200 OK\r\nB:\r\n\r\n");
}

void test_with_age_replaces_or_adds(void**) {
    assert_string_equal(with_age("HTTP/1.1 200 OK\r\nAge: 5\r\nX: y\r\n\r\n", 42).c_str(),
                        "HTTP/1.1 200 OK\r\nAge: 42\r\nX: y\r\n\r\n");
    assert_string_equal(with_age("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", 7).c_str(),
                        "HTTP/1.1 200 OK\r\nX: y\r\nAge: 7\r\n\r\n");
    assert_string_equal(with_age("HTTP/2 200\nage: 1\nAGE: 2\n\n", 0).c_str(),
                        "HTTP/2 200\nAge: 0\n\n");
    assert_string_equal(with_age("HTTP/1.1 200 OK\r\n\r\n", -5).c_str(),
                        "HTTP/1.1 200 OK\r\nAge: 0\r\n\r\n");
}

void test_http_dates_in_the_three_forms(void**) {
    const int64_t k_1994 = 784111777; // Sun, 06 Nov 1994 08:49:37 GMT
    assert_int_equal(*parse_http_date_strict("Sun, 06 Nov 1994 08:49:37 GMT", 0), k_1994);
    assert_int_equal(*parse_http_date_strict("Sunday, 06-Nov-94 08:49:37 GMT", 0), k_1994);
    assert_int_equal(*parse_http_date_strict("Sun Nov  6 08:49:37 1994", 0), k_1994);
    assert_int_equal(*parse_http_date_strict(" sun, 06 NOV 1994 08:49:37 gmt ", 0), k_1994);
    assert_int_equal(*parse_http_date_strict("Thu, 01 Jan 1970 00:00:00 GMT", 0), 0);
    assert_int_equal(*parse_http_date_strict("Wed, 31 Dec 1969 23:59:59 GMT", 0), -1);
    assert_int_equal(*parse_http_date_strict("Tue, 29 Feb 2000 00:00:00 GMT", 0), 951782400);
    assert_int_equal(*parse_http_date_strict("Sat, 30 Jun 2012 23:59:60 GMT", 0), 1341100800);
}

void test_http_date_two_digit_years_follow_now(void**) {
    const int64_t k_2023 = 1700000000;
    // 2050 is less than 50 years after 2023; 2094 is more, so "94" is 1994.
    assert_int_equal(*parse_http_date_strict("Thursday, 18-Aug-50 02:01:18 GMT", k_2023),
                     2544400878);
    assert_int_equal(*parse_http_date_strict("Sunday, 06-Nov-94 08:49:37 GMT", k_2023), 784111777);
    assert_false(parse_http_date_strict("Sunday, 06-Nov-94 08:49:37 GMT",
                                        std::numeric_limits<int64_t>::max())
                     .has_value());
}

void test_http_dates_that_are_not(void**) {
    const char* const bad[] = {"",
                               "0",
                               "Sun, 06 Nov 1994 08:49:37 UTC",
                               "Sun, 6 Nov 1994 08:49:37 GMT",
                               "Sun, 06 Nov 94 08:49:37 GMT",
                               "Sun,  06 Nov 1994 08:49:37 GMT",
                               "Sun, 06 Nov 1994 8:49:37 GMT",
                               "Sun, 06 Nov 1994 08:49 GMT",
                               "Sun, 06-Nov-1994 08:49:37 GMT",
                               "Sun, 00 Nov 1994 08:49:37 GMT",
                               "Sun, 31 Nov 1994 08:49:37 GMT",
                               "Sun, 29 Feb 1900 08:49:37 GMT",
                               "Sun, 06 Nov 1994 08:60:37 GMT",
                               "Sun, 06 Nov 1994 08:49:61 GMT",
                               "Sun, 06 Nov 1994 08:49:37 GMTX",
                               "Sunday, 06 Nov 1994 08:49:37 GMT",
                               "Sun, 06-Nov-94 08:49:37 GMT",
                               "Sun Nov 6 08:49:37 1994",
                               "Sun Nov  6 08:49:37 94",
                               "Sun, 06 Nov 1994 08:49:37 GMT, Mon",
                               "Sun, 06 Nov +994 08:49:37 GMT"};
    for (const char* text : bad) {
        if (parse_http_date_strict(text, 0).has_value()) {
            fail_msg("accepted: %s", text);
        }
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditional_lines),
        cmocka_unit_test(test_conditional_lines_refuse_line_breaks),
        cmocka_unit_test(test_selects_by_strong_etag),
        cmocka_unit_test(test_selects_by_weak_etag),
        cmocka_unit_test(test_selects_by_last_modified),
        cmocka_unit_test(test_selects_without_validator),
        cmocka_unit_test(test_merge_replaces_in_place_and_appends_new),
        cmocka_unit_test(test_merge_replaces_every_line_of_a_name),
        cmocka_unit_test(test_merge_never_changes_body_and_connection_fields),
        cmocka_unit_test(test_merge_keeps_status_line_and_line_endings),
        cmocka_unit_test(test_merge_drops_continuations_of_replaced_fields),
        cmocka_unit_test(test_merge_finishes_a_block_without_blank_line),
        cmocka_unit_test(test_with_age_replaces_or_adds),
        cmocka_unit_test(test_http_dates_in_the_three_forms),
        cmocka_unit_test(test_http_date_two_digit_years_follow_now),
        cmocka_unit_test(test_http_dates_that_are_not),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
