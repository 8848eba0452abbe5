// config/: TOML file + CURLCACHE_* environment + arguments -> Settings, with origins and
// one-line errors that name the file:line, the variable or the argument.
#include "config/loader.h"

#include "backends/filesystem_storage.h"
#include "backends/sqlite_storage.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unistd.h>

// cmocka last: its macros (fail, ...) would clash with the standard library's names.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

extern char** environ;

using namespace curlcache::config;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    std::string dir;                        // scratch directory, removed in teardown
    std::map<std::string, std::string> env; // the injected environment
    std::string old_cwd;
    std::map<std::string, std::optional<std::string>> saved; // real variables a test changed

    // Changes a real environment variable until teardown.
    void set_real(const char* name, const char* value) {
        if (saved.count(name) == 0) {
            const char* old = std::getenv(name);
            saved[name] = old ? std::optional<std::string>(old) : std::nullopt;
        }
        setenv(name, value, 1);
    }

    GetEnv getenv_fn() const {
        return [this](const char* name) -> const char* {
            auto found = env.find(name);
            return found == env.end() ? nullptr : found->second.c_str();
        };
    }

    // Writes `text` to dir/name and returns the path.
    std::string write(const std::string& name, const std::string& text) const {
        const fs::path path = fs::path(dir) / name;
        fs::create_directories(path.parent_path());
        std::ofstream(path) << text;
        return path.string();
    }
};

void clear_curlcache_environment() {
    std::vector<std::string> names;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string text = *entry;
        if (text.starts_with("CURLCACHE_")) {
            names.push_back(text.substr(0, text.find('=')));
        }
    }
    for (const std::string& name : names) {
        unsetenv(name.c_str());
    }
}

int setup(void** state) {
    auto* f = new Fixture;
    char scratch[] = "/tmp/curlcache-config-XXXXXX";
    if (mkdtemp(scratch) == nullptr) {
        delete f;
        return -1;
    }
    f->dir = scratch;
    f->old_cwd = fs::current_path().string();
    // An isolated search: no user config unless a test writes one.
    f->env["HOME"] = f->dir + "/home";
    f->env["XDG_CONFIG_HOME"] = f->dir + "/xdg";
    clear_curlcache_environment();
    *state = f;
    return 0;
}

int teardown(void** state) {
    auto* f = static_cast<Fixture*>(*state);
    fs::current_path(f->old_cwd);
    for (const auto& [name, value] : f->saved) {
        if (value) {
            setenv(name.c_str(), value->c_str(), 1);
        } else {
            unsetenv(name.c_str());
        }
    }
    fs::remove_all(f->dir);
    clear_curlcache_environment();
    delete f;
    return 0;
}

Fixture& fixture(void** state) {
    return *static_cast<Fixture*>(*state);
}

// load() with the fixture's environment; the test fails if it does not succeed.
Loaded load_ok(Fixture& f, const std::vector<std::string>& arguments = {}) {
    auto loaded = load(arguments, f.getenv_fn());
    if (!loaded) {
        fail_msg("unexpected error: %s", loaded.error().message.c_str());
    }
    return *loaded;
}

// load() that must fail; returns its message.
std::string load_error(Fixture& f, const std::vector<std::string>& arguments = {}) {
    auto loaded = load(arguments, f.getenv_fn());
    if (loaded) {
        fail_msg("load succeeded where an error was expected");
    }
    return loaded.error().message;
}

void expect_text(const std::string& actual, const std::string& expected) {
    if (actual != expected) {
        fail_msg("\n  got:      %s\n  expected: %s", actual.c_str(), expected.c_str());
    }
}

// ---- parsers --------------------------------------------------------------------------

void test_durations_parse_every_unit_and_never(void**) {
    const std::pair<const char*, int64_t> cases[] = {
        {"90s", 90},     {"15m", 900},   {"2h", 7200},       {"7d", 604800},
        {"1w", 604800},  {"3600", 3600}, {"never", -1},      {"NEVER", -1},
        {"1h30m", 5400}, {" 2h ", 7200}, {"90 seconds", 90}, {"0", 0},
    };
    for (const auto& [text, seconds] : cases) {
        auto parsed = parse_duration(text);
        if (!parsed || *parsed != seconds) {
            fail_msg("parse_duration(\"%s\") did not give %lld", text, (long long)seconds);
        }
    }
}

void test_durations_reject_garbage_with_a_hint(void**) {
    for (const char* text :
         {"5 parsecs", "", "h", "1.5h", "-5", "10ms", "5 5", "99999999999999999w"}) {
        if (parse_duration(text)) {
            fail_msg("parse_duration(\"%s\") should fail", text);
        }
    }
    expect_text(parse_duration("5 parsecs").error(),
                "bad duration \"5 parsecs\" (use seconds or 90s, 15m, 2h, 7d, never)");
}

void test_sizes_parse_binary_and_decimal_units(void**) {
    const std::pair<const char*, uint64_t> cases[] = {
        {"512", 512},          {"10KiB", 10240},   {"10MiB", 10ull << 20}, {"1GiB", 1ull << 30},
        {"10MB", 10000000},    {"1G", 1000000000}, {"10kib", 10240},       {"1.5KiB", 1536},
        {"2 MiB", 2ull << 20}, {"0", 0},
    };
    for (const auto& [text, bytes] : cases) {
        auto parsed = parse_size(text);
        if (!parsed || *parsed != bytes) {
            fail_msg("parse_size(\"%s\") did not give %llu", text, (unsigned long long)bytes);
        }
    }
}

void test_sizes_reject_garbage_with_a_hint(void**) {
    const std::string huge = std::string(6000, '9') + ".5";
    for (const char* text :
         {"10 potatoes", "", "-1", "1.2.3", "KiB", ".5G", "99999999999TiB", huge.c_str()}) {
        if (parse_size(text)) {
            fail_msg("parse_size(\"%s\") should fail", text);
        }
    }
    expect_text(parse_size("10 potatoes").error(),
                "bad size \"10 potatoes\" (use bytes or 512, 10KiB, 10MiB, 1GiB, 10MB)");
}

