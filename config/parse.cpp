// Durations, sizes, booleans and enums as people write them in a config file or a variable.
#include "config/parse.h"

#include "config/loader.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace curlcache::config {

namespace {

struct Unit {
    std::string_view name;
    int64_t factor;
};

// Seconds-based units; longer spellings are accepted as they cost nothing.
constexpr std::array k_second_units{
    Unit{"s", 1},        Unit{"sec", 1},       Unit{"secs", 1},       Unit{"second", 1},
    Unit{"seconds", 1},  Unit{"m", 60},        Unit{"min", 60},       Unit{"mins", 60},
    Unit{"minute", 60},  Unit{"minutes", 60},  Unit{"h", 3600},       Unit{"hour", 3600},
    Unit{"hours", 3600}, Unit{"d", 86400},     Unit{"day", 86400},    Unit{"days", 86400},
    Unit{"w", 604800},   Unit{"week", 604800}, Unit{"weeks", 604800},
};

// Sizes: a bare prefix or "...B" is decimal (as disks and ccache count), "...iB" binary.
constexpr std::array k_size_units{
    Unit{"", 1},
    Unit{"b", 1},
    Unit{"k", 1000},
    Unit{"kb", 1000},
    Unit{"ki", 1ll << 10},
    Unit{"kib", 1ll << 10},
    Unit{"m", 1000 * 1000},
    Unit{"mb", 1000 * 1000},
    Unit{"mi", 1ll << 20},
    Unit{"mib", 1ll << 20},
    Unit{"g", 1000ll * 1000 * 1000},
    Unit{"gb", 1000ll * 1000 * 1000},
    Unit{"gi", 1ll << 30},
    Unit{"gib", 1ll << 30},
    Unit{"t", 1000ll * 1000 * 1000 * 1000},
    Unit{"tb", 1000ll * 1000 * 1000 * 1000},
    Unit{"ti", 1ll << 40},
    Unit{"tib", 1ll << 40},
};

// The factor of a unit, in milliseconds.
std::optional<int64_t> find_unit(std::string_view name, bool allow_ms) {
    if (name == "ms" && allow_ms) {
        return 1;
    }
    for (const auto& unit : k_second_units) {
        if (unit.name == name) {
            return unit.factor * 1000;
        }
    }
    return std::nullopt;
}

// "1h30m", "90 s", "2h": a sum of <digits><unit> terms, in milliseconds.
std::optional<int64_t> parse_terms(std::string_view text, bool allow_ms) {
    constexpr int64_t k_max = std::numeric_limits<int64_t>::max() / 2;
    const std::string lower = to_lower(text);
    std::string_view rest = lower;
    int64_t total = 0;
    bool any = false;
    while (!rest.empty()) {
        size_t digits = 0;
        while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) {
            ++digits;
        }
        if (digits == 0 || digits > 15) {
            return std::nullopt;
        }
        const int64_t number = std::stoll(std::string(rest.substr(0, digits)));
        rest = rest.substr(digits);
        while (!rest.empty() && rest.front() == ' ') {
            rest.remove_prefix(1);
        }
        size_t letters = 0;
        while (letters < rest.size() && std::isalpha(static_cast<unsigned char>(rest[letters]))) {
            ++letters;
        }
        const auto factor = find_unit(rest.substr(0, letters), allow_ms);
        if (!factor || number > (k_max - total) / *factor) {
            return std::nullopt;
        }
        total += number * *factor;
        any = true;
        rest = trim(rest.substr(letters));
    }
    if (!any) {
        return std::nullopt;
    }
    return total;
}

bool all_digits(std::string_view text) {
    return !text.empty() && text.size() <= 18 && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
    });
}

} // namespace

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
        text.remove_prefix(1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.remove_suffix(1);
    }
    return text;
}

std::string to_lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string bad_duration(std::string_view text) {
    return "bad duration " + quote(text) + " (use seconds or 90s, 15m, 2h, 7d, never)";
}

std::string bad_millis(std::string_view text) {
    return "bad duration " + quote(text) + " (use milliseconds or 250ms, 1s, 2m)";
}

std::string bad_size(std::string_view text) {
    return "bad size " + quote(text) + " (use bytes or 512, 10KiB, 10MiB, 1GiB, 10MB)";
}

std::expected<int64_t, std::string> parse_duration(std::string_view text) {
    const std::string_view value = trim(text);
    const std::string lower = to_lower(value);
    if (lower == "never" || lower == "-1") {
        return -1;
    }
    if (all_digits(value)) {
        return std::stoll(std::string(value));
    }
    if (auto millis = parse_terms(value, false)) {
        return *millis / 1000;
    }
    return std::unexpected(bad_duration(text));
}

std::expected<int64_t, std::string> parse_millis(std::string_view text) {
    const std::string_view value = trim(text);
    if (all_digits(value)) {
        return std::stoll(std::string(value));
    }
    if (auto millis = parse_terms(value, true)) {
        return *millis;
    }
    return std::unexpected(bad_millis(text));
}

