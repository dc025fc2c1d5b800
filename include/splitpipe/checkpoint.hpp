// Checkpoints: every rank saves its own stages (weights, buffers, optimizer state, RNG state)
// and the position in the data order into DIR/epoch-EEEE-step-SSSSSSS/rank<r>.pt. Each file is
// written under a temporary name and renamed, and rank 0 marks the directory COMPLETE only
// after every rank has renamed its file, so a crash mid-write never leaves a checkpoint that
// looks usable.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>

namespace splitpipe {

class ControlPlane;
class Trainer;

// Where training continues and what this rank had accumulated of a partial epoch (each rank
// saves its own: an edge client its own batches' statistics).
struct CheckpointPosition {
  int epoch = 0;      // 0-based epoch to continue in
  int64_t step = 0;   // next step of that epoch (0: the epoch has not started)
  int64_t rows = 0;   // epochs already written to the run file
  std::string run_file;  // the run file to keep appending to
  // Partial training statistics of `epoch` up to `step`.
  double loss_sum = 0, correct = 0, seconds = 0, active_seconds = 0;
  int64_t samples = 0, skipped_steps = 0;
  at::Tensor confusion;
};

// Collective. Writes this rank's state and, on rank 0, the COMPLETE marker. Returns the
// checkpoint directory.
std::string save_checkpoint(const std::string& dir, const CheckpointPosition& position, const Trainer& trainer,
                            const std::string& model, const ControlPlane& control);

// Collective. Finds the newest complete checkpoint in `dir` (rank 0 decides), loads this
// rank's state into `trainer` and returns the position. Refuses, on every rank, a checkpoint
// of another model, world size, partition or client mode.
CheckpointPosition load_checkpoint(const std::string& dir, Trainer& trainer, const std::string& model,
                                   const ControlPlane& control);

}  // namespace splitpipe
