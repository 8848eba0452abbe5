// bench_storage: get and put latency (median, p90, p99) of every curlcache storage backend
// for 1 KiB, 100 KiB and 1 MiB values, and of python3-requests-cache's SQLite backend
// measured in the same run (requests_cache_bench.py), printed as one table.
//
//   bench_storage [--python /usr/bin/python3 --script requests_cache_bench.py] [--quick]
//   bench_storage --body-files     only the sqlite inline-vs-body-file comparison
//
// Each backend gets a fresh cache in a scratch folder under $TMPDIR. Puts write distinct
// keys; gets then read random stored keys (all hits). Times are per call, in µs.
#include "backends/registry.h"
#include "backends/sqlite_storage.h"
#include "backends/storage.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace curlcache;

struct Stats {
    double median = 0, p90 = 0, p99 = 0;
};

struct Row {
    std::string backend;
    size_t size = 0;
    Stats get, put;
};

Stats summarise(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    auto at = [&](double q) {
        return samples[std::min(samples.size() - 1, static_cast<size_t>(q * samples.size()))];
    };
    return Stats{at(0.5), at(0.9), at(0.99)};
}

struct Size {
    size_t bytes;
    int puts;
    const char* label;
};

std::string key_of(int i) {
    char key[33];
    std::snprintf(key, sizeof key, "%08x%024x", static_cast<unsigned>(i * 2654435761u), i);
    return key;
}

std::optional<Row> measure(const std::string& label, const std::string& backend,
                           config::Settings settings, const Size& size) {
    auto opened = backends::open(backend, settings);
    if (!opened) {
        std::fprintf(stderr, "bench_storage: %s: %s\n", label.c_str(),
                     opened.error().message.c_str());
        return std::nullopt;
    }
    auto& storage = **opened;
    std::string value(size.bytes, '\0');
    std::mt19937_64 rng(42);
    for (auto& c : value) {
        c = static_cast<char>(rng());
    }
    std::string_view piece(value);
    using Clock = std::chrono::steady_clock;
    auto micros = [](Clock::duration d) {
        return std::chrono::duration<double, std::micro>(d).count();
    };

    std::vector<double> puts, gets;
    for (int i = 0; i < size.puts; ++i) {
        backends::Metadata meta{
            key_of(i), "GET", "http://origin.test/" + std::to_string(i), 200, 1700000000, 0, 0};
        auto start = Clock::now();
        auto done = storage.put(meta, std::span(&piece, 1));
        puts.push_back(micros(Clock::now() - start));
        if (!done) {
            std::fprintf(stderr, "bench_storage: %s put: %s\n", label.c_str(),
                         done.error().message.c_str());
            return std::nullopt;
        }
    }
    std::uniform_int_distribution<int> pick(0, size.puts - 1);
    for (int i = 0; i < size.puts * 3; ++i) {
        std::string key = key_of(pick(rng));
        auto start = Clock::now();
        auto got = storage.get(key);
        gets.push_back(micros(Clock::now() - start));
        if (!got || !*got || (*got->value()).size() != size.bytes) {
            std::fprintf(stderr, "bench_storage: %s get failed or missed\n", label.c_str());
            return std::nullopt;
        }
    }
    return Row{label, size.bytes, summarise(gets), summarise(puts)};
}

// Hits per second for 1 KiB sqlite gets from `threads` threads. Strategies: 0 = one
// connection behind a mutex (the storage is only ever entered by one thread, so it never
// opens a second connection), 1 = one storage shared by all threads (curlcache's pool),
// 2 = a storage (and so a connection) per thread.
double threaded_gets_per_second(const std::string& path, int threads, int strategy) {
    config::Settings settings;
    settings.name = path;
    std::vector<std::unique_ptr<backends::Storage>> storages;
    for (int t = 0; t < (strategy == 2 ? threads : 1); ++t) {
        auto opened = backends::open("sqlite", settings);
        if (!opened) {
            return 0;
        }
        storages.push_back(std::move(*opened));
    }
    std::mutex one_at_a_time;
    std::atomic<uint64_t> total{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        backends::Storage& storage = *storages[strategy == 2 ? t : 0];
        workers.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            uint64_t done = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                std::string key = key_of(static_cast<int>(rng() % 1000));
                std::unique_lock lock(one_at_a_time, std::defer_lock);
                if (strategy == 0) {
                    lock.lock();
                }
                auto got = storage.get(key);
                done += got && *got ? 1 : 0;
            }
            total += done;
        });
    }
    auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(500)); // a fixed measuring window
    stop = true;
    for (auto& worker : workers) {
        worker.join();
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return static_cast<double>(total.load()) / seconds;
}

