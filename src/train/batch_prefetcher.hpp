// The edge's next training batches, prepared on a background thread while the current step
// runs (--prefetch N batches ahead): index, copy, augment and cut into micro-batches. A batch
// depends only on (seed, epoch, step), never on when or where it was made, so training is
// bit-identical with and without prefetching.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "splitpipe/pipeline.hpp"

namespace splitpipe {

class BatchPrefetcher {
 public:
  // make(step): the batch of that step, or nullopt where this rank has none (another client's
  // turn). Steps first..end-1 are made in order, at most `depth` ahead of take().
  using Make = std::function<std::optional<EdgeBatch>(int64_t step)>;
  BatchPrefetcher(Make make, int64_t first, int64_t end, int depth);
  ~BatchPrefetcher();  // stops the thread (a pass may end early: an interrupt, an error)
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Blocks until the batch of `step` (the next one in order) is made; rethrows its error.
  std::optional<EdgeBatch> take(int64_t step);

 private:
  void produce();

  Make make_;
  const int64_t first_;
  int64_t next_take_;  // the consumer's
  const int64_t end_;
  size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::optional<EdgeBatch>> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after everything it uses
};

}  // namespace splitpipe
