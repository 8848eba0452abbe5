// curlcache stats [--json] | curlcache stats --zero
//
// --json prints one object; its fields are stable (new ones may be added, none renamed):
//   version                       the JSON contract's version (cli/json.h)
//   hits, misses, stores          counters since the last --zero
//   hit_rate                      hits / (hits + misses) as a number in [0, 1], or null
//   bytes_served                  body bytes answered from the cache
//   bytes_downloaded              body bytes fetched from the network on misses
//   passthrough                   transfers the cache did not touch
//   errors {failure, timeout}     backend errors by kind
//   corrupt                       corrupt entries found (and removed)
//   entries, size                 what the cache holds now (size in bytes of stored values)
//   max_size                      the first tier's limit in bytes, 0 = unbounded
//   tiers [{backend, location, entries, size, max_size}]   first tier first
#include "cli/args.h"
#include "cli/format.h"
#include "cli/json.h"

#include <cstdio>

namespace curlcache::cli {
namespace {

constexpr std::string_view k_help = R"HELP(usage: curlcache stats [--json]
       curlcache stats --zero

Shows the cache's statistics: hits, misses and stores, the hit rate, bytes served from the
cache and downloaded, what the cache holds against its max_size, errors by kind, and each
storage tier of a tiered cache.

  --json   one JSON object (fields documented in curlcache(1))
  --zero   set every counter to zero (entries are kept)
)HELP";

constexpr OptionSpec k_options[] = {{"--json", false}, {"--zero", false}};

struct Tier {
    std::string backend;
    std::string location;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t max_bytes = 0;
};

struct Report {
    curlcache_stats stats{};
    uint64_t entries = 0;
    uint64_t bytes = 0;
    std::vector<Tier> tiers;
};

std::expected<Report, std::string> gather(curlcache_handle* cache) {
    Report report;
    if (auto code = curlcache_stats_get(cache, &report.stats); code != CURLCACHE_OK) {
        return std::unexpected(api_message(cache, code, "cannot read the statistics"));
    }
    if (auto code = curlcache_count(cache, &report.entries, &report.bytes); code != CURLCACHE_OK) {
        return std::unexpected(api_message(cache, code, "cannot count the entries"));
    }
    std::size_t count = curlcache_tier_count(cache);
    for (std::size_t i = 0; i < count; ++i) {
        curlcache_tier tier{};
        if (auto code = curlcache_tier_get(cache, i, &tier); code != CURLCACHE_OK) {
            return std::unexpected(api_message(cache, code, "cannot read a storage tier"));
        }
        report.tiers.push_back({tier.backend ? tier.backend : "",
                                tier.location ? tier.location : "", tier.entries, tier.bytes,
                                tier.max_bytes});
    }
    return report;
}

std::string limit_text(uint64_t bytes, uint64_t max_bytes) {
    if (max_bytes == 0) {
        return "(no limit)";
    }
    return "of " + format_size(max_bytes) + " (" + format_percent(bytes, max_bytes) + ")";
}

void print_human(const Report& report) {
    const auto& s = report.stats;
    uint64_t lookups = s.hits + s.misses;
    using Align = Table::Align;
    Table table({Align::left, Align::right, Align::left});
    table.add({"Hits", format_count(s.hits), format_percent(s.hits, lookups)});
    table.add({"Misses", format_count(s.misses), format_percent(s.misses, lookups)});
    table.add({"Stores", format_count(s.stores)});
    table.add({"Passthrough", format_count(s.passthrough)});
    table.add({"Bytes served", format_size(s.bytes_served)});
    table.add({"Bytes downloaded", format_size(s.bytes_downloaded)});
    table.add({"Entries", format_count(report.entries)});
    uint64_t max_bytes = report.tiers.empty() ? 0 : report.tiers[0].max_bytes;
    table.add({"Size", format_size(report.bytes), limit_text(report.bytes, max_bytes)});
    table.add({"Errors", format_count(s.errors)});
    table.add({"  failure", format_count(s.errors - s.errors_timeout)});
    table.add({"  timeout", format_count(s.errors_timeout)});
    table.add({"Corrupt", format_count(s.corrupt)});
    if (report.tiers.size() == 1) {
        std::printf("%-*s  %s %s\n", static_cast<int>(table.width(0)), "Cache",
                    report.tiers[0].backend.c_str(), report.tiers[0].location.c_str());
    }
    table.print(stdout);
    if (report.tiers.size() > 1) {
        std::printf("\n");
        Table tiers({Align::left, Align::left, Align::right, Align::right, Align::left});
        for (std::size_t i = 0; i < report.tiers.size(); ++i) {
            const auto& tier = report.tiers[i];
            tiers.add({"Tier " + std::to_string(i + 1), tier.backend + " " + tier.location,
                       format_count(tier.entries) + " entries", format_size(tier.bytes),
                       limit_text(tier.bytes, tier.max_bytes)});
        }
        tiers.print(stdout);
    }
}

bool print_json(const Report& report) {
    const auto& s = report.stats;
    JsonWriter json(stdout);
    json.begin_object();
    json.key("version");
    json.integer(k_json_version);
    json.key("hits");
    json.unsigned_integer(s.hits);
    json.key("misses");
    json.unsigned_integer(s.misses);
    json.key("stores");
    json.unsigned_integer(s.stores);
    json.key("hit_rate");
    if (s.hits + s.misses == 0) {
        json.null();
    } else {
        json.real(static_cast<double>(s.hits) / static_cast<double>(s.hits + s.misses));
    }
    json.key("bytes_served");
    json.unsigned_integer(s.bytes_served);
    json.key("bytes_downloaded");
    json.unsigned_integer(s.bytes_downloaded);
    json.key("passthrough");
    json.unsigned_integer(s.passthrough);
    json.key("errors");
    json.begin_object();
    json.key("failure");
    json.unsigned_integer(s.errors - s.errors_timeout);
    json.key("timeout");
    json.unsigned_integer(s.errors_timeout);
    json.end_object();
    json.key("corrupt");
    json.unsigned_integer(s.corrupt);
    json.key("entries");
    json.unsigned_integer(report.entries);
    json.key("size");
    json.unsigned_integer(report.bytes);
    json.key("max_size");
    json.unsigned_integer(report.tiers.empty() ? 0 : report.tiers[0].max_bytes);
    json.key("tiers");
    json.begin_array();
    for (const auto& tier : report.tiers) {
        json.begin_object();
        json.key("backend");
        json.string(tier.backend);
        json.key("location");
        json.string(tier.location);
        json.key("entries");
        json.unsigned_integer(tier.entries);
        json.key("size");
        json.unsigned_integer(tier.bytes);
        json.key("max_size");
        json.unsigned_integer(tier.max_bytes);
        json.end_object();
    }
    json.end_array();
    json.end_object();
    return json.finish();
}

} // namespace

int cmd_stats(Args args) {
    auto parsed = parse_command(args, {"stats", k_help, k_options, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    if (parsed->has("--zero") && parsed->has("--json")) {
        return usage_error("--zero and --json cannot be combined", "stats");
    }
    auto cache = parsed->has("--zero") ? open_existing_cache_to_change(parsed->global)
                                       : open_existing_cache(parsed->global);
    if (!cache) {
        return parsed->has("--zero") ? report_or_nothing_to(cache.error(), "zero")
                                     : report(cache.error());
    }
    if (parsed->has("--zero")) {
        if (auto code = curlcache_stats_zero(cache->get()); code != CURLCACHE_OK) {
            return runtime_error(api_message(cache->get(), code, "cannot zero the statistics"));
        }
        std::printf("Statistics zeroed\n");
        return k_exit_ok;
    }
    auto report = gather(cache->get());
    if (!report) {
        return runtime_error(report.error());
    }
    if (parsed->has("--json")) {
        return print_json(*report) ? k_exit_ok : runtime_error("cannot write to stdout");
    }
    print_human(*report);
    return k_exit_ok;
}

} // namespace curlcache::cli
