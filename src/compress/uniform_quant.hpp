// Internal: uniform quantization on a (lo, step) grid, shared by `quant` (one grid per tensor
// or channel) and `sortquant` (one grid per quantile bucket).
#pragma once
#include "payload.hpp"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

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
// The reference the fused kernels below are tested against; the codecs use it for stochastic
// rounding only.
at::Tensor quantize_codes(const at::Tensor& x, const at::Tensor& lo, const at::Tensor& step, int bits,
                          Rounding rounding, at::Generator& generator);

// float32 lo + codes*step.
at::Tensor dequantize_codes(const at::Tensor& codes, const at::Tensor& lo, const at::Tensor& step);

// The grid table on the wire: float32 [groups][2] = (lo, step) per group.
size_t grid_table_bytes(int64_t groups);
void put_grid_table(PayloadWriter& writer, const UniformGrid& grid);
UniformGrid read_grid_table(PayloadReader& reader, int64_t groups);

// ---- Fused float32 kernels: one pass over contiguous values, no temporaries -------------------
//
// Element i of a contiguous tensor uses grid (i / inner) % groups: one grid for the whole tensor
// (groups = 1, inner = numel) or one per channel of [N, C, ...] (groups = C, inner = product of
// the dims after the channel).
struct GridLayout {
  int64_t groups;
  int64_t inner;
};

// lo[g], hi[g] = min and max of the values of group g. A NaN in a group makes both NaN, as
// at::amin/amax do, so the message decodes to NaN instead of hiding it. count must be > 0.
void group_ranges(const float* x, int64_t count, GridLayout layout, float* lo, float* hi);

// The multiplier of the nearest-rounding kernels; 0 for a zero step, so a constant range
// gives code 0 (exactly lo) instead of a division by zero.
inline float inverse_step(float step) { return step > 0 ? 1.0f / step : 0.0f; }

// The nearest level of x: floor((x - lo) * inverse + 0.5) clamped to [0, top_level], in
// float32 and in the same order as quantize_codes, so both give the same codes. (x - lo) first:
// x*inv - lo*inv would cancel catastrophically when |lo| >> step. A NaN gives code 0.
inline uint32_t nearest_code(float x, float lo, float inverse, float top_level) {
  float level = (x - lo) * inverse + 0.5f;
  level = level > 0.0f ? level : 0.0f;  // also maps NaN to 0
  level = top_level < level ? top_level : level;
  // In [0, top_level] now, so truncation is floor and the conversion is defined.
  return static_cast<uint32_t>(static_cast<int32_t>(level));
}

// lo + code*step, as dequantize_codes (at::addcmul) computes it: one expression, so a caller
// compiled for FMA fuses it exactly where ATen's FMA kernels do (see vector_clones.hpp).
inline float dequantized(uint32_t code, float lo, float step) {
  return lo + static_cast<float>(static_cast<int32_t>(code)) * step;
}

// Writes packed_bytes(count, bits) bytes: the bytes pack_bits would write for the nearest-
// rounding codes of quantize_codes, without materialising the codes.
void quantize_pack_nearest(const float* x, int64_t count, GridLayout layout, const float* lo, const float* step,
                           int bits, uint8_t* out);

// Reads packed_bytes(count, bits) bytes of codes and writes count decoded floats.
void unpack_dequantize(const uint8_t* in, int64_t count, GridLayout layout, const float* lo, const float* step,
                       int bits, float* out);

}  // namespace splitpipe
