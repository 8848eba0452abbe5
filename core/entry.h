// One cached response and its binary format (versioned, checksummed).
#pragma once

#include "backends/storage.h"
#include "core/http/freshness.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace curlcache::core {

// 2: the checksum hashes the body on its own first, so a body can be hashed while it streams
// in and the head added at the end. Format 1 (head, then body) is still read.
// 3: the HTTP freshness decided at store time (http::Freshness) and the Vary data follow
// the infos. Formats 1 and 2 are still read; their freshness is worked out again from the
// stored header block (see Entry::format).
// 4: the head carries the XXH3-64 of each k_body_chunk bytes of the body (and no digest of
// the whole body), and the checksum covers the head alone (seeded with the body's length),
// so that a hit can check the head first and then each chunk of the body just before it
// is delivered (a large body is streamed to the program, never held whole in memory).
inline constexpr uint16_t k_entry_format_version = 4;

// Bytes of body per stored checksum in format 4. 1 MiB: the largest buffer a streamed hit
// holds, and 8 bytes of head per MiB of body (8 KiB for a 1 GiB body).
inline constexpr uint32_t k_body_chunk = 1u << 20;

// A piece of an entry's text: either bytes of its own (an entry built on a miss, or a field
// set since) or a view into the stored value the entry was decoded from, which
// Entry::storage keeps alive: a hit copies no header block, URL or info text. It reads as a
// std::string_view. A copy owns its bytes (it may outlive the stored value); a move keeps a
// view a view, so a borrowed Text must not be moved out of its entry.
class Text {
  public:
    Text() noexcept = default;
    Text(std::string_view text) { assign(text); }
    Text(const std::string& text) { assign(text); }
    Text(const char* text) { assign(text); }
    Text(const Text& other) { assign(other.view()); }
    Text(Text&& other) noexcept
        : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)),
          m_owned(std::move(other.m_owned)) {}
    Text& operator=(const Text& other) {
        if (this != &other) {
            *this = Text(other);
        }
        return *this;
    }
    Text& operator=(Text&& other) noexcept {
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
        m_owned = std::move(other.m_owned);
        return *this;
    }
    ~Text() = default;

    // A view of `text`, which must outlive this (the decoder's bytes in Entry::storage).
    static Text borrow(std::string_view text) noexcept {
        Text out;
        out.m_data = text.data();
        out.m_size = text.size();
        return out;
    }

    std::string_view view() const noexcept { return {m_data, m_size}; }
    operator std::string_view() const noexcept { return view(); }
    std::string str() const { return std::string(view()); }
    const char* data() const noexcept { return m_data; }
    size_t size() const noexcept { return m_size; }
    bool empty() const noexcept { return m_size == 0; }
    // One overload per kind of right-hand side, so that none of them is ambiguous.
    friend bool operator==(const Text& a, const Text& b) noexcept { return a.view() == b.view(); }
    friend bool operator==(const Text& a, std::string_view b) noexcept { return a.view() == b; }
    friend bool operator==(const Text& a, const std::string& b) noexcept { return a.view() == b; }
    friend bool operator==(const Text& a, const char* b) noexcept {
        return a.view() == std::string_view(b);
    }

  private:
    void assign(std::string_view text) {
        if (!text.empty()) {
            m_owned = std::make_unique_for_overwrite<char[]>(text.size());
            std::memcpy(m_owned.get(), text.data(), text.size());
        }
        m_data = m_owned.get();
        m_size = text.size();
    }

    const char* m_data = nullptr; // the bytes: m_owned's, or borrowed
    size_t m_size = 0;
    std::unique_ptr<char[]> m_owned;
};

// A transfer fact the program may ask curl_easy_getinfo for, recorded on the miss so a hit
// can answer it. `id` is the CURLINFO value; the type follows CURLINFO's type bits.
struct Info {
    enum class Type : uint8_t { integer, real, text };
    uint32_t id = 0;
    Type type = Type::integer;
    int64_t integer = 0;
    double real = 0;
    Text text;
};

// A body left in storage and read chunk by chunk as it is delivered (a large hit: see
// Cache::find). Each chunk is checked against its digest before anyone sees it.
struct StoredBody {
    std::unique_ptr<backends::ValueReader> reader;
    uint64_t offset = 0; // where the body starts in the stored value
    uint64_t size = 0;
    uint32_t chunk_size = k_body_chunk;
    // One XXH3-64 per chunk (format 4). Empty for an older format, whose body was
    // checked whole by a first pass over it when it was found.
    std::vector<uint64_t> digests;
    std::string key;         // the storage key it was found under (Cache::drop_corrupt)
    std::string first_chunk; // chunk 0, read and checked when the entry was found

    size_t chunks() const { return static_cast<size_t>((size + chunk_size - 1) / chunk_size); }
    // Reads chunk `index` into `into` (resized to its length) and checks it: true when it
    // is good, false when it fails its checksum, an error when the storage cannot read it.
    backends::Result<bool> read_chunk(size_t index, std::string& into);
};

