// Error reporting, global options and opening a cache: what every subcommand shares.
#include "cli/cli.h"

#include <cstdio>

namespace curlcache::cli {

void print_error(std::string_view message) {
    std::string line = "curlcache: ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

int runtime_error(std::string_view message) {
    print_error(message);
    return k_exit_runtime;
}

int usage_error(std::string_view message, std::string_view command) {
    std::string line(message);
    if (!command.empty()) {
        line = std::string(command) + ": " + line + " (see 'curlcache " + std::string(command) +
               " --help')";
    } else {
        line += " (see 'curlcache --help')";
    }
    print_error(line);
    return k_exit_usage;
}

std::vector<std::string> open_settings(const Global& global) {
    std::vector<std::string> settings;
    if (global.config) {
        settings.push_back("config=" + *global.config);
    }
    if (global.backend) {
        settings.push_back("backend=" + *global.backend);
    }
    if (global.name) {
        settings.push_back("name=" + *global.name);
    }
    return settings;
}

std::vector<std::string> read_settings(const Global& global) {
    std::vector<std::string> settings = open_settings(global);
    settings.emplace_back("mode=readonly");
    return settings;
}

CStrings::CStrings(const std::vector<std::string>& strings) {
    m_pointers.reserve(strings.size() + 1);
    for (const auto& s : strings) {
        m_pointers.push_back(s.c_str());
    }
    m_pointers.push_back(nullptr);
}

std::string api_message(const curlcache_handle* cache, curlcache_code code, std::string_view what) {
    std::string message(what);
    const char* detail = cache != nullptr ? curlcache_errmsg(cache) : nullptr;
    message += ": ";
    message += detail != nullptr && *detail != '\0' ? detail : curlcache_strerror(code);
    return message;
}

std::expected<CachePtr, OpenFailure> open_cache(const std::vector<std::string>& settings) {
    CStrings c_settings(settings);
    curlcache_handle* raw = nullptr;
    curlcache_code code = curlcache_open(&raw, c_settings.get());
    CachePtr cache(raw);
    if (code != CURLCACHE_OK) {
        return std::unexpected(OpenFailure{api_message(cache.get(), code, "cannot open the cache"),
                                           code == CURLCACHE_E_CONFIG});
    }
    return cache;
}

std::expected<CachePtr, OpenFailure> open_existing_cache(const Global& global) {
    auto cache = open_cache(read_settings(global));
    if (cache) {
        if (auto code = curlcache_exists(cache->get()); code != CURLCACHE_OK) {
            const char* why = curlcache_errmsg(cache->get());
            return std::unexpected(OpenFailure{why != nullptr && *why != '\0'
                                                   ? std::string(why)
                                                   : curlcache_strerror(code),
                                               false, code == CURLCACHE_E_MISS});
        }
    }
    return cache;
}

std::expected<CachePtr, OpenFailure> open_existing_cache_to_change(const Global& global) {
    if (auto existing = open_existing_cache(global); !existing) {
        return existing;
    }
    return open_cache(open_settings(global));
}

int report(const OpenFailure& failure) {
    print_error(failure.message);
    return failure.bad_settings ? k_exit_usage : k_exit_runtime;
}

int report_or_nothing_to(const OpenFailure& failure, std::string_view verb) {
    if (!failure.missing) {
        return report(failure);
    }
    std::printf("Nothing to %.*s: %s\n", static_cast<int>(verb.size()), verb.data(),
                failure.message.c_str());
    return k_exit_ok;
}

} // namespace curlcache::cli
