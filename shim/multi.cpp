#include "shim/multi.h"

namespace curlcache::shim {
void multi_forget_easy(Library, CURL*) noexcept {}
} // namespace curlcache::shim
