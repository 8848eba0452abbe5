// The DynamoDB backend, a plugin on curlcache's backend ABI (curlcache/backend.h), talking
// to DynamoDB's JSON API through the host's real libcurl (dynamo_client.h). No AWS SDK.
//
// One cache = one table (dynamodb.table, else the cache name when it is a table name, else
// "curlcache"), with a string hash key `k` and three kinds of items (`t`):
//   head  "h"  k = the 32-hex-digit key; v = the version id of the stored value, m, u, s,
//              c, e (expires), z (value bytes), n (chunk items), b (the value's first
//              bytes, or all of it when it fits), a (accessed, us: LRU), ttl (= e, for
//              DynamoDB's TTL deletion)
//   chunk "c"  k = "VERSION#N" (N from 1), d = up to 350 KB of the value, w (written)
//   lock  "l"  k = "KEY#lock", x (expires, ms), o (owner), ttl
// A value over ~350 KB is written as chunk items under a fresh version id, then the head
// last (PutItem, which returns the head it replaced, whose chunks are then deleted): a
// reader follows the head's version, so it never combines chunks of two versions, and a
// value that is replaced while it is read (a chunk gone) is read again when nothing was
// delivered yet, else an error (the transfer goes to the network). Reads are strongly
// consistent. Expired items are filtered on read, as DynamoDB's TTL deletes them late.
// Coalescing locks are conditional writes (attribute_not_exists, or an expiry in the
// past: a dead holder's lock is taken over). List, purge, clear, usage and eviction Scan
// the table page by page.
#include "backends/plugins/dynamodb/dynamo_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>
#include <sys/random.h>
#include <unistd.h>

namespace curlcache::plugins::dynamodb {

int64_t now_us() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_ms() {
    return now_us() / 1000;
}

Json text(std::string_view value) {
    return {{"S", std::string(value)}};
}

Json number(int64_t value) {
    return {{"N", std::to_string(value)}};
}

Json binary(std::string_view bytes) {
    return {{"B", base64_encode(bytes)}};
}

std::string text_of(const Json& item, const char* name) {
    const auto found = item.find(name);
    if (found == item.end() || !found->is_object()) {
        return "";
    }
    const auto s = found->find("S");
    return s != found->end() && s->is_string() ? s->get<std::string>() : "";
}

int64_t number_of(const Json& item, const char* name) {
    const auto found = item.find(name);
    if (found == item.end() || !found->is_object()) {
        return 0;
    }
    const auto n = found->find("N");
    return n != found->end() && n->is_string() ? std::strtoll(n->get_ref<const std::string&>().c_str(), nullptr, 10)
                                               : 0;
}

bool binary_of(const Json& item, const char* name, std::string& out) {
    out.clear();
    const auto found = item.find(name);
    if (found == item.end()) {
        return true;
    }
    const auto b = found->is_object() ? found->find("B") : found->end();
    return b != found->end() && b->is_string() && base64_decode(b->get_ref<const std::string&>(), out);
}

std::string chunk_key(std::string_view version, uint64_t n) {
    return std::string(version) + "#" + std::to_string(n);
}

std::string lock_key(std::string_view key) {
    return std::string(key) + "#lock";
}

std::string new_version() {
    unsigned char bytes[8] = {};
    if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        const uint64_t fallback = static_cast<uint64_t>(now_us()) ^ static_cast<uint64_t>(getpid()) << 40;
        std::memcpy(bytes, &fallback, sizeof bytes);
    }
    char hex[17];
    for (size_t i = 0; i < sizeof bytes; ++i) {
        std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    }
    return hex;
}

curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error) {
    std::snprintf(error->message, sizeof error->message, "%s", failure.message.c_str());
    return failure.status;
}

} // namespace curlcache::plugins::dynamodb

using namespace curlcache::plugins::dynamodb;

bool curlcache_backend_store::call(const char* op, Json request, Json& response, Failure& failure) {
    request["TableName"] = table;
    return client->call(op, request, response, failure);
}

