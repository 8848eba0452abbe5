// curlcache: the command. Dispatches to one subcommand; every subcommand takes --help and
// the global options, prints data on stdout and one "curlcache: ..." line per problem on
// stderr, and exits 0 (ok), 1 (runtime error) or 2 (usage error).
#include "cli/cli.h"

#include "base/suggest.h"

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

  -V, --version                curlcache, libcurl and the compiled-in backends
  COMMAND --help, help COMMAND help on one command

ccache's options work too (bundled like -zs, run in the order given):
  -s, --show-stats             stats
  -z, --zero-stats             stats --zero
  -C, --clear                  clear
  -p, --show-config            config
  -M, --max-size SIZE          write max_size = SIZE into your config file

Exit status: 0 ok, 1 runtime error, 2 usage or config error (nothing was done; 'run'
exits with CMD's status).
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
    // Plugins found in the plugin folder, one "plugin: NAME VERSION PATH" line each.
    for (std::string_view lines = curlcache_plugins(); !lines.empty();) {
        const size_t end = lines.find('\n');
        std::printf("plugin: %.*s\n", static_cast<int>(lines.substr(0, end).size()), lines.data());
        lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 1);
    }
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

// ccache's options, for the habit: each is one action, run in the order given
// (`curlcache -zs` zeroes, then shows), short ones bundled as getopt does.
struct Action {
    char letter;
    std::string_view long_name;
    bool takes_value;
};

constexpr Action k_actions[] = {
    {'s', "--show-stats", false}, {'z', "--zero-stats", false}, {'C', "--clear", false},
    {'M', "--max-size", true},    {'p', "--show-config", false}, {'V', "--version", false},
    {'h', "--help", false},
};

struct Requested {
    char letter;
    std::string value;
};

// "unknown command 'lisst' (did you mean 'list'?)"
std::string unknown(std::string_view what, std::string_view word,
                    const std::vector<std::string_view>& candidates) {
    std::string message = "unknown " + std::string(what) + " '" + std::string(word) + "'";
    if (std::string_view best = base::closest(word, candidates); !best.empty()) {
        message += " (did you mean '" + std::string(best) + "'?)";
    }
    return message;
}

std::vector<std::string_view> top_level_options() {
    std::vector<std::string_view> names{"--config", "--backend", "--name"};
    for (const auto& action : k_actions) {
        names.push_back(action.long_name);
    }
    return names;
}

// Reads one ccache-style option word (and its value) at argv[i]; false when argv[i] is
// none. Sets `error` on a usage error.
bool read_action(int argc, char** argv, int& i, std::vector<Requested>& out, std::string& error) {
    std::string_view word = argv[i];
    auto value_after = [&](std::string_view rest, std::string_view name) -> std::string {
        if (!rest.empty()) {
            return std::string(rest);
        }
        if (i + 1 < argc) {
            return argv[++i];
        }
        error = "option '" + std::string(name) + "' needs a value";
        return "";
    };
    if (word.starts_with("--")) {
        const size_t eq = word.find('=');
        const std::string_view name = word.substr(0, eq);
        for (const auto& action : k_actions) {
            if (action.long_name != name) {
                continue;
            }
            if (!action.takes_value && eq != std::string_view::npos) {
                error = "option '" + std::string(name) + "' takes no value";
            } else if (action.takes_value) {
                std::string value = eq == std::string_view::npos ? value_after("", name)
                                                                 : std::string(word.substr(eq + 1));
                out.push_back({action.letter, std::move(value)});
            } else {
                out.push_back({action.letter, ""});
            }
            return true;
        }
        return false;
    }
    if (word.size() < 2 || word[0] != '-') {
        return false;
    }
    for (size_t k = 1; k < word.size() && error.empty(); ++k) {
        const Action* found = nullptr;
        for (const auto& action : k_actions) {
            found = action.letter == word[k] ? &action : found;
        }
        if (found == nullptr) {
            error = unknown("option", "-" + std::string(1, word[k]), top_level_options());
        } else if (found->takes_value) {
            out.push_back({found->letter, value_after(word.substr(k + 1), "-" + std::string(1, found->letter))});
            break;
        } else {
            out.push_back({found->letter, ""});
        }
    }
    return true;
}

int run_action(const Requested& action, const std::vector<char*>& globals) {
    auto with = [&](int (*command)(Args), const char* flag) {
        std::vector<char*> args = globals;
        std::string copy = flag != nullptr ? flag : "";
        if (flag != nullptr) {
            args.push_back(copy.data());
        }
        return command(Args(args.data(), args.size()));
    };
    switch (action.letter) {
    case 's':
        return with(cmd_stats, nullptr);
    case 'z':
        return with(cmd_stats, "--zero");
    case 'C':
        return with(cmd_clear, nullptr);
    case 'p':
        return with(cmd_config, nullptr);
    case 'V':
        return print_version();
    case 'M': {
        Global global;
        for (size_t k = 0; k < globals.size(); ++k) {
            std::string_view word = globals[k];
            const size_t eq = word.find('=');
            std::string value = eq != std::string_view::npos ? std::string(word.substr(eq + 1))
                                                              : std::string(globals[++k]);
            if (word.starts_with("--config")) {
                global.config = value;
            }
        }
        return set_max_size(global, action.value);
    }
    default:
        std::fwrite(k_usage.data(), 1, k_usage.size(), stdout);
        return k_exit_ok;
    }
}

int dispatch(int argc, char** argv) {
    // Global options and ccache-style options come before the command; the global ones
    // are handed to it (or to each ccache-style action) first.
    std::vector<char*> globals;
    std::vector<Requested> actions;
    int i = 1;
    for (; i < argc; ++i) {
        std::string error;
        if (is_global_option(argv[i])) {
            globals.push_back(argv[i]);
            if (std::string_view(argv[i]).find('=') == std::string_view::npos) {
                if (i + 1 >= argc) {
                    return usage_error("option '" + std::string(argv[i]) + "' needs a value", "");
                }
                globals.push_back(argv[++i]);
            }
        } else if (!read_action(argc, argv, i, actions, error)) {
            break;
        }
        if (!error.empty()) {
            return usage_error(error, "");
        }
    }
    if (!actions.empty()) {
        if (i < argc) {
            return usage_error("unexpected argument '" + std::string(argv[i]) + "'", "");
        }
        for (const auto& action : actions) {
            if (int status = run_action(action, globals); status != k_exit_ok) {
                return status;
            }
        }
        return k_exit_ok;
    }
    if (i >= argc) {
        std::fwrite(k_usage.data(), 1, k_usage.size(), stderr);
        return k_exit_usage;
    }
    std::vector<std::string_view> names{"help", "version"};
    for (const auto& command : k_commands) {
        names.push_back(command.name);
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
        return usage_error(unknown("command", argv[i + 1], names), "");
    }
    if (word == "help") {
        std::fwrite(k_usage.data(), 1, k_usage.size(), stdout);
        return k_exit_ok;
    }
    if (word == "version") {
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
        return usage_error(unknown("option", word.substr(0, word.find('=')), top_level_options()), "");
    }
    return usage_error(unknown("command", word, names), "");
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
