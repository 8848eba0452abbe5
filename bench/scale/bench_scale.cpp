// Scale benchmark: sqlite, filesystem and Redis caches filled with 1,000, 100,000 and
// 1,000,000 real entries (stored through the public C API, as the shim stores them: a
// realistic URL, a header block of ~450 bytes, a body of 200-800 bytes), and at each size:
//   - hit latency (curlcache_lookup of random stored URLs, median): within 1.5x of the
//     figure at the first size;
//   - sqlite: the floor under that hit, on the same file: the bare statement a hit runs
//     (`SELECT value FROM entries WHERE rowid = ? AND key = ?`, prepared once, on a
//     read-only connection of its own) for random stored keys, median, and the pages it
//     read from the file per lookup (SQLite's page-cache misses): how much of the hit's
//     ratio between sizes is SQLite's own page reads; and the same statement on a second
//     connection with a 32 MiB page cache (room for every interior page of the table at a
//     million entries), to show what a larger page cache would change;
//   - store latency (new URLs, median and p99);
//   - bytes on disk (sqlite, filesystem) or in Redis (used_memory) per entry;
//   - wall time of the real command, run as a process: `curlcache stats`, `list --json`,
//     `purge`, `vacuum`, `export --to sqlite://` (stats: <= 50 ms at any size: no scan);
// and at the largest size, stores into a full cache (max_size = its size then): store
// latency p50/p99 while every store evicts, and the cache's size afterwards (<= max_size).
//
// Filling uses several processes (each with its own handle), since a put is one
// transaction; the timed stores and hits run in this process. Redis is a private
// redis-server on a free loopback port, stopped by PID.
//
// Usage: bench_scale --cli PATH [--sizes 1000,100000] [--backends sqlite,filesystem,redis]
//                    [--workers N] [--dir DIR]
#include "backends/sqlite_connection.h" // key_rowid: the rowid a row of a key is stored under
#include "tests/redis/fixture.h"

#define CURLCACHE_NO_SHORT_HANDLE_NAME
#include <curlcache/curlcache.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <sqlite3.h>

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr size_t k_timed_stores = 2000;
constexpr size_t k_timed_hits = 2000;
constexpr int k_hit_rounds = 3;
constexpr size_t k_bare_warmup = 20000;
constexpr size_t k_evict_stores = 4000;
constexpr double k_hit_ratio_limit = 1.5;
constexpr double k_stats_limit_ms = 50;
constexpr double k_evict_p99_limit_ms = 10;
constexpr double k_evict_max_limit_ms = 250;

struct Options {
    std::string cli;
    std::vector<uint64_t> sizes{1000, 100000};
    std::vector<std::string> backends{"sqlite", "filesystem", "redis"};
    int workers = 2;
    std::string dir;
    bool keep = false; // leave the caches and the scratch folder (to profile a command on them)
};

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

double millis_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double quantile(std::vector<double> samples, double q) {
    if (samples.empty()) {
        return 0;
    }
    std::sort(samples.begin(), samples.end());
    return samples[static_cast<size_t>(q * static_cast<double>(samples.size() - 1))];
}

// Entry number n: a URL in the style of a package index, a header block and a body, all
// derived from n so that any process can make (and look up) any entry.
std::string url_of(uint64_t n) {
    static const char* const hosts[] = {"registry.npmjs.org", "files.pythonhosted.org",
                                        "repo1.maven.org", "static.crates.io",
                                        "deb.debian.org"};
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "https://%s/packages/%02" PRIx64 "/%04" PRIx64 "/pkg-%" PRIu64
                  "/-/pkg-%" PRIu64 "-%" PRIu64 ".%" PRIu64 ".%" PRIu64 ".tgz?arch=amd64",
                  hosts[n % 5], n % 251, (n * 2654435761u) & 0xffff, n, n, n % 7, n % 13,
                  n % 31);
    return buf;
}

std::string body_of(uint64_t n) {
    std::string body = "{\"name\":\"pkg-" + std::to_string(n) + "\",\"versions\":[";
    size_t target = 200 + (n * 7919) % 600;
    for (uint64_t i = 0; body.size() < target; ++i) {
        body += "\"" + std::to_string(n % 7) + "." + std::to_string(i) + ".0\",";
    }
    body += "\"x\"]}";
    return body;
}

