// The entry format (core/entry.h) and corruption handling through Cache::find.
#include "backends/registry.h"
#include "core/cache.h"
#include "core/entry.h"

#include <csetjmp>
#include <cstdlib>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>
#include <xxhash.h>

#include <unistd.h>

extern "C" {
#include <cmocka.h>
}

#include "tests/core/scratch.h"

using namespace curlcache;
using namespace curlcache::core;

namespace {

Entry sample_entry(std::string_view body) {
    Entry entry;
    entry.method = "GET";
    entry.url = "http://example.test/a?b=1";
    entry.status = 200;
    entry.header_blocks = {"HTTP/1.1 301 Moved\r\nLocation: /a?b=1\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"x\"\r\n\r\n"};
    entry.body = body;
    entry.infos = {{1, Info::Type::integer, -42, 0, {}},
                   {2, Info::Type::real, 0, 0.125, {}},
                   {3, Info::Type::text, 0, 0, "http://example.test/a?b=1"}};
    entry.created = 1700000000;
    entry.expires = 1700003600;
    entry.etag = "\"x\"";
    entry.last_modified = "Tue, 14 Nov 2023 22:13:20 GMT";
    return entry;
}

backends::Blob to_blob(const Encoded& encoded) {
    return std::make_shared<const std::string>(encoded.head + std::string(encoded.body));
}

void assert_same_entry(const Entry& a, const Entry& b) {
    assert_string_equal(a.method.c_str(), b.method.c_str());
    assert_string_equal(a.url.str().c_str(), b.url.str().c_str());
    assert_int_equal(a.status, b.status);
    assert_int_equal(a.header_blocks.size(), b.header_blocks.size());
    for (size_t i = 0; i < a.header_blocks.size(); ++i) {
        assert_true(a.header_blocks[i] == b.header_blocks[i]);
    }
    assert_int_equal(a.body.size(), b.body.size());
    assert_memory_equal(a.body.data(), b.body.data(), a.body.size());
    assert_int_equal(a.infos.size(), b.infos.size());
    for (size_t i = 0; i < a.infos.size(); ++i) {
        assert_int_equal(a.infos[i].id, b.infos[i].id);
        assert_int_equal(static_cast<int>(a.infos[i].type), static_cast<int>(b.infos[i].type));
        assert_int_equal(a.infos[i].integer, b.infos[i].integer);
        assert_true(a.infos[i].real == b.infos[i].real);
        assert_true(a.infos[i].text == b.infos[i].text);
    }
    assert_int_equal(a.created, b.created);
    assert_int_equal(a.expires, b.expires);
    assert_true(a.etag == b.etag);
    assert_true(a.last_modified == b.last_modified);
}

void test_round_trip_keeps_every_field(void**) {
    Entry entry = sample_entry("hello");
    auto decoded = decode(to_blob(encode(entry)));
    assert_true(decoded.has_value());
    assert_same_entry(entry, *decoded);
    assert_non_null(decoded->info(2));
    assert_null(decoded->info(99));
}

void test_round_trip_binary_mebibyte_body_without_copy(void**) {
    std::string body(1u << 20, '\0');
    for (size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
    }
    Entry entry = sample_entry(body);
    Encoded encoded = encode(entry);
    assert_ptr_equal(encoded.body.data(), body.data()); // encoding does not copy the body
    backends::Blob blob = to_blob(encoded);
    auto decoded = decode(blob);
    assert_true(decoded.has_value());
    assert_same_entry(entry, *decoded);
    // The decoded body points into the stored value, which the entry keeps alive.
    assert_true(decoded->body.data() >= blob->data() &&
                decoded->body.data() + decoded->body.size() == blob->data() + blob->size());
    assert_ptr_equal(decoded->storage.get(), blob.get());
}

// A decoded entry's texts are views into the stored value (no copy per field on a hit); a
// copy of the entry owns its texts and outlives the value; a field set later owns its bytes.
void test_decoded_texts_point_into_the_stored_value(void**) {
    Entry entry = sample_entry("body");
    backends::Blob blob = to_blob(encode(entry));
    const char* begin = blob->data();
    const char* end = blob->data() + blob->size();
    auto inside = [&](std::string_view text) {
        return text.data() >= begin && text.data() + text.size() <= end;
    };
    std::optional<Entry> decoded = decode(blob);
    assert_true(decoded.has_value());
    assert_true(inside(decoded->url) && inside(decoded->etag) && inside(decoded->last_modified));
    assert_true(inside(decoded->header_blocks[0]) && inside(decoded->header_blocks[1]));
    assert_true(inside(decoded->info(3)->text));

    Entry copy = *decoded;
    assert_false(inside(copy.url) || inside(copy.header_blocks[1]) || inside(copy.info(3)->text));
    Entry moved = std::move(*decoded); // a move keeps the views and the value with them
    assert_true(inside(moved.url) && inside(moved.header_blocks[1]));
    decoded.reset();
    moved = Entry();
    blob.reset(); // only `copy` is left, and it does not need the value
    assert_same_entry(entry, copy);

    Text text = Text::borrow("borrowed");
    text = std::string("owned now");
    assert_true(text == "owned now");
    Text taken = std::move(text);
    assert_true(taken == "owned now" && text.empty());
}

// An entry handed to recycle() lends its vectors to the thread's next decode: the next entry
// decodes into them (same allocation), empty of the last one's items, and is whole; an
// entry decoded on another thread, or with nothing recycled, gets its own.
void test_recycled_vectors_serve_the_next_decode(void**) {
    Entry stored = sample_entry("first");
    std::optional<Entry> first = decode(to_blob(encode(stored)));
    assert_true(first.has_value());
    const Info* infos_at = first->infos.data();
    const Text* blocks_at = first->header_blocks.data();
    recycle(*first);
    first.reset();

    // Other types where the recycled infos were (integer, real, text): nothing of the
    // recycled ones may show through (a text where an integer was, an integer's value).
    Entry other = sample_entry("second, longer body");
    other.header_blocks.pop_back();
    other.infos = {{7, Info::Type::text, 0, 0, "a text where an integer was"},
                   {8, Info::Type::real, 0, 2.5, {}},
                   {9, Info::Type::integer, 11, 0, {}}};
    std::optional<Entry> second = decode(to_blob(encode(other)));
    assert_true(second.has_value());
    assert_ptr_equal(second->infos.data(), infos_at);
    assert_ptr_equal(second->header_blocks.data(), blocks_at);
    assert_same_entry(other, *second);

    std::optional<Entry> third = decode(to_blob(encode(stored))); // nothing recycled since
    assert_true(third.has_value());
    assert_true(third->infos.data() != infos_at);
    assert_same_entry(stored, *third);

    // A vector too large to keep is let go of rather than held by the thread.
    Entry large = sample_entry("x");
    large.infos.resize(4096);
    recycle(large);
    std::optional<Entry> fourth = decode(to_blob(encode(stored)));
    assert_true(fourth.has_value());
    assert_true(fourth->infos.capacity() < 4096);
    assert_same_entry(stored, *fourth);
}

// exit() destroys the main thread's thread_local objects before it runs the atexit handlers,
// where a program may still make a transfer: recycle() and decode() must still work there
// (their spare vectors are per_thread(), base/per_thread.h). With a thread_local spare, this
// wrote into freed memory (ASan: heap-use-after-free in the check-asan run).
void fill_spare_before_exit() {
    std::optional<Entry> decoded = decode(to_blob(encode(sample_entry("kept until exit"))));
    if (decoded) {
        recycle(*decoded); // the thread's spare holds its vectors as exit() begins
    }
}

void recycle_and_decode_at_exit() {
    Entry stored = sample_entry("decoded at exit");
    backends::Blob blob = to_blob(encode(stored));
    std::optional<Entry> first = decode(blob);
    if (!first) {
        _exit(3);
    }
    recycle(*first);
    std::optional<Entry> second = decode(blob);
    if (!second || second->infos.size() != stored.infos.size() || second->info(3) == nullptr ||
        second->info(3)->text != stored.info(3)->text) {
        _exit(4);
    }
}

// The one-pass lookup finds what info() finds, first match included, absent ones null: ids
// alone on their filter bit, ids sharing one (1 and 56) and an id asked for twice (3).
void test_several_infos_in_one_pass(void**) {
    Entry entry = sample_entry("");
    entry.infos.push_back({2, Info::Type::integer, 7, 0, {}});  // a second id 2: not found
    entry.infos.push_back({56, Info::Type::integer, 8, 0, {}}); // shares id 1's filter bit
    const uint32_t ids[] = {3, 99, 2, 1, 56, 3};
    const Info* found[std::size(ids)];
    entry.info(ids, found);
    for (size_t i = 0; i < std::size(ids); ++i) {
        assert_ptr_equal(found[i], entry.info(ids[i]));
    }
    assert_null(found[1]);
    assert_true(found[2]->type == Info::Type::real && found[4]->integer == 8);
}

void test_empty_entry_round_trips(void**) {
    Entry entry;
    auto decoded = decode(to_blob(encode(entry)));
    assert_true(decoded.has_value());
    assert_int_equal(decoded->body.size(), 0);
    assert_int_equal(decoded->header_blocks.size(), 0);
}

void test_truncated_or_extended_value_is_rejected(void**) {
    std::string blob = *to_blob(encode(sample_entry("some body bytes")));
    for (size_t size = 0; size < blob.size(); ++size) {
        assert_false(decode(std::make_shared<const std::string>(blob.substr(0, size))).has_value());
    }
    assert_false(decode(std::make_shared<const std::string>(blob + "x")).has_value());
    assert_false(decode(nullptr).has_value());
}

void test_unknown_format_version_is_rejected(void**) {
    std::string blob = *to_blob(encode(sample_entry("body")));
    std::string newer = blob;
    newer[4] = static_cast<char>(k_entry_format_version + 1);
    assert_false(decode(std::make_shared<const std::string>(newer)).has_value());
    std::string older = blob;
    older[4] = 0;
    older[5] = 0;
    assert_false(decode(std::make_shared<const std::string>(older)).has_value());
}

// A blob with a valid prefix and checksum around arbitrary head bytes: what the head
// parser sees if a writer with a bug (or a hostile one) produced a well-checksummed value.
std::string checksummed(const std::string& head_fields, const std::string& body,
                        uint16_t version = 3) {
    std::string blob = "CCHE";
    blob += static_cast<char>(version & 0xff);
    blob += static_cast<char>(version >> 8);
    blob += std::string(2, '\0');
    for (int i = 0; i < 4; ++i) {
        blob += static_cast<char>(head_fields.size() >> (8 * i));
    }
    for (int i = 0; i < 8; ++i) {
        blob += static_cast<char>(static_cast<uint64_t>(body.size()) >> (8 * i));
    }
    std::string rest = head_fields + body;
    // Format 2 seeds the head's hash with the body's; format 1 hashed both back to back;
    // format 4 seeds it with the body's length (the body is covered by its chunk digests).
    uint64_t sum = version == 1   ? XXH3_64bits(rest.data(), rest.size())
                   : version >= 4 ? XXH3_64bits_withSeed(head_fields.data(), head_fields.size(),
                                                         body.size())
                                  : XXH3_64bits_withSeed(head_fields.data(), head_fields.size(),
                                                         XXH3_64bits(body.data(), body.size()));
    for (int i = 0; i < 8; ++i) {
        blob += static_cast<char>(sum >> (8 * i));
    }
    return blob + rest;
}

// The head fields format 3 adds after the infos, for an entry without Vary: four times
// and durations, the lifetime source and flags, two more durations, the Vary count and
// the variant's length. Cutting them off a format 3 head gives a format 1 or 2 head.
constexpr size_t k_format_3_tail = 4 * 8 + 1 + 1 + 2 * 8 + 4 + 4;
// Format 4 adds the chunk size, the chunk count and one digest per chunk.
size_t format_4_tail(const std::string& blob) {
    uint64_t body = 0;
    for (int i = 0; i < 8; ++i) {
        body |= static_cast<uint64_t>(static_cast<unsigned char>(blob[12 + i])) << (8 * i);
    }
    return 4 + 4 + 8 * ((body + curlcache::core::k_body_chunk - 1) / curlcache::core::k_body_chunk);
}

size_t head_size_of(const std::string& blob) {
    return static_cast<unsigned char>(blob[8]) | (static_cast<unsigned char>(blob[9]) << 8);
}

std::string older_head(const std::string& blob) {
    return blob.substr(28, head_size_of(blob) - format_4_tail(blob) - k_format_3_tail);
}

// The format 3 head of a format 4 blob (the chunk table cut off).
std::string format_3_head(const std::string& blob) {
    return blob.substr(28, head_size_of(blob) - format_4_tail(blob));
}

// Entries written before format 2 (head and body hashed back to back) are still served.
void test_format_1_entries_still_decode(void**) {
    std::string good = *to_blob(encode(sample_entry("format one body")));
    std::string old = checksummed(older_head(good), "format one body", 1);
    auto entry = decode(std::make_shared<const std::string>(old));
    assert_true(entry.has_value());
    assert_true(entry->body == "format one body");
    assert_int_equal(entry->format, 1);
    // ...and a format 1 blob with a format 2 checksum (or the reverse) is rejected.
    std::string mixed = checksummed(older_head(good), "format one body", 2);
    mixed[4] = 1;
    assert_false(decode(std::make_shared<const std::string>(mixed)).has_value());
}

// Format 2 entries (before freshness and Vary were stored) still decode, marked as such so
// that the engine works their freshness out again from the stored headers.
void test_format_2_entries_decode_without_freshness(void**) {
    std::string good = *to_blob(encode(sample_entry("format two body")));
    auto entry = decode(
        std::make_shared<const std::string>(checksummed(older_head(good), "format two body", 2)));
    assert_true(entry.has_value());
    assert_int_equal(entry->format, 2);
    assert_true(entry->vary.empty());
    assert_int_equal(entry->freshness.lifetime, 0);
    assert_true(entry->body == "format two body");
}

// Format 3 keeps the freshness decided at store time and the Vary data.
void test_freshness_and_vary_round_trip(void**) {
    Entry entry = sample_entry("varied");
    entry.freshness.request_time = 1700000000;
    entry.freshness.response_time = 1700000002;
    entry.freshness.corrected_initial_age = 7;
    entry.freshness.lifetime = 3600;
    entry.freshness.source = curlcache::core::http::LifetimeSource::heuristic;
    entry.freshness.no_cache = true;
    entry.freshness.immutable = true;
    entry.freshness.stale_while_revalidate = 30;
    entry.freshness.stale_if_error = 86400;
    entry.vary = {"user-agent", "x-variant"};
    entry.variant = "user-agent:curl\nx-variant:a\n";
    auto back = decode(to_blob(encode(entry)));
    assert_true(back.has_value());
    assert_int_equal(back->format, k_entry_format_version);
    const auto& f = back->freshness;
    assert_int_equal(f.request_time, 1700000000);
    assert_int_equal(f.response_time, 1700000002);
    assert_int_equal(f.corrected_initial_age, 7);
    assert_int_equal(f.lifetime, 3600);
    assert_int_equal(f.source, curlcache::core::http::LifetimeSource::heuristic);
    assert_true(f.no_cache);
    assert_false(f.must_revalidate);
    assert_true(f.immutable);
    assert_int_equal(f.stale_while_revalidate, 30);
    assert_int_equal(f.stale_if_error, 86400);
    assert_int_equal(back->vary.size(), 2);
    assert_string_equal(back->vary[1].c_str(), "x-variant");
    assert_string_equal(back->variant.c_str(), entry.variant.c_str());
    assert_false(back->is_variant_index());
}

// A body hashed piece by piece while it streams in gives the head encode() writes.
void test_streamed_body_digest_matches_encode(void**) {
    std::string body(300000, '\0');
    for (size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>((i * 7919) >> 3);
    }
    Entry entry = sample_entry(body);
    Encoded whole = encode(entry);
    BodyDigest digest;
    for (size_t at = 0; at < body.size(); at += 16384) {
        digest.update(std::string_view(body).substr(at, 16384));
    }
    Entry without_body = entry;
    without_body.body = {};
    std::string head = encode_head(without_body, body.size(), digest.chunks());
    assert_true(head == whole.head);
    auto decoded = decode(std::make_shared<const std::string>(head + body));
    assert_true(decoded.has_value());
    assert_true(decoded->body == body);
}

void test_checksummed_garbage_heads_never_crash(void**) {
    std::string good = *to_blob(encode(sample_entry("body")));
    // The helper reproduces the real layout: a well-formed head decodes.
    assert_true(
        decode(std::make_shared<const std::string>(checksummed(format_3_head(good), "body")))
            .has_value());
    std::mt19937 random(777);
    std::string real_head = format_3_head(good);
    int decoded = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string head;
        if (round % 2 == 0) {
            head.resize(random() % 96);
            for (char& c : head) {
                c = static_cast<char>(random() % 4 == 0 ? 0xff : random() & 0xff);
            }
        } else { // the real head with a few bytes changed, truncated or extended
            head = real_head;
            for (int k = 0; k < 3; ++k) {
                head[random() % head.size()] = static_cast<char>(random());
            }
            head.resize(random() % (head.size() + 8));
        }
        auto entry = decode(std::make_shared<const std::string>(checksummed(head, "b")));
        decoded += entry.has_value() ? 1 : 0;
    }
    assert_true(decoded < 20000); // most garbage is refused; none of it crashed
}

