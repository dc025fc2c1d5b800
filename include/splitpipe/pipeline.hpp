// Executes schedules on this rank: the stages it owns, the compressed channels at its
// boundaries, and the counters of where the time and the bytes went.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
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

struct PipelineOptions {
  std::string fwd_codec = "none";
  std::string bwd_codec = "none";
  int64_t max_microbatch = 1;  // sizes the receive buffers posted ahead
  std::string edge_device = "cpu";
  std::string server_device = "cpu";
  bool stop_on_nonfinite = true;  // false: report it in StepResult (--on-nonfinite skip-batch)
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

// What the last stage saw in one step (zeros on ranks without the last stage).
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
  // Per boundary b (between stage b and b+1), per direction: [b][0] activations, [b][1] gradients.
  std::vector<std::array<double, 2>> bytes_sent, bytes_received, raw_bytes_sent, messages_sent;
  std::vector<std::array<double, 2>> error_sum, error_samples;  // relative error of sampled messages
  std::vector<std::array<double, 2>> encode_seconds_at, decode_seconds_at;  // share of encode/decode_seconds
  // Share of wait_seconds the receiver was held back by the emulated link (--link), after the
  // message itself had been transferred.
  std::vector<std::array<double, 2>> link_wait_seconds_at;

  void reset();
  // Flat (name, value) row; names are identical on every rank.
  std::vector<std::pair<std::string, double>> row() const;
};

class PipelineExecutor {
 public:
  // Keeps the blocks of this rank's stages; the others are dropped.
  PipelineExecutor(Transport& transport, const PartitionPlan& plan, const std::vector<Block>& blocks,
                   const PipelineOptions& options);
  ~PipelineExecutor();
  PipelineExecutor(const PipelineExecutor&) = delete;
  PipelineExecutor& operator=(const PipelineExecutor&) = delete;

  // Runs one mini-batch. `batch` is needed on the edge rank only. With train = false the
  // schedule must be forward-only and no graph is built.
  StepResult run(const Schedule& schedule, const EdgeBatch* batch, bool train);

  void set_training(bool training);
  // This rank's parameters, named "<global block index>.<path>" like the full model.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  std::vector<at::Tensor> parameters() const;
  // Buffers too (BatchNorm running statistics), for checkpoints and exactness checks.
  std::vector<std::pair<std::string, at::Tensor>> named_buffers() const;

  RankCounters& counters();
  // Where this rank's stages live (--edge-device or --server-device); checkpoints and
  // hand-offs load their tensors there.
  at::Device device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitpipe
