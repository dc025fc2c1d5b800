#include "splitpipe/stage_state.hpp"

#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <cstdio>
#include <sstream>

namespace splitpipe {

StageState::StageState(PipelineExecutor& executor, const OptimizerOptions& options) : executor_(executor) {
  const auto params = executor_.parameters();
  if (params.empty()) return;
  optimizer_ = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(options.lr)
                                                               .momentum(options.momentum)
                                                               .weight_decay(options.weight_decay)
                                                               .nesterov(options.nesterov));
}

StageState::~StageState() = default;

void StageState::zero_grad() {
  if (optimizer_) optimizer_->zero_grad();
}

void StageState::set_lr(double lr) {
  if (!optimizer_) return;
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
}

void StageState::divide_gradients(double divisor) {
  for (const auto& p : executor_.parameters())
    if (p.grad().defined()) p.mutable_grad().div_(divisor);
}

void StageState::step() {
  if (optimizer_) optimizer_->step();
}

void StageState::save(torch::serialize::OutputArchive& archive) const {
  for (const auto& [name, p] : executor_.named_parameters()) archive.write("param/" + name, p, false);
  for (const auto& [name, b] : executor_.named_buffers()) archive.write("buffer/" + name, b, true);
  if (optimizer_) {
    torch::serialize::OutputArchive state;
    optimizer_->save(state);
    archive.write("optimizer", state);
  }
  archive.write("rng", at::globalContext().defaultGenerator(at::kCPU).get_state(), true);
  const at::Device device = executor_.device();
  if (device.is_cuda()) archive.write("rng_cuda", at::globalContext().defaultGenerator(device).get_state(), true);
}

void StageState::load(torch::serialize::InputArchive& archive) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : executor_.named_parameters()) {
    at::Tensor saved;
    archive.read("param/" + name, saved);
    p.copy_(saved);
  }
  for (const auto& [name, b] : executor_.named_buffers()) {
    at::Tensor saved;
    archive.read("buffer/" + name, saved, true);
    b.copy_(saved);
  }
  if (optimizer_) {
    torch::serialize::InputArchive state;
    archive.read("optimizer", state);
    optimizer_->load(state);
  }
  // Generator states are byte tensors on the CPU, wherever the archive was mapped to.
  // (A Generator is a handle: the copy sets the global generator's state.)
  at::Tensor rng;
  archive.read("rng", rng, true);
  at::Generator cpu = at::globalContext().defaultGenerator(at::kCPU);
  cpu.set_state(rng.to(at::kCPU));
  const at::Device device = executor_.device();
  if (device.is_cuda() && archive.try_read("rng_cuda", rng, true)) {
    at::Generator cuda = at::globalContext().defaultGenerator(device);
    cuda.set_state(rng.to(at::kCPU));
  }
}

std::string StageState::serialize() const {
  torch::serialize::OutputArchive archive;
  save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void StageState::deserialize(const std::string& bytes) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), executor_.device());
  load(archive);
}

double StageState::average(const ControlPlane& group) {
  // Everything to average, in the same order on every member.
  std::vector<at::Tensor> tensors;
  for (const auto& [name, p] : executor_.named_parameters()) {
    tensors.push_back(p);
    if (!optimizer_) continue;
    // The optimizer keys its per-parameter state by the parameter's TensorImpl.
    const auto& state = optimizer_->state();
    const auto it = state.find(p.unsafeGetTensorImpl());
    if (it != state.end()) tensors.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
  }
  for (const auto& [name, b] : executor_.named_buffers())
    if (b.is_floating_point()) tensors.push_back(b);  // not num_batches_tracked: equal on every member

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
  group.sum_in_place(values);
  flat.div_(static_cast<double>(group.size()));
  offset = 0;
  for (auto& t : tensors) {
    t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
  return static_cast<double>(total) * sizeof(float);
}

std::string StageState::digest() const {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a 64
  auto add = [&hash](const at::Tensor& t) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const auto* bytes = static_cast<const uint8_t*>(c.data_ptr());
    for (size_t i = 0; i < c.nbytes(); ++i) hash = (hash ^ bytes[i]) * 1099511628211ULL;
  };
  for (const auto& [name, p] : executor_.named_parameters()) add(p);
  for (const auto& [name, b] : executor_.named_buffers()) add(b);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace splitpipe