void test_timeouts_take_milliseconds_or_units(void** state) {
    Fixture& f = fixture(state);
    auto loaded = load_ok(f, {"lock_timeout=250ms", "sqlite.busy_timeout=2s",
                              "redis.connect_timeout=75", "redis.command_timeout=1m"});
    assert_int_equal(loaded.settings.lock_timeout_ms, 250);
    assert_int_equal(loaded.settings.sqlite_busy_timeout_ms, 2000);
    assert_int_equal(loaded.settings.redis_connect_timeout_ms, 75);
    assert_int_equal(loaded.settings.redis_command_timeout_ms, 60000);
    expect_text(
        load_error(f, {"lock_timeout=soon"}),
        "argument 'lock_timeout': bad duration \"soon\" (use milliseconds or 250ms, 1s, 2m)");
}

void test_environment_booleans_accept_common_spellings(void** state) {
    Fixture& f = fixture(state);
    for (const char* yes : {"1", "true", "yes", "on", "TRUE", "On"}) {
        f.env["CURLCACHE_SQLITE_FAST_SAVE"] = yes;
        assert_true(load_ok(f).settings.sqlite_fast_save);
    }
    for (const char* no : {"0", "false", "no", "off"}) {
        f.env["CURLCACHE_COALESCE"] = no;
        assert_false(load_ok(f).settings.coalesce);
    }
    f.env["CURLCACHE_DISABLE"] = "maybe";
    expect_text(load_error(f),
                "CURLCACHE_DISABLE: bad boolean \"maybe\" (use 1/0, true/false, yes/no, on/off)");
}

void test_empty_variable_counts_as_unset(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_MODE"] = "";
    f.env["CURLCACHE_CONFIG"] = "";
    auto loaded = load_ok(f);
    assert_true(loaded.settings.mode == Mode::normal);
    assert_true(loaded.settings.origins.find("mode") == loaded.settings.origins.end());
}

// ---- errors name where ----------------------------------------------------------------

void test_bad_duration_in_file_names_file_line_and_key(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] =
        f.write("c.toml", "# cache\nmode = \"normal\"\n\nexpire_after = \"5 parsecs\"\n");
    expect_text(load_error(f), f.dir + "/c.toml:4: key 'expire_after': bad duration \"5 parsecs\" "
                                       "(use seconds or 90s, 15m, 2h, 7d, never)");
}

void test_malformed_toml_names_file_and_line(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "mode = \"normal\"\nexpire_after = = 2\n");
    auto loaded = load({}, f.getenv_fn());
    assert_false(loaded.has_value());
    const std::string& message = loaded.error().message;
    const std::string head = f.dir + "/c.toml:2: malformed TOML: ";
    if (!message.starts_with(head) || message.size() == head.size() ||
        message.find('\n') != std::string::npos) {
        fail_msg("not a one-line file:line message: %s", message.c_str());
    }
    assert_false(loaded.error().io);
}

void test_duplicate_key_is_malformed_toml_at_second_line(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "name = \"a\"\nname = \"b\"\n");
    assert_true(load_error(f).starts_with(f.dir + "/c.toml:2: malformed TOML: "));
}

void test_wrong_type_names_key_and_types(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "[sqlite]\nfast_save = \"yes\"\n");
    expect_text(load_error(f), f.dir + "/c.toml:2: key 'sqlite.fast_save': expected a boolean "
                                       "(true or false), got a string \"yes\"");
    f.env["CURLCACHE_CONFIG"] = f.write("d.toml", "max_size = true\n");
    expect_text(load_error(f), f.dir + "/d.toml:1: key 'max_size': expected a size (bytes or "
                                       "\"10MiB\"), got a boolean");
    f.env["CURLCACHE_CONFIG"] = f.write("e.toml", "sqlite = 1\n");
    expect_text(load_error(f), f.dir + "/e.toml:1: key 'sqlite': expected a table, got an integer");
}

void test_unknown_backend_is_an_error_in_file_and_environment(void** state) {
    Fixture& f = fixture(state);
    // A name that is not built in is a plugin's, looked up when the cache opens; only a
    // name no plugin file can have is an error here.
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "backend = [\"memory\", \"my sql\"]\n");
    expect_text(load_error(f), f.dir + "/c.toml:1: key 'backend': unknown backend \"my sql\" "
                                       "(sqlite, filesystem, memory, redis, a plugin's name of "
                                       "a-z, 0-9, '-', '_', or plugin:/path/to/lib.so)");
    f.env.erase("CURLCACHE_CONFIG");
    f.env["CURLCACHE_BACKEND"] = "memory,../dynamo";
    expect_text(load_error(f), "CURLCACHE_BACKEND: unknown backend \"../dynamo\" (sqlite, "
                               "filesystem, memory, redis, a plugin's name of a-z, 0-9, '-', "
                               "'_', or plugin:/path/to/lib.so)");
    f.env["CURLCACHE_BACKEND"] = "memory,memory";
    expect_text(load_error(f), "CURLCACHE_BACKEND: backend \"memory\" is listed twice");
    f.env["CURLCACHE_BACKEND"] = "sqllite";
    expect_text(load_error(f),
                "CURLCACHE_BACKEND: unknown backend \"sqllite\" (did you mean \"sqlite\"?)");
    f.env["CURLCACHE_BACKEND"] = "plugin:lib/libmine.so";
    expect_text(load_error(f),
                "CURLCACHE_BACKEND: backend \"plugin:lib/libmine.so\": a plugin's path must be "
                "absolute");
}

