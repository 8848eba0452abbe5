// Once-per-file config warnings; see warned_files.h.
#include "core/warned_files.h"

#include "base/fd.h"
#include "base/private_path.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>

namespace curlcache::core {

bool config_warnings_are_new(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return true;
    }
    char identity[128];
    int length = std::snprintf(identity, sizeof identity, "%ju %ju %jd %jd\n",
                               static_cast<uintmax_t>(st.st_dev), static_cast<uintmax_t>(st.st_ino),
                               static_cast<intmax_t>(st.st_size),
                               static_cast<intmax_t>(st.st_mtim.tv_sec) * 1000000000 +
                                   st.st_mtim.tv_nsec);
    char name[17];
    std::snprintf(name, sizeof name, "%016" PRIx64,
                  static_cast<uint64_t>(XXH3_64bits(path.data(), path.size())));
    auto dir = base::open_private_dir(base::user_cache_dir() + "/warned", true);
    if (!dir) {
        return true;
    }
    auto file = base::open_private(*dir->fd, name, O_RDWR | O_CREAT, dir->path + "/" + name);
    if (!file) {
        return true;
    }
    const int fd = file->get();
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            return true;
        }
    }
    char seen[128];
    ssize_t got = ::pread(fd, seen, sizeof seen, 0);
    if (got == length && std::string_view(seen, static_cast<size_t>(got)) == identity) {
        return false;
    }
    if (::ftruncate(fd, 0) == 0) {
        (void)!::pwrite(fd, identity, static_cast<size_t>(length), 0);
    }
    return true; // the lock goes with the descriptor
}

} // namespace curlcache::core
