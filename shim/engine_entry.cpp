// The engine's one export in the split build (x86-64): libcurlcache-engine.so is loaded by
// the preload stub on the first libcurl call (shim/stub.c), which then jumps to the
// wrappers this hands it. Not built into the one-library shim.
#include "backends/sqlite_storage.h"
#include "shim/multi.h"
#include "shim/resolve.h"
#include "shim/stub_abi.h"

#include <cstring>

extern "C" __attribute__((visibility("default"))) int
curlcache_engine_attach(const curlcache_stub_services* services, void** entries,
                        unsigned count) noexcept {
    if (services == nullptr || services->size < sizeof(curlcache_stub_services) ||
        entries == nullptr || count != CURLCACHE_STUB_SLOT_COUNT) {
        return -1;
    }
#if CURLCACHE_SHIM_PRIVATE_SQLITE
    // SQLite is linked into the engine alone (CMakeLists.txt): configured before its first
    // use. The stub attaches once, under pthread_once, before any wrapper can run.
    (void)curlcache::backends::configure_private_sqlite();
#endif
    curlcache_stub_services mine{};
    std::memcpy(&mine, services, sizeof mine);
    curlcache::shim::use_stub_services(mine);
    curlcache::shim::easy_entries(entries);
    curlcache::shim::multi_entries(entries);
    return 0;
}
