// Safe opening of the cache's own folders and files; see private_path.h.
#include "base/private_path.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

namespace curlcache::base {

namespace {

constexpr int k_max_links = 40; // as the kernel's own limit on links in one lookup

std::string mode_text(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

std::unexpected<PathError> failed(const std::string& what, const std::string& shown) {
    int code = errno;
    return std::unexpected(PathError{code, what + " " + shown + ": " + std::strerror(code)});
}

std::unexpected<PathError> refused(const std::string& shown, const std::string& reason,
                                   const char* advice) {
    return std::unexpected(PathError{
        EPERM,
        "refused " + shown + ": " + reason +
            "; another user could then plant responses in the cache or redirect its files. " +
            advice,
        true});
}

constexpr const char* k_folder_advice =
    "Use a cache folder that only you own and can write (README.md, Security).";
constexpr const char* k_file_advice =
    "Remove it if it is not yours; curlcache recreates its files (README.md, Security).";

// OpenSSH's rule for a group-writable file: the group must be the user's primary group and
// have no member but the user (a user-private group).
bool group_is_only_user(gid_t gid, uid_t uid) {
    long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buffer(size > 0 ? static_cast<size_t>(size) : 16384);
    passwd pw{};
    passwd* found_pw = nullptr;
    if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found_pw) != 0 || !found_pw ||
        pw.pw_gid != gid) {
        return false;
    }
    std::string user = pw.pw_name;
    long group_size = ::sysconf(_SC_GETGR_R_SIZE_MAX);
    std::vector<char> group_buffer(group_size > 0 ? static_cast<size_t>(group_size) : 16384);
    group gr{};
    group* found_gr = nullptr;
    for (;;) {
        int rc = ::getgrgid_r(gid, &gr, group_buffer.data(), group_buffer.size(), &found_gr);
        if (rc == ERANGE && group_buffer.size() < (1u << 20)) {
            group_buffer.resize(group_buffer.size() * 2);
            continue;
        }
        if (rc != 0 || !found_gr) {
            return false;
        }
        break;
    }
    for (char** member = gr.gr_mem; member && *member; ++member) {
        if (user != *member) {
            return false;
        }
    }
    return true;
}

// Why `st` (a folder or file at `shown`) is not the user's alone, or "" when it is. With
// Trust::read, root's is fine too as long as only root may write it.
std::string not_private(const struct stat& st, uid_t uid, Trust trust = Trust::own) {
    if (trust == Trust::read && st.st_uid == 0 && uid != 0) {
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
            return "it is root's but others may write it too (mode " + mode_text(st.st_mode) + ")";
        }
        return {};
    }
    if (st.st_uid != uid) {
        if (trust == Trust::read) {
            return "it is owned by uid " + std::to_string(st.st_uid) + ", neither you (uid " +
                   std::to_string(uid) + ") nor root";
        }
        return "it is owned by uid " + std::to_string(st.st_uid) + ", not by you (uid " +
               std::to_string(uid) + ")";
    }
    if ((st.st_mode & S_IWOTH) != 0) {
        return "everyone may write it (mode " + mode_text(st.st_mode) + ")";
    }
    if ((st.st_mode & S_IWGRP) != 0 && !group_is_only_user(st.st_gid, uid)) {
        return "group " + std::to_string(st.st_gid) + " may write it (mode " +
               mode_text(st.st_mode) + ")";
    }
    return {};
}

void push_front_components(std::deque<std::string>& todo, const std::string& path) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        size_t end = slash == std::string::npos ? path.size() : slash;
        if (end > start) {
            parts.push_back(path.substr(start, end - start));
        }
        start = end + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
}

std::string joined(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& part : parts) {
        out += '/';
        out += part;
    }
    return out.empty() ? "/" : out;
}

std::string child(const std::vector<std::string>& parts, const std::string& name) {
    return parts.empty() ? "/" + name : joined(parts) + "/" + name;
}

} // namespace

