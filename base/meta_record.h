// An entry's metadata as a record of a temporary file, for commands that go over a whole
// cache in bounded memory (`curlcache list`'s sorted runs, `export`'s list of entries to
// copy): the key, method and URL, each a 32-bit length then its bytes, then status, created,
// expires and size as 64-bit integers. Native byte order: such a file lives as long as the
// command that wrote it. Works on any struct with those seven members (backends::Metadata,
// cli::ListedEntry).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace curlcache::base {

inline bool write_record_text(std::FILE* out, const std::string& text) {
    auto size = static_cast<uint32_t>(text.size());
    return std::fwrite(&size, sizeof size, 1, out) == 1 &&
           std::fwrite(text.data(), 1, text.size(), out) == text.size();
}

inline bool read_record_text(std::FILE* in, std::string& text) {
    uint32_t size = 0;
    if (std::fread(&size, sizeof size, 1, in) != 1) {
        return false;
    }
    text.resize(size);
    return std::fread(text.data(), 1, size, in) == size;
}

template <class Meta> bool write_meta_record(std::FILE* out, const Meta& meta) {
    const int64_t numbers[4] = {static_cast<int64_t>(meta.status), meta.created, meta.expires,
                                static_cast<int64_t>(meta.size)};
    return write_record_text(out, meta.key) && write_record_text(out, meta.method) &&
           write_record_text(out, meta.url) && std::fwrite(numbers, sizeof numbers, 1, out) == 1;
}

// False at the end of the file or when a record cannot be read whole.
template <class Meta> bool read_meta_record(std::FILE* in, Meta& meta) {
    int64_t numbers[4];
    if (!read_record_text(in, meta.key) || !read_record_text(in, meta.method) ||
        !read_record_text(in, meta.url) || std::fread(numbers, sizeof numbers, 1, in) != 1) {
        return false;
    }
    meta.status = static_cast<decltype(meta.status)>(numbers[0]);
    meta.created = numbers[1];
    meta.expires = numbers[2];
    meta.size = static_cast<uint64_t>(numbers[3]);
    return true;
}

} // namespace curlcache::base
