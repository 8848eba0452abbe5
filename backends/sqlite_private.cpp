// configure_private_sqlite (sqlite_storage.h): the settings a copy of SQLite that belongs to
// curlcache alone is given before its first use.
#include "backends/sqlite_storage.h"

#include <sqlite3.h>

namespace curlcache::backends {

bool configure_private_sqlite() noexcept {
    // Memory statistics off: every sqlite3_malloc and sqlite3_free then skips SQLite's
    // global memory mutex and its counters (sqlite3_memory_used() and the soft heap limit,
    // which curlcache never uses, stop counting). A hit allocates and frees three times
    // (the cursor, the key and the value copied into registers; Debian's build has no
    // lookaside): BENCHMARKS.md, issue 11, "SQLite's private configuration".
    // SQLITE_MISUSE when SQLite is initialized already: it then keeps its defaults.
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
}

} // namespace curlcache::backends