void print_connection_comparison(const std::string& scratch) {
    config::Settings settings;
    settings.name = scratch + "/threads.sqlite";
    {
        auto opened = backends::open("sqlite", settings);
        if (!opened) {
            return;
        }
        std::string value(1024, 'v');
        std::string_view piece(value);
        for (int i = 0; i < 1000; ++i) {
            backends::Metadata meta{key_of(i), "GET", "http://origin.test/", 200, 1700000000, 0, 0};
            (void)(*opened)->put(meta, std::span(&piece, 1));
        }
    }
    std::printf("\nsqlite 1 KiB hits per second from several threads (connection strategy):\n");
    for (int threads : {1, 2, 4}) {
        double single = threaded_gets_per_second(settings.name, threads, 0);
        double pooled = threaded_gets_per_second(settings.name, threads, 1);
        double own = threaded_gets_per_second(settings.name, threads, 2);
        std::printf("  %d thread(s): one connection + mutex %9.0f/s | curlcache pool %9.0f/s | "
                    "storage per thread %9.0f/s\n",
                    threads, single, pooled, own);
    }
}

// SQLite values inline (in the database, through the WAL) against body files beside it,
// for put(), a streamed put (begin_put + 16 KiB appends, as the engine does during a
// transfer) and get(): the figures behind k_sqlite_body_file_threshold. Mean as well as
// median, because the WAL's checkpoints land on a few puts only but cost every one of them.
void print_body_file_comparison(const std::string& scratch) {
    struct Case {
        size_t bytes;
        int count;
        const char* label;
    };
    const Case cases[] = {{16 * 1024, 300, "16 KiB"},      {64 * 1024, 200, "64 KiB"},
                          {100 * 1024, 200, "100 KiB"},    {128 * 1024, 200, "128 KiB"},
                          {256 * 1024, 100, "256 KiB"},    {1024 * 1024, 40, "1 MiB"},
                          {10 * 1024 * 1024, 10, "10 MiB"}};
    using Clock = std::chrono::steady_clock;
    auto micros = [](Clock::duration d) {
        return std::chrono::duration<double, std::micro>(d).count();
    };
    std::printf("\nsqlite: value inline in the database vs in a body file, µs per call "
                "(median / mean)\n");
    std::printf("%-8s %-7s | %9s %9s | %9s %9s | %9s %9s\n", "value", "where", "put med", "mean",
                "stream", "mean", "get med", "mean");
    for (const auto& c : cases) {
        std::string value(c.bytes, '\0');
        std::mt19937_64 rng(7);
        for (auto& ch : value) {
            ch = static_cast<char>(rng());
        }
        std::string_view view(value);
        for (bool files : {false, true}) {
            config::Settings settings;
            settings.name = scratch + "/bodies-" + std::to_string(c.bytes) +
                            (files ? "-file" : "-inline") + ".sqlite";
            auto opened = backends::open_sqlite(settings, files ? 0 : UINT64_MAX);
            if (!opened) {
                std::fprintf(stderr, "bench_storage: %s\n", opened.error().message.c_str());
                return;
            }
            auto& storage = **opened;
            std::vector<double> puts, streams, gets;
            for (int i = 0; i < 2 * c.count; ++i) {
                bool streamed = i % 2 == 1;
                backends::Metadata meta{key_of(i), "GET", "http://origin.test/", 200, 1700000000,
                                        0,         0};
                const std::string_view pieces[] = {view.substr(0, 300), view.substr(300)};
                auto start = Clock::now();
                bool ok = false;
                if (streamed) {
                    auto stream = storage.begin_put(c.bytes - 300);
                    ok = stream.has_value();
                    for (size_t at = 300; ok && at < c.bytes; at += 16384) {
                        ok = (*stream)->append(view.substr(at, 16384)).has_value();
                    }
                    ok = ok && (*stream)->commit(meta, pieces[0]).has_value();
                } else {
                    ok = storage.put(meta, pieces).has_value();
                }
                (streamed ? streams : puts).push_back(micros(Clock::now() - start));
                if (!ok) {
                    std::fprintf(stderr, "bench_storage: body-file put failed\n");
                    return;
                }
            }
            std::uniform_int_distribution<int> pick(0, 2 * c.count - 1);
            for (int i = 0; i < 2 * c.count; ++i) {
                auto start = Clock::now();
                auto got = storage.get(key_of(pick(rng)));
                gets.push_back(micros(Clock::now() - start));
                if (!got || !*got || (*got->value()).size() != c.bytes) {
                    std::fprintf(stderr, "bench_storage: body-file get failed\n");
                    return;
                }
            }
            auto mean = [](const std::vector<double>& v) {
                double sum = 0;
                for (double x : v) {
                    sum += x;
                }
                return sum / static_cast<double>(v.size());
            };
            std::printf("%-8s %-7s | %9.1f %9.1f | %9.1f %9.1f | %9.1f %9.1f\n", c.label,
                        files ? "file" : "inline", summarise(puts).median, mean(puts),
                        summarise(streams).median, mean(streams), summarise(gets).median,
                        mean(gets));
        }
    }
}