namespace curlcache::plugins::dynamodb {

namespace {

bool expired(const Json& head) {
    const int64_t expires = number_of(head, "e");
    return expires > 0 && expires <= now_ms() / 1000;
}

} // namespace

bool read_head(Store* store, const std::string& key, Json& head, Failure& failure) {
    Json response;
    if (!store->call("GetItem", {{"Key", {{"k", text(key)}}}, {"ConsistentRead", true}}, response,
                     failure)) {
        return false;
    }
    head = response.value("Item", Json::object());
    if (!head.is_object() || text_of(head, "t") != "h" || expired(head)) {
        head = Json::object();
    }
    return true;
}

// The answer is {"Item":{"d":{"B":"<base64>"}}} (only d projected), {} when there is none:
// the base64 is taken out of the text directly; anything else goes through the parser.
bool read_chunk(Store* store, const std::string& version, uint64_t n, std::string& bytes, bool& gone,
                Failure& failure) {
    const std::string request = R"({"TableName":")" + store->table + R"(","Key":{"k":{"S":")" +
                                chunk_key(version, n) + R"("}},"ConsistentRead":true,"ProjectionExpression":"d"})";
    std::string answer;
    if (!store->client->call_text("GetItem", request, answer, failure)) {
        return false;
    }
    constexpr std::string_view k_prefix = R"({"Item":{"d":{"B":")", k_suffix = R"("}}})";
    const std::string_view text(answer);
    if (text.starts_with(k_prefix) && text.ends_with(k_suffix)) {
        gone = false;
        if (base64_decode(text.substr(k_prefix.size(), text.size() - k_prefix.size() - k_suffix.size()), bytes)) {
            return true;
        }
    }
    const Json response = Json::parse(answer, nullptr, false);
    const auto item = response.is_object() ? response.find("Item") : response.end();
    gone = response.is_object() && item == response.end();
    if (!gone && (item == response.end() || !binary_of(*item, "d", bytes))) {
        failure = {CURLCACHE_BACKEND_FAILURE, "dynamodb: chunk item " + chunk_key(version, n) +
                                                  " is corrupt", ""};
        return false;
    }
    return true;
}

void touch(Store* store, const std::string& key, const std::string& version) {
    Json response;
    Failure ignored; // an access time that could not be written only ages the entry
    store->call("UpdateItem",
                {{"Key", {{"k", text(key)}}},
                 {"UpdateExpression", "SET #a = :a"},
                 {"ConditionExpression", "#v = :v"},
                 {"ExpressionAttributeNames", {{"#a", "a"}, {"#v", "v"}}},
                 {"ExpressionAttributeValues", {{":a", number(now_us())}, {":v", text(version)}}}},
                response, ignored);
}

namespace {

int deliver(const curlcache_backend_sink* sink, const std::string& bytes) {
    return bytes.empty() ? 0 : sink->write(sink->context, bytes.data(), bytes.size());
}

curlcache_backend_status refused(curlcache_backend_error* error) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: the host refused the value", ""}, error);
}

} // namespace

curlcache_backend_status get(Store* store, const char* key, const curlcache_backend_sink* sink,
                             int* found, curlcache_backend_error* error) {
    return get_whole(store, key, nullptr, sink, found, error);
}

curlcache_backend_status get_whole(Store* store, const char* key, const Json* read,
                                   const curlcache_backend_sink* sink, int* found,
                                   curlcache_backend_error* error) try {
    const std::string k = key;
    *found = 0;
    Failure failure;
    // A value replaced between its head and its first chunk is read again, from its new
    // head; once bytes went to the sink that is no longer possible. A head whose first
    // chunk is missing twice in a row (clear() ran under a stream) is broken: removed, a miss.
    std::string missing;
    for (int attempt = 0; attempt < 3; ++attempt) {
        Json head;
        if (attempt == 0 && read != nullptr) {
            head = *read;
        } else if (!read_head(store, k, head, failure)) {
            return report(failure, error);
        }
        if (head.empty()) {
            return CURLCACHE_BACKEND_OK;
        }
        const std::string version = text_of(head, "v");
        const uint64_t chunks = static_cast<uint64_t>(number_of(head, "n"));
        std::string first, bytes;
        if (!binary_of(head, "b", first)) {
            return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: head item " + k + " is corrupt", ""}, error);
        }
        bool gone = false;
        if (chunks > 0 && !read_chunk(store, version, 1, bytes, gone, failure)) {
            return report(failure, error);
        }
        if (gone && missing == version) {
            return remove_version(store, k, version, failure) || failure.message.empty()
                       ? CURLCACHE_BACKEND_OK
                       : report(failure, error);
        }
        if (gone) {
            missing = version;
            continue;
        }
        if (sink->size_hint != nullptr) {
            sink->size_hint(sink->context, static_cast<uint64_t>(number_of(head, "z")));
        }
        if (deliver(sink, first) != 0 || deliver(sink, bytes) != 0) {
            return refused(error);
        }
        for (uint64_t n = 2; n <= chunks; ++n) {
            if (!read_chunk(store, version, n, bytes, gone, failure)) {
                return report(failure, error);
            }
            if (gone) {
                return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: " + k + " was replaced while it "
                                                              "was read", ""}, error);
            }
            if (deliver(sink, bytes) != 0) {
                return refused(error);
            }
        }
        *found = 1;
        if (store->max_size != 0) {
            touch(store, k, version);
        }
        return CURLCACHE_BACKEND_OK;
    }
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: " + k + " kept changing while it was read", ""},
                  error);
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

