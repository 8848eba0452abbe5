// The command-line parser shared by every subcommand.
#include "cli/args.h"

#include "base/suggest.h"

#include <cstdio>
#include <optional>

namespace curlcache::cli {

const std::string_view k_global_help = R"HELP(
Options every subcommand accepts:
  --config FILE    read this config file instead of searching for one
  --backend NAME   storage backend (sqlite, filesystem, memory, redis; "a,b" for tiers)
  --name NAME      cache name: a path for sqlite/filesystem, a namespace for redis
  -h, --help       show this help
)HELP";

const std::string* ParsedArgs::value(std::string_view option) const {
    auto it = values.find(option);
    return it == values.end() ? nullptr : &it->second;
}

namespace {

const OptionSpec k_global_options[] = {
    {"--config", true},
    {"--backend", true},
    {"--name", true},
};

const OptionSpec* find_option(std::string_view name, std::span<const OptionSpec> options) {
    for (const auto& spec : options) {
        if (spec.name == name) {
            return &spec;
        }
    }
    for (const auto& spec : k_global_options) {
        if (spec.name == name) {
            return &spec;
        }
    }
    return nullptr;
}

void set_global(Global& global, std::string_view name, std::string value) {
    if (name == "--config") {
        global.config = std::move(value);
    } else if (name == "--backend") {
        global.backend = std::move(value);
    } else {
        global.name = std::move(value);
    }
}

const OptionSpec* find_short(char letter, std::span<const OptionSpec> options) {
    for (const auto& spec : options) {
        if (spec.short_name != 0 && spec.short_name == letter) {
            return &spec;
        }
    }
    return nullptr;
}

// "unknown option '--jsn' (did you mean '--json'?)"
std::string unknown_option(const std::string& word, std::span<const OptionSpec> options) {
    std::vector<std::string_view> names{"--help"};
    for (const auto& spec : options) {
        names.push_back(spec.name);
    }
    for (const auto& spec : k_global_options) {
        names.push_back(spec.name);
    }
    std::string message = "unknown option '" + std::string(word) + "'";
    if (std::string_view best = base::closest(word, names); !best.empty()) {
        message += " (did you mean '" + std::string(best) + "'?)";
    }
    return message;
}

bool is_global(std::string_view name) {
    return name == "--config" || name == "--backend" || name == "--name";
}

// Parses into `out`; returns an error message on a usage error, "" when fine.
std::string parse_into(Args args, const CommandSpec& spec, ParsedArgs& out, bool& help) {
    bool options_done = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view word = args[i];
        if (options_done || word == "-" || !word.starts_with("-")) {
            out.positional.emplace_back(word);
            if (spec.stop_at_command) {
                options_done = true;
            }
            continue;
        }
        if (word == "--") {
            options_done = true;
            continue;
        }
        if (word == "-h" || word == "--help") {
            help = true;
            continue;
        }
        if (!word.starts_with("--")) {
            // Short options, bundled as getopt does: "-fo FILE", "-oFILE".
            for (std::size_t k = 1; k < word.size(); ++k) {
                const OptionSpec* option = find_short(word[k], spec.options);
                if (option == nullptr && k == 1 && word.size() > 2) {
                    return unknown_option(std::string(word), spec.options); // "-json"
                }
                if (option == nullptr) {
                    return unknown_option(std::string("-") + word[k],
                                          spec.options);
                }
                if (!option->takes_value) {
                    out.flags.emplace(option->name);
                    continue;
                }
                std::string value(word.substr(k + 1));
                if (value.empty() && i + 1 < args.size()) {
                    value = args[++i];
                }
                if (value.empty()) {
                    return "option '-" + std::string(1, word[k]) + "' needs a value";
                }
                out.values[std::string(option->name)] = std::move(value);
                break;
            }
            continue;
        }
        std::optional<std::string> inline_value;
        if (auto eq = word.find('='); eq != std::string_view::npos) {
            inline_value = std::string(word.substr(eq + 1));
            word = word.substr(0, eq);
        }
        const OptionSpec* option = find_option(word, spec.options);
        if (option == nullptr) {
            return unknown_option(std::string(word), spec.options);
        }
        if (!option->takes_value) {
            if (inline_value) {
                return "option '" + std::string(word) + "' takes no value";
            }
            out.flags.emplace(word);
            continue;
        }
        std::string value;
        if (inline_value) {
            value = std::move(*inline_value);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            return "option '" + std::string(word) + "' needs a value";
        }
        if (value.empty()) {
            return "option '" + std::string(word) + "' needs a non-empty value";
        }
        if (is_global(word)) {
            set_global(out.global, word, std::move(value));
        } else {
            out.values[std::string(word)] = std::move(value);
        }
    }
    if (help) {
        return "";
    }
    if (out.positional.size() < spec.min_positional) {
        return "missing argument";
    }
    if (out.positional.size() > spec.max_positional) {
        return "unexpected argument '" + out.positional[spec.max_positional] + "'";
    }
    return "";
}

} // namespace

std::expected<ParsedArgs, int> parse_command(Args args, const CommandSpec& spec) {
    ParsedArgs parsed;
    bool help = false;
    std::string error = parse_into(args, spec, parsed, help);
    if (help) {
        std::fwrite(spec.help.data(), 1, spec.help.size(), stdout);
        std::fwrite(k_global_help.data(), 1, k_global_help.size(), stdout);
        return std::unexpected(k_exit_ok);
    }
    if (!error.empty()) {
        return std::unexpected(usage_error(error, spec.name));
    }
    return parsed;
}

} // namespace curlcache::cli
