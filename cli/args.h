// A small, strict command-line parser in getopt_long's style: long options ("--json",
// "--url GLOB" or "--url=GLOB"), the short forms an option declares ("-o FILE", "-oFILE",
// bundled flags "-fo FILE"), "--" ends the options, -h/--help everywhere, and the global
// options (--config, --backend, --name) accepted by every subcommand.
#pragma once

#include "cli/cli.h"

#include <cstddef>
#include <expected>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::cli {

struct OptionSpec {
    std::string_view name; // "--json"
    bool takes_value = false;
    char short_name = 0; // 'o' for "-o", or 0
};

struct ParsedArgs {
    Global global;
    std::map<std::string, std::string, std::less<>> values; // last occurrence wins
    std::set<std::string, std::less<>> flags;
    std::vector<std::string> positional;

    bool has(std::string_view flag) const { return flags.contains(flag); }
    const std::string* value(std::string_view option) const;
};

struct CommandSpec {
    std::string_view name; // "list"
    std::string_view help; // the whole --help text
    std::span<const OptionSpec> options;
    std::size_t min_positional = 0;
    std::size_t max_positional = 0;
    // The first positional word and everything after it stay positional (`run CMD -x`).
    bool stop_at_command = false;
};

// Parses a subcommand's arguments. On --help prints the help on stdout; on a usage error
// prints one line on stderr. Either way the unexpected value is the exit code.
std::expected<ParsedArgs, int> parse_command(Args args, const CommandSpec& spec);

// The help lines every subcommand shares, appended to each help text.
extern const std::string_view k_global_help;

} // namespace curlcache::cli
