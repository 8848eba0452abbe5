// The sqlite backend's body files: large values live beside the database, in
// "<database>.bodies/<2 hex of key>/<key>.<random suffix>", and the row keeps the value's
// first part plus the file's name. SQLite's own measurements (and bench_storage here) show
// external files beating in-database blobs for large values, and a file is written once,
// while a blob goes through the WAL and is written again by the checkpoint.
//
// Files are written with plain write(2), no fsync (as synchronous=NORMAL): a body lost in a
// power failure fails the entry's checksum and becomes a miss. Names are unique, so two
// writers of one key never touch each other's file. Internal to the sqlite backend.
#pragma once

#include "backends/storage.h"
#include "backends/temp_files.h"
#include "base/fd.h"

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <unordered_set>

namespace curlcache::backends::sqlite {

// The bodies folder of a database file.
std::string bodies_dir_for(const std::string& database);

// A body file being written: first a temp file in the bodies folder
// ("tmp-p<pid>s<start>-<random>", locked while open: temp_files.h), then, inside the
// transaction that names it, renamed into its place. Unlinked on destruction unless keep()
// was called (after that transaction committed).
class BodyFile {
  public:
    static Result<BodyFile> create(const std::string& dir);
    BodyFile(BodyFile&& other) noexcept;
    BodyFile& operator=(BodyFile&&) = delete;
    ~BodyFile();

    // Appends bytes. Small appends (a transfer delivers 16 KiB at a time) are gathered
    // into writes of k_write_batch: on ext4 each write(2) also updates the file's times,
    // and 10 MiB in 16 KiB writes took 2-3x as long as in 256 KiB ones (measured here).
    Result<void> write(std::string_view bytes);
    uint64_t size() const { return m_size; }

    // Closes the file and renames it to "<dir>/<kk>/<key>.<suffix>" (once; a second call
    // returns the same name). Returns the name relative to the bodies folder.
    Result<std::string> place(std::string_view key);

    // The row that names the file is committed: it is no longer ours to remove.
    void keep() { m_path.clear(); }

  private:
    BodyFile(std::string dir, std::string path, int fd) noexcept
        : m_dir(std::move(dir)), m_path(std::move(path)), m_fd(fd) {}
    static constexpr size_t k_write_batch = 256 * 1024;
    Result<void> write_out(std::string_view bytes);
    Result<void> flush_batch();

    std::string m_dir;
    std::string m_path;  // where the file is now; "" once kept
    std::string m_batch; // appended bytes not yet written
    std::string m_name;  // relative name once placed
    int m_fd = -1;
    uint64_t m_size = 0; // bytes appended, written or not
};

enum class BodyRead { ok, missing, failed };

// Reads up to `length` bytes of body file `name` into `into`; `got` tells how many (fewer
// when the file is shorter). `missing` when the file does not exist; `failed` sets error.
BodyRead read_body(const std::string& dir, std::string_view name, char* into, uint64_t length,
                   uint64_t& got, std::string& error);

// Opens body file `name` for reading into `fd` (read_body's checks and outcomes).
BodyRead open_body(const std::string& dir, std::string_view name, base::Fd& fd,
                   std::string& error);

// Whether `name` (read from the database) is a body file name, not a path elsewhere.
bool valid_body_name(std::string_view name);

void unlink_body(const std::string& dir, std::string_view name);

// Whether body file `name` is known not to exist (ENOENT, not any other error).
bool body_file_missing(const std::string& dir, std::string_view name);

// The key a body file was written for ("kk/<key>.<suffix>").
std::string_view key_of_body_name(std::string_view name);

// Removes body files that no row names (`named`: every name in the table, read under the
// write lock) and temp files of dead writers (temp_files.h; a temp file without a writer id
// once last written before `stale_before`). Returns how many went.
uint64_t sweep_bodies(const std::string& dir, const std::unordered_set<std::string>& named,
                      std::time_t stale_before);

// Removes the temp files of dead writers only (a readdir of the bodies folder's top, no
// lock needed) and tallies the live ones, which count within max_size until they go.
temp_files::Tally sweep_temps(const std::string& dir, std::time_t stale_before);

// The stamp file whose mtime says when a process last swept on open (sweep_due).
inline constexpr std::string_view k_sweep_stamp = ".swept";

// Whether a process opening the cache should sweep the temp files now: when the stamp in
// `dir` is older than `every` seconds (or absent; it is then touched). False when there is
// no bodies folder. A readdir of its top - up to 256 shard folders - cost 30-50 us idle
// and several times that on a busy machine (measured here), too much for every process
// start under the shim; a stat of the stamp costs about one.
bool sweep_due(const std::string& dir, std::time_t every);

} // namespace curlcache::backends::sqlite
