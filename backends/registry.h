// Maps a backend's name to its factory. Core opens storage only through here and never
// includes a backend's own header.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::backends {

// Opens the backend called `name` ("sqlite", "filesystem", "memory", "redis") with the
// settings' cache name and backend options. Fails with a clear message for an unknown
// name or a backend that cannot be opened (unwritable path, server down).
Result<std::unique_ptr<Storage>> open(std::string_view name, const config::Settings& settings);

// Names of the backends compiled into this build, in registry order.
std::vector<std::string> compiled_in();

} // namespace curlcache::backends
