// Files that are either whole or absent, and a lock that says a run file is being written.
// Every error carries the path and the operating system's reason ("No space left on device").
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace splitpipe {

// Writes `bytes` to a temporary name beside `path`, syncs it and renames it over `path`, so a
// crash or a full disk leaves either the old file or the new one, never a mix, and never the
// temporary. Throws Error naming `what` and the OS reason.
void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& what);

// The whole file; Error naming `what` and the OS reason if it cannot be read.
std::string read_whole_file(const std::string& path, const std::string& what);

// CRC-32 of `bytes` as 8 hex digits: detects any flipped byte of a checkpoint file.
std::string checksum_hex(std::string_view bytes);

// Bytes an unprivileged process may still write on the file system holding `path`; -1 if
// unknown.
int64_t free_bytes(const std::string& path);

// "Error text" for errno `code`, e.g. "No space left on device".
std::string os_reason(int code);

// The byte a live run holds a POSIX open-file-description write lock on, for as long as it
// writes its run file. Far beyond any real file's end, so it never blocks HDF5's own locking
// (flock) or a reader; tools/report tests it to tell a running run from one that died.
constexpr int64_t kRunFileLockOffset = int64_t{1} << 40;

// RAII: the writer's lock on a run file. Throws Error if another process holds it.
class RunFileLock {
 public:
  RunFileLock() = default;
  // Locks `path` (which must exist), opened read-write.
  explicit RunFileLock(const std::string& path);
  RunFileLock(RunFileLock&& other) noexcept;
  RunFileLock& operator=(RunFileLock&& other) noexcept;
  RunFileLock(const RunFileLock&) = delete;
  RunFileLock& operator=(const RunFileLock&) = delete;
  ~RunFileLock();

  // True if another process holds the lock of the file at `path` (false if it does not exist).
  static bool held_elsewhere(const std::string& path);

 private:
  int fd_ = -1;
};

}  // namespace splitpipe
