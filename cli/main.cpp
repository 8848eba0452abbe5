// curlcache: the command. Dispatches to one subcommand; every subcommand takes --help and
// the global options, prints data on stdout and one "curlcache: ..." line per problem on
// stderr, and exits 0 (ok), 1 (runtime error) or 2 (usage error).
#include "cli/cli.h"

#include <curl/curl.h>

#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

namespace curlcache::cli {
namespace {

constexpr std::string_view k_usage =
    R"HELP(usage: curlcache [--config FILE] [--backend NAME] [--name NAME] COMMAND [ARGS]

Run a program with its libcurl transfers cached:
  run [--offline|--refresh|--readonly] [--stats] -- CMD ARGS...

Inspect and manage a cache:
  stats [--json] [--zero]      hits, misses, sizes and errors
  list [--expired] [--url GLOB] [--json]
  show URL|KEY [--body]        one entry's metadata and headers (or its body)
  delete URL|GLOB|KEY          remove entries
  clear                        remove every entry
  purge                        remove expired entries
  vacuum                       give freed space back to the file system
  export --to TARGET | --har FILE
  import --from SOURCE | --har FILE
  config [--check FILE]        every effective setting and where it comes from

  --version                    curlcache, libcurl and the compiled-in backends
  COMMAND --help, help COMMAND help on one command

Exit status: 0 ok, 1 runtime error, 2 usage error ('run' exits with CMD's status).
)HELP";

struct Command {
    std::string_view name;
    int (*function)(Args);
};

constexpr Command k_commands[] = {
    {"run", cmd_run},       {"stats", cmd_stats},   {"list", cmd_list},     {"show", cmd_show},
    {"delete", cmd_delete}, {"clear", cmd_clear},   {"purge", cmd_purge},   {"vacuum", cmd_vacuum},
    {"export", cmd_export}, {"import", cmd_import}, {"config", cmd_config},
};

int print_version() {
    std::printf("curlcache %s\n", curlcache_version());
    std::printf("libcurl: %s\n", curl_version());
    std::printf("backends: %s\n", curlcache_backends());
    return k_exit_ok;
}

bool is_global_option(std::string_view word) {
    for (std::string_view name : {"--config", "--backend", "--name"}) {
        if (word == name ||
            (word.starts_with(name) && word.size() > name.size() && word[name.size()] == '=')) {
            return true;
        }
    }
    return false;
}

int dispatch(int argc, char** argv) {
    // Global options may come before the command; they are handed to it first.
    std::vector<char*> globals;
    int i = 1;
    while (i < argc && is_global_option(argv[i])) {
        globals.push_back(argv[i]);
        if (std::string_view(argv[i]).find('=') == std::string_view::npos) {
            if (i + 1 >= argc) {
                return usage_error("option '" + std::string(argv[i]) + "' needs a value", "");
            }
            globals.push_back(argv[++i]);
        }
        ++i;
    }
    if (i >= argc) {
        std::fwrite(k_usage.data(), 1, k_usage.size(), stderr);
        return k_exit_usage;
    }
    std::string_view word = argv[i];
    if (word == "help" && i + 1 < argc) {
        // `curlcache help list` is `curlcache list --help`.
        for (const auto& command : k_commands) {
            if (command.name == argv[i + 1]) {
                char help_flag[] = "--help";
                char* args[] = {help_flag};
                return command.function(Args(args, 1));
            }
        }
        return usage_error("unknown command '" + std::string(argv[i + 1]) + "'", "");
    }
    if (word == "-h" || word == "--help" || word == "help") {
        std::fwrite(k_usage.data(), 1, k_usage.size(), stdout);
        return k_exit_ok;
    }
    if (word == "--version" || word == "version") {
        return print_version();
    }
    for (const auto& command : k_commands) {
        if (command.name == word) {
            std::vector<char*> args = globals;
            args.insert(args.end(), argv + i + 1, argv + argc);
            return command.function(Args(args.data(), args.size()));
        }
    }
    if (word.starts_with("-")) {
        return usage_error("unknown option '" + std::string(word) + "'", "");
    }
    return usage_error("unknown command '" + std::string(word) + "'", "");
}

} // namespace
} // namespace curlcache::cli

int main(int argc, char** argv) {
    try {
        return curlcache::cli::dispatch(argc, argv);
    } catch (const std::exception& e) {
        // Only programming errors and exhausted memory get here.
        return curlcache::cli::runtime_error(std::string("internal error: ") + e.what());
    }
}
