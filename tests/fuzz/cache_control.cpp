// Fuzz target: Cache-Control / Pragma parsing and the freshness decided from a response
// (core/http/cache_control.*, freshness.*, the HTTP-date reader in validation.*). Checks the
// promises of their headers: every delta-seconds lies in [0, k_delta_seconds_max], list
// tokens are trimmed, lower-case and non-empty, a freshness lifetime and age are never
// negative, a hostile Age/Date/Expires never moves staleness past response_time + lifetime,
// and an HTTP-date that parses prints as an IMF-fixdate that parses to the same second.
//
// Input: a status selector byte, a flags byte (1: shared cache, 2: the request had
// Authorization, 4/8: a configured lifetime of 60 s / forever), then NUL-separated pieces:
// the response header block and the request header lines (one per line).
#include "core/easy/http_text.h"
#include "core/http/cache_control.h"
#include "core/http/freshness.h"
#include "core/http/validation.h"
#include "tests/fuzz/fuzz_input.h"

#include <ctime>

namespace {

using namespace curlcache::core::http;
namespace easy = curlcache::core::easy;

constexpr int64_t k_now = 1'800'000'000;

void check_delta(const std::optional<int64_t>& value) {
    FUZZ_CHECK(!value || (*value >= 0 && *value <= k_delta_seconds_max));
}

void check_tokens(const std::vector<std::string>& tokens) {
    for (const std::string& token : tokens) {
        FUZZ_CHECK(!token.empty());
        FUZZ_CHECK(token.front() != ' ' && token.front() != '\t');
        FUZZ_CHECK(token.back() != ' ' && token.back() != '\t');
        for (char c : token) {
            FUZZ_CHECK(c < 'A' || c > 'Z');
        }
    }
}

void check(const CacheControl& cc) {
    check_delta(cc.max_age);
    check_delta(cc.s_maxage);
    check_delta(cc.min_fresh);
    check_delta(cc.max_stale);
    check_delta(cc.stale_while_revalidate);
    check_delta(cc.stale_if_error);
    check_tokens(cc.no_cache_fields);
    check_tokens(cc.private_fields);
}

void check_date(std::string_view text) {
    const std::optional<int64_t> when = parse_http_date_strict(text, k_now);
    if (!when) {
        return;
    }
    const time_t t = static_cast<time_t>(*when);
    struct tm tm {};
    FUZZ_CHECK(gmtime_r(&t, &tm) != nullptr);
    if (tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999) {
        return; // strftime's %Y prints the year unpadded: 4 digits only for these
    }
    char printed[64];
    FUZZ_CHECK(std::strftime(printed, sizeof printed, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0);
    FUZZ_CHECK(parse_http_date_strict(printed, k_now) == when);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static constexpr long k_statuses[] = {200, 203, 204, 206, 300, 301, 304, 307, 308, 404,
                                          410, 418, 500, 501, 599, 100, 0,   999, 1000, -1};
    curlcache::fuzz::Input in(data, size);
    const long status = k_statuses[in.byte() % std::size(k_statuses)];
    const uint8_t flags = in.byte();
    const std::string_view block = in.piece();
    const std::vector<std::string> request_lines = curlcache::fuzz::split(in.piece(), '\n');

    const CacheControl response = response_cache_control(block);
    check(response);
    const CacheControl request = request_cache_control(request_lines);
    check(request);
    check_delta(parse_delta_seconds(block));
    check_tokens(list_tokens(block));
    for (std::string_view line : easy::split_lines(block)) {
        std::string_view name, value;
        if (easy::split_header(line, name, value)) {
            check_date(value);
            check_tokens(list_tokens(value));
            (void)list_has(value, name);
        }
    }
    check_date(block);

    FreshnessRules rules;
    rules.type = (flags & 1) != 0 ? CacheType::shared_cache : CacheType::private_cache;
    if ((flags & 4) != 0) {
        rules.configured_lifetime = 60;
    } else if ((flags & 8) != 0) {
        rules.configured_lifetime = FreshnessRules::k_forever;
    }
    const int64_t request_time = k_now - (flags >> 4);
    const Freshness f = analyse(status, block, response, request_time, k_now, rules);
    FUZZ_CHECK(f.lifetime >= 0 && f.lifetime <= k_delta_seconds_max);
    FUZZ_CHECK(f.corrected_initial_age >= 0 && f.corrected_initial_age <= k_delta_seconds_max);
    FUZZ_CHECK(f.stale_while_revalidate >= 0 && f.stale_if_error >= 0);
    FUZZ_CHECK(f.current_age(k_now) >= 0);
    if (f.source != LifetimeSource::forever) {
        FUZZ_CHECK(f.stale_at() <= k_now + f.lifetime);
    }

    StoreQuestion question;
    question.status = status;
    question.block = block;
    question.response_cc = &response;
    question.request_cc = &request;
    question.request_has_authorization = (flags & 2) != 0;
    question.type = rules.type;
    (void)describe(storable(question));
    for (int64_t later : {k_now, k_now + 1, k_now + 86400, k_now + k_delta_seconds_max}) {
        const UseAnswer answer = usable(f, request, later);
        FUZZ_CHECK(answer.reason != nullptr);
        (void)serve_stale_while_revalidate(f, request, later);
        (void)serve_stale_on_error(f, request, 60, later);
    }
    return 0;
}
