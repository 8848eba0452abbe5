#include "backends/plugins/dynamodb/dynamo_client.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <pthread.h>

namespace curlcache::plugins::dynamodb {

namespace {

std::atomic<uint64_t> g_generation{0};

void on_fork_child() {
    g_generation.fetch_add(1, std::memory_order_relaxed);
}

size_t collect(char* data, size_t size, size_t count, void* context) {
    try {
        static_cast<std::string*>(context)->append(data, size * count);
        return size * count;
    } catch (...) {
        return 0; // libcurl fails the transfer
    }
}

// Errors that say the key pair, its session token or its permissions were refused.
bool is_credentials_error(const std::string& type) {
    return type == "UnrecognizedClientException" || type == "InvalidSignatureException" ||
           type == "MissingAuthenticationTokenException" || type == "ExpiredTokenException" ||
           type == "AccessDeniedException" || type == "IncompleteSignatureException" ||
           type == "InvalidClientTokenId" || type == "SignatureDoesNotMatch";
}

struct SlistFree {
    const curlcache_backend_curl* curl;
    curl_slist* list;
    ~SlistFree() { curl->slist_free_all(list); }
};

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

} // namespace

uint64_t fork_generation() {
    static const bool registered = pthread_atfork(nullptr, nullptr, on_fork_child) == 0;
    (void)registered;
    return g_generation.load(std::memory_order_relaxed);
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                           static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                           static_cast<unsigned char>(bytes[i + 2]);
        out += k_alphabet[n >> 18 & 63];
        out += k_alphabet[n >> 12 & 63];
        out += k_alphabet[n >> 6 & 63];
        out += k_alphabet[n & 63];
    }
    if (const size_t rest = bytes.size() - i; rest > 0) {
        uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) {
            n |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        }
        out += k_alphabet[n >> 18 & 63];
        out += k_alphabet[n >> 12 & 63];
        out += rest == 2 ? k_alphabet[n >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

bool base64_decode(std::string_view text, std::string& out) {
    static const auto k_values = [] {
        std::array<int8_t, 256> values{};
        values.fill(-1);
        for (int i = 0; i < 64; ++i) {
            values[static_cast<unsigned char>(k_alphabet[i])] = static_cast<int8_t>(i);
        }
        return values;
    }();
    if (text.size() % 4 != 0) {
        return false;
    }
    out.clear();
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        uint32_t n = 0;
        int pad = 0;
        for (size_t j = 0; j < 4; ++j) {
            const char c = text[i + j];
            if (c == '=' && i + 4 == text.size() && j >= 2) {
                ++pad;
                n <<= 6;
                continue;
            }
            const int8_t v = k_values[static_cast<unsigned char>(c)];
            if (v < 0 || pad > 0) {
                return false;
            }
            n = n << 6 | static_cast<uint32_t>(v);
        }
        out += static_cast<char>(n >> 16 & 255);
        if (pad < 2) {
            out += static_cast<char>(n >> 8 & 255);
        }
        if (pad < 1) {
            out += static_cast<char>(n & 255);
        }
    }
    return true;
}

Client::Client(const curlcache_backend_curl* curl, Endpoint endpoint, Credentials credentials)
    : m_curl(curl), m_endpoint(std::move(endpoint)), m_credentials(std::move(credentials)),
      m_sigv4("aws:amz:" + m_endpoint.region + ":dynamodb"), m_generation(fork_generation()) {}

Client::~Client() {
    // In a forked child the handles' connections are the parent's: left alone.
    if (m_generation == fork_generation()) {
        for (CURL* handle : m_idle) {
            m_curl->easy_cleanup(handle);
        }
    }
    // The secret is wiped before the memory goes back.
    std::fill(m_credentials.secret_key.begin(), m_credentials.secret_key.end(), '\0');
    std::fill(m_credentials.session_token.begin(), m_credentials.session_token.end(), '\0');
}

CURL* Client::checkout(Failure& failure) {
    {
        std::lock_guard lock(m_mutex);
        if (m_generation != fork_generation()) {
            m_idle.clear(); // the parent's: abandoned, never cleaned up here
            m_generation = fork_generation();
        }
        if (!m_idle.empty()) {
            CURL* handle = m_idle.back();
            m_idle.pop_back();
            return handle;
        }
        if (Clock::now() < m_retry_at) {
            failure = m_last_failure;
            return nullptr;
        }
    }
    CURL* handle = m_curl->easy_init();
    if (handle == nullptr) {
        failure = {CURLCACHE_BACKEND_FAILURE, "dynamodb: curl_easy_init failed", ""};
    }
    return handle;
}

void Client::checkin(CURL* handle, bool reusable) {
    std::lock_guard lock(m_mutex);
    if (m_generation != fork_generation()) {
        return; // a handle checked out before a fork, in the child: abandoned
    }
    if (!reusable || m_idle.size() >= k_max_idle) {
        m_curl->easy_cleanup(handle);
        return;
    }
    m_idle.push_back(handle);
}

bool Client::call_text(const char* op, const std::string& body, std::string& answer, Failure& failure) {
    if (m_curl == nullptr || m_curl->easy_init == nullptr) {
        failure = {CURLCACHE_BACKEND_FAILURE, "dynamodb: the host could not load libcurl", ""};
        return false;
    }
    CURL* handle = checkout(failure);
    if (handle == nullptr) {
        return false;
    }
    answer.clear();
    char error_text[CURL_ERROR_SIZE] = {};
    const std::string target = std::string("X-Amz-Target: DynamoDB_20120810.") + op;
    curl_slist* headers = m_curl->slist_append(nullptr, "Content-Type: application/x-amz-json-1.0");
    headers = m_curl->slist_append(headers, target.c_str());
    std::string token_header;
    if (!m_credentials.session_token.empty()) {
        token_header = "X-Amz-Security-Token: " + m_credentials.session_token;
        headers = m_curl->slist_append(headers, token_header.c_str());
    }
    SlistFree free_headers{m_curl, headers};
    const auto setopt = m_curl->easy_setopt;
    m_curl->easy_reset(handle); // keeps the handle's connections
    setopt(handle, CURLOPT_URL, (m_endpoint.url + "/").c_str());
    setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    setopt(handle, CURLOPT_NOSIGNAL, 1L);
    setopt(handle, CURLOPT_HTTPHEADER, headers);
    setopt(handle, CURLOPT_POSTFIELDS, body.c_str());
    setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    setopt(handle, CURLOPT_AWS_SIGV4, m_sigv4.c_str());
    setopt(handle, CURLOPT_USERNAME, m_credentials.access_key.c_str());
    setopt(handle, CURLOPT_PASSWORD, m_credentials.secret_key.c_str());
    setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_endpoint.connect_timeout_ms));
    // request_timeout bounds the whole request, a connect included.
    setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(m_endpoint.request_timeout_ms));
    setopt(handle, CURLOPT_WRITEFUNCTION, collect);
    setopt(handle, CURLOPT_WRITEDATA, &answer);
    setopt(handle, CURLOPT_ERRORBUFFER, error_text);
    const CURLcode code = m_curl->easy_perform(handle);
    long http = 0;
    m_curl->easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &http);
    setopt(handle, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
    const std::string where = "dynamodb " + m_endpoint.url;
    if (code != CURLE_OK) {
        const bool timed_out = code == CURLE_OPERATION_TIMEDOUT;
        failure = {timed_out ? CURLCACHE_BACKEND_TIMEOUT : CURLCACHE_BACKEND_FAILURE,
                   where + ": " + op + ": " + (*error_text != '\0' ? error_text : m_curl->easy_strerror(code)),
                   ""};
        checkin(handle, false);
        if (timed_out || code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST) {
            std::lock_guard lock(m_mutex);
            m_retry_at = Clock::now() + k_backoff;
            m_last_failure = {failure.status, where + ": unreachable a moment ago (" + op +
                                                  "); retrying within a second", ""};
        }
        return false;
    }
    checkin(handle, true);
    if (http / 100 == 2) {
        return true;
    }
    const Json response = Json::parse(answer, nullptr, false);
    std::string type, message;
    if (response.is_object()) {
        type = response.value("__type", "");
        type = type.substr(type.find('#') + 1); // "com.amazonaws.dynamodb.v20120810#X"
        message = response.contains("message") ? response.value("message", "")
                                               : response.value("Message", "");
    }
    if (type.empty()) {
        failure = {CURLCACHE_BACKEND_FAILURE, where + ": " + op + ": HTTP " + std::to_string(http) +
                                                  " without a DynamoDB answer", ""};
        return false;
    }
    if (is_credentials_error(type)) {
        // DynamoDB's own text is left out: the message must fit one line of the host's.
        failure = {CURLCACHE_BACKEND_FAILURE, where + ": " + op + ": the AWS credentials were refused (" +
                                                  type + "); check the AWS_* variables or the profile in "
                                                         "~/.aws/credentials", type};
        return false;
    }
    failure = {CURLCACHE_BACKEND_FAILURE, where + ": " + op + ": " + type +
                                              (message.empty() ? "" : ": " + message.substr(0, 120)),
               type};
    return false;
}

bool Client::call(const char* op, const Json& request, Json& response, Failure& failure) {
    std::string answer;
    if (!call_text(op, request.dump(), answer, failure)) {
        return false;
    }
    response = Json::parse(answer, nullptr, false);
    if (!response.is_object()) {
        failure = {CURLCACHE_BACKEND_FAILURE, "dynamodb " + m_endpoint.url + ": " + op +
                                                  ": an answer that is not a JSON object", ""};
        return false;
    }
    return true;
}

} // namespace curlcache::plugins::dynamodb