// Stores `value` raw under the key, as a damaged disk or a foreign writer would.
void put_raw(backends::Storage& storage, const Key& key, const std::string& value) {
    backends::Metadata meta;
    meta.key = key.hex();
    meta.method = "GET";
    meta.url = "http://example.test/a?b=1";
    meta.status = 200;
    std::string_view piece(value);
    assert_true(storage.put(meta, backends::Pieces(&piece, 1)).has_value());
}

// Every single flipped byte of a stored entry makes Cache::find report a miss, count it
// as corrupt and remove the entry; the intact entry is a hit.
void flipped_bytes_are_misses_and_removed(const char* backend) {
    config::Settings settings;
    settings.backend = {backend};
    settings.name = scratch_path(std::string(backend).append(".store").c_str());
    settings.sqlite_fast_save = true;
    auto cache = Cache::open(settings);
    if (!cache) {
        print_error("%s\n", cache.error().c_str());
    }
    assert_true(cache.has_value());
    Cache& c = **cache;
    Key key{0x1111, 0x2222};
    std::string good = *to_blob(encode(sample_entry("the body")));

    put_raw(c.storage(), key, good);
    auto hit = c.find(key);
    assert_true(hit.has_value() && hit->has_value());
    assert_string_equal(std::string((*hit)->body).c_str(), "the body");

    for (size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
        put_raw(c.storage(), key, bad);
        auto found = c.find(key);
        assert_true(found.has_value()); // not a backend error
        if (found->has_value()) {
            print_error("%s: flipping byte %zu went unnoticed\n", backend, i);
        }
        assert_false(found->has_value());
        assert_int_equal(c.stats().corrupt.load(), i + 1);
        auto after = c.storage().get(key.hex());
        assert_true(after.has_value());
        assert_false(after->has_value()); // removed
    }
    // Truncated in storage: also a miss, also removed.
    put_raw(c.storage(), key, good.substr(0, good.size() - 1));
    auto truncated = c.find(key);
    assert_true(truncated.has_value() && !truncated->has_value());
    assert_false(c.storage().get(key.hex())->has_value());
}

