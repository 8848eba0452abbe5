// The stored form of an entry. Layout (all integers little-endian):
//
//   offset  size  field
//   0       4     magic "CCHE"
//   4       2     format version (k_entry_format_version)
//   6       2     reserved, 0 (anything else is rejected: the prefix is not checksummed)
//   8       4     head length: bytes of the head fields that follow the prefix
//   12      8     body length
//   20      8     checksum: XXH3-64 of the head fields seeded with the XXH3-64 of the body
//                 (format 1: XXH3-64 of the head fields followed by the body)
//   28      ...   head fields, then the body
//
// Head fields: strings are a u32 length and bytes; numbers are u64/i64. Format 3 adds, after
// the infos: request_time, response_time, corrected_initial_age, lifetime (i64 each), the
// lifetime source (u8), flags (u8: 1 no-cache, 2 must-revalidate, 4 immutable),
// stale-while-revalidate and stale-if-error (i64), the Vary names (u32 count, strings) and
// the variant (string). Hashing the body on
// its own lets a body be hashed while it streams into storage, before the head is known.
// Format 4 adds, after the variant: the chunk size (u32), the chunk count (u32) and the
// XXH3-64 of each chunk of the body (u64 each); its checksum is the XXH3-64 of the head
// fields seeded with the body length, and covers the body through the chunk digests.
#include "core/entry.h"

#include "base/per_thread.h"

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
// XXH3 through libxxhash's runtime dispatch: the AVX2/AVX-512 code where the CPU has it
// (Debian builds the library for baseline x86-64, SSE2). A 1 MiB hit spent half its time
// in the SSE2 checksum.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

namespace curlcache::core {

namespace {

constexpr char k_magic[4] = {'C', 'C', 'H', 'E'};
constexpr size_t k_prefix_size = 28;
constexpr size_t k_checksum_offset = 20;
// Guards against absurd counts in a damaged head (the checksum catches damage; this only
// keeps a hostile blob from making us reserve gigabytes before the check fails).
constexpr uint64_t k_max_items = 1u << 20;

void put_u16(std::string& out, uint16_t v) {
    out += static_cast<char>(v & 0xff);
    out += static_cast<char>(v >> 8);
}

void put_u32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out += static_cast<char>(v >> (8 * i));
    }
}

void put_u64(std::string& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out += static_cast<char>(v >> (8 * i));
    }
}

void put_string(std::string& out, std::string_view s) {
    put_u32(out, static_cast<uint32_t>(s.size()));
    out.append(s);
}

void set_u64(std::string& out, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out[at + i] = static_cast<char>(v >> (8 * i));
    }
}

// A little-endian integer of 1, 2, 4 or 8 bytes. Each width is a fixed-size copy (one
// load on a little-endian machine): a copy of variable length was a call into libc for
// each of the ~90 numbers a hit decodes.
template <int Bytes> uint64_t load_le(const char* p) {
    if constexpr (std::endian::native == std::endian::little) {
        std::conditional_t<Bytes == 1, uint8_t,
                           std::conditional_t<Bytes == 2, uint16_t,
                                              std::conditional_t<Bytes == 4, uint32_t, uint64_t>>>
            v;
        static_assert(sizeof v == Bytes);
        std::memcpy(&v, p, Bytes);
        return v;
    }
    uint64_t v = 0;
    for (int i = Bytes - 1; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    }
    return v;
}

uint64_t get_le(const char* p, int bytes) {
    switch (bytes) {
    case 1:
        return load_le<1>(p);
    case 2:
        return load_le<2>(p);
    case 4:
        return load_le<4>(p);
    default:
        return load_le<8>(p);
    }
}

// Bounds-checked reader over the head fields; any overrun sets failed().
class Reader {
  public:
    explicit Reader(std::string_view data) : m_data(data) {}

    uint64_t number(int bytes) {
        if (m_failed || m_data.size() < static_cast<size_t>(bytes)) {
            m_failed = true;
            return 0;
        }
        uint64_t v = get_le(m_data.data(), bytes);
        m_data.remove_prefix(static_cast<size_t>(bytes));
        return v;
    }

