// Seeded epoch order: a pure function of (seed, epoch), never of how many epochs ran before.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {

BatchOrder::BatchOrder(int64_t num_samples, int64_t batch_size, bool shuffle, uint64_t seed)
    : num_samples_(num_samples), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
  if (num_samples < 0) throw Error("batch order: negative sample count " + std::to_string(num_samples));
  if (batch_size < 1) throw UsageError("batch size must be at least 1, got " + std::to_string(batch_size));
  start_epoch(0);
}

void BatchOrder::start_epoch(int64_t epoch) {
  if (!shuffle_) {
    order_ = torch::arange(num_samples_, torch::kLong);
    return;
  }
  // A generator of our own: drawing from the global torch RNG would shift model initialisation
  // and dropout whenever the dataset size changes. Unsigned arithmetic wraps, as intended.
  const uint64_t epoch_seed = seed_ * 1000003ULL + static_cast<uint64_t>(epoch);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(epoch_seed);
  order_ = torch::randperm(num_samples_, generator, torch::kLong);
}

int64_t BatchOrder::num_batches() const { return (num_samples_ + batch_size_ - 1) / batch_size_; }

int64_t BatchOrder::batch_length(int64_t batch) const {
  if (batch < 0 || batch >= num_batches()) {
    throw std::out_of_range("batch " + std::to_string(batch) + " outside [0, " + std::to_string(num_batches()) + ")");
  }
  return std::min(batch_size_, num_samples_ - batch * batch_size_);
}

at::Tensor BatchOrder::batch_indices(int64_t batch) const {
  return order_.narrow(0, batch * batch_size_, batch_length(batch));
}

}  // namespace splitpipe
