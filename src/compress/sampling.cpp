#include "sampling.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace splitpipe {

at::Tensor random_sample(const at::Tensor& flat, int64_t max_count, at::Generator& generator) {
  const int64_t n = flat.numel();
  return n <= max_count ? flat : flat.index_select(0, at::randint(n, {max_count}, generator, at::kLong));
}

at::Tensor sorted_sample(const at::Tensor& flat, int64_t max_count, at::Generator& generator) {
  return std::get<0>(random_sample(flat, max_count, generator).sort());
}

std::vector<float> order_statistics(const at::Tensor& values, const std::vector<int64_t>& ranks) {
  const at::Tensor contiguous = values.contiguous();
  std::vector<float> work(contiguous.data_ptr<float>(), contiguous.data_ptr<float>() + contiguous.numel());
  // NaN compares greater than every number, so the order is strict and matches at::sort.
  const auto less = [](float a, float b) { return a < b || (std::isnan(b) && !std::isnan(a)); };
  // Each selection leaves everything after its rank >= it, so the next one searches only there;
  // with many ranks the remaining ranges add up to more than one sort.
  constexpr size_t kMaxSelections = 16;
  if (ranks.size() > kMaxSelections) std::sort(work.begin(), work.end(), less);
  std::vector<float> result;
  auto from = work.begin();
  for (int64_t rank : ranks) {
    const auto nth = work.begin() + rank;
    if (ranks.size() <= kMaxSelections) std::nth_element(from, nth, work.end(), less);
    result.push_back(*nth);
    from = nth;
  }
  return result;
}

}  // namespace splitpipe
