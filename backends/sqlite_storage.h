// SQLite storage, the default backend: one database file, WAL, safe from many threads and
// processes. The cache name is the database path ("http_cache" -> "http_cache.sqlite").
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <memory>
#include <string>

namespace curlcache::backends {

Result<std::unique_ptr<Storage>> open_sqlite(const config::Settings& settings);

// Where open_sqlite puts the database for these settings: a file path, or a
// "file:...?mode=memory&cache=shared" URI with sqlite_use_memory. For messages and tests.
std::string sqlite_database_path(const config::Settings& settings);

} // namespace curlcache::backends
