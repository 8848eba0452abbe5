// Redis backend benchmark, measured side by side in one run against a private
// redis-server on a free loopback port:
//   1. get latency (median, p90, p99) of the backend for 1 KiB, 100 KiB and 1 MiB values
//      beside a bare hiredis GET of the same key (target: backend within 1.5x), and the
//      median of open_value (what a hit through the core does: values up to the core's
//      4 MiB stream threshold come back whole);
//   2. put latency of the backend for the same sizes;
//   3. a miss: the lookup of a key not stored beside a bare GET of it, and a streamed store;
//   4. throughput of 8 processes hitting one Redis cache (1 KiB gets), beside 8 processes
//      doing bare hiredis GETs.
// Usage: bench_redis [seconds per throughput run, default 2]
#include "backends/redis_storage.h"
#include "tests/redis/fixture.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace curlcache;
using Clock = std::chrono::steady_clock;

namespace {

struct Percentiles {
    double median = 0, p90 = 0, p99 = 0;
};

Percentiles percentiles(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    auto at = [&](double q) { return samples[static_cast<size_t>(q * (samples.size() - 1))]; };
    return {at(0.5), at(0.9), at(0.99)};
}

double micros_since(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

std::unique_ptr<backends::Storage> open_backend(const tests::redis::RedisServer& server) {
    auto opened = backends::open_redis(tests::redis::redis_settings(server, "bench"));
    if (!opened) {
        std::fprintf(stderr, "bench_redis: %s\n", opened.error().message.c_str());
        std::exit(1);
    }
    return std::move(*opened);
}

redisContext* bare_connect(const tests::redis::RedisServer& server) {
    redisContext* context = redisConnect("127.0.0.1", server.port());
    if (context == nullptr || context->err != 0) {
        std::fprintf(stderr, "bench_redis: cannot connect\n");
        std::exit(1);
    }
    return context;
}

bool bare_get(redisContext* context, const std::string& key, size_t expected) {
    const char* argv[] = {"GET", key.c_str()};
    size_t lengths[] = {3, key.size()};
    auto* reply = static_cast<redisReply*>(redisCommandArgv(context, 2, argv, lengths));
    bool ok = reply != nullptr && reply->type == REDIS_REPLY_STRING && reply->len == expected;
    freeReplyObject(reply);
    return ok;
}

backends::Metadata meta_for(const std::string& key) {
    backends::Metadata meta;
    meta.key = key;
    meta.method = "GET";
    meta.url = "https://example.com/" + key;
    meta.status = 200;
    return meta;
}

void latency(const tests::redis::RedisServer& server, size_t size, int iterations) {
    auto storage = open_backend(server);
    redisContext* bare = bare_connect(server);
    std::string key = "size" + std::to_string(size);
    std::string bare_key = "bench:e:" + key;
    std::string value(size, 'v');
    std::string_view pieces[] = {value};
    std::vector<double> put_samples, get_samples, bare_samples, open_samples;
    for (int i = 0; i < iterations / 4 + 1; ++i) {
        auto start = Clock::now();
        if (!storage->put(meta_for(key), pieces)) {
            std::fprintf(stderr, "bench_redis: put failed\n");
            std::exit(1);
        }
        put_samples.push_back(micros_since(start));
    }
    // Alternate backend and bare reads one by one so both see the same machine state.
    for (int i = 0; i < iterations; ++i) {
        auto start = Clock::now();
        auto got = storage->get(key);
        if (!got || !*got || (**got)->size() != size) {
            std::fprintf(stderr, "bench_redis: get failed\n");
            std::exit(1);
        }
        get_samples.push_back(micros_since(start));
        start = Clock::now();
        if (!bare_get(bare, bare_key, size)) {
            std::fprintf(stderr, "bench_redis: bare GET failed\n");
            std::exit(1);
        }
        bare_samples.push_back(micros_since(start));
        start = Clock::now();
        auto opened = storage->open_value(key, uint64_t{4} << 20);
        if (!opened || !*opened || !(*opened)->whole || (*opened)->whole->size() != size) {
            std::fprintf(stderr, "bench_redis: open_value failed\n");
            std::exit(1);
        }
        open_samples.push_back(micros_since(start));
    }
    redisFree(bare);
    Percentiles get = percentiles(get_samples), raw = percentiles(bare_samples),
                put = percentiles(put_samples), open = percentiles(open_samples);
    std::printf("%-8s %9.1f %9.1f %9.1f | %9.1f %9.1f %9.1f | %6.2fx | %9.1f %9.1f | %9.1f\n",
                size >= (1u << 20) ? "1 MiB" : size >= 100 * 1024 ? "100 KiB" : "1 KiB",
                get.median, get.p90, get.p99, raw.median, raw.p90, raw.p99,
                get.median / raw.median, put.median, put.p90, open.median);
}

// What a miss costs the backend: its lookup (open_value of a key that is not stored, as the
// core's lookup does, beside a bare GET of that key: one round trip), and storing a 3 MiB
// body streamed in 64 KiB appends (begin_put, append, commit: what a large miss does).
void misses(const tests::redis::RedisServer& server, int iterations) {
    auto storage = open_backend(server);
    redisContext* bare = bare_connect(server);
    std::vector<double> miss_samples, bare_samples, stream_samples;
    for (int i = 0; i < iterations; ++i) {
        std::string key = "absent" + std::to_string(i);
        auto start = Clock::now();
        auto opened = storage->open_value(key, uint64_t{4} << 20);
        if (!opened || *opened) {
            std::fprintf(stderr, "bench_redis: open_value of a missing key failed\n");
            std::exit(1);
        }
        miss_samples.push_back(micros_since(start));
        const std::string bare_key = "bench:e:" + key;
        const char* argv[] = {"GET", bare_key.c_str()};
        size_t lengths[] = {3, bare_key.size()};
        start = Clock::now();
        auto* reply = static_cast<redisReply*>(redisCommandArgv(bare, 2, argv, lengths));
        bool nil = reply != nullptr && reply->type == REDIS_REPLY_NIL;
        freeReplyObject(reply);
        if (!nil) {
            std::fprintf(stderr, "bench_redis: bare GET of a missing key failed\n");
            std::exit(1);
        }
        bare_samples.push_back(micros_since(start));
    }
    redisFree(bare);
    const std::string body(3u << 20, 's');
    constexpr size_t k_append = 64 * 1024;
    for (int i = 0; i < iterations / 50 + 1; ++i) {
        auto start = Clock::now();
        auto stream = storage->begin_put(body.size());
        bool ok = stream.has_value();
        for (size_t at = 0; ok && at < body.size(); at += k_append) {
            ok = (*stream)->append(std::string_view(body).substr(at, k_append)).has_value();
        }
        ok = ok && (*stream)->commit(meta_for("streamed"), "head").has_value();
        if (!ok) {
            std::fprintf(stderr, "bench_redis: streamed store failed\n");
            std::exit(1);
        }
        stream_samples.push_back(micros_since(start));
    }
    Percentiles miss = percentiles(miss_samples), raw = percentiles(bare_samples),
                streamed = percentiles(stream_samples);
    std::printf("\nmiss (open_value of a missing key) p50 %.1f p90 %.1f us, bare GET of it p50 "
                "%.1f p90 %.1f us (%.2fx); streamed store of 3 MiB p50 %.0f p90 %.0f us\n",
                miss.median, miss.p90, raw.median, raw.p90, miss.median / raw.median,
                streamed.median, streamed.p90);
}

// Runs `work` in `count` processes for `seconds`; returns total operations per second.
double throughput(int count, double seconds, const std::function<long(Clock::time_point)>& work) {
    std::vector<pid_t> children;
    std::vector<int> pipes;
    auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(seconds + 0.2));
    for (int i = 0; i < count; ++i) {
        int out[2];
        if (pipe(out) != 0) {
            std::exit(1);
        }
        pid_t child = fork();
        if (child == 0) {
            close(out[0]);
            long done = work(until);
            (void)!write(out[1], &done, sizeof done);
            _exit(0);
        }
        close(out[1]);
        children.push_back(child);
        pipes.push_back(out[0]);
    }
    long total = 0;
    for (size_t i = 0; i < children.size(); ++i) {
        long done = 0;
        if (read(pipes[i], &done, sizeof done) == sizeof done) {
            total += done;
        }
        close(pipes[i]);
        waitpid(children[i], nullptr, 0);
    }
    return static_cast<double>(total) / seconds;
}

} // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
    std::string scratch = tests::redis::make_scratch();
    {
        tests::redis::RedisServer server(scratch);
        std::printf("Redis backend get vs bare hiredis GET (microseconds), redis-server on "
                    "127.0.0.1, one connection each\n");
        std::printf("%-8s %9s %9s %9s | %9s %9s %9s | %7s | %9s %9s | %9s\n", "value", "get p50",
                    "p90", "p99", "bare p50", "p90", "p99", "ratio", "put p50", "p90", "open p50");
        latency(server, 1024, 5000);
        latency(server, 100 * 1024, 2000);
        latency(server, 1u << 20, 400);
        misses(server, 2000);

        // Throughput: each process warms up 0.2 s, then counts gets for `seconds`.
        {
            auto storage = open_backend(server);
            std::string value(1024, 't');
            std::string_view pieces[] = {value};
            for (int k = 0; k < 100; ++k) {
                (void)storage->put(meta_for("tp" + std::to_string(k)), pieces);
            }
        }
        auto counted = [&](Clock::time_point until, const std::function<bool(int)>& one) {
            auto start_counting = until - std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(seconds));
            long done = 0;
            for (int i = 0; Clock::now() < until; ++i) {
                if (!one(i % 100)) {
                    return -1L;
                }
                done += Clock::now() >= start_counting ? 1 : 0;
            }
            return done;
        };
        double backend = throughput(8, seconds, [&](Clock::time_point until) {
            auto storage = open_backend(server);
            return counted(until, [&](int k) {
                auto got = storage->get("tp" + std::to_string(k));
                return got && *got;
            });
        });
        double bare = throughput(8, seconds, [&](Clock::time_point until) {
            redisContext* context = bare_connect(server);
            long done = counted(until, [&](int k) {
                return bare_get(context, "bench:e:tp" + std::to_string(k), 1024);
            });
            redisFree(context);
            return done;
        });
        std::printf("\n8 processes, 1 KiB gets for %.1f s: backend %.0f gets/s, bare hiredis "
                    "%.0f GETs/s (%.2fx)\n",
                    seconds, backend, bare, bare / backend);

        // Threads sharing one backend object: its connection pool against the same calls
        // serialised by one mutex (what a single mutex-guarded connection would allow).
        auto threaded = [&](bool serialise) {
            auto storage = open_backend(server);
            std::mutex one_at_a_time;
            std::atomic<long> total{0};
            auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(seconds));
            std::vector<std::thread> threads;
            for (int t = 0; t < 8; ++t) {
                threads.emplace_back([&] {
                    long done = 0;
                    for (int i = 0; Clock::now() < until; ++i) {
                        std::unique_lock guard(one_at_a_time, std::defer_lock);
                        if (serialise) {
                            guard.lock();
                        }
                        auto got = storage->get("tp" + std::to_string(i % 100));
                        done += got && *got ? 1 : 0;
                    }
                    total += done;
                });
            }
            for (auto& thread : threads) {
                thread.join();
            }
            return static_cast<double>(total.load()) / seconds;
        };
        double pooled = threaded(false);
        double serialised = threaded(true);
        std::printf("8 threads on one backend, 1 KiB gets for %.1f s: connection pool %.0f gets/s, "
                    "one connection at a time %.0f gets/s (%.2fx)\n",
                    seconds, pooled, serialised, pooled / serialised);
    }
    tests::redis::remove_tree(scratch);
    return 0;
}
