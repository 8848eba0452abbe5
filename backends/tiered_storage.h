// A cache over several backends, first tier first (e.g. memory, sqlite, redis), in the
// manner of sccache's multi-level storage: reads go down the tiers and a hit fills the
// tiers above it; writes go to every tier; a failing tier is skipped and counted.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::backends {

// What happened at one tier since it was opened (for `curlcache stats`).
struct TierStats {
    std::string name;      // backend name, "sqlite"
    std::string location;  // where its data lives
    uint64_t hits = 0;     // reads answered by this tier
    uint64_t misses = 0;   // reads this tier did not have (and that went on down)
    uint64_t fills = 0;    // entries copied into this tier from a lower one
    uint64_t errors = 0;   // operations that failed here and were skipped
    uint64_t timeouts = 0; // of those, how many were timeouts
};

class TieredStorage final : public Storage {
public:
    // `tiers` holds at least one storage, first tier first.
    explicit TieredStorage(std::vector<std::unique_ptr<Storage>> tiers);
    ~TieredStorage() override;

    size_t tier_count() const { return m_tiers.size(); }
    Storage& tier(size_t index) { return *m_tiers.at(index)->storage; }
    std::vector<TierStats> tier_stats() const;

    std::string_view name() const override { return "tiered"; }
    std::string location() const override;

    // A large value comes as the reader of the tier that has it; unlike get(), it is not
    // copied into the tiers above (that would read it whole): the next put refills them.
    Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                  uint64_t whole_limit) override;
    Result<std::optional<Blob>> get(std::string_view key) override;
    Result<std::optional<Metadata>> get_metadata(std::string_view key) override;
    // Stores (put, begin_put, and the fills of upper tiers) go to the writable tiers: a tier
    // opened read-only (a seeded cache on a read-only volume under a writable one) is left
    // out, not counted as failing. Removals, clear, purge and vacuum still try every tier:
    // a read-only tier's refusal is counted, and clear and vacuum fail (its entries stay).
    Result<void> put(const Metadata& meta, Pieces value) override;
    // A stream per tier, each fed every appended piece (a SQLite tier writes its body file
    // while the transfer runs); a tier whose stream fails is dropped and counted.
    Result<std::unique_ptr<PutStream>> begin_put(uint64_t size_hint) override;
    Result<bool> remove(std::string_view key) override;
    // scan and usage describe the lowest tier that answers (it holds the most entries:
    // every write reaches it, upper tiers hold copies).
    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override;
    Result<void> clear() override;
    Result<Usage> usage() override;
    Result<uint64_t> purge_expired(int64_t now) override;
    Result<void> vacuum() override;
    void flush() override;
    // Locks live in the lowest tier, the one shared most widely (Redis, a SQLite file).
    Result<bool> try_lock(std::string_view key, int64_t ttl_ms) override;
    Result<void> unlock(std::string_view key) override;
    // Read-only when every tier is, with each tier's reason; writable when any tier is.
    std::string read_only_reason() const override;

private:
    friend class TieredPutStream;
    struct Tier {
        std::unique_ptr<Storage> storage;
        std::atomic<uint64_t> hits{0}, misses{0}, fills{0}, errors{0}, timeouts{0};
    };
    // What an operation on every tier came to: how many tiers did it, the last error.
    struct Outcome {
        size_t done = 0;
        std::optional<Error> last_error;
    };
    // `writable_only`: leaves out the tiers opened read-only.
    template <class Op> Outcome each_tier(Op&& op, bool writable_only = false);
    void count_error(Tier& tier, const Error& error);
    void fill_above(size_t found_at, std::string_view key, const Blob& value);

    std::vector<std::unique_ptr<Tier>> m_tiers;
};

using OpenOne = std::function<Result<std::unique_ptr<Storage>>(std::string_view name,
                                                               const config::Settings&)>;

// Opens every name of settings.backend with `open_one` (the registry's single-backend
// opener) and wraps them. A tier that cannot be opened stays in place as a tier whose
// every operation fails with that reason ("tier 2 (redis): ..."; skipped and counted), so
// a Redis down at start-up leaves the local tiers working; the open fails only when no
// tier opens. One name returns that backend itself, unwrapped.
Result<std::unique_ptr<Storage>> open_tiered(const config::Settings& settings,
                                             const OpenOne& open_one);

// The tiered wrapper behind `storage`, or nullptr when it is a single backend.
TieredStorage* as_tiered(Storage& storage);

} // namespace curlcache::backends
