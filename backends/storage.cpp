// The defaults of the optional Storage operations (see storage.h).
#include "backends/storage.h"

#include <pthread.h>

#include <atomic>

#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::backends {

// Collect first, remove afterwards: a backend may hold a lock or a cursor during scan, and
// removing from inside the visitor would then deadlock or disturb the iteration.
std::unexpected<Error> read_only_error(const Storage& storage) {
    return fail(std::string(storage.name()) + " " + storage.location() + ": read-only (" +
                storage.read_only_reason() + "); nothing can be stored, changed or removed");
}

Result<void> Storage::vacuum() {
    if (!read_only_reason().empty()) {
        return read_only_error(*this);
    }
    return {};
}

Result<void> Storage::put_many(std::span<const PutItem> items) {
    for (const PutItem& item : items) {
        auto put_one = put(*item.meta, Pieces(&item.value, 1));
        if (!put_one) {
            return put_one;
        }
    }
    return {};
}

Result<uint64_t> Storage::purge_expired(int64_t now) {
    if (!read_only_reason().empty()) {
        return read_only_error(*this);
    }
    std::vector<std::string> expired;
    auto scanned = scan([&](const Metadata& meta) {
        if (meta.expires > 0 && meta.expires <= now) {
            expired.push_back(meta.key);
        }
        return true;
    });
    if (!scanned) {
        return std::unexpected(scanned.error());
    }
    uint64_t removed = 0;
    for (const auto& key : expired) {
        auto gone = remove(key);
        if (!gone) {
            return std::unexpected(gone.error());
        }
        removed += *gone ? 1 : 0;
    }
    return removed;
}

namespace {

// The default stream: the tail in memory, one put() at commit.
class BufferedPutStream final : public PutStream {
  public:
    BufferedPutStream(Storage& storage, uint64_t size_hint) : m_storage(storage) {
        if (size_hint > 0 && size_hint <= k_max_reserve) {
            m_tail.reserve(size_hint);
        }
    }

    Result<void> append(std::string_view bytes) override {
        try {
            m_tail.append(bytes);
        } catch (const std::bad_alloc&) {
            return fail("out of memory while keeping a response body");
        }
        return {};
    }

    Result<void> commit(const Metadata& meta, std::string_view head) override {
        const std::string_view pieces[] = {head, m_tail};
        return m_storage.put(meta, pieces);
    }

  private:
    // A hint is a promise from the network: never reserve more than this up front.
    static constexpr uint64_t k_max_reserve = uint64_t{1} << 30;
    Storage& m_storage;
    std::string m_tail;
};

} // namespace

namespace {

class BlobReader final : public ValueReader {
  public:
    explicit BlobReader(Blob blob) : m_blob(std::move(blob)) {}
    uint64_t size() const override { return m_blob->size(); }
    Result<void> read(uint64_t offset, std::span<char> out) override {
        if (offset > m_blob->size() || out.size() > m_blob->size() - offset) {
            return fail("read past the end of a stored value");
        }
        std::memcpy(out.data(), m_blob->data() + offset, out.size());
        return {};
    }

  private:
    Blob m_blob;
};

} // namespace

std::unique_ptr<ValueReader> blob_reader(Blob blob) {
    return std::make_unique<BlobReader>(std::move(blob));
}

Result<std::optional<StoredValue>> Storage::open_value(std::string_view key,
                                                       uint64_t /*whole_limit*/) {
    auto got = get(key);
    if (!got) {
        return std::unexpected(got.error());
    }
    if (!*got) {
        return std::optional<StoredValue>{};
    }
    return std::optional<StoredValue>{StoredValue{std::move(**got), nullptr}};
}

Result<std::unique_ptr<PutStream>> Storage::begin_put(uint64_t size_hint) {
    return std::make_unique<BufferedPutStream>(*this, size_hint);
}

namespace {

std::atomic<uint64_t> g_forks{0};

void count_fork() {
    g_forks.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

uint64_t fork_generation() {
    static const bool registered = pthread_atfork(nullptr, nullptr, count_fork) == 0;
    (void)registered;
    return g_forks.load(std::memory_order_relaxed);
}

Result<bool> Storage::try_lock(std::string_view /*key*/, int64_t /*ttl_ms*/) {
    return true;
}

Result<void> Storage::unlock(std::string_view /*key*/) {
    return {};
}

} // namespace curlcache::backends

namespace curlcache::backends {

namespace {

class EmptyReadOnly final : public Storage {
  public:
    EmptyReadOnly(std::string name, std::string location, uint64_t max_bytes, std::string reason)
        : m_name(std::move(name)), m_location(std::move(location)), m_max_bytes(max_bytes),
          m_reason(std::move(reason)) {}

    std::string_view name() const override { return m_name; }
    std::string location() const override { return m_location; }
    Result<std::optional<Blob>> get(std::string_view /*key*/) override {
        return std::optional<Blob>{};
    }
    Result<void> put(const Metadata& /*meta*/, Pieces /*value*/) override { return refuse(); }
    Result<std::unique_ptr<PutStream>> begin_put(uint64_t /*size_hint*/) override {
        return refuse();
    }
    Result<bool> remove(std::string_view /*key*/) override { return refuse(); }
    Result<void> scan(const std::function<bool(const Metadata&)>& /*visit*/) override { return {}; }
    Result<void> clear() override { return refuse(); }
    Result<Usage> usage() override { return Usage{0, 0, m_max_bytes}; }
    Result<uint64_t> purge_expired(int64_t /*now*/) override { return refuse(); }
    Result<void> vacuum() override { return refuse(); }
    std::string read_only_reason() const override { return m_reason; }

  private:
    std::unexpected<Error> refuse() const { return read_only_error(*this); }
    std::string m_name;
    std::string m_location;
    uint64_t m_max_bytes;
    std::string m_reason;
};

} // namespace

std::unique_ptr<Storage> empty_read_only(std::string name, std::string location, uint64_t max_bytes,
                                         std::string reason) {
    return std::make_unique<EmptyReadOnly>(std::move(name), std::move(location), max_bytes,
                                           std::move(reason));
}

} // namespace curlcache::backends
