// The process-wide cache behind the engine: opened lazily from the standard configuration
// on the first transfer that needs it, reopened in a forked child (which must not reuse
// the parent's SQLite connection or Redis socket), and given up for good, with one warning,
// when the configuration or the storage fails. At process exit it is flushed and left
// alive (other threads may still be transferring), and later transfers pass through.
#pragma once

#include "core/cache.h"

namespace curlcache::core::easy {

// The cache, or nullptr when transfers must pass through (mode off, disable, or the cache
// could not be opened). Cheap after the first call: one atomic load and a generation check.
Cache* process_cache();

// Closes the process-wide cache so that the next process_cache() opens it again from the
// (possibly changed) environment. Only for tests: not to be called while transfers run.
void close_process_cache();

} // namespace curlcache::core::easy
