// Internal: uniform quantization on a (lo, step) grid, shared by `quant` (one grid per tensor
// or channel) and `sortquant` (one grid per quantile bucket).
#pragma once
#include "payload.hpp"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace splitpipe {

enum class Rounding { Nearest, Stochastic };

// Level i of a grid decodes to lo + i*step, i in [0, 2^bits).
struct UniformGrid {
  at::Tensor lo;
  at::Tensor step;
};

// The grid spanning [lo, hi] with 2^bits levels: step = (hi - lo) / (2^bits - 1). A constant
// range gives step 0, whose codes are all 0 and decode exactly to lo.
UniformGrid uniform_grid(const at::Tensor& lo, const at::Tensor& hi, int bits);

// int32 codes of x on the grid (lo, step broadcastable to x). Nearest: |x - decoded| <= step/2.
// Stochastic: floor(v + u), u ~ U[0,1) from `generator`, so the decoded value is unbiased.
at::Tensor quantize_codes(const at::Tensor& x, const at::Tensor& lo, const at::Tensor& step, int bits,
                          Rounding rounding, at::Generator& generator);

// float32 lo + codes*step.
at::Tensor dequantize_codes(const at::Tensor& codes, const at::Tensor& lo, const at::Tensor& step);

// The grid table on the wire: float32 [groups][2] = (lo, step) per group.
size_t grid_table_bytes(int64_t groups);
void put_grid_table(PayloadWriter& writer, const UniformGrid& grid);
UniformGrid read_grid_table(PayloadReader& reader, int64_t groups);

}  // namespace splitpipe
