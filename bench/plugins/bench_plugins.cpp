// bench_plugins: get and put latency (median, p90 in µs) of every storage plugin beside
// SQLite and Redis for 1 KiB, 100 KiB and 1 MiB values, in one run against private servers
// on free loopback ports: postgres (PostgreSQL 15, fsync off), redis, dynamodb, mongodb and
// gridfs, and a bare libpq prepared SELECT of the same 1 KiB row (the target: a postgres
// 1 KiB get within 1.5x of it).
//
// Two of the servers are emulators, and their figures measure the emulator more than the
// plugin: dynamodb runs against dynalite (npm: DynamoDB's API in node, in memory), not AWS;
// mongodb and gridfs against the project's Python wire-protocol test server over mongomock
// (tests/plugins/mongo/mongo_server.py), not a real mongod.
//
//   bench_plugins [--quick] [--large] [--only BACKEND[,BACKEND...]] [--dynamodb-local]
// --large adds one 100 MiB value (put once, got three times: the conformance group's size);
// --only measures the named backends alone (postgres's bare SELECT needs postgres);
// --dynamodb-local measures dynamodb against Amazon's DynamoDB Local instead of dynalite
// (only inside a private network namespace: tests/plugins/in_private_net.sh bench_plugins ...).
#include "bench/backend_latency.h"
#include "tests/plugins/pg_server.h"
#ifdef CURLCACHE_BENCH_DYNAMODB
#include "tests/plugins/dynalite_server.h"
#endif
#ifdef CURLCACHE_BENCH_MONGODB
#include "tests/plugins/mongo/mongo_server.h"
#endif
#include "tests/redis/fixture.h"

#include <libpq-fe.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace curlcache;
using namespace curlcache::bench;

// The same rows read by a bare libpq prepared statement: what a get cannot beat.
std::optional<Stats> bare_select(const std::string& url, const std::string& table, int count) {
    PGconn* conn = PQconnectdb(url.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        return std::nullopt;
    }
    PGresult* prepared = PQprepare(conn, "bare", ("SELECT value FROM " + table + " WHERE key = $1").c_str(), 1, nullptr);
    PQclear(prepared);
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int> pick(0, count - 1);
    std::vector<double> samples;
    for (int i = 0; i < count * 3; ++i) {
        const std::string key = key_of(pick(rng));
        const char* values[] = {key.c_str()};
        const auto start = Clock::now();
        PGresult* result = PQexecPrepared(conn, "bare", 1, values, nullptr, nullptr, 1);
        std::string copy(PQgetvalue(result, 0, 0), static_cast<size_t>(PQgetlength(result, 0, 0)));
        PQclear(result);
        samples.push_back(micros(Clock::now() - start));
    }
    PQfinish(conn);
    return summarise(samples);
}

} // namespace

int main(int argc, char** argv) {
    bool quick = false, large = false, local = false;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (std::strcmp(argv[i], "--large") == 0) {
            large = true;
        } else if (std::strcmp(argv[i], "--dynamodb-local") == 0) {
            local = true;
        } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = "," + std::string(argv[++i]) + ",";
        } else {
            std::fprintf(stderr, "usage: %s [--quick] [--large] [--only BACKEND[,...]] [--dynamodb-local]\n",
                         argv[0]);
            return 2;
        }
    }
    const auto wanted = [&](const std::string& backend) {
        return only.empty() || only.find("," + backend + ",") != std::string::npos;
    };
    const std::string scratch = tests::redis::make_scratch();
    const std::string pg_dir = tests::redis::make_scratch();
    int failures = 0;
    {
        tests::postgres::PgServer postgres(pg_dir); // its own folder: postgres cannot enter ours
        tests::redis::RedisServer redis(scratch);
        std::vector<std::string> backends = {"sqlite", "redis", "postgres"};
#ifdef CURLCACHE_BENCH_DYNAMODB
        std::optional<tests::dynamodb::DynamoServer> dynamo;
        const auto kind = local ? tests::dynamodb::Kind::dynamodb_local : tests::dynamodb::Kind::dynalite;
        if (tests::dynamodb::missing(kind).empty()) {
            dynamo.emplace(kind);
            backends.push_back("dynamodb");
            std::printf("dynamodb: against %s (in memory) on 127.0.0.1, not AWS\n",
                        local ? "Amazon's DynamoDB Local" : "dynalite (npm)");
        } else {
            std::printf("dynamodb: not measured (%s)\n", tests::dynamodb::missing(kind).c_str());
            ++failures;
        }
#endif
#ifdef CURLCACHE_BENCH_MONGODB
        tests::mongo::MongoServer mongo;
        backends.push_back("mongodb");
        backends.push_back("gridfs");
        std::printf("mongodb, gridfs: against the project's Python test server (mongomock), not a real mongod\n");
#endif
        struct Size {
            size_t bytes;
            int count;
            const char* label;
        };
        std::vector<Size> sizes = {{1024, quick ? 100 : 1000, "1 KiB"},
                                   {100 * 1024, quick ? 20 : 200, "100 KiB"},
                                   {1024 * 1024, quick ? 5 : 40, "1 MiB"}};
        if (large) {
            sizes.push_back({100 * 1024 * 1024, 1, "100 MiB"});
        }
        std::printf("%-10s %-8s | %10s %10s | %10s %10s   (µs)\n", "backend", "size", "get p50",
                    "get p90", "put p50", "put p90");
        std::optional<Row> pg_1k;
        for (const Size& size : sizes) {
            for (const std::string& backend : backends) {
                if (!wanted(backend)) {
                    continue;
                }
                const std::string tag = backend + std::to_string(size.bytes);
                config::Settings settings;
                if (backend == "postgres") {
                    settings = tests::postgres::postgres_settings(postgres, "bench_" + tag);
#ifdef CURLCACHE_BENCH_DYNAMODB
                } else if (backend == "dynamodb") {
                    settings = tests::dynamodb::dynamodb_settings(*dynamo, "bench_" + tag);
#endif
#ifdef CURLCACHE_BENCH_MONGODB
                } else if (backend == "mongodb" || backend == "gridfs") {
                    settings = tests::mongo::mongo_settings(mongo, backend, "bench_" + tag);
#endif
                } else if (backend == "redis") {
                    settings = tests::redis::redis_settings(redis, tag);
                } else {
                    settings.backend = {"sqlite"};
                    settings.name = scratch + "/" + tag + ".sqlite";
                }
                auto row = measure(settings, size.bytes, size.count);
                if (!row) {
                    std::printf("%-10s %-8s | failed\n", backend.c_str(), size.label);
                    ++failures;
                    continue;
                }
                if (size.bytes == 1024 && backend == "postgres") {
                    pg_1k = row;
                }
                std::printf("%-10s %-8s | %10.1f %10.1f | %10.1f %10.1f\n", backend.c_str(), size.label,
                            row->get.median, row->get.p90, row->put.median, row->put.p90);
                std::fflush(stdout);
            }
        }
        if (wanted("postgres")) {
            auto bare = bare_select(postgres.url(), "bench_postgres1024", sizes[0].count);
            if (bare && pg_1k) {
                std::printf("%-10s %-8s | %10.1f %10.1f |\n", "bare libpq", "1 KiB", bare->median, bare->p90);
                std::printf("1 KiB get, postgres plugin / bare libpq prepared SELECT: %.2fx (target <= 1.5x)\n",
                            pg_1k->get.median / bare->median);
            } else {
                ++failures;
            }
        }
    }
    tests::redis::remove_tree(scratch);
    tests::redis::remove_tree(pg_dir);
    return failures == 0 ? 0 : 1;
}
