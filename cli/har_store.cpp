// `curlcache import --har FILE`: the two passes of har.h over a file, storing through the
// public API.
#include "cli/cli.h"
#include "cli/format.h"
#include "cli/har.h"
#include "cli/json.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <sys/stat.h>

namespace curlcache::cli {
namespace {

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// A pipe (stdin, <(...), a FIFO) copied into an anonymous temp file, so that it can be
// read twice.
std::expected<FilePtr, std::string> spool(std::FILE* in) {
    FilePtr spooled(std::tmpfile());
    if (!spooled) {
        return std::unexpected(std::string("cannot make a temp file for the HAR: ") +
                               std::strerror(errno));
    }
    char buffer[64 * 1024];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, in)) > 0) {
        if (std::fwrite(buffer, 1, got, spooled.get()) != got) {
            return std::unexpected(std::string("cannot spool the HAR: ") + std::strerror(errno));
        }
    }
    if (std::ferror(in) || std::fflush(spooled.get()) != 0) {
        return std::unexpected(std::string("read error"));
    }
    return spooled;
}

// The curl command follows at most 50 redirects (--max-redirs), libcurl without a limit
// (-1): both ask with CURLOPT_MAXREDIRS in the key, so a chain is stored for each.
constexpr const char* k_max_redirs[] = {"50", "-1"};

class Importer {
  public:
    explicit Importer(curlcache_handle* cache) : m_cache(cache) {}

    // Stores one response; false (and error()) on a failure that stops the import.
    bool store(const HarItem& item) {
        if (!put(item, item.url, item.headers, nullptr)) {
            return false;
        }
        for (const HarChain& chain : item.chains) {
            std::string blocks = chain.hops + item.headers;
            for (const char* max_redirs : k_max_redirs) {
                if (!put(item, chain.url, blocks, max_redirs)) {
                    return false;
                }
            }
        }
        return true;
    }

    uint64_t stored() const { return m_stored; }
    uint64_t chains() const { return m_chains; }
    uint64_t refused() const { return m_refused; }
    const std::string& error() const { return m_error; }

  private:
    bool put(const HarItem& item, const std::string& url, const std::string& headers,
             const char* max_redirs) {
        RequestPtr request(curlcache_request_new(item.method.c_str(), url.c_str()));
        if (!request) {
            m_error = "out of memory";
            return false;
        }
        for (const auto& header : item.request_headers) {
            curlcache_request_add_header(request.get(), header.c_str());
        }
        if (item.has_request_body) {
            curlcache_request_set_body(request.get(), item.request_body.data(),
                                       item.request_body.size());
        }
        if (max_redirs != nullptr) {
            curlcache_request_set_option(request.get(), "follow_location", "1");
            curlcache_request_set_option(request.get(), "max_redirs", max_redirs);
        }
        curlcache_code code =
            item.key.empty() || max_redirs != nullptr
                ? curlcache_store(m_cache, request.get(), headers.data(), headers.size(),
                                  item.body.data(), item.body.size())
                : curlcache_store_with_key(m_cache, item.key.c_str(), request.get(),
                                           headers.data(), headers.size(), item.body.data(),
                                           item.body.size());
        if (code == CURLCACHE_E_NOT_CACHEABLE || code == CURLCACHE_E_TOO_LARGE) {
            m_refused += max_redirs == nullptr || max_redirs == k_max_redirs[0];
            return true;
        }
        if (code != CURLCACHE_OK) {
            m_error = api_message(m_cache, code,
                                  "cannot store " + url + " (" + format_count(m_stored) +
                                      " entries stored)");
            return false;
        }
        if (max_redirs == nullptr) {
            ++m_stored;
        } else if (max_redirs == k_max_redirs[0]) {
            ++m_chains;
        }
        return true;
    }

    curlcache_handle* m_cache;
    uint64_t m_stored = 0;
    uint64_t m_chains = 0;
    uint64_t m_refused = 0;
    std::string m_error;
};

} // namespace

int import_har(const Global& global, const std::string& path) {
    FilePtr file;
    if (path != "-") {
        file.reset(std::fopen(path.c_str(), "rb"));
        if (!file) {
            return runtime_error(path + ": " + std::strerror(errno));
        }
    }
    // Read twice: a regular file from where it starts (stdin may be one, positioned), a
    // pipe from a copy.
    std::FILE* source = file ? file.get() : stdin;
    struct stat st {};
    if (fstat(fileno(source), &st) != 0 || !S_ISREG(st.st_mode)) {
        auto spooled = spool(source);
        if (!spooled) {
            return runtime_error(path + ": " + spooled.error());
        }
        file = std::move(*spooled);
        source = file.get();
        std::rewind(source);
    }
    const long start = std::ftell(source);
    JsonReader first(source);
    auto plan = check_har(first);
    if (!plan) {
        return runtime_error(path + ": " + plan.error());
    }
    if (std::ferror(source)) {
        return runtime_error(path + ": read error");
    }
    auto cache = open_cache(open_settings(global));
    if (!cache) {
        return report(cache.error());
    }
    std::fseek(source, start, SEEK_SET);
    JsonReader second(source);
    Importer importer(cache->get());
    auto read = read_har_items(second, *plan,
                               [&](const HarItem& item) { return importer.store(item); });
    if (!importer.error().empty()) {
        return runtime_error(importer.error());
    }
    if (!read) {
        return runtime_error(path + ": " + read.error());
    }
    std::string line = count_of(importer.stored(), "entry", "entries");
    if (importer.chains() > 0) {
        line += " and " + count_of(importer.chains(), "redirect chain", "redirect chains");
    }
    line += " imported from " + path;
    const uint64_t skipped = importer.refused() + plan->skipped + plan->not_http;
    if (skipped > 0) {
        line += " (" + format_count(skipped) + " skipped: " + format_count(importer.refused()) +
                " refused by the cache's policy, " + format_count(plan->skipped) +
                " without a saved response";
        if (plan->not_http > 0) {
            line += ", " + format_count(plan->not_http) + " not HTTP";
        }
        line += ")";
    }
    std::printf("%s\n", line.c_str());
    return k_exit_ok;
}

} // namespace curlcache::cli