void test_plugin_backends_and_their_tables_pass_through(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write(
        "c.toml", "backend = [\"memory\", \"Postgres\", \"plugin:/opt/My/libmine.so\"]\n"
                  "plugin_dir = \"/opt/plugins\"\n"
                  "[postgres]\nurl = \"postgresql://db/cache\"\npool = 4\nssl = true\n"
                  "anything_at_all = \"kept\"\n[mine]\n");
    auto loaded = load_ok(f);
    assert_int_equal(loaded.warnings.size(), 0);
    const auto& backends = loaded.settings.backend;
    assert_int_equal(backends.size(), 3);
    expect_text(backends[1], "postgres");
    expect_text(backends[2], "plugin:/opt/My/libmine.so"); // a path keeps its case
    expect_text(loaded.settings.plugin_dir, "/opt/plugins");
    const auto& table = loaded.settings.plugin_tables.at("postgres");
    assert_int_equal(table.size(), 4);
    expect_text(table[0].first + "=" + table[0].second, "url=postgresql://db/cache");
    expect_text(table[1].first + "=" + table[1].second, "pool=4");
    expect_text(table[2].first + "=" + table[2].second, "ssl=true");
    expect_text(table[3].first + "=" + table[3].second, "anything_at_all=kept");
    assert_true(loaded.settings.plugin_tables.at("mine").empty());

    // A misspelt built-in section is no plugin's: said once.
    f.env["CURLCACHE_CONFIG"] = f.write("d.toml", "[sqlit]\nfast_save = true\n");
    loaded = load_ok(f);
    assert_int_equal(loaded.warnings.size(), 1);
    expect_text(loaded.warnings[0], f.dir + "/d.toml:1: unknown table [sqlit] (did you mean "
                                            "[sqlite]?)");
    assert_true(loaded.settings.plugin_tables.empty());
    // Plugin settings are scalars; others are left out with a warning (when used).
    f.env["CURLCACHE_CONFIG"] =
        f.write("e.toml", "backend = \"postgres\"\n[postgres]\nhosts = [\"a\"]\nurl = \"u\"\n");
    loaded = load_ok(f);
    assert_int_equal(loaded.warnings.size(), 1);
    expect_text(loaded.warnings[0], f.dir + "/e.toml:3: key 'postgres.hosts': a plugin setting is "
                                            "a string, an integer or a boolean, got an array (left "
                                            "out)");
    assert_int_equal(loaded.settings.plugin_tables.at("postgres").size(), 1);
}

void test_bad_enum_values_list_the_choices(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_MODE"] = "fast";
    expect_text(load_error(f),
                "CURLCACHE_MODE: unknown mode \"fast\" (normal, offline, refresh, readonly, off)");
    f.env.erase("CURLCACHE_MODE");
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "\nlog_level = \"loud\"\n");
    expect_text(load_error(f), f.dir + "/c.toml:2: key 'log_level': unknown log level \"loud\" "
                                       "(error, warning, info, debug)");
}

void test_bad_size_in_environment_names_variable(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_MAX_SIZE"] = "10 potatoes";
    expect_text(load_error(f), "CURLCACHE_MAX_SIZE: bad size \"10 potatoes\" "
                               "(use bytes or 512, 10KiB, 10MiB, 1GiB, 10MB)");
    f.env["CURLCACHE_MAX_SIZE"] = "1GiB";
    f.env["CURLCACHE_MAX_ENTRY_SIZE"] = "10MB";
    auto loaded = load_ok(f);
    assert_int_equal(loaded.settings.max_size, 1ull << 30);
    assert_int_equal(loaded.settings.max_entry_size, 10000000);
}

void test_unwritable_log_file_is_an_error_naming_where(void** state) {
    Fixture& f = fixture(state);
    const std::string log = f.dir + "/no/such/dir/curlcache.log";
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "log_file = \"" + log + "\"\n");
    expect_text(load_error(f), f.dir + "/c.toml:1: key 'log_file': cannot write \"" + log +
                                   "\" (No such file or directory)");
    // A writable override from the environment wins; only the final value is checked.
    f.env["CURLCACHE_LOG_FILE"] = f.dir + "/curlcache.log";
    expect_text(load_ok(f).settings.log_file, f.dir + "/curlcache.log");
    f.env["CURLCACHE_LOG_FILE"] = log;
    expect_text(load_error(f),
                "CURLCACHE_LOG_FILE: cannot write \"" + log + "\" (No such file or directory)");
}

void test_malformed_arguments_are_errors(void** state) {
    Fixture& f = fixture(state);
    expect_text(load_error(f, {"backend"}), "argument \"backend\": expected key=value");
    expect_text(
        load_error(f, {"expire_afer=1d"}),
        "argument \"expire_afer=1d\": unknown key 'expire_afer' (did you mean 'expire_after'?)");
}

// ---- precedence and origins -----------------------------------------------------------

void test_env_overrides_file_value(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write(
        "c.toml", "backend = \"memory\"\nmode = \"readonly\"\n[redis]\nurl = \"redis://h:1/2\"\n");
    f.env["CURLCACHE_MODE"] = "refresh";
    f.env["CURLCACHE_REDIS_URL"] = "redis://127.0.0.1:7000/0";
    auto loaded = load_ok(f);
    const Settings& s = loaded.settings;
    assert_true(s.mode == Mode::refresh);
    expect_text(s.redis_url, "redis://127.0.0.1:7000/0");
    assert_true(s.backend == std::vector<std::string>{"memory"});
    assert_true(s.origins.at("mode").kind == Origin::Kind::environment);
    expect_text(s.origins.at("mode").where, "CURLCACHE_MODE");
    expect_text(s.origins.at("redis.url").where, "CURLCACHE_REDIS_URL");
    assert_true(s.origins.at("backend").kind == Origin::Kind::file);
    expect_text(s.origins.at("backend").where, f.dir + "/c.toml:1");
    assert_true(s.origins.at("config").kind == Origin::Kind::environment);
    expect_text(s.config_file.value_or(""), f.dir + "/c.toml");
    assert_true(s.origins.find("max_size") == s.origins.end()); // still built in
}

