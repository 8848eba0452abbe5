// The one table of built-in storage backends; every other name is a plugin's. Adding a backend is one line in k_backends (guarded by
// its CMake option when it needs an optional library) plus its factory's header.
#include "backends/registry.h"

#include "backends/file_lock.h"
#include "backends/filesystem_storage.h"
#include "backends/memory_storage.h"
#include "backends/plugin_loader.h"
#include "backends/plugin_storage.h"
#ifdef CURLCACHE_WITH_REDIS
#include "backends/redis_storage.h"
#endif
#include "backends/sqlite_storage.h"

#include <iterator>
#include <unistd.h>

namespace curlcache::backends {

namespace {

using Factory = Result<std::unique_ptr<Storage>> (*)(const config::Settings&);

struct Backend {
    std::string_view name;
    Factory factory;
};

// Registry order is the order `curlcache --version` lists them; the default comes first.
constexpr Backend k_backends[] = {
    {"sqlite", open_sqlite},
    {"filesystem", open_filesystem},
    {"memory", open_memory},
#ifdef CURLCACHE_WITH_REDIS
    {"redis", open_redis},
#endif
};

} // namespace

Result<std::unique_ptr<Storage>> open(std::string_view name, const config::Settings& settings) {
    for (const auto& backend : k_backends) {
        if (backend.name == name) {
            auto storage = backend.factory(settings);
            if (!storage || !(*storage)->read_only_reason().empty()) {
                return storage; // nothing is stored in a read-only cache: nothing to coalesce
            }
            // Backends in files get cross-process coalescing locks (<cache>.locks/keys.lock).
            std::string lock_dir = lock_dir_for(**storage);
            return with_file_locks(std::move(*storage), std::move(lock_dir));
        }
    }
    // Any other name is a plugin's (config/ checked its form): loaded only now, only here.
    const std::string file = plugin_file(name, settings);
    if (!name.starts_with(k_plugin_prefix) && ::access(file.c_str(), F_OK) != 0) {
        std::string known;
        for (const auto& backend : k_backends) {
            known += known.empty() ? "" : ", ";
            known += backend.name;
        }
        return fail("unknown backend \"" + std::string(name) + "\": not built in (" + known +
                    ") and no plugin " + file);
    }
    return open_plugin(name, settings);
}

std::vector<std::string> compiled_in() {
    std::vector<std::string> names;
    names.reserve(std::size(k_backends));
    for (const auto& backend : k_backends) {
        names.emplace_back(backend.name);
    }
    return names;
}

} // namespace curlcache::backends
