// Filesystem storage: one file per entry under the cache folder, sharded by the key's first
// two hex digits; each file starts with a fixed header holding the metadata, so a scan
// needs no index. Writes go to a temp file in the same folder and are renamed into place.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <memory>
#include <string>
#include <string_view>

namespace curlcache::backends {

Result<std::unique_ptr<Storage>> open_filesystem(const config::Settings& settings);

// The cache folder open_filesystem uses for these settings.
std::string filesystem_cache_dir(const config::Settings& settings);

// The file that holds `key`'s entry in cache folder `dir` (whether or not it exists), or ""
// when `key` is not a valid key (lower-case hex digits and letters, at least two).
std::string filesystem_entry_path(std::string_view dir, std::string_view key);

// Helpers shared with the sqlite backend (both keep files under the user's cache folder).
// $XDG_CACHE_HOME/curlcache, else ~/.cache/curlcache, else the per-user temp folder
// (base::user_cache_dir()).
std::string user_cache_dir();
// Creates `dir` and its missing parents with mode 0700 and checks the folder and the way to
// it (base::open_private_dir: refused when another user owns or can write it). Fails with
// the path and the reason.
Result<void> make_private_dirs(const std::string& dir);

} // namespace curlcache::backends
