// The tests' MongoDB: tests/plugins/mongo/mongo_server.py (a wire-protocol server over
// mongomock, Debian's python3-mongomock) on a 127.0.0.1 port, started and stopped by PID.
// Its data lives in its memory: a restarted server is empty.
#pragma once

#include "config/settings.h"

#include <string>
#include <sys/types.h>

namespace curlcache::tests::mongo {

class MongoServer {
public:
    MongoServer(); // starts on a free port; aborts when it cannot
    ~MongoServer();
    MongoServer(const MongoServer&) = delete;
    MongoServer& operator=(const MongoServer&) = delete;

    int port() const { return m_port; }
    std::string url() const; // mongodb://127.0.0.1:PORT/

    void start(); // on port() again once it has been started (0 = a free one)
    void kill9(); // SIGKILL + waitpid
    void pause(); // SIGSTOP: nothing answers
    void resume();

private:
    int m_port = 0;
    pid_t m_pid = -1;
};

// Settings for the plugin `backend` ("mongodb" or "gridfs") of the build tree on `server`,
// database `database`.
config::Settings mongo_settings(const MongoServer& server, const std::string& backend,
                                const std::string& database);

} // namespace curlcache::tests::mongo
