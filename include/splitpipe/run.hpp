// The one run driver: checks, data, the trainer, epochs, evaluation, checkpoints, resume,
// interrupts and the run file, the same in every client mode.
#pragma once
#include "splitpipe/config.hpp"
#include "splitpipe/control_plane.hpp"

namespace splitpipe {

// The whole program after MPI_Init. Throws CollectiveError (every rank at once: exit without
// MPI_Abort) or any other Error (found on some ranks: main aborts the job).
void run(const RunConfig& config, ControlPlane& world);

}  // namespace splitpipe