std::string headers_of(uint64_t n, size_t body_size) {
    std::ostringstream out;
    out << "HTTP/1.1 200 OK\r\n"
        << "Date: Thu, 03 Dec 2026 12:00:00 GMT\r\n"
        << "Content-Type: application/json; charset=utf-8\r\n"
        << "Content-Length: " << body_size << "\r\n"
        << "Cache-Control: public, max-age=31536000, immutable\r\n"
        << "ETag: \"" << std::hex << (n * 0x9E3779B97F4A7C15ull) << std::dec << "\"\r\n"
        << "Last-Modified: Tue, 01 Dec 2026 08:30:00 GMT\r\n"
        << "Server: nginx/1.22.1\r\n"
        << "Vary: Accept-Encoding\r\n"
        << "Accept-Ranges: bytes\r\n"
        << "X-Request-Id: req-" << n << "-" << (n * 31) % 100003 << "\r\n"
        << "Strict-Transport-Security: max-age=63072000\r\n"
        << "Age: 0\r\n\r\n";
    return out.str();
}

using Handle = std::unique_ptr<curlcache_handle, decltype(&curlcache_close)>;

struct Target {
    std::string backend;
    std::vector<std::string> settings; // for curlcache_open
    std::vector<std::string> cli_args; // --backend ... --name ...
    std::string path;                  // sqlite file or filesystem folder ("" for redis)
};

Handle open_cache(const Target& target, uint64_t max_size = 0) {
    std::vector<std::string> settings = target.settings;
    if (max_size != 0) {
        settings.push_back("max_size=" + std::to_string(max_size));
    }
    std::vector<const char*> argv;
    for (const auto& s : settings) {
        argv.push_back(s.c_str());
    }
    argv.push_back(nullptr);
    curlcache_handle* raw = nullptr;
    auto code = curlcache_open(&raw, argv.data());
    if (code != CURLCACHE_OK) {
        std::fprintf(stderr, "bench_scale: cannot open %s: %s\n", target.backend.c_str(),
                     raw ? curlcache_errmsg(raw) : curlcache_strerror(code));
        std::exit(1);
    }
    return Handle(raw, curlcache_close);
}

bool store(curlcache_handle* cache, uint64_t n) {
    std::string url = url_of(n);
    std::string body = body_of(n);
    std::string headers = headers_of(n, body.size());
    curlcache_request* request = curlcache_request_new("GET", url.c_str());
    auto code = curlcache_store(cache, request, headers.data(), headers.size(), body.data(),
                                body.size());
    curlcache_request_free(request);
    if (code != CURLCACHE_OK) {
        std::fprintf(stderr, "bench_scale: store %" PRIu64 ": %s\n", n, curlcache_errmsg(cache));
        return false;
    }
    return true;
}

