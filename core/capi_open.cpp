// Public C API: result codes, version, opening and closing a cache, error messages.
#include "core/capi_internal.h"

#include "backends/plugin_loader.h"
#include "backends/registry.h"
#include "backends/tiered_storage.h"
#include "config/loader.h"
#include "core/log.h"

#include <cstdlib>
#include <ctime>

namespace curlcache::core::capi {

void clear_message(curlcache_handle* handle) noexcept {
    if (!handle) {
        return;
    }
    std::lock_guard lock(handle->mutex);
    handle->messages.erase(std::this_thread::get_id());
}

curlcache_code fail(curlcache_handle* handle, curlcache_code code,
                    const std::string& message) noexcept {
    if (!handle) {
        return code;
    }
    try {
        std::lock_guard lock(handle->mutex);
        handle->messages[std::this_thread::get_id()] = message;
    } catch (...) {
        // Out of memory while recording the message: the code still tells what happened.
    }
    return code;
}

curlcache_code fail(curlcache_handle* handle, const backends::Error& error) noexcept {
    bool timeout = error.kind == backends::ErrorKind::timeout;
    return fail(handle, timeout ? CURLCACHE_E_TIMEOUT : CURLCACHE_E_BACKEND, error.message);
}

Cache* cache_of(curlcache_handle* handle) noexcept {
    if (!handle) {
        return nullptr;
    }
    if (!handle->cache) {
        fail(handle, CURLCACHE_E_INVALID_ARGUMENT, "the cache is not open (curlcache_open failed)");
    }
    return handle->cache.get();
}

int64_t now_seconds() noexcept {
    return static_cast<int64_t>(std::time(nullptr));
}

Arguments split_arguments(const char* const* arguments) {
    Arguments out;
    for (size_t i = 0; arguments && arguments[i]; ++i) {
        std::string_view argument(arguments[i]);
        if (argument.starts_with("config=")) {
            out.config_file = std::string(argument.substr(7));
        } else {
            out.settings.emplace_back(argument);
        }
    }
    return out;
}

} // namespace curlcache::core::capi

using namespace curlcache;
using core::capi::fail;
using core::capi::guarded;

extern "C" {

CURLCACHE_EXPORT const char* curlcache_strerror(curlcache_code code) {
    switch (code) {
    case CURLCACHE_OK:
        return "no error";
    case CURLCACHE_E_MISS:
        return "no fresh entry in the cache for this request";
    case CURLCACHE_E_INVALID_ARGUMENT:
        return "invalid argument (NULL handle, malformed key or glob, bad option)";
    case CURLCACHE_E_OUT_OF_MEMORY:
        return "out of memory";
    case CURLCACHE_E_CONFIG:
        return "malformed configuration file or variable";
    case CURLCACHE_E_BACKEND:
        return "the storage backend failed";
    case CURLCACHE_E_TIMEOUT:
        return "the storage backend did not answer in time";
    case CURLCACHE_E_CORRUPT:
        return "a stored entry failed its checksum and was removed";
    case CURLCACHE_E_NOT_CACHEABLE:
        return "the cache policy does not allow storing this response";
    case CURLCACHE_E_TOO_LARGE:
        return "the response body exceeds max_entry_size";
    case CURLCACHE_E_OFFLINE:
        return "offline mode and no cached entry: the network is not used";
    case CURLCACHE_E_UNSUPPORTED:
        return "not supported by this backend or build";
    case CURLCACHE_E_IO:
        return "reading or writing a local file failed";
    case CURLCACHE_E_INTERNAL:
        return "internal error in curlcache (please report it)";
    case CURLCACHE_E_LAST:
        break;
    }
    return "unknown curlcache_code";
}

CURLCACHE_EXPORT const char* curlcache_version(void) {
    return "0.1.0";
}

CURLCACHE_EXPORT const char* curlcache_backends(void) {
    try {
        // Built once, thread-safely; static for the life of the process, as documented.
        static const std::string names = [] {
            std::string out;
            for (const std::string& name : backends::compiled_in()) {
                out += (out.empty() ? "" : " ") + name;
            }
            return out;
        }();
        return names.c_str();
    } catch (...) {
        return "";
    }
}

CURLCACHE_EXPORT const char* curlcache_plugins(void) {
    try {
        static const std::string lines = [] {
            config::Settings settings;
            if (const char* dir = std::getenv("CURLCACHE_PLUGIN_DIR"); dir && *dir) {
                settings.plugin_dir = dir;
            }
            std::string out;
            for (const auto& plugin : backends::find_plugins(backends::plugin_dir(settings))) {
                out += plugin.error.empty()
                           ? plugin.name + " " + plugin.version + " " + plugin.path + "\n"
                           : plugin.path + ": " + plugin.error + "\n";
            }
            return out;
        }();
        return lines.c_str();
    } catch (...) {
        return "";
    }
}

CURLCACHE_EXPORT curlcache_code curlcache_open(curlcache_handle** out,
                                               const char* const* arguments) {
    if (!out) {
        return CURLCACHE_E_INVALID_ARGUMENT;
    }
    *out = new (std::nothrow) curlcache_handle;
    if (!*out) {
        return CURLCACHE_E_OUT_OF_MEMORY;
    }
    curlcache_handle* handle = *out;
    return guarded(handle, [&]() -> curlcache_code {
        core::capi::Arguments split = core::capi::split_arguments(arguments);
        auto loaded = config::load(split.settings, {}, split.config_file);
        if (!loaded) {
            return fail(handle, CURLCACHE_E_CONFIG, loaded.error().message);
        }
        core::log::configure(loaded->settings.log_level, loaded->settings.log_file);
        for (const std::string& warning : loaded->warnings) {
            CURLCACHE_LOG(warning, "%s", warning.c_str());
        }
        auto cache = core::Cache::open(std::move(loaded->settings));
        if (!cache) {
            return fail(handle, CURLCACHE_E_BACKEND, cache.error());
        }
        handle->cache = std::move(*cache);
        backends::Storage& storage = handle->cache->storage();
        if (backends::TieredStorage* tiered = backends::as_tiered(storage)) {
            for (size_t i = 0; i < tiered->tier_count(); ++i) {
                backends::Storage& tier = tiered->tier(i);
                handle->tiers.emplace_back(std::string(tier.name()), tier.location());
            }
        } else {
            handle->tiers.emplace_back(std::string(storage.name()), storage.location());
        }
        return CURLCACHE_OK;
    });
}

CURLCACHE_EXPORT void curlcache_close(curlcache_handle* handle) {
    try {
        delete handle; // the Cache flushes its statistics
    } catch (...) {
        // A destructor that throws would be a bug; never let it cross into C.
    }
}

CURLCACHE_EXPORT const char* curlcache_errmsg(const curlcache_handle* handle) {
    if (!handle) {
        return "";
    }
    try {
        std::lock_guard lock(handle->mutex);
        auto found = handle->messages.find(std::this_thread::get_id());
        return found == handle->messages.end() ? "" : found->second.c_str();
    } catch (...) {
        return "";
    }
}

} // extern "C"
