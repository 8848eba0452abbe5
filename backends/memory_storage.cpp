// Memory backend: a hash map into an intrusive recency list, one mutex. A hit moves the
// entry to the front of the list and copies one shared_ptr; eviction pops from the back.
#include "backends/memory_storage.h"

#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace curlcache::backends {

namespace {

constexpr size_t k_replace_first = 1u << 20;

struct Node {
    Metadata meta;
    Blob value;
};

class MemoryStorage final : public Storage {
  public:
    MemoryStorage(uint64_t max_bytes, uint64_t max_entries)
        : m_max_bytes(max_bytes), m_max_entries(max_entries) {}

    std::string_view name() const override { return "memory"; }
    std::string location() const override { return "process memory"; }

    Result<std::optional<Blob>> get(std::string_view key) override {
        std::lock_guard lock(m_mutex);
        auto found = m_index.find(key);
        if (found == m_index.end()) {
            return std::optional<Blob>{};
        }
        m_recency.splice(m_recency.begin(), m_recency, found->second);
        return std::optional<Blob>{found->second->value};
    }

    // Not a use: the entry keeps its place in the LRU order.
    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        std::lock_guard lock(m_mutex);
        auto found = m_index.find(key);
        if (found == m_index.end()) {
            return std::optional<Metadata>{};
        }
        return std::optional<Metadata>{found->second->meta};
    }

    Result<void> put(const Metadata& meta, Pieces value) override {
        size_t total = 0;
        for (auto piece : value) {
            total += piece.size();
        }
        if (total >= k_replace_first) {
            // Drop the old value first so that a large overwrite never holds both.
            std::lock_guard lock(m_mutex);
            erase_locked(meta.key);
        }
        // Built outside the lock: the one copy this backend keeps.
        auto blob = std::make_shared<std::string>();
        blob->reserve(total);
        for (auto piece : value) {
            blob->append(piece);
        }
        Node node{meta, std::move(blob)};
        node.meta.size = total;

        std::lock_guard lock(m_mutex);
        erase_locked(meta.key);
        // A value larger than the whole cache would evict everything and then itself.
        if (m_max_bytes != 0 && total > m_max_bytes) {
            return {};
        }
        m_recency.push_front(std::move(node));
        m_index.emplace(m_recency.front().meta.key, m_recency.begin());
        m_bytes += total;
        while ((m_max_bytes != 0 && m_bytes > m_max_bytes) ||
               (m_max_entries != 0 && m_index.size() > m_max_entries)) {
            erase_locked(m_recency.back().meta.key);
        }
        return {};
    }

    Result<bool> remove(std::string_view key) override {
        std::lock_guard lock(m_mutex);
        return erase_locked(key);
    }

    // The metadata is copied under the lock and visited without it, so the visitor may call
    // back into this storage (remove, get).
    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        std::vector<Metadata> all;
        {
            std::lock_guard lock(m_mutex);
            all.reserve(m_index.size());
            for (const auto& node : m_recency) {
                all.push_back(node.meta);
            }
        }
        for (const auto& meta : all) {
            if (!visit(meta)) {
                break;
            }
        }
        return {};
    }

    Result<void> clear() override {
        std::lock_guard lock(m_mutex);
        m_index.clear();
        m_recency.clear();
        m_bytes = 0;
        return {};
    }

    Result<Usage> usage() override {
        std::lock_guard lock(m_mutex);
        return Usage{m_index.size(), m_bytes, m_max_bytes};
    }

  private:
    bool erase_locked(std::string_view key) {
        auto found = m_index.find(key);
        if (found == m_index.end()) {
            return false;
        }
        auto node = found->second;
        m_bytes -= node->meta.size;
        m_index.erase(found); // the key it points to lives in the node: erase this first
        m_recency.erase(node);
        return true;
    }

    const uint64_t m_max_bytes;
    const uint64_t m_max_entries;
    std::mutex m_mutex;
    std::list<Node> m_recency; // most recently used first
    // Keyed by views into the nodes (list nodes never move): no std::string built per get.
    std::unordered_map<std::string_view, std::list<Node>::iterator> m_index;
    uint64_t m_bytes = 0;
};

} // namespace

Result<std::unique_ptr<Storage>> open_memory(const config::Settings& settings) {
    return std::make_unique<MemoryStorage>(settings.max_size, settings.memory_max_entries);
}

} // namespace curlcache::backends
