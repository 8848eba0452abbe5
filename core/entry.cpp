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
#include "core/entry.h"

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
// XXH3 through libxxhash's runtime dispatch: the AVX2/AVX-512 code where the CPU has it
// (Debian builds the library for baseline x86-64, SSE2). A 1 MiB hit spent half its time
// in the SSE2 checksum.
#include <xxh_x86dispatch.h>
#endif

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

    std::string text() {
        uint64_t size = number(4);
        if (m_failed || m_data.size() < size) {
            m_failed = true;
            return {};
        }
        std::string out(m_data.substr(0, size));
        m_data.remove_prefix(size);
        return out;
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

std::string encode_head(const Entry& entry, uint64_t body_size, uint64_t body_digest) {
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
    for (const std::string& block : entry.header_blocks) {
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

    size_t head_fields = head.size() - k_prefix_size;
    for (int i = 0; i < 4; ++i) {
        head[8 + i] = static_cast<char>(static_cast<uint32_t>(head_fields) >> (8 * i));
    }
    set_u64(head, k_checksum_offset,
            checksum(std::string_view(head).substr(k_prefix_size), body_digest));
    return head;
}

Encoded encode(const Entry& entry) {
    Encoded out;
    out.head =
        encode_head(entry, entry.body.size(), XXH3_64bits(entry.body.data(), entry.body.size()));
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
    XXH3_64bits_update(static_cast<XXH3_state_t*>(m_state), bytes.data(), bytes.size());
}

uint64_t BodyDigest::digest() const {
    return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(m_state));
}

std::optional<Entry> decode(backends::Blob blob) {
    if (!blob || blob->size() < k_prefix_size) {
        return std::nullopt;
    }
    std::string_view data(*blob);
    const uint64_t version = get_le(data.data() + 4, 2);
    if (std::memcmp(data.data(), k_magic, sizeof k_magic) != 0 || version < 1 ||
        version > k_entry_format_version || get_le(data.data() + 6, 2) != 0) {
        return std::nullopt;
    }
    uint64_t head_size = get_le(data.data() + 8, 4);
    uint64_t body_size = get_le(data.data() + 12, 8);
    uint64_t available = data.size() - k_prefix_size;
    if (head_size > available || body_size != available - head_size) {
        return std::nullopt;
    }
    std::string_view head = data.substr(k_prefix_size, head_size);
    std::string_view body = data.substr(k_prefix_size + head_size);
    // Format 1 hashed head and body back to back, as they lie here: one-shot XXH3 over
    // both, without allocating a hash state on every hit.
    const uint64_t expected = version == 1
                                  ? XXH3_64bits(data.data() + k_prefix_size, head_size + body_size)
                                  : checksum(head, XXH3_64bits(body.data(), body.size()));
    if (expected != get_le(data.data() + k_checksum_offset, 8)) {
        return std::nullopt;
    }

    Reader in(head);
    Entry entry;
    entry.method = in.text();
    entry.url = in.text();
    entry.status = static_cast<long>(static_cast<int64_t>(in.number(8)));
    entry.created = static_cast<int64_t>(in.number(8));
    entry.expires = static_cast<int64_t>(in.number(8));
    entry.etag = in.text();
    entry.last_modified = in.text();
    uint64_t blocks = in.number(4);
    if (blocks > k_max_items) {
        return std::nullopt;
    }
    entry.header_blocks.reserve(blocks);
    for (uint64_t i = 0; i < blocks && !in.failed(); ++i) {
        entry.header_blocks.push_back(in.text());
    }
    uint64_t infos = in.number(4);
    if (infos > k_max_items) {
        return std::nullopt;
    }
    entry.infos.reserve(infos);
    for (uint64_t i = 0; i < infos && !in.failed(); ++i) {
        Info item;
        item.id = static_cast<uint32_t>(in.number(4));
        uint64_t type = in.number(1);
        if (type > static_cast<uint64_t>(Info::Type::text)) {
            return std::nullopt;
        }
        item.type = static_cast<Info::Type>(type);
        if (item.type == Info::Type::integer) {
            item.integer = static_cast<int64_t>(in.number(8));
        } else if (item.type == Info::Type::real) {
            uint64_t bits = in.number(8);
            std::memcpy(&item.real, &bits, sizeof bits);
        } else {
            item.text = in.text();
        }
        entry.infos.push_back(std::move(item));
    }
    entry.format = static_cast<uint16_t>(version);
    if (version >= 3) {
        http::Freshness& f = entry.freshness;
        f.request_time = static_cast<int64_t>(in.number(8));
        f.response_time = static_cast<int64_t>(in.number(8));
        f.corrected_initial_age = static_cast<int64_t>(in.number(8));
        f.lifetime = static_cast<int64_t>(in.number(8));
        const uint64_t source = in.number(1);
        if (source > static_cast<uint64_t>(http::LifetimeSource::forever)) {
            return std::nullopt;
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
            return std::nullopt;
        }
        for (uint64_t i = 0; i < names && !in.failed(); ++i) {
            entry.vary.push_back(in.text());
        }
        entry.variant = in.text();
    }
    if (in.failed() || !in.at_end()) {
        return std::nullopt;
    }
    entry.body = body;
    entry.storage = std::move(blob);
    return entry;
}

} // namespace curlcache::core
