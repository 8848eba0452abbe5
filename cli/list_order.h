// `curlcache list`'s entries in order (URL, then method, then key; or, for the HAR export,
// created, URL, key) in bounded memory: up to
// k_run_entries are held and sorted in memory; beyond that, sorted runs go to anonymous
// temporary files and are merged as they are read back, so that a list of a million entries
// holds one run and one buffered record per run file, not the whole cache.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace curlcache::cli {

struct ListedEntry {
    std::string key, method, url;
    long status = 0;
    int64_t created = 0, expires = 0;
    uint64_t size = 0;
    std::vector<std::pair<std::string, std::string>> why; // list --why (not kept in runs)
};

// The orders: `list`'s, and the HAR export's (oldest first). Both end with the key, which
// is unique, so that the order of any two entries is always the same.
enum class EntryOrder {
    url_method_key,
    created_url_key,
};

class SortedEntries {
  public:
    static constexpr std::size_t k_run_entries = 65536;

    explicit SortedEntries(EntryOrder order = EntryOrder::url_method_key,
                           std::size_t run_entries = k_run_entries);
    SortedEntries(const SortedEntries&) = delete;
    SortedEntries& operator=(const SortedEntries&) = delete;

    // Adds one entry. When a full run cannot be written to a temporary file, everything
    // stays in memory from then on: the list is still right, only larger in memory.
    void add(ListedEntry entry);

    // Calls visit for every entry in order until it returns false. May be called again
    // (the runs are read from their start each time). False when a run file could not be
    // read back whole (an I/O error): the entries visited are then not all of them.
    [[nodiscard]] bool each(const std::function<bool(ListedEntry&)>& visit);

    std::size_t run_files() const { return m_runs.size(); }
    // Run file `index` (tests: to damage one and see each() report it).
    std::FILE* run_file(std::size_t index) const { return m_runs.at(index).file.get(); }

  private:
    struct FileClose {
        void operator()(std::FILE* file) const noexcept { std::fclose(file); }
    };
    using FilePtr = std::unique_ptr<std::FILE, FileClose>;

    void spill();

    bool (*m_before)(const ListedEntry&, const ListedEntry&);
    std::size_t m_run_entries;
    std::vector<ListedEntry> m_memory;
    struct Run {
        FilePtr file;
        std::size_t entries = 0; // records written to it
    };
    std::vector<Run> m_runs;
    bool m_sorted = false;
};

} // namespace curlcache::cli
