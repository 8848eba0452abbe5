// When a wrapper must pass straight through to libcurl.
//
// libcurl calls its own public functions through the PLT (curl_easy_perform drives a
// private multi handle with curl_multi_*; its connection cache creates handles with
// curl_easy_init), so those inner calls land in our wrappers too and must not reach the
// engine. Two checks catch them: a thread-local depth that is raised around every real
// call the shim makes, and the caller's return address lying inside libcurl's code (for
// inner calls made by a libcurl function the shim does not wrap, e.g. curl_multi_init).
// The depth also covers the program's own callbacks, which libcurl runs inside those real
// calls; the calls that set up handles tell them apart by the caller alone.
#pragma once

#include "shim/library.h"

#include <curl/curl.h>

namespace curlcache::shim {

// Raised while the shim runs a real libcurl function.
class Inside {
  public:
    Inside() noexcept;
    ~Inside();
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;
};

// True when `caller` (the wrapper's return address) is libcurl calling itself, when the
// shim is already inside a real libcurl call on this thread, or when CURLCACHE_DISABLE asks
// for a pure pass-through. Then the wrapper must call the real function and nothing else.
bool pass_through(Library library, const void* caller) noexcept;

// The same for the calls that change what the engine records about a handle
// (curl_easy_init, _setopt, _reset, _cleanup and _duphandle), where the depth does not
// decide: a program's callback runs inside the shim's real curl_easy_perform or
// curl_multi_perform, and what it does there to a handle (another one, or its own) must be
// recorded, or that handle's options go stale. Only libcurl's own calls (the caller in
// libcurl's code, or in the shim's: a tail call from a libcurl function the shim called)
// and CURLCACHE_DISABLE pass through.
bool pass_through_handle_call(Library library, const void* caller) noexcept;

// Marks, for this thread, the handle whose transfer the engine is running (a hit being
// replayed, or a miss), while the object lives; nests.
class CurrentTransfer {
  public:
    explicit CurrentTransfer(CURL* handle) noexcept;
    ~CurrentTransfer();
    CurrentTransfer(const CurrentTransfer&) = delete;
    CurrentTransfer& operator=(const CurrentTransfer&) = delete;

  private:
    CURL* m_previous;
};

// A program's callback that resets or cleans up a handle whose transfer is on its way
// through the engine (its own, whose state the engine's callbacks and replay are using)
// must not make the engine free that state: a cleanup then goes to libcurl alone, a reset
// also resets the recorded options in place. True for the handle of a CurrentTransfer of
// this thread, and, inside a real libcurl call, for a handle whose miss is running (a
// multi drives it).
bool in_use_by_engine(CURL* handle) noexcept;

// CURLCACHE_DISABLE set to 1/true/yes/on (as the config loader reads it); read once, lazily.
bool disabled() noexcept;

} // namespace curlcache::shim
