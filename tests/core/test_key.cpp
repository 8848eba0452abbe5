// The cache key and URL normalisation (core/key.h).
#include "core/key.h"

#include <curl/curl.h>
#include <xxhash.h>

#include <array>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include <cmocka.h>
}

#include "tests/core/scratch.h"

using curlcache::config::Settings;
using namespace curlcache::core;

namespace {

Key key_of(const std::string& url, const Settings& settings = {}) {
    Request request;
    request.url = url;
    return make_key(request, settings);
}

void assert_same_url(const char* a, const char* b, const Settings& settings = {}) {
    std::string na = normalize_url(a, settings);
    std::string nb = normalize_url(b, settings);
    if (na != nb) {
        print_error("%s -> %s\n%s -> %s\n", a, na.c_str(), b, nb.c_str());
    }
    assert_string_equal(na.c_str(), nb.c_str());
    assert_true(key_of(a, settings) == key_of(b, settings));
}

void assert_different_url(const char* a, const char* b, const Settings& settings = {}) {
    assert_string_not_equal(normalize_url(a, settings).c_str(), normalize_url(b, settings).c_str());
    assert_false(key_of(a, settings) == key_of(b, settings));
}

void test_normalize_lowercases_scheme_and_host_only(void**) {
    assert_string_equal(normalize_url("HTTP://Example.COM/Path/A", {}).c_str(),
                        "http://example.com/Path/A");
    assert_different_url("http://h/Path", "http://h/path");
}

void test_normalize_drops_default_ports_only(void**) {
    assert_same_url("http://h:80/a", "http://h/a");
    assert_same_url("https://h:443/a", "https://h/a");
    assert_same_url("http://h:0080/a", "http://h/a");
    assert_same_url("http://h:/a", "http://h/a");
    assert_different_url("https://h:80/a", "https://h/a");
    assert_different_url("http://h:8080/a", "http://h/a");
    assert_string_equal(normalize_url("http://h:08080/a", {}).c_str(), "http://h:8080/a");
    assert_same_url("http://[::1]:80/x", "http://[::1]/x");
    assert_string_equal(normalize_url("http://[::1]:8080/x", {}).c_str(), "http://[::1]:8080/x");
}

void test_normalize_empty_path_is_slash(void**) {
    assert_same_url("http://h", "http://h/");
    assert_same_url("http://h?q=1", "http://h/?q=1");
}

void test_normalize_drops_fragment_and_userinfo(void**) {
    assert_same_url("http://h/a#frag", "http://h/a");
    assert_same_url("http://h/a?x=1#f?y=2", "http://h/a?x=1");
    assert_string_equal(normalize_url("http://user:pw@h/a", {}).c_str(), "http://h/a");
    assert_string_equal(url_credentials("http://user:p%40w@h/a").c_str(), "user:p%40w");
    assert_string_equal(url_credentials("http://h/a@b").c_str(), "");
    // The userinfo ends at the authority's last '@'; a path, query or fragment holds none.
    assert_string_equal(url_credentials("user@h/a").c_str(), "user");
    assert_string_equal(url_credentials("HTTPS://a@b@h:8/").c_str(), "a@b");
    assert_string_equal(url_credentials("http://h?x@y").c_str(), "");
    assert_string_equal(url_credentials("http://h#u@x").c_str(), "");
    assert_string_equal(url_credentials("http://u:@h").c_str(), "u:");
}

void test_normalize_resolves_dot_segments_and_escape_case(void**) {
    assert_same_url("http://h/a/./b/../c", "http://h/a/c");
    assert_same_url("http://h/../a", "http://h/a");
    assert_same_url("http://h/a/b/..", "http://h/a/");
    assert_same_url("http://h/a%2fb", "http://h/a%2Fb");
    assert_different_url("http://h/a%2Fb", "http://h/a/b");
}

void test_normalize_guesses_http_without_scheme(void**) {
    assert_same_url("example.com/a", "http://example.com/a");
}

void test_ignored_parameters_leave_url_and_key(void**) {
    Settings settings;
    settings.ignored_parameters = {"token", "session"};
    assert_string_equal(normalize_url("http://h/a?x=1&token=abc&y=2", settings).c_str(),
                        "http://h/a?x=1&y=2");
    assert_string_equal(normalize_url("http://h/a?token=abc", settings).c_str(), "http://h/a");
    assert_same_url("http://h/a?x=1&token=abc", "http://h/a?x=1&token=zzz", settings);
    assert_same_url("http://h/a?session", "http://h/a", settings);
    // A parameter that merely starts like an ignored one stays.
    assert_different_url("http://h/a?tokens=1", "http://h/a", settings);
}

void test_query_order_kept_unless_sort_query(void**) {
    assert_different_url("http://h/?a=1&b=2", "http://h/?b=2&a=1");
    Settings sorted;
    sorted.sort_query = true;
    assert_same_url("http://h/?a=1&b=2", "http://h/?b=2&a=1", sorted);
    // Repeated names keep their relative order: a=1&a=2 is not a=2&a=1.
    assert_different_url("http://h/?a=1&a=2", "http://h/?a=2&a=1", sorted);
}

void test_redact_url_leaves_out_secrets_and_ignored_parameters(void**) {
    Settings settings;
    settings.ignored_parameters = {"api_key", "rid"};
    // README: ignored parameters are left out of the stored URL, name included.
    assert_string_equal(redact_url("http://h/p?rid=1&a=2", settings).c_str(), "http://h/p?a=2");
    assert_string_equal(redact_url("http://h/p?a=2&rid=1", settings).c_str(), "http://h/p?a=2");
    assert_string_equal(redact_url("http://h/p?rid=1", settings).c_str(), "http://h/p");
    assert_string_equal(redact_url("http://h/p?rid", settings).c_str(), "http://h/p");
    assert_string_equal(redact_url("http://h/p?rid=1&api_key=2", settings).c_str(), "http://h/p");
    std::string redacted =
        redact_url("https://alice:s3cret@H.example:443/p?api_key=XYZ&q=1#f", settings);
    assert_string_equal(redacted.c_str(), "https://h.example/p?q=1");
    assert_null(strstr(redacted.c_str(), "api_key"));
    assert_null(strstr(redacted.c_str(), "s3cret"));
    assert_null(strstr(redacted.c_str(), "XYZ"));
    assert_string_equal(redact_url(redacted, settings).c_str(), redacted.c_str());
}

void test_method_is_case_insensitive_and_part_of_key(void**) {
    Request a, b, c;
    a.url = b.url = c.url = "http://h/";
    a.method = "get";
    b.method = "GET";
    c.method = "HEAD";
    assert_true(make_key(a, {}) == make_key(b, {}));
    assert_false(make_key(b, {}) == make_key(c, {}));
}

void test_body_is_part_of_key_without_running_into_url(void**) {
    Request a, b;
    a.url = "http://h/ab";
    b.url = "http://h/a";
    b.body = "b";
    assert_false(make_key(a, {}) == make_key(b, {}));
    Request c = a;
    c.body = "x";
    assert_false(make_key(a, {}) == make_key(c, {}));
}

void test_only_matched_headers_count_case_insensitively_and_trimmed(void**) {
    Settings settings;
    settings.match_headers = {"Accept", "accept-language"};
    Request base;
    base.url = "http://h/";
    Request other = base;
    other.headers = {"User-Agent: x", "X-Trace: 1"};
    assert_true(make_key(base, settings) == make_key(other, settings));

    Request json = base;
    json.headers = {"Accept: application/json"};
    Request json2 = base;
    json2.headers = {"accept:   application/json  "};
    Request html = base;
    html.headers = {"Accept: text/html"};
    assert_false(make_key(base, settings) == make_key(json, settings));
    assert_true(make_key(json, settings) == make_key(json2, settings));
    assert_false(make_key(json, settings) == make_key(html, settings));

    Request order1 = base, order2 = base;
    order1.headers = {"Accept: a", "Accept-Language: en"};
    order2.headers = {"ACCEPT-LANGUAGE: en", "User-Agent: z", "accept: a"};
    assert_true(make_key(order1, settings) == make_key(order2, settings));

    // Without match_headers no header takes part.
    assert_true(make_key(base, {}) == make_key(json, {}));
}

void test_options_order_is_irrelevant_values_matter(void**) {
    Request a, b, c;
    a.url = b.url = c.url = "http://h/";
    a.options = {{"follow_location", "1"}, {"accept_encoding", "gzip"}, {"range", "0-9"}};
    b.options = {{"range", "0-9"}, {"follow_location", "1"}, {"accept_encoding", "gzip"}};
    c.options = {{"range", "0-9"}, {"follow_location", "0"}, {"accept_encoding", "gzip"}};
    assert_true(make_key(a, {}) == make_key(b, {}));
    assert_false(make_key(a, {}) == make_key(c, {}));
    Request none;
    none.url = "http://h/";
    assert_false(make_key(none, {}) == make_key(a, {}));
}

void test_credentials_change_key_salted_per_cache(void**) {
    Request anonymous, alice, bob, in_url;
    anonymous.url = alice.url = bob.url = "http://h/private";
    alice.credentials = "alice:pw";
    bob.credentials = "bob:pw";
    in_url.url = "http://alice:pw@h/private";
    Settings one, two;
    one.name = "one";
    two.name = "two";
    assert_false(make_key(anonymous, one) == make_key(alice, one));
    assert_false(make_key(alice, one) == make_key(bob, one));
    assert_false(make_key(anonymous, one) == make_key(in_url, one));
    // The salt includes the cache name: the same secret digests differently per cache,
    // while requests without credentials keep the same key.
    assert_true(make_key(anonymous, one) == make_key(anonymous, two));
    assert_false(make_key(alice, one) == make_key(alice, two));
    // An option named "credentials" only enters through the digest, not as an option.
    Request as_option = anonymous;
    as_option.options = {{"credentials", "alice:pw"}};
    assert_false(make_key(anonymous, one) == make_key(as_option, one));
}

// Recomputes the key of `method` http://h/ with `body` from the documented encoding (one
// buffer, one XXH3-128 call), for a given format version: the key must equal the one for
// k_key_format_version and no other.
Key documented_key(uint64_t version, std::string_view method = "GET", std::string_view body = {}) {
    std::string bytes;
    auto field = [&](char tag, std::string_view value) {
        bytes += tag;
        uint64_t size = value.size();
        for (int i = 0; i < 8; ++i) {
            bytes += static_cast<char>(size >> (8 * i));
        }
        bytes += value;
    };
    auto number = [&](char tag, uint64_t value) {
        std::string le;
        for (int i = 0; i < 8; ++i) {
            le += static_cast<char>(value >> (8 * i));
        }
        field(tag, le);
    };
    number('v', version);
    field('m', method);
    field('u', "http://h/");
    field('b', body);
    number('H', 0);
    number('O', 0);
    field('c', "");
    XXH128_hash_t hash = XXH3_128bits(bytes.data(), bytes.size());
    return Key{hash.high64, hash.low64};
}

void test_key_format_version_is_hashed(void**) {
    Key key = key_of("http://h/");
    assert_true(key == documented_key(k_key_format_version));
    assert_false(key == documented_key(k_key_format_version + 1));
}

// A body larger than the encoder's buffer goes to a hash state instead of being copied;
// the key must stay the one-buffer digest of the documented encoding at every size around
// that limit (64 KiB), or caches filled before would miss.
void test_large_body_key_equals_documented_encoding(void**) {
    for (size_t size : {size_t{65535}, size_t{65536}, size_t{65537}, size_t{(1u << 20) + 3}}) {
        Request post;
        post.method = "POST";
        post.url = "http://h/";
        post.body.resize(size);
        for (size_t i = 0; i < size; ++i) {
            post.body[i] = static_cast<char>(i * 131 + (i >> 9));
        }
        assert_true(make_key(post, {}) == documented_key(k_key_format_version, "POST", post.body));
        // Twice in a row: the thread's buffer and the hash state start afresh each time.
        assert_true(make_key(post, {}) == documented_key(k_key_format_version, "POST", post.body));
        Request other = post;
        other.body.back() ^= 1;
        assert_false(make_key(other, {}) == make_key(post, {}));
    }
}

void test_key_hex_round_trip_and_rejects_malformed(void**) {
    Key key = key_of("http://h/x");
    std::string hex = key.hex();
    assert_int_equal(hex.size(), 32);
    for (char c : hex) {
        assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }
    auto back = Key::from_hex(hex);
    assert_true(back.has_value());
    assert_true(*back == key);
    assert_false(Key::from_hex(hex.substr(1)).has_value());
    assert_false(Key::from_hex(hex + "0").has_value());
    assert_false(Key::from_hex("g" + hex.substr(1)).has_value());
    assert_string_equal((Key{0x0123456789abcdefULL, 0xfedcba9876543210ULL}).hex().c_str(),
                        "0123456789abcdeffedcba9876543210");
}

// Keys of varied requests as the key format 2 code computed them before the per-handle key
// memo and the encoder's cheaper paths (main e432ad0): the digest of a request must never
// change within a format version, or the entries of existing caches would no longer be
// found. Also each key twice in a row, and its hex digits.
void test_keys_of_existing_caches_still_match(void**) {
    Settings plain;
    Settings matched;
    matched.name = "/tmp/c.sqlite";
    matched.backend = {"sqlite"};
    matched.match_headers = {" Accept-Language ", "X-Var"};
    matched.ignored_parameters = {"utm"};
    matched.sort_query = true;
    struct Case {
        const Settings* settings;
        const char* method;
        const char* url;
        std::vector<std::string> headers;
        const char* body;
        std::vector<std::pair<std::string, std::string>> options;
        const char* credentials;
        const char* hex;
    };
    const Case cases[] = {
        {&plain,
         "GET",
         "http://127.0.0.1:8080/1k.bin",
         {},
         "",
         {},
         "",
         "a9ad6f7b4bc4df1b27f5948e2b1d4cb1"},
        {&plain,
         "get",
         "HTTPS://u:p@Example.com:443/a/../b?z=1&a=2#f",
         {},
         "",
         {},
         "",
         "75adfde35fbcf773c7f10cf67ff83bfd"},
        {&plain,
         "POST",
         "http://h/form",
         {"X-Var: 1"},
         "a=1&b=2",
         {},
         "",
         "2c6cd11e381300bcbc4b322912ec3751"},
        {&matched,
         "GET",
         "http://h/q?z=1&utm=x&a=2",
         {"x-var:  one ", "User-Agent: t"},
         "",
         {},
         "",
         "76d699ba466ea1223cf42477b152686b"},
        {&matched,
         "GET",
         "http://h/",
         {"Accept-Language: en", "X-VAR: two"},
         "",
         {{"header:accept", "text/html"}, {"follow_location", "1"}, {"max_redirs", "-1"}},
         "",
         "d6ab8bb4845abdeb2b5498cff5d90120"},
        {&matched,
         "HEAD",
         "http://h/",
         {},
         "",
         {{"nobody", "1"}, {"credentials", "tok"}},
         "",
         "52290a7e5f52396d2b324621555c136c"},
        {&matched,
         "GET",
         "http://alice:pw@h/private",
         {},
         "",
         {},
         "userpwd=a:b\nhttpauth=1\n",
         "35093202c9a313bda7c6f2f8ad04b3b5"},
        {&plain,
         "GET",
         "http://h/private",
         {},
         "",
         {},
         "bearer=xyz\nhttpauth=1\n",
         "da6e572cbd2cd33871c5a492433fc6ef"},
    };
    for (const Case& c : cases) {
        Request request;
        request.method = c.method;
        request.url = c.url;
        request.headers = c.headers;
        request.body = c.body;
        request.options = c.options;
        request.credentials = c.credentials;
        const Key key = make_key(request, *c.settings);
        assert_string_equal(key.hex().c_str(), c.hex);
        assert_true(make_key(request, *c.settings) == key);
        const std::array<char, 32> digits = key.hex_digits();
        assert_true(std::string(digits.data(), digits.size()) == c.hex);
    }
}

// Random URLs built from the characters that matter to the parser: normalisation never
// fails, is idempotent, never keeps userinfo, and redaction never shows an ignored value.
void test_normalize_fuzz_is_idempotent_and_drops_secrets(void**) {
    std::mt19937 random(12345);
    const std::string alphabet = "aZ09:/?#@&=.%[]-_~+ Pp*";
    const char* prefixes[] = {"http://", "HTTPS://", "", "ftp://", "http://u:SECRET@"};
    Settings settings;
    settings.ignored_parameters = {"tok"};
    settings.sort_query = true;
    for (int round = 0; round < 20000; ++round) {
        std::string url = prefixes[random() % 5];
        size_t length = random() % 24;
        for (size_t i = 0; i < length; ++i) {
            url += alphabet[random() % alphabet.size()];
        }
        if (random() % 3 == 0) { // a real "tok" parameter, wherever the query starts
            url += url.find('?') == std::string::npos ? "?tok=SECRET&b=1" : "&tok=SECRET&b=1";
        }
        std::string once = normalize_url(url, settings);
        std::string twice = normalize_url(once, settings);
        if (once != twice) {
            print_error("not idempotent: %s -> %s -> %s\n", url.c_str(), once.c_str(),
                        twice.c_str());
        }
        assert_string_equal(once.c_str(), twice.c_str());
        std::string redacted = redact_url(url, settings);
        if (redacted.find("SECRET") != std::string::npos) {
            print_error("secret kept: %s -> %s\n", url.c_str(), redacted.c_str());
        }
        assert_true(redacted.find("SECRET") == std::string::npos);
        assert_true(once.find("SECRET") == std::string::npos);
    }
}

// What libcurl's own URL parser (curl_url) makes of a URL, in comparable form: scheme and
// host lower-case, no default port, escapes upper-case, an empty query the same as none.
// The tests may link libcurl; the engine may not, hence its own parser.
struct CurlParts {
    std::string scheme, host, port, path, query;
    std::string full; // curl's own reassembly of the whole URL (not compared)
    bool operator==(const CurlParts& o) const {
        return scheme == o.scheme && host == o.host && port == o.port && path == o.path &&
               query == o.query;
    }
};

std::string upper_escapes(std::string text) {
    for (size_t i = 0; i + 2 < text.size(); ++i) {
        if (text[i] == '%' && isxdigit(static_cast<unsigned char>(text[i + 1])) &&
            isxdigit(static_cast<unsigned char>(text[i + 2]))) {
            text[i + 1] = static_cast<char>(toupper(static_cast<unsigned char>(text[i + 1])));
            text[i + 2] = static_cast<char>(toupper(static_cast<unsigned char>(text[i + 2])));
        }
    }
    return text;
}

std::string lowered(std::string text) {
    for (char& c : text) {
        c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    }
    return text;
}

std::optional<CurlParts> curl_parts(const std::string& url) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), &curl_url_cleanup);
    if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        return std::nullopt;
    }
    auto part = [&](CURLUPart which, unsigned flags) -> std::string {
        char* text = nullptr;
        if (curl_url_get(handle.get(), which, &text, flags) != CURLUE_OK || !text) {
            return {};
        }
        std::string out(text);
        curl_free(text);
        return out;
    };
    CurlParts parts;
    parts.full = part(CURLUPART_URL, 0);
    parts.scheme = lowered(part(CURLUPART_SCHEME, 0));
    parts.host = lowered(part(CURLUPART_HOST, 0));
    parts.port = part(CURLUPART_PORT, CURLU_NO_DEFAULT_PORT);
    parts.path = upper_escapes(part(CURLUPART_PATH, 0));
    parts.query = upper_escapes(part(CURLUPART_QUERY, 0));
    return parts;
}

