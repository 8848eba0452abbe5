// The curl_multi_* side of the shim: hits added to a program's multi handle are kept out of
// the real multi and replayed during its next perform/socket_action; misses run for real
// and are finished (end_transfer) when their DONE message is read.
#pragma once

#include "shim/library.h"

#include <curl/curl.h>

namespace curlcache::shim {

// Forgets `handle` in whatever multi handle it was added to (curl_easy_cleanup of a handle
// still in a multi: libcurl removes it, so the shim does too). A miss still running is
// finished as aborted.
void multi_forget_easy(Library library, CURL* handle) noexcept;

// The engine's wrappers by slot (split build: shim/stub_abi.h), easy.cpp's and multi.cpp's,
// for curlcache_engine_attach.
void easy_entries(void** entries) noexcept;
void multi_entries(void** entries) noexcept;

} // namespace curlcache::shim
