// Finding and loading backend plugins (curlcache/backend.h): a plugin is dlopen()ed with
// RTLD_NOW | RTLD_LOCAL the first time a config names it, checked (entry point, ABI major,
// table size, required operations) and kept loaded for the life of the process (a storage
// object may still be flushed at exit, after anything that could unload it).
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <curlcache/backend.h>

#include <string>
#include <string_view>
#include <vector>

namespace curlcache::backends {

// The prefix of a backend name that gives a plugin's path: "plugin:/opt/lib/libmine.so".
inline constexpr std::string_view k_plugin_prefix = "plugin:";

// Where plugins named by a bare name are looked for: settings.plugin_dir when set, else
// <folder of the library running this code>/curlcache/backends when that exists (so that
// a moved install and the build tree find their own), else <libdir>/curlcache/backends of
// the install.
std::string plugin_dir(const config::Settings& settings);

// The file a backend name stands for: the path after "plugin:", or
// <plugin_dir>/libcurlcache-backend-<name>.so.
std::string plugin_file(std::string_view name, const config::Settings& settings);

// The checked table of the plugin in `path`, loading it on first use (thread-safe). The
// error names the file and the reason (missing, not a plugin, newer ABI, table too small).
Result<const curlcache_backend_plugin*> load_plugin(const std::string& path);

// The process's real libcurl (the build already loaded, else libcurl.so.4), resolved in
// that library itself so that no call comes back through the shim's wrappers; null when
// it cannot be loaded.
const curlcache_backend_curl* real_curl();

// What `curlcache --version` shows of each libcurlcache-backend-*.so in a folder.
struct PluginInfo {
    std::string path;
    std::string name;    // from its table; "" when it could not be loaded
    std::string version; // from its table
    std::string error;   // why it cannot be used; "" when it can
};
std::vector<PluginInfo> find_plugins(const std::string& dir);

} // namespace curlcache::backends