// Random URLs assembled from the pieces that matter: normalize_url() must keep exactly
// what libcurl would request (scheme, host, port, path after dot segments, query).
void test_normalize_agrees_with_libcurl_parser(void**) {
    std::mt19937 random(4242);
    auto pick = [&](std::initializer_list<const char*> items) {
        return std::string(items.begin()[random() % items.size()]);
    };
    int compared = 0;
    for (int round = 0; round < 5000; ++round) {
        std::string url = pick({"http://", "HTTP://", "https://", "HttpS://"});
        url += pick({"", "", "user@", "u:p@", "u%40x:p@"});
        url +=
            pick({"example.com", "Example.COM", "127.0.0.1", "[::1]", "[2001:DB8::1]", "h-1.test"});
        url += pick({"", "", ":80", ":443", ":8080", ":0080", ":"});
        int segments = static_cast<int>(random() % 5);
        for (int i = 0; i < segments; ++i) {
            url += "/" + pick({"a", "B", ".", "..", "%2f", "%7e", "x%20y", "", "c.d"});
        }
        url += pick({"", "", "?", "?a=1", "?b=2&a=1", "?x=%2f&y", "?q=a/../b"});
        url += pick({"", "", "#frag", "#a?b"});
        std::optional<CurlParts> original = curl_parts(url);
        if (!original) {
            continue;
        }
        std::string normalized = normalize_url(url, {});
        std::optional<CurlParts> ours = curl_parts(normalized);
        if (!ours || !(*ours == *original)) {
            print_error("%s -> %s\n", url.c_str(), normalized.c_str());
            if (ours) {
                print_error("curl: %s|%s|%s|%s|%s  ours: %s|%s|%s|%s|%s\n",
                            original->scheme.c_str(), original->host.c_str(),
                            original->port.c_str(), original->path.c_str(), original->query.c_str(),
                            ours->scheme.c_str(), ours->host.c_str(), ours->port.c_str(),
                            ours->path.c_str(), ours->query.c_str());
            }
        }
        assert_true(ours.has_value());
        assert_true(*ours == *original);
        // And the URL as curl itself rebuilds it normalises to the same text: equivalent
        // spellings of one request share one key.
        std::string from_curl = normalize_url(original->full, {});
        if (from_curl != normalized) {
            print_error("%s -> %s, but curl's %s -> %s\n", url.c_str(), normalized.c_str(),
                        original->full.c_str(), from_curl.c_str());
        }
        assert_string_equal(from_curl.c_str(), normalized.c_str());
        ++compared;
    }
    assert_true(compared > 4000);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_lowercases_scheme_and_host_only),
        cmocka_unit_test(test_normalize_drops_default_ports_only),
        cmocka_unit_test(test_normalize_empty_path_is_slash),
        cmocka_unit_test(test_normalize_drops_fragment_and_userinfo),
        cmocka_unit_test(test_normalize_resolves_dot_segments_and_escape_case),
        cmocka_unit_test(test_normalize_guesses_http_without_scheme),
        cmocka_unit_test(test_ignored_parameters_leave_url_and_key),
        cmocka_unit_test(test_query_order_kept_unless_sort_query),
        cmocka_unit_test(test_redact_url_leaves_out_secrets_and_ignored_parameters),
        cmocka_unit_test(test_method_is_case_insensitive_and_part_of_key),
        cmocka_unit_test(test_body_is_part_of_key_without_running_into_url),
        cmocka_unit_test(test_only_matched_headers_count_case_insensitively_and_trimmed),
        cmocka_unit_test(test_options_order_is_irrelevant_values_matter),
        cmocka_unit_test(test_credentials_change_key_salted_per_cache),
        cmocka_unit_test(test_key_format_version_is_hashed),
        cmocka_unit_test(test_large_body_key_equals_documented_encoding),
        cmocka_unit_test(test_key_hex_round_trip_and_rejects_malformed),
        cmocka_unit_test(test_keys_of_existing_caches_still_match),
        cmocka_unit_test(test_normalize_fuzz_is_idempotent_and_drops_secrets),
        cmocka_unit_test(test_normalize_agrees_with_libcurl_parser),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