PathResult<PrivateDir> open_private_dir(const std::string& path, bool create, Trust trust) {
    if (path.empty()) {
        return std::unexpected(PathError{ENOENT, "empty folder name"});
    }
    std::string full = path;
    if (full.front() != '/') {
        char cwd[PATH_MAX];
        if (!::getcwd(cwd, sizeof cwd)) {
            return failed("cannot resolve", path);
        }
        full = std::string(cwd) + "/" + path;
    }
    const uid_t uid = ::geteuid();
    std::deque<std::string> todo;
    push_front_components(todo, full);
    std::vector<std::string> resolved; // the folder `current` is, from "/", links resolved
    Fd current(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!current) {
        return failed("cannot open", "/");
    }
    int links = 0;
    while (!todo.empty()) {
        std::string name = std::move(todo.front());
        todo.pop_front();
        if (name == ".") {
            continue;
        }
        struct stat here {};
        if (::fstat(*current, &here) != 0) {
            return failed("cannot inspect", joined(resolved));
        }
        std::string shown = child(resolved, name);
        if (name == "..") {
            Fd up(::openat(*current, "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!up) {
                return failed("cannot open", shown);
            }
            current = std::move(up);
            if (!resolved.empty()) {
                resolved.pop_back();
            }
            continue;
        }
        // Everyone may write here and nothing stops them renaming what is not theirs.
        if ((here.st_mode & S_IWOTH) != 0 && (here.st_mode & S_ISVTX) == 0) {
            return refused(joined(resolved),
                           "everyone may write this folder on the way to " + full + " (mode " +
                               mode_text(here.st_mode) + ", not sticky)",
                           k_folder_advice);
        }
        struct stat st {};
        if (::fstatat(*current, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT || !create) {
                return failed("cannot open folder", shown);
            }
            if (::mkdirat(*current, name.c_str(), 0700) != 0 && errno != EEXIST) {
                return failed("cannot create folder", shown);
            }
            if (::fstatat(*current, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                return failed("cannot open folder", shown);
            }
        }
        if (S_ISLNK(st.st_mode)) {
            if (st.st_uid != uid && st.st_uid != 0) {
                return refused(shown,
                               "it is a symbolic link owned by uid " + std::to_string(st.st_uid) +
                                   ", neither you (uid " + std::to_string(uid) + ") nor root",
                               k_folder_advice);
            }
            if (++links > k_max_links) {
                errno = ELOOP;
                return failed("cannot open folder", full);
            }
            std::string target(PATH_MAX, '\0');
            ssize_t n = ::readlinkat(*current, name.c_str(), target.data(), target.size());
            if (n < 0 || static_cast<size_t>(n) >= target.size()) {
                return failed("cannot read link", shown);
            }
            target.resize(static_cast<size_t>(n));
            if (target.starts_with('/')) {
                current.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
                resolved.clear();
                if (!current) {
                    return failed("cannot open", "/");
                }
            }
            push_front_components(todo, target);
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return failed("cannot open folder", shown);
        }
        Fd next(::openat(*current, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            return failed("cannot open folder", shown);
        }
        current = std::move(next);
        resolved.push_back(std::move(name));
    }
    struct stat st {};
    if (::fstat(*current, &st) != 0) {
        return failed("cannot inspect", full);
    }
    std::string shown = joined(resolved);
    if (std::string why = not_private(st, uid, trust); !why.empty()) {
        std::string advice = k_folder_advice;
        if ((st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) != 0) {
            // A shared temp folder such as /tmp: only through a folder of the user's own.
            advice = "Use a private folder in it instead, such as " + shown + "/curlcache-" +
                     std::to_string(uid) + "/ (what sqlite.use_temp does), README.md, Security.";
        }
        return refused(shown == full ? shown : full + " (" + shown + ")", "folder: " + why,
                       advice.c_str());
    }
    return PrivateDir{std::move(current), std::move(shown)};
}

PathResult<void> check_private_entry(int dir, const std::string& name, const std::string& shown,
                                     Trust trust) {
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return {};
        }
        return failed("cannot inspect", shown);
    }
    if (S_ISLNK(st.st_mode)) {
        return refused(shown,
                       "it is a symbolic link (owned by uid " + std::to_string(st.st_uid) +
                           "); curlcache never follows links for its own files",
                       k_file_advice);
    }
    if (std::string why = not_private(st, ::geteuid(), trust); !why.empty()) {
        return refused(shown, why, k_file_advice);
    }
    return {};
}

PathResult<Fd> open_private(int dir, const std::string& name, int flags, const std::string& shown,
                            Trust trust) {
    Fd fd(::openat(dir, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
        if (errno == ELOOP) {
            return refused(shown,
                           "it is a symbolic link; curlcache never follows links for its own files",
                           k_file_advice);
        }
        return failed("cannot open", shown);
    }
    struct stat st {};
    if (::fstat(*fd, &st) != 0) {
        return failed("cannot inspect", shown);
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return std::unexpected(PathError{EINVAL, "cannot use " + shown + ": not a regular file"});
    }
    if (std::string why = not_private(st, ::geteuid(), trust); !why.empty()) {
        return refused(shown, why, k_file_advice);
    }
    return fd;
}

std::string untrusted(const struct stat& st, Trust trust) {
    return not_private(st, ::geteuid(), trust);
}

bool writable(int dir, const std::string& name) {
    if (name.empty() || name == ".") {
        // The folder itself (an O_PATH descriptor): faccessat cannot take "" there.
        return ::faccessat(dir, ".", W_OK | X_OK, AT_EACCESS) == 0;
    }
    return ::faccessat(dir, name.c_str(), W_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) == 0;
}

std::string private_temp_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp && tmp[0] == '/' ? tmp : "/tmp";
    while (base.size() > 1 && base.back() == '/') {
        base.pop_back();
    }
    return base + "/curlcache-" + std::to_string(::geteuid());
}

std::string user_cache_dir() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') {
        return std::string(xdg) + "/curlcache";
    }
    const char* home = std::getenv("HOME");
    if (home && home[0] == '/') {
        return std::string(home) + "/.cache/curlcache";
    }
    return private_temp_dir();
}

} // namespace curlcache::base
