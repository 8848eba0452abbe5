// Parsing a Value into each type of Settings field, and rendering it back as TOML. The
// messages carry no location: the loader puts the file:line, variable or argument in front.
#include "config/keys.h"

#include "base/mask.h"
#include "base/suggest.h"
#include "config/loader.h"
#include "config/parse.h"

#include <algorithm>
#include <array>

namespace curlcache::config {

namespace {

constexpr std::array k_backends{"sqlite", "filesystem", "memory", "redis"};

std::unexpected<std::string> wrong_type(std::string_view expected, const Value& value) {
    std::string message = "expected " + std::string(expected) + ", got " + type_name(value.type);
    if (value.type == Value::Type::string) {
        message += " " + quote(value.text);
    }
    return std::unexpected(message);
}

bool is_text(const Value& value) {
    return value.type == Value::Type::text || value.type == Value::Type::string;
}

// A list from a variable or argument: items separated by any of `separators`, trimmed.
std::vector<std::string> split_list(std::string_view text, std::string_view separators = ",") {
    std::vector<std::string> items;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find_first_of(separators, start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const std::string_view item = trim(text.substr(start, end - start));
        if (!item.empty()) {
            items.emplace_back(item);
        }
        start = end + 1;
    }
    return items;
}

// The items of a list value: a TOML array of strings, one TOML string, or a text list.
std::expected<std::vector<std::string>, std::string> string_items(const Value& value,
                                                                  std::string_view what) {
    if (value.type == Value::Type::text) {
        return split_list(value.text);
    }
    if (value.type == Value::Type::string) {
        if (trim(value.text).empty()) {
            return std::vector<std::string>{};
        }
        return std::vector<std::string>{value.text};
    }
    if (value.type != Value::Type::array) {
        return wrong_type(what, value);
    }
    std::vector<std::string> items;
    for (const Value& item : value.items) {
        if (item.type != Value::Type::string) {
            return wrong_type(what, item);
        }
        if (trim(item.text).empty()) {
            return std::unexpected("empty string in the list");
        }
        items.push_back(item.text);
    }
    return items;
}

} // namespace

// A plugin's name (a file libcurlcache-backend-<name>.so in the plugin folder): lower-case
// letters, digits, '-' and '_', so that it can never climb out of that folder.
bool is_plugin_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

namespace {

// Built-in names, plugin names, or "plugin:/absolute/path.so". Whether a plugin exists is
// found out when the cache opens (a missing one is a fail-open warning there).
std::expected<std::vector<std::string>, std::string> parse_backends(const Value& value) {
    auto names = string_items(value, "a backend name or a list of them");
    if (!names) {
        return names;
    }
    if (names->empty()) {
        return std::unexpected("expected at least one backend (sqlite, filesystem, memory, redis "
                               "or a plugin)");
    }
    constexpr std::string_view k_plugin = "plugin:";
    for (size_t i = 0; i < names->size(); ++i) {
        std::string& name = (*names)[i];
        const std::string_view given = trim(name);
        if (given.starts_with(k_plugin)) {
            // A path is taken as written; never relative (to whatever the current folder is).
            if (!given.substr(k_plugin.size()).starts_with('/')) {
                return std::unexpected("backend " + quote(given) +
                                       ": a plugin's path must be absolute");
            }
            name = std::string(given);
        } else {
            name = to_lower(given);
            const bool built_in =
                std::find(k_backends.begin(), k_backends.end(), name) != k_backends.end();
            // A name two edits from a built-in one is that one misspelt, not a plugin's.
            for (std::string_view known : k_backends) {
                if (!built_in && base::edit_distance(name, known) <= 2) {
                    return std::unexpected("unknown backend " + quote((*names)[i]) +
                                           " (did you mean " + quote(known) + "?)");
                }
            }
            if (!built_in && !is_plugin_name(name)) {
                return std::unexpected("unknown backend " + quote((*names)[i]) +
                                       " (sqlite, filesystem, memory, redis, a plugin's name "
                                       "of a-z, 0-9, '-', '_', or plugin:/path/to/lib.so)");
            }
        }
        if (std::find(names->begin(), names->begin() + i, name) != names->begin() + i) {
            return std::unexpected("backend " + quote(name) + " is listed twice");
        }
    }
    return names;
}

std::expected<std::vector<long>, std::string> parse_codes(const Value& value) {
    std::vector<long> codes;
    auto add = [&](long code, std::string_view shown) -> std::expected<void, std::string> {
        if (code < 100 || code > 599) {
            return std::unexpected("bad status code " + std::string(shown) + " (use 100 to 599)");
        }
        codes.push_back(code);
        return {};
    };
    if (value.type == Value::Type::text) {
        for (const std::string& item : split_list(value.text)) {
            const bool digits =
                item.size() <= 3 &&
                std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (auto ok = add(digits ? std::stol(item) : -1, quote(item)); !ok) {
                return std::unexpected(ok.error());
            }
        }
        return codes;
    }
    const bool single = value.type == Value::Type::integer;
    if (!single && value.type != Value::Type::array) {
        return wrong_type("a list of status codes", value);
    }
    for (const Value& item : single ? std::vector<Value>{value} : value.items) {
        if (item.type != Value::Type::integer) {
            return wrong_type("a list of status codes", item);
        }
        if (auto ok = add(static_cast<long>(item.integer), std::to_string(item.integer)); !ok) {
            return std::unexpected(ok.error());
        }
    }
    return codes;
}

std::expected<int64_t, std::string> parse_seconds_value(const Value& value) {
    if (value.type == Value::Type::integer) {
        if (value.integer < -1) {
            return std::unexpected(bad_duration(std::to_string(value.integer)));
        }
        return value.integer;
    }
    if (is_text(value)) {
        return parse_duration(value.text);
    }
    return wrong_type("a duration (seconds or \"90s\", \"15m\", \"2h\", \"7d\", \"never\")", value);
}

// One rule's expire_after: a duration or "do-not-cache".
std::expected<UrlRule, std::string> make_rule(std::string pattern, const Value& expire) {
    UrlRule rule;
    rule.pattern = std::string(trim(pattern));
    if (rule.pattern.empty()) {
        return std::unexpected("a rule has an empty pattern");
    }
    if (is_text(expire)) {
        const std::string lower = to_lower(trim(expire.text));
        if (lower == "do-not-cache" || lower == "do_not_cache") {
            rule.cache = false;
            return rule;
        }
    }
    auto seconds = parse_seconds_value(expire);
    if (!seconds) {
        return std::unexpected("rule " + quote(rule.pattern) + ": " + seconds.error());
    }
    rule.expire_after = *seconds;
    return rule;
}

std::expected<std::vector<UrlRule>, std::string> parse_rules(const Value& value) {
    std::vector<UrlRule> rules;
    auto push = [&](std::expected<UrlRule, std::string> rule) -> std::expected<void, std::string> {
        if (!rule) {
            return std::unexpected(rule.error());
        }
        rules.push_back(std::move(*rule));
        return {};
    };
    if (value.type == Value::Type::text) {
        // "*.example.com/static/*=1d, */api/*=do-not-cache": the last '=' splits, since
        // durations never contain one.
        for (const std::string& item : split_list(value.text, ",;\n")) {
            const size_t eq = item.rfind('=');
            if (eq == std::string::npos) {
                return std::unexpected("bad rule " + quote(item) + " (use glob=duration, ...)");
            }
            if (auto ok =
                    push(make_rule(item.substr(0, eq), Value::from_text(item.substr(eq + 1))));
                !ok) {
                return std::unexpected(ok.error());
            }
        }
        return rules;
    }
    if (value.type == Value::Type::table) {
        // { "glob" = "duration", ... }: the reader keeps the fields in file order.
        for (const auto& [pattern, expire] : value.fields) {
            if (auto ok = push(make_rule(pattern, expire)); !ok) {
                return std::unexpected(ok.error());
            }
        }
        return rules;
    }
    if (value.type != Value::Type::array) {
        return wrong_type("a list of { pattern, expire_after } tables", value);
    }
    for (const Value& item : value.items) {
        if (item.type != Value::Type::table) {
            return wrong_type("a list of { pattern, expire_after } tables", item);
        }
        const Value* pattern = nullptr;
        const Value* expire = nullptr;
        for (const auto& [field, field_value] : item.fields) {
            if (field == "pattern") {
                pattern = &field_value;
            } else if (field == "expire_after") {
                expire = &field_value;
            } else {
                return std::unexpected("unknown rule field '" + field +
                                       "' (pattern, expire_after)");
            }
        }
        if (pattern == nullptr || expire == nullptr) {
            return std::unexpected("a rule needs both pattern and expire_after");
        }
        if (pattern->type != Value::Type::string) {
            return wrong_type("a string for pattern", *pattern);
        }
        if (auto ok = push(make_rule(pattern->text, *expire)); !ok) {
            return std::unexpected(ok.error());
        }
    }
    return rules;
}

// Only the scheme is checked here (the backend parses the rest when it connects), and only
// the scheme is echoed: the URL may carry a password.
std::expected<void, std::string> check_redis_url(std::string_view url) {
    for (std::string_view scheme : {"redis://", "unix://"}) {
        if (url.starts_with(scheme)) {
            return {};
        }
    }
    const size_t colon = url.find(':');
    const std::string shown =
        colon == std::string_view::npos ? "" : std::string(url.substr(0, colon));
    return std::unexpected("bad Redis URL" +
                           (shown.empty() ? std::string() : " scheme " + quote(shown)) +
                           " (use redis://[:password@]host[:port][/db] or unix:///path/to/socket)");
}

template <typename T> T& field(Settings& settings, const Member& member) {
    return settings.*std::get<T Settings::*>(member);
}

template <typename T> const T& field(const Settings& settings, const Member& member) {
    return settings.*std::get<T Settings::*>(member);
}

// Stores a parse result into the key's field, or passes the error on.
template <typename T, typename R>
std::expected<void, std::string> store(Settings& settings, const Member& member, R&& result) {
    if (!result) {
        return std::unexpected(std::move(result.error()));
    }
    field<T>(settings, member) = std::move(*result);
    return {};
}

std::string render_list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
        out += (i ? ", " : "") + quote(items[i]);
    }
    return out + "]";
}

} // namespace

