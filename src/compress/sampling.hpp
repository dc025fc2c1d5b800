// Internal: a bounded random sample of a tensor's values, so that quantile boundaries and
// k-means centroids cost O(sample) instead of a sort of the whole tensor.
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace splitpipe {

constexpr int64_t kMaxSample = 16384;

// The values of `flat` (1-D) sorted ascending: all of them when there are at most max_count,
// else max_count drawn uniformly with replacement by `generator`.
at::Tensor sorted_sample(const at::Tensor& flat, int64_t max_count, at::Generator& generator);

}  // namespace splitpipe
