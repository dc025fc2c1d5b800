#include "uniform_quant.hpp"

#include <ATen/ATen.h>

namespace splitpipe {

UniformGrid uniform_grid(const at::Tensor& lo, const at::Tensor& hi, int bits) {
  const double top_level = static_cast<double>((int64_t{1} << bits) - 1);
  return {lo, (hi - lo).div_(top_level)};
}

at::Tensor quantize_codes(const at::Tensor& x, const at::Tensor& lo, const at::Tensor& step, int bits,
                          Rounding rounding, at::Generator& generator) {
  const double top_level = static_cast<double>((int64_t{1} << bits) - 1);
  // A zero step (constant range) maps everything to code 0 instead of dividing by zero.
  const at::Tensor inverse_step = at::where(step > 0, step.reciprocal(), at::zeros_like(step));
  // (x - lo) first: x*inv - lo*inv would cancel catastrophically when |lo| >> step.
  at::Tensor levels = at::sub(x, lo).mul_(inverse_step);
  if (rounding == Rounding::Stochastic)
    levels.add_(at::rand(levels.sizes(), generator, levels.options()));
  else
    levels.add_(0.5);
  // Levels are >= 0 after the clamp, so truncation in the int cast is floor.
  return levels.clamp_(0.0, top_level).to(at::kInt);
}

at::Tensor dequantize_codes(const at::Tensor& codes, const at::Tensor& lo, const at::Tensor& step) {
  return at::addcmul(lo, codes.to(at::kFloat), step);
}

size_t grid_table_bytes(int64_t groups) { return static_cast<size_t>(groups) * 2 * sizeof(float); }

void put_grid_table(PayloadWriter& writer, const UniformGrid& grid) {
  writer.put_tensor(at::stack({grid.lo.reshape(-1), grid.step.reshape(-1)}, 1), at::kFloat);
}

UniformGrid read_grid_table(PayloadReader& reader, int64_t groups) {
  const at::Tensor table = reader.tensor(groups * 2, at::kFloat, "grid table").view({groups, 2});
  return {table.select(1, 0).contiguous(), table.select(1, 1).contiguous()};
}

}  // namespace splitpipe