    std::string_view bytes(uint64_t size) {
        if (m_failed || m_data.size() < size) {
            m_failed = true;
            return {};
        }
        std::string_view out = m_data.substr(0, size);
        m_data.remove_prefix(size);
        return out;
    }

    // A length-prefixed string, left where it is.
    std::string_view view() {
        const uint64_t size = number(4);
        return bytes(size);
    }

    // One info record: id (u32), type (u8), then a u64 or a length-prefixed string, bounds
    // checked once per record (a hit decodes ~32 of them). False when it is malformed.
    // Every field of `item` is set: it may be a recycled one (recycle()) with another's.
    bool info(Info& item) {
        const char* p = m_data.data();
        const size_t left = m_data.size();
        if (m_failed || left < 9 ||
            static_cast<uint8_t>(p[4]) > static_cast<uint8_t>(Info::Type::text)) {
            m_failed = true;
            return false;
        }
        item.id = static_cast<uint32_t>(load_le<4>(p));
        item.type = static_cast<Info::Type>(p[4]);
        size_t used = 13;
        if (item.type == Info::Type::text) {
            const uint64_t size = load_le<4>(p + 5);
            if (size > left - 9) {
                m_failed = true;
                return false;
            }
            item.text = Text::borrow(std::string_view(p + 9, static_cast<size_t>(size)));
            item.integer = 0;
            item.real = 0;
            used = 9 + static_cast<size_t>(size);
        } else if (left < 13) {
            m_failed = true;
            return false;
        } else {
            item.text = Text();
            if (item.type == Info::Type::integer) {
                item.integer = static_cast<int64_t>(load_le<8>(p + 5));
                item.real = 0;
            } else {
                const uint64_t bits = load_le<8>(p + 5);
                std::memcpy(&item.real, &bits, sizeof bits);
                item.integer = 0;
            }
        }
        m_data.remove_prefix(used);
        return true;
    }

    bool failed() const { return m_failed; }
    bool at_end() const { return m_data.empty(); }

  private:
    std::string_view m_data;
    bool m_failed = false;
};

uint64_t checksum(std::string_view head_fields, uint64_t body_digest) {
    return XXH3_64bits_withSeed(head_fields.data(), head_fields.size(), body_digest);
}

} // namespace

const Info* Entry::info(uint32_t id) const {
    for (const Info& item : infos) {
        if (item.id == id) {
            return &item;
        }
    }
    return nullptr;
}

void Entry::info(std::span<const uint32_t> ids, std::span<const Info*> found) const {
    std::fill(found.begin(), found.end(), nullptr);
    // Most infos are none of `ids`: a bit per id (a multiplicative hash: CURLINFO numbers
    // are small and their type sits in the high bits) passes over them in a few
    // instructions each. An info that passes is compared with the one id of its bit (or,
    // where several ids share a bit, with each of them).
    const auto bit_of = [](uint32_t id) { return (id * 0x9E3779B1u) >> 26; };
    constexpr int8_t k_shared = -1;
    int8_t which[64];
    uint64_t wanted = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
        const unsigned bit = bit_of(ids[i]);
        const bool taken = ((wanted >> bit) & 1) != 0;
        which[bit] = taken || i > 127 ? k_shared : static_cast<int8_t>(i);
        wanted |= uint64_t{1} << bit;
    }
    for (const Info& item : infos) {
        const unsigned bit = bit_of(item.id);
        if (((wanted >> bit) & 1) == 0) {
            continue;
        }
        if (which[bit] != k_shared) {
            const auto i = static_cast<size_t>(which[bit]);
            if (item.id == ids[i] && found[i] == nullptr) {
                found[i] = &item;
            }
            continue;
        }
        for (size_t i = 0; i < ids.size(); ++i) {
            if (item.id == ids[i] && found[i] == nullptr) {
                found[i] = &item;
            }
        }
    }
}

