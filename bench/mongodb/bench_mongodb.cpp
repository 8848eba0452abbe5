// bench_mongodb: get and put latency (median, p90 in µs) of the mongodb and gridfs plugins
// beside Redis and PostgreSQL for 1 KiB, 100 KiB and 1 MiB values, in one run against
// private servers on free loopback ports. The MongoDB server is the project's Python
// wire-protocol test server over mongomock (tests/plugins/mongo/mongo_server.py), not a
// real mongod: its figures measure that server far more than the plugins.
//
//   bench_mongodb [--quick]
#include "bench/backend_latency.h"
#include "tests/plugins/mongo/mongo_server.h"
#include "tests/plugins/pg_server.h"
#include "tests/redis/fixture.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    using namespace curlcache;
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const std::string scratch = tests::redis::make_scratch();
    const std::string pg_dir = tests::redis::make_scratch();
    int failures = 0;
    {
        tests::mongo::MongoServer mongo;
        tests::postgres::PgServer postgres(pg_dir); // its own folder: postgres cannot enter ours
        tests::redis::RedisServer redis(scratch);
        struct Size {
            size_t bytes;
            int count;
            const char* label;
        };
        const std::vector<Size> sizes = {{1024, quick ? 100 : 500, "1 KiB"},
                                         {100 * 1024, quick ? 20 : 100, "100 KiB"},
                                         {1024 * 1024, quick ? 5 : 30, "1 MiB"}};
        std::printf("mongodb and gridfs against the Python test server (mongomock), not a real mongod\n");
        std::printf("%-10s %-8s | %10s %10s | %10s %10s   (µs)\n", "backend", "size", "get p50",
                    "get p90", "put p50", "put p90");
        for (const Size& size : sizes) {
            for (const char* backend : {"mongodb", "gridfs", "postgres", "redis"}) {
                const std::string name = backend, tag = "bench_" + name + std::to_string(size.bytes);
                config::Settings settings;
                if (name == "postgres") {
                    settings = tests::postgres::postgres_settings(postgres, tag);
                } else if (name == "redis") {
                    settings = tests::redis::redis_settings(redis, tag);
                } else {
                    settings = tests::mongo::mongo_settings(mongo, name, tag);
                }
                auto row = bench::measure(settings, size.bytes, size.count);
                if (!row) {
                    std::printf("%-10s %-8s | failed\n", backend, size.label);
                    ++failures;
                    continue;
                }
                std::printf("%-10s %-8s | %10.1f %10.1f | %10.1f %10.1f\n", backend, size.label,
                            row->get.median, row->get.p90, row->put.median, row->put.p90);
            }
        }
    }
    tests::redis::remove_tree(scratch);
    tests::redis::remove_tree(pg_dir);
    return failures == 0 ? 0 : 1;
}
