// What every subcommand of the curlcache command shares: exit codes, error reporting, the
// global options and opening a cache through the public API (the only API the command uses).
#pragma once

#include <curlcache/curlcache.h>

#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::cli {

// Exit codes of every subcommand (`run` exits with its command's status instead).
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_runtime = 1; // the cache, a file or the backend failed
inline constexpr int k_exit_usage = 2;   // bad arguments: nothing was done

// Prints "curlcache: <message>" on stderr. Never stdout: that belongs to the data.
void print_error(std::string_view message);
// print_error() and the runtime / usage exit code, for `return runtime_error(...)`.
int runtime_error(std::string_view message);
int usage_error(std::string_view message, std::string_view command);

// --config F, --backend B, --name N: accepted by every subcommand, passed to curlcache_open.
struct Global {
    std::optional<std::string> config;
    std::optional<std::string> backend;
    std::optional<std::string> name;
};

// The "key=value" settings curlcache_open() takes for these options.
std::vector<std::string> open_settings(const Global& global);
// The same for a command that only reads (stats, list, show, export): mode "readonly", so
// that a cache the user may only read opens without a warning and nothing is created.
std::vector<std::string> read_settings(const Global& global);

struct CacheCloser {
    void operator()(curlcache_handle* cache) const { curlcache_close(cache); }
};
using CachePtr = std::unique_ptr<curlcache_handle, CacheCloser>;

struct EntryFree {
    void operator()(curlcache_entry* entry) const { curlcache_entry_free(entry); }
};
using EntryPtr = std::unique_ptr<curlcache_entry, EntryFree>;

struct RequestFree {
    void operator()(curlcache_request* request) const { curlcache_request_free(request); }
};
using RequestPtr = std::unique_ptr<curlcache_request, RequestFree>;

// Why a cache did not open: a one-line message without the "curlcache: " prefix, and
// whether the settings themselves were wrong (a bad option value or config file: exit 2).
struct OpenFailure {
    std::string message;
    bool bad_settings = false;
    bool missing = false; // "no cache at PATH": the cache does not exist
};
std::expected<CachePtr, OpenFailure> open_cache(const std::vector<std::string>& settings);
// For a command that only inspects (stats, list, show, export): opens with read_settings(),
// which creates nothing, and fails with "no cache at PATH" when the cache does not exist
// (curlcache_exists: an empty Redis namespace or plugin store is not missing).
std::expected<CachePtr, OpenFailure> open_existing_cache(const Global& global);
// For a command that changes a cache (delete, clear, purge, vacuum, stats --zero): opens it
// to write only when it exists, so that none of them creates one; fails with `missing` set
// (and "no cache at PATH") otherwise.
std::expected<CachePtr, OpenFailure> open_existing_cache_to_change(const Global& global);
// Prints the failure; returns k_exit_usage for bad settings, k_exit_runtime otherwise.
int report(const OpenFailure& failure);
// As report(), but a missing cache is nothing to `verb` (clear, purge, vacuum, zero): said on
// stdout, exit 0, so that a script resetting a cache before its first use does not fail.
int report_or_nothing_to(const OpenFailure& failure, std::string_view verb);

// "what: <detailed message or strerror>" for a failed call on `cache`.
std::string api_message(const curlcache_handle* cache, curlcache_code code, std::string_view what);

// A NULL-terminated argv-style view of strings, for the C API's `settings` arguments.
class CStrings {
  public:
    explicit CStrings(const std::vector<std::string>& strings);
    const char* const* get() const { return m_pointers.data(); }

  private:
    std::vector<const char*> m_pointers;
};

// Subcommands. `args` are the words after the subcommand's name.
using Args = std::span<char* const>;
int cmd_run(Args args);
int cmd_stats(Args args);
int cmd_list(Args args);
int cmd_show(Args args);
int cmd_delete(Args args);
int cmd_clear(Args args);
int cmd_purge(Args args);
int cmd_vacuum(Args args);
int cmd_export(Args args);
int cmd_import(Args args);
int cmd_config(Args args);
// -M SIZE / --max-size SIZE: sets max_size in the user's config file.
int set_max_size(const Global& global, std::string_view size);

} // namespace curlcache::cli
