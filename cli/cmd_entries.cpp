// curlcache list | show | delete | clear | purge | vacuum: looking at and removing entries.
//
// `list --json` prints {version, entries}: entries is an array sorted by URL, then method,
// then key, of objects with the stable fields key, method, url, status, created (unix
// seconds), expires (unix seconds or null for never), expired (bool), size (stored bytes)
// and, with --why, why (the key parts, [{part, value}], that set the entry apart from the
// others for its URL).
// `show --json` prints one object: version, key, method, url, effective_url, status,
// content_type (or null), created, expires (or null), freshness, body_size, responses,
// headers (one raw block per response), key_parts and others (the other entries for its
// URL and how their key parts differ). The fields are documented in curlcache(1).
#include "cli/args.h"
#include "cli/format.h"
#include "cli/json.h"
#include "cli/key_parts.h"
#include "cli/list_order.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>

namespace curlcache::cli {
namespace {

constexpr std::string_view k_list_help =
    R"HELP(usage: curlcache list [--expired] [--url GLOB] [--why] [--json]

Lists the cached entries, sorted by URL: key, status, stored size, expiry, method and URL.

  --expired     only entries that have expired
  --url GLOB    only entries whose URL matches GLOB ('*' any run of characters, '?' one)
  --why         for a URL with several entries, what sets each apart: the parts of its key
                that differ (method, header, option, body, credentials, vary)
  --json        a JSON object {version, entries} (fields documented in curlcache(1))
)HELP";

constexpr std::string_view k_show_help = R"HELP(usage: curlcache show URL|KEY [--json]
       curlcache show URL|KEY --body [-o FILE] [--force]

Shows one entry, found by its 32-digit key or by its URL (a GET request): its metadata,
the parts of its key, what sets it apart from the other entries for its URL, and the
header block of every response it recorded.

  --body             write only the body, byte for byte, to stdout (or to FILE)
  -o, --output FILE  with --body: write the body to FILE instead
  -f, --force        with --body: write a binary body to a terminal anyway
  --json             a JSON object (fields documented in curlcache(1))
)HELP";

// True when `body` would garble a terminal: a NUL, a control character other than tab,
// newline, carriage return, form feed and escape, or bytes that are not UTF-8.
bool looks_binary(std::string_view body) {
    std::size_t continuation = 0;
    for (unsigned char c : body) {
        if (continuation > 0) {
            if ((c & 0xC0) != 0x80) {
                return true;
            }
            --continuation;
        } else if (c >= 0x80) {
            continuation = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : 4;
            if (continuation == 4 || c > 0xF4) {
                return true;
            }
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1B) {
            return true;
        }
    }
    return continuation != 0;
}

// Writes the body to `path`, or to stdout; false (with errno) when that failed.
bool write_body(std::string_view body, const std::string* path) {
    std::FILE* out = path != nullptr ? std::fopen(path->c_str(), "wb") : stdout;
    if (out == nullptr) {
        return false;
    }
    bool ok = std::fwrite(body.data(), 1, body.size(), out) == body.size();
    ok = (path != nullptr ? std::fclose(out) : std::fflush(out)) == 0 && ok;
    return ok;
}

constexpr std::string_view k_delete_help = R"HELP(usage: curlcache delete URL|GLOB|KEY

Removes the entry with this key, the entries for this URL, or those whose URL matches GLOB
('*' any run of characters, '?' one). Fails when nothing matches.
)HELP";

constexpr std::string_view k_clear_help = R"HELP(usage: curlcache clear

Removes every entry of the cache (the statistics are kept).
)HELP";

constexpr std::string_view k_purge_help = R"HELP(usage: curlcache purge

Removes the entries that have expired, and what killed downloads left (temp files of
writers that are no longer running).
)HELP";

constexpr std::string_view k_vacuum_help = R"HELP(usage: curlcache vacuum

Gives the space of removed entries back to the file system (SQLite VACUUM; a no-op for
backends that need none).
)HELP";

using Meta = ListedEntry;

bool expired(int64_t expires, int64_t now) {
    return expires != 0 && expires <= now;
}

