// Checks that the tests of every remote backend plugin run against their own server
// (test_postgres_storage, test_mongodb_storage): the server is paused and resumed through
// the callbacks. They fail the calling cmocka test.
#pragma once

#include "backends/storage.h"
#include "config/settings.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace curlcache::tests {

// The backend settings.backend.front() names, opened; fails the test when it cannot be.
std::unique_ptr<backends::Storage> open_or_fail(const config::Settings& settings);

// Stores `text` under `key` (test_meta); fails the test on an error.
void put_text(backends::Storage& storage, const std::string& key, std::string_view text,
              int64_t expires = 0);

// Milliseconds since `since` (redis::now_ms()).
int64_t elapsed_ms(int64_t since);

// Sets `key` of the table of the plugin settings.backend.front() names.
void set_plugin_option(config::Settings& settings, const std::string& key, const std::string& value);

// A value is stored, the server hangs: the get fails as a timeout in 250 ms .. 2 s.
// `settings` carry an operation timeout of about 300 ms.
void check_a_hung_server_times_out(const config::Settings& settings, const std::function<void()>& pause,
                                   const std::function<void()>& resume);

// With the server hung, an open times out (`settings` carry a connect timeout of about
// 300 ms) and the next open passes through at once, naming the shared back-off
// (backends/backoff.h).
void check_an_open_that_times_out_backs_off(const config::Settings& settings,
                                            const std::function<void()>& pause,
                                            const std::function<void()>& resume);

// Streamed reads (backend ABI 1.1) of a `size`-byte value (> 4 MiB: chunked by every
// plugin) that is itself streamed in 1 MiB pieces, so the test never holds it whole: read in
// ranges across chunk boundaries it equals the value; read whole in 1 MiB ranges, the
// process's peak memory (VmHWM) grows by less than size / 2 (not checked under ASan, whose
// quarantine keeps what is freed); opened, then replaced or removed, a read of its tail fails.
void check_streamed_reads(backends::Storage& storage, const std::string& key, size_t size);

} // namespace curlcache::tests
