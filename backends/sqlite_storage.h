// SQLite storage, the default backend: one database file, WAL, safe from many threads and
// processes. The cache name is the database path ("http_cache" -> "http_cache.sqlite").
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <cstdint>
#include <memory>
#include <string>

namespace curlcache::backends {

Result<std::unique_ptr<Storage>> open_sqlite(const config::Settings& settings);

// Values (and streamed bodies) larger than this live in a body file beside the database,
// "<database>.bodies/" (not with sqlite_use_memory). Measured (bench_storage --body-files):
// at 16 KiB inline puts cost a third of a file's (creating a file is the price); from
// 256 KiB on a file wins every column (put mean 2-6x, WAL checkpoints included; get 2-3x);
// 64-128 KiB is the crossover, where run-to-run noise decides. SQLite's own figure is ~100 KB.
inline constexpr uint64_t k_sqlite_body_file_threshold = 128 * 1024;

// The same with another threshold, for benchmarks and tests (UINT64_MAX: never files).
Result<std::unique_ptr<Storage>> open_sqlite(const config::Settings& settings,
                                             uint64_t body_file_threshold);

// Where the body files of the database at `database_path` live.
std::string sqlite_bodies_path(const std::string& database_path);

// Where open_sqlite puts the database for these settings: a file path, or a
// "file:...?mode=memory&cache=shared" URI with sqlite_use_memory. For messages and tests.
std::string sqlite_database_path(const config::Settings& settings);

// Configures a copy of SQLite that curlcache's code alone uses (the shim's engine links
// SQLite in statically and hidden) for this backend: fewer instructions per statement.
// Must run once, before any other sqlite3_* call of that copy, and before other threads
// could make one. Never where SQLite is the program's shared libsqlite3 (libcurlcache.so
// in a user's program, the CLI, sanitizer builds): the settings are process-wide and
// would change the program's own SQLite. False when a setting was refused (SQLite was
// initialized already): harmless, SQLite keeps its defaults.
bool configure_private_sqlite() noexcept;

} // namespace curlcache::backends
