// The step-memory meter counts exactly the bytes of host tensors this thread allocated and has
// not freed, and their peak; other threads' tensors (the prefetcher's batches) are not counted.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <thread>

#include "splitpipe/step_memory.hpp"

using namespace splitpipe;

TEST(StepMemory, CountsThisThreadsTensorBytesAndTheirPeak) {
  step_memory::install();
  const int64_t before = step_memory::live_bytes();
  step_memory::reset_peak();
  {
    const at::Tensor floats = at::empty({1000}, at::kFloat);
    EXPECT_EQ(step_memory::live_bytes() - before, 4000);
    {
      const at::Tensor doubles = at::zeros({500}, at::kDouble);
      EXPECT_EQ(step_memory::live_bytes() - before, 8000);
    }
    EXPECT_EQ(step_memory::live_bytes() - before, 4000);
    EXPECT_EQ(step_memory::peak_bytes() - before, 8000);
    // A result of an op is counted like any other tensor (and the data is intact).
    const at::Tensor sum = floats.fill_(2).cumsum(0);
    EXPECT_EQ(sum[999].item<float>(), 2000.0f);
    EXPECT_EQ(step_memory::live_bytes() - before, 8000);
  }
  EXPECT_EQ(step_memory::live_bytes(), before);

  step_memory::reset_peak();
  std::thread other([] { const at::Tensor big = at::ones({1 << 20}); });
  other.join();
  EXPECT_EQ(step_memory::peak_bytes(), before) << "another thread's tensors are not counted";
}