std::string encode_head(const Entry& entry, uint64_t body_size,
                        const std::vector<uint64_t>& chunks) {
    std::string head;
    head.append(k_magic, sizeof k_magic);
    put_u16(head, k_entry_format_version);
    put_u16(head, 0);
    put_u32(head, 0); // head length, set below
    put_u64(head, body_size);
    put_u64(head, 0); // checksum, set below

    put_string(head, entry.method);
    put_string(head, entry.url);
    put_u64(head, static_cast<uint64_t>(static_cast<int64_t>(entry.status)));
    put_u64(head, static_cast<uint64_t>(entry.created));
    put_u64(head, static_cast<uint64_t>(entry.expires));
    put_string(head, entry.etag);
    put_string(head, entry.last_modified);
    put_u32(head, static_cast<uint32_t>(entry.header_blocks.size()));
    for (const Text& block : entry.header_blocks) {
        put_string(head, block);
    }
    put_u32(head, static_cast<uint32_t>(entry.infos.size()));
    for (const Info& item : entry.infos) {
        put_u32(head, item.id);
        head += static_cast<char>(item.type);
        switch (item.type) {
        case Info::Type::integer:
            put_u64(head, static_cast<uint64_t>(item.integer));
            break;
        case Info::Type::real: {
            uint64_t bits = 0;
            static_assert(sizeof bits == sizeof item.real);
            std::memcpy(&bits, &item.real, sizeof bits);
            put_u64(head, bits);
            break;
        }
        case Info::Type::text:
            put_string(head, item.text);
            break;
        }
    }

    const http::Freshness& f = entry.freshness;
    put_u64(head, static_cast<uint64_t>(f.request_time));
    put_u64(head, static_cast<uint64_t>(f.response_time));
    put_u64(head, static_cast<uint64_t>(f.corrected_initial_age));
    put_u64(head, static_cast<uint64_t>(f.lifetime));
    head += static_cast<char>(f.source);
    head += static_cast<char>((f.no_cache ? 1 : 0) | (f.must_revalidate ? 2 : 0) |
                              (f.immutable ? 4 : 0));
    put_u64(head, static_cast<uint64_t>(f.stale_while_revalidate));
    put_u64(head, static_cast<uint64_t>(f.stale_if_error));
    put_u32(head, static_cast<uint32_t>(entry.vary.size()));
    for (const std::string& name : entry.vary) {
        put_string(head, name);
    }
    put_string(head, entry.variant);
    put_u32(head, k_body_chunk);
    put_u32(head, static_cast<uint32_t>(chunks.size()));
    head.reserve(head.size() + 8 * chunks.size());
    for (uint64_t digest : chunks) {
        put_u64(head, digest);
    }

    size_t head_fields = head.size() - k_prefix_size;
    for (int i = 0; i < 4; ++i) {
        head[8 + i] = static_cast<char>(static_cast<uint32_t>(head_fields) >> (8 * i));
    }
    set_u64(head, k_checksum_offset,
            checksum(std::string_view(head).substr(k_prefix_size), body_size));
    return head;
}

std::vector<uint64_t> chunk_digests(std::string_view body) {
    std::vector<uint64_t> out;
    out.reserve((body.size() + k_body_chunk - 1) / k_body_chunk);
    for (size_t at = 0; at < body.size(); at += k_body_chunk) {
        const size_t n = std::min<size_t>(k_body_chunk, body.size() - at);
        out.push_back(XXH3_64bits(body.data() + at, n));
    }
    return out;
}

Encoded encode(const Entry& entry) {
    Encoded out;
    out.head = encode_head(entry, entry.body.size(), chunk_digests(entry.body));
    out.body = entry.body;
    return out;
}

BodyDigest::BodyDigest() : m_state(XXH3_createState()) {
    if (m_state == nullptr) {
        throw std::bad_alloc();
    }
    XXH3_64bits_reset(static_cast<XXH3_state_t*>(m_state));
}

BodyDigest::~BodyDigest() {
    XXH3_freeState(static_cast<XXH3_state_t*>(m_state));
}

