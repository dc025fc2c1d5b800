// Errors carry their context and the process exit code; main() catches them once.
#pragma once
#include <stdexcept>
#include <string>

namespace splitpipe {

// Anything the user can fix (bad data file, impossible partition, ...). Exit code 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, int exit_code = 1)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A bad command line or config value. Exit code 2, like other Unix tools.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message, 2) {}
};

// A byte stream that does not decode (truncated, wrong magic/version, inconsistent sizes).
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& message) : Error(message, 1) {}
};

// An error every rank raises at the same point (after agreeing on it collectively): each rank
// can exit normally instead of aborting the whole job.
class CollectiveError : public Error {
 public:
  CollectiveError(const std::string& message, int exit_code) : Error(message, exit_code) {}
};

// Stopped on request (SIGUSR1/SIGTERM), after a checkpoint: every rank agreed on it. Exit code
// 75 (EX_TEMPFAIL) tells a job script that the run is unfinished but can be resumed.
class InterruptedError : public CollectiveError {
 public:
  static constexpr int kExitCode = 75;
  explicit InterruptedError(const std::string& message) : CollectiveError(message, kExitCode) {}
};

}  // namespace splitpipe

namespace splitpipe {

// The first line of an exception's message, without LibTorch's C++ backtrace: what goes into
// a run file's status and the one error line.
std::string one_line(const std::exception& error);

}  // namespace splitpipe
