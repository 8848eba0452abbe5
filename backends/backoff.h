// A back-off shared by all of a user's processes for one remote backend (Redis today, the
// plugin backends of issue 12 later), as ccache does for its remote storage: a process that
// finds the server hung or down leaves a marker, and every process that opens the backend
// while the marker is in force passes its transfers through at once instead of paying a
// connect or command timeout of its own.
//
// The first process to open the backend after the marker's time tries the server, having
// first extended the marker by the same wait (so that the processes starting meanwhile do
// not all try too): success removes the marker, failure writes it again with twice the
// wait. Waits start at k_first (5 s) and double up to k_most (5 min): a short outage costs
// one timeout, a long one a timeout every 5 minutes, and caching resumes at most one wait
// after the server is back (at once in a process that was already using it, whose success
// removes the marker).
//
// The marker is "<user cache folder>/backoff/<16 hex digits of XXH3 of the identity>",
// holding "<until, ms since the epoch> <wait, ms>\n". It is read and written only through
// base/private_path.h (private folder, O_NOFOLLOW, owned by the user and writable by no one
// else), so another user can neither plant one nor redirect our writes. A marker that fails
// those checks, does not parse or claims more than k_most is ignored (and replaced on the
// next failure).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace curlcache::backends {

class SharedBackoff {
public:
    static constexpr std::chrono::milliseconds k_first{5000};
    static constexpr std::chrono::milliseconds k_most{300000};

    struct Wait {
        int64_t until_ms = 0; // CLOCK_REALTIME, ms since the epoch: shared between processes
        int64_t wait_ms = 0;
    };

    // `identity` names the server, never with credentials (e.g. RedisEndpoint::display()).
    // `folder` holds the markers; "" = base::user_cache_dir() + "/backoff".
    explicit SharedBackoff(std::string_view identity, std::string folder = {});

    // Before reaching for the server at open: the back-off in force (pass through), or
    // nullopt (go ahead; an expired marker is claimed for this try, see above).
    std::optional<Wait> check();

    // The server could not be reached or did not answer in time: starts or doubles the
    // back-off (one already in force, set by another process, is left as it is).
    Wait failed();

    // The server answered: ends a back-off this process saw or set. Cheap otherwise (no
    // file is touched), so it may be called after every successful command.
    void succeeded();

    // The marker's path, for messages.
    const std::string& path() const { return m_path; }

    // "was down or did not answer ...; ... for another N s (...)": the warning's text.
    std::string describe(const Wait& wait) const;

private:
    std::optional<Wait> read() const;
    bool write(const Wait& wait) const;

    std::string m_folder;
    std::string m_name;
    std::string m_path;
    std::mutex m_mutex;
    int64_t m_claimed_wait = 0; // > 0: this process claimed an expired marker with this wait
    bool m_marked = false;      // a marker was seen or written: a success removes it
};

} // namespace curlcache::backends
