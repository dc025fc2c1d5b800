// The per-stage compute orders of the classic schedules. Each stage is considered alone here;
// build_schedule() later merges stages that share a rank.
#include "splitpipe/error.hpp"
#include "splitpipe/schedule.hpp"

namespace splitpipe {
namespace {

Action forward(int stage, int mb) { return {ActionType::Forward, stage, mb}; }
Action backward(int stage, int mb) { return {ActionType::Backward, stage, mb}; }

}  // namespace

// GPipe (fill-drain): every forward, then every backward.
std::vector<StageOrder> gpipe_order(int num_stages, int microbatches, bool forward_only) {
  std::vector<StageOrder> orders;
  for (int s = 0; s < num_stages; ++s) {
    StageOrder order{s, {}};
    for (int mb = 0; mb < microbatches; ++mb) order.computes.push_back(forward(s, mb));
    if (!forward_only)
      for (int mb = 0; mb < microbatches; ++mb) order.computes.push_back(backward(s, mb));
    orders.push_back(std::move(order));
  }
  return orders;
}

// 1F1B (PipeDream-flush): stage s runs S-s-1 warm-up forwards, then alternates one forward
// and one backward, then drains. At most S-s micro-batches of activations are alive.
std::vector<StageOrder> one_f_one_b_order(int num_stages, int microbatches, bool forward_only) {
  if (forward_only) return gpipe_order(num_stages, microbatches, true);
  std::vector<StageOrder> orders;
  for (int s = 0; s < num_stages; ++s) {
    StageOrder order{s, {}};
    const int warmup = std::min(microbatches, num_stages - s - 1);
    int next_forward = 0, next_backward = 0;
    while (next_forward < warmup) order.computes.push_back(forward(s, next_forward++));
    while (next_forward < microbatches) {
      order.computes.push_back(forward(s, next_forward++));
      order.computes.push_back(backward(s, next_backward++));
    }
    while (next_backward < microbatches) order.computes.push_back(backward(s, next_backward++));
    orders.push_back(std::move(order));
  }
  return orders;
}

}  // namespace splitpipe
