#include "edge_averaging.hpp"

#include <torch/optim/sgd.h>

#include <chrono>
#include <numeric>

#include "splitpipe/error.hpp"

namespace splitpipe {

EdgeAverager::EdgeAverager(const MpiTransport& world, int clients, double timeout_seconds) : count_(clients) {
  std::vector<int> members(static_cast<size_t>(clients));
  std::iota(members.begin(), members.end(), 0);
  clients_ = world.subgroup(members);
  if (clients_) clients_->set_timeout(timeout_seconds);
}

void EdgeAverager::average(PipelineExecutor& executor, torch::optim::SGD* optimizer) {
  if (!clients_) throw std::logic_error("EdgeAverager::average on a server rank");
  const auto start = std::chrono::steady_clock::now();
  // Everything to average, in the same order on every client.
  std::vector<at::Tensor> tensors;
  for (const auto& [name, p] : executor.named_parameters()) {
    tensors.push_back(p);
    if (!optimizer) continue;
    const auto& state = optimizer->state();
    // The optimizer keys its per-parameter state by the parameter's TensorImpl.
    const auto it = state.find(p.unsafeGetTensorImpl());
    if (it != state.end()) tensors.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
  }
  for (const auto& [name, b] : executor.named_buffers())
    if (b.is_floating_point()) tensors.push_back(b);  // not num_batches_tracked: equal on every client

  int64_t total = 0;
  for (const auto& t : tensors) total += t.numel();
  std::vector<float> values(static_cast<size_t>(total));
  const at::Tensor flat = at::from_blob(values.data(), {total}, at::kFloat);
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& t : tensors) {
    flat.narrow(0, offset, t.numel()).copy_(t.reshape(-1));
    offset += t.numel();
  }
  clients_->sum_in_place(values);
  flat.div_(static_cast<double>(count_));
  offset = 0;
  for (auto& t : tensors) {
    t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
  bytes_ += static_cast<double>(total) * sizeof(float);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace splitpipe
