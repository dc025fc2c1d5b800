// Seeded synthetic classification data: class prototypes plus Gaussian noise.
#include "synthetic.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "splitpipe/error.hpp"

namespace splitpipe {
namespace data_detail {
namespace {

// Noise as strong as the prototypes themselves: samples look noisy, yet any dimension above a
// few dozen elements keeps classes far apart, so a LeNet passes 90% within an epoch.
constexpr double kNoiseStd = 1.0;

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + (stream + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

at::Tensor synthetic_prototypes(const std::vector<int64_t>& sample_shape, int64_t num_classes, uint64_t seed) {
  if (num_classes < 1) throw UsageError("synthetic dataset: need at least 1 class, got " + std::to_string(num_classes));
  if (sample_shape.empty()) throw UsageError("synthetic dataset: the sample shape is empty");
  for (const int64_t dim : sample_shape) {
    if (dim < 1) throw UsageError("synthetic dataset: sample dimensions must be positive, got " + std::to_string(dim));
  }
  std::vector<int64_t> shape{num_classes};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  // A generator of our own: the global torch RNG belongs to model initialisation.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn(shape, generator, torch::kFloat);
}

Dataset synthetic_samples(const at::Tensor& prototypes, int64_t samples, uint64_t seed) {
  if (samples < 0) throw UsageError("synthetic dataset: negative sample count " + std::to_string(samples));
  const int64_t num_classes = prototypes.size(0);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  Dataset data;
  const at::Tensor balanced = torch::arange(samples, torch::kLong).remainder_(num_classes);
  data.labels = balanced.index_select(0, torch::randperm(samples, generator, torch::kLong));
  std::vector<int64_t> shape = prototypes.sizes().vec();
  shape[0] = samples;
  const at::Tensor noise = torch::randn(shape, generator, torch::kFloat).mul_(kNoiseStd);
  data.inputs = prototypes.index_select(0, data.labels).add_(noise);
  data.num_classes = num_classes;
  return data;
}

}  // namespace data_detail

Dataset make_synthetic(const std::vector<int64_t>& sample_shape, int64_t num_classes, int64_t samples,
                       uint64_t seed) {
  using namespace data_detail;
  return synthetic_samples(synthetic_prototypes(sample_shape, num_classes, derive_seed(seed, kPrototypeStream)),
                           samples, derive_seed(seed, kTrainStream));
}

}  // namespace splitpipe