// The bare statement under a SQLite hit: its own read-only connection to the cache's file
// (default page cache, as the storage's connections have), the statement prepared once.
class BareSelect {
  public:
    // cache_kib: the page cache's size (0: SQLite's default, 2 MB).
    BareSelect(const std::string& path, int cache_kib = 0) {
        std::string pragma = "PRAGMA cache_size = -" + std::to_string(cache_kib);
        if (sqlite3_open_v2(path.c_str(), &m_db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK ||
            (cache_kib > 0 &&
             sqlite3_exec(m_db, pragma.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) ||
            sqlite3_prepare_v3(m_db, "SELECT value FROM entries WHERE rowid = ?1 AND key = ?2", -1,
                               SQLITE_PREPARE_PERSISTENT, &m_stmt, nullptr) != SQLITE_OK) {
            std::fprintf(stderr, "bench_scale: bare SELECT on %s: %s\n", path.c_str(),
                         sqlite3_errmsg(m_db));
            std::exit(1);
        }
    }
    ~BareSelect() {
        sqlite3_finalize(m_stmt);
        sqlite3_close_v2(m_db);
    }
    BareSelect(const BareSelect&) = delete;
    BareSelect& operator=(const BareSelect&) = delete;

    // One lookup of `key` (32 hex digits); false when no row came back.
    bool lookup(const std::string& key) {
        sqlite3_bind_int64(m_stmt, 1, curlcache::backends::sqlite::key_rowid(key));
        sqlite3_bind_text(m_stmt, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
        bool found = sqlite3_step(m_stmt) == SQLITE_ROW &&
                     sqlite3_column_blob(m_stmt, 0) != nullptr &&
                     sqlite3_column_bytes(m_stmt, 0) > 0;
        sqlite3_reset(m_stmt);
        return found;
    }
    // Pages read from the file since the last call (SQLite's page-cache misses).
    int64_t pages_read() {
        int current = 0, highwater = 0;
        sqlite3_db_status(m_db, SQLITE_DBSTATUS_CACHE_MISS, &current, &highwater, 1);
        return current;
    }

  private:
    sqlite3* m_db = nullptr;
    sqlite3_stmt* m_stmt = nullptr;
};

std::string key_of(curlcache_handle* cache, uint64_t n) {
    std::string url = url_of(n);
    curlcache_request* request = curlcache_request_new("GET", url.c_str());
    char hex[33] = {};
    auto code = curlcache_request_key(cache, request, hex);
    curlcache_request_free(request);
    if (code != CURLCACHE_OK) {
        std::fprintf(stderr, "bench_scale: key of %" PRIu64 ": %s\n", n, curlcache_errmsg(cache));
        std::exit(1);
    }
    return hex;
}

bool hit(curlcache_handle* cache, uint64_t n) {
    std::string url = url_of(n);
    curlcache_request* request = curlcache_request_new("GET", url.c_str());
    curlcache_entry* entry = nullptr;
    auto code = curlcache_lookup(cache, request, &entry);
    curlcache_request_free(request);
    const void* data = nullptr;
    size_t size = 0;
    bool ok = code == CURLCACHE_OK && curlcache_entry_body(entry, &data, &size) == CURLCACHE_OK &&
              size > 0;
    curlcache_entry_free(entry);
    return ok;
}

// Stores entries [from, to) with `workers` processes, each with its own handle.
void fill(const Target& target, uint64_t from, uint64_t to, int workers) {
    if (to <= from) {
        return;
    }
    std::vector<pid_t> children;
    uint64_t share = (to - from + static_cast<uint64_t>(workers) - 1) / static_cast<uint64_t>(workers);
    for (int w = 0; w < workers; ++w) {
        uint64_t begin = from + share * static_cast<uint64_t>(w);
        uint64_t end = std::min(to, begin + share);
        if (begin >= end) {
            break;
        }
        pid_t pid = fork();
        if (pid == 0) {
            Handle cache = open_cache(target);
            for (uint64_t n = begin; n < end; ++n) {
                if (!store(cache.get(), n)) {
                    _exit(1);
                }
            }
            cache.reset();
            _exit(0);
        }
        children.push_back(pid);
    }
    bool ok = true;
    for (pid_t pid : children) {
        int status = 0;
        waitpid(pid, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (!ok) {
        std::fprintf(stderr, "bench_scale: a fill process failed\n");
        std::exit(1);
    }
}

uint64_t disk_bytes(const std::string& path) {
    std::error_code ec;
    uint64_t total = 0;
    auto add = [&](const fs::path& p) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) {
            total += static_cast<uint64_t>(st.st_blocks) * 512;
        }
    };
    if (fs::is_directory(path, ec)) {
        for (auto it = fs::recursive_directory_iterator(path, ec);
             it != fs::recursive_directory_iterator(); it.increment(ec)) {
            add(it->path());
        }
        return total;
    }
    for (const char* suffix : {"", "-wal", "-shm"}) {
        add(path + suffix);
    }
    if (fs::is_directory(path + ".bodies", ec)) {
        for (auto it = fs::recursive_directory_iterator(path + ".bodies", ec);
             it != fs::recursive_directory_iterator(); it.increment(ec)) {
            add(it->path());
        }
    }
    return total;
}

uint64_t redis_used_memory(const curlcache::tests::redis::RedisServer& server) {
    std::string info = server.command({"INFO", "memory"});
    auto at = info.find("used_memory:");
    return at == std::string::npos ? 0 : std::strtoull(info.c_str() + at + 12, nullptr, 10);
}

// Peak memory (KiB) of each command over the run: list --json at a million entries.
std::map<std::string, long> g_peak_kib;

// Runs the command with `args` (stdout to /dev/null) and returns its wall time in ms, or
// a negative number when it failed.
double time_cli(const Options& options, const Target& target, std::vector<std::string> args) {
    std::vector<std::string> full{options.cli};
    full.insert(full.end(), args.begin(), args.begin() + 1);
    full.insert(full.end(), target.cli_args.begin(), target.cli_args.end());
    full.insert(full.end(), args.begin() + 1, args.end());
    auto start = Clock::now();
    pid_t pid = fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        std::vector<char*> argv;
        for (auto& a : full) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        _exit(127);
    }
    int status = 0;
    struct rusage usage {};
    wait4(pid, &status, 0, &usage);
    double ms = millis_since(start);
    g_peak_kib[args[0]] = std::max<long>(g_peak_kib[args[0]], usage.ru_maxrss);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "bench_scale: `curlcache %s` failed (status %d)\n", args[0].c_str(),
                     status);
        return -1;
    }
    return ms;
}

