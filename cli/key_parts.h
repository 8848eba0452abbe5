// Why one URL has several entries: the parts of each entry's key (curlcache_entry_key_part:
// method, matched headers, transfer options, body, credentials, Vary variant) and which of
// them tell the entries apart. For `curlcache show` and `curlcache list --why`.
#pragma once

#include "cli/cli.h"

#include <map>
#include <string>
#include <vector>

namespace curlcache::cli {

// Part name -> value ("option accept_encoding" -> "gzip"), in name order.
using KeyParts = std::map<std::string, std::string>;

KeyParts key_parts_of(const curlcache_entry* entry);

// The names of the parts whose values are not the same in every one of `entries` (a part
// one entry lacks counts as a different value).
std::vector<std::string> distinguishing_parts(const std::vector<KeyParts>& entries);

// The other entries for `url` (every method), by key, read whole: their statuses are not 0
// (Vary indexes are left out). Empty when the scan fails.
std::vector<EntryPtr> other_entries(curlcache_handle* cache, const std::string& url,
                                    const std::string& key);

} // namespace curlcache::cli