// Written as text: the table and key need no escaping (checked names, hex digits), and
// the base64 none.
bool put_chunk(Store* store, std::string_view version, uint64_t n, std::string_view data,
               Failure& failure) {
    std::string request = R"({"TableName":")" + store->table + R"(","Item":{"k":{"S":")" +
                          chunk_key(version, n) + R"("},"t":{"S":"c"},"w":{"N":")" +
                          std::to_string(now_ms() / 1000) + R"("},"d":{"B":")";
    request += base64_encode(data);
    request += R"("}}})";
    std::string answer;
    return store->client->call_text("PutItem", request, answer, failure);
}

bool delete_keys(Store* store, const std::vector<std::string>& keys, Failure& failure) {
    for (size_t at = 0; at < keys.size(); at += 25) {
        Json requests = Json::array();
        for (size_t i = at; i < keys.size() && i < at + 25; ++i) {
            requests.push_back({{"DeleteRequest", {{"Key", {{"k", text(keys[i])}}}}}});
        }
        // What the server did not get to comes back as UnprocessedItems: asked again.
        for (int attempt = 0; !requests.empty(); ++attempt) {
            if (attempt == 5) {
                failure = {CURLCACHE_BACKEND_FAILURE, "dynamodb: BatchWriteItem left items unprocessed", ""};
                return false;
            }
            Json response;
            if (!store->client->call("BatchWriteItem", {{"RequestItems", {{store->table, requests}}}},
                                     response, failure)) {
                return false;
            }
            requests = response.value("UnprocessedItems", Json::object()).value(store->table, Json::array());
        }
    }
    return true;
}

void drop_chunks(Store* store, std::string_view version, uint64_t chunks) {
    std::vector<std::string> keys;
    for (uint64_t n = 1; n <= chunks; ++n) {
        keys.push_back(chunk_key(version, n));
    }
    Failure ignored; // left behind, they are removed by purge (orphans)
    delete_keys(store, keys, ignored);
}

// The chunks of the head a write or delete replaced.
void drop_old(Store* store, const Json& response, const std::string& new_version) {
    const Json old = response.value("Attributes", Json::object());
    const std::string version = text_of(old, "v");
    if (text_of(old, "t") == "h" && version != new_version) {
        drop_chunks(store, version, static_cast<uint64_t>(number_of(old, "n")));
    }
}

bool put_head(Store* store, const curlcache_backend_metadata& meta, std::string_view version,
              uint64_t chunks, std::string_view inline_bytes, uint64_t size, Failure& failure) {
    Json item = {{"k", text(meta.key)},
                 {"t", text("h")},
                 {"v", text(version)},
                 {"m", text(meta.method != nullptr ? meta.method : "")},
                 {"u", text(meta.url != nullptr ? meta.url : "")},
                 {"s", number(meta.status)},
                 {"c", number(meta.created)},
                 {"e", number(meta.expires)},
                 {"z", number(static_cast<int64_t>(size))},
                 {"n", number(static_cast<int64_t>(chunks))},
                 {"a", number(now_us())}};
    if (!inline_bytes.empty()) {
        item["b"] = binary(inline_bytes);
    }
    if (meta.expires > 0) {
        item["ttl"] = number(meta.expires);
    }
    Json response;
    if (!store->call("PutItem", {{"Item", item}, {"ReturnValues", "ALL_OLD"}}, response, failure)) {
        return false;
    }
    drop_old(store, response, std::string(version));
    if (store->max_size == 0) {
        return true;
    }
    const Json old = response.value("Attributes", Json::object());
    const int64_t grown = static_cast<int64_t>(size) - (text_of(old, "t") == "h" ? number_of(old, "z") : 0);
    return evict(store, static_cast<uint64_t>(std::max<int64_t>(grown, 0)), failure);
}