struct Row {
    uint64_t entries = 0;
    double fill_s = 0;
    double hit_us = 0, hit_p99_us = 0;
    double bare_us = -1, bare_pages = 0; // sqlite: the bare SELECT (-1: not measured)
    double big_us = -1, big_pages = 0;   // the same with a 32 MiB page cache
    double store_us = 0, store_p99_us = 0;
    double bytes_per_entry = 0;
    std::map<std::string, double> cli_ms;
};

struct Eviction {
    uint64_t max_size = 0, bytes_after = 0, entries_after = 0;
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
    bool ran = false;
};

uint64_t count_bytes(curlcache_handle* cache, uint64_t* entries = nullptr) {
    uint64_t n = 0, bytes = 0;
    if (curlcache_count(cache, &n, &bytes) != CURLCACHE_OK) {
        std::fprintf(stderr, "bench_scale: count: %s\n", curlcache_errmsg(cache));
        std::exit(1);
    }
    if (entries) {
        *entries = n;
    }
    return bytes;
}

const char* verdict(bool met) {
    return met ? "met" : "NOT met";
}

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_scale: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--cli") {
            options.cli = value();
        } else if (arg == "--sizes") {
            options.sizes.clear();
            for (const auto& s : split(value())) {
                options.sizes.push_back(std::strtoull(s.c_str(), nullptr, 10));
            }
        } else if (arg == "--backends") {
            options.backends = split(value());
        } else if (arg == "--workers") {
            options.workers = std::max(1, std::atoi(value().c_str()));
        } else if (arg == "--dir") {
            options.dir = value();
        } else if (arg == "--keep") {
            options.keep = true;
        } else {
            std::fprintf(stderr, "bench_scale: unknown argument %s\n", arg.c_str());
            std::exit(2);
        }
    }
    if (options.cli.empty() || options.sizes.empty()) {
        std::fprintf(stderr, "usage: bench_scale --cli PATH [--sizes 1000,100000] "
                             "[--backends sqlite,filesystem,redis] [--workers N] [--dir DIR] [--keep]\n");
        std::exit(2);
    }
    std::sort(options.sizes.begin(), options.sizes.end());
    return options;
}

} // namespace