void test_arguments_override_env(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_MODE"] = "refresh";
    f.env["CURLCACHE_BACKEND"] = "memory,sqlite";
    auto loaded = load_ok(f, {"mode=offline", "expire_after=15m"});
    const Settings& s = loaded.settings;
    assert_true(s.mode == Mode::offline);
    assert_int_equal(s.expire_after, 900);
    assert_true(s.origins.at("mode").kind == Origin::Kind::argument);
    expect_text(s.origins.at("mode").where, "argument");
    assert_true(s.backend == (std::vector<std::string>{"memory", "sqlite"}));
    assert_true(s.origins.at("backend").kind == Origin::Kind::environment);
    expect_text(load_error(f, {"mode=fast"}),
                "argument 'mode': unknown mode \"fast\" (normal, offline, refresh, readonly, off)");
}

void test_sections_may_be_dotted_keys_or_inline_tables(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] =
        f.write("c.toml", "mode = \"normal\"\nsqlite.fast_save = true\n"
                          "memory = { max_entries = 7 }\n[redis]\nconnect_timeout = \"2s\"\n");
    auto loaded = load_ok(f);
    assert_int_equal(loaded.warnings.size(), 0);
    assert_true(loaded.settings.sqlite_fast_save);
    assert_int_equal(loaded.settings.memory_max_entries, 7);
    assert_int_equal(loaded.settings.redis_connect_timeout_ms, 2000);
    expect_text(loaded.settings.origins.at("sqlite.fast_save").where, f.dir + "/c.toml:2");
    expect_text(loaded.settings.origins.at("redis.connect_timeout").where, f.dir + "/c.toml:5");
}

void test_config_argument_selects_the_file(void** state) {
    Fixture& f = fixture(state);
    const std::string named = f.write("named.toml", "name = \"named\"\n");
    f.env["CURLCACHE_CONFIG"] = f.write("env.toml", "name = \"env\"\n");
    expect_text(load_ok(f, {"config=" + named}).settings.name, "named");
    auto explicit_file = load({}, f.getenv_fn(), named);
    assert_true(explicit_file.has_value());
    expect_text(explicit_file->settings.name, "named");
}

void test_describe_lists_every_key_with_value_and_origin(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] =
        f.write("c.toml", "\nexpire_after = 86400\n[memory]\nmax_entries = 9\n");
    f.env["CURLCACHE_MAX_SIZE"] = "2GiB";
    auto loaded = load_ok(f, {"sort_query=yes"});
    std::map<std::string, Entry> by_key;
    for (const Entry& e : describe(loaded.settings)) {
        assert_false(e.help.empty());
        by_key[e.key] = e;
    }
    expect_text(by_key.at("expire_after").value, "\"1d\"");
    expect_text(by_key.at("expire_after").origin.where, f.dir + "/c.toml:2");
    expect_text(by_key.at("memory.max_entries").value, "9");
    expect_text(by_key.at("memory.max_entries").origin.where, f.dir + "/c.toml:4");
    expect_text(by_key.at("max_size").value, "\"2GiB\"");
    expect_text(by_key.at("max_size").origin.where, "CURLCACHE_MAX_SIZE");
    expect_text(by_key.at("sort_query").value, "true");
    assert_true(by_key.at("sort_query").origin.kind == Origin::Kind::argument);
    expect_text(by_key.at("mode").value, "\"normal\"");
    assert_true(by_key.at("mode").origin.kind == Origin::Kind::built_in);
    expect_text(by_key.at("lock_timeout").value, "\"30s\"");
    expect_text(by_key.at("config").value, "\"" + f.dir + "/c.toml\"");
}

// `curlcache config` output is TOML: every rendered value, written back into a file, loads
// to the same value.
void test_rendered_values_load_back_unchanged(void** state) {
    Fixture& f = fixture(state);
    Settings s;
    s.backend = {"memory", "redis"};
    s.name = "quote\" and \\ back";
    s.max_size = 3ull << 30;
    s.max_entry_size = 1234567;
    s.mode = Mode::readonly;
    s.expire_after = 5400;
    s.urls_expire_after = {{"*.a.com/*", true, 60}, {"*/api/*", false, -1}, {"b/*", true, -1}};
    s.allowable_codes = {200, 203, 404};
    s.ignored_parameters = {"token", "utm_source"};
    s.log_level = LogLevel::debug;
    s.lock_timeout_ms = 1500;
    s.sqlite_fast_save = true;
    s.memory_max_entries = 42;
    s.redis_command_timeout_ms = 120000;
    std::string top;
    std::map<std::string, std::string> sections;
    for (const Entry& e : describe(s)) {
        if (e.key == "config") {
            continue;
        }
        const size_t dot = e.key.find('.');
        if (dot == std::string::npos) {
            top += e.key + " = " + e.value + "\n";
        } else {
            sections[e.key.substr(0, dot)] += e.key.substr(dot + 1) + " = " + e.value + "\n";
        }
    }
    for (const auto& [section, body] : sections) {
        top += "[" + section + "]\n" + body;
    }
    auto loaded = load_file(f.write("round.toml", top));
    if (!loaded) {
        fail_msg("%s\n%s", loaded.error().message.c_str(), top.c_str());
    }
    assert_int_equal(loaded->warnings.size(), 0);
    const auto before = describe(s);
    const auto after = describe(loaded->settings);
    for (size_t i = 0; i < before.size(); ++i) {
        if (before[i].key != "config") {
            expect_text(after[i].value, before[i].value);
        }
    }
}

void test_redis_url_scheme_is_checked_and_password_never_shown(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_REDIS_URL"] = "http://:hunter2@cache:6379";
    const std::string error = load_error(f);
    expect_text(error, "CURLCACHE_REDIS_URL: bad Redis URL scheme \"http\" (use "
                       "redis://[:password@]host[:port][/db] or unix:///path/to/socket)");
    f.env["CURLCACHE_REDIS_URL"] = "redis://:hunter2@cache:6379/1";
    auto loaded = load_ok(f);
    expect_text(loaded.settings.redis_url, "redis://:hunter2@cache:6379/1");
    for (const Entry& e : describe(loaded.settings)) {
        if (e.key == "redis.url") {
            expect_text(e.value, "\"redis://:***@cache:6379/1\"");
        }
    }
    f.env["CURLCACHE_REDIS_URL"] = "unix:///run/redis.sock";
    expect_text(load_ok(f).settings.redis_url, "unix:///run/redis.sock");
}

