#include "shim/guard.h"

#include "config/parse.h"
#include "core/easy/handle_state.h"
#include "shim/resolve.h"

#include <pthread.h>

#include <cstdlib>

namespace curlcache::shim {
namespace {

// Plain __thread values: no TLS wrapper function, no constructor, safe at any time.
__thread int t_depth = 0;
__thread CURL* t_current = nullptr;

pthread_once_t g_disabled_once = PTHREAD_ONCE_INIT;
bool g_disabled = false;

// The same reading of the variable as the config loader's (1/true/yes/on). A malformed
// value is left to the engine, which reports it and fails open.
void read_disabled() {
    const char* value = std::getenv("CURLCACHE_DISABLE");
    if (value == nullptr) {
        return;
    }
    try {
        const auto parsed = config::parse_bool(value);
        g_disabled = parsed.has_value() && *parsed;
    } catch (...) {
    }
}

// The shim's own code: a wrapper called from there is libcurl calling itself through a
// tail call (the return address is then the shim's, which called the libcurl function).
const CodeRange& own_code() noexcept {
    static const CodeRange range = code_range_of(reinterpret_cast<const void*>(&read_disabled));
    return range;
}

} // namespace

Inside::Inside() noexcept {
    ++t_depth;
}
Inside::~Inside() {
    --t_depth;
}

CurrentTransfer::CurrentTransfer(CURL* handle) noexcept : m_previous(t_current) {
    t_current = handle;
}
CurrentTransfer::~CurrentTransfer() {
    t_current = m_previous;
}

bool in_use_by_engine(CURL* handle) noexcept {
    if (handle == nullptr) {
        return false;
    }
    return handle == t_current || (t_depth > 0 && core::easy::transfer_running(handle));
}

bool disabled() noexcept {
    pthread_once(&g_disabled_once, read_disabled);
    return g_disabled;
}

bool pass_through(Library library, const void* caller) noexcept {
    if (t_depth > 0 || real(library).code.contains(caller)) {
        return true;
    }
    return disabled();
}

bool pass_through_handle_call(Library library, const void* caller) noexcept {
    if (real(library).code.contains(caller) || own_code().contains(caller)) {
        return true;
    }
    return disabled();
}

} // namespace curlcache::shim