int main(int argc, char** argv) {
    Options options = parse(argc, argv);
    std::string scratch;
    if (options.dir.empty()) {
        scratch = curlcache::tests::redis::make_scratch();
    } else {
        scratch = options.dir + "/bench-scale-" + std::to_string(getpid());
        fs::create_directories(scratch);
        for (const char* name : {"CURLCACHE_CONFIG", "CURLCACHE_BACKEND", "CURLCACHE_NAME"}) {
            unsetenv(name);
        }
    }
    ::setenv("XDG_CACHE_HOME", (scratch + "/xdg").c_str(), 1);
    ::setenv("CURLCACHE_CONFIG", "/dev/null", 1);
    std::printf("bench-scale: sizes");
    for (auto s : options.sizes) {
        std::printf(" %" PRIu64, s);
    }
    std::printf(", %d fill processes, scratch %s, load average %s\n", options.workers,
                scratch.c_str(), load_average().c_str());
    auto run_start = Clock::now();
    bool all_met = true;
    std::vector<std::string> verdicts;

    for (const auto& backend : options.backends) {
        std::unique_ptr<curlcache::tests::redis::RedisServer> server;
        Target target;
        target.backend = backend;
        if (backend == "sqlite") {
            target.path = scratch + "/cache.sqlite";
        } else if (backend == "filesystem") {
            target.path = scratch + "/fs";
        } else if (backend == "redis") {
            fs::create_directories(scratch + "/redis");
            server = std::make_unique<curlcache::tests::redis::RedisServer>(scratch + "/redis");
            ::setenv("CURLCACHE_REDIS_URL", server->url().c_str(), 1);
        } else {
            std::fprintf(stderr, "bench_scale: unknown backend %s\n", backend.c_str());
            return 2;
        }
        std::string name = target.path.empty() ? "scale" : target.path;
        target.settings = {"backend=" + backend, "name=" + name};
        target.cli_args = {"--backend", backend, "--name", name};
        uint64_t redis_base = server ? redis_used_memory(*server) : 0;

        std::vector<Row> rows;
        uint64_t have = 0;
        std::mt19937_64 random(42);
        auto backend_start = Clock::now();
        for (uint64_t size : options.sizes) {
            Row row;
            row.entries = size;
            uint64_t timed = std::min<uint64_t>(k_timed_stores, size / 2);
            auto fill_start = Clock::now();
            fill(target, have, size - timed, options.workers);
            Handle cache = open_cache(target);
            std::vector<double> stores;
            for (uint64_t n = std::max(have, size - timed); n < size; ++n) {
                auto start = Clock::now();
                if (!store(cache.get(), n)) {
                    return 1;
                }
                stores.push_back(millis_since(start) * 1000);
            }
            row.fill_s = millis_since(fill_start) / 1000;
            have = size;
            // Rounds of random hits; the round with the lowest median counts (the machine
            // is shared: a neighbour's burst should not decide a ratio).
            std::uniform_int_distribution<uint64_t> pick(0, size - 1);
            row.hit_us = -1;
            for (int round = 0; round < k_hit_rounds; ++round) {
                std::vector<double> hits;
                for (size_t i = 0; i < k_timed_hits; ++i) {
                    uint64_t n = pick(random);
                    auto start = Clock::now();
                    bool ok = hit(cache.get(), n);
                    hits.push_back(millis_since(start) * 1000);
                    if (!ok) {
                        std::fprintf(stderr, "bench_scale: %s: entry %" PRIu64 " missed\n",
                                     backend.c_str(), n);
                        return 1;
                    }
                }
                if (row.hit_us < 0 || quantile(hits, 0.5) < row.hit_us) {
                    row.hit_us = quantile(hits, 0.5);
                    row.hit_p99_us = quantile(hits, 0.99);
                }
            }
            // sqlite: rounds of the bare SELECT after the hits' (whose access times, written
            // every 1,024 distinct hits, would empty other connections' page caches), with
            // random keys of their own (the hits pick the same entries as in earlier runs).
            if (backend == "sqlite") {
                BareSelect bare(target.path), big(target.path, 32 * 1024);
                std::mt19937_64 bare_random(size);
                // Untimed lookups first, more than the timed ones of every round: a page
                // cache that can hold the table's interior pages holds them by then.
                for (size_t i = 0; i < k_bare_warmup; ++i) {
                    std::string key = key_of(cache.get(), pick(bare_random));
                    (void)bare.lookup(key);
                    (void)big.lookup(key);
                }
                // Each connection's lowest median of its rounds, and its pages per lookup.
                auto measure = [&](BareSelect& select, const std::vector<std::string>& keys,
                                   double& us, double& pages) {
                    std::vector<double> selects;
                    (void)select.pages_read();
                    for (const auto& key : keys) {
                        auto start = Clock::now();
                        bool ok = select.lookup(key);
                        selects.push_back(millis_since(start) * 1000);
                        if (!ok) {
                            std::fprintf(stderr, "bench_scale: bare SELECT of %s found nothing\n",
                                         key.c_str());
                            std::exit(1);
                        }
                    }
                    double read =
                        static_cast<double>(select.pages_read()) / static_cast<double>(keys.size());
                    if (us < 0 || quantile(selects, 0.5) < us) {
                        us = quantile(selects, 0.5);
                        pages = read;
                    }
                };
                for (int round = 0; round < k_hit_rounds; ++round) {
                    std::vector<std::string> keys;
                    for (size_t i = 0; i < k_timed_hits; ++i) {
                        keys.push_back(key_of(cache.get(), pick(bare_random)));
                    }
                    measure(bare, keys, row.bare_us, row.bare_pages);
                    measure(big, keys, row.big_us, row.big_pages);
                }
            }
            row.store_us = quantile(stores, 0.5);
            row.store_p99_us = quantile(stores, 0.99);
            uint64_t entries = 0;
            count_bytes(cache.get(), &entries);
            cache.reset(); // closed, as a finished program's cache is, before the commands
            uint64_t bytes = server ? redis_used_memory(*server) - redis_base : disk_bytes(target.path);
            row.bytes_per_entry = entries ? static_cast<double>(bytes) / static_cast<double>(entries) : 0;
            std::string export_to = "sqlite://" + scratch + "/export.sqlite?fast_save=true";
            // A process's start-up is most of `stats` on a busy machine: the median of three,
            // beside the median of three `curlcache --version` (no cache opened).
            std::vector<double> stats_ms, version_ms;
            for (int i = 0; i < 3; ++i) {
                version_ms.push_back(time_cli(options, {}, {"--version"}));
                stats_ms.push_back(time_cli(options, target, {"stats"}));
            }
            row.cli_ms["--version"] = quantile(version_ms, 0.5);
            row.cli_ms["stats"] = quantile(stats_ms, 0.5);
            row.cli_ms["list --json"] = time_cli(options, target, {"list", "--json"});
            row.cli_ms["purge"] = time_cli(options, target, {"purge"});
            row.cli_ms["vacuum"] = time_cli(options, target, {"vacuum"});
            row.cli_ms["export"] = time_cli(options, target, {"export", "--to", export_to});
            for (const char* suffix : {"", "-wal", "-shm"}) {
                fs::remove(scratch + "/export.sqlite" + suffix);
            }
            fs::remove_all(scratch + "/export.sqlite.bodies");
            rows.push_back(row);
            std::printf("  %-10s %9" PRIu64 " entries filled in %.1f s\n", backend.c_str(), size,
                        row.fill_s);
            std::fflush(stdout);
        }

        // A full cache: max_size = what it holds now; every store must evict.
        Eviction eviction;
        {
            Handle probe = open_cache(target);
            eviction.max_size = count_bytes(probe.get());
            probe.reset();
            Handle cache = open_cache(target, eviction.max_size);
            std::vector<double> stores;
            for (uint64_t n = have; n < have + k_evict_stores; ++n) {
                auto start = Clock::now();
                if (!store(cache.get(), n)) {
                    return 1;
                }
                stores.push_back(millis_since(start));
            }
            eviction.p50_ms = quantile(stores, 0.5);
            eviction.p99_ms = quantile(stores, 0.99);
            eviction.max_ms = quantile(stores, 1.0);
            eviction.bytes_after = count_bytes(cache.get(), &eviction.entries_after);
            eviction.ran = true;
        }
        double backend_s = millis_since(backend_start) / 1000;

        std::printf("\n%s (whole backend run %.0f s, load average now %s)\n", backend.c_str(),
                    backend_s, load_average().c_str());
        std::printf("  %10s %8s %9s %9s %9s %9s %8s %9s %9s %9s %9s %9s %9s\n", "entries",
                    "fill s", "hit us", "hit p99", "store us", "st p99", "B/entry", "start ms",
                    "stats ms", "list ms", "purge ms", "vacuum ms", "export ms");
        for (auto& row : rows) {
            std::printf("  %10" PRIu64 " %8.1f %9.1f %9.1f %9.1f %9.1f %8.0f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n",
                        row.entries, row.fill_s, row.hit_us, row.hit_p99_us, row.store_us,
                        row.store_p99_us, row.bytes_per_entry, row.cli_ms["--version"], row.cli_ms["stats"],
                        row.cli_ms["list --json"], row.cli_ms["purge"], row.cli_ms["vacuum"],
                        row.cli_ms["export"]);
        }
        std::printf("  full cache at %" PRIu64 " entries, max_size %" PRIu64
                    " B: %zu stores that evict: p50 %.3f ms, p99 %.3f ms, longest %.1f ms; "
                    "afterwards %" PRIu64 " B in %" PRIu64 " entries\n",
                    have, eviction.max_size, k_evict_stores, eviction.p50_ms, eviction.p99_ms,
                    eviction.max_ms, eviction.bytes_after, eviction.entries_after);

        if (rows.front().bare_us >= 0) {
            std::printf(
                "  the bare SELECT under each hit (same file, own read-only connection):\n");
            for (auto& row : rows) {
                std::printf("  %10" PRIu64 " entries: bare SELECT %.1f us (hit %.1f us: %.1f us "
                            "beyond it), %.2f pages read from the file per lookup; with a 32 MiB "
                            "page cache %.1f us, %.2f pages\n",
                            row.entries, row.bare_us, row.hit_us, row.hit_us - row.bare_us,
                            row.bare_pages, row.big_us, row.big_pages);
            }
        }

        const Row& first = rows.front();
        const Row& last = rows.back();
        char line[512];
        bool hit_met = last.hit_us <= k_hit_ratio_limit * first.hit_us;
        std::snprintf(line, sizeof line,
                      "%s: hit at %" PRIu64 " entries within %.1fx of %" PRIu64 ": %.1f / %.1f us = %.2fx -- %s",
                      backend.c_str(), last.entries, k_hit_ratio_limit, first.entries, last.hit_us,
                      first.hit_us, last.hit_us / first.hit_us, verdict(hit_met));
        verdicts.push_back(line);
        if (first.bare_us > 0 && last.bare_us > 0) {
            std::snprintf(line, sizeof line,
                          "%s: (floor) the bare SELECT at %" PRIu64 " / %" PRIu64
                          " entries: %.1f / %.1f us = %.2fx (+%.1f us of the hit's +%.1f us)",
                          backend.c_str(), last.entries, first.entries, last.bare_us, first.bare_us,
                          last.bare_us / first.bare_us, last.bare_us - first.bare_us,
                          last.hit_us - first.hit_us);
            verdicts.push_back(line);
            std::snprintf(line, sizeof line,
                          "%s: (floor) the same with a 32 MiB page cache: %.1f / %.1f us = %.2fx",
                          backend.c_str(), last.big_us, first.big_us, last.big_us / first.big_us);
            verdicts.push_back(line);
        }
        bool stats_met = last.cli_ms.at("stats") >= 0 && last.cli_ms.at("stats") <= k_stats_limit_ms;
        std::snprintf(line, sizeof line, "%s: `curlcache stats` at %" PRIu64 " entries <= %.0f ms: %.1f ms -- %s",
                      backend.c_str(), last.entries, k_stats_limit_ms, last.cli_ms.at("stats"),
                      verdict(stats_met));
        verdicts.push_back(line);
        bool bound_met = eviction.bytes_after <= eviction.max_size;
        std::snprintf(line, sizeof line,
                      "%s: size within max_size while evicting at %" PRIu64 " entries: %" PRIu64 " <= %" PRIu64 " B -- %s",
                      backend.c_str(), have, eviction.bytes_after, eviction.max_size, verdict(bound_met));
        verdicts.push_back(line);
        bool stall_met = eviction.p99_ms <= k_evict_p99_limit_ms && eviction.max_ms <= k_evict_max_limit_ms;
        std::snprintf(line, sizeof line,
                      "%s: stores that evict do not stall (p99 <= %.0f ms, longest <= %.0f ms): p99 %.2f ms, longest %.1f ms -- %s",
                      backend.c_str(), k_evict_p99_limit_ms, k_evict_max_limit_ms, eviction.p99_ms,
                      eviction.max_ms, verdict(stall_met));
        verdicts.push_back(line);
        all_met = all_met && hit_met && stats_met && bound_met && stall_met;
        std::fflush(stdout);
        if (server) {
            server->stop();
            ::unsetenv("CURLCACHE_REDIS_URL");
        }
        if (options.keep) {
            continue;
        }
        fs::remove_all(target.path.empty() ? scratch + "/redis" : target.path);
        if (backend == "sqlite") {
            fs::remove_all(target.path + ".bodies");
            for (const char* suffix : {"-wal", "-shm", ".stats"}) {
                fs::remove(target.path + suffix);
            }
        }
    }

    std::printf("\nTargets:\n");
    for (const auto& line : verdicts) {
        std::printf("  %s\n", line.c_str());
    }
    std::printf("Peak memory of the commands (largest over every backend and size):");
    for (const auto& [command, kib] : g_peak_kib) {
        std::printf(" %s %.1f MiB;", command.c_str(), static_cast<double>(kib) / 1024);
    }
    std::printf("\nbench-scale: whole run %.0f s, load average now %s\n",
                millis_since(run_start) / 1000, load_average().c_str());
    if (options.keep) {
        std::printf("bench-scale: --keep: the caches are in %s\n", scratch.c_str());
    } else {
        curlcache::tests::redis::remove_tree(scratch);
    }
    (void)all_met; // a benchmark reports; it does not fail the build
    return 0;
}
