// Opening a MongoDB plugin's store: settings, the URI (timeouts applied to it), the pool of
// libmongoc clients, and the indexes of the head and lock collections.
#include "backends/plugins/mongodb/mongo_store.h"
#include "backends/plugins/plugin_settings.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <random>
#include <unistd.h>

namespace curlcache::plugins::mongodb {

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

curlcache_backend_status report(const Failure& failure, curlcache_backend_error* error) {
    std::snprintf(error->message, sizeof error->message, "%s", failure.message.c_str());
    return failure.status;
}

namespace {

// A database name MongoDB accepts, and that is not a path (a "sqlite,mongodb" tier's name).
bool is_database_name(const std::string& name) {
    if (name.empty() || name.size() > 63) {
        return false;
    }
    for (char c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

// libmongoc writes its own warnings to stderr by default: a program under the shim must
// not see them. curlcache reports every failure itself, with its one warning.
void quiet_log(mongoc_log_level_t, const char*, const char*, void*) {}

// libmongoc initialises itself in a constructor of its own when the plugin loads (and may
// warn then, e.g. when another copy of libmongoc in the process holds its shared-memory
// counters); a prioritised constructor runs before it and silences it first.
__attribute__((constructor(101))) void quiet_before_libmongoc() {
    mongoc_log_set_handler(quiet_log, nullptr);
}

void init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_log_set_handler(quiet_log, nullptr);
        mongoc_init();
    });
}

std::string random_owner() {
    std::random_device device;
    char text[64];
    std::snprintf(text, sizeof text, "%d-%08x%08x", static_cast<int>(getpid()), device(), device());
    return text;
}

bool create_indexes(Store* store, Lease& lease, Failure& failure) {
    // heads: the TTL index (MongoDB deletes a document once expire_at has passed; reads
    // also filter on expires, because that deletion runs once a minute) and the LRU order.
    // The key is _id, unique by itself. locks: _id = the key, unique.
    Bson command;
    BCON_APPEND(command.get(), "createIndexes", BCON_UTF8(store->heads.c_str()), "indexes", "[",
                "{", "key", "{", "expire_at", BCON_INT32(1), "}", "name", BCON_UTF8("expire_at_ttl"),
                "expireAfterSeconds", BCON_INT32(0), "}",
                "{", "key", "{", "accessed", BCON_INT32(1), "}", "name", BCON_UTF8("accessed_1"), "}",
                "]");
    bson_error_t error;
    mongoc_database_t* db = mongoc_client_get_database(lease.client(), store->database.c_str());
    const bool ok = mongoc_database_write_command_with_opts(db, command.get(), nullptr, nullptr, &error);
    mongoc_database_destroy(db);
    if (!ok) {
        failure = lease.fail(error, "creating the indexes of " + store->heads);
    }
    return ok;
}

} // namespace

} // namespace curlcache::plugins::mongodb

using namespace curlcache::plugins::mongodb;

namespace {

// `forked`: in a child, the parent's sockets and sessions stay the parent's.
void destroy(const Pooled& pooled, bool forked) {
    if (forked) {
        mongoc_client_reset(pooled.client);
    }
    if (pooled.bucket != nullptr) {
        mongoc_gridfs_bucket_destroy(pooled.bucket);
    }
    mongoc_client_destroy(pooled.client);
}

} // namespace

curlcache_backend_store::~curlcache_backend_store() {
    for (const Pooled& pooled : idle) {
        destroy(pooled, pid != getpid());
    }
    mongoc_uri_destroy(uri);
}

