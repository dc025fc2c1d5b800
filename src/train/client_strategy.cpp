#include "splitpipe/client_strategy.hpp"

#include <algorithm>

#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

int64_t batches(int64_t samples, int64_t batch_size) { return samples / batch_size + (samples % batch_size != 0); }

}  // namespace

ClientStrategy::ClientStrategy(const std::string& mode, const std::vector<int64_t>& shard_sizes, int64_t batch_size,
                               int sync_every)
    : mode_(mode), shard_sizes_(shard_sizes), batch_size_(batch_size) {
  if (shard_sizes_.empty() || batch_size_ < 1) throw std::logic_error("ClientStrategy: no clients or no batch size");
  if (mode_ == "single") {
    if (clients() != 1) throw std::logic_error("ClientStrategy: single mode has one client");
    steps_ = batches(shard_sizes_[0], batch_size_);
  } else if (mode_ == "sequential") {
    sync_.edge = SyncPolicy::EdgeSync::HandOff;
    for (const int64_t size : shard_sizes_) {
      first_step_.push_back(steps_);
      steps_ += batches(size, batch_size_);
    }
  } else if (mode_ == "parallel") {
    sync_ = SyncPolicy{true, SyncPolicy::EdgeSync::Average, sync_every};
    steps_ = *std::min_element(shard_sizes_.begin(), shard_sizes_.end()) / batch_size_;
  } else {
    throw std::logic_error("ClientStrategy: unknown mode " + mode_);
  }
  const int64_t largest = shard_sizes_.empty() ? 0 : *std::max_element(shard_sizes_.begin(), shard_sizes_.end());
  if (batch_size_ > largest && largest > 0)
    throw UsageError("--batch-size " + std::to_string(batch_size_) + " is larger than the training data (" +
                     std::to_string(largest) + " samples" + (shard_sizes_.size() > 1 ? " in the largest shard" : "") +
                     "); use at most that");
  if (steps_ < 1)
    throw UsageError("--batch-size " + std::to_string(batch_size_) + ": " +
                     (mode_ == "parallel" ? "a client's shard holds less than one full batch"
                                          : "the training set does not hold one full batch") +
                     " (smallest shard: " +
                     std::to_string(*std::min_element(shard_sizes_.begin(), shard_sizes_.end())) +
                     " samples); use a smaller --batch-size or more training samples");
}

StepSpec ClientStrategy::step(int64_t index) const {
  if (index < 0 || index >= steps_) throw std::logic_error("ClientStrategy: no step " + std::to_string(index));
  StepSpec spec;
  if (mode_ == "parallel") {
    spec = StepSpec{-1, index, batch_size_, (index + 1) % sync_.every == 0 || index + 1 == steps_};
  } else {
    // The turn holding step `index`: the last client whose first step is not after it.
    const int client = mode_ == "single" ? 0
                                         : static_cast<int>(std::upper_bound(first_step_.begin(), first_step_.end(), index) -
                                                            first_step_.begin()) - 1;
    const int64_t batch = index - (mode_ == "single" ? 0 : first_step_[client]);
    const int64_t turn_steps = batches(shard_sizes_[client], batch_size_);
    spec.client = client;
    spec.batch = batch;
    spec.rows = std::min(batch_size_, shard_sizes_[client] - batch * batch_size_);
    spec.edge_sync_after = sync_.edge == SyncPolicy::EdgeSync::HandOff && batch + 1 == turn_steps;
  }
  return spec;
}

std::vector<int64_t> microbatch_rows(int64_t rows, int parts) {
  std::vector<int64_t> sizes(static_cast<size_t>(parts), rows / parts);
  for (int64_t i = 0; i < rows % parts; ++i) ++sizes[static_cast<size_t>(i)];
  return sizes;
}

}  // namespace splitpipe