std::expected<void, std::string> apply(const KeyDef& def, const Value& value, Settings& settings,
                                       std::string_view home) {
    const Member& m = def.member;
    switch (def.type) {
    case KeyType::config_file:
        if (!is_text(value)) {
            return wrong_type("a path", value);
        }
        settings.config_file = value.text;
        return {};
    case KeyType::boolean:
        if (value.type == Value::Type::boolean) {
            field<bool>(settings, m) = value.boolean;
            return {};
        }
        if (value.type == Value::Type::text) {
            return store<bool>(settings, m, parse_bool(value.text));
        }
        return wrong_type("a boolean (true or false)", value);
    case KeyType::string:
    case KeyType::path:
    case KeyType::redis_url: {
        if (!is_text(value)) {
            return wrong_type("a string", value);
        }
        if (def.type == KeyType::redis_url) {
            if (auto ok = check_redis_url(value.text); !ok) {
                return ok;
            }
        }
        std::string text = value.text;
        if (def.type == KeyType::path && text.starts_with("~/")) {
            // Left as it is, "~/x" would name a folder "~" in the current directory.
            if (home.empty()) {
                return std::unexpected(quote(text) + " needs HOME set to an absolute path");
            }
            text = std::string(home) + text.substr(1);
        }
        field<std::string>(settings, m) = std::move(text);
        return {};
    }
    case KeyType::size:
        if (value.type == Value::Type::integer) {
            if (value.integer < 0) {
                return std::unexpected(bad_size(std::to_string(value.integer)));
            }
            field<uint64_t>(settings, m) = static_cast<uint64_t>(value.integer);
            return {};
        }
        if (is_text(value)) {
            return store<uint64_t>(settings, m, parse_size(value.text));
        }
        return wrong_type("a size (bytes or \"10MiB\")", value);
    case KeyType::count:
        if (value.type == Value::Type::integer && value.integer >= 0) {
            field<uint64_t>(settings, m) = static_cast<uint64_t>(value.integer);
            return {};
        }
        if (value.type == Value::Type::text) {
            const std::string_view text = trim(value.text);
            if (!text.empty() && text.size() < 19 &&
                std::all_of(text.begin(), text.end(),
                            [](char c) { return c >= '0' && c <= '9'; })) {
                field<uint64_t>(settings, m) = std::stoull(std::string(text));
                return {};
            }
            return std::unexpected("bad number " + quote(value.text) +
                                   " (use a non-negative integer)");
        }
        return wrong_type("a non-negative integer", value);
    case KeyType::expiry:
        if (is_text(value) && to_lower(trim(value.text)) == "auto") {
            field<int64_t>(settings, m) = Settings::k_auto;
            return {};
        }
        [[fallthrough]];
    case KeyType::seconds:
        return store<int64_t>(settings, m, parse_seconds_value(value));
    case KeyType::millis:
        if (value.type == Value::Type::integer) {
            if (value.integer < 0) {
                return std::unexpected(bad_millis(std::to_string(value.integer)));
            }
            field<int64_t>(settings, m) = value.integer;
            return {};
        }
        if (is_text(value)) {
            return store<int64_t>(settings, m, parse_millis(value.text));
        }
        return wrong_type("a duration in milliseconds (250 or \"250ms\", \"1s\")", value);
    case KeyType::mode:
        if (!is_text(value)) {
            return wrong_type("a mode (normal, offline, refresh, readonly, off)", value);
        }
        return store<Mode>(settings, m, parse_mode(value.text));
    case KeyType::cache_type:
        if (!is_text(value)) {
            return wrong_type("a cache type (private, shared)", value);
        }
        return store<CacheType>(settings, m, parse_cache_type(value.text));
    case KeyType::log_level:
        if (!is_text(value)) {
            return wrong_type("a log level (error, warning, info, debug)", value);
        }
        return store<LogLevel>(settings, m, parse_log_level(value.text));
    case KeyType::backends:
        return store<std::vector<std::string>>(settings, m, parse_backends(value));
    case KeyType::strings:
        return store<std::vector<std::string>>(settings, m,
                                               string_items(value, "a list of strings"));
    case KeyType::codes:
        return store<std::vector<long>>(settings, m, parse_codes(value));
    case KeyType::url_rules:
        return store<std::vector<UrlRule>>(settings, m, parse_rules(value));
    }
    return std::unexpected("unsupported key type");
}

