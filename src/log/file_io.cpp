#include "splitpipe/file_io.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

// The lock record for the run file's lock byte.
struct flock lock_record(short type) {
  struct flock record {};
  record.l_type = type;
  record.l_whence = SEEK_SET;
  record.l_start = static_cast<off_t>(kRunFileLockOffset);
  record.l_len = 1;
  return record;
}

// Closes a file descriptor on every path out of a function.
struct Descriptor {
  int fd;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string os_reason(int code) { return std::strerror(code); }

int64_t free_bytes(const std::string& path) {
  struct statvfs stats {};
  if (::statvfs(path.c_str(), &stats) != 0) return -1;
  return static_cast<int64_t>(stats.f_bavail) * static_cast<int64_t>(stats.f_frsize);
}

void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& what) {
  const std::string temporary = path + ".tmp";
  auto fail = [&](const std::string& step) {
    const int code = errno;
    std::remove(temporary.c_str());
    throw Error("cannot write " + what + " '" + path + "' (" + step + "): " + os_reason(code));
  };
  {
    Descriptor file{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (file.fd < 0) fail("create");
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t written = ::write(file.fd, bytes.data() + done, bytes.size() - done);
      if (written < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      done += static_cast<size_t>(written);
    }
    // The data must be on disk before the rename publishes it, or a power loss could leave a
    // complete-looking name with missing bytes.
    if (::fsync(file.fd) != 0) fail("sync");
    const int closed = ::close(file.fd);
    file.fd = -1;
    if (closed != 0) fail("close");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail("rename");
}

std::string read_whole_file(const std::string& path, const std::string& what) {
  Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) throw Error("cannot read " + what + " '" + path + "': " + os_reason(errno));
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(file.fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot read " + what + " '" + path + "': " + os_reason(errno));
    }
    if (got == 0) break;
    bytes.append(buffer, static_cast<size_t>(got));
  }
  return bytes;
}

std::string checksum_hex(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large files in pieces.
  for (size_t done = 0; done < bytes.size();) {
    const size_t piece = std::min<size_t>(bytes.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(piece));
    done += piece;
  }
  char text[9];
  std::snprintf(text, sizeof text, "%08lx", static_cast<unsigned long>(crc));
  return text;
}

RunFileLock::RunFileLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) throw Error("cannot open run file '" + path + "' to lock it: " + os_reason(errno));
  struct flock record = lock_record(F_WRLCK);
  if (::fcntl(fd_, F_OFD_SETLK, &record) != 0) {
    const int code = errno;
    ::close(fd_);
    fd_ = -1;
    if (code == EAGAIN || code == EACCES)
      throw Error("run file '" + path +
                  "' is in use: another splitpipe run is still writing it; wait for that run to end or choose "
                  "another --output");
    throw Error("cannot lock run file '" + path + "': " + os_reason(code));
  }
}

RunFileLock::RunFileLock(RunFileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

RunFileLock& RunFileLock::operator=(RunFileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

RunFileLock::~RunFileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the description releases its lock
}

bool RunFileLock::held_elsewhere(const std::string& path) {
  Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return false;
  struct flock record = lock_record(F_WRLCK);
  if (::fcntl(file.fd, F_OFD_GETLK, &record) != 0) return false;  // no lock support: cannot tell
  return record.l_type != F_UNLCK;
}

}  // namespace splitpipe
