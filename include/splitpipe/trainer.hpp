// Training on every rank: the same loop runs on the edge and on the servers; only the edge
// holds data. With one rank it is the single-process reference run.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "splitpipe/config.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/lr_schedule.hpp"
#include "splitpipe/mpi_world.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/pipeline.hpp"

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace splitpipe {

// What every rank knows about the data (broadcast from the edge, which alone reads it).
struct DatasetMeta {
  std::vector<int64_t> sample_shape;
  int64_t num_classes = 0, train_size = 0, test_size = 0;
};

struct PassStats {
  double loss = 0;      // mean cross-entropy per sample
  double accuracy = 0;  // fraction in [0, 1]
  int64_t samples = 0;
  double seconds = 0;
  at::Tensor confusion;  // [C, C] int64, rows = true class (edge only)
  int64_t next_step = 0;      // the step after the last one run
  bool interrupted = false;   // stopped early by SIGUSR1/SIGTERM (agreed by every rank)
  int64_t skipped_steps = 0;  // optimizer steps skipped for NaN/Inf (--on-nonfinite skip-batch)
};

// Combines the statistics of two consecutive parts of one pass (a resumed epoch).
PassStats merge(const PassStats& first, const PassStats& second);

class Trainer {
 public:
  using Progress = std::function<void(int64_t step, int64_t steps, const PassStats& so_far)>;

  // Collective over `world`. `data` must be non-null on rank 0 (the edge) and is ignored elsewhere.
  // `block_seconds` (per block) is needed for --server-split time; pass {} otherwise.
  Trainer(const RunConfig& config, MpiTransport& world, const DatasetSplits* data,
          const std::vector<double>& block_seconds = {});
  ~Trainer();

  const DatasetMeta& meta() const;
  const std::vector<Block>& blocks() const;  // the full model's block table (weights only of own stages matter)
  const PartitionPlan& plan() const;
  const LrSchedule& lr_schedule() const;
  int64_t steps_per_epoch() const;
  const Schedule& schedule(int microbatches, bool forward_only);

  // Trains steps [first, first+count) of `epoch` (count < 0: to the end of the epoch).
  PassStats train(int epoch, int64_t first = 0, int64_t count = -1, const Progress& progress = {});
  PassStats evaluate();

  PipelineExecutor& executor();

  // Checkpoint state of this rank: its stages' parameters and buffers, the optimizer's
  // momentum buffers and the global RNG state (dropout).
  void save_state(torch::serialize::OutputArchive& archive) const;
  void load_state(torch::serialize::InputArchive& archive);
  // Parallel edge clients: seconds spent averaging the edge state over the clients and the
  // bytes this rank contributed, accumulated (0 elsewhere).
  double edge_sync_seconds() const;
  double edge_sync_bytes() const;
  // FNV-1a over this rank's parameters and buffers: equal digests mean bit-identical weights.
  std::string weights_digest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

DatasetMeta broadcast_meta(const MpiTransport& world, const DatasetSplits* data);

// The whole program after MPI_Init: checks, data, model, plan, epochs, run file, summary.
// Throws Error/UsageError; main() turns them into one message and an exit code.
void run(const RunConfig& config, MpiTransport& world);

}  // namespace splitpipe