void test_log_file_under_home_is_expanded(void** state) {
    Fixture& f = fixture(state);
    fs::create_directories(f.dir + "/home");
    f.env["CURLCACHE_LOG_FILE"] = "~/curlcache.log";
    expect_text(load_ok(f).settings.log_file, f.dir + "/home/curlcache.log");
}

// XDG Base Directory spec: a relative HOME or XDG_CONFIG_HOME (HOME=.) is invalid and counts
// as unset; neither "~/" nor the config search may land in the current directory.
void test_relative_home_counts_as_unset(void** state) {
    Fixture& f = fixture(state);
    const std::string home = f.write("home/.config/curlcache/config.toml", "name = \"home\"\n");
    f.write("work/curlcache/config.toml", "name = \"cwd\"\n");
    fs::current_path(f.dir + "/work");
    f.env["XDG_CONFIG_HOME"] = ".";
    expect_text(find_config_file(f.getenv_fn()), home);
    f.env["HOME"] = ".";
    f.env["CURLCACHE_CONFIG"] = home;
    f.env["CURLCACHE_LOG_FILE"] = "~/curlcache.log";
    expect_text(load_error(f),
                "CURLCACHE_LOG_FILE: \"~/curlcache.log\" needs HOME set to an absolute path");
    // `curlcache config --check` reads the real HOME.
    f.set_real("HOME", ".");
    const std::string file = f.write("c.toml", "log_file = \"~/curlcache.log\"\n");
    auto loaded = load_file(file);
    assert_false(loaded.has_value());
    expect_text(loaded.error().message,
                file +
                    ":1: key 'log_file': \"~/curlcache.log\" needs HOME set to an absolute path");
}

// The cache's default places read HOME and XDG_CACHE_HOME the same way (base/ reads them).
void test_relative_cache_home_never_puts_the_cache_in_the_current_directory(void** state) {
    Fixture& f = fixture(state);
    fs::create_directories(f.dir + "/work");
    fs::current_path(f.dir + "/work");
    f.set_real("TMPDIR", f.dir.c_str());
    f.set_real("XDG_CACHE_HOME", ".");
    f.set_real("HOME", ".");
    const Settings defaults;
    for (const std::string& path : {curlcache::backends::sqlite_database_path(defaults),
                                    curlcache::backends::filesystem_cache_dir(defaults)}) {
        if (!path.starts_with('/')) {
            fail_msg("relative cache path %s", path.c_str());
        }
    }
    f.set_real("HOME", (f.dir + "/home").c_str());
    expect_text(curlcache::backends::sqlite_database_path(defaults),
                f.dir + "/home/.cache/curlcache/http_cache.sqlite");
}

// ---- unknown keys ---------------------------------------------------------------------

void test_unknown_key_warns_with_file_line_and_suggestion(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write(
        "c.toml",
        "mode = \"normal\"\nexpire_afer = 5\n\n[sqlite]\nfast_sav = true\n[proxy]\nx = 1\n");
    auto loaded = load_ok(f);
    const std::string c = f.dir + "/c.toml";
    assert_int_equal(loaded.warnings.size(), 3);
    expect_text(loaded.warnings[0],
                c + ":2: unknown key 'expire_afer' (did you mean 'expire_after'?)");
    expect_text(loaded.warnings[1],
                c + ":5: unknown key 'sqlite.fast_sav' (did you mean 'sqlite.fast_save'?)");
    expect_text(loaded.warnings[2],
                c + ":6: unknown key 'proxy' (no backend is a plugin of that name)");
    // A section key at the top level is suggested with its section.
    f.env["CURLCACHE_CONFIG"] = f.write("d.toml", "busy_timeout = 5\n");
    expect_text(load_ok(f).warnings.at(0),
                f.dir +
                    "/d.toml:1: unknown key 'busy_timeout' (did you mean 'sqlite.busy_timeout'?)");
}

void test_misspelt_variable_in_the_environment_warns(void** state) {
    Fixture& f = fixture(state);
    setenv("CURLCACHE_EXPIRE_AFER", "1d", 1);
    setenv("CURLCACHE_FAST_SAVE", "1", 1);
    setenv("CURLCACHE_SOMETHING_ELSE_ENTIRELY", "1", 1); // not ours to judge
    setenv("CURLCACHE_MODE", "readonly", 1);
    f.set_real("XDG_CONFIG_HOME", (f.dir + "/xdg").c_str());
    f.set_real("HOME", (f.dir + "/home").c_str());
    auto loaded = load();
    assert_true(loaded.has_value());
    assert_true(loaded->settings.mode == Mode::readonly);
    std::set<std::string> warnings(loaded->warnings.begin(), loaded->warnings.end());
    const std::set<std::string> expected{
        "CURLCACHE_EXPIRE_AFER: unknown variable (did you mean CURLCACHE_EXPIRE_AFTER?)",
        "CURLCACHE_FAST_SAVE: unknown variable (did you mean CURLCACHE_SQLITE_FAST_SAVE?)"};
    for (const std::string& warning : warnings) {
        print_message("%s\n", warning.c_str());
    }
    assert_true(warnings == expected);
}

