// Sorted runs and their merge (see list_order.h).
#include "cli/list_order.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <queue>
#include <tuple>

namespace curlcache::cli {
namespace {

bool before(const ListedEntry& a, const ListedEntry& b) {
    return std::tie(a.url, a.method, a.key) < std::tie(b.url, b.method, b.key);
}

// A run record: the three texts, each a 32-bit length then its bytes, then status, created,
// expires and size as 64-bit integers (native byte order: the file lives as long as the
// command).
bool write_text(std::FILE* out, const std::string& text) {
    auto size = static_cast<uint32_t>(text.size());
    return std::fwrite(&size, sizeof size, 1, out) == 1 &&
           std::fwrite(text.data(), 1, text.size(), out) == text.size();
}

bool write_record(std::FILE* out, const ListedEntry& entry) {
    const int64_t numbers[4] = {static_cast<int64_t>(entry.status), entry.created, entry.expires,
                                static_cast<int64_t>(entry.size)};
    return write_text(out, entry.key) && write_text(out, entry.method) &&
           write_text(out, entry.url) && std::fwrite(numbers, sizeof numbers, 1, out) == 1;
}

bool read_text(std::FILE* in, std::string& text) {
    uint32_t size = 0;
    if (std::fread(&size, sizeof size, 1, in) != 1) {
        return false;
    }
    text.resize(size);
    return std::fread(text.data(), 1, size, in) == size;
}

bool read_record(std::FILE* in, ListedEntry& entry) {
    int64_t numbers[4];
    if (!read_text(in, entry.key) || !read_text(in, entry.method) || !read_text(in, entry.url) ||
        std::fread(numbers, sizeof numbers, 1, in) != 1) {
        return false;
    }
    entry.status = static_cast<long>(numbers[0]);
    entry.created = numbers[1];
    entry.expires = numbers[2];
    entry.size = static_cast<uint64_t>(numbers[3]);
    entry.why.clear();
    return true;
}

} // namespace

void SortedEntries::add(ListedEntry entry) {
    m_memory.push_back(std::move(entry));
    m_sorted = false;
    if (m_memory.size() >= m_run_entries) {
        spill();
    }
}

void SortedEntries::spill() {
    std::sort(m_memory.begin(), m_memory.end(), before);
    FilePtr file(std::tmpfile());
    bool written = file != nullptr;
    for (std::size_t i = 0; written && i < m_memory.size(); ++i) {
        written = write_record(file.get(), m_memory[i]);
    }
    written = written && std::fflush(file.get()) == 0;
    if (!written) {
        m_run_entries = SIZE_MAX; // no room for runs: keep everything in memory
        m_sorted = true;
        return;
    }
    m_runs.push_back(std::move(file));
    m_memory.clear();
    m_memory.shrink_to_fit();
}

void SortedEntries::each(const std::function<bool(ListedEntry&)>& visit) {
    if (!m_sorted) {
        std::sort(m_memory.begin(), m_memory.end(), before);
        m_sorted = true;
    }
    if (m_runs.empty()) {
        for (ListedEntry& entry : m_memory) {
            if (!visit(entry)) {
                return;
            }
        }
        return;
    }
    // Sources: each run file, and the entries still in memory (index m_runs.size()).
    const std::size_t sources = m_runs.size() + 1;
    std::vector<ListedEntry> heads(sources);
    std::size_t memory_next = 0;
    auto next = [&](std::size_t source) {
        if (source < m_runs.size()) {
            return read_record(m_runs[source].get(), heads[source]);
        }
        if (memory_next < m_memory.size()) {
            heads[source] = m_memory[memory_next++];
            return true;
        }
        return false;
    };
    auto later = [&](std::size_t a, std::size_t b) { return before(heads[b], heads[a]); };
    std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(later)> queue(later);
    for (std::size_t source = 0; source < sources; ++source) {
        if (source < m_runs.size()) {
            std::rewind(m_runs[source].get());
        }
        if (next(source)) {
            queue.push(source);
        }
    }
    while (!queue.empty()) {
        const std::size_t source = queue.top();
        queue.pop();
        if (!visit(heads[source])) {
            return;
        }
        if (next(source)) {
            queue.push(source);
        }
    }
}

} // namespace curlcache::cli
