// Fuzz target: the header-block rules a hit and a revalidation apply (core/http/vary.*,
// validation.*, invalidation.*): Vary names and variants, conditional request lines, 304
// selection and merging, the Age header, and the Location/Content-Location resolver.
// Checks: Vary names are lower-case, sorted and unique; a variant is deterministic; a merge
// keeps the stored status line; with_age sets exactly one Age line; invalidation targets
// start with the request URL, are unique and carry no fragment.
//
// Input: NUL-separated pieces: request URL, method, stored header block, 304 header block,
// stored ETag, stored Last-Modified, then request header lines.
#include "core/easy/http_text.h"
#include "core/http/invalidation.h"
#include "core/http/validation.h"
#include "core/http/vary.h"
#include "tests/fuzz/fuzz_input.h"

#include <algorithm>
#include <span>

namespace {

using namespace curlcache::core::http;
namespace easy = curlcache::core::easy;

std::string_view first_line(std::string_view block) {
    return block.substr(0, block.find_first_of("\r\n"));
}

// Age lines after the status line (whatever the first line says, it is the status line).
size_t count_age_lines(std::string_view block) {
    size_t count = 0;
    const std::vector<std::string_view> lines = easy::split_lines(block);
    for (std::string_view line : std::span(lines).subspan(lines.empty() ? 0 : 1)) {
        std::string_view name, value;
        count += easy::split_header(line, name, value) && easy::iequals(name, "age") ? 1 : 0;
    }
    return count;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    curlcache::fuzz::Input in(data, size);
    const std::string_view url = in.piece();
    const std::string_view method = in.piece();
    const std::string_view stored = in.piece();
    const std::string_view not_modified = in.piece();
    const std::string_view etag = in.piece();
    const std::string_view last_modified = in.piece();
    const std::vector<std::string> request_lines = in.pieces();

    const std::vector<std::string> names = vary_names(stored);
    FUZZ_CHECK(std::is_sorted(names.begin(), names.end()));
    FUZZ_CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
    for (const std::string& name : names) {
        FUZZ_CHECK(!name.empty());
        FUZZ_CHECK(std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
    }
    if (names != std::vector<std::string>{"*"}) {
        const std::string variant = variant_of(names, request_lines);
        FUZZ_CHECK(variant_of(names, request_lines) == variant);
    }

    for (const std::string& line : conditional_lines(etag, last_modified)) {
        FUZZ_CHECK(line.find_first_of("\r\n") == std::string::npos);
    }
    (void)selects(not_modified, etag, last_modified);
    const std::string merged = merge_not_modified(stored, not_modified);
    if (!stored.empty()) { // a stored block always has its status line
        FUZZ_CHECK(first_line(merged) == first_line(stored));
    }
    const std::string aged = with_age(stored, 42);
    if (stored.find("\n\r\n") != std::string_view::npos || stored.find("\n\n") != std::string_view::npos) {
        FUZZ_CHECK(count_age_lines(aged) == 1);
    }

    (void)is_unsafe(method);
    (void)invalidates(method, 200);
    const std::vector<std::string> targets = invalidation_targets(url, not_modified);
    FUZZ_CHECK(!targets.empty());
    const std::string_view trimmed = easy::trim(url);
    FUZZ_CHECK(targets.front() == trimmed.substr(0, trimmed.find('#')));
    for (size_t i = 0; i < targets.size(); ++i) {
        FUZZ_CHECK(targets[i].find('#') == std::string::npos);
        for (size_t j = i + 1; j < targets.size(); ++j) {
            FUZZ_CHECK(targets[i] != targets[j]);
        }
    }
    return 0;
}
