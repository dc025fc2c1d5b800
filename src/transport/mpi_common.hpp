// Helpers shared by the MPI control plane and the MPI transport.
#pragma once
#include <mpi.h>

#include <chrono>
#include <functional>
#include <string>

namespace splitpipe {

// Throws Error("<what>: <MPI's error text>") unless code is MPI_SUCCESS.
void check_mpi(int code, const std::string& what);

// Checks that `bytes` fits MPI's int count.
int mpi_count(size_t bytes, const std::string& what);

// "0.5 s", "30 s": a timeout as the user gave it.
std::string format_seconds(double seconds);

// Polls `request` to completion instead of MPI_Wait, so no rank waits forever: a peer that
// died without MPI noticing, or hangs, turns into an Error naming it (via `what`) after
// `timeout_seconds` (0: never). `status` may be MPI_STATUS_IGNORE.
void complete_request(MPI_Request& request, MPI_Status* status, double timeout_seconds,
                      const std::function<std::string()>& what);

}  // namespace splitpipe