std::string render(const KeyDef& def, const Settings& settings) {
    const Member& m = def.member;
    switch (def.type) {
    case KeyType::config_file:
        return quote(settings.config_file.value_or(""));
    case KeyType::boolean:
        return field<bool>(settings, m) ? "true" : "false";
    case KeyType::string:
    case KeyType::path:
        return quote(field<std::string>(settings, m));
    case KeyType::redis_url:
        return quote(base::mask_password(field<std::string>(settings, m)));
    case KeyType::size:
        return render_size(field<uint64_t>(settings, m));
    case KeyType::count:
        return std::to_string(field<uint64_t>(settings, m));
    case KeyType::expiry:
        if (field<int64_t>(settings, m) == Settings::k_auto) {
            return "\"auto\"";
        }
        [[fallthrough]];
    case KeyType::seconds:
        return render_seconds(field<int64_t>(settings, m));
    case KeyType::millis:
        return render_millis(field<int64_t>(settings, m));
    case KeyType::mode:
        return quote(mode_name(field<Mode>(settings, m)));
    case KeyType::cache_type:
        return quote(cache_type_name(field<CacheType>(settings, m)));
    case KeyType::log_level:
        return quote(log_level_name(field<LogLevel>(settings, m)));
    case KeyType::backends:
    case KeyType::strings:
        return render_list(field<std::vector<std::string>>(settings, m));
    case KeyType::codes: {
        std::string out = "[";
        for (long code : field<std::vector<long>>(settings, m)) {
            out += (out.size() > 1 ? ", " : "") + std::to_string(code);
        }
        return out + "]";
    }
    case KeyType::url_rules: {
        std::string out = "[";
        for (const UrlRule& rule : field<std::vector<UrlRule>>(settings, m)) {
            out += out.size() > 1 ? ", " : "";
            out += "{ pattern = " + quote(rule.pattern) + ", expire_after = " +
                   (rule.cache ? render_seconds(rule.expire_after) : "\"do-not-cache\"") + " }";
        }
        return out + "]";
    }
    }
    return "";
}

} // namespace curlcache::config
