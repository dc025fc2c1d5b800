#include "sampling.hpp"

#include <ATen/ATen.h>

namespace splitpipe {

at::Tensor sorted_sample(const at::Tensor& flat, int64_t max_count, at::Generator& generator) {
  const int64_t n = flat.numel();
  const at::Tensor sample =
      n <= max_count ? flat : flat.index_select(0, at::randint(n, {max_count}, generator, at::kLong));
  return std::get<0>(sample.sort());
}

}  // namespace splitpipe
