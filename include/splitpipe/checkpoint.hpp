// Checkpoints: every rank saves its own stages (weights, buffers, optimizer state, RNG state)
// and the position in the data order into DIR/epoch-EEEE-step-SSSSSSS/rank<r>.pt. Each file is
// written under a temporary name, synced and renamed; rank 0 then writes MANIFEST (each rank
// file's size and CRC-32) and the COMPLETE marker, so a crash or a full disk mid-write never
// leaves a checkpoint that looks usable, and a damaged file is refused on load, by name.
//
// The checkpoint records the options that define the run (everything that changes the math
// or the data order): resume refuses any change to them, listing each difference.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace splitpipe {

class ControlPlane;
class Trainer;
struct RunConfig;

// Where training continues and what this rank had accumulated of a partial epoch (each rank
// saves its own: an edge client its own batches' statistics).
struct CheckpointPosition {
  int epoch = 0;      // 0-based epoch to continue in
  int64_t step = 0;   // next step of that epoch (0: the epoch has not started)
  int64_t rows = 0;   // epochs already written to the run file
  std::string run_file;  // the run file to keep appending to
  std::string run_id;    // ... and its run_id attribute, so a replaced file is not appended to
  // Partial training statistics of `epoch` up to `step`.
  double loss_sum = 0, correct = 0, seconds = 0, active_seconds = 0;
  int64_t samples = 0, skipped_steps = 0;
  at::Tensor confusion;
  // This rank's pipeline counters (RankCounters::values) up to `step`, so a resumed epoch's
  // traffic and time counts are those of the whole epoch; empty at an epoch's end.
  std::vector<double> counters;
};

// Collective, before training. A fresh run never mixes its checkpoints with an older run's:
// checkpoints already in --checkpoint-dir are refused unless --overwrite, which deletes them.
// The directory must be writable (a test file), so a bad one fails now, not after an epoch.
void prepare_checkpoint_dir(const RunConfig& config, const ControlPlane& control, bool fresh);

// Collective. Writes this rank's state and, on rank 0, MANIFEST and COMPLETE; then deletes
// complete checkpoints beyond the newest --keep-checkpoints and incomplete leftovers. An I/O
// error on any rank (a full disk) is an error on every rank, removes the new checkpoint's
// directory and leaves the previous checkpoints as they were. Returns the checkpoint directory.
std::string save_checkpoint(const RunConfig& config, const CheckpointPosition& position, const Trainer& trainer,
                            const ControlPlane& control);

// Collective. Finds the newest complete checkpoint in --checkpoint-dir (rank 0 decides, by
// epoch and step as numbers), verifies this rank's file against MANIFEST, loads it into
// `trainer` and returns the position; nullopt when the directory holds no checkpoint at all
// (the first run of a job that always passes --resume). Refuses, on every rank, a checkpoint
// of another model, world size, partition or client mode, a damaged file, and changes of the
// run's defining options.
std::optional<CheckpointPosition> load_checkpoint(const RunConfig& config, Trainer& trainer,
                                                  const ControlPlane& control);

}  // namespace splitpipe
