// Internal: a bounded random sample of a tensor's values, so that quantile boundaries and
// k-means centroids cost O(sample) instead of a sort of the whole tensor.
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace splitpipe {

constexpr int64_t kMaxSample = 16384;

// The values of `flat` (1-D): all of them when there are at most max_count, else max_count drawn
// uniformly with replacement by `generator`. Not sorted.
at::Tensor random_sample(const at::Tensor& flat, int64_t max_count, at::Generator& generator);

// random_sample sorted ascending.
at::Tensor sorted_sample(const at::Tensor& flat, int64_t max_count, at::Generator& generator);

// The values at `ranks` (ascending, each in [0, numel)) of float32 `values` sorted ascending,
// NaN last as at::sort puts it: what sorting and indexing gives, but for a few ranks by
// successive partial selection, O(numel) each, instead of a sort.
std::vector<float> order_statistics(const at::Tensor& values, const std::vector<int64_t>& ranks);

}  // namespace splitpipe
