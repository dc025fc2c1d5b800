// Internal: the pieces of make_synthetic, so load_dataset can draw train and test from the same
// class prototypes with different noise.
#pragma once
#include <cstdint>
#include <vector>

#include "splitpipe/data.hpp"

namespace splitpipe::data_detail {

// An independent seed for each use of one user seed (splitmix64), so streams do not overlap.
uint64_t derive_seed(uint64_t seed, uint64_t stream);

// One random pattern per class, float32 [num_classes, ...sample_shape].
at::Tensor synthetic_prototypes(const std::vector<int64_t>& sample_shape, int64_t num_classes, uint64_t seed);

// `samples` noisy copies of the prototypes with balanced labels in shuffled order.
Dataset synthetic_samples(const at::Tensor& prototypes, int64_t samples, uint64_t seed);

// Stream numbers for derive_seed: make_synthetic's samples are load_dataset's training split.
constexpr uint64_t kPrototypeStream = 0, kTrainStream = 1, kTestStream = 2;

}  // namespace splitpipe::data_detail
