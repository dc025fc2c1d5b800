// SIGUSR1/SIGTERM (what Slurm and mpirun send before a time limit) and a first Ctrl-C (SIGINT)
// ask the run to checkpoint and stop at the next step boundary instead of dying mid-step; a
// second Ctrl-C kills at once.
#pragma once

namespace splitpipe {

void install_interrupt_handlers();
// The signal received since installation, or 0.
int interrupt_signal();

}  // namespace splitpipe
