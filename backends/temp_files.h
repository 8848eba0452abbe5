// Temp files of the file-based backends (sqlite body files, filesystem entries) and how the
// leftovers of a writer that died (SIGKILL, power cut) are told apart from files a live
// writer is still filling - at once, not after an hour of mtime.
//
// Two signals, both needed:
//  - The writer holds flock(LOCK_EX) on its temp file while it writes. The kernel drops the
//    lock when the last descriptor of that open file goes (the process died, or closed the
//    file), so a file whose lock can be taken has no writer any more. flock locks belong to
//    the open file description, not the process (unlike fcntl F_SETLK locks, which another
//    thread of the writer's own process would drop by closing any descriptor of the file
//    while checking it); on NFS Linux maps them to byte-range locks the server sees.
//  - The name carries the writer's pid and process start time ("p<pid>s<start>", the start
//    time from /proc/<pid>/stat in clock ticks since boot, so a reused pid does not pass
//    for the writer). It covers the moments the lock cannot: between the file's creation
//    and the writer's flock, and between its close and its rename into place.
// A temp file goes only when its lock is free and its writer is not a live process. A
// writer on another machine (NFS) or in another pid namespace is known only by its lock:
// in its creation window a sweep may remove its fresh file, and that one store then fails
// (fail-open), never serving a wrong body. A name without a writer id (written by an older
// curlcache) keeps the old rule: removed once it was last written `stale_before`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace curlcache::backends::temp_files {

// "p<pid>s<start>" for this process (recomputed after fork).
std::string writer_id();

// Takes the writer's lock on a temp file just created, without waiting. False when the file
// system has no locks (or a sweep was checking the file at that moment): the name's writer
// id still protects the file from sweeps on this machine.
bool hold(int fd);

// What a sweep found in one folder: temp files left in place (live writers, or too young to
// judge) and the ones it removed.
struct Tally {
    uint64_t files = 0;
    uint64_t bytes = 0;
    uint64_t removed = 0;
    uint64_t removed_bytes = 0;
};

// Checks the regular files of `dir` whose names start with `prefix` (the writer id comes
// right after it) and removes those of dead writers. Never descends into folders.
Tally sweep(const std::string& dir, std::string_view prefix, std::time_t stale_before);

// One temp file `name` in the folder `dir_fd`: removes it when its writer is dead. `id` is
// the part of the name after the prefix; `mtime` its last write. True when removed.
bool remove_if_dead(int dir_fd, const char* name, std::string_view id, std::time_t mtime,
                    std::time_t stale_before);

// Whether the process `pid` started at `start` (0: unknown, any start) still runs. A zombie
// does not count: its descriptors, and with them its locks, are gone.
bool process_alive(pid_t pid, uint64_t start);

// Temp files older than this without a writer id belong to a writer that died.
inline constexpr std::time_t k_stale_unnamed_seconds = 3600;

} // namespace curlcache::backends::temp_files
