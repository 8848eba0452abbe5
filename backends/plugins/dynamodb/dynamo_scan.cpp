// The DynamoDB plugin's whole-table operations, each a Scan page by page (a page may be
// empty and still name the next one): list, usage, clear, purge (expired heads, expired
// locks, and the chunk items of versions no head names any more), and max_size eviction
// (least recently accessed heads first).
#include "backends/plugins/dynamodb/dynamo_store.h"

#include <algorithm>
#include <set>
#include <new>
#include <tuple>

namespace curlcache::plugins::dynamodb {

namespace {

// A Scan of the heads with `attributes` (one letter each) projected.
Json head_scan(std::string_view attributes) {
    Json names = {{"#t", "t"}};
    std::string projection;
    for (char a : attributes) {
        const std::string name = std::string("#") + a;
        names[name] = std::string(1, a);
        projection += (projection.empty() ? "" : ", ") + name;
    }
    return {{"FilterExpression", "#t = :h"},
            {"ProjectionExpression", projection},
            {"ExpressionAttributeNames", names},
            {"ExpressionAttributeValues", {{":h", text("h")}}}};
}

} // namespace

bool scan_items(Store* store, const Json& parameters, const std::function<bool(const Json&)>& fn,
                Failure& failure) {
    Json next;
    do {
        Json request = parameters;
        if (!next.is_null()) {
            request["ExclusiveStartKey"] = next;
        }
        Json response;
        if (!store->call("Scan", request, response, failure)) {
            return false;
        }
        for (const Json& item : response.value("Items", Json::array())) {
            if (!fn(item)) {
                return true;
            }
        }
        next = response.value("LastEvaluatedKey", Json());
    } while (next.is_object() && !next.empty());
    return true;
}

bool evict(Store* store, uint64_t incoming, Failure& failure) {
    std::lock_guard lock(store->size_mutex);
    const int64_t now = now_ms();
    const auto max = static_cast<int64_t>(store->max_size);
    if (store->estimate >= 0 && now - store->counted_at_ms < k_recount_ms &&
        store->estimate + static_cast<int64_t>(incoming) <= max) {
        store->estimate += static_cast<int64_t>(incoming);
        return true;
    }
    // Expired heads go first (accessed counts as 0), then least recently accessed.
    std::vector<std::tuple<int64_t, std::string, std::string, int64_t>> heads; // a, k, v, z
    int64_t total = 0;
    const bool scanned = scan_items(store, head_scan("kvza" "e"), [&](const Json& item) {
        const int64_t expires = number_of(item, "e");
        const bool gone = expires > 0 && expires <= now / 1000;
        heads.emplace_back(gone ? 0 : number_of(item, "a"), text_of(item, "k"), text_of(item, "v"),
                           number_of(item, "z"));
        total += number_of(item, "z");
        return true;
    }, failure);
    if (!scanned) {
        return false;
    }
    std::sort(heads.begin(), heads.end());
    for (const auto& [accessed, key, version, size] : heads) {
        if (total <= max) {
            break;
        }
        if (remove_version(store, key, version, failure)) {
            total -= size;
        } else if (!failure.message.empty()) {
            return false;
        }
    }
    store->estimate = total;
    store->counted_at_ms = now;
    return true;
}

curlcache_backend_status scan(Store* store, curlcache_backend_visit visit, void* context,
                              curlcache_backend_error* error) try {
    Failure failure;
    const bool scanned = scan_items(store, head_scan("kmuscez"), [&](const Json& item) {
        const std::string key = text_of(item, "k"), method = text_of(item, "m"), url = text_of(item, "u");
        const curlcache_backend_metadata meta = {key.c_str(), method.c_str(), url.c_str(),
                                                 static_cast<long>(number_of(item, "s")),
                                                 number_of(item, "c"), number_of(item, "e"),
                                                 static_cast<uint64_t>(number_of(item, "z"))};
        return visit(context, &meta) != 0;
    }, failure);
    return scanned ? CURLCACHE_BACKEND_OK : report(failure, error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

curlcache_backend_status usage(Store* store, curlcache_backend_usage* usage,
                               curlcache_backend_error* error) try {
    Failure failure;
    curlcache_backend_usage counted{0, 0, store->max_size};
    const bool scanned = scan_items(store, head_scan("z"), [&](const Json& item) {
        ++counted.entries;
        counted.bytes += static_cast<uint64_t>(number_of(item, "z"));
        return true;
    }, failure);
    if (!scanned) {
        return report(failure, error);
    }
    *usage = counted;
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

// Heads and chunks (locks are their holders'), deleted a page at a time.
curlcache_backend_status clear(Store* store, curlcache_backend_error* error) try {
    Failure failure;
    std::vector<std::string> keys;
    const Json parameters = {{"FilterExpression", "#t <> :l"},
                             {"ProjectionExpression", "#k"},
                             {"ExpressionAttributeNames", {{"#t", "t"}, {"#k", "k"}}},
                             {"ExpressionAttributeValues", {{":l", text("l")}}}};
    bool deleted = true;
    const bool scanned = scan_items(store, parameters, [&](const Json& item) {
        keys.push_back(text_of(item, "k"));
        if (keys.size() == 100) {
            deleted = delete_keys(store, keys, failure);
            keys.clear();
        }
        return deleted;
    }, failure);
    if (!scanned || !deleted || !delete_keys(store, keys, failure)) {
        return report(failure, error);
    }
    std::lock_guard lock(store->size_mutex);
    store->estimate = -1;
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

curlcache_backend_status purge_expired(Store* store, int64_t now, uint64_t* removed,
                                       curlcache_backend_error* error) try {
    Failure failure;
    std::set<std::string> live;                                // versions heads name
    std::vector<std::pair<std::string, std::string>> expired; // key, version
    std::vector<std::string> old_chunks, dead_locks;
    const int64_t real_now_ms = now_ms();
    const Json parameters = {{"ProjectionExpression", "#k, #t, #v, #e, #w, #x"},
                             {"ExpressionAttributeNames",
                              {{"#k", "k"}, {"#t", "t"}, {"#v", "v"}, {"#e", "e"}, {"#w", "w"}, {"#x", "x"}}}};
    const bool scanned = scan_items(store, parameters, [&](const Json& item) {
        const std::string kind = text_of(item, "t"), key = text_of(item, "k");
        if (kind == "h") {
            const int64_t expires = number_of(item, "e");
            if (expires > 0 && expires <= now) {
                expired.emplace_back(key, text_of(item, "v"));
            } else {
                live.insert(text_of(item, "v"));
            }
        } else if (kind == "c" && number_of(item, "w") <= real_now_ms / 1000 - k_orphan_seconds) {
            old_chunks.push_back(key);
        } else if (kind == "l" && number_of(item, "x") < real_now_ms) {
            dead_locks.push_back(key);
        }
        return true;
    }, failure);
    if (!scanned) {
        return report(failure, error);
    }
    uint64_t count = 0;
    for (const auto& [key, version] : expired) {
        if (remove_version(store, key, version, failure)) {
            ++count;
        } else if (!failure.message.empty()) {
            return report(failure, error);
        }
    }
    // "VERSION#N" of a version no head names: a crashed writer's.
    std::erase_if(old_chunks, [&](const std::string& chunk) {
        return live.contains(chunk.substr(0, chunk.find('#')));
    });
    old_chunks.insert(old_chunks.end(), dead_locks.begin(), dead_locks.end());
    if (!delete_keys(store, old_chunks, failure)) {
        return report(failure, error);
    }
    *removed = count;
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

} // namespace curlcache::plugins::dynamodb
