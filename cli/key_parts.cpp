// Why one URL has several entries; see key_parts.h.
#include "cli/key_parts.h"

#include <set>

namespace curlcache::cli {

KeyParts key_parts_of(const curlcache_entry* entry) {
    KeyParts parts;
    for (std::size_t i = 0; i < curlcache_entry_key_part_count(entry); ++i) {
        const char* name = nullptr;
        const char* value = nullptr;
        if (curlcache_entry_key_part(entry, i, &name, &value) == CURLCACHE_OK) {
            parts[name] = *value != '\0' ? value : "\"\""; // an empty value, shown
        }
    }
    return parts;
}

std::vector<std::string> distinguishing_parts(const std::vector<KeyParts>& entries) {
    std::set<std::string> names;
    for (const KeyParts& parts : entries) {
        for (const auto& part : parts) {
            names.insert(part.first);
        }
    }
    std::vector<std::string> differing;
    for (const std::string& name : names) {
        std::set<std::string> values;
        for (const KeyParts& parts : entries) {
            auto found = parts.find(name);
            values.insert(found == parts.end() ? std::string("\x01(none)") : found->second);
        }
        if (values.size() > 1) {
            differing.push_back(name);
        }
    }
    return differing;
}

namespace {

struct SameUrl {
    const std::string* url;
    const std::string* key;
    std::vector<std::string> keys;
};

int collect_same_url(const curlcache_meta* meta, void* userp) {
    auto& wanted = *static_cast<SameUrl*>(userp);
    if (meta->status != 0 && meta->url != nullptr && *wanted.url == meta->url &&
        meta->key != nullptr && *wanted.key != meta->key) {
        wanted.keys.emplace_back(meta->key);
    }
    return 0;
}

} // namespace

std::vector<EntryPtr> other_entries(curlcache_handle* cache, const std::string& url,
                                    const std::string& key) {
    SameUrl wanted{&url, &key, {}};
    std::vector<EntryPtr> others;
    if (curlcache_scan(cache, collect_same_url, &wanted) != CURLCACHE_OK) {
        return others;
    }
    for (const std::string& other : wanted.keys) {
        curlcache_entry* raw = nullptr;
        if (curlcache_entry_get(cache, other.c_str(), &raw) == CURLCACHE_OK) {
            others.emplace_back(raw);
        }
    }
    return others;
}

} // namespace curlcache::cli
