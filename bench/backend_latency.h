// What the storage latency benchmarks share (bench_plugins): get and put
// latency of one backend opened through the registry, median and p90 in µs.
#pragma once

#include "backends/registry.h"
#include "config/settings.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace curlcache::bench {

using Clock = std::chrono::steady_clock;

struct Stats {
    double median = 0, p90 = 0;
};

inline Stats summarise(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    auto at = [&](double q) {
        return samples[std::min(samples.size() - 1, static_cast<size_t>(q * samples.size()))];
    };
    return {at(0.5), at(0.9)};
}

inline double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

inline std::string key_of(int i) {
    char key[33];
    std::snprintf(key, sizeof key, "%08x%024x", static_cast<unsigned>(i * 2654435761u), i);
    return key;
}

struct Row {
    Stats get, put;
};

// `count` puts of distinct `bytes`-byte random values, then 3 x `count` gets of random ones
// among them; nullopt (with a message on stderr) when any fails.
inline std::optional<Row> measure(const config::Settings& settings, size_t bytes, int count) {
    auto opened = backends::open(settings.backend.front(), settings);
    if (!opened) {
        std::fprintf(stderr, "bench: %s: %s\n", settings.backend.front().c_str(),
                     opened.error().message.c_str());
        return std::nullopt;
    }
    std::string value(bytes, '\0');
    std::mt19937_64 rng(42);
    for (auto& c : value) {
        c = static_cast<char>(rng());
    }
    const std::string_view piece(value);
    std::vector<double> puts, gets;
    for (int i = 0; i < count; ++i) {
        backends::Metadata meta{key_of(i), "GET", "http://origin.test/" + std::to_string(i), 200,
                                1700000000, 0, 0};
        const auto start = Clock::now();
        const bool ok = (*opened)->put(meta, std::span(&piece, 1)).has_value();
        puts.push_back(micros(Clock::now() - start));
        if (!ok) {
            return std::nullopt;
        }
    }
    std::uniform_int_distribution<int> pick(0, count - 1);
    for (int i = 0; i < count * 3; ++i) {
        const auto start = Clock::now();
        auto got = (*opened)->get(key_of(pick(rng)));
        gets.push_back(micros(Clock::now() - start));
        if (!got || !*got || (*got->value()).size() != bytes) {
            return std::nullopt;
        }
    }
    (*opened)->flush();
    return Row{summarise(gets), summarise(puts)};
}

} // namespace curlcache::bench
