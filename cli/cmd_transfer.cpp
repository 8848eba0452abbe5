// curlcache export --to TARGET | --har FILE
// curlcache import --from SOURCE | --har FILE
//
// TARGET and SOURCE name another cache, by a config file path or by a backend URL. Either
// describes that cache alone, so that it means the same cache whatever the shell holds: the
// CURLCACHE_* environment does not apply to it, and a backend URL reads no config file (the
// built-in defaults and what the URL says). Backend URLs:
//
//   sqlite:///abs/path/cache.sqlite       backend=sqlite, name=/abs/path/cache.sqlite
//   sqlite://relative.sqlite              a relative name, resolved as the backend does
//   filesystem:///abs/path/dir            backend=filesystem, name=/abs/path/dir
//   (memory:// is refused: a memory cache lives inside one process)
//   redis://host:port/db?name=ns          backend=redis, redis.url=redis://host:port/db,
//                                         name=ns (the key namespace)
//   NAME://rest                           an installed backend plugin NAME (curlcache
//                                         --version lists them): backend=NAME,
//                                         NAME.url=NAME://rest, plugin_dir=its folder;
//                                         postgres://user@host:5432/db?table=t
//                                         (also postgresql:// and mongodb+srv://, the
//                                         other schemes of libpq's and libmongoc's URLs)
//
// Query parameters become settings: name, max_size, max_entry_size and expire_after as
// they are; any other KEY=VALUE becomes BACKEND.KEY=VALUE ("sqlite:///c.sqlite?fast_save=1"),
// a KEY that already contains a dot is passed as it is. Values are percent-decoded.
#include "cli/args.h"
#include "cli/format.h"
#include "cli/har.h"

#include "base/mask.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>

extern char** environ;

namespace curlcache::cli {
namespace {

constexpr std::string_view k_export_help = R"HELP(usage: curlcache export --to CONFIG|BACKEND_URL
       curlcache export --har FILE

Copies every entry of the cache into another cache, or writes them all as an HTTP Archive
(HAR 1.2; FILE "-" is stdout). BACKEND_URL is one of
  sqlite:///path/cache.sqlite   filesystem:///path/dir   redis://host:port/0?name=NS
  NAME://...: an installed backend plugin (postgres:// or postgresql://user@host/db?table=T)
with settings as query parameters (?max_size=1GiB, ?fast_save=true); anything else is a
config file. Either describes the other cache on its own: the CURLCACHE_* variables do
not apply to it, and a backend URL reads no config file.
)HELP";

constexpr std::string_view k_import_help = R"HELP(usage: curlcache import --from CONFIG|BACKEND_URL
       curlcache import --har FILE

Copies every entry of another cache into this one (same keys are overwritten), or stores
the responses of an HTTP Archive (FILE "-" is stdin). A HAR file is read and checked whole
first: when it is malformed nothing is stored. Entries the cache's policy refuses (a status
or method it does not cache, a body over max_entry_size) are skipped and counted.
)HELP";

// The curlcache_open() settings for a TARGET or SOURCE (see the top of this file).
using Location = std::vector<std::string>;

// An installed plugin (curlcache_plugins(): "NAME VERSION PATH" lines, or "PATH: REASON").
struct InstalledPlugin {
    std::string name, path;
};

std::vector<InstalledPlugin> installed_plugins() {
    std::vector<InstalledPlugin> plugins;
    for (std::string_view lines = curlcache_plugins(); !lines.empty();) {
        const size_t end = lines.find('\n');
        const std::string_view line = lines.substr(0, end);
        lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 1);
        const size_t first = line.find(' ');
        const size_t second = line.find(' ', first == std::string_view::npos ? first : first + 1);
        const std::string_view name = line.substr(0, first);
        if (second == std::string_view::npos || name.find_first_of(":/") != std::string::npos) {
            continue; // one that cannot be used
        }
        plugins.push_back({std::string(name), std::string(line.substr(second + 1))});
    }
    return plugins;
}

// A backend URL or path as it may be printed: without a password.
std::string shown(const std::string& location) {
    return base::mask_passwords(location);
}

