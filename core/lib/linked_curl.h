// The CurlApi of the libcurl that libcurlcache itself is linked with.
#pragma once

#include "core/easy/engine.h"

namespace curlcache::core::lib {

const easy::CurlApi& linked_curl();

} // namespace curlcache::core::lib
