// dynalite (npm: DynamoDB's API in node) for the tests of the dynamodb plugin, started
// through tests/plugins/dynalite.js on 127.0.0.1 (a free port the first time, the same
// port after a restart), in memory, stopped by its PID.
#pragma once

#include "config/settings.h"

#include <nlohmann/json.hpp>

#include <string>
#include <sys/types.h>

namespace curlcache::tests::dynamodb {

class Dynalite {
public:
    Dynalite(); // starts; aborts when it cannot
    ~Dynalite();
    Dynalite(const Dynalite&) = delete;
    Dynalite& operator=(const Dynalite&) = delete;

    int port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    std::string endpoint() const; // http://127.0.0.1:PORT

    void start(); // awaits the port line of this very process (empty: its tables are gone)
    void kill9(); // SIGKILL + waitpid
    void pause(); // SIGSTOP: nothing answers
    void resume();

    // Calls DynamoDB operation `op` behind the plugin's back (signed with test credentials);
    // the answer, or {"error": "..."}.
    nlohmann::json call(const std::string& op, const nlohmann::json& request) const;

private:
    int m_port = 0;
    pid_t m_pid = -1;
};

// Where dynalite is installed (scripts/install-deps.sh: npm into /usr/local); "" if not.
std::string module_dir();

// Settings for the dynamodb plugin of the build tree on `server`, cache table `table`
// (created by the plugin), test credentials in the environment.
config::Settings dynamodb_settings(const Dynalite& server, const std::string& table);

} // namespace curlcache::tests::dynamodb
