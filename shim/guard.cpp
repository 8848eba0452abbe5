#include "shim/guard.h"

#include "core/easy/handle_state.h"
#include "shim/real.h"
#include "shim/resolve.h"


namespace curlcache::shim {
namespace {

// Plain __thread values: no TLS wrapper function, no constructor, safe at any time.
__thread int t_depth = 0;
__thread CURL* t_current = nullptr;

// The shim's own code (the engine's, in the split build): a wrapper called from there is
// libcurl calling itself through a tail call (the return address is then the shim's, which
// called the libcurl function).
const CodeRange& own_code() noexcept {
    static const CodeRange range = code_range_of(reinterpret_cast<const void*>(&own_code));
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
    return curlcache_shim_disabled() != 0;
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
