// curlcache -M SIZE | --max-size SIZE (ccache's habit): writes max_size into the user's
// config file, keeping every other line of it as it was, and says where it wrote.
//
// The file is the one `--config` names, else $CURLCACHE_CONFIG, else the user's own
// ($XDG_CONFIG_HOME or ~/.config, then curlcache/config.toml), created when missing. The
// new text is written to a temporary file beside it, checked by the same parser every
// process uses, and only then renamed over the old one: a file the edit would break is
// left alone with a message.
#include "cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace curlcache::cli {
namespace {

std::string absolute_env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && value[0] == '/' ? value : "";
}

// Where -M writes; "" when there is no user config folder (HOME unset or relative).
std::string user_config_path(const Global& global) {
    if (global.config) {
        return *global.config;
    }
    if (const char* named = std::getenv("CURLCACHE_CONFIG"); named != nullptr && *named) {
        return named;
    }
    std::string base = absolute_env("XDG_CONFIG_HOME");
    if (base.empty()) {
        const std::string home = absolute_env("HOME");
        if (home.empty()) {
            return "";
        }
        base = home + "/.config";
    }
    return base + "/curlcache/config.toml";
}

bool is_table_header(const std::string& line) {
    const size_t start = line.find_first_not_of(" \t");
    return start != std::string::npos && line[start] == '[';
}

// True when `line` sets the top-level key max_size.
bool sets_max_size(const std::string& line) {
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line.compare(start, 8, "max_size") != 0) {
        return false;
    }
    const size_t after = line.find_first_not_of(" \t", start + 8);
    return after != std::string::npos && line[after] == '=';
}

// The file's text with max_size set: the top-level line replaced, or a new line put
// before the first table (top-level keys must come before any table).
std::string with_max_size(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    std::string out;
    std::string current;
    bool done = false;
    while (std::getline(in, current)) {
        if (!done && is_table_header(current)) {
            out += line + "\n\n";
            done = true;
        } else if (!done && sets_max_size(current)) {
            out += line + "\n";
            done = true;
            continue;
        }
        out += current + "\n";
    }
    if (!done) {
        out += line + "\n";
    }
    return out;
}

void keep_warning(const char* message, void* userp) {
    static_cast<std::string*>(userp)->append(message);
}

int make_parent(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) {
        return 0;
    }
    const std::string parent = path.substr(0, slash);
    if (::mkdir(parent.c_str(), 0700) == 0 || errno == EEXIST) {
        return 0;
    }
    if (errno == ENOENT && make_parent(parent) == 0 && ::mkdir(parent.c_str(), 0700) == 0) {
        return 0;
    }
    return -1;
}

} // namespace

int set_max_size(const Global& global, std::string_view size) {
    // The value goes through the key table's own parser first.
    const std::vector<std::string> probe{"max_size=" + std::string(size)};
    CStrings c_probe(probe);
    char error[1024] = "";
    std::string ignored;
    if (curlcache_config_describe(
            c_probe.get(), [](const curlcache_setting*, void*) { return 0; }, &ignored,
            keep_warning, error, sizeof error) != CURLCACHE_OK) {
        return usage_error(std::string("--max-size: ") + (*error ? error : "invalid size"), "");
    }
    const std::string path = user_config_path(global);
    if (path.empty()) {
        return runtime_error("--max-size: no config file to write: HOME is not set (give "
                             "--config FILE)");
    }
    std::string text;
    struct stat st{};
    mode_t mode = 0600;
    if (::stat(path.c_str(), &st) == 0) {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream buffer;
        buffer << in.rdbuf();
        if (!in) {
            return runtime_error(path + ": cannot read: " + std::strerror(errno));
        }
        text = buffer.str();
        mode = st.st_mode & 07777;
    } else if (errno != ENOENT) {
        return runtime_error(path + ": " + std::strerror(errno));
    } else if (make_parent(path) != 0) {
        return runtime_error(path + ": cannot create its folder: " + std::strerror(errno));
    }
    std::string value(size);
    const std::string updated = with_max_size(text, "max_size = \"" + value + "\"");

    const std::string temp = path + ".tmp-" + std::to_string(::getpid());
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        return runtime_error(temp + ": cannot create: " + std::strerror(errno));
    }
    const bool written = ::write(fd, updated.data(), updated.size()) ==
                         static_cast<ssize_t>(updated.size());
    const int write_errno = errno;
    ::close(fd);
    if (!written) {
        ::unlink(temp.c_str());
        return runtime_error(temp + ": cannot write: " + std::strerror(write_errno));
    }
    std::string warnings;
    if (curlcache_config_check(temp.c_str(), keep_warning, &warnings, error, sizeof error) !=
        CURLCACHE_OK) {
        ::unlink(temp.c_str());
        return runtime_error(path + ": left unchanged: with max_size set it would not parse (" +
                             error + "); set max_size there by hand");
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const int rename_errno = errno;
        ::unlink(temp.c_str());
        return runtime_error(path + ": cannot replace: " + std::strerror(rename_errno));
    }
    std::printf("Set max_size = \"%s\" in %s\n", value.c_str(), path.c_str());
    if (std::getenv("CURLCACHE_MAX_SIZE") != nullptr) {
        print_error("note: CURLCACHE_MAX_SIZE is set and takes precedence over the file");
    }
    return k_exit_ok;
}

} // namespace curlcache::cli
