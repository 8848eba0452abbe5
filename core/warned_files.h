// A config file's warnings (an unknown or misspelt key, ...) are printed once per version of
// the file, not by every libcurl process that reads it: the file's identity when it last
// warned is remembered in "<user cache folder>/warned/<16 hex digits of XXH3 of its path>",
// holding "<device> <inode> <size> <mtime ns>\n", read and written only through
// base/private_path.h (private folder, O_NOFOLLOW, owned by the user, writable by no one
// else) under flock, so that two processes starting at once warn once between them. Edit
// the file (or touch it) and it warns again. `curlcache config` shows them every time.
#pragma once

#include <string>

namespace curlcache::core {

// True when the warnings of config file `path`, as it is now, have not been shown yet (and
// from now on they count as shown); also when that cannot be known (the state cannot be
// read or written): better a warning too many than a problem never shown.
bool config_warnings_are_new(const std::string& path);

} // namespace curlcache::core
