// In-process storage: thread-safe, LRU-bounded by max_size and memory_max_entries. Hits
// hand out the stored Blob itself, never a copy.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <memory>

namespace curlcache::backends {

Result<std::unique_ptr<Storage>> open_memory(const config::Settings& settings);

} // namespace curlcache::backends