Pooled curlcache_backend_store::checkout(Failure& failure) {
    {
        std::lock_guard lock(pool_mutex);
        if (pid != getpid()) { // a forked child: never the parent's connections
            for (const Pooled& pooled : idle) {
                destroy(pooled, true);
            }
            idle.clear();
            pid = getpid();
            down_until = 0;
        }
        if (!idle.empty()) {
            const Pooled pooled = idle.back();
            idle.pop_back();
            return pooled;
        }
    }
    if (now_ms() < down_until.load()) {
        failure = {CURLCACHE_BACKEND_FAILURE, location + ": the server was lost a moment ago"
                                                         " (trying again within a second)"};
        return {};
    }
    mongoc_client_t* client = mongoc_client_new_from_uri(uri);
    if (client == nullptr) {
        failure = {CURLCACHE_BACKEND_FAILURE, location + ": cannot create a client"};
        return {};
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return {client, nullptr};
}

void curlcache_backend_store::checkin(Pooled pooled, bool lost) {
    if (lost) {
        down_until = now_ms() + k_down_ms;
        destroy(pooled, false);
        return;
    }
    std::lock_guard lock(pool_mutex);
    if (pid == getpid() && idle.size() < 8) {
        idle.push_back(pooled);
        return;
    }
    destroy(pooled, pid != getpid());
}

mongoc_gridfs_bucket_t* curlcache_backend_store::bucket(Pooled& pooled, bson_error_t* error) {
    if (pooled.bucket == nullptr) {
        Bson opts;
        BCON_APPEND(opts.get(), "bucketName", BCON_UTF8(bucket_name.c_str()), "chunkSizeBytes",
                    BCON_INT32(k_chunk));
        mongoc_database_t* db = mongoc_client_get_database(pooled.client, database.c_str());
        pooled.bucket = mongoc_gridfs_bucket_new(db, opts.get(), nullptr, error);
        mongoc_database_destroy(db);
    }
    return pooled.bucket;
}

curlcache_backend_store::Failure curlcache_backend_store::failure_of(const bson_error_t& error,
                                                                     std::string_view what,
                                                                     bool* lost) const {
    const bool network = error.domain == MONGOC_ERROR_STREAM ||
                         error.domain == MONGOC_ERROR_SERVER_SELECTION ||
                         error.domain == MONGOC_ERROR_PROTOCOL;
    const bool timeout = std::strstr(error.message, "timed out") != nullptr ||
                         std::strstr(error.message, "timeout") != nullptr;
    *lost = network || timeout;
    return {timeout ? CURLCACHE_BACKEND_TIMEOUT : CURLCACHE_BACKEND_FAILURE,
            location + ": " + std::string(what) + ": " + error.message};
}

namespace curlcache::plugins::mongodb {

curlcache_backend_status open_store(const curlcache_backend_host* host, bool gridfs, Store** out,
                                    curlcache_backend_error* error) try {
    init_once();
    auto store = std::make_unique<Store>();
    store->host = host;
    store->backend = gridfs ? "gridfs" : "mongodb";
    store->always_gridfs = gridfs;
    store->max_size = host->max_size;
    store->pid = getpid();
    store->owner = random_owner();
    // Values over 15 MiB go to GridFS: a document holds at most 16 MiB with its metadata.
    store->inline_limit = gridfs ? 0 : 15u << 20;
    const std::string prefix = std::string(store->backend) + ".";
    int64_t connect_timeout_ms = 1000, operation_timeout_ms = 5000;
    for (auto [key, target] : {std::pair{"connect_timeout", &connect_timeout_ms},
                               std::pair{"operation_timeout", &operation_timeout_ms}}) {
        if (const char* value = curlcache_backend_setting_get(host, key)) {
            *target = plugins::parse_ms(value);
            if (*target <= 0 || *target > INT32_MAX) {
                return report({CURLCACHE_BACKEND_FAILURE, prefix + key + ": bad timeout \"" + value +
                               "\" (milliseconds, \"250ms\", \"2s\")"}, error);
            }
        }
    }
    const char* url = curlcache_backend_setting_get(host, "url");
    bson_error_t parse_error;
    store->uri = mongoc_uri_new_with_error(url != nullptr ? url : "mongodb://127.0.0.1:27017/",
                                           &parse_error);
    if (store->uri == nullptr) {
        // libmongoc's message may quote the URL: only say which setting is wrong.
        return report({CURLCACHE_BACKEND_FAILURE, prefix + "url: not a valid mongodb:// URI"}, error);
    }
    // One try within connect_timeout, then the transfer goes to the network.
    mongoc_uri_set_option_as_int32(store->uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                   static_cast<int32_t>(connect_timeout_ms));
    mongoc_uri_set_option_as_int32(store->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                   static_cast<int32_t>(connect_timeout_ms));
    mongoc_uri_set_option_as_bool(store->uri, MONGOC_URI_SERVERSELECTIONTRYONCE, true);
    mongoc_uri_set_option_as_int32(store->uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                   static_cast<int32_t>(operation_timeout_ms));
    // No retries: one attempt within the timeouts, then the transfer goes to the network.
    mongoc_uri_set_option_as_bool(store->uri, MONGOC_URI_RETRYREADS, false);
    mongoc_uri_set_option_as_bool(store->uri, MONGOC_URI_RETRYWRITES, false);
    mongoc_uri_set_appname(store->uri, "curlcache");
    // <backend>.database, else the cache name when it is a database name (in a
    // "sqlite,mongodb" tier it is sqlite's file), else the URL's database, else "curlcache".
    const char* database = curlcache_backend_setting_get(host, "database");
    const char* in_url = mongoc_uri_get_database(store->uri);
    store->database = database != nullptr                 ? database
                      : is_database_name(host->cache_name) ? host->cache_name
                      : in_url != nullptr                  ? in_url
                                                           : "curlcache";
    if (!is_database_name(store->database)) {
        return report({CURLCACHE_BACKEND_FAILURE, "\"" + store->database + "\" is not a database"
                       " name (letters, digits, '_', '-')"}, error);
    }
    const char* collection = curlcache_backend_setting_get(host, gridfs ? "bucket" : "collection");
    const std::string base = collection != nullptr ? collection : gridfs ? "fs" : "responses";
    store->bucket_name = base;
    store->heads = gridfs ? base + ".heads" : base;
    store->locks = base + ".locks";
    const mongoc_host_list_t* hosts = mongoc_uri_get_hosts(store->uri);
    store->location = std::string(store->backend) + " " +
                      (hosts != nullptr ? hosts->host_and_port : "?") + "/" + store->database +
                      "." + store->heads;
    Lease lease(store.get());
    Failure failure;
    if (!lease.acquire(failure) || !create_indexes(store.get(), lease, failure)) {
        return report(failure, error);
    }
    *out = store.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "mongodb: out of memory"}, error);
}

} // namespace curlcache::plugins::mongodb
