// Public C API: resolving and checking configuration without opening a cache (for the
// `curlcache config` command).
#include "core/capi_internal.h"

#include "config/loader.h"

#include <cstring>

namespace curlcache::core::capi {

namespace {

void copy_error(const std::string& message, char* error, size_t error_size) {
    if (!error || error_size == 0) {
        return;
    }
    size_t n = std::min(message.size(), error_size - 1);
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
}

const char* origin_name(config::Origin::Kind kind) {
    switch (kind) {
    case config::Origin::Kind::built_in:
        return "default";
    case config::Origin::Kind::file:
        return "file";
    case config::Origin::Kind::environment:
        return "environment";
    case config::Origin::Kind::argument:
        return "argument";
    }
    return "default";
}

// Like guarded(), for functions that report through an error buffer instead of a handle.
template <class Body>
curlcache_code guarded_buffer(char* error, size_t error_size, Body&& body) noexcept {
    try {
        copy_error("", error, error_size);
        return body();
    } catch (const std::bad_alloc&) {
        copy_error("out of memory", error, error_size);
        return CURLCACHE_E_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        copy_error(std::string("internal error: ") + e.what(), error, error_size);
        return CURLCACHE_E_INTERNAL;
    } catch (...) {
        copy_error("internal error", error, error_size);
        return CURLCACHE_E_INTERNAL;
    }
}

void report_warnings(const std::vector<std::string>& warnings, curlcache_message_callback warn,
                     void* userp) {
    if (!warn) {
        return;
    }
    for (const std::string& warning : warnings) {
        warn(warning.c_str(), userp);
    }
}

} // namespace

} // namespace curlcache::core::capi

using namespace curlcache;

extern "C" {

CURLCACHE_EXPORT curlcache_code curlcache_config_describe(const char* const* arguments,
                                                          curlcache_setting_callback cb,
                                                          void* userp,
                                                          curlcache_message_callback warn,
                                                          char* error, size_t error_size) {
    if (!cb) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return core::capi::guarded_buffer(error, error_size, [&] {
        core::capi::Arguments split = core::capi::split_arguments(arguments);
        auto loaded = config::load(split.settings, {}, split.config_file);
        if (!loaded) {
            core::capi::copy_error(loaded.error().message, error, error_size);
            return CURLCACHE_E_CONFIG;
        }
        core::capi::report_warnings(loaded->warnings, warn, userp);
        for (const config::Entry& entry : config::describe(loaded->settings)) {
            curlcache_setting out{
                entry.key.c_str(),          entry.env.c_str(),
                entry.value.c_str(),        core::capi::origin_name(entry.origin.kind),
                entry.origin.where.c_str(), entry.help.c_str()};
            if (cb(&out, userp) != 0) {
                break;
            }
        }
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT curlcache_code curlcache_config_check(const char* path,
                                                       curlcache_message_callback warn, void* userp,
                                                       char* error, size_t error_size) {
    if (!path) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    return core::capi::guarded_buffer(error, error_size, [&] {
        auto loaded = config::load_file(path);
        if (!loaded) {
            core::capi::copy_error(loaded.error().message, error, error_size);
            return loaded.error().io ? CURLCACHE_E_IO : CURLCACHE_E_CONFIG;
        }
        core::capi::report_warnings(loaded->warnings, warn, userp);
        return CURLCACHE_OK;
    });
}

} // extern "C"
