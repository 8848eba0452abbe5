// Reads a value's pieces with pread(2) from a descriptor held open (see file_reader.h).
#include "backends/file_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace curlcache::backends {

namespace {

class FileReader final : public ValueReader {
  public:
    FileReader(base::Fd fd, std::string what, std::string prefix, std::vector<FileSpan> spans)
        : m_fd(std::move(fd)), m_what(std::move(what)), m_prefix(std::move(prefix)),
          m_spans(std::move(spans)) {
        m_size = m_prefix.size();
        for (const FileSpan& span : m_spans) {
            m_size += span.length;
        }
    }

    uint64_t size() const override { return m_size; }

    Result<void> read(uint64_t offset, std::span<char> out) override {
        if (offset > m_size || out.size() > m_size - offset) {
            return fail(m_what + ": read past the end of the value");
        }
        char* into = out.data();
        uint64_t left = out.size();
        if (offset < m_prefix.size()) {
            const uint64_t n = std::min<uint64_t>(left, m_prefix.size() - offset);
            std::memcpy(into, m_prefix.data() + offset, n);
            into += n;
            left -= n;
            offset += n;
        }
        offset -= m_prefix.size();
        for (const FileSpan& span : m_spans) {
            if (left == 0) {
                break;
            }
            if (offset >= span.length) {
                offset -= span.length;
                continue;
            }
            const uint64_t n = std::min<uint64_t>(left, span.length - offset);
            if (auto got = pread_all(into, n, span.file_offset + offset); !got) {
                return got;
            }
            into += n;
            left -= n;
            offset = 0;
        }
        return {};
    }

  private:
    Result<void> pread_all(char* into, uint64_t size, uint64_t at) {
        while (size > 0) {
            ssize_t n = ::pread(*m_fd, into, size, static_cast<off_t>(at));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                return fail_errno(m_what + ": cannot read", errno);
            }
            if (n == 0) {
                return fail(m_what + ": shorter than its entry says");
            }
            into += n;
            size -= static_cast<uint64_t>(n);
            at += static_cast<uint64_t>(n);
        }
        return {};
    }

    base::Fd m_fd;
    std::string m_what;
    std::string m_prefix;
    std::vector<FileSpan> m_spans;
    uint64_t m_size = 0;
};

} // namespace

std::unique_ptr<ValueReader> file_reader(base::Fd fd, std::string what, std::string prefix,
                                         std::vector<FileSpan> spans) {
    return std::make_unique<FileReader>(std::move(fd), std::move(what), std::move(prefix),
                                        std::move(spans));
}

} // namespace curlcache::backends
