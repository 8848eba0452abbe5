// Splits one fuzz input into the pieces a target needs. Pieces are separated by NUL bytes,
// so that seeds stay readable text ("GET\0https://a.test/\0Accept: x").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::fuzz {

class Input {
  public:
    Input(const uint8_t* data, size_t size) : m_rest(reinterpret_cast<const char*>(data), size) {}

    // The text up to the next NUL (or the end), which is consumed.
    std::string_view piece() {
        const size_t nul = m_rest.find('\0');
        const std::string_view out = m_rest.substr(0, nul);
        m_rest.remove_prefix(nul == std::string_view::npos ? m_rest.size() : nul + 1);
        return out;
    }

    // One byte (0 at the end).
    uint8_t byte() {
        if (m_rest.empty()) {
            return 0;
        }
        const auto b = static_cast<uint8_t>(m_rest.front());
        m_rest.remove_prefix(1);
        return b;
    }

    // The pieces of what is left, split on NUL bytes.
    std::vector<std::string> pieces();

    std::string_view rest() const { return m_rest; }
    bool empty() const { return m_rest.empty(); }

  private:
    std::string_view m_rest;
};

// The parts of `text` between `separator`s ("a,b" -> "a", "b"; "" -> none).
inline std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const size_t end = text.find(separator);
        out.emplace_back(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    return out;
}

inline std::vector<std::string> Input::pieces() {
    std::vector<std::string> out = split(m_rest, '\0');
    m_rest = {};
    return out;
}

// Stops the target with a message that names the broken invariant: libFuzzer (and the
// replay driver's test) report the abort with the input that caused it.
[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    std::abort();
}

} // namespace curlcache::fuzz

#define FUZZ_CHECK(condition)                                                                      \
    ((condition) ? (void)0 : ::curlcache::fuzz::invariant_failed(#condition, __FILE__, __LINE__))
