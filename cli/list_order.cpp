// Sorted runs and their merge (see list_order.h).
#include "cli/list_order.h"

#include "base/meta_record.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <queue>
#include <tuple>

namespace curlcache::cli {
namespace {

bool by_url(const ListedEntry& a, const ListedEntry& b) {
    return std::tie(a.url, a.method, a.key) < std::tie(b.url, b.method, b.key);
}

bool by_created(const ListedEntry& a, const ListedEntry& b) {
    return std::tie(a.created, a.url, a.key) < std::tie(b.created, b.url, b.key);
}

bool write_record(std::FILE* out, const ListedEntry& entry) {
    return base::write_meta_record(out, entry);
}

bool read_record(std::FILE* in, ListedEntry& entry) {
    entry.why.clear();
    return base::read_meta_record(in, entry);
}

} // namespace

SortedEntries::SortedEntries(EntryOrder order, std::size_t run_entries)
    : m_before(order == EntryOrder::created_url_key ? by_created : by_url),
      m_run_entries(run_entries) {}

void SortedEntries::add(ListedEntry entry) {
    m_memory.push_back(std::move(entry));
    m_sorted = false;
    if (m_memory.size() >= m_run_entries) {
        spill();
    }
}

void SortedEntries::spill() {
    std::sort(m_memory.begin(), m_memory.end(), m_before);
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
    m_runs.push_back(Run{std::move(file), m_memory.size()});
    m_memory.clear();
    m_memory.shrink_to_fit();
}

bool SortedEntries::each(const std::function<bool(ListedEntry&)>& visit) {
    if (!m_sorted) {
        std::sort(m_memory.begin(), m_memory.end(), m_before);
        m_sorted = true;
    }
    if (m_runs.empty()) {
        for (ListedEntry& entry : m_memory) {
            if (!visit(entry)) {
                break;
            }
        }
        return true;
    }
    // Sources: each run file, and the entries still in memory (index m_runs.size()).
    const std::size_t sources = m_runs.size() + 1;
    std::vector<ListedEntry> heads(sources);
    std::vector<std::size_t> unread(m_runs.size());
    std::size_t memory_next = 0;
    bool complete = true; // every run read back whole so far
    auto next = [&](std::size_t source) {
        if (source < m_runs.size()) {
            if (unread[source] == 0) {
                return false;
            }
            if (!read_record(m_runs[source].file.get(), heads[source])) {
                complete = false; // short or unreadable: never taken for the run's end
                return false;
            }
            --unread[source];
            return true;
        }
        if (memory_next < m_memory.size()) {
            heads[source] = m_memory[memory_next++];
            return true;
        }
        return false;
    };
    auto later = [&](std::size_t a, std::size_t b) { return m_before(heads[b], heads[a]); };
    std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(later)> queue(later);
    for (std::size_t source = 0; source < sources; ++source) {
        if (source < m_runs.size()) {
            std::rewind(m_runs[source].file.get());
            unread[source] = m_runs[source].entries;
        }
        if (next(source)) {
            queue.push(source);
        }
    }
    while (complete && !queue.empty()) {
        const std::size_t source = queue.top();
        queue.pop();
        if (!visit(heads[source])) {
            break;
        }
        if (next(source)) {
            queue.push(source);
        }
    }
    return complete;
}

} // namespace curlcache::cli