void BodyDigest::update(std::string_view bytes) {
    auto* state = static_cast<XXH3_state_t*>(m_state);
    while (!bytes.empty()) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(k_body_chunk - m_in_chunk, bytes.size()));
        XXH3_64bits_update(state, bytes.data(), n);
        bytes.remove_prefix(n);
        m_in_chunk += n;
        if (m_in_chunk == k_body_chunk) {
            m_done.push_back(XXH3_64bits_digest(state));
            XXH3_64bits_reset(state);
            m_in_chunk = 0;
        }
    }
}

std::vector<uint64_t> BodyDigest::chunks() const {
    std::vector<uint64_t> out = m_done;
    if (m_in_chunk > 0) {
        out.push_back(XXH3_64bits_digest(static_cast<const XXH3_state_t*>(m_state)));
    }
    return out;
}

namespace {

// Chunk sizes a head may name: a streamed hit holds one chunk in memory.
constexpr uint64_t k_min_chunk = 4096;
constexpr uint64_t k_max_chunk = 16u << 20;
// A head longer than this is refused unread (a hostile length must not make a streamed hit
// allocate it): header blocks, infos and 8 bytes per MiB of body stay far below.
constexpr uint64_t k_max_head = 64u << 20;

struct Prefix {
    uint16_t version = 0;
    uint64_t head_size = 0;
    uint64_t body_size = 0;
    uint64_t checksum = 0;
};

std::optional<Prefix> parse_prefix(std::string_view data) {
    if (data.size() < k_prefix_size) {
        return std::nullopt;
    }
    Prefix p;
    p.version = static_cast<uint16_t>(get_le(data.data() + 4, 2));
    if (std::memcmp(data.data(), k_magic, sizeof k_magic) != 0 || p.version < 1 ||
        p.version > k_entry_format_version || get_le(data.data() + 6, 2) != 0) {
        return std::nullopt;
    }
    p.head_size = get_le(data.data() + 8, 4);
    p.body_size = get_le(data.data() + 12, 8);
    p.checksum = get_le(data.data() + k_checksum_offset, 8);
    return p;
}

uint64_t chunks_for(uint64_t body_size, uint64_t chunk_size) {
    return (body_size + chunk_size - 1) / chunk_size;
}

// The head fields of a value whose checksum was verified; false when malformed. The entry's
// Texts borrow from `head`, which the caller keeps alive in Entry::storage. Format 4's
// chunk size goes to `layout` and its table of digests (8 bytes each, little-endian) to
// `digests`, left in the head: a hit that has the body in memory checks it from there.
bool parse_head(std::string_view head, const Prefix& prefix, Entry& entry, StoredBody& layout,
                std::string_view& digests) {
    Reader in(head);
    entry.method = in.view();
    entry.url = Text::borrow(in.view());
    entry.status = static_cast<long>(static_cast<int64_t>(in.number(8)));
    entry.created = static_cast<int64_t>(in.number(8));
    entry.expires = static_cast<int64_t>(in.number(8));
    entry.etag = Text::borrow(in.view());
    entry.last_modified = Text::borrow(in.view());
    uint64_t blocks = in.number(4);
    if (blocks > k_max_items) {
        return false;
    }
    entry.header_blocks.reserve(blocks);
    for (uint64_t i = 0; i < blocks && !in.failed(); ++i) {
        entry.header_blocks.push_back(Text::borrow(in.view()));
    }
    uint64_t infos = in.number(4);
    if (infos > k_max_items) {
        return false;
    }
    // All made at once and filled in place (a failure leaves the entry to be reset).
    entry.infos.resize(static_cast<size_t>(infos));
    for (Info& item : entry.infos) {
        if (!in.info(item)) {
            return false;
        }
    }
    entry.format = prefix.version;
    if (prefix.version >= 3) {
        http::Freshness& f = entry.freshness;
        f.request_time = static_cast<int64_t>(in.number(8));
        f.response_time = static_cast<int64_t>(in.number(8));
        f.corrected_initial_age = static_cast<int64_t>(in.number(8));
        f.lifetime = static_cast<int64_t>(in.number(8));
        const uint64_t source = in.number(1);
        if (source > static_cast<uint64_t>(http::LifetimeSource::forever)) {
            return false;
        }
        f.source = static_cast<http::LifetimeSource>(source);
        const uint64_t flags = in.number(1);
        f.no_cache = (flags & 1) != 0;
        f.must_revalidate = (flags & 2) != 0;
        f.immutable = (flags & 4) != 0;
        f.stale_while_revalidate = static_cast<int64_t>(in.number(8));
        f.stale_if_error = static_cast<int64_t>(in.number(8));
        const uint64_t names = in.number(4);
        if (names > k_max_items) {
            return false;
        }
        for (uint64_t i = 0; i < names && !in.failed(); ++i) {
            entry.vary.emplace_back(in.view());
        }
        entry.variant = in.view();
    }
    layout.size = prefix.body_size;
    if (prefix.version >= 4) {
        const uint64_t chunk_size = in.number(4);
        const uint64_t count = in.number(4);
        if (in.failed() || chunk_size < k_min_chunk || chunk_size > k_max_chunk ||
            count != chunks_for(prefix.body_size, chunk_size)) {
            return false;
        }
        layout.chunk_size = static_cast<uint32_t>(chunk_size);
        digests = in.bytes(8 * count);
    }
    return !in.failed() && in.at_end();
}

} // namespace

