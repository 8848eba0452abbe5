// Defaults < config file < CURLCACHE_* environment < arguments, each value with its origin.
#include "config/loader.h"

#include "config/keys.h"
#include "config/parse.h"

#include "base/mask.h"
#include "base/suggest.h"
#include "config/toml_reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

extern char** environ;

namespace curlcache::config {

using base::edit_distance;

namespace {

constexpr const char* k_system_file = "/etc/curlcache.toml";

// Reads a variable; an empty value counts as unset (`CURLCACHE_MODE= cmd` clears it).
class Env {
  public:
    explicit Env(const GetEnv& getenv_fn) : m_getenv(getenv_fn) {}

    std::optional<std::string> get(std::string_view name) const {
        const std::string key(name);
        const char* value = m_getenv ? m_getenv(key.c_str()) : std::getenv(key.c_str());
        if (value == nullptr || *value == '\0') {
            return std::nullopt;
        }
        return std::string(value);
    }

  private:
    const GetEnv& m_getenv;
};

// HOME as the XDG Base Directory spec reads it: a relative value is invalid and counts as
// unset, so that nothing resolves against the current directory (HOME=. would otherwise
// put "~/x" and ~/.config in whatever folder the program runs in).
std::string absolute_home(std::optional<std::string> home) {
    return home && home->starts_with('/') ? *home : std::string();
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string did_you_mean(std::string_view key) {
    const std::string suggestion = suggest_key(key);
    return suggestion.empty() ? "" : " (did you mean '" + suggestion + "'?)";
}

// How an error about `key` set at `origin` starts.
std::string prefix(const Origin& origin, std::string_view key) {
    switch (origin.kind) {
    case Origin::Kind::file:
        return origin.where + ": key '" + std::string(key) + "': ";
    case Origin::Kind::environment:
        return origin.where + ": ";
    case Origin::Kind::argument:
        return "argument '" + std::string(key) + "': ";
    case Origin::Kind::built_in:
        break;
    }
    return "key '" + std::string(key) + "': ";
}

std::expected<void, LoadError> set(const KeyDef& def, const Value& value, Origin origin,
                                   Settings& settings, std::string_view home) {
    if (auto ok = apply(def, value, settings, home); !ok) {
        return std::unexpected(LoadError{prefix(origin, def.key) + ok.error()});
    }
    settings.origins[std::string(def.key)] = std::move(origin);
    return {};
}

// Unknown keys past this many are counted in one last warning: a file of 20,000 stray keys
// gives 21 lines on the program's stderr, not 20,000, and no suggestion work for the rest.
constexpr size_t k_max_unknown_key_warnings = 20;

// A table that is no built-in section belongs to a backend plugin of that name: its values
// are kept as text for the plugin, which checks them itself (none is unknown here). A name
// close to a built-in section is that section misspelt: a warning, not a plugin's table.
template <class At>
std::expected<void, LoadError> keep_plugin_table(const std::string& name, const Value& table,
                                                 const At& at, Loaded& loaded) {
    for (std::string_view section : sections()) {
        if (edit_distance(name, section) <= 2) {
            loaded.warnings.push_back(at(table) + ": unknown table [" + name + "] (did you mean [" +
                                      std::string(section) + "]?)");
            return {};
        }
    }
    auto& kept = loaded.settings.plugin_tables[name];
    kept.clear();
    loaded.settings.origins[name] = Origin{Origin::Kind::file, at(table)};
    for (const auto& [key, value] : table.fields) {
        std::string text;
        switch (value.type) {
        case Value::Type::string:
        case Value::Type::text:
            text = value.text;
            break;
        case Value::Type::integer:
            text = std::to_string(value.integer);
            break;
        case Value::Type::boolean:
            text = value.boolean ? "true" : "false";
            break;
        default:
            loaded.plugin_value_warnings.emplace_back(
                name, at(value) + ": key '" + name + "." + key + "': a plugin setting is a "
                      "string, an integer or a boolean, got " + type_name(value.type) +
                      " (left out)");
            continue;
        }
        loaded.settings.origins[name + "." + key] = Origin{Origin::Kind::file, at(value)};
        kept.emplace_back(key, std::move(text));
    }
    return {};
}

// The plugins the backends name by a bare name ("postgres"; a "plugin:/path" names its table
// itself, once loaded): their settings also come from CURLCACHE_<NAME>_<KEY> variables.
std::vector<std::string> named_plugins(const Settings& settings) {
    std::vector<std::string> names;
    for (const std::string& backend : settings.backend) {
        if (!is_section(backend) && !backend.starts_with("plugin:")) {
            names.push_back(backend);
        }
    }
    return names;
}

// "my-store" -> "MY_STORE", as a part of a variable's name.
std::string variable_part(std::string_view name) {
    std::string part;
    for (char c : name) {
        part += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return part;
}

// "my-store" -> "CURLCACHE_MY_STORE_".
std::string variable_prefix(std::string_view plugin) {
    return "CURLCACHE_" + variable_part(plugin) + "_";
}

// Sets one value of a plugin's table (replacing the file's), remembering where it came from.
void set_plugin_value(Settings& settings, const std::string& plugin, const std::string& key,
                      std::string value, Origin origin) {
    auto& table = settings.plugin_tables[plugin];
    auto found = std::find_if(table.begin(), table.end(),
                              [&](const auto& entry) { return entry.first == key; });
    if (found == table.end()) {
        table.emplace_back(key, std::move(value));
    } else {
        found->second = std::move(value);
    }
    settings.origins.try_emplace(plugin, origin);
    settings.origins[plugin + "." + key] = std::move(origin);
}

// The CURLCACHE_* variables of the real environment that are no built-in key's, as
// name and value (empty values count as unset, as for every variable).
std::vector<std::pair<std::string, std::string>> other_variables() {
    std::vector<std::pair<std::string, std::string>> found;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text = *entry;
        const size_t eq = text.find('=');
        if (!text.starts_with("CURLCACHE_") || eq == std::string_view::npos ||
            eq + 1 == text.size()) {
            continue;
        }
        const std::string_view name = text.substr(0, eq);
        const bool known = std::any_of(keys().begin(), keys().end(),
                                       [&](const KeyDef& def) { return def.env == name; });
        if (!known) {
            found.emplace_back(name, text.substr(eq + 1));
        }
    }
    return found;
}

// CURLCACHE_POSTGRES_STATEMENT_TIMEOUT=2s is [postgres] statement_timeout = "2s" for a
// plugin the backends name, over the file's value (as for built-in keys).
void apply_plugin_variables(Settings& settings) {
    const std::vector<std::string> plugins = named_plugins(settings);
    if (plugins.empty()) {
        return;
    }
    for (const auto& [name, value] : other_variables()) {
        const std::string* owner = nullptr;
        size_t longest = 0;
        for (const std::string& plugin : plugins) {
            const std::string prefix = variable_prefix(plugin);
            if (name.size() > prefix.size() && name.starts_with(prefix) &&
                prefix.size() > longest) {
                owner = &plugin;
                longest = prefix.size();
            }
        }
        if (owner != nullptr) {
            set_plugin_value(settings, *owner, to_lower(std::string_view(name).substr(longest)),
                             value, Origin{Origin::Kind::environment, name});
        }
    }
}

// A plugin table that no backend can read is most likely a stray key: said once the
// backends are known. (A "plugin:/path" backend names its table itself, so then every
// table may be its.)
void warn_unused_plugin_tables(Loaded& loaded) {
    const auto& backends = loaded.settings.backend;
    const bool any_path = std::any_of(backends.begin(), backends.end(), [](const std::string& b) {
        return b.starts_with("plugin:");
    });
    auto used = [&](const std::string& name) {
        return any_path || std::find(backends.begin(), backends.end(), name) != backends.end();
    };
    for (const auto& [name, table] : loaded.settings.plugin_tables) {
        if (!used(name)) {
            loaded.warnings.push_back(loaded.settings.origins[name].where + ": unknown key '" +
                                      name + "' (no backend is a plugin of that name)");
        }
    }
    for (const auto& [name, warning] : loaded.plugin_value_warnings) {
        if (used(name)) {
            loaded.warnings.push_back(warning);
        }
    }
}

// Applies a parsed file's keys; unknown keys become warnings, bad values errors.
std::expected<void, LoadError> apply_file(const Value& root, const std::string& path,
                                          Loaded& loaded, std::string_view home) {
    auto at = [&](const Value& v) { return path + ":" + std::to_string(v.line); };
    size_t unknown = 0;
    auto one = [&](const std::string& key, const Value& value) -> std::expected<void, LoadError> {
        const KeyDef* def = find_key(key);
        if (def == nullptr) {
            if (++unknown <= k_max_unknown_key_warnings) {
                loaded.warnings.push_back(at(value) + ": unknown key '" + key + "'" +
                                          did_you_mean(key));
            }
            return {};
        }
        if (def->type == KeyType::config_file) {
            loaded.warnings.push_back(at(value) + ": key '" + key +
                                      "' is ignored in a file (set CURLCACHE_CONFIG instead)");
            return {};
        }
        return set(*def, value, Origin{Origin::Kind::file, at(value)}, loaded.settings, home);
    };
    for (const auto& [key, value] : root.fields) {
        if (value.type == Value::Type::table && !is_section(key) && find_key(key) == nullptr) {
            if (auto ok = keep_plugin_table(key, value, at, loaded); !ok) {
                return ok;
            }
            continue;
        }
        if (!is_section(key)) {
            if (auto ok = one(key, value); !ok) {
                return ok;
            }
            continue;
        }
        if (value.type != Value::Type::table) {
            return std::unexpected(LoadError{at(value) + ": key '" + key +
                                             "': expected a table, got " + type_name(value.type)});
        }
        for (const auto& [leaf, leaf_value] : value.fields) {
            if (auto ok = one(key + "." + leaf, leaf_value); !ok) {
                return ok;
            }
        }
    }
    if (unknown > k_max_unknown_key_warnings) {
        loaded.warnings.push_back(path + ": " +
                                  std::to_string(unknown - k_max_unknown_key_warnings) +
                                  " more unknown keys not listed");
    }
    return {};
}

std::expected<void, LoadError> read_into(const std::string& path, Loaded& loaded,
                                         std::string_view home, const std::string& who) {
    auto root = read_toml(path);
    if (!root) {
        // Only a file somebody named (a variable, an argument) gets the name in front.
        const bool named = root.error().io && !who.empty();
        return std::unexpected(
            LoadError{(named ? who + ": " : "") + root.error().message, root.error().io});
    }
    loaded.settings.config_file = path;
    return apply_file(*root, path, loaded, home);
}

// A log file must be writable now rather than fail silently in the middle of a transfer.
std::expected<void, LoadError> check_log_file(const Settings& settings) {
    const std::string& path = settings.log_file;
    if (path.empty()) {
        return {};
    }
    const auto found = settings.origins.find("log_file");
    const Origin origin = found == settings.origins.end() ? Origin{} : found->second;
    std::string target = path;
    int mode = W_OK;
    if (!exists(path)) {
        const size_t slash = path.rfind('/');
        target = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
        mode = W_OK | X_OK;
    }
    if (::access(target.c_str(), mode) != 0) {
        return std::unexpected(LoadError{prefix(origin, "log_file") + "cannot write " +
                                         quote(path) + " (" +
                                         std::generic_category().message(errno) + ")"});
    }
    return {};
}

// A misspelt CURLCACHE_* variable in the real environment is silently useless; warn when it
// is close to a known one or the start of one (CURLCACHE_EXPIRE). Variables far from every
// key may belong to other tools (build systems, test harnesses) and are left alone.
// A plugin's variables (CURLCACHE_POSTGRES_*, for a backend "postgres") are the plugin's to
// check; one whose plugin part is misspelt (CURLCACHE_POSTGRS_URL) is warned about.
void warn_misspelt_variables(std::vector<std::string>& warnings,
                             const std::vector<std::string>& plugins) {
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text = *entry;
        if (!text.starts_with("CURLCACHE_")) {
            continue;
        }
        const std::string_view name = text.substr(0, text.find('='));
        if (std::any_of(keys().begin(), keys().end(),
                        [&](const KeyDef& def) { return def.env == name; })) {
            continue; // a known variable: no edit distances (a process start pays for them)
        }
        const std::string_view rest = name.substr(10);
        std::string best_name;
        size_t best_distance = 3; // at most two edits away
        bool plugins_own = false;
        for (const std::string& plugin : plugins) {
            const std::string prefix = variable_prefix(plugin);
            if (name.size() > prefix.size() && name.starts_with(prefix)) {
                plugins_own = true;
                break;
            }
            const std::string_view upper = std::string_view(prefix).substr(10, prefix.size() - 11);
            for (size_t cut = rest.find('_'); cut != std::string_view::npos;
                 cut = rest.find('_', cut + 1)) {
                const size_t distance = edit_distance(rest.substr(0, cut), upper);
                if (distance > 0 && distance < best_distance && upper.size() > 2 * distance) {
                    best_distance = distance;
                    best_name = prefix + std::string(rest.substr(cut + 1));
                }
            }
        }
        if (plugins_own) {
            continue;
        }
        const KeyDef* best = nullptr;
        for (const KeyDef& def : keys()) {
            const std::string_view leaf = def.env.substr(10);
            const std::string_view key_leaf = def.key.substr(def.key.rfind('.') + 1);
            std::string leaf_upper(key_leaf);
            for (char& c : leaf_upper) {
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            }
            // CURLCACHE_FAST_SAVE is CURLCACHE_SQLITE_FAST_SAVE without its section.
            size_t distance = std::min(edit_distance(rest, leaf),
                                       edit_distance(rest, leaf_upper) + (key_leaf != def.key));
            // CURLCACHE_EXPIRE for CURLCACHE_EXPIRE_AFTER: the start of a name, word by word.
            if (rest.size() >= 3 && leaf.size() > rest.size() && leaf.starts_with(rest) &&
                leaf[rest.size()] == '_') {
                distance = std::min<size_t>(distance, 1);
            }
            if (distance < best_distance) {
                best_distance = distance;
                best = &def;
            }
        }
        if (best != nullptr) {
            best_name = best_distance > 0 ? std::string(best->env) : "";
        }
        if (!best_name.empty()) {
            warnings.push_back(std::string(name) + ": unknown variable (did you mean " + best_name +
                               "?)");
        }
    }
}

struct Argument {
    const KeyDef* def; // null for a plugin's setting
    std::string value;
    std::string plugin, plugin_key; // "postgres", "url" for "postgres.url=..."
};

std::expected<std::vector<Argument>, LoadError>
parse_arguments(const std::vector<std::string>& arguments) {
    std::vector<Argument> parsed;
    for (const std::string& argument : arguments) {
        const size_t eq = argument.find('=');
        if (eq == std::string::npos) {
            return std::unexpected(
                LoadError{"argument " + quote(argument) + ": expected key=value"});
        }
        const std::string key(trim(std::string_view(argument).substr(0, eq)));
        const KeyDef* def = find_key(key);
        // "postgres.url=..." sets a plugin's setting, as its config table would.
        const size_t dot = key.find('.');
        if (def == nullptr && dot != std::string::npos && dot + 1 < key.size() &&
            !is_section(key.substr(0, dot)) && is_plugin_name(key.substr(0, dot)) &&
            did_you_mean(key).empty()) {
            parsed.push_back(
                {nullptr, argument.substr(eq + 1), key.substr(0, dot), key.substr(dot + 1)});
            continue;
        }
        if (def == nullptr) {
            return std::unexpected(LoadError{"argument " + quote(argument) + ": unknown key '" +
                                             key + "'" + did_you_mean(key)});
        }
        parsed.push_back({def, argument.substr(eq + 1), {}, {}});
    }
    return parsed;
}

} // namespace

std::string find_config_file(const GetEnv& getenv_fn) {
    const Env env(getenv_fn);
    if (auto named = env.get("CURLCACHE_CONFIG")) {
        return *named;
    }
    // XDG: a relative XDG_CONFIG_HOME is invalid and ignored, so nothing ever resolves
    // against the current directory.
    std::string base;
    if (auto xdg = env.get("XDG_CONFIG_HOME"); xdg && xdg->starts_with('/')) {
        base = *xdg;
    } else if (const std::string home = absolute_home(env.get("HOME")); !home.empty()) {
        base = home + "/.config";
    }
    if (!base.empty() && exists(base + "/curlcache/config.toml")) {
        return base + "/curlcache/config.toml";
    }
    if (exists(k_system_file)) {
        return k_system_file;
    }
    return "";
}

std::expected<Loaded, LoadError> load(const std::vector<std::string>& arguments,
                                      const GetEnv& getenv_fn, const std::string& explicit_file) {
    const Env env(getenv_fn);
    const std::string home = absolute_home(env.get("HOME"));
    Loaded loaded;
    Settings& settings = loaded.settings;

    auto parsed = parse_arguments(arguments);
    if (!parsed) {
        return std::unexpected(parsed.error());
    }

    // Which file, and who asked for it.
    std::string file = explicit_file;
    Origin file_origin{Origin::Kind::argument, "argument"};
    std::string who = "argument 'config'";
    for (const Argument& argument : *parsed) {
        if (file.empty() && argument.def != nullptr && argument.def->type == KeyType::config_file) {
            file = argument.value;
        }
    }
    if (file.empty()) {
        if (auto named = env.get("CURLCACHE_CONFIG")) {
            file = *named;
            file_origin = Origin{Origin::Kind::environment, "CURLCACHE_CONFIG"};
            who = "CURLCACHE_CONFIG";
        } else {
            file = find_config_file(getenv_fn);
            file_origin = Origin{};
            who.clear();
        }
    }
    if (!file.empty()) {
        if (auto ok = read_into(file, loaded, home, who); !ok) {
            return std::unexpected(ok.error());
        }
        settings.origins["config"] = file_origin;
    }

    for (const KeyDef& def : keys()) {
        if (def.type == KeyType::config_file) {
            continue;
        }
        if (auto text = env.get(def.env)) {
            const Origin origin{Origin::Kind::environment, std::string(def.env)};
            if (auto ok = set(def, Value::from_text(*text), origin, settings, home); !ok) {
                return std::unexpected(ok.error());
            }
        }
    }

    for (const Argument& argument : *parsed) {
        if (argument.def == nullptr || argument.def->type == KeyType::config_file) {
            continue;
        }
        const Origin origin{Origin::Kind::argument, "argument"};
        if (auto ok = set(*argument.def, Value::from_text(argument.value), origin, settings, home);
            !ok) {
            return std::unexpected(ok.error());
        }
    }

    // Plugin settings: the file's table < CURLCACHE_<NAME>_<KEY> < "name.key=" arguments.
    // Only the real environment is listed (an injected one can only be asked by name).
    if (!getenv_fn) {
        warn_misspelt_variables(loaded.warnings, named_plugins(settings));
        apply_plugin_variables(settings);
    }
    for (const Argument& argument : *parsed) {
        if (argument.def == nullptr) {
            set_plugin_value(settings, argument.plugin, argument.plugin_key, argument.value,
                             Origin{Origin::Kind::argument, "argument"});
        }
    }

    if (auto ok = check_log_file(settings); !ok) {
        return std::unexpected(ok.error());
    }
    warn_unused_plugin_tables(loaded);
    return loaded;
}

std::expected<Loaded, LoadError> load_file(const std::string& path) {
    Loaded loaded;
    const GetEnv real_environment;
    const std::string home = absolute_home(Env(real_environment).get("HOME"));
    if (auto ok = read_into(path, loaded, home, ""); !ok) {
        return std::unexpected(ok.error());
    }
    loaded.settings.origins["config"] = Origin{Origin::Kind::argument, "argument"};
    warn_unused_plugin_tables(loaded);
    if (auto ok = check_log_file(loaded.settings); !ok) {
        return std::unexpected(ok.error());
    }
    return loaded;
}

std::vector<Entry> describe(const Settings& settings) {
    std::vector<Entry> entries;
    for (const KeyDef& def : keys()) {
        Entry entry;
        entry.key = def.key;
        entry.env = def.env;
        entry.value = render(def, settings);
        if (auto found = settings.origins.find(entry.key); found != settings.origins.end()) {
            entry.origin = found->second;
        }
        entry.help = def.help;
        entries.push_back(std::move(entry));
    }
    // Then each plugin's table, in its order; secrets masked. Variables exist for the
    // plugins the backends name.
    const std::vector<std::string> named = named_plugins(settings);
    for (const auto& [plugin, table] : settings.plugin_tables) {
        const bool has_variables = std::find(named.begin(), named.end(), plugin) != named.end();
        for (const auto& [key, value] : table) {
            Entry entry;
            entry.key = plugin + "." + key;
            if (has_variables) {
                entry.env = variable_prefix(plugin) + variable_part(key);
            }
            entry.value = quote(base::mask_secret(key, value));
            if (auto found = settings.origins.find(entry.key); found != settings.origins.end()) {
                entry.origin = found->second;
            }
            entry.help = "a setting of the " + plugin + " backend plugin";
            entries.push_back(std::move(entry));
        }
    }
    return entries;
}

} // namespace curlcache::config
