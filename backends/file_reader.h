// A stored value read in pieces from an open file (backends/storage.h, ValueReader): the
// filesystem backend's entry files and the sqlite backend's body files. The descriptor is
// held from open to destruction, so a value replaced meanwhile (a new file renamed over
// the old one, or another body file) is still read whole as it was: the old inode lives
// until it is closed.
#pragma once

#include "backends/storage.h"
#include "base/fd.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace curlcache::backends {

// One stretch of a value: `length` bytes of the file from `file_offset`.
struct FileSpan {
    uint64_t file_offset = 0;
    uint64_t length = 0;
};

// A value made of `prefix` (bytes already in memory: a head read from a database row)
// followed by the file's `spans`, in order. `what` names the file in messages.
std::unique_ptr<ValueReader> file_reader(base::Fd fd, std::string what, std::string prefix,
                                         std::vector<FileSpan> spans);

} // namespace curlcache::backends
