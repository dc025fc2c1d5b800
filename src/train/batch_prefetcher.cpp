#include "batch_prefetcher.hpp"

#include <torch/types.h>

namespace splitpipe {

BatchPrefetcher::BatchPrefetcher(Make make, int64_t first, int64_t end, int depth)
    : make_(std::move(make)),
      first_(first),
      next_take_(first),
      end_(end),
      depth_(static_cast<size_t>(std::max(depth, 1))),
      thread_([this] { produce(); }) {}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void BatchPrefetcher::produce() {
  torch::NoGradGuard no_grad;  // grad mode is per thread; a batch needs no graph
  for (int64_t step = first_; step < end_; ++step) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
      if (stop_) return;
    }
    std::optional<EdgeBatch> batch;
    try {
      batch = make_(step);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.push_back(std::move(batch));
    changed_.notify_all();
  }
}

std::optional<EdgeBatch> BatchPrefetcher::take(int64_t step) {
  if (step != next_take_ || step >= end_)
    throw std::logic_error("BatchPrefetcher: step " + std::to_string(step) + " taken out of order");
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty()) std::rethrow_exception(error_);
  std::optional<EdgeBatch> batch = std::move(ready_.front());
  ready_.pop_front();
  ++next_take_;
  changed_.notify_all();
  return batch;
}

}  // namespace splitpipe