struct Entry {
    std::string method; // "GET"
    Text url;           // redacted request URL
    long status = 0;    // final status
    // Every response's raw header block exactly as delivered to the header callback, one
    // per hop of a followed redirect chain: status line, header lines, blank line, "\r\n"
    // endings kept.
    std::vector<Text> header_blocks;
    // The body exactly as delivered to the write callback (decoded under ACCEPT_ENCODING).
    // Points into `storage` for a decoded entry, or at the caller's buffer when encoding.
    std::string_view body;
    std::vector<Info> infos; // recorded getinfo values
    int64_t created = 0;     // unix seconds
    int64_t expires = 0;     // unix seconds, 0 = never
    Text etag;               // validators of the final response, "" if none
    Text last_modified;
    // The final response's freshness as decided when it was stored; `expires` is its
    // stale_at() (0 when it never goes stale), so that a hit compares one number.
    http::Freshness freshness;
    // The request header names the response's Vary nominated (lower-case, sorted) and the
    // canonical values of the request that stored it (http::variant_of). An entry with
    // `vary` set and no header blocks is a variant index: it only says that the responses
    // for this key are stored per variant, under variant_key(key, variant).
    std::vector<std::string> vary;
    std::string variant;
    uint16_t format = k_entry_format_version; // the format it was decoded from

    // Keeps `body` and every borrowed Text alive for a decoded entry.
    backends::Blob storage;
    // A large body left in storage (then `body` is empty): read it through this.
    std::shared_ptr<StoredBody> stored_body;

    uint64_t body_size() const { return stored_body ? stored_body->size : body.size(); }

    const Info* info(uint32_t id) const; // nullptr when not recorded
    // found[i] = info(ids[i]) for each i, in one pass over the infos (an entry records ~35;
    // a hit asks for several).
    void info(std::span<const uint32_t> ids, std::span<const Info*> found) const;
    bool fresh(int64_t now) const { return expires == 0 || now < expires; }
    bool is_variant_index() const { return !vary.empty() && header_blocks.empty(); }
};

// Takes the header-block and info vectors of an entry a transfer is done with, so that the
// thread's next decode() fills them instead of allocating two new ones (bounded: the vectors
// of an unusually large entry stay where they are). The infos are kept as they are (decode()
// sets every field of each again); the entry is left with what the thread held before, and
// is the caller's to release, unread.
void recycle(Entry& entry) noexcept;

// The serialised form: a small head (everything but the body) and the body, written one
// after the other so the body is never copied into a second buffer.
struct Encoded {
    std::string head;
    std::string_view body;
    std::array<std::string_view, 2> pieces() const { return {head, body}; }
};

Encoded encode(const Entry& entry);

// The XXH3-64 of each k_body_chunk bytes of a body hashed piece by piece as it arrives (see
// Cache::begin_body).
class BodyDigest {
  public:
    BodyDigest(); // throws std::bad_alloc
    ~BodyDigest();
    BodyDigest(const BodyDigest&) = delete;
    BodyDigest& operator=(const BodyDigest&) = delete;
    void update(std::string_view bytes);
    // The digests of every chunk so far, the last (partial) one included.
    std::vector<uint64_t> chunks() const;

  private:
    void* m_state;              // XXH3_state_t of the chunk in progress, kept out of this header
    uint64_t m_in_chunk = 0;    // bytes of it hashed so far
    std::vector<uint64_t> m_done; // digests of the full chunks
};

// The digests of `body`'s chunks, in one pass (what BodyDigest gives piece by piece).
std::vector<uint64_t> chunk_digests(std::string_view body);

// The head of an entry whose body (not entry.body: that is ignored) has `body_size` bytes
// and the chunk digests `chunks`; the stored value is this head followed by that body.
std::string encode_head(const Entry& entry, uint64_t body_size,
                        const std::vector<uint64_t>& chunks);

// Parses and verifies a stored value. nullopt when it is truncated, has a bad checksum or
// an unknown format version: the caller treats that as a miss and removes it. The body is
// not copied: it points into `blob`, which the entry keeps.
std::optional<Entry> decode(backends::Blob blob);
// The same into `entry` (a default Entry), where the caller wants it (an Entry is large: a
// hit does not move it from one optional to the next): false when corrupt (then `entry` is
// left a default Entry: nothing in it points into `blob`).
bool decode(backends::Blob blob, Entry& entry);

// Reads and verifies the head of a stored value through `reader` and leaves the body there
// (Entry::stored_body). A format 4 body is checked chunk by chunk later, as it is read; an
// older one is read through once now to check it whole. nullopt when corrupt (as decode);
// an error when the reader failed.
backends::Result<std::optional<Entry>> decode_streamed(std::unique_ptr<backends::ValueReader> reader);

} // namespace curlcache::core