// CURLCACHE_<PLUGIN>_<KEY> sets [plugin] key for a plugin the backends name: over the
// file's value, under an argument's; each value keeps its origin.
void test_plugin_variables_override_the_plugin_table(void** state) {
    Fixture& f = fixture(state);
    const std::string file =
        f.write("c.toml", "backend = [\"sqlite\", \"postgres\", \"my-store\"]\n"
                          "[postgres]\nurl = \"postgres://file/db\"\n"
                          "table = \"t\"\n");
    f.set_real("CURLCACHE_CONFIG", file.c_str());
    f.set_real("HOME", (f.dir + "/home").c_str());
    setenv("CURLCACHE_POSTGRES_URL", "postgres://cache:s3cret@env/db", 1);
    setenv("CURLCACHE_POSTGRES_STATEMENT_TIMEOUT", "2s", 1);
    setenv("CURLCACHE_MY_STORE_PASSWORD", "hunter2", 1);
    setenv("CURLCACHE_POSTGRES_EMPTY", "", 1); // empty = unset, as for every variable
    auto loaded = load();
    assert_true(loaded.has_value());
    assert_int_equal(loaded->warnings.size(), 0);
    const Settings& settings = loaded->settings;
    const auto& table = settings.plugin_tables.at("postgres");
    assert_int_equal(table.size(), 3);
    expect_text(table[0].first + "=" + table[0].second, "url=postgres://cache:s3cret@env/db");
    expect_text(table[1].first + "=" + table[1].second, "table=t");
    expect_text(table[2].first + "=" + table[2].second, "statement_timeout=2s");
    expect_text(settings.origins.at("postgres.url").where, "CURLCACHE_POSTGRES_URL");
    expect_text(settings.origins.at("postgres.table").where, file + ":4");
    const auto& mine = settings.plugin_tables.at("my-store");
    assert_int_equal(mine.size(), 1);
    expect_text(mine[0].first + "=" + mine[0].second, "password=hunter2");

    // `curlcache config` shows them with their origins, secrets masked.
    std::map<std::string, Entry> shown;
    for (const Entry& entry : describe(settings)) {
        shown[entry.key] = entry;
    }
    expect_text(shown.at("postgres.url").value, "\"postgres://cache:***@env/db\"");
    expect_text(shown.at("postgres.url").env, "CURLCACHE_POSTGRES_URL");
    assert_true(shown.at("postgres.url").origin.kind == Origin::Kind::environment);
    expect_text(shown.at("postgres.table").origin.where, file + ":4");
    expect_text(shown.at("postgres.statement_timeout").env, "CURLCACHE_POSTGRES_STATEMENT_TIMEOUT");
    expect_text(shown.at("my-store.password").value, "\"***\"");
    expect_text(shown.at("my-store.password").env, "CURLCACHE_MY_STORE_PASSWORD");

    // An argument ("postgres.url=...", as curlcache_open takes it) beats the variable.
    loaded = load({"postgres.url=postgres://argument/db"});
    assert_true(loaded.has_value());
    expect_text(loaded->settings.plugin_tables.at("postgres")[0].second, "postgres://argument/db");
    expect_text(loaded->settings.origins.at("postgres.url").where, "argument");

    // Without a postgres backend its variables set nothing.
    loaded = load({"backend=sqlite"});
    assert_true(loaded.has_value());
    assert_int_equal(loaded->settings.plugin_tables.at("postgres").size(), 2);
    expect_text(loaded->settings.plugin_tables.at("postgres")[0].second, "postgres://file/db");
    assert_int_equal(loaded->settings.plugin_tables.count("my-store"), 0);
}

// A plugin's variables are not unknown when the backends name it, even one close to a
// built-in key; one whose plugin part is misspelt warns.
void test_plugin_variables_are_not_unknown_and_misspelt_ones_warn(void** state) {
    Fixture& f = fixture(state);
    f.set_real("XDG_CONFIG_HOME", (f.dir + "/xdg").c_str());
    f.set_real("HOME", (f.dir + "/home").c_str());
    setenv("CURLCACHE_LOG_LEVELS", "5", 1);             // one edit from LOG_LEVEL
    setenv("CURLCACHE_POSTGRS_URL", "postgres://x", 1); // postgres misspelt
    auto loaded = load({"backend=log,postgres"});
    assert_true(loaded.has_value());
    for (const std::string& warning : loaded->warnings) {
        print_message("%s\n", warning.c_str());
    }
    assert_int_equal(loaded->warnings.size(), 1);
    expect_text(loaded->warnings[0],
                "CURLCACHE_POSTGRS_URL: unknown variable (did you mean CURLCACHE_POSTGRES_URL?)");
    expect_text(loaded->settings.plugin_tables.at("log")[0].first, "levels");
    assert_int_equal(loaded->settings.plugin_tables.count("postgres"), 0);
    // Without that plugin, the variable near a built-in key is that key misspelt.
    loaded = load({"backend=sqlite"});
    assert_true(loaded.has_value());
    std::set<std::string> warnings(loaded->warnings.begin(), loaded->warnings.end());
    assert_int_equal(
        warnings.count(
            "CURLCACHE_LOG_LEVELS: unknown variable (did you mean CURLCACHE_LOG_LEVEL?)"),
        1);
}

// A plugin setting given as an argument needs a plugin's name; a built-in section's unknown
// key stays an error.
void test_plugin_arguments_need_a_plugin_name(void** state) {
    Fixture& f = fixture(state);
    expect_text(load_error(f, {"sqlite.fast=1"}),
                "argument \"sqlite.fast=1\": unknown key 'sqlite.fast'");
    expect_text(load_error(f, {"Bad/Name.url=1"}),
                "argument \"Bad/Name.url=1\": unknown key 'Bad/Name.url'");
    auto loaded = load_ok(f, {"backend=postgres", "postgres.table=t"});
    expect_text(loaded.settings.plugin_tables.at("postgres")[0].second, "t");
}