std::expected<uint64_t, std::string> parse_size(std::string_view text) {
    const std::string_view value = trim(text);
    size_t i = 0;
    while (i < value.size() &&
           (std::isdigit(static_cast<unsigned char>(value[i])) || value[i] == '.')) {
        ++i;
    }
    const std::string number(value.substr(0, i));
    const std::string unit = to_lower(trim(value.substr(i)));
    if (number.empty() || number.size() > 24 || std::count(number.begin(), number.end(), '.') > 1 ||
        number.front() == '.' || number.back() == '.') {
        return std::unexpected(bad_size(text));
    }
    auto found = std::find_if(k_size_units.begin(), k_size_units.end(),
                              [&](const Unit& u) { return u.name == unit; });
    if (found == k_size_units.end()) {
        return std::unexpected(bad_size(text));
    }
    if (number.find('.') == std::string::npos) {
        if (number.size() > 19) {
            return std::unexpected(bad_size(text));
        }
        const uint64_t n = std::stoull(number);
        if (n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(found->factor)) {
            return std::unexpected(bad_size(text));
        }
        return n * static_cast<uint64_t>(found->factor);
    }
    // "1.5GiB": a fraction of the unit, rounded down to whole bytes.
    const long double bytes = std::stold(number) * static_cast<long double>(found->factor);
    if (!(bytes < 1.8e19L)) {
        return std::unexpected(bad_size(text));
    }
    return static_cast<uint64_t>(std::floor(bytes));
}

std::expected<bool, std::string> parse_bool(std::string_view text) {
    const std::string lower = to_lower(trim(text));
    for (std::string_view yes : {"1", "true", "yes", "on"}) {
        if (lower == yes) {
            return true;
        }
    }
    for (std::string_view no : {"0", "false", "no", "off"}) {
        if (lower == no) {
            return false;
        }
    }
    return std::unexpected("bad boolean " + quote(text) + " (use 1/0, true/false, yes/no, on/off)");
}

namespace {
constexpr std::array k_modes{
    std::pair{"normal", Mode::normal},   std::pair{"offline", Mode::offline},
    std::pair{"refresh", Mode::refresh}, std::pair{"readonly", Mode::readonly},
    std::pair{"off", Mode::off},
};
constexpr std::array k_levels{
    std::pair{"error", LogLevel::error},
    std::pair{"warning", LogLevel::warning},
    std::pair{"info", LogLevel::info},
    std::pair{"debug", LogLevel::debug},
};
} // namespace

std::expected<Mode, std::string> parse_mode(std::string_view text) {
    const std::string lower = to_lower(trim(text));
    for (const auto& [name, mode] : k_modes) {
        if (lower == name) {
            return mode;
        }
    }
    return std::unexpected("unknown mode " + quote(text) +
                           " (normal, offline, refresh, readonly, off)");
}

std::expected<LogLevel, std::string> parse_log_level(std::string_view text) {
    std::string lower = to_lower(trim(text));
    if (lower == "warn") {
        lower = "warning";
    }
    for (const auto& [name, level] : k_levels) {
        if (lower == name) {
            return level;
        }
    }
    return std::unexpected("unknown log level " + quote(text) + " (error, warning, info, debug)");
}

const char* mode_name(Mode mode) {
    for (const auto& [name, value] : k_modes) {
        if (value == mode) {
            return name;
        }
    }
    return "normal";
}

std::expected<CacheType, std::string> parse_cache_type(std::string_view text) {
    const std::string lower = to_lower(trim(text));
    if (lower == "private") {
        return CacheType::private_cache;
    }
    if (lower == "shared") {
        return CacheType::shared_cache;
    }
    return std::unexpected("unknown cache type " + quote(text) + " (private, shared)");
}

const char* cache_type_name(CacheType type) {
    return type == CacheType::shared_cache ? "shared" : "private";
}

const char* log_level_name(LogLevel level) {
    for (const auto& [name, value] : k_levels) {
        if (value == level) {
            return name;
        }
    }
    return "warning";
}

std::string render_seconds(int64_t seconds) {
    if (seconds < 0) {
        return "\"never\"";
    }
    if (seconds == 0) {
        return "0";
    }
    for (auto [suffix, factor] : {std::pair{"w", 604800}, std::pair{"d", 86400},
                                  std::pair{"h", 3600}, std::pair{"m", 60}}) {
        if (seconds % factor == 0) {
            return "\"" + std::to_string(seconds / factor) + suffix + "\"";
        }
    }
    return "\"" + std::to_string(seconds) + "s\"";
}

std::string render_millis(int64_t millis) {
    if (millis <= 0) {
        return std::to_string(millis);
    }
    if (millis % 1000 != 0) {
        return "\"" + std::to_string(millis) + "ms\"";
    }
    return render_seconds(millis / 1000);
}

std::string render_size(uint64_t bytes) {
    if (bytes == 0) {
        return "0";
    }
    for (auto [suffix, factor] :
         {std::pair{"TiB", 1ull << 40}, std::pair{"GiB", 1ull << 30}, std::pair{"MiB", 1ull << 20},
          std::pair{"KiB", 1ull << 10}, std::pair{"TB", 1000000000000ull},
          std::pair{"GB", 1000000000ull}, std::pair{"MB", 1000000ull}, std::pair{"KB", 1000ull}}) {
        if (bytes % factor == 0) {
            return "\"" + std::to_string(bytes / factor) + suffix + "\"";
        }
    }
    return std::to_string(bytes);
}

std::string quote(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            static constexpr char k_hex[] = "0123456789ABCDEF";
            out += "\\u00";
            out += k_hex[u >> 4];
            out += k_hex[u & 15];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

} // namespace curlcache::config