struct ListFilter {
    bool only_expired = false;
    const std::string* url_glob = nullptr;
    int64_t now = 0;
    SortedEntries found;
    std::size_t count = 0;
};

int collect(const curlcache_meta* meta, void* userp) {
    auto& filter = *static_cast<ListFilter*>(userp);
    if (meta->status == 0) {
        return 0; // a Vary index (no response of its own): its variants are listed
    }
    if (filter.only_expired && !expired(meta->expires, filter.now)) {
        return 0;
    }
    if (filter.url_glob != nullptr &&
        curlcache_glob_match(filter.url_glob->c_str(), meta->url ? meta->url : "") == 0) {
        return 0;
    }
    filter.found.add(Meta{meta->key ? meta->key : "",
                          meta->method ? meta->method : "",
                          meta->url ? meta->url : "",
                          meta->status,
                          meta->created,
                          meta->expires,
                          meta->size,
                          {}});
    ++filter.count;
    return 0;
}

// What `list` says when the sorted entries cannot all be read back (see SortedEntries::each).
constexpr std::string_view k_runs_unreadable =
    "cannot read back the sorted entries from their temporary file; the list is incomplete";

// Visits the sorted entries one URL at a time (list --why compares the entries of a URL).
// False when they could not all be read back.
[[nodiscard]] bool each_url(SortedEntries& entries,
                            const std::function<void(std::vector<Meta>&)>& visit) {
    std::vector<Meta> same_url;
    const bool whole = entries.each([&](Meta& meta) {
        if (!same_url.empty() && same_url.front().url != meta.url) {
            visit(same_url);
            same_url.clear();
        }
        same_url.push_back(std::move(meta));
        return true;
    });
    if (whole && !same_url.empty()) {
        visit(same_url);
    }
    return whole;
}

// list --why: for the entries of one URL, the key parts that tell them apart.
void explain_duplicates(curlcache_handle* cache, std::vector<Meta>& metas) {
    if (metas.size() < 2) {
        return;
    }
    std::vector<KeyParts> parts;
    for (const Meta& meta : metas) {
        curlcache_entry* raw = nullptr;
        curlcache_entry_get(cache, meta.key.c_str(), &raw);
        EntryPtr entry(raw);
        parts.push_back(entry ? key_parts_of(entry.get()) : KeyParts{});
    }
    const std::vector<std::string> names = distinguishing_parts(parts);
    for (std::size_t i = 0; i < metas.size(); ++i) {
        for (const std::string& name : names) {
            auto found = parts[i].find(name);
            metas[i].why.emplace_back(name, found == parts[i].end() ? std::string("(none)")
                                                                    : found->second);
        }
    }
}

// [{"part": NAME, "value": VALUE}, ...]: the part names are open-ended ("header NAME").
template <class Parts> void write_parts(JsonWriter& json, const Parts& parts) {
    json.begin_array();
    for (const auto& [name, value] : parts) {
        json.begin_object();
        json.key("part");
        json.string(name);
        json.key("value");
        json.string(value);
        json.end_object();
    }
    json.end_array();
}

// Written as the entries come out of the sort: nothing but one URL's entries in memory.
int print_list_json(curlcache_handle* cache, ListFilter& filter, bool why) {
    JsonWriter json(stdout);
    json.begin_object();
    json.key("version");
    json.integer(k_json_version);
    json.key("entries");
    json.begin_array();
    const bool whole = each_url(filter.found, [&](std::vector<Meta>& metas) {
        if (why) {
            explain_duplicates(cache, metas);
        }
        for (const auto& meta : metas) {
            json.begin_object();
            json.key("key");
            json.string(meta.key);
            json.key("method");
            json.string(meta.method);
            json.key("url");
            json.string(meta.url);
            json.key("status");
            json.integer(meta.status);
            json.key("created");
            json.integer(meta.created);
            json.key("expires");
            if (meta.expires == 0) {
                json.null();
            } else {
                json.integer(meta.expires);
            }
            json.key("expired");
            json.boolean(expired(meta.expires, filter.now));
            json.key("size");
            json.unsigned_integer(meta.size);
            if (why) {
                json.key("why");
                write_parts(json, meta.why);
            }
            json.end_object();
        }
    });
    if (!whole) {
        return runtime_error(k_runs_unreadable);
    }
    json.end_array();
    json.end_object();
    return json.finish() ? k_exit_ok : runtime_error("cannot write to stdout");
}