void test_plugin_secrets_are_masked(void** state) {
    (void)state;
    Settings settings;
    settings.plugin_tables["db"] = {{"url", "postgresql://me:pw@h/db?password=pw2&sslmode=require"},
                                    {"conninfo", "host=h password='a b\\'c' user=me"},
                                    {"secret_access_key", "abc"},
                                    {"api_token", "t"},
                                    {"region", "eu-west-1"}};
    std::map<std::string, std::string> shown;
    for (const Entry& entry : describe(settings)) {
        shown[entry.key] = entry.value;
    }
    expect_text(shown.at("db.url"), "\"postgresql://me:***@h/db?password=***&sslmode=require\"");
    expect_text(shown.at("db.conninfo"), "\"host=h password=*** user=me\"");
    expect_text(shown.at("db.secret_access_key"), "\"***\"");
    expect_text(shown.at("db.api_token"), "\"***\"");
    expect_text(shown.at("db.region"), "\"eu-west-1\"");
}

void test_lists_reject_empty_items(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "ignored_parameters = [\"token\", \" \"]\n");
    expect_text(load_error(f),
                f.dir + "/c.toml:1: key 'ignored_parameters': empty string in the list");
    f.env["CURLCACHE_CONFIG"] = f.write("d.toml", "match_headers = \"\"\nbackend = []\n");
    expect_text(load_error(f), f.dir + "/d.toml:2: key 'backend': expected at least one backend "
                                       "(sqlite, filesystem, memory, redis or a plugin)");
    f.env["CURLCACHE_IGNORED_PARAMETERS"] = "token, ,api_key,";
    f.env.erase("CURLCACHE_CONFIG");
    assert_true(load_ok(f).settings.ignored_parameters ==
                (std::vector<std::string>{"token", "api_key"}));
}

// ---- file search ----------------------------------------------------------------------

void test_curlcache_config_naming_a_missing_file_is_an_error(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.dir + "/nope.toml";
    auto loaded = load({}, f.getenv_fn());
    assert_false(loaded.has_value());
    expect_text(loaded.error().message, "CURLCACHE_CONFIG: " + f.dir +
                                            "/nope.toml: cannot read config file (No such file "
                                            "or directory)");
    assert_true(loaded.error().io);
}

void test_user_config_is_found_under_xdg_config_home(void** state) {
    Fixture& f = fixture(state);
    const std::string user = f.write("xdg/curlcache/config.toml", "mode = \"offline\"\n");
    expect_text(find_config_file(f.getenv_fn()), user);
    auto loaded = load_ok(f);
    assert_true(loaded.settings.mode == Mode::offline);
    expect_text(loaded.settings.origins.at("mode").where, user + ":1");
    // Without XDG_CONFIG_HOME, ~/.config is searched.
    f.env.erase("XDG_CONFIG_HOME");
    const std::string home = f.write("home/.config/curlcache/config.toml", "mode = \"refresh\"\n");
    expect_text(find_config_file(f.getenv_fn()), home);
}

void test_current_directory_config_is_not_read(void** state) {
    Fixture& f = fixture(state);
    f.write("work/config.toml", "mode = \"offline\"\n");
    f.write("work/curlcache.toml", "mode = \"offline\"\n");
    f.write("work/curlcache/config.toml", "mode = \"offline\"\n");
    f.write("work/.config/curlcache/config.toml", "mode = \"offline\"\n");
    fs::current_path(f.dir + "/work");
    // The real environment too: a relative XDG_CONFIG_HOME or HOME must not reach the cwd.
    f.set_real("XDG_CONFIG_HOME", ".");
    f.set_real("HOME", ".");
    f.env["XDG_CONFIG_HOME"] = ".";
    f.env["HOME"] = ".";
    for (const std::string& found : {find_config_file(f.getenv_fn()), find_config_file()}) {
        if (!found.empty() && found != "/etc/curlcache.toml") {
            fail_msg("found %s", found.c_str());
        }
    }
    if (!fs::exists("/etc/curlcache.toml")) {
        assert_true(load_ok(f).settings.mode == Mode::normal);
    }
}

// ---- urls_expire_after ----------------------------------------------------------------

void expect_rules(const std::vector<UrlRule>& rules,
                  const std::vector<std::tuple<std::string, bool, int64_t>>& expected) {
    assert_int_equal(rules.size(), expected.size());
    for (size_t i = 0; i < rules.size(); ++i) {
        expect_text(rules[i].pattern, std::get<0>(expected[i]));
        assert_int_equal(rules[i].cache, std::get<1>(expected[i]));
        assert_int_equal(rules[i].expire_after, std::get<2>(expected[i]));
    }
}

void test_urls_expire_after_table_keeps_file_order(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] = f.write("c.toml", "[urls_expire_after]\n"
                                                  "\"z.example.com/*\" = \"1h\"\n"
                                                  "\"*/api/*\" = \"do-not-cache\"\n"
                                                  "\"a.example.com/*\" = 60\n"
                                                  "\"m/*\" = \"never\"\n");
    expect_rules(load_ok(f).settings.urls_expire_after, {{"z.example.com/*", true, 3600},
                                                         {"*/api/*", false, -1},
                                                         {"a.example.com/*", true, 60},
                                                         {"m/*", true, -1}});
    f.env["CURLCACHE_CONFIG"] =
        f.write("d.toml", "urls_expire_after = { \"b/*\" = \"2d\", \"a/*\" = 5 }\n");
    expect_rules(load_ok(f).settings.urls_expire_after, {{"b/*", true, 172800}, {"a/*", true, 5}});
}

