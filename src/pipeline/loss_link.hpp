// The labels of a pipeline whose loss is not on its edge (--edge-last 0): the edge sends the
// loss stage each micro-batch's labels, and the loss stage sends back what it saw (loss,
// correct count, per-sample predictions), so the edge keeps the statistics, the confusion
// matrix and the run file exactly as in the U-shaped split. Labels travel as raw int64 (no
// codec: a label must arrive exact); the bytes count as label traffic.
//
// Message order on the data plane (FIFO per pair, see transport.hpp): the edge sends the
// labels before any action of the step, so the loss rank posts their receives before all its
// other receives; the loss rank sends the result after its last action, so the edge posts its
// receive after all its other receives.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "splitpipe/pipeline.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

class LossLink {
 public:
  // `edge_rank` holds the pipeline's first stage, `loss_rank` its last; this rank is one of them.
  LossLink(Transport& transport, int edge_rank, int loss_rank, double patience_seconds);

  // Edge side: posts the labels of every micro-batch, and the receive of the step's result.
  void send_labels(const std::vector<at::Tensor>& labels, RankCounters& counters);
  // Edge side: waits for the loss stage's result of a step of `rows` samples.
  StepResult receive_result(int64_t rows, RankCounters& counters);

  // Loss side: posts the receives of every micro-batch's labels.
  void post_labels(const std::vector<int64_t>& microbatch_rows);
  // Loss side: waits for micro-batch `mb`'s labels.
  at::Tensor labels(int microbatch, RankCounters& counters);
  // Loss side: posts the step's result back to the edge.
  void send_result(const StepResult& result, RankCounters& counters);

  // Waits until every posted send has completed, so the buffers may be reused.
  void complete(RankCounters& counters);

 private:
  int peer() const;
  Transport::Ticket post_send(std::vector<int64_t>& buffer, RankCounters& counters);
  void wait(Transport::Ticket ticket, const char* what, RankCounters& counters);

  Transport& transport_;
  int edge_rank_, loss_rank_;
  double patience_seconds_;
  std::vector<std::vector<int64_t>> label_buffers_;  // one per micro-batch
  std::vector<Transport::Ticket> label_tickets_;
  std::vector<int64_t> result_buffer_;
  Transport::Ticket result_ticket_ = -1;
  std::vector<Transport::Ticket> pending_sends_;
};

}  // namespace splitpipe
