// The defaults of the optional Storage operations (see storage.h).
#include "backends/storage.h"

#include <string>
#include <vector>

namespace curlcache::backends {

// Collect first, remove afterwards: a backend may hold a lock or a cursor during scan, and
// removing from inside the visitor would then deadlock or disturb the iteration.
Result<uint64_t> Storage::purge_expired(int64_t now) {
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

Result<bool> Storage::try_lock(std::string_view /*key*/, int64_t /*ttl_ms*/) {
    return true;
}

Result<void> Storage::unlock(std::string_view /*key*/) {
    return {};
}

} // namespace curlcache::backends