std::expected<Location, std::string> parse_location(const std::string& text) {
    Location location;
    auto scheme_end = text.find("://");
    if (scheme_end == std::string::npos) {
        location.push_back("config=" + text);
        return location;
    }
    const std::string scheme = text.substr(0, scheme_end);
    std::string backend = scheme;
    // The other schemes of the plugins' own URL syntaxes (libpq, libmongoc): the URL keeps
    // its scheme, the backend is the plugin's name.
    if (scheme == "postgresql") {
        backend = "postgres";
    } else if (scheme == "mongodb+srv") {
        backend = "mongodb";
    }
    std::string rest = text.substr(scheme_end + 3);
    std::string query;
    if (auto question = rest.find('?'); question != std::string::npos) {
        query = rest.substr(question + 1);
        rest.resize(question);
    }
    if (backend == "memory") {
        // It would be created and gone within this command: copying to or from it would
        // report success and keep nothing.
        return std::unexpected("'" + text +
                               "': a memory cache lives inside one process and cannot be "
                               "copied to or from (use sqlite:// or filesystem://)");
    }
    location.push_back("config=/dev/null"); // no config file: the URL says it all
    location.push_back("backend=" + backend);
    if (backend != "sqlite" && backend != "filesystem" && backend != "redis") {
        // A plugin's scheme is its name; the URL without its query is its `url` setting.
        const auto plugins = installed_plugins();
        const auto plugin = std::find_if(plugins.begin(), plugins.end(),
                                         [&](const auto& p) { return p.name == backend; });
        if (plugin == plugins.end()) {
            std::string names;
            for (const auto& p : plugins) {
                names += ", " + p.name;
            }
            return std::unexpected("'" + shown(text) + "': unknown backend '" + backend +
                                   "' (sqlite, filesystem, redis" + names +
                                   ", or a config file path)");
        }
        location.push_back("plugin_dir=" + plugin->path.substr(0, plugin->path.rfind('/')));
        location.push_back(backend + ".url=" + scheme + "://" + rest);
    } else if (backend == "redis") {
        location.push_back("redis.url=redis://" + rest);
    } else if (!rest.empty()) {
        location.push_back("name=" + percent_decode(rest, false));
    }
    std::string_view params(query);
    while (!params.empty()) {
        auto amp = params.find('&');
        std::string_view pair = params.substr(0, amp);
        params = amp == std::string_view::npos ? std::string_view() : params.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return std::unexpected("'" + shown(text) + "': expected KEY=VALUE, found '" +
                                   shown(std::string(pair)) + "'");
        }
        std::string key = percent_decode(pair.substr(0, eq), false);
        std::string value = percent_decode(pair.substr(eq + 1), false);
        bool top_level = key == "name" || key == "max_size" || key == "max_entry_size" ||
                         key == "expire_after" || key.find('.') != std::string::npos;
        location.push_back((top_level ? key : backend + "." + key) + "=" + value);
    }
    return location;
}

// Opens the other cache without the CURLCACHE_* environment: the variables are set aside
// while it opens (this process is single-threaded here) and put back afterwards.
std::expected<CachePtr, OpenFailure> open_location(const Location& location) {
    std::vector<std::string> saved;
    for (char** env = environ; *env != nullptr; ++env) {
        if (std::strncmp(*env, "CURLCACHE_", 10) == 0) {
            saved.emplace_back(*env);
        }
    }
    for (const auto& entry : saved) {
        unsetenv(entry.substr(0, entry.find('=')).c_str());
    }
    auto cache = open_cache(location);
    for (const auto& entry : saved) {
        auto eq = entry.find('=');
        setenv(entry.substr(0, eq).c_str(), entry.c_str() + eq + 1, 1);
    }
    return cache;
}

// A progress bar on stderr when it is a terminal, redrawn at most ten times a second.
class Progress {
  public:
    explicit Progress(std::string_view verb) : m_verb(verb), m_tty(isatty(STDERR_FILENO) == 1) {}
    ~Progress() {
        if (m_drawn) {
            std::fputs("\r\033[K", stderr);
        }
    }

    static int callback(uint64_t done, uint64_t total, void* userp) {
        static_cast<Progress*>(userp)->update(done, total);
        return 0;
    }

  private:
    void update(uint64_t done, uint64_t total) {
        if (!m_tty) {
            return;
        }
        auto now = std::chrono::steady_clock::now();
        if (m_drawn && done != total && now - m_last < std::chrono::milliseconds(100)) {
            return;
        }
        m_last = now;
        m_drawn = true;
        if (total == 0) {
            std::fprintf(stderr, "\rcurlcache: %s %s entries", m_verb.c_str(),
                         format_count(done).c_str());
            return;
        }
        constexpr int k_width = 30;
        int filled = static_cast<int>(k_width * std::min(done, total) / total);
        std::fprintf(stderr, "\rcurlcache: %s [%.*s%*s] %s / %s", m_verb.c_str(), filled,
                     "##############################", k_width - filled, "",
                     format_count(done).c_str(), format_count(total).c_str());
    }

    std::string m_verb;
    bool m_tty;
    bool m_drawn = false;
    std::chrono::steady_clock::time_point m_last{};
};

