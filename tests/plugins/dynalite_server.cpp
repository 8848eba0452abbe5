#include "tests/plugins/dynalite_server.h"

#include <curl/curl.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace curlcache::tests::dynamodb {

namespace {

size_t collect(char* data, size_t size, size_t count, void* context) {
    static_cast<std::string*>(context)->append(data, size * count);
    return size * count;
}

} // namespace

std::string module_dir() {
    const char* given = std::getenv("CURLCACHE_DYNALITE");
    const std::string dir = given != nullptr ? given : "/usr/local/lib/node_modules/dynalite";
    struct stat st {};
    return ::stat((dir + "/package.json").c_str(), &st) == 0 ? dir : "";
}

Dynalite::Dynalite() {
    setenv("AWS_ACCESS_KEY_ID", "AKIDTESTDYNALITE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    start();
}

Dynalite::~Dynalite() {
    kill9();
}

std::string Dynalite::endpoint() const {
    return "http://127.0.0.1:" + std::to_string(m_port);
}

void Dynalite::start() {
    int out[2];
    if (pipe(out) != 0) {
        std::abort();
    }
    const std::string script = CURLCACHE_SOURCE_DIR "/tests/plugins/dynalite.js";
    const std::string module = module_dir();
    const std::string port = std::to_string(m_port);
    m_pid = fork();
    if (m_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlives a crashed test
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execlp("node", "node", script.c_str(), module.c_str(), port.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    close(out[1]);
    std::string line;
    pollfd fd{out[0], POLLIN, 0};
    char c = 0;
    while (line.find('\n') == std::string::npos && poll(&fd, 1, 30000) == 1 && read(out[0], &c, 1) == 1) {
        line += c;
    }
    close(out[0]);
    m_port = std::atoi(line.c_str());
    if (m_port <= 0) {
        std::fprintf(stderr, "dynalite did not start (node %s %s)\n", script.c_str(), module.c_str());
        std::abort();
    }
}

void Dynalite::kill9() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGCONT);
        ::kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

void Dynalite::pause() {
    ::kill(m_pid, SIGSTOP);
}

void Dynalite::resume() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGCONT);
    }
}

nlohmann::json Dynalite::call(const std::string& op, const nlohmann::json& request) const {
    CURL* curl = curl_easy_init();
    const std::string body = request.dump(), url = endpoint() + "/";
    const std::string target = "X-Amz-Target: DynamoDB_20120810." + op;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/x-amz-json-1.0");
    headers = curl_slist_append(headers, target.c_str());
    std::string answer;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:dynamodb");
    curl_easy_setopt(curl, CURLOPT_USERPWD, "AKIDTESTDYNALITE:test-secret");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    const CURLcode code = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (code != CURLE_OK) {
        return {{"error", curl_easy_strerror(code)}};
    }
    return nlohmann::json::parse(answer, nullptr, false);
}

config::Settings dynamodb_settings(const Dynalite& server, const std::string& table) {
    config::Settings settings;
    settings.backend = {"dynamodb"};
    settings.plugin_dir = CURLCACHE_PLUGIN_OUTPUT_DIR;
    settings.name = table;
    settings.plugin_tables["dynamodb"] = {{"endpoint", server.endpoint()},
                                          {"region", "us-east-1"},
                                          {"create_table", "true"},
                                          {"connect_timeout", "1000"},
                                          {"request_timeout", "10000"}};
    return settings;
}

} // namespace curlcache::tests::dynamodb