// A storage whose value changes between two reads, as when another process stores a good
// entry just after this one read a damaged value.
class ChangingStorage : public backends::Storage {
  public:
    std::vector<backends::Blob> reads; // returned one after another, the last one repeated
    int removes = 0;
    std::string_view name() const override { return "changing"; }
    std::string location() const override { return ""; }
    backends::Result<std::optional<backends::Blob>> get(std::string_view) override {
        backends::Blob next = reads.front();
        if (reads.size() > 1) {
            reads.erase(reads.begin());
        }
        return std::optional<backends::Blob>(next);
    }
    backends::Result<void> put(const backends::Metadata&, backends::Pieces) override { return {}; }
    backends::Result<bool> remove(std::string_view) override {
        ++removes;
        return true;
    }
    backends::Result<void> scan(const std::function<bool(const backends::Metadata&)>&) override {
        return {};
    }
    backends::Result<void> clear() override { return {}; }
    backends::Result<backends::Usage> usage() override { return backends::Usage{}; }
};

void test_entry_replaced_after_a_corrupt_read_is_served_not_removed(void**) {
    auto storage = std::make_unique<ChangingStorage>();
    ChangingStorage* raw = storage.get();
    std::string good = *to_blob(encode(sample_entry("new body")));
    std::string bad = good;
    bad[bad.size() - 1] ^= 1;
    raw->reads = {std::make_shared<const std::string>(bad),
                  std::make_shared<const std::string>(good)};
    auto cache = Cache::with_storage(config::Settings{}, std::move(storage));
    auto found = cache->find(Key{5, 6});
    assert_true(found.has_value() && found->has_value());
    assert_string_equal(std::string((*found)->body).c_str(), "new body");
    assert_int_equal(raw->removes, 0);
    assert_int_equal(cache->stats().corrupt.load(), 1); // the damaged read is still counted

    // Still damaged on the second look: removed.
    raw->reads = {std::make_shared<const std::string>(bad)};
    found = cache->find(Key{5, 6});
    assert_true(found.has_value() && !found->has_value());
    assert_int_equal(raw->removes, 1);
}

