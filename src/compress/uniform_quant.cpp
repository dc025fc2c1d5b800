#include "uniform_quant.hpp"

#include "bit_pack.hpp"
#include "vector_clones.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <vector>

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

namespace {

constexpr int64_t kValuesPerTask = 1 << 16;

struct Range {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  bool nan = false;

  Range merged(const Range& other) const {
    return {std::min(lo, other.lo), std::max(hi, other.hi), nan || other.nan};
  }
};

// Min, max and NaN flag of n values. Independent lanes let the compiler vectorize the loop
// without reassociating anything (min and max are exact, so the lane order does not matter).
// The NaN flag is a float select: an integer flag lane mixed with float lanes halves the speed.
SPLITPIPE_VECTOR_CLONES Range range_of(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  float lo[kLanes], hi[kLanes], nan[kLanes];
  for (int k = 0; k < kLanes; ++k) {
    lo[k] = std::numeric_limits<float>::infinity();
    hi[k] = -std::numeric_limits<float>::infinity();
    nan[k] = 0.0f;
  }
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      const float v = x[i + k];
      lo[k] = v < lo[k] ? v : lo[k];
      hi[k] = v > hi[k] ? v : hi[k];
      nan[k] = v != v ? 1.0f : nan[k];
    }
  }
  for (int k = 0; i < n; ++i, ++k) {
    const float v = x[i];
    lo[k] = v < lo[k] ? v : lo[k];
    hi[k] = v > hi[k] ? v : hi[k];
    nan[k] = v != v ? 1.0f : nan[k];
  }
  Range range;
  for (int k = 0; k < kLanes; ++k) range = range.merged({lo[k], hi[k], nan[k] != 0.0f});
  return range;
}

// Calls body(begin, end, group) for the runs of [begin, end) that share a grid.
template <typename Body>
void for_each_grid_run(int64_t begin, int64_t end, GridLayout layout, const Body& body) {
  while (begin < end) {
    const int64_t row = begin / layout.inner;
    const int64_t stop = std::min(end, (row + 1) * layout.inner);
    body(begin, stop, row % layout.groups);
    begin = stop;
  }
}

SPLITPIPE_VECTOR_CLONES void quantize_nearest(const float* x, int64_t n, float lo, float inverse, float top_level,
                                              uint32_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = nearest_code(x[i], lo, inverse, top_level);
}

SPLITPIPE_FMA_CLONES void dequantize(const uint32_t* codes, int64_t n, float lo, float step, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = dequantized(codes[i], lo, step);
}

// A grid per value of the last dim (inner = 1): value i of a row uses grid i. The loops run along
// the row with the grids as arrays, so they vectorize like the one-grid loops above.
SPLITPIPE_VECTOR_CLONES void row_ranges_into(const float* x, int64_t n, float* lo, float* hi, float* nan) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    lo[i] = v < lo[i] ? v : lo[i];
    hi[i] = v > hi[i] ? v : hi[i];
    nan[i] = v != v ? 1.0f : nan[i];
  }
}

SPLITPIPE_VECTOR_CLONES void quantize_nearest_row(const float* x, int64_t n, const float* lo, const float* inverse,
                                                  float top_level, uint32_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = nearest_code(x[i], lo[i], inverse[i], top_level);
}

SPLITPIPE_FMA_CLONES void dequantize_row(const uint32_t* codes, int64_t n, const float* lo, const float* step,
                                         float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = dequantized(codes[i], lo[i], step[i]);
}

// Calls body(begin, end, first_group) for the pieces of [begin, end) that lie in one row of
// `groups` values (inner = 1): value begin uses grid first_group, the next one the next grid.
template <typename Body>
void for_each_row_piece(int64_t begin, int64_t end, int64_t groups, const Body& body) {
  while (begin < end) {
    const int64_t stop = std::min(end, (begin / groups + 1) * groups);
    body(begin, stop, begin % groups);
    begin = stop;
  }
}

