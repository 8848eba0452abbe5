// The shared back-off marker of a remote backend; see backoff.h.
#include "backends/backoff.h"

#include "base/private_path.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace curlcache::backends {

namespace {

int64_t now_ms() {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

} // namespace

SharedBackoff::SharedBackoff(std::string_view identity, std::string folder)
    : m_folder(folder.empty() ? base::user_cache_dir() + "/backoff" : std::move(folder)) {
    char name[17];
    std::snprintf(name, sizeof name, "%016" PRIx64,
                  static_cast<uint64_t>(XXH3_64bits(identity.data(), identity.size())));
    m_name = name;
    m_path = m_folder + "/" + m_name;
}

std::optional<SharedBackoff::Wait> SharedBackoff::read() const {
    auto dir = base::open_private_dir(m_folder, false);
    if (!dir) {
        return std::nullopt; // no folder, no marker; a refused folder is not trusted
    }
    // O_NONBLOCK: a FIFO there must not block the process (open_private then refuses it).
    auto fd = base::open_private(*dir->fd, m_name, O_RDONLY | O_NONBLOCK, m_path);
    if (!fd) {
        return std::nullopt;
    }
    char text[64];
    ssize_t n = ::pread(**fd, text, sizeof text - 1, 0);
    if (n <= 0) {
        return std::nullopt;
    }
    text[n] = '\0';
    Wait wait;
    if (std::sscanf(text, "%" SCNd64 " %" SCNd64, &wait.until_ms, &wait.wait_ms) != 2 ||
        wait.wait_ms <= 0 || wait.wait_ms > k_most.count() ||
        wait.until_ms - now_ms() > k_most.count()) {
        return std::nullopt; // damaged, or from a clock far ahead: never a longer back-off
    }
    return wait;
}

// Written to a temporary file of this process and renamed over the marker: readers see the
// old marker or the new one, never half of one.
bool SharedBackoff::write(const Wait& wait) const {
    auto dir = base::open_private_dir(m_folder, true);
    if (!dir) {
        return false;
    }
    std::string temp = m_name + ".tmp" + std::to_string(::getpid());
    auto fd = base::open_private(*dir->fd, temp, O_WRONLY | O_CREAT | O_TRUNC, m_path);
    if (!fd) {
        return false;
    }
    char text[64];
    int n = std::snprintf(text, sizeof text, "%" PRId64 " %" PRId64 "\n", wait.until_ms,
                          wait.wait_ms);
    bool written = ::write(**fd, text, static_cast<size_t>(n)) == n;
    if (!written || ::renameat(*dir->fd, temp.c_str(), *dir->fd, m_name.c_str()) != 0) {
        ::unlinkat(*dir->fd, temp.c_str(), 0);
        return false;
    }
    return true;
}

std::optional<SharedBackoff::Wait> SharedBackoff::check() {
    std::optional<Wait> marker = read();
    if (!marker) {
        return std::nullopt;
    }
    const int64_t now = now_ms();
    if (marker->until_ms > now) {
        return marker;
    }
    // Expired: this process is the one that finds out. Others starting meanwhile wait.
    std::lock_guard lock(m_mutex);
    m_claimed_wait = marker->wait_ms;
    m_marked = true;
    write(Wait{now + marker->wait_ms, marker->wait_ms});
    return std::nullopt;
}

SharedBackoff::Wait SharedBackoff::failed() {
    std::lock_guard lock(m_mutex);
    const int64_t now = now_ms();
    std::optional<Wait> marker = read();
    m_marked = true;
    if (marker && marker->until_ms > now && m_claimed_wait == 0) {
        return *marker; // another process has recorded this outage already
    }
    int64_t previous = m_claimed_wait > 0 ? m_claimed_wait : marker ? marker->wait_ms : 0;
    int64_t wait_ms = previous > 0 ? std::min(previous * 2, static_cast<int64_t>(k_most.count()))
                                   : static_cast<int64_t>(k_first.count());
    m_claimed_wait = 0;
    Wait wait{now + wait_ms, wait_ms};
    write(wait);
    return wait;
}

void SharedBackoff::succeeded() {
    std::lock_guard lock(m_mutex);
    if (!m_marked) {
        return;
    }
    m_marked = false;
    m_claimed_wait = 0;
    if (auto dir = base::open_private_dir(m_folder, false)) {
        ::unlinkat(*dir->fd, m_name.c_str(), 0);
    }
}

std::string SharedBackoff::describe(const Wait& wait) const {
    int64_t left = std::max<int64_t>(wait.until_ms - now_ms(), 0);
    return "was down or did not answer a moment ago; transfers pass through without trying it "
           "for another " +
           std::to_string(left / 1000) + "." + std::to_string(left % 1000 / 100) +
           " s (a back-off of " + std::to_string(wait.wait_ms / 1000) +
           " s shared by your processes; remove " + m_path + " to retry now)";
}

} // namespace curlcache::backends