void test_flipped_byte_in_memory_backend_is_miss_and_removed(void**) {
    flipped_bytes_are_misses_and_removed("memory");
}

void test_flipped_byte_in_sqlite_backend_is_miss_and_removed(void**) {
    flipped_bytes_are_misses_and_removed("sqlite");
}

void test_store_then_find_through_cache(void**) {
    config::Settings settings;
    settings.backend = {"memory"};
    settings.expire_after = 60;
    auto cache = Cache::open(settings);
    assert_true(cache.has_value());
    Entry entry = sample_entry("stored body");
    entry.url = "http://user:pw@example.test/a";
    Key key{1, 2};
    auto stored = (*cache)->store(key, entry);
    assert_true(stored.has_value() && *stored);
    assert_string_equal(entry.url.str().c_str(), "http://example.test/a"); // no credentials at rest
    assert_true(entry.expires == entry.created + 60);
    auto found = (*cache)->find(key);
    assert_true(found.has_value() && found->has_value());
    assert_string_equal(std::string((*found)->body).c_str(), "stored body");
    assert_int_equal((*cache)->stats().stores.load(), 1);

    Entry refused = sample_entry("x");
    refused.status = 500;
    auto declined = (*cache)->store(Key{3, 4}, refused);
    assert_true(declined.has_value());
    assert_false(*declined);
    assert_false((*cache)->find(Key{3, 4})->has_value());
}