// True when both handles open the same storage (a copy onto itself would be pointless, and
// would scan a cache while overwriting it).
bool same_storage(curlcache_handle* a, curlcache_handle* b) {
    curlcache_tier first{}, second{};
    if (curlcache_tier_count(a) == 0 || curlcache_tier_count(b) == 0 ||
        curlcache_tier_get(a, 0, &first) != CURLCACHE_OK ||
        curlcache_tier_get(b, 0, &second) != CURLCACHE_OK || !first.backend || !second.backend ||
        !first.location || !second.location) {
        return false;
    }
    std::string_view backend = first.backend;
    return backend != "memory" && backend == second.backend &&
           std::string_view(first.location) == second.location;
}

int copy_between(curlcache_handle* from, curlcache_handle* to, const std::string& other,
                 bool exporting) {
    if (same_storage(from, to)) {
        return runtime_error("'" + shown(other) + "' is this cache itself");
    }
    uint64_t copied = 0;
    curlcache_code code;
    {
        Progress progress(exporting ? "exporting" : "importing");
        code = curlcache_copy(from, to, Progress::callback, &progress, &copied);
    }
    if (code != CURLCACHE_OK) {
        curlcache_handle* failed = *curlcache_errmsg(to) != '\0' ? to : from;
        return runtime_error(
            api_message(failed, code, "copy failed after " + format_count(copied) + " entries"));
    }
    std::printf("%s %s %s\n", count_of(copied, "entry", "entries").c_str(),
                exporting ? "exported to" : "imported from", shown(other).c_str());
    return k_exit_ok;
}

int export_har(curlcache_handle* cache, const std::string& path) {
    if (path == "-") {
        auto written = write_har(cache, stdout);
        if (!written) {
            return runtime_error(written.error());
        }
        print_error(count_of(*written, "entry", "entries") + " exported");
        return k_exit_ok;
    }
    // Written next to the target and renamed over it: the file is complete or absent.
    std::string temp = path + ".tmp.XXXXXX";
    int fd = mkstemp(temp.data());
    if (fd < 0) {
        return runtime_error(path + ": " + std::strerror(errno));
    }
    std::FILE* out = fdopen(fd, "w");
    if (out == nullptr) {
        ::close(fd);
        ::unlink(temp.c_str());
        return runtime_error(path + ": " + std::strerror(errno));
    }
    auto written = write_har(cache, out);
    bool closed = std::fclose(out) == 0;
    if (!written || !closed || std::rename(temp.c_str(), path.c_str()) != 0) {
        int error = errno;
        ::unlink(temp.c_str());
        return runtime_error(written ? path + ": " + std::strerror(error) : written.error());
    }
    std::printf("%s exported to %s\n", count_of(*written, "entry", "entries").c_str(),
                path.c_str());
    return k_exit_ok;
}

} // namespace

int cmd_export(Args args) {
    static constexpr OptionSpec options[] = {{"--to", true}, {"--har", true}};
    auto parsed = parse_command(args, {"export", k_export_help, options, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    const std::string* to = parsed->value("--to");
    const std::string* har = parsed->value("--har");
    if ((to == nullptr) == (har == nullptr)) {
        return usage_error("give exactly one of --to and --har", "export");
    }
    std::optional<Location> location;
    if (to != nullptr) {
        auto parsed_location = parse_location(*to);
        if (!parsed_location) {
            return usage_error(parsed_location.error(), "export");
        }
        location = std::move(*parsed_location);
    }
    auto cache = open_existing_cache(parsed->global);
    if (!cache) {
        return report(cache.error());
    }
    if (har != nullptr) {
        return export_har(cache->get(), *har);
    }
    auto target = open_location(*location);
    if (!target) {
        return report({shown(*to) + ": " + target.error().message, target.error().bad_settings});
    }
    return copy_between(cache->get(), target->get(), *to, true);
}

int cmd_import(Args args) {
    static constexpr OptionSpec options[] = {{"--from", true}, {"--har", true}};
    auto parsed = parse_command(args, {"import", k_import_help, options, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    const std::string* from = parsed->value("--from");
    const std::string* har = parsed->value("--har");
    if ((from == nullptr) == (har == nullptr)) {
        return usage_error("give exactly one of --from and --har", "import");
    }
    if (har != nullptr) {
        return import_har(parsed->global, *har);
    }
    auto location = parse_location(*from);
    if (!location) {
        return usage_error(location.error(), "import");
    }
    location->push_back("mode=readonly"); // the source is only read
    auto source = open_location(*location);
    if (!source) {
        return report({shown(*from) + ": " + source.error().message, source.error().bad_settings});
    }
    auto cache = open_cache(open_settings(parsed->global));
    if (!cache) {
        return report(cache.error());
    }
    return copy_between(source->get(), cache->get(), *from, false);
}

} // namespace curlcache::cli
