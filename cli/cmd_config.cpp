// curlcache config [--json] | curlcache config --check FILE
//
// Prints every effective setting with where it came from, as `ccache -p` does:
//   (default) backend = "sqlite"
//   (/home/me/.config/curlcache/config.toml:3) max_size = "1GiB"
//   (CURLCACHE_MODE) mode = "offline"
// --json prints {version, settings}: settings is an array of {key, env, value, origin,
// where}: value is typed (a string, number, boolean, array or object, as the TOML value
// is); origin is "default", "file", "environment" or "argument"; where is "path:line", the
// variable's name, or "".
#include "cli/args.h"
#include "cli/json.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace curlcache::cli {
namespace {

constexpr std::string_view k_help = R"HELP(usage: curlcache config [--json]
       curlcache config --check FILE

Prints every setting's effective value and where it comes from: the built-in default, a
config file (path:line), a CURLCACHE_* variable, or an option of this command.

  --json         a JSON object {version, settings: [{key, env, value, origin, where}]}
                 with typed values (see curlcache(1))
  --check FILE   check FILE alone (on top of the defaults, without the environment): prints
                 path:line for each problem and exits 1 when it is not valid
)HELP";

constexpr OptionSpec k_options[] = {{"--json", false}, {"--check", true}};

struct Setting {
    std::string key, env, value, origin, where;
};

int collect(const curlcache_setting* setting, void* userp) {
    auto* settings = static_cast<std::vector<Setting>*>(userp);
    auto text = [](const char* s) { return std::string(s != nullptr ? s : ""); };
    settings->push_back({text(setting->key), text(setting->env), text(setting->value),
                         text(setting->origin), text(setting->where)});
    return 0;
}

void print_warning(const char* message, void*) {
    print_error(std::string("warning: ") + message);
}

int check(const std::string& path) {
    if (::access(path.c_str(), R_OK) != 0) {
        return runtime_error(path + ": " + std::strerror(errno));
    }
    char error[1024] = "";
    curlcache_code code =
        curlcache_config_check(path.c_str(), print_warning, nullptr, error, sizeof error);
    if (code == CURLCACHE_OK) {
        return k_exit_ok;
    }
    return runtime_error(*error != '\0' ? error : path + ": " + curlcache_strerror(code));
}

std::string label(const Setting& setting) {
    if (!setting.where.empty()) {
        return setting.where;
    }
    return setting.origin.empty() ? "default" : setting.origin;
}

// Writes a value as config/ renders it in TOML (a basic string, an integer, a boolean, an
// array, an inline table { name = value, ... }) as the same JSON value. False (with
// nothing written) for text it does not understand.
class TomlToJson {
  public:
    explicit TomlToJson(std::string_view text) : m_text(text) {}

    bool convert(JsonWriter* json) {
        m_at = 0;
        if (!value(nullptr) || (skip_space(), m_at != m_text.size())) {
            return false; // checked whole before anything is written
        }
        m_at = 0;
        return value(json);
    }

  private:
    void skip_space() {
        while (m_at < m_text.size() && (m_text[m_at] == ' ' || m_text[m_at] == '\t')) {
            ++m_at;
        }
    }

    bool literal(std::string_view word) {
        if (m_text.substr(m_at, word.size()) != word) {
            return false;
        }
        m_at += word.size();
        return true;
    }

    bool string(std::string* out) {
        ++m_at; // the opening quote
        while (m_at < m_text.size() && m_text[m_at] != '"') {
            char c = m_text[m_at++];
            if (c == '\\') {
                if (m_at >= m_text.size()) {
                    return false;
                }
                char escaped = m_text[m_at++];
                if (escaped == 'u' && m_at + 4 <= m_text.size()) {
                    unsigned code = 0;
                    for (int i = 0; i < 4; ++i) {
                        char h = m_text[m_at++];
                        int digit = h >= '0' && h <= '9'   ? h - '0'
                                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                           : -1;
                        if (digit < 0) {
                            return false;
                        }
                        code = code * 16 + static_cast<unsigned>(digit);
                    }
                    if (code >= 0x80) {
                        return false; // config/ only escapes control characters
                    }
                    c = static_cast<char>(code);
                } else if (escaped == '"' || escaped == '\\') {
                    c = escaped;
                } else {
                    return false;
                }
            }
            *out += c;
        }
        return m_at++ < m_text.size();
    }

    bool value(JsonWriter* json) {
        skip_space();
        if (m_at >= m_text.size()) {
            return false;
        }
        char c = m_text[m_at];
        if (c == '"') {
            std::string text;
            if (!string(&text)) {
                return false;
            }
            if (json) {
                json->string(text);
            }
            return true;
        }
        if (c == '[' || c == '{') {
            return compound(json, c == '{');
        }
        if (literal("true") || literal("false")) {
            if (json) {
                json->boolean(c == 't');
            }
            return true;
        }
        std::size_t start = m_at;
        if (m_text[m_at] == '-') {
            ++m_at;
        }
        while (m_at < m_text.size() && m_text[m_at] >= '0' && m_text[m_at] <= '9') {
            ++m_at;
        }
        std::string digits(m_text.substr(start, m_at - start));
        if (digits.empty() || digits == "-") {
            return false;
        }
        if (json) {
            if (digits[0] == '-') {
                json->integer(std::stoll(digits));
            } else {
                json->unsigned_integer(std::stoull(digits));
            }
        }
        return digits.size() <= 19;
    }