// A body streamed through a BodySink is stored like one given whole, on every backend kind
// the sink meets (memory keeps the default buffered stream); policy still decides.
void test_streamed_store_through_cache(void**) {
    for (const char* backend : {"memory", "sqlite"}) {
        config::Settings settings;
        settings.backend = {backend};
        settings.name = scratch_path("streamed.sqlite");
        auto cache = Cache::open(settings);
        assert_true(cache.has_value());
        std::string body(2u << 20, 'b');
        body[12345] = 'x';
        auto sink = (*cache)->begin_body(body.size());
        assert_non_null(sink.get());
        for (size_t at = 0; at < body.size(); at += 100000) {
            assert_true(sink->append(std::string_view(body).substr(at, 100000)));
        }
        assert_true(sink->size() == body.size());
        Entry entry = sample_entry("");
        entry.url = "http://user:pw@example.test/streamed";
        auto stored = (*cache)->store(Key{5, 6}, entry, *sink);
        assert_true(stored.has_value() && *stored);
        assert_string_equal(entry.url.str().c_str(), "http://example.test/streamed");
        auto found = (*cache)->find(Key{5, 6});
        assert_true(found.has_value() && found->has_value());
        assert_true((*found)->body == body);

        // Declined by policy (status), and a sink dropped before store: nothing stored.
        auto declined_sink = (*cache)->begin_body(0);
        assert_true(declined_sink->append("nope"));
        Entry refused = sample_entry("");
        refused.status = 500;
        auto declined = (*cache)->store(Key{7, 8}, refused, *declined_sink);
        assert_true(declined.has_value() && !*declined);
        assert_false((*cache)->find(Key{7, 8})->has_value());
        {
            auto dropped = (*cache)->begin_body(0);
            assert_true(dropped->append("partial"));
        }
        assert_false((*cache)->find(Key{9, 10})->has_value());
        assert_int_equal((*cache)->stats().stores.load(), 1);
    }
}

} // namespace

