// Fuzz target: the config loader (config/loader.*, toml_reader.*, the pre-scan in
// toml_limits.*, the value parsers): a config file, CURLCACHE_* variables and "key=value"
// arguments as a program under the shim may meet them. Loading must never crash the host
// program, whatever the file holds. Checks that the pre-scan answers consistently (a text
// that nests deeper than N levels also nests deeper than N - 1) and that a loaded config can
// be described.
//
// Input: NUL-separated pieces: the config file's text, then pieces that start with
// "CURLCACHE_" (environment variables, NAME=value) or not ("key=value" arguments).
#include "config/loader.h"
#include "config/toml_limits.h"
#include "tests/fuzz/fuzz_input.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

namespace {

using namespace curlcache::config;

// The file lives in memory: no disk traffic per run, and always a regular file.
int config_fd() {
    static const int fd = [] {
        const int made = memfd_create("fuzz-config.toml", MFD_CLOEXEC);
        FUZZ_CHECK(made >= 0 && fchmod(made, 0600) == 0);
        return made;
    }();
    return fd;
}

void check_limits(std::string_view text) {
    const unsigned deep = line_nesting_deeper_than(text, k_max_config_nesting);
    for (unsigned limit : {0u, 1u, 2u, 8u}) {
        const unsigned line = line_nesting_deeper_than(text, limit);
        if (deep != 0) {
            FUZZ_CHECK(line != 0 && line <= deep);
        }
    }
    const unsigned long_line = line_longer_than(text, k_max_config_line_bytes);
    FUZZ_CHECK(long_line == 0 || line_longer_than(text, 1) != 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    curlcache::fuzz::Input in(data, size);
    const std::string_view text = in.piece();
    std::map<std::string, std::string> environment{{"HOME", "/nonexistent/fuzz-home"}};
    std::vector<std::string> arguments;
    for (std::string& piece : in.pieces()) {
        (void)parse_duration(piece);
        (void)parse_size(piece);
        const size_t equals = piece.find('=');
        if (piece.starts_with("CURLCACHE_") && equals != std::string::npos) {
            environment[piece.substr(0, equals)] = piece.substr(equals + 1);
        } else {
            arguments.push_back(std::move(piece));
        }
    }
    check_limits(text);

    const int fd = config_fd();
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const GetEnv getenv_fn = [&](const char* name) -> const char* {
        auto found = environment.find(name);
        return found == environment.end() ? nullptr : found->second.c_str();
    };
    const auto loaded = load(arguments, getenv_fn, path);
    if (loaded) {
        for (const Entry& entry : describe(loaded->settings)) {
            FUZZ_CHECK(!entry.key.empty());
        }
    }
    return 0;
}
