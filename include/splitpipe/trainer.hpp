// Training on every rank, in every client mode: the same step loop runs on edge clients and
// servers. A Trainer is the composition of
//   - the client strategy (client_strategy.hpp): which pipelines run in each step, on which
//     batch, and the gradient-sync policy;
//   - the step runner (step_runner.hpp): the schedules, the data-plane transport (and emulated
//     links), the executor with its codecs (pipeline.hpp);
//   - the stage state (stage_state.hpp): modules, optimizer, RNG.
// With one rank it is the single-process reference run.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <vector>

#include "splitpipe/client_strategy.hpp"
#include "splitpipe/config.hpp"
#include "splitpipe/control_plane.hpp"
#include "splitpipe/data.hpp"
#include "splitpipe/lr_schedule.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/pipeline.hpp"
#include "splitpipe/stage_state.hpp"

namespace splitpipe {

class Tracer;  // trace.hpp

// What every rank knows about the data (broadcast from rank 0, which holds it).
// The model the configuration names, for samples of `sample_shape` and `num_classes` classes.
ModelSpec model_spec(const RunConfig& config, const std::vector<int64_t>& sample_shape, int64_t num_classes);

// --memory-format as the stages apply it (contiguous | channels-last | auto).
std::string stage_memory_format(const RunConfig& config);

struct DatasetMeta {
  std::vector<int64_t> sample_shape;
  int64_t num_classes = 0, train_size = 0, test_size = 0;
};

// One pass as seen by this rank. Loss, accuracy and samples are those of the batches whose
// last stage this rank holds (an edge client's own batches; zero on servers).
struct PassStats {
  double loss = 0;      // mean per sample
  double accuracy = 0;  // fraction in [0, 1]
  // The sums behind the means, accumulated step by step in one order, so a pass continued
  // from a checkpoint adds up to exactly the uninterrupted pass's numbers.
  double loss_sum = 0, correct = 0;
  int64_t samples = 0;
  double seconds = 0;         // wall time of the pass
  double active_seconds = 0;  // of it, the steps this rank took part in (a client's turn)
  at::Tensor confusion;       // [C, C] int64, rows = true class (clients only)
  int64_t next_step = 0;      // the step after the last one run
  bool interrupted = false;   // stopped early by SIGUSR1/SIGTERM (agreed by every rank)
  int64_t skipped_steps = 0;  // optimizer steps skipped for NaN/Inf (--on-nonfinite skip-batch)
};

// The clients' edge-state synchronisation of this rank, accumulated since the last reset:
// hand-offs sent (sequential) or averages taken part in (parallel).
struct EdgeSyncStats {
  double seconds = 0, bytes = 0;
};

class Trainer {
 public:
  using Progress = std::function<void(int64_t step, int64_t steps, const PassStats& so_far)>;

  // Collective over `control`. `data` (the whole dataset) must be non-null on the edge clients
  // (ranks < --edge-ranks) and is ignored elsewhere; each client keeps its own shard.
  // `block_seconds` (per block) is needed for --server-split time; pass {} otherwise.
  // Every refusal (a partition that does not fit, shards too small, no GPU) is agreed on, so
  // every rank throws the same CollectiveError.
  Trainer(const RunConfig& config, ControlPlane& control, const DatasetSplits* data,
          const std::vector<double>& block_seconds = {});
  ~Trainer();

  const DatasetMeta& meta() const;
  const std::vector<Block>& blocks() const;  // the full model's block table (weights only of own stages matter)
  const PartitionPlan& plan() const;
  const ClientStrategy& strategy() const;
  const LrSchedule& lr_schedule() const;
  int64_t steps_per_epoch() const;
  int client() const;  // this rank's client index, -1 on servers
  // Training-set indices of every client's shard (on clients; empty on servers and with one edge).
  const std::vector<at::Tensor>& shards() const;
  // The schedule of one step: of client `client`'s pipeline, or with -1 of every client's.
  const Schedule& schedule(int client, int microbatches, bool forward_only);

  // Trains steps [first, first+count) of `epoch` (count < 0: to the end of the epoch).
  // `before`: this rank's statistics of the steps before `first` (a resumed epoch), which the
  // pass continues.
  PassStats train(int epoch, int64_t first = 0, int64_t count = -1, const Progress& progress = {},
                  const PassStats* before = nullptr);
  // Client 0 and the servers run the test set through client 0's pipeline (which holds the
  // latest edge state after every epoch, in every mode); other clients return empty stats.
  PassStats evaluate();

  PipelineExecutor& executor();
  StageState& state();
  const StageState& state() const;
  EdgeSyncStats& edge_sync();
  // Records the first traced steps of the training passes (--trace); must outlive training.
  void set_tracer(Tracer* tracer);
  std::string weights_digest() const { return state().digest(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitpipe
