// Statistics that persist across processes. Counters live in memory (Stats: atomics, no
// I/O on the hit path) and are added to a small stats file next to the cache when the
// cache closes or the process exits:
//   sqlite      <database>.stats
//   filesystem  <directory>/stats
//   memory      none (nothing outlives the process)
//   redis       $XDG_CACHE_HOME/curlcache/<namespace>.stats (the cache name, as the
//               backend uses it: "curlcache" when empty)
//   others      $XDG_CACHE_HOME/curlcache/<backend>-<name>.stats
//   tiered      the file of its last tier
// Every update is a read-modify-write under flock(LOCK_EX), so concurrent processes add up.
// After fork() the child starts from zero: the parent flushes what it had counted.
//
// Run statistics: `curlcache run --stats` names files of its own in CURLCACHE_RUN_STATS
// (absolute paths separated by ':', the innermost run first). Every process of the run adds
// its counters to each of them as well, in the same way and at the same times, so the run
// reports what its own processes did whatever else uses the cache meanwhile, for every
// backend (memory included) and for a read-only cache (whose shared file is never written).
#pragma once

#include "backends/storage.h"
#include "config/settings.h"
#include "core/cache.h"

#include <cstdint>
#include <string>
#include <vector>

namespace curlcache::core::stats {

// A plain copy of the counters.
struct Counters {
    uint64_t hits = 0, misses = 0, stores = 0, errors = 0, errors_timeout = 0, corrupt = 0,
             passthrough = 0, bytes_served = 0, bytes_downloaded = 0, time_saved_ms = 0;
    Counters& operator+=(const Counters& other);
    bool empty() const;
};

Counters snapshot(const Stats& stats);
// Reads and zeroes every counter (each one atomically).
Counters take(Stats& stats);
// Adds counters back (when a flush failed, so nothing is lost).
void add(Stats& stats, const Counters& counters);

// The stats file of a cache, or "" when its statistics are not persisted.
std::string file_path(const config::Settings& settings, const backends::Storage& storage);

// The persisted counters; all zero when the file does not exist yet.
backends::Result<Counters> read_file(const std::string& path);
// Adds `delta` to the file under an exclusive lock, creating it (0600) if needed.
backends::Result<void> add_to_file(const std::string& path, const Counters& delta);
// Resets the file to zero (creating it if needed).
backends::Result<void> zero_file(const std::string& path);

// The run statistics files named by CURLCACHE_RUN_STATS (see above), or none.
std::vector<std::string> run_files();

// Takes the counters and adds them to each of `run_paths` and to `path` (when not ""). When
// `path` cannot be written the counters are put back for the next flush, unless they have
// gone into run files already (they would count there twice); either way it is warned
// about once.
void flush(Stats& stats, const std::string& path, const std::vector<std::string>& run_paths);

// Registers a cache's counters to be flushed (as flush() does) at process exit (and zeroed
// in a forked child). untrack() before the counters go away.
void track(Stats* stats, const std::string& path, const std::vector<std::string>& run_paths);
void untrack(Stats* stats);

// `curlcache run --stats`: creates an empty run statistics file, private to the user, in
// base::private_temp_dir(), and returns its path; read_run_file() reads it and removes it.
backends::Result<std::string> create_run_file();
backends::Result<Counters> read_run_file(const std::string& path);

} // namespace curlcache::core::stats
