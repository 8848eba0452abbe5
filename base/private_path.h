// Safe opening of the cache's own folders and files ("Nothing from another user", DESIGN.md).
//
// Every backend that keeps files (sqlite with its -wal/-shm/.bodies/.locks/.stats siblings,
// filesystem, file locks, statistics) opens them through these functions, which refuse, as
// OpenSSH's StrictModes and ccache do:
//   - a folder or file that is not owned by the current (effective) user;
//   - one writable by others, or by a group with members other than the user (OpenSSH's
//     rule: a user-private group, as Debian's umask 002 makes, is the user);
//   - a symbolic link on the way to the cache folder that is owned by neither the user nor
//     root, and any symbolic link at the cache's own files (they are opened O_NOFOLLOW,
//     relative to a descriptor of the checked folder);
//   - a folder on the way that everyone may write and that is not sticky (another user
//     could rename the cache folder and put their own in its place).
// A shared temp folder such as /tmp is therefore only used through a per-user folder
// (private_temp_dir()), created 0700 and verified like any other.
//
// A cache that is only read (a read-only cache, README.md "Read-only caches") may also be
// root's: Trust::read accepts a folder or file owned by root that no one but root may
// write (a shared cache, 0755/0644). What another ordinary user owns or anyone else may
// write is refused for reading too: they could plant responses in it.
#pragma once

#include "base/fd.h"

#include <sys/stat.h>

#include <expected>
#include <string>

namespace curlcache::base {

// Why a path could not be used: `code` is the errno of a failed call (ENOENT, EACCES, ...)
// or EPERM for a refusal; `message` names the path, the reason and what to do.
struct PathError {
    int code = 0;
    std::string message;
    bool refused = false; // a check failed (as opposed to a failed system call)
};

template <class T> using PathResult = std::expected<T, PathError>;

enum class Trust {
    own,  // to write in: the user's alone
    read, // to read from only: the user's alone, or root's with no one else able to write it
};

// A checked folder: a descriptor (O_PATH) for the *at calls and the folder's path with every
// symbolic link resolved.
struct PrivateDir {
    Fd fd;
    std::string path;
};

// Opens folder `path` (relative to the current directory when not absolute), creating it
// and its missing parents with mode 0700 when `create`, and checks it and the way to it as
// described above. Thread-safe.
// With Trust::read the folder itself may also be root's (the way to it is checked alike).
PathResult<PrivateDir> open_private_dir(const std::string& path, bool create,
                                        Trust trust = Trust::own);

// Checks entry `name` of checked folder `dir` when it exists (a missing one is fine): it
// must not be a symbolic link, and must be owned by the user and writable by no one else.
// `shown` is its path, for messages.
PathResult<void> check_private_entry(int dir, const std::string& name, const std::string& shown,
                                     Trust trust = Trust::own);

// openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600), refusing a symbolic link and,
// through fstat of what was opened, anything but a regular file of the user's that no one
// else may write.
PathResult<Fd> open_private(int dir, const std::string& name, int flags, const std::string& shown,
                            Trust trust = Trust::own);

// Why a folder or file with status `st` is not trusted as `trust` says, or "" when it is.
std::string untrusted(const struct stat& st, Trust trust);

// Whether the user may write entry `name` of folder `dir` ("" or "." for the folder itself):
// access(2) with the effective ids, so a read-only mount (EROFS) counts as not writable.
bool writable(int dir, const std::string& name);

// The folder "<$TMPDIR, or /tmp>/curlcache-<uid>": the only way curlcache uses a shared
// temp folder. Not created here: open_private_dir(..., true) creates and verifies it.
std::string private_temp_dir();

// The user's cache folder: $XDG_CACHE_HOME/curlcache, else $HOME/.cache/curlcache (both
// only when absolute), else private_temp_dir() - never a shared name such as /tmp/.cache.
std::string user_cache_dir();

} // namespace curlcache::base
