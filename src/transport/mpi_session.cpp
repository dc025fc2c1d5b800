// MPI's lifetime, the launcher's node-local rank, and the polling every MPI wait goes through.
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "mpi_common.hpp"
#include "splitpipe/error.hpp"
#include "splitpipe/mpi_world.hpp"

namespace splitpipe {

void check_mpi(int code, const std::string& what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(what + ": " + std::string(text, length));
}

int mpi_count(size_t bytes, const std::string& what) {
  if (bytes > static_cast<size_t>(INT_MAX))
    throw Error(what + ": message of " + std::to_string(bytes) + " bytes exceeds MPI's int count; use more --chunks");
  return static_cast<int>(bytes);
}

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g s", seconds);
  return text;
}

void complete_request(MPI_Request& request, MPI_Status* status, double timeout_seconds,
                      const std::function<std::string()>& what) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (long polls = 0;; ++polls) {
    int done = 0;
    const int code = MPI_Test(&request, &done, status);
    if (code != MPI_SUCCESS) check_mpi(code, what());
    if (done) return;
    // Yield after a short spin: with more ranks than cores the peer we wait for needs the CPU.
    if (polls > 64) std::this_thread::yield();
    // A long wait (a client waiting through another client's turn) should not burn a core.
    if (polls > 100000) std::this_thread::sleep_for(std::chrono::microseconds(200));
    if ((polls & 1023) != 0) continue;
    check_failure_notices(what);
    if (timeout_seconds > 0 && std::chrono::duration<double>(Clock::now() - start).count() > timeout_seconds)
      throw Error("no progress for " + format_seconds(timeout_seconds) + " (--comm-timeout) in " + what() +
                  "; that rank has probably died or hung");
  }
}

int node_local_rank() {
  for (const char* variable : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"})
    if (const char* value = std::getenv(variable)) return std::atoi(value);
  return 0;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  // Errors come back as codes and become exceptions with context instead of an abort banner.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace splitpipe