    // [v, v, ...] or { name = v, ... }
    bool compound(JsonWriter* json, bool table) {
        ++m_at;
        if (json) {
            table ? json->begin_object() : json->begin_array();
        }
        for (bool first = true;; first = false) {
            skip_space();
            if (m_at < m_text.size() && m_text[m_at] == (table ? '}' : ']')) {
                ++m_at;
                break;
            }
            if (!first && !literal(",")) {
                return false;
            }
            if (table) {
                skip_space();
                std::size_t start = m_at;
                while (m_at < m_text.size() &&
                       (std::isalnum(static_cast<unsigned char>(m_text[m_at])) ||
                        m_text[m_at] == '_' || m_text[m_at] == '-')) {
                    ++m_at;
                }
                std::string_view name = m_text.substr(start, m_at - start);
                skip_space();
                if (name.empty() || !literal("=")) {
                    return false;
                }
                if (json) {
                    json->key(name);
                }
            }
            if (!value(json)) {
                return false;
            }
        }
        if (json) {
            table ? json->end_object() : json->end_array();
        }
        return true;
    }

    std::string_view m_text;
    std::size_t m_at = 0;
};

bool print_json(const std::vector<Setting>& settings) {
    JsonWriter json(stdout);
    json.begin_object();
    json.key("version");
    json.integer(k_json_version);
    json.key("settings");
    json.begin_array();
    for (const auto& setting : settings) {
        json.begin_object();
        json.key("key");
        json.string(setting.key);
        json.key("env");
        json.string(setting.env);
        json.key("value");
        if (!TomlToJson(setting.value).convert(&json)) {
            json.string(setting.value);
        }
        json.key("origin");
        json.string(setting.origin);
        json.key("where");
        json.string(setting.where);
        json.end_object();
    }
    json.end_array();
    json.end_object();
    return json.finish();
}

// The value of `key` as `curlcache config` prints it ("" when absent), quotes removed.
std::string value_of(const std::vector<Setting>& settings, std::string_view key) {
    for (const auto& setting : settings) {
        if (setting.key == key) {
            std::string value = setting.value;
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
                value = value.substr(1, value.size() - 2);
            }
            return value;
        }
    }
    return "";
}

// What decides freshness with these values, in the README's precedence order: the lines
// after the values, each starting with "#".
void print_freshness(const std::vector<Setting>& settings) {
    const std::string mode = value_of(settings, "mode");
    const std::string expire = value_of(settings, "expire_after");
    if (mode == "off" || value_of(settings, "disable") == "true") {
        std::printf("# freshness: the cache is off; every transfer passes through\n");
        return;
    }
    if (mode == "offline") {
        std::printf("# freshness: offline: anything stored is served, nothing is fetched\n");
        return;
    }
    if (value_of(settings, "hermetic") == "true") {
        std::printf("# freshness: hermetic: the config alone decides: the first matching "
                    "urls_expire_after rule, else expire_after = %s\n",
                    expire == "auto" ? "never" : expire.c_str());
        return;
    }
    std::printf("# freshness: the origin's headers decide (RFC 9111, a %s cache): the "
                "request's Cache-Control, then the response's Cache-Control, Expires, Age "
                "and Vary\n",
                value_of(settings, "cache_type").c_str());
    std::printf("# without explicit freshness: %s%s\n",
                expire == "auto" ? "" : ("expire_after = " + expire + ", or ").c_str(),
                ("heuristic: " + value_of(settings, "heuristic_percent") +
                 " % of the time since Last-Modified, at most " +
                 value_of(settings, "heuristic_max_age") + "; else stale at once")
                    .c_str());
    const std::string window = value_of(settings, "stale_if_error");
    std::printf("# stale-if-error: %s\n",
                window == "0" ? "only where the response or request says so"
                              : ("stale entries stand in for origin errors for up to " + window)
                                    .c_str());
}

} // namespace

int cmd_config(Args args) {
    auto parsed = parse_command(args, {"config", k_help, k_options, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    if (const std::string* path = parsed->value("--check")) {
        if (parsed->has("--json")) {
            return usage_error("--check and --json cannot be combined", "config");
        }
        return check(*path);
    }
    std::vector<std::string> arguments = open_settings(parsed->global);
    CStrings c_arguments(arguments);
    std::vector<Setting> settings;
    char error[1024] = "";
    curlcache_code code = curlcache_config_describe(c_arguments.get(), collect, &settings,
                                                    print_warning, error, sizeof error);
    if (code != CURLCACHE_OK) {
        // A config that does not load is bad input, like a bad option (exit 2).
        print_error(*error != '\0' ? std::string(error) : curlcache_strerror(code));
        return code == CURLCACHE_E_CONFIG ? k_exit_usage : k_exit_runtime;
    }
    if (parsed->has("--json")) {
        return print_json(settings) ? k_exit_ok : runtime_error("cannot write to stdout");
    }
    for (const auto& setting : settings) {
        std::printf("(%s) %s = %s\n", label(setting).c_str(), setting.key.c_str(),
                    setting.value.c_str());
    }
    print_freshness(settings);
    return k_exit_ok;
}

} // namespace curlcache::cli
