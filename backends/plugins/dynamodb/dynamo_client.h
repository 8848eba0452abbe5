// DynamoDB's JSON API over HTTP(S), through the process's real libcurl that the host hands
// the plugin (host->curl: never the shim's wrappers). libcurl signs each request
// (CURLOPT_AWS_SIGV4, the key pair as user name and password, a session token as
// X-Amz-Security-Token). Easy handles are kept in a small per-process pool so that
// connections are reused; a forked child never touches its parent's (a shared TLS session
// would be corrupted): they are abandoned, and the child connects anew. After a connect
// failure or a timeout every call fails at once for k_backoff, so a dead or hung server
// costs one timeout per second, not one per transfer.
#pragma once

#include <curlcache/backend.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace curlcache::plugins::dynamodb {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// An error on its way to curlcache: status + one line without credentials. `type` is
// DynamoDB's error type ("ConditionalCheckFailedException"), "" for transport errors.
struct Failure {
    curlcache_backend_status status = CURLCACHE_BACKEND_FAILURE;
    std::string message;
    std::string type;
};

struct Credentials {
    std::string access_key;
    std::string secret_key;
    std::string session_token; // "" when none
};

struct Endpoint {
    std::string url;    // "https://dynamodb.eu-west-1.amazonaws.com" or a local server's
    std::string region; // "eu-west-1"
    int64_t connect_timeout_ms = 1000;
    int64_t request_timeout_ms = 5000;
};

class Client {
public:
    static constexpr std::chrono::milliseconds k_backoff{1000};
    static constexpr size_t k_max_idle = 4;

    Client(const curlcache_backend_curl* curl, Endpoint endpoint, Credentials credentials);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Calls operation `op` ("GetItem") with `request`; true and `response` filled on a 2xx
    // answer, false with `failure` otherwise (DynamoDB's error type in failure.type).
    bool call(const char* op, const Json& request, Json& response, Failure& failure);
    // The same with the request's JSON text as it is and the answer's unparsed (chunk items:
    // their 467 KB of base64 are written and read without a JSON library's pass over them).
    bool call_text(const char* op, const std::string& body, std::string& answer, Failure& failure);

    const Endpoint& endpoint() const { return m_endpoint; }

private:
    CURL* checkout(Failure& failure);
    void checkin(CURL* handle, bool reusable);

    const curlcache_backend_curl* m_curl;
    Endpoint m_endpoint;
    Credentials m_credentials;
    std::string m_sigv4; // "aws:amz:REGION:dynamodb"
    std::mutex m_mutex;
    std::vector<CURL*> m_idle;
    uint64_t m_generation;
    Clock::time_point m_retry_at{};
    Failure m_last_failure;
};

// Increases in a child after fork().
uint64_t fork_generation();

// Standard base64 (RFC 4648), as DynamoDB's JSON carries binary attributes.
std::string base64_encode(std::string_view bytes);
bool base64_decode(std::string_view text, std::string& out);

} // namespace curlcache::plugins::dynamodb