backends::Result<bool> StoredBody::read_chunk(size_t index, std::string& into) {
    const uint64_t at = static_cast<uint64_t>(index) * chunk_size;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_size, size - at));
    into.resize(n);
    if (auto read = reader->read(offset + at, std::span<char>(into.data(), n)); !read) {
        return std::unexpected(read.error());
    }
    return digests.empty() || XXH3_64bits(into.data(), n) == digests[index];
}

std::optional<Entry> decode(backends::Blob blob) {
    std::optional<Entry> out(std::in_place);
    if (!decode(std::move(blob), *out)) {
        out.reset();
    }
    return out;
}

namespace {

// Per thread, the vectors of the last entry recycle() got: a hit in a loop decodes into the
// same two allocations again (an entry records ~35 infos and one header block per hop).
constexpr size_t k_spare_infos = 128;
constexpr size_t k_spare_blocks = 32;
struct Spare {
    std::vector<Text> header_blocks;
    std::vector<Info> infos;
};

// One lookup of the thread's block per call (each use of a thread_local in the engine, a
// library loaded with dlopen, is a call to __tls_get_addr); nullptr when there is none.
[[gnu::noinline]] Spare* thread_spare() noexcept {
    return base::per_thread<Spare>();
}

} // namespace

void recycle(Entry& entry) noexcept {
    Spare* kept = thread_spare();
    if (kept == nullptr) {
        return;
    }
    Spare& spare = *kept;
    if (entry.infos.capacity() > spare.infos.capacity() &&
        entry.infos.capacity() <= k_spare_infos) {
        // Kept as they are: decode() resizes the vector and sets every field of each.
        spare.infos.swap(entry.infos);
    }
    if (entry.header_blocks.capacity() > spare.header_blocks.capacity() &&
        entry.header_blocks.capacity() <= k_spare_blocks) {
        entry.header_blocks.clear();
        spare.header_blocks.swap(entry.header_blocks);
    }
}