// The columns of a human list row before WHY.
std::vector<std::string> list_row(const Meta& meta, int64_t now) {
    std::string expires = meta.expires == 0 ? "never"
                          : expired(meta.expires, now)
                              ? "expired " + format_relative(meta.expires, now)
                              : format_relative(meta.expires, now);
    return {meta.key, std::to_string(meta.status), format_size(meta.size), expires, meta.method,
            meta.url};
}

// Two passes over the sorted entries: the column widths, then the rows as they come.
int print_list_human(curlcache_handle* cache, ListFilter& filter, bool why) {
    if (filter.count == 0) {
        return k_exit_ok;
    }
    using Align = Table::Align;
    const std::vector<Align> aligns{Align::left, Align::right, Align::right, Align::left,
                                    Align::left, Align::left,  Align::left};
    std::vector<std::string> head{"KEY", "STATUS", "SIZE", "EXPIRES", "METHOD", "URL"};
    std::vector<std::size_t> widths(head.size());
    auto widen = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    };
    widen(head);
    const bool whole = filter.found.each([&](Meta& meta) {
        widen(list_row(meta, filter.now));
        return true;
    });
    if (!whole) {
        return runtime_error(k_runs_unreadable);
    }
    if (why) {
        head.emplace_back("WHY");
    }
    Table::print_row(stdout, head, widths, aligns);
    const bool printed = each_url(filter.found, [&](std::vector<Meta>& metas) {
        if (why) {
            explain_duplicates(cache, metas);
        }
        for (const auto& meta : metas) {
            std::vector<std::string> row = list_row(meta, filter.now);
            if (why) {
                std::string text;
                for (const auto& [name, value] : meta.why) {
                    text += (text.empty() ? "" : "; ") + name + " " + value;
                }
                row.push_back(text);
            }
            Table::print_row(stdout, row, widths, aligns);
        }
    });
    return printed ? k_exit_ok : runtime_error(k_runs_unreadable);
}

// Opens the cache named by the global options (only to read it: `read`), or prints why not.
// Neither way creates a cache that does not exist.
// A command that changes the cache and has nothing to do on a missing one (`idle_verb`:
// clear, purge, vacuum) exits 0 saying so (report_or_nothing_to).
std::expected<CachePtr, int> open_or_report(const ParsedArgs& parsed, bool read = false,
                                            std::string_view idle_verb = {}) {
    auto cache = read ? open_existing_cache(parsed.global)
                      : open_existing_cache_to_change(parsed.global);
    if (!cache) {
        return std::unexpected(idle_verb.empty() ? report(cache.error())
                                                 : report_or_nothing_to(cache.error(), idle_verb));
    }
    return std::move(*cache);
}

std::string entry_text(const char* text) {
    return text != nullptr ? text : "";
}

// The other entries for the entry's URL and, for each, the key parts that differ.
struct Other {
    std::string key;
    std::vector<std::string> names;
    KeyParts parts;
};

std::vector<Other> compare_with_others(curlcache_handle* cache, curlcache_entry* entry,
                                       const KeyParts& mine) {
    std::vector<Other> out;
    for (const EntryPtr& other : other_entries(cache, entry_text(curlcache_entry_url(entry)),
                                               entry_text(curlcache_entry_key(entry)))) {
        KeyParts theirs = key_parts_of(other.get());
        out.push_back({entry_text(curlcache_entry_key(other.get())),
                       distinguishing_parts({mine, theirs}), theirs});
    }
    return out;
}

void json_part_value(JsonWriter& json, const KeyParts& parts, const std::string& name) {
    auto found = parts.find(name);
    if (found == parts.end()) {
        json.null();
    } else {
        json.string(found->second);
    }
}