// Runs the Python side and parses its "name size op median p90 p99" lines.
std::vector<Row> run_python(const std::string& python, const std::string& script,
                            const std::vector<Size>& sizes) {
    std::string list, counts;
    for (const auto& size : sizes) {
        list += (list.empty() ? "" : ",") + std::to_string(size.bytes);
        // requests-cache commits with a full fsync per put (~15 ms here): fewer samples.
        counts += (counts.empty() ? "" : ",") + std::to_string(std::max(10, size.puts / 20));
    }
    std::string command = "'" + python + "' '" + script + "' " + list + " " + counts;
    std::map<std::pair<std::string, size_t>, Row> rows;
    std::vector<std::pair<std::string, size_t>> order;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) {
        std::fprintf(stderr, "bench_storage: cannot run %s\n", command.c_str());
        return {};
    }
    char line[512];
    while (std::fgets(line, sizeof line, pipe)) {
        char name[128], op[8];
        size_t bytes = 0;
        Stats stats;
        if (std::sscanf(line, "%127[^\t]\t%zu\t%7s\t%lf\t%lf\t%lf", name, &bytes, op, &stats.median,
                        &stats.p90, &stats.p99) != 6) {
            continue;
        }
        auto id = std::pair{std::string(name), bytes};
        if (!rows.count(id)) {
            order.push_back(id);
            rows[id] = Row{name, bytes, {}, {}};
        }
        (std::strcmp(op, "get") == 0 ? rows[id].get : rows[id].put) = stats;
    }
    if (::pclose(pipe) != 0) {
        std::fprintf(stderr, "bench_storage: %s failed\n", command.c_str());
    }
    std::vector<Row> result;
    for (const auto& id : order) {
        result.push_back(rows[id]);
    }
    return result;
}

} // namespace

int main(int argc, char** argv) {
    std::string python, script;
    bool quick = false;
    bool body_files_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--python" && i + 1 < argc) {
            python = argv[++i];
        } else if (arg == "--script" && i + 1 < argc) {
            script = argv[++i];
        } else if (arg == "--quick") {
            quick = true;
        } else if (arg == "--body-files") {
            body_files_only = true;
        } else {
            std::fprintf(stderr, "usage: bench_storage [--python PATH --script PATH] [--quick] "
                                 "[--body-files]\n");
            return 2;
        }
    }
    int scale = quick ? 4 : 1;
    std::vector<Size> sizes = {{1024, 4000 / scale, "1 KiB"},
                               {100 * 1024, 600 / scale, "100 KiB"},
                               {1024 * 1024, 100 / scale, "1 MiB"}};

    const char* tmp = std::getenv("TMPDIR");
    std::string scratch = std::string(tmp && *tmp ? tmp : "/tmp") + "/curlcache-bench-XXXXXX";
    if (!::mkdtemp(scratch.data())) {
        std::perror("bench_storage: mkdtemp");
        return 1;
    }
    if (body_files_only) {
        print_body_file_comparison(scratch);
        std::error_code ignored;
        std::filesystem::remove_all(scratch, ignored);
        return 0;
    }

    std::vector<Row> rows;
    for (const auto& size : sizes) {
        std::string tag = std::to_string(size.bytes);
        config::Settings sqlite;
        sqlite.name = scratch + "/sqlite-" + tag + ".sqlite";
        config::Settings fast = sqlite;
        fast.name = scratch + "/fast-" + tag + ".sqlite";
        fast.sqlite_fast_save = true;
        config::Settings files;
        files.name = scratch + "/files-" + tag;
        for (auto& [label, backend, settings] :
             std::vector<std::tuple<std::string, std::string, config::Settings>>{
                 {"curlcache sqlite", "sqlite", sqlite},
                 {"curlcache sqlite fast_save", "sqlite", fast},
                 {"curlcache filesystem", "filesystem", files},
                 {"curlcache memory", "memory", config::Settings{}}}) {
            if (auto row = measure(label, backend, settings, size)) {
                rows.push_back(*row);
            }
        }
    }
    if (!python.empty() && !script.empty()) {
        auto theirs = run_python(python, script, sizes);
        rows.insert(rows.end(), theirs.begin(), theirs.end());
    }

    std::printf(
        "Storage latency per call, µs (median / p90 / p99); puts write new keys, gets are hits.\n");
    std::printf("%-30s %8s | %9s %9s %9s | %9s %9s %9s | %s\n", "backend", "value", "get med",
                "p90", "p99", "put med", "p90", "p99", "get/put vs curlcache sqlite");
    for (const auto& size : sizes) {
        const Row* ours = nullptr;
        for (const auto& row : rows) {
            if (row.size == size.bytes && row.backend == "curlcache sqlite") {
                ours = &row;
            }
        }
        for (const auto& row : rows) {
            if (row.size != size.bytes) {
                continue;
            }
            char ratio[64] = "";
            if (ours && &row != ours && ours->get.median > 0 && ours->put.median > 0) {
                std::snprintf(ratio, sizeof ratio, "%.2fx / %.2fx",
                              row.get.median / ours->get.median, row.put.median / ours->put.median);
            }
            std::printf("%-30s %8s | %9.2f %9.2f %9.2f | %9.2f %9.2f %9.2f | %s\n",
                        row.backend.c_str(), size.label, row.get.median, row.get.p90, row.get.p99,
                        row.put.median, row.put.p90, row.put.p99, ratio);
        }
    }
    if (!quick) {
        print_connection_comparison(scratch);
        print_body_file_comparison(scratch);
    }
    std::error_code ignored;
    std::filesystem::remove_all(scratch, ignored);
    return 0;
}