bool decode(backends::Blob blob, Entry& entry) {
    if (!blob) {
        return false;
    }
    std::string_view data(*blob);
    const std::optional<Prefix> prefix = parse_prefix(data);
    if (!prefix) {
        return false;
    }
    uint64_t available = data.size() - k_prefix_size;
    if (prefix->head_size > available || prefix->body_size != available - prefix->head_size) {
        return false;
    }
    std::string_view head = data.substr(k_prefix_size, prefix->head_size);
    std::string_view body = data.substr(k_prefix_size + prefix->head_size);
    // Format 1 hashed head and body back to back, as they lie here: one-shot XXH3 over
    // both, without allocating a hash state on every hit.
    const uint64_t expected =
        prefix->version == 1   ? XXH3_64bits(data.data() + k_prefix_size, head.size() + body.size())
        : prefix->version < 4 ? checksum(head, XXH3_64bits(body.data(), body.size()))
                               : checksum(head, body.size());
    if (expected != prefix->checksum) {
        return false;
    }
    if (entry.infos.capacity() == 0 && entry.header_blocks.capacity() == 0) {
        // Vectors with room, from recycle(); a failure below resets the entry (their
        // recycled infos are never read before parse_head sets them).
        if (Spare* spare = thread_spare()) {
            entry.infos.swap(spare->infos);
            entry.header_blocks.swap(spare->header_blocks);
        }
    }
    StoredBody layout;
    std::string_view digests;
    bool good = parse_head(head, *prefix, entry, layout, digests);
    for (size_t i = 0; good && i < digests.size() / 8; ++i) {
        const uint64_t at = static_cast<uint64_t>(i) * layout.chunk_size;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(layout.chunk_size, body.size() - at));
        good = XXH3_64bits(body.data() + at, n) == load_le<8>(digests.data() + 8 * i);
    }
    if (!good) {
        entry = Entry(); // its texts borrowed from `blob`, which goes now
        return false;
    }
    entry.body = body;
    entry.storage = std::move(blob);
    return true;
}

backends::Result<std::optional<Entry>>
decode_streamed(std::unique_ptr<backends::ValueReader> reader) {
    using Found = std::optional<Entry>;
    const uint64_t size = reader->size();
    char first[k_prefix_size];
    if (size < k_prefix_size) {
        return Found();
    }
    if (auto read = reader->read(0, first); !read) {
        return std::unexpected(read.error());
    }
    const std::optional<Prefix> prefix = parse_prefix(std::string_view(first, sizeof first));
    if (!prefix || prefix->head_size > k_max_head || prefix->head_size > size - k_prefix_size ||
        prefix->body_size != size - k_prefix_size - prefix->head_size) {
        return Found();
    }
    // The head is kept as the entry's storage: its Texts are views into it.
    auto owned_head = std::make_shared<std::string>(prefix->head_size, '\0');
    std::string& head = *owned_head;
    if (auto read = reader->read(k_prefix_size, head); !read) {
        return std::unexpected(read.error());
    }
    auto body = std::make_shared<StoredBody>();
    body->offset = k_prefix_size + prefix->head_size;
    if (prefix->version >= 4) {
        if (checksum(head, prefix->body_size) != prefix->checksum) {
            return Found();
        }
    } else {
        // An older format has one checksum over the whole body: it is read through once
        // now, a chunk at a time, before anything of it is delivered.
        auto* state = static_cast<XXH3_state_t*>(XXH3_createState());
        if (state == nullptr) {
            throw std::bad_alloc();
        }
        std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> owned(state, XXH3_freeState);
        XXH3_64bits_reset(state);
        if (prefix->version == 1) {
            XXH3_64bits_update(state, head.data(), head.size());
        }
        std::string chunk;
        for (uint64_t at = 0; at < prefix->body_size; at += k_body_chunk) {
            chunk.resize(static_cast<size_t>(std::min<uint64_t>(k_body_chunk, prefix->body_size - at)));
            if (auto read = reader->read(body->offset + at, chunk); !read) {
                return std::unexpected(read.error());
            }
            XXH3_64bits_update(state, chunk.data(), chunk.size());
        }
        const uint64_t digest = XXH3_64bits_digest(state);
        if ((prefix->version == 1 ? digest : checksum(head, digest)) != prefix->checksum) {
            return Found();
        }
    }
    Entry entry;
    std::string_view digests;
    if (!parse_head(head, *prefix, entry, *body, digests)) {
        return Found();
    }
    body->digests.resize(digests.size() / 8);
    for (size_t i = 0; i < body->digests.size(); ++i) {
        body->digests[i] = load_le<8>(digests.data() + 8 * i);
    }
    body->reader = std::move(reader);
    entry.stored_body = std::move(body);
    entry.storage = std::move(owned_head);
    return Found(std::move(entry));
}

} // namespace curlcache::core
