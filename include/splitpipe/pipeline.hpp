// Executes schedules on this rank: the stages it owns, the compressed channels at its
// boundaries, and the counters of where the time and the bytes went.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "splitpipe/error.hpp"
#include "splitpipe/model.hpp"
#include "splitpipe/partition.hpp"
#include "splitpipe/schedule.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

class Tracer;  // trace.hpp

// The loss of the last stage: the SUM over the micro-batch's samples (the executor divides by
// the mini-batch size, so micro-batches add up to the mini-batch mean). The run passes it in;
// the pipeline does not know what is being trained.
using LossFunction = std::function<at::Tensor(const at::Tensor& output, const at::Tensor& labels)>;
LossFunction cross_entropy_sum();  // the default: classification

struct PipelineOptions {
  std::string fwd_codec = "none";
  std::string bwd_codec = "none";
  std::string edge_device = "cpu";
  std::string server_device = "cpu";
  bool stop_on_nonfinite = true;  // false: report it in StepResult (--on-nonfinite skip-batch)
  LossFunction loss = cross_entropy_sum();
  // Extra seconds an edge rank waits for a server before the transport's timeout starts. A
  // server blocked by another rank (a hung client, the next server) holds its edge up too; the
  // extra patience lets the rank next to the failure, which can name it, report first.
  double edge_patience_seconds = 0;
  // Keep only each stage's input per micro-batch and run its forward again in backward
  // (activation recomputation): less memory held across the schedule, one more forward.
  bool recompute = false;
  // Layout of 4-D tensors in stages that hold convolutions (4-D weights): "contiguous",
  // "channels-last", or "auto" (channels-last on CPU stages: oneDNN's convolutions are faster
  // on it, most of all for small micro-batches).
  std::string memory_format = "contiguous";
  // >= 1: each forward/backward of a stage that is not a server's is followed by a wait of
  // (scale - 1) x its measured time, emulating a slower edge device (--edge-compute-scale).
  double edge_compute_scale = 1.0;
};

// A NaN or Inf in a loss or a boundary tensor (with stop_on_nonfinite).
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

// The edge's data for one mini-batch, already cut into micro-batches.
struct EdgeBatch {
  std::vector<at::Tensor> inputs;
  std::vector<at::Tensor> labels;
  int64_t batch_size = 0;  // the loss is the mean over the whole mini-batch
};

// What the last stage saw in one step: on the rank whose pipeline starts there (the edge), also
// when the loss is on a server (--edge-last 0, which sends it back); zeros elsewhere.
struct StepResult {
  double loss_sum = 0;  // sum of per-sample cross-entropy
  int64_t correct = 0;
  int64_t samples = 0;
  at::Tensor predictions;  // int64, per sample, in micro-batch order
  bool nonfinite = false;  // a NaN/Inf was seen on this rank (only without stop_on_nonfinite)
  std::string nonfinite_where;
};

// Counters accumulated over steps until reset; every rank has the same layout, so rows
// can be gathered to rank 0.
struct RankCounters {
  double forward_seconds = 0, backward_seconds = 0, encode_seconds = 0, decode_seconds = 0;
  double wait_seconds = 0;  // blocked on a receive or on a send's completion
  double step_seconds = 0;  // wall time inside run()
  double data_seconds = 0;  // (counted by the trainer) steps waiting for their batch
  // --edge-compute-scale: the part of forward/backward seconds spent emulating a slower edge.
  double emulated_compute_seconds = 0;
  // Per boundary b (between stage b and b+1), per direction: [b][0] activations, [b][1] gradients.
  std::vector<std::array<double, 2>> bytes_sent, bytes_received, raw_bytes_sent, messages_sent;
  std::vector<std::array<double, 2>> error_sum, error_samples;  // relative error of sampled messages
  std::vector<std::array<double, 2>> encode_seconds_at, decode_seconds_at;  // share of encode/decode_seconds
  // Share of wait_seconds the receiver was held back by the emulated link (--link), after the
  // message itself had been transferred.
  std::vector<std::array<double, 2>> link_wait_seconds_at;
  // --edge-last 0: labels sent to a loss stage on another rank and the results it returns.
  double label_bytes_sent = 0, label_bytes_received = 0;
  // Per peer rank (not in row()): pipeline bytes sent to / received from it and the seconds
  // its messages were held back by the emulated link, for the per-client tables.
  std::vector<double> peer_sent_bytes, peer_received_bytes, peer_link_wait_seconds;

  void reset();
  // Every counter as one flat list (same layout on every run of the same plan), and the sum
  // of such a list into these counters (a resumed epoch adds what came before its checkpoint).
  std::vector<double> values() const;
  void add(const std::vector<double>& values);
};

// Exact host tensor bytes (LibTorch's CPU allocator, this rank's training thread), the largest
// seen in training steps. Maxima, not sums, so they live outside RankCounters.
struct MemoryPeaks {
  // What one step held at once above what was alive before it: activations of every
  // micro-batch in flight, gradients, messages.
  int64_t step_bytes = 0;
  // What one stage's forward of one micro-batch left allocated: the activations autograd keeps
  // for its backward, and its output (with --recompute only the output). The schedule decides
  // how many of these a stage holds at once.
  int64_t microbatch_activation_bytes = 0;
};

class PipelineExecutor {
 public:
  // Keeps the blocks of this rank's stages; the others are dropped.
  PipelineExecutor(Transport& transport, const PartitionPlan& plan, const std::vector<Block>& blocks,
                   const PipelineOptions& options);
  ~PipelineExecutor();
  PipelineExecutor(const PipelineExecutor&) = delete;
  PipelineExecutor& operator=(const PipelineExecutor&) = delete;

  // Runs one mini-batch. `microbatch_rows[m]`: the samples of micro-batch m (every rank knows
  // them, so each receive is posted with its exact size). `batch` is needed on the ranks whose
  // pipeline starts or ends here (the edge clients of the step). With train = false the
  // schedule must be forward-only and no graph is built.
  StepResult run(const Schedule& schedule, const std::vector<int64_t>& microbatch_rows, const EdgeBatch* batch,
                 bool train);
  // Whether this rank has anything to do in `schedule` (an idle client in another's turn does not).
  bool takes_part(const Schedule& schedule) const;

  void set_training(bool training);
  // This rank's parameters, named "<global block index>.<path>" like the full model.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  std::vector<at::Tensor> parameters() const;
  // Buffers too (BatchNorm running statistics), for checkpoints and exactness checks.
  std::vector<std::pair<std::string, at::Tensor>> named_buffers() const;

  RankCounters& counters();
  // Host tensor memory peaks of the training steps since the last reset (step_memory.hpp).
  const MemoryPeaks& memory_peaks() const;
  void reset_memory_peaks();
  // Records every action of the steps the tracer is recording (--trace); null: none.
  void set_tracer(Tracer* tracer);
  // Where this rank's stages live (--edge-device or --server-device); checkpoints and
  // hand-offs load their tensors there.
  at::Device device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitpipe
