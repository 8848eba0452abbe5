// Opening the DynamoDB plugin's store: settings ([dynamodb] table), credentials (the AWS
// environment variables, else a profile of the shared credentials file; never logged,
// never stored anywhere but in this process's memory), and the table: described on every
// open (one request), created when missing if create_table is set (on-demand billing,
// then its TTL attribute switched on).
//
// Settings: region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1), endpoint (else
// https://dynamodb.REGION.amazonaws.com), table (else the cache name when it is a table
// name, else "curlcache"), create_table (false), profile (else AWS_PROFILE, else
// "default"), connect_timeout ("1s") and request_timeout ("5s").
#include "backends/plugins/dynamodb/dynamo_store.h"
#include "backends/plugins/plugin_settings.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <new>
#include <thread>
#include <unistd.h>

namespace curlcache::plugins::dynamodb {

namespace {

const char* env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
}

bool is_table_name(const std::string& name) {
    if (name.size() < 3 || name.size() > 255) {
        return false;
    }
    for (char c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
            return false;
        }
    }
    return true;
}

std::string trim(const std::string& text) {
    const size_t first = text.find_first_not_of(" \t\r");
    const size_t last = text.find_last_not_of(" \t\r");
    return first == std::string::npos ? "" : text.substr(first, last - first + 1);
}

// The key pair of `profile` in an AWS shared credentials file (INI: [profile], key = value).
bool read_profile(const std::string& path, const std::string& profile, Credentials& out) {
    std::ifstream in(path);
    std::string line, section;
    Credentials found;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') {
            continue;
        }
        if (line.front() == '[' && line.back() == ']') {
            section = trim(line.substr(1, line.size() - 2));
            continue;
        }
        const size_t equals = line.find('=');
        if (section != profile || equals == std::string::npos) {
            continue;
        }
        const std::string key = trim(line.substr(0, equals)), value = trim(line.substr(equals + 1));
        if (key == "aws_access_key_id") {
            found.access_key = value;
        } else if (key == "aws_secret_access_key") {
            found.secret_key = value;
        } else if (key == "aws_session_token") {
            found.session_token = value;
        }
    }
    if (found.access_key.empty() || found.secret_key.empty()) {
        return false;
    }
    out = std::move(found);
    return true;
}

bool credentials(const curlcache_backend_host* host, Credentials& out, Failure& failure) {
    if (env("AWS_ACCESS_KEY_ID") != nullptr && env("AWS_SECRET_ACCESS_KEY") != nullptr) {
        out = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
               env("AWS_SESSION_TOKEN") != nullptr ? env("AWS_SESSION_TOKEN") : ""};
        return true;
    }
    const char* profile = curlcache_backend_setting_get(host, "profile");
    profile = profile != nullptr ? profile : env("AWS_PROFILE") != nullptr ? env("AWS_PROFILE") : "default";
    std::string path;
    if (env("AWS_SHARED_CREDENTIALS_FILE") != nullptr) {
        path = env("AWS_SHARED_CREDENTIALS_FILE");
    } else if (env("HOME") != nullptr) {
        path = std::string(env("HOME")) + "/.aws/credentials";
    }
    if (!path.empty() && read_profile(path, profile, out)) {
        return true;
    }
    failure = {CURLCACHE_BACKEND_FAILURE, std::string("dynamodb: no AWS credentials: set AWS_ACCESS_KEY_ID "
                                                      "and AWS_SECRET_ACCESS_KEY, or profile \"") +
                                              profile + "\" in " + (path.empty() ? "~/.aws/credentials" : path), ""};
    return false;
}

bool truthy(const char* value) {
    const std::string v = value != nullptr ? value : "";
    return v == "true" || v == "1" || v == "yes" || v == "on";
}

// DescribeTable until the table is ACTIVE (a new one is CREATING for a few seconds on AWS).
bool await_active(Store* store, Failure& failure) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    for (int round = 0;; ++round) {
        Json response;
        if (!store->call("DescribeTable", Json::object(), response, failure)) {
            if (failure.type != "ResourceNotFoundException" || Clock::now() > deadline) {
                return false;
            }
        } else {
            const std::string status = response.value("Table", Json::object()).value("TableStatus", "");
            if (status == "ACTIVE" || status == "UPDATING") {
                return true;
            }
            if (status != "CREATING" || Clock::now() > deadline) {
                failure = {CURLCACHE_BACKEND_FAILURE, store->location + ": table status " + status, ""};
                return false;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(round < 10 ? 50 : 500));
    }
}

bool create_table(Store* store, Failure& failure) {
    Json response;
    const bool created = store->call(
        "CreateTable",
        {{"AttributeDefinitions", {{{"AttributeName", "k"}, {"AttributeType", "S"}}}},
         {"KeySchema", {{{"AttributeName", "k"}, {"KeyType", "HASH"}}}},
         {"BillingMode", "PAY_PER_REQUEST"}},
        response, failure);
    // Another process creating it at the same moment is as good.
    if (!created && failure.type != "ResourceInUseException") {
        return false;
    }
    if (!await_active(store, failure)) {
        return false;
    }
    if (!created) {
        return true;
    }
    Failure ttl;
    if (!store->call("UpdateTimeToLive",
                     {{"TimeToLiveSpecification", {{"Enabled", true}, {"AttributeName", "ttl"}}}}, response,
                     ttl)) {
        // Local servers (dynalite) lack TTL: expired items are filtered on read and purged.
        const auto level = ttl.type == "UnknownOperationException" ? CURLCACHE_BACKEND_LOG_INFO
                                                                    : CURLCACHE_BACKEND_LOG_WARNING;
        if (store->host->log_enabled(level)) {
            store->host->log(store->host, level, ("TTL not enabled on " + store->location + ": " +
                                                  ttl.message).c_str());
        }
    }
    return true;
}

} // namespace

curlcache_backend_status open_store(const curlcache_backend_host* host, Store** out,
                                    curlcache_backend_error* error) try {
    auto store = std::make_unique<Store>();
    store->host = host;
    store->max_size = host->max_size;
    store->owner = new_version() + "-" + std::to_string(getpid());
    Endpoint endpoint;
    for (auto [key, target] : {std::pair{"connect_timeout", &endpoint.connect_timeout_ms},
                               std::pair{"request_timeout", &endpoint.request_timeout_ms}}) {
        if (const char* value = curlcache_backend_setting_get(host, key)) {
            *target = curlcache::plugins::parse_ms(value);
            if (*target <= 0) {
                return report({CURLCACHE_BACKEND_FAILURE, std::string("dynamodb.") + key + ": bad timeout \"" +
                                                              value + "\" (milliseconds, \"250ms\", \"2s\")", ""},
                              error);
            }
        }
    }
    const char* region = curlcache_backend_setting_get(host, "region");
    region = region != nullptr ? region : env("AWS_REGION") != nullptr ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
    endpoint.region = region != nullptr ? region : "us-east-1";
    const char* url = curlcache_backend_setting_get(host, "endpoint");
    endpoint.url = url != nullptr ? url : "https://dynamodb." + endpoint.region + ".amazonaws.com";
    while (!endpoint.url.empty() && endpoint.url.back() == '/') {
        endpoint.url.pop_back();
    }
    if (endpoint.url.rfind("http://", 0) != 0 && endpoint.url.rfind("https://", 0) != 0) {
        return report({CURLCACHE_BACKEND_FAILURE, "dynamodb.endpoint: \"" + endpoint.url +
                                                      "\" is not an http:// or https:// URL", ""}, error);
    }
    // dynamodb.table, else the cache name when it is a table name (in tiers such as
    // "sqlite,dynamodb" the name is sqlite's file), else "curlcache".
    const char* table = curlcache_backend_setting_get(host, "table");
    std::string name = table != nullptr ? table : host->cache_name;
    if (table == nullptr && (name.empty() || name.find('/') != std::string::npos)) {
        name = "curlcache";
    }
    if (!is_table_name(name)) {
        return report({CURLCACHE_BACKEND_FAILURE, "cache name \"" + name + "\" is not a DynamoDB table name "
                                                  "(3 to 255 of letters, digits, '_', '-', '.')", ""}, error);
    }
    store->table = name;
    store->location = "dynamodb " + endpoint.url + " table " + name;
    Failure failure;
    Credentials keys;
    if (!credentials(host, keys, failure)) {
        return report(failure, error);
    }
    store->client = std::make_unique<Client>(host->curl, std::move(endpoint), std::move(keys));
    Json response;
    if (!store->call("DescribeTable", Json::object(), response, failure)) {
        if (failure.type != "ResourceNotFoundException") {
            return report(failure, error);
        }
        if (!truthy(curlcache_backend_setting_get(host, "create_table"))) {
            return report({CURLCACHE_BACKEND_FAILURE, store->location + " does not exist (set "
                                                      "dynamodb.create_table = true to create it)", ""}, error);
        }
        if (!create_table(store.get(), failure)) {
            return report(failure, error);
        }
    } else if (response.value("Table", Json::object()).value("TableStatus", "") == "CREATING" &&
               !await_active(store.get(), failure)) {
        return report(failure, error);
    }
    *out = store.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "dynamodb: out of memory", ""}, error);
}

} // namespace curlcache::plugins::dynamodb
