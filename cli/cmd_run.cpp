// curlcache run [--offline|--refresh|--readonly] [--stats] [--] CMD ARGS...
//
// Runs CMD with the preload shim in LD_PRELOAD (prepended to any existing value) and the
// chosen settings in CURLCACHE_* variables, so that CMD and every program it starts use the
// cache. Without --stats curlcache replaces itself with CMD (exec), so CMD's exit status,
// signals and job control are exactly its own. With --stats it creates a run statistics
// file (curlcache_run_stats_begin), names it in CURLCACHE_RUN_STATS for CMD and every
// program it starts (each process adds its own counters to it at exit), forks, waits, and
// prints "curlcache: 3 hits, 1 miss (75%), ..." on stderr from that file: what this run
// did, whatever other programs did with the same cache meanwhile, for every backend.
// As env(1) and nice(1) do, it exits 127 when CMD is not found and 126 when it cannot run.
#include "cli/args.h"
#include "cli/format.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CURLCACHE_INSTALL_LIBDIR
#define CURLCACHE_INSTALL_LIBDIR "/usr/local/lib"
#endif

namespace curlcache::cli {
namespace {

constexpr std::string_view k_help =
    R"HELP(usage: curlcache run [--offline|--refresh|--readonly] [--stats] [--] CMD [ARGS...]

Runs CMD with its libcurl transfers cached: the preload shim goes into LD_PRELOAD and the
options below into CURLCACHE_* variables, for CMD and every program it starts.

  --offline    never use the network: a transfer that misses the cache fails
  --refresh    always fetch, and store the fresh response
  --readonly   answer from the cache, never store anything
  --stats      when CMD ends, print on stderr what its transfers did: "curlcache: N hits,
               M misses (P%), S stores, B served from the cache, T saved"

Exits with CMD's status (127 when CMD is not found, 126 when it cannot be run).
)HELP";

constexpr OptionSpec k_options[] = {
    {"--offline", false}, {"--refresh", false}, {"--readonly", false}, {"--stats", false}};

constexpr std::string_view k_shim_name = "libcurlcache-preload.so";

int exec_failure_status(int error) {
    return error == ENOENT ? 127 : 126;
}

// The shim next to this command (<bindir>/../lib, as in the build tree and an install), or
// in the library directory the command was installed with.
std::optional<std::string> find_shim(std::string& looked_in) {
    namespace fs = std::filesystem;
    std::vector<fs::path> candidates;
    std::error_code error;
    fs::path self = fs::read_symlink("/proc/self/exe", error);
    if (!error) {
        candidates.push_back(self.parent_path().parent_path() / "lib" / k_shim_name);
    }
    candidates.push_back(fs::path(CURLCACHE_INSTALL_LIBDIR) / k_shim_name);
    for (const auto& candidate : candidates) {
        if (::access(candidate.c_str(), R_OK) == 0) {
            return fs::weakly_canonical(candidate, error).string();
        }
        looked_in += looked_in.empty() ? "" : ", ";
        looked_in += candidate.lexically_normal().string();
    }
    return std::nullopt;
}

// LD_PRELOAD with the shim first; unchanged when the shim is already there (nested runs).
std::string preload_value(const std::string& shim) {
    const char* existing = std::getenv("LD_PRELOAD");
    if (existing == nullptr || *existing == '\0') {
        return shim;
    }
    std::string_view list(existing);
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t end = list.find_first_of(": ", start);
        if (end == std::string_view::npos) {
            end = list.size();
        }
        if (list.substr(start, end - start) == shim) {
            return std::string(list);
        }
        start = end + 1;
    }
    return shim + ":" + std::string(list);
}

// "curlcache: 3 hits, 1 miss (75%), 1 store, 1.2 MiB served from the cache, 2.1 s saved":
// the run's own counters, the parts after the hit rate only when not zero.
void print_summary(const curlcache_run_stats& run) {
    std::string line =
        count_of(run.hits, "hit", "hits") + ", " + count_of(run.misses, "miss", "misses");
    if (const uint64_t lookups = run.hits + run.misses; lookups > 0) {
        line += " (" + std::to_string((run.hits * 100 + lookups / 2) / lookups) + "%)";
    }
    line += ", " + count_of(run.stores, "store", "stores");
    if (run.passthrough > 0) {
        line += ", " + format_count(run.passthrough) + " passed through";
    }
    if (run.bytes_served > 0) {
        line += ", " + format_size(run.bytes_served) + " served from the cache";
    }
    if (run.time_saved_ms > 0) {
        char saved[32];
        if (run.time_saved_ms < 1000) {
            std::snprintf(saved, sizeof saved, "%llu ms",
                          static_cast<unsigned long long>(run.time_saved_ms));
        } else {
            std::snprintf(saved, sizeof saved, "%.1f s",
                          static_cast<double>(run.time_saved_ms) / 1000);
        }
        line += std::string(", ") + saved + " saved";
    }
    if (run.errors > 0) {
        line += ", " + count_of(run.errors, "backend error", "backend errors");
    }
    print_error(line);
}