void test_urls_expire_after_array_and_environment_forms(void** state) {
    Fixture& f = fixture(state);
    f.env["CURLCACHE_CONFIG"] =
        f.write("c.toml", "urls_expire_after = [\n"
                          "  { pattern = \"*.example.com/static/*\", expire_after = \"1d\" },\n"
                          "  { pattern = \"*\", expire_after = \"do-not-cache\" },\n]\n");
    expect_rules(load_ok(f).settings.urls_expire_after,
                 {{"*.example.com/static/*", true, 86400}, {"*", false, -1}});
    f.env["CURLCACHE_URLS_EXPIRE_AFTER"] = "s.example.com/*=2h, */api/*=do-not-cache";
    auto loaded = load_ok(f);
    expect_rules(loaded.settings.urls_expire_after,
                 {{"s.example.com/*", true, 7200}, {"*/api/*", false, -1}});
    f.env["CURLCACHE_URLS_EXPIRE_AFTER"] = "x/*=5 parsecs";
    expect_text(load_error(f), "CURLCACHE_URLS_EXPIRE_AFTER: rule \"x/*\": bad duration "
                               "\"5 parsecs\" (use seconds or 90s, 15m, 2h, 7d, never)");
    f.env.erase("CURLCACHE_URLS_EXPIRE_AFTER");
    f.env["CURLCACHE_CONFIG"] = f.write("d.toml", "\nurls_expire_after = [{ pattern = \"a\" }]\n");
    expect_text(load_error(f), f.dir + "/d.toml:2: key 'urls_expire_after': a rule needs both "
                                       "pattern and expire_after");
}

// ---- the table, the environment names and the example ----------------------------------

void test_every_key_has_an_environment_name_derived_from_it(void**) {
    std::set<std::string> seen;
    for (const Entry& e : describe(Settings{})) {
        std::string derived = "CURLCACHE_";
        for (char c : e.key) {
            derived +=
                c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        expect_text(e.env, derived);
        assert_true(seen.insert(e.env).second);
    }
    for (const char* required :
         {"CURLCACHE_CONFIG", "CURLCACHE_BACKEND", "CURLCACHE_NAME", "CURLCACHE_EXPIRE_AFTER",
          "CURLCACHE_MODE", "CURLCACHE_DISABLE", "CURLCACHE_MAX_SIZE", "CURLCACHE_LOG_LEVEL",
          "CURLCACHE_LOG_FILE", "CURLCACHE_REDIS_URL", "CURLCACHE_MAX_ENTRY_SIZE",
          "CURLCACHE_COALESCE", "CURLCACHE_LOCK_TIMEOUT", "CURLCACHE_SQLITE_FAST_SAVE"}) {
        if (seen.count(required) == 0) {
            fail_msg("no key for %s", required);
        }
    }
}

void test_every_variable_reaches_its_key(void** state) {
    Fixture& f = fixture(state);
    // Each variable set to its key's rendered default (TOML quotes and brackets removed)
    // must load, and be recorded as coming from that variable.
    for (const Entry& e : describe(Settings{})) {
        if (e.key == "config" || e.key == "urls_expire_after" || e.key == "log_file") {
            continue;
        }
        std::string text;
        for (char c : e.value) {
            if (c != '"' && c != '[' && c != ']') {
                text += c;
            }
        }
        f.env = {{e.env, text.empty() ? "x" : text}};
        if (e.key == "name" || e.key == "ignored_parameters" || e.key == "match_headers") {
            f.env[e.env] = "x";
        }
        auto loaded = load_ok(f);
        expect_text(loaded.settings.origins.at(e.key).where, e.env);
    }
}

void test_example_file_loads_without_warnings_and_shows_defaults(void**) {
    auto loaded = load_file(CURLCACHE_SOURCE_DIR "/config/curlcache.example.toml");
    if (!loaded) {
        fail_msg("%s", loaded.error().message.c_str());
    }
    for (const std::string& warning : loaded->warnings) {
        print_message("warning: %s\n", warning.c_str());
    }
    assert_int_equal(loaded->warnings.size(), 0);
    const auto defaults = describe(Settings{});
    const auto example = describe(loaded->settings);
    for (size_t i = 0; i < defaults.size(); ++i) {
        if (defaults[i].key == "config") {
            continue;
        }
        if (example[i].origin.kind != Origin::Kind::file) {
            fail_msg("the example does not set '%s'", defaults[i].key.c_str());
        }
        if (example[i].value != defaults[i].value) {
            fail_msg("the example sets '%s' to %s, the default is %s", defaults[i].key.c_str(),
                     example[i].value.c_str(), defaults[i].value.c_str());
        }
    }
}

} // namespace

int main() {
    const CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_parse_every_unit_and_never),
        cmocka_unit_test(test_durations_reject_garbage_with_a_hint),
        cmocka_unit_test(test_sizes_parse_binary_and_decimal_units),
        cmocka_unit_test(test_sizes_reject_garbage_with_a_hint),
        cmocka_unit_test_setup_teardown(test_timeouts_take_milliseconds_or_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_booleans_accept_common_spellings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_variable_counts_as_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_duration_in_file_names_file_line_and_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_toml_names_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key_is_malformed_toml_at_second_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type_names_key_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_backend_is_an_error_in_file_and_environment,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_backends_and_their_tables_pass_through, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_enum_values_list_the_choices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_size_in_environment_names_variable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_log_file_is_an_error_naming_where, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_arguments_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arguments_override_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_argument_selects_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sections_may_be_dotted_keys_or_inline_tables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_describe_lists_every_key_with_value_and_origin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rendered_values_load_back_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_url_scheme_is_checked_and_password_never_shown,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_file_under_home_is_expanded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_home_counts_as_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_relative_cache_home_never_puts_the_cache_in_the_current_directory, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_warns_with_file_line_and_suggestion, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plugin_variables_override_the_plugin_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_plugin_variables_are_not_unknown_and_misspelt_ones_warn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_arguments_need_a_plugin_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_secrets_are_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misspelt_variable_in_the_environment_warns, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lists_reject_empty_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curlcache_config_naming_a_missing_file_is_an_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_config_is_found_under_xdg_config_home, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_current_directory_config_is_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls_expire_after_table_keeps_file_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_urls_expire_after_array_and_environment_forms, setup,
                                        teardown),
        cmocka_unit_test(test_every_key_has_an_environment_name_derived_from_it),
        cmocka_unit_test_setup_teardown(test_every_variable_reaches_its_key, setup, teardown),
        cmocka_unit_test(test_example_file_loads_without_warnings_and_shows_defaults),
    };
    return cmocka_run_group_tests_name("config", tests, nullptr, nullptr);
}