void print_show_json(curlcache_entry* entry, std::string_view body, const KeyParts& parts,
                     const std::vector<Other>& others, bool& ok) {
    JsonWriter json(stdout);
    json.begin_object();
    json.key("version");
    json.integer(k_json_version);
    json.key("key");
    json.string(entry_text(curlcache_entry_key(entry)));
    json.key("method");
    json.string(entry_text(curlcache_entry_method(entry)));
    json.key("url");
    json.string(entry_text(curlcache_entry_url(entry)));
    json.key("effective_url");
    json.string(entry_text(curlcache_entry_effective_url(entry)));
    json.key("status");
    json.integer(curlcache_entry_status(entry));
    json.key("content_type");
    if (const char* type = curlcache_entry_content_type(entry)) {
        json.string(type);
    } else {
        json.null();
    }
    json.key("created");
    json.integer(curlcache_entry_created(entry));
    json.key("expires");
    if (curlcache_entry_expires(entry) == 0) {
        json.null();
    } else {
        json.integer(curlcache_entry_expires(entry));
    }
    json.key("freshness");
    json.string(curlcache_entry_freshness(entry));
    json.key("body_size");
    json.unsigned_integer(body.size());
    json.key("responses");
    json.unsigned_integer(curlcache_entry_response_count(entry));
    json.key("headers");
    json.begin_array();
    for (std::size_t i = 0; i < curlcache_entry_response_count(entry); ++i) {
        const char* data = nullptr;
        std::size_t size = 0;
        if (curlcache_entry_headers(entry, i, &data, &size) == CURLCACHE_OK) {
            json.string(std::string_view(data, size));
        }
    }
    json.end_array();
    json.key("key_parts");
    write_parts(json, parts);
    json.key("others");
    json.begin_array();
    for (const Other& other : others) {
        json.begin_object();
        json.key("key");
        json.string(other.key);
        json.key("differs");
        json.begin_array();
        for (const std::string& name : other.names) {
            json.begin_object();
            json.key("part");
            json.string(name);
            json.key("this");
            json_part_value(json, parts, name);
            json.key("other");
            json_part_value(json, other.parts, name);
            json.end_object();
        }
        json.end_array();
        json.end_object();
    }
    json.end_array();
    json.end_object();
    ok = json.finish();
}

void print_show_human(curlcache_entry* entry, std::string_view body, const KeyParts& parts,
                      const std::vector<Other>& others) {
    int64_t now = std::time(nullptr);
    int64_t created = curlcache_entry_created(entry);
    int64_t expires = curlcache_entry_expires(entry);
    using Align = Table::Align;
    Table table({Align::left, Align::left});
    table.add({"Key", entry_text(curlcache_entry_key(entry))});
    table.add({"Method", entry_text(curlcache_entry_method(entry))});
    table.add({"URL", entry_text(curlcache_entry_url(entry))});
    table.add({"Effective URL", entry_text(curlcache_entry_effective_url(entry))});
    table.add({"Status", std::to_string(curlcache_entry_status(entry))});
    const char* type = curlcache_entry_content_type(entry);
    table.add({"Content type", type != nullptr ? type : "-"});
    table.add({"Created", format_local_time(created) + " (" + format_relative(created, now) + ")"});
    table.add({"Expires", expires == 0 ? "never"
                                       : format_local_time(expires) + " (" +
                                             format_relative(expires, now) + ")"});
    table.add({"Freshness", curlcache_entry_freshness(entry)});
    table.add({"Body size", format_size(body.size()) + (is_text(body) ? "" : " (binary)")});
    table.add({"Responses", std::to_string(curlcache_entry_response_count(entry))});
    std::string label = "Key parts";
    for (const auto& [name, value] : parts) {
        table.add({label, name + " " + value});
        label.clear();
    }
    label = "Others";
    for (const Other& other : others) {
        std::string differs;
        for (const std::string& name : other.names) {
            auto mine = parts.find(name);
            auto theirs = other.parts.find(name);
            differs += (differs.empty() ? "" : "; ") + name + " " +
                       (mine == parts.end() ? "(none)" : mine->second) + " here, " +
                       (theirs == other.parts.end() ? "(none)" : theirs->second) + " there";
        }
        table.add(
            {label, other.key + ": " + (differs.empty() ? "(no recorded difference)" : differs)});
        label.clear();
    }
    table.print(stdout);
    for (std::size_t i = 0; i < curlcache_entry_response_count(entry); ++i) {
        const char* data = nullptr;
        std::size_t size = 0;
        if (curlcache_entry_headers(entry, i, &data, &size) == CURLCACHE_OK) {
            std::fputs("\n", stdout);
            std::fwrite(data, 1, size, stdout);
        }
    }
}

} // namespace

