// Tiered storage: see tiered_storage.h. Errors of one tier never hide the others: they are
// counted per tier, and an operation fails only when no tier could do it.
#include "backends/tiered_storage.h"

#include <algorithm>
#include <ctime>

namespace curlcache::backends {

TieredStorage::TieredStorage(std::vector<std::unique_ptr<Storage>> tiers) {
    for (auto& storage : tiers) {
        auto tier = std::make_unique<Tier>();
        tier->storage = std::move(storage);
        m_tiers.push_back(std::move(tier));
    }
}

TieredStorage::~TieredStorage() = default;

std::vector<TierStats> TieredStorage::tier_stats() const {
    std::vector<TierStats> stats;
    for (const auto& tier : m_tiers) {
        stats.push_back(TierStats{std::string(tier->storage->name()), tier->storage->location(),
                                  tier->hits.load(), tier->misses.load(), tier->fills.load(),
                                  tier->errors.load(), tier->timeouts.load()});
    }
    return stats;
}

std::string TieredStorage::location() const {
    std::string out;
    for (const auto& tier : m_tiers) {
        out += out.empty() ? "" : " + ";
        out += std::string(tier->storage->name()) + ':' + tier->storage->location();
    }
    return out;
}

namespace {

bool writable(const Storage& storage) {
    return storage.read_only_reason().empty();
}

} // namespace

std::string TieredStorage::read_only_reason() const {
    std::string reasons;
    for (const auto& tier : m_tiers) {
        std::string why = tier->storage->read_only_reason();
        if (why.empty()) {
            return {};
        }
        reasons += reasons.empty() ? "" : "; ";
        reasons += std::string(tier->storage->name()) + ' ' + tier->storage->location() + ": " + why;
    }
    return reasons;
}

void TieredStorage::count_error(Tier& tier, const Error& error) {
    tier.errors.fetch_add(1, std::memory_order_relaxed);
    if (error.kind == ErrorKind::timeout) {
        tier.timeouts.fetch_add(1, std::memory_order_relaxed);
    }
}

// Copies a value found at tier `found_at` into every tier above it, with that tier's
// metadata (so upper tiers list and expire it alike). Best effort: a failure is counted.
void TieredStorage::fill_above(size_t found_at, std::string_view key, const Blob& value) {
    auto meta = m_tiers[found_at]->storage->get_metadata(key);
    if (!meta) {
        count_error(*m_tiers[found_at], meta.error());
        return;
    }
    Metadata fill;
    if (*meta) {
        fill = std::move(**meta);
    } else {
        // The tier cannot tell its metadata cheaply: the copy gets the key and size only.
        // Freshness is unaffected (the core reads it from the entry itself); the upper
        // tier merely lists it without URL and never expires it by itself.
        fill.key = key;
        fill.created = static_cast<int64_t>(std::time(nullptr));
    }
    fill.size = value->size();
    std::string_view pieces[] = {*value};
    for (size_t i = 0; i < found_at; ++i) {
        if (!writable(*m_tiers[i]->storage)) {
            continue;
        }
        auto stored = m_tiers[i]->storage->put(fill, pieces);
        if (stored) {
            m_tiers[i]->fills.fetch_add(1, std::memory_order_relaxed);
        } else {
            count_error(*m_tiers[i], stored.error());
        }
    }
}

Result<std::optional<Blob>> TieredStorage::get(std::string_view key) {
    auto got = open_value(key, UINT64_MAX);
    if (!got) {
        return std::unexpected(got.error());
    }
    if (!*got) {
        return std::optional<Blob>{};
    }
    return std::optional<Blob>{std::move((*got)->whole)};
}

Result<std::optional<StoredValue>> TieredStorage::open_value(std::string_view key,
                                                             uint64_t whole_limit) {
    std::optional<Error> last_error;
    size_t failed = 0;
    for (size_t i = 0; i < m_tiers.size(); ++i) {
        Tier& tier = *m_tiers[i];
        auto got = tier.storage->open_value(key, whole_limit);
        if (!got) {
            count_error(tier, got.error());
            last_error = got.error();
            ++failed;
            continue;
        }
        if (!*got) {
            tier.misses.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        tier.hits.fetch_add(1, std::memory_order_relaxed);
        if (i > 0 && (*got)->whole) {
            fill_above(i, key, (*got)->whole);
        }
        return got;
    }
    if (failed == m_tiers.size()) {
        return std::unexpected(*last_error);
    }
    return std::optional<StoredValue>{};
}

Result<std::optional<Metadata>> TieredStorage::get_metadata(std::string_view key) {
    std::optional<Error> last_error;
    for (auto& tier : m_tiers) {
        auto meta = tier->storage->get_metadata(key);
        if (!meta) {
            count_error(*tier, meta.error());
            last_error = meta.error();
        } else if (*meta) {
            return meta;
        }
    }
    if (last_error) {
        return std::unexpected(*last_error);
    }
    return std::optional<Metadata>{};
}

template <class Op>
TieredStorage::Outcome TieredStorage::each_tier(Op&& op, bool writable_only) {
    Outcome outcome;
    for (auto& tier : m_tiers) {
        if (writable_only && !writable(*tier->storage)) {
            continue;
        }
        auto result = op(*tier->storage);
        if (result) {
            ++outcome.done;
        } else {
            count_error(*tier, result.error());
            outcome.last_error = result.error();
        }
    }
    return outcome;
}

Result<void> TieredStorage::put(const Metadata& meta, Pieces value) {
    Outcome outcome = each_tier([&](Storage& tier) { return tier.put(meta, value); }, true);
    if (outcome.done == 0) {
        return outcome.last_error ? std::unexpected(*outcome.last_error) : read_only_error(*this);
    }
    return {};
}

class TieredPutStream final : public PutStream {
  public:
    struct Part {
        TieredStorage::Tier* tier;
        std::unique_ptr<PutStream> stream;
    };
    TieredPutStream(TieredStorage& storage, std::vector<Part> parts)
        : m_storage(storage), m_parts(std::move(parts)) {}

    Result<void> append(std::string_view bytes) override {
        std::optional<Error> last_error;
        for (auto& part : m_parts) {
            if (!part.stream) {
                continue;
            }
            if (auto added = part.stream->append(bytes); !added) {
                m_storage.count_error(*part.tier, added.error());
                last_error = added.error();
                part.stream.reset(); // discards what this tier wrote
            }
        }
        return live() ? Result<void>{} : std::unexpected(*last_error);
    }

    Result<void> commit(const Metadata& meta, std::string_view head) override {
        std::optional<Error> last_error;
        size_t done = 0;
        for (auto& part : m_parts) {
            if (!part.stream) {
                continue;
            }
            if (auto committed = part.stream->commit(meta, head); committed) {
                ++done;
            } else {
                m_storage.count_error(*part.tier, committed.error());
                last_error = committed.error();
            }
            part.stream.reset();
        }
        if (done == 0) {
            return std::unexpected(
                last_error ? *last_error : Error{ErrorKind::failure, "no tier kept the value"});
        }
        return {};
    }

  private:
    bool live() const {
        return std::any_of(m_parts.begin(), m_parts.end(),
                           [](const Part& part) { return part.stream != nullptr; });
    }
    TieredStorage& m_storage;
    std::vector<Part> m_parts;
};

Result<std::unique_ptr<PutStream>> TieredStorage::begin_put(uint64_t size_hint) {
    std::vector<TieredPutStream::Part> parts;
    std::optional<Error> last_error;
    for (auto& tier : m_tiers) {
        if (!writable(*tier->storage)) {
            continue;
        }
        auto stream = tier->storage->begin_put(size_hint);
        if (stream) {
            parts.push_back({tier.get(), std::move(*stream)});
        } else {
            count_error(*tier, stream.error());
            last_error = stream.error();
        }
    }
    if (parts.empty()) {
        return last_error ? std::unexpected(*last_error) : read_only_error(*this);
    }
    return std::unique_ptr<PutStream>(std::make_unique<TieredPutStream>(*this, std::move(parts)));
}

Result<bool> TieredStorage::remove(std::string_view key) {
    bool existed = false;
    Outcome outcome = each_tier([&](Storage& tier) {
        auto removed = tier.remove(key);
        existed = existed || (removed && *removed);
        return removed;
    });
    if (outcome.done == 0) {
        return std::unexpected(*outcome.last_error);
    }
    return existed;
}

Result<void> TieredStorage::scan(const std::function<bool(const Metadata&)>& visit) {
    std::optional<Error> last_error;
    for (size_t i = m_tiers.size(); i-- > 0;) {
        bool visited = false;
        auto scanned = m_tiers[i]->storage->scan([&](const Metadata& meta) {
            visited = true;
            return visit(meta);
        });
        if (scanned) {
            return {};
        }
        count_error(*m_tiers[i], scanned.error());
        last_error = scanned.error();
        if (visited) {
            break; // starting over on another tier would visit entries twice
        }
    }
    return std::unexpected(*last_error);
}

Result<void> TieredStorage::clear() {
    Outcome outcome = each_tier([](Storage& tier) { return tier.clear(); });
    if (outcome.last_error) {
        return std::unexpected(*outcome.last_error); // some tier still holds entries: say so
    }
    return {};
}

Result<Usage> TieredStorage::usage() {
    std::optional<Error> last_error;
    for (size_t i = m_tiers.size(); i-- > 0;) {
        auto usage = m_tiers[i]->storage->usage();
        if (usage) {
            return usage;
        }
        count_error(*m_tiers[i], usage.error());
        last_error = usage.error();
    }
    return std::unexpected(*last_error);
}

Result<uint64_t> TieredStorage::purge_expired(int64_t now) {
    uint64_t most = 0;
    Outcome outcome = each_tier([&](Storage& tier) {
        auto purged = tier.purge_expired(now);
        most = std::max(most, purged.value_or(0));
        return purged;
    });
    if (outcome.done == 0) {
        return std::unexpected(*outcome.last_error);
    }
    return most; // the same entries expire in every tier: count them once
}

Result<void> TieredStorage::vacuum() {
    Outcome outcome = each_tier([](Storage& tier) { return tier.vacuum(); });
    if (outcome.last_error) {
        return std::unexpected(*outcome.last_error);
    }
    return {};
}

void TieredStorage::flush() {
    for (auto& tier : m_tiers) {
        tier->storage->flush();
    }
}

Result<bool> TieredStorage::try_lock(std::string_view key, int64_t ttl_ms) {
    Tier& lowest = *m_tiers.back();
    auto locked = lowest.storage->try_lock(key, ttl_ms);
    if (!locked) {
        count_error(lowest, locked.error());
    }
    return locked;
}

Result<void> TieredStorage::unlock(std::string_view key) {
    Tier& lowest = *m_tiers.back();
    auto unlocked = lowest.storage->unlock(key);
    if (!unlocked) {
        count_error(lowest, unlocked.error());
    }
    return unlocked;
}

namespace {

// A tier that could not be opened (a Redis server down when the process started): every
// operation fails with the reason, so the tiered cache skips it and counts the errors,
// and the other tiers keep working.
class UnavailableTier final : public Storage {
public:
    UnavailableTier(std::string name, Error error)
        : m_name(std::move(name)), m_error(std::move(error)) {}
    std::string_view name() const override { return m_name; }
    std::string location() const override { return "(unavailable: " + m_error.message + ")"; }
    Result<std::optional<Blob>> get(std::string_view) override { return down(); }
    Result<std::optional<Metadata>> get_metadata(std::string_view) override { return down(); }
    Result<void> put(const Metadata&, Pieces) override { return down(); }
    Result<bool> remove(std::string_view) override { return down(); }
    Result<void> scan(const std::function<bool(const Metadata&)>&) override { return down(); }
    Result<void> clear() override { return down(); }
    Result<Usage> usage() override { return down(); }
    Result<uint64_t> purge_expired(int64_t) override { return down(); }
    Result<void> vacuum() override { return down(); }
    Result<bool> try_lock(std::string_view, int64_t) override { return down(); }
    Result<void> unlock(std::string_view) override { return down(); }

private:
    std::unexpected<Error> down() const { return std::unexpected(m_error); }
    std::string m_name;
    Error m_error;
};

} // namespace

Result<std::unique_ptr<Storage>> open_tiered(const config::Settings& settings,
                                             const OpenOne& open_one) {
    if (settings.backend.empty()) {
        return fail("no backend named (backend = [] )");
    }
    if (settings.backend.size() == 1) {
        return open_one(settings.backend.front(), settings);
    }
    std::vector<std::unique_ptr<Storage>> tiers;
    std::optional<Error> last_error;
    for (const auto& name : settings.backend) {
        auto opened = open_one(name, settings);
        if (opened) {
            tiers.push_back(std::move(*opened));
            continue;
        }
        last_error = Error{opened.error().kind, "tier " + std::to_string(tiers.size() + 1) +
                                                    " (" + name + "): " + opened.error().message};
        tiers.push_back(std::make_unique<UnavailableTier>(name, *last_error));
    }
    bool any_open = false;
    for (const auto& tier : tiers) {
        any_open = any_open || dynamic_cast<UnavailableTier*>(tier.get()) == nullptr;
    }
    if (!any_open) {
        return std::unexpected(*last_error);
    }
    return std::make_unique<TieredStorage>(std::move(tiers));
}

TieredStorage* as_tiered(Storage& storage) { return dynamic_cast<TieredStorage*>(&storage); }

} // namespace curlcache::backends