curlcache_backend_status remove_key(Store* store, const char* key, int* existed,
                                    curlcache_backend_error* error) try {
    Json response;
    Failure failure;
    if (!store->call("DeleteItem", {{"Key", {{"k", text(key)}}}, {"ReturnValues", "ALL_OLD"}}, response,
                     failure)) {
        return report(failure, error);
    }
    const bool was = text_of(response.value("Attributes", Json::object()), "t") == "h";
    if (existed != nullptr) {
        *existed = was ? 1 : 0;
    }
    drop_old(store, response, "");
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

bool remove_version(Store* store, const std::string& key, const std::string& version,
                    Failure& failure) {
    Json response;
    if (!store->call("DeleteItem",
                     {{"Key", {{"k", text(key)}}},
                      {"ConditionExpression", "#v = :v"},
                      {"ExpressionAttributeNames", {{"#v", "v"}}},
                      {"ExpressionAttributeValues", {{":v", text(version)}}},
                      {"ReturnValues", "ALL_OLD"}},
                     response, failure)) {
        if (failure.type == "ConditionalCheckFailedException") {
            failure = {};
            return false;
        }
        return false;
    }
    drop_old(store, response, "");
    return true;
}

curlcache_backend_status put(Store* store, const curlcache_backend_metadata* meta,
                             const curlcache_backend_bytes* pieces, size_t count,
                             curlcache_backend_error* error) try {
    uint64_t total = 0;
    for (size_t i = 0; i < count; ++i) {
        total += pieces[i].size;
    }
    if (store->max_size != 0 && total > store->max_size) {
        return remove_key(store, meta->key, nullptr, error); // not stored; no stale value left
    }
    const std::string version = new_version();
    const size_t url_size = meta->url != nullptr ? std::strlen(meta->url) : 0;
    std::string buffer;
    buffer.reserve(std::min<uint64_t>(total, k_chunk));
    Failure failure;
    if (total + url_size <= k_chunk) {
        for (size_t i = 0; i < count; ++i) {
            buffer.append(pieces[i].data, pieces[i].size);
        }
        return put_head(store, *meta, version, 0, buffer, total, failure) ? CURLCACHE_BACKEND_OK
                                                                           : report(failure, error);
    }
    uint64_t chunks = 0;
    const auto flush = [&] {
        if (put_chunk(store, version, chunks + 1, buffer, failure)) {
            ++chunks;
            buffer.clear();
            return true;
        }
        drop_chunks(store, version, chunks);
        return false;
    };
    for (size_t i = 0; i < count; ++i) {
        std::string_view rest(pieces[i].data, pieces[i].size);
        while (!rest.empty()) {
            const size_t take = std::min(rest.size(), k_chunk - buffer.size());
            buffer.append(rest.substr(0, take));
            rest.remove_prefix(take);
            if (buffer.size() == k_chunk && !flush()) {
                return report(failure, error);
            }
        }
    }
    if (!buffer.empty() && !flush()) {
        return report(failure, error);
    }
    if (!put_head(store, *meta, version, chunks, {}, total, failure)) {
        drop_chunks(store, version, chunks);
        return report(failure, error);
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

curlcache_backend_metadata head_meta(const Json& item, const std::string& key, const std::string& method,
                                     const std::string& url) {
    return {key.c_str(), method.c_str(), url.c_str(), static_cast<long>(number_of(item, "s")),
            number_of(item, "c"), number_of(item, "e"), static_cast<uint64_t>(number_of(item, "z"))};
}

curlcache_backend_status get_metadata(Store* store, const char* key, curlcache_backend_visit visit,
                                      void* context, curlcache_backend_error* error) try {
    Json response;
    Failure failure;
    if (!store->call("GetItem",
                     {{"Key", {{"k", text(key)}}},
                      {"ConsistentRead", true},
                      {"ProjectionExpression", "#t, #m, #u, #s, #c, #e, #z"},
                      {"ExpressionAttributeNames",
                       {{"#t", "t"}, {"#m", "m"}, {"#u", "u"}, {"#s", "s"}, {"#c", "c"}, {"#e", "e"}, {"#z", "z"}}}},
                     response, failure)) {
        return report(failure, error);
    }
    const Json item = response.value("Item", Json::object());
    if (text_of(item, "t") == "h" && !expired(item)) {
        const std::string k = key, method = text_of(item, "m"), url = text_of(item, "u");
        const curlcache_backend_metadata meta = head_meta(item, k, method, url);
        visit(context, &meta);
    }
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

void close_store(Store* store) {
    delete store;
}

const char* location(Store* store) {
    return store->location.c_str();
}

} // namespace curlcache::plugins::dynamodb

namespace {

const curlcache_backend_plugin k_plugin = {
    .abi_major = CURLCACHE_BACKEND_ABI_MAJOR,
    .abi_minor = CURLCACHE_BACKEND_ABI_MINOR,
    .size = sizeof(curlcache_backend_plugin),
    .name = "dynamodb",
    .version = CURLCACHE_DYNAMODB_VERSION,
    .description = "Amazon DynamoDB (JSON API over libcurl, SigV4)",
    .open = open_store,
    .close = close_store,
    .location = location,
    .get = get,
    .put = put,
    .remove = remove_key,
    .scan = scan,
    .clear = clear,
    .usage = usage,
    .purge_expired = purge_expired,
    .flush = nullptr,
    .vacuum = nullptr,
    .try_lock = try_lock,
    .unlock = unlock,
    .get_metadata = get_metadata,
    .begin_put = begin_put,
    .append = append,
    .commit = commit,
    .close_stream = close_stream,
    .open_value = open_value,
    .read_range = read_range,
    .close_value = close_value,
};

} // namespace

extern "C" CURLCACHE_BACKEND_EXPORT const curlcache_backend_plugin* curlcache_backend_plugin_entry(void) {
    return &k_plugin;
}