int cmd_list(Args args) {
    static constexpr OptionSpec options[] = {
        {"--expired", false}, {"--url", true}, {"--why", false}, {"--json", false}};
    auto parsed = parse_command(args, {"list", k_list_help, options, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    auto cache = open_or_report(*parsed, true);
    if (!cache) {
        return cache.error();
    }
    ListFilter filter;
    filter.only_expired = parsed->has("--expired");
    filter.url_glob = parsed->value("--url");
    filter.now = std::time(nullptr);
    if (auto code = curlcache_scan(cache->get(), collect, &filter); code != CURLCACHE_OK) {
        return runtime_error(api_message(cache->get(), code, "cannot list the entries"));
    }
    const bool why = parsed->has("--why");
    if (parsed->has("--json")) {
        return print_list_json(cache->get(), filter, why);
    }
    return print_list_human(cache->get(), filter, why);
}

int cmd_show(Args args) {
    static constexpr OptionSpec options[] = {
        {"--body", false}, {"--json", false}, {"--output", true, 'o'}, {"--force", false, 'f'}};
    auto parsed = parse_command(args, {"show", k_show_help, options, 1, 1});
    if (!parsed) {
        return parsed.error();
    }
    if (parsed->has("--body") && parsed->has("--json")) {
        return usage_error("--body and --json cannot be combined", "show");
    }
    const std::string* output = parsed->value("--output");
    if ((output != nullptr || parsed->has("--force")) && !parsed->has("--body")) {
        return usage_error("--output and --force go with --body", "show");
    }
    auto cache = open_or_report(*parsed, true);
    if (!cache) {
        return cache.error();
    }
    const std::string& wanted = parsed->positional[0];
    curlcache_entry* raw = nullptr;
    curlcache_code code = curlcache_entry_get(cache->get(), wanted.c_str(), &raw);
    EntryPtr entry(raw);
    if (code == CURLCACHE_E_MISS) {
        return runtime_error("no entry for '" + wanted + "'");
    }
    if (code != CURLCACHE_OK) {
        return runtime_error(api_message(cache->get(), code, "cannot read '" + wanted + "'"));
    }
    const void* body_data = nullptr;
    std::size_t body_size = 0;
    if (curlcache_entry_body(entry.get(), &body_data, &body_size) != CURLCACHE_OK) {
        body_size = 0;
    }
    std::string_view body(static_cast<const char*>(body_data), body_data ? body_size : 0);
    bool ok = true;
    if (parsed->has("--body")) {
        if (output == nullptr && !parsed->has("--force") && ::isatty(STDOUT_FILENO) &&
            looks_binary(body)) {
            return runtime_error("the body is binary (" + format_size(body.size()) +
                                 "); not writing it to a terminal: use -o FILE, a pipe, or "
                                 "--force");
        }
        if (!write_body(body, output)) {
            return runtime_error((output != nullptr ? *output : std::string("stdout")) +
                                 ": cannot write: " + std::strerror(errno));
        }
        return k_exit_ok;
    }
    const KeyParts parts = key_parts_of(entry.get());
    const std::vector<Other> others = compare_with_others(cache->get(), entry.get(), parts);
    if (parsed->has("--json")) {
        print_show_json(entry.get(), body, parts, others, ok);
    } else {
        print_show_human(entry.get(), body, parts, others);
    }
    return ok ? k_exit_ok : runtime_error("cannot write to stdout");
}

int cmd_delete(Args args) {
    auto parsed = parse_command(args, {"delete", k_delete_help, {}, 1, 1});
    if (!parsed) {
        return parsed.error();
    }
    auto cache = open_or_report(*parsed);
    if (!cache) {
        return cache.error();
    }
    const std::string& what = parsed->positional[0];
    uint64_t removed = 0;
    if (auto code = curlcache_delete(cache->get(), what.c_str(), &removed); code != CURLCACHE_OK) {
        return runtime_error(api_message(cache->get(), code, "cannot delete '" + what + "'"));
    }
    if (removed == 0) {
        return runtime_error("no entry matches '" + what + "'");
    }
    std::printf("%s removed\n", count_of(removed, "entry", "entries").c_str());
    return k_exit_ok;
}

int cmd_clear(Args args) {
    auto parsed = parse_command(args, {"clear", k_clear_help, {}, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    auto cache = open_or_report(*parsed, false, "clear");
    if (!cache) {
        return cache.error();
    }
    uint64_t entries = 0;
    uint64_t bytes = 0;
    const bool counted = curlcache_count(cache->get(), &entries, &bytes) == CURLCACHE_OK;
    if (auto code = curlcache_clear(cache->get()); code != CURLCACHE_OK) {
        return runtime_error(api_message(cache->get(), code, "cannot clear the cache"));
    }
    if (counted) {
        std::printf("Removed %s (%s)\n", count_of(entries, "entry", "entries").c_str(),
                    format_size(bytes).c_str());
    } else {
        std::printf("Removed every entry\n");
    }
    return k_exit_ok;
}

int cmd_purge(Args args) {
    auto parsed = parse_command(args, {"purge", k_purge_help, {}, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    auto cache = open_or_report(*parsed, false, "purge");
    if (!cache) {
        return cache.error();
    }
    uint64_t removed = 0;
    if (auto code = curlcache_purge(cache->get(), &removed); code != CURLCACHE_OK) {
        return runtime_error(api_message(cache->get(), code, "cannot purge expired entries"));
    }
    std::printf("%s removed\n", count_of(removed, "expired entry", "expired entries").c_str());
    return k_exit_ok;
}

namespace {

constexpr uint64_t k_unknown_usage = UINT64_MAX;

uint64_t g_tree_bytes = 0;

int add_blocks(const char*, const struct stat* st, int type, struct FTW*) {
    if (type == FTW_F) {
        g_tree_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
    }
    return 0;
}

// Space the cache's files take on disk (the database and its journal, or the entry
// folder), or k_unknown_usage when a tier keeps no local files (memory, redis).
uint64_t disk_usage(curlcache_handle* cache) {
    uint64_t total = 0;
    for (std::size_t i = 0; i < curlcache_tier_count(cache); ++i) {
        curlcache_tier tier{};
        if (curlcache_tier_get(cache, i, &tier) != CURLCACHE_OK || tier.location == nullptr ||
            tier.location[0] != '/') {
            return k_unknown_usage;
        }
        const std::string path = tier.location;
        for (const std::string& part : {path, path + "-wal", path + ".bodies"}) {
            g_tree_bytes = 0;
            ::nftw(part.c_str(), add_blocks, 16, FTW_PHYS);
            total += g_tree_bytes;
        }
    }
    return total;
}

} // namespace

int cmd_vacuum(Args args) {
    auto parsed = parse_command(args, {"vacuum", k_vacuum_help, {}, 0, 0});
    if (!parsed) {
        return parsed.error();
    }
    auto cache = open_or_report(*parsed, false, "vacuum");
    if (!cache) {
        return cache.error();
    }
    const uint64_t before = disk_usage(cache->get());
    if (auto code = curlcache_vacuum(cache->get()); code != CURLCACHE_OK) {
        return runtime_error(api_message(cache->get(), code, "cannot vacuum the cache"));
    }
    const uint64_t after = disk_usage(cache->get());
    if (before == k_unknown_usage || after == k_unknown_usage) {
        std::printf("Vacuumed (this backend does not report its space on disk)\n");
    } else {
        std::printf("Reclaimed %s (%s on disk now)\n",
                    format_size(before > after ? before - after : 0).c_str(),
                    format_size(after).c_str());
    }
    return k_exit_ok;
}

} // namespace curlcache::cli
