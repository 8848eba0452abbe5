// Fuzz target: the cache key (core/key.*): URL normalisation, redaction, credentials and
// make_key over any request. Checks that normalising is idempotent (a normalised URL keys
// and stores like the original), that keys are deterministic and survive hex, that a URL
// keys as its normalised form when it has no credentials, and that the stored (redacted)
// URL is the normalised one and never carries userinfo or an ignored parameter.
//
// Input: a flags byte (1: sort_query), then NUL-separated pieces: ignored_parameters and
// match_headers (comma-separated), method, URL, body, and request header lines.
#include "core/key.h"
#include "tests/fuzz/fuzz_input.h"

#include <algorithm>

namespace {

using namespace curlcache;

std::string_view authority_of(std::string_view url) {
    const size_t start = url.find("://");
    FUZZ_CHECK(start != std::string_view::npos); // normalised URLs always have a scheme
    url.remove_prefix(start + 3);
    return url.substr(0, url.find_first_of("/?"));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    config::Settings settings;
    settings.sort_query = (in.byte() & 1) != 0;
    settings.ignored_parameters = fuzz::split(in.piece(), ',');
    settings.match_headers = fuzz::split(in.piece(), ',');
    core::Request request;
    request.method = in.piece();
    request.url = in.piece();
    request.body = in.piece();
    request.headers = in.pieces();

    const std::string normal = core::normalize_url(request.url, settings);
    FUZZ_CHECK(core::normalize_url(normal, settings) == normal);
    const std::string redacted = core::redact_url(request.url, settings);
    FUZZ_CHECK(redacted == normal); // key.h: the same text, named for why it is used
    FUZZ_CHECK(authority_of(normal).find('@') == std::string_view::npos);
    if (const size_t question = normal.find('?'); question != std::string::npos) {
        for (const std::string& param : fuzz::split(std::string_view(normal).substr(question + 1), '&')) {
            const std::string name = param.substr(0, param.find('='));
            FUZZ_CHECK(std::find(settings.ignored_parameters.begin(),
                                 settings.ignored_parameters.end(),
                                 name) == settings.ignored_parameters.end());
        }
    }
    const std::string credentials = core::url_credentials(request.url);

    const core::Key key = core::make_key(request, settings);
    FUZZ_CHECK(core::make_key(request, settings) == key);
    const std::string hex = key.hex();
    FUZZ_CHECK(hex.size() == 32);
    FUZZ_CHECK(core::Key::from_hex(hex) == key);
    if (credentials.empty()) {
        core::Request normalised = request;
        normalised.url = normal;
        FUZZ_CHECK(core::make_key(normalised, settings) == key);
    }
    (void)core::variant_key(key, request.body);
    for (const std::string& line : request.headers) {
        (void)core::key_covers_header(line, settings);
    }
    return 0;
}
