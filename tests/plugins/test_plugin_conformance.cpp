// The storage conformance group over a backend plugin, loaded by config
// (backend = "plugin:PATH") exactly as a user's own would be:
//     test_plugin_conformance [PLUGIN.so]
// Without an argument: the example plugin built in this tree. example_installed.sh runs
// it over the example built out of tree against the installed header.
#include "config/settings.h"

#include <string>

#include "tests/backends/conformance.h" // last: cmocka's macros

int main(int argc, char** argv) {
    using namespace curlcache;
    static const std::string path = argc > 1 ? argv[1] : EXAMPLE_PLUGIN;
    static const tests::ConformanceBackend k_plugin{"plugin:" + path, [](const std::string&) {
                                                        config::Settings settings;
                                                        settings.backend = {"plugin:" + path};
                                                        return settings;
                                                    }};
    return tests::run_conformance(k_plugin) == 0 ? 0 : 1;
}
