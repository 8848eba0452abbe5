// Fuzz target: core::decode, the reader of stored entries. Storage is not trusted: a
// filesystem tree or a Redis server shared with others may hand it any bytes, and the
// checksum only catches accidents. Checks that decode never crashes, that what it accepts
// encodes and decodes again to the same entry, and that the freshness arithmetic a hit does
// on the decoded numbers stays defined.
//
// Input: one byte, then
//   byte % 4 == 0: the stored value as it is (exercises the prefix checks);
//   byte % 4 == 1..3: the length of the head fields (u16, little-endian; cut to what
//     follows), the head fields of that format version, and the body. The prefix (magic, version, sizes, checksum) is written here, so that mutations reach the
//     field parser instead of dying at the checksum.
#include "core/entry.h"
#include "core/http/freshness.h"
#include "tests/fuzz/fuzz_input.h"

#include <xxhash.h>

#include <cstring>
#include <memory>

namespace {

using namespace curlcache;

void put_le(std::string& out, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        out += static_cast<char>(value >> (8 * i));
    }
}

// A stored value with a valid prefix around `head` and `body` (entry.cpp's layout).
std::string seal(unsigned version, std::string_view head, std::string_view body) {
    std::string blob("CCHE");
    put_le(blob, version, 2);
    put_le(blob, 0, 2);
    put_le(blob, head.size(), 4);
    put_le(blob, body.size(), 8);
    const uint64_t sum =
        version == 1 ? XXH3_64bits(std::string(head).append(body).data(), head.size() + body.size())
                     : XXH3_64bits_withSeed(head.data(), head.size(),
                                            XXH3_64bits(body.data(), body.size()));
    put_le(blob, sum, 8);
    blob.append(head).append(body);
    return blob;
}

bool same_infos(const std::vector<core::Info>& a, const std::vector<core::Info>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].integer != b[i].integer ||
            a[i].text != b[i].text ||
            std::memcmp(&a[i].real, &b[i].real, sizeof a[i].real) != 0) {
            return false;
        }
    }
    return true;
}

bool same_freshness(const core::http::Freshness& a, const core::http::Freshness& b) {
    return a.request_time == b.request_time && a.response_time == b.response_time &&
           a.corrected_initial_age == b.corrected_initial_age && a.lifetime == b.lifetime &&
           a.source == b.source && a.no_cache == b.no_cache &&
           a.must_revalidate == b.must_revalidate && a.immutable == b.immutable &&
           a.stale_while_revalidate == b.stale_while_revalidate &&
           a.stale_if_error == b.stale_if_error;
}

void check_round_trip(const core::Entry& entry) {
    const core::Encoded encoded = core::encode(entry);
    auto blob = std::make_shared<const std::string>(std::string(encoded.head).append(encoded.body));
    const std::optional<core::Entry> again = core::decode(blob);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->format == core::k_entry_format_version);
    FUZZ_CHECK(again->method == entry.method && again->url == entry.url);
    FUZZ_CHECK(again->status == entry.status && again->created == entry.created &&
               again->expires == entry.expires);
    FUZZ_CHECK(again->etag == entry.etag && again->last_modified == entry.last_modified);
    FUZZ_CHECK(again->header_blocks == entry.header_blocks);
    FUZZ_CHECK(again->body == entry.body);
    FUZZ_CHECK(same_infos(again->infos, entry.infos));
    FUZZ_CHECK(same_freshness(again->freshness, entry.freshness));
    FUZZ_CHECK(again->vary == entry.vary && again->variant == entry.variant);
    FUZZ_CHECK(core::encode(*again).head == encoded.head);
}

// What a hit computes from a stored entry; any value is possible here.
void use(const core::Entry& entry) {
    const int64_t now = 1'800'000'000;
    (void)entry.fresh(now);
    (void)entry.info(0);
    (void)entry.is_variant_index();
    const core::http::Freshness& f = entry.freshness;
    (void)f.current_age(now);
    (void)f.stale_at();
    (void)f.fresh(now);
    const core::http::CacheControl none;
    (void)core::http::usable(f, none, now);
    (void)core::http::serve_stale_while_revalidate(f, none, now);
    (void)core::http::serve_stale_on_error(f, none, 3600, now);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const unsigned mode = in.byte() % 4;
    std::string blob;
    if (mode == 0) {
        blob = in.rest();
    } else {
        const size_t length = in.byte() | (size_t{in.byte()} << 8);
        const std::string_view rest = in.rest();
        const std::string_view head = rest.substr(0, length);
        blob = seal(mode, head, rest.substr(head.size()));
    }
    const std::optional<core::Entry> entry =
        core::decode(std::make_shared<const std::string>(std::move(blob)));
    if (entry) {
        use(*entry);
        check_round_trip(*entry);
    }
    return 0;
}