int main() {
    std::atexit(recycle_and_decode_at_exit);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_field),
        cmocka_unit_test(test_round_trip_binary_mebibyte_body_without_copy),
        cmocka_unit_test(test_recycled_vectors_serve_the_next_decode),
        cmocka_unit_test(test_decoded_texts_point_into_the_stored_value),
        cmocka_unit_test(test_several_infos_in_one_pass),
        cmocka_unit_test(test_empty_entry_round_trips),
        cmocka_unit_test(test_truncated_or_extended_value_is_rejected),
        cmocka_unit_test(test_unknown_format_version_is_rejected),
        cmocka_unit_test(test_format_2_entries_decode_without_freshness),
        cmocka_unit_test(test_freshness_and_vary_round_trip),
        cmocka_unit_test(test_format_1_entries_still_decode),
        cmocka_unit_test(test_streamed_body_digest_matches_encode),
        cmocka_unit_test(test_checksummed_garbage_heads_never_crash),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_memory_backend_is_miss_and_removed,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_sqlite_backend_is_miss_and_removed,
                                        scratch_setup, scratch_teardown),
        cmocka_unit_test(test_entry_replaced_after_a_corrupt_read_is_served_not_removed),
        cmocka_unit_test_setup_teardown(test_store_then_find_through_cache, scratch_setup,
                                        scratch_teardown),
        cmocka_unit_test_setup_teardown(test_streamed_store_through_cache, scratch_setup,
                                        scratch_teardown),
    };
    const int failed = cmocka_run_group_tests(tests, nullptr, nullptr);
    fill_spare_before_exit();
    return failed;
}
