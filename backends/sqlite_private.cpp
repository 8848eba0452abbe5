// configure_private_sqlite (sqlite_storage.h): the settings a copy of SQLite that belongs to
// curlcache alone is given before its first use.
#include "backends/sqlite_storage.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdlib>

namespace curlcache::backends {

namespace {

// SQLite's allocator for that copy: the C library's, with the block's size in a header (so
// the size is a load, not malloc_usable_size), and one spare block of 1-64 KiB kept when it
// is freed and handed out again. Every hit has SQLite copy the value (a few KiB for a small
// response) into a register it allocates and frees again (sqlite3VdbeMemGrow, then reset):
// above 1 KiB that misses glibc's per-thread cache and costs a few hundred instructions.
constexpr size_t k_header = 16; // keeps the 16-byte alignment malloc gives
constexpr size_t k_spare_min = 1024;
constexpr size_t k_spare_max = 64 * 1024;
std::atomic<void*> g_spare{nullptr};

size_t& capacity_of(void* p) {
    return *reinterpret_cast<size_t*>(static_cast<char*>(p) - k_header);
}

void* allocate(int n) {
    const auto want = static_cast<size_t>(n);
    if (want > k_spare_min && want <= k_spare_max) {
        if (void* spare = g_spare.exchange(nullptr, std::memory_order_acquire)) {
            if (capacity_of(spare) >= want) {
                return spare;
            }
            std::free(static_cast<char*>(spare) - k_header);
        }
    }
    auto* block = static_cast<char*>(std::malloc(want + k_header));
    if (block == nullptr) {
        return nullptr;
    }
    *reinterpret_cast<size_t*>(block) = want;
    return block + k_header;
}

void release(void* p) {
    const size_t capacity = capacity_of(p);
    if (capacity > k_spare_min && capacity <= k_spare_max) {
        void* none = nullptr;
        if (g_spare.compare_exchange_strong(none, p, std::memory_order_release,
                                            std::memory_order_relaxed)) {
            return;
        }
    }
    std::free(static_cast<char*>(p) - k_header);
}

void* reallocate(void* p, int n) {
    const auto want = static_cast<size_t>(n);
    auto* block =
        static_cast<char*>(std::realloc(static_cast<char*>(p) - k_header, want + k_header));
    if (block == nullptr) {
        return nullptr;
    }
    *reinterpret_cast<size_t*>(block) = want;
    return block + k_header;
}

int size_of(void* p) {
    return static_cast<int>(capacity_of(p));
}
int round_up(int n) {
    return (n + 7) & ~7;
}
int init(void*) {
    return SQLITE_OK;
}
void shutdown(void*) {}

const sqlite3_mem_methods k_methods = {allocate, release, reallocate, size_of,
                                       round_up, init,    shutdown,   nullptr};

} // namespace

bool configure_private_sqlite() noexcept {
    // Memory statistics off: every sqlite3_malloc and sqlite3_free then skips SQLite's
    // global memory mutex and its counters (sqlite3_memory_used() and the soft heap limit,
    // which curlcache never uses, stop counting). A hit allocates and frees three times:
    // its cursor, and the key and the value copied into registers (Debian's build has no
    // lookaside). Measured: BENCHMARKS.md, issue 11, "SQLite's private configuration".
    // Each is refused (SQLITE_MISUSE) when SQLite is initialized already, and SQLite then
    // keeps its defaults.
    bool memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    bool allocator = sqlite3_config(SQLITE_CONFIG_MALLOC, &k_methods) == SQLITE_OK;
    // No bulk block for each connection's page cache (no memory of ours, N = 0): a page is
    // allocated when the cache first holds one. The default block of 20 pages (~86 KiB) is
    // written through at the first page read, ~19 fresh heap pages faulted in by every
    // process that opens the cache, while a process with one hit reads about five pages.
    bool page_cache = sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0) == SQLITE_OK;
    return memstatus && allocator && page_cache;
}

} // namespace curlcache::backends