// group_ranges with a grid per value of the last dim: per task, running min/max arrays over
// its rows, merged at the end (far fewer partial results than one Range per row).
void last_dim_ranges(const float* x, int64_t count, int64_t groups, std::vector<Range>& ranges) {
  const int64_t rows = count / groups;
  const int64_t rows_per_task = std::max<int64_t>(1, kValuesPerTask / groups);
  const int64_t tasks = (rows + rows_per_task - 1) / rows_per_task;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> lo(tasks * groups, inf), hi(tasks * groups, -inf), nan(tasks * groups, 0.0f);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      for (int64_t row = t * rows_per_task; row < std::min(rows, (t + 1) * rows_per_task); ++row)
        row_ranges_into(x + row * groups, groups, &lo[t * groups], &hi[t * groups], &nan[t * groups]);
  });
  for (int64_t t = 0; t < tasks; ++t)
    for (int64_t g = 0; g < groups; ++g)
      ranges[g] = ranges[g].merged({lo[t * groups + g], hi[t * groups + g], nan[t * groups + g] != 0.0f});
}

}  // namespace

void group_ranges(const float* x, int64_t count, GridLayout layout, float* lo, float* hi) {
  TORCH_CHECK(count > 0 && layout.groups > 0 && layout.inner > 0, "group_ranges of an empty tensor");
  std::vector<Range> ranges(layout.groups);
  if (layout.groups == 1) {
    ranges[0] = at::parallel_reduce(
        0, count, kValuesPerTask, Range{},
        [&](int64_t begin, int64_t end, Range partial) { return partial.merged(range_of(x + begin, end - begin)); },
        [](const Range& a, const Range& b) { return a.merged(b); });
  } else if (layout.inner == 1) {
    last_dim_ranges(x, count, layout.groups, ranges);
  } else {
    const int64_t rows = count / layout.inner;
    std::vector<Range> row_ranges(rows);
    at::parallel_for(0, rows, std::max<int64_t>(1, kValuesPerTask / layout.inner), [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) row_ranges[row] = range_of(x + row * layout.inner, layout.inner);
    });
    for (int64_t row = 0; row < rows; ++row) {
      Range& range = ranges[row % layout.groups];
      range = range.merged(row_ranges[row]);
    }
  }
  for (int64_t g = 0; g < layout.groups; ++g) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    lo[g] = ranges[g].nan ? nan : ranges[g].lo;
    hi[g] = ranges[g].nan ? nan : ranges[g].hi;
  }
}

void quantize_pack_nearest(const float* x, int64_t count, GridLayout layout, const float* lo, const float* step,
                           int bits, uint8_t* out) {
  const auto top_level = static_cast<float>((int64_t{1} << bits) - 1);
  std::vector<float> inverse(layout.groups);
  for (int64_t g = 0; g < layout.groups; ++g) inverse[g] = inverse_step(step[g]);
  pack_produced(count, bits, out, [&](int64_t begin, int64_t end, uint32_t* codes) {
    if (layout.inner == 1 && layout.groups > 1) {
      for_each_row_piece(begin, end, layout.groups, [&](int64_t piece_begin, int64_t piece_end, int64_t g) {
        quantize_nearest_row(x + piece_begin, piece_end - piece_begin, lo + g, inverse.data() + g, top_level,
                             codes + (piece_begin - begin));
      });
      return;
    }
    for_each_grid_run(begin, end, layout, [&](int64_t run_begin, int64_t run_end, int64_t g) {
      quantize_nearest(x + run_begin, run_end - run_begin, lo[g], inverse[g], top_level, codes + (run_begin - begin));
    });
  });
}

void unpack_dequantize(const uint8_t* in, int64_t count, GridLayout layout, const float* lo, const float* step,
                       int bits, float* out) {
  unpack_consumed(in, count, bits, [&](int64_t begin, int64_t end, const uint32_t* codes) {
    if (layout.inner == 1 && layout.groups > 1) {
      for_each_row_piece(begin, end, layout.groups, [&](int64_t piece_begin, int64_t piece_end, int64_t g) {
        dequantize_row(codes + (piece_begin - begin), piece_end - piece_begin, lo + g, step + g, out + piece_begin);
      });
      return;
    }
    for_each_grid_run(begin, end, layout, [&](int64_t run_begin, int64_t run_end, int64_t g) {
      dequantize(codes + (run_begin - begin), run_end - run_begin, lo[g], step[g], out + run_begin);
    });
  });
}

}  // namespace splitpipe
