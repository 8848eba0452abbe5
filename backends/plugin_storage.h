// The Storage interface over a backend plugin's table (curlcache/backend.h): what makes a
// plugin one more backend for the registry, the tiers and the conformance group.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <memory>
#include <string_view>

namespace curlcache::backends {

// Opens the plugin a backend name stands for ("postgres" in the plugin folder, or
// "plugin:/path/lib.so"), hands it the host's services and its config table (the table
// named after the plugin's own name), and opens its store. Any failure names the file and
// the reason.
Result<std::unique_ptr<Storage>> open_plugin(std::string_view name,
                                             const config::Settings& settings);

} // namespace curlcache::backends