// CURLCACHE_RUN_STATS with `path` in front (an outer run keeps counting too).
std::string run_stats_value(const char* path) {
    const char* outer = std::getenv("CURLCACHE_RUN_STATS");
    return outer != nullptr && *outer != '\0' ? std::string(path) + ":" + outer : path;
}

// Waits for the child with SIGINT and SIGQUIT ignored here (they reach the child through
// the terminal's process group), as system(3) does. Returns the wait status.
int wait_for(pid_t child) {
    struct sigaction ignore {
    }, old_int{}, old_quit{};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGINT, &ignore, &old_int);
    sigaction(SIGQUIT, &ignore, &old_quit);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    return status;
}

// Ends this process the way the child ended, so that the caller sees the same status.
int exit_like(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        std::signal(sig, SIG_DFL);
        std::fflush(nullptr);
        std::raise(sig);
        return 128 + sig; // the signal did not end us (it is ignored or blocked)
    }
    return k_exit_runtime;
}

} // namespace

int cmd_run(Args args) {
    auto parsed = parse_command(args, {"run", k_help, k_options, 1, SIZE_MAX, true});
    if (!parsed) {
        return parsed.error();
    }
    const char* mode = nullptr;
    for (const char* option : {"--offline", "--refresh", "--readonly"}) {
        if (parsed->has(option)) {
            if (mode != nullptr) {
                return usage_error("--offline, --refresh and --readonly exclude each other", "run");
            }
            mode = option + 2;
        }
    }
    std::string looked_in;
    auto shim = find_shim(looked_in);
    if (!shim) {
        return runtime_error("cannot find " + std::string(k_shim_name) + " (looked in " +
                             looked_in + ")");
    }

    const Global& global = parsed->global;
    std::optional<std::string> config_path;
    if (global.config) {
        // The command may change directory: hand it an absolute path.
        std::error_code error;
        config_path = std::filesystem::absolute(*global.config, error).string();
        if (::access(config_path->c_str(), R_OK) != 0) {
            return runtime_error(*global.config + ": " + std::strerror(errno));
        }
    }
    std::vector<std::string> settings = open_settings(global);
    if (config_path) {
        settings[0] = "config=" + *config_path;
    }

    char run_stats[4096] = "";
    if (parsed->has("--stats")) {
        // Said up front: a cache that does not open caches nothing (the count comes from
        // the run's own processes, not from this cache).
        settings.emplace_back("mode=readonly");
        if (auto cache = open_cache(settings); !cache) {
            print_error("--stats: " + cache.error().message);
        }
        if (curlcache_run_stats_begin(run_stats, sizeof run_stats) == CURLCACHE_OK) {
            setenv("CURLCACHE_RUN_STATS", run_stats_value(run_stats).c_str(), 1);
        } else {
            print_error("--stats: cannot create a run statistics file (the folder "
                        "curlcache-<uid> in $TMPDIR or /tmp); the run is not counted");
            *run_stats = '\0';
        }
    }

    setenv("LD_PRELOAD", preload_value(*shim).c_str(), 1);
    if (config_path) {
        setenv("CURLCACHE_CONFIG", config_path->c_str(), 1);
    }
    if (global.backend) {
        setenv("CURLCACHE_BACKEND", global.backend->c_str(), 1);
    }
    if (global.name) {
        setenv("CURLCACHE_NAME", global.name->c_str(), 1);
    }
    if (mode != nullptr) {
        setenv("CURLCACHE_MODE", mode, 1);
    }

    std::vector<char*> argv;
    for (auto& word : parsed->positional) {
        argv.push_back(word.data());
    }
    argv.push_back(nullptr);

    if (!parsed->has("--stats")) {
        std::fflush(nullptr);
        execvp(argv[0], argv.data());
        int error = errno;
        print_error(parsed->positional[0] + ": " + std::strerror(error));
        return exec_failure_status(error);
    }

    std::fflush(nullptr);
    pid_t child = fork();
    if (child < 0) {
        return runtime_error(std::string("cannot start a process: ") + std::strerror(errno));
    }
    if (child == 0) {
        execvp(argv[0], argv.data());
        int error = errno;
        print_error(parsed->positional[0] + ": " + std::strerror(error));
        _exit(exec_failure_status(error));
    }
    int status = wait_for(child);
    if (*run_stats != '\0') {
        curlcache_run_stats run{};
        if (curlcache_run_stats_end(run_stats, &run) == CURLCACHE_OK) {
            print_summary(run);
        } else {
            print_error(std::string("--stats: cannot read ") + run_stats);
        }
    }
    return exit_like(status);
}

} // namespace curlcache::cli
