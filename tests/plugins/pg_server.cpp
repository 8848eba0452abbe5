#include "tests/plugins/pg_server.h"

#include "tests/redis/fixture.h"

#include <libpq-fe.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace curlcache::tests::postgres {

namespace {

[[noreturn]] void exec_args(std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
}

bool as_root() {
    return geteuid() == 0;
}

// Runs argv (as postgres when root) and waits; true on exit status 0.
bool run(std::vector<std::string> args) {
    if (as_root()) {
        args.insert(args.begin(), {"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"});
    }
    const pid_t child = fork();
    if (child == 0) {
        if (std::freopen("/dev/null", "w", stdout) == nullptr) {
            _exit(127);
        }
        exec_args(args);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void give_to_postgres(const std::string& path) {
    if (!as_root()) {
        return;
    }
    const passwd* user = getpwnam("postgres");
    if (user == nullptr || chown(path.c_str(), user->pw_uid, user->pw_gid) != 0) {
        std::fprintf(stderr, "cannot give %s to the user postgres\n", path.c_str());
        std::abort();
    }
}

} // namespace

std::string bindir() {
    std::string dir;
    if (FILE* out = popen("pg_config --bindir 2>/dev/null", "r")) {
        char line[512] = {};
        if (std::fgets(line, sizeof line, out) != nullptr) {
            dir = line;
            while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) {
                dir.pop_back();
            }
        }
        pclose(out);
    }
    struct stat st {};
    if (!dir.empty() && ::stat((dir + "/postgres").c_str(), &st) == 0) {
        return dir;
    }
    return ::stat("/usr/lib/postgresql/15/bin/postgres", &st) == 0 ? "/usr/lib/postgresql/15/bin" : "";
}

PgServer::PgServer(std::string dir) : m_dir(std::move(dir)), m_port(redis::free_port()) {
    give_to_postgres(m_dir);
    if (!run({bindir() + "/initdb", "-D", m_dir + "/data", "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--no-sync", "--no-instructions"})) {
        std::fprintf(stderr, "initdb in %s failed\n", m_dir.c_str());
        std::abort();
    }
    start();
}

PgServer::~PgServer() {
    stop();
}

std::string PgServer::url() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(m_port) + "/postgres";
}

void PgServer::launch() {
    std::vector<std::string> args{bindir() + "/postgres", "-D", m_dir + "/data", "-p",
                                  std::to_string(m_port), "-k", m_dir, "-c",
                                  "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                                  "max_connections=200"};
    const passwd* user = as_root() ? getpwnam("postgres") : nullptr;
    const pid_t parent = getpid();
    m_pid = fork();
    if (m_pid == 0) {
        // As postgres (the server refuses root): set here rather than through setpriv, so
        // that the parent-death signal below, which a change of user clears, holds.
        if (user != nullptr && (initgroups("postgres", user->pw_gid) != 0 ||
                                setgid(user->pw_gid) != 0 || setuid(user->pw_uid) != 0)) {
            _exit(127);
        }
        prctl(PR_SET_PDEATHSIG, SIGINT); // no orphan server whatever happens to the test
        if (getppid() != parent) {
            _exit(127);
        }
        const std::string log = m_dir + "/server.log";
        if (std::freopen(log.c_str(), "a", stderr) == nullptr) {
            _exit(127);
        }
        exec_args(args);
    }
}

void PgServer::start() {
    // Ours (postmaster.pid names our PID) and accepting connections. A server that exits at
    // once (the backends of a killed one still hold its shared memory for a moment) is
    // started again.
    launch();
    const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(m_port) +
                                 " dbname=postgres user=postgres connect_timeout=2";
    const bool up = redis::await(
        [&] {
            if (waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
                launch();
                return false;
            }
            std::ifstream pid_file(m_dir + "/data/postmaster.pid");
            pid_t written = 0;
            return pid_file >> written && written == m_pid &&
                   PQping(conninfo.c_str()) == PQPING_OK;
        },
        30000);
    if (!up) {
        std::fprintf(stderr, "postgres on port %d did not start (see %s/server.log)\n", m_port,
                     m_dir.c_str());
        std::abort();
    }
}

// The postmaster and every process of its group-less children: signalled through the
// processes whose parent it is.
static void signal_tree(pid_t root, int signal) {
    std::vector<pid_t> children;
    std::ifstream list("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) +
                       "/children");
    for (pid_t child = 0; list >> child;) {
        children.push_back(child);
    }
    ::kill(root, signal); // first: a postmaster killed after its backends would start others
    for (pid_t child : children) {
        ::kill(child, signal);
    }
}

void PgServer::stop() {
    if (m_pid > 0) {
        resume();
        ::kill(m_pid, SIGINT);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

void PgServer::kill9() {
    if (m_pid > 0) {
        resume();
        signal_tree(m_pid, SIGKILL); // its backends too: every connection is lost at once
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }
}

void PgServer::pause() {
    signal_tree(m_pid, SIGSTOP);
}

void PgServer::resume() {
    if (m_pid > 0) {
        signal_tree(m_pid, SIGCONT);
    }
}

std::string PgServer::sql(const std::string& text) const {
    PGconn* conn = PQconnectdb(url().c_str());
    std::string answer;
    if (PQstatus(conn) != CONNECTION_OK) {
        answer = std::string("ERROR: ") + PQerrorMessage(conn);
    } else {
        PGresult* result = PQexec(conn, text.c_str());
        const ExecStatusType status = PQresultStatus(result);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            answer = std::string("ERROR: ") + PQresultErrorMessage(result);
        } else if (PQntuples(result) > 0 && PQnfields(result) > 0) {
            answer = PQgetvalue(result, 0, 0);
        }
        PQclear(result);
    }
    PQfinish(conn);
    return answer;
}

config::Settings postgres_settings(const PgServer& server, const std::string& table) {
    config::Settings settings;
    settings.backend = {"postgres"};
    settings.plugin_dir = CURLCACHE_PLUGIN_OUTPUT_DIR;
    settings.name = table;
    settings.plugin_tables["postgres"] = {{"url", server.url()},
                                          {"connect_timeout", "1000"},
                                          {"statement_timeout", "5000"}};
    return settings;
}

} // namespace curlcache::tests::postgres
