#include "uniform_quant.hpp"

#include "bit_pack.hpp"
#include "vector_clones.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
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
template <int kLanes>
SPLITPIPE_VECTOR_CLONES Range range_in_lanes(const float* x, int64_t n) {
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
  // Lanes never hold NaN in lo/hi (the compares above skip it), so plain float selects merge.
  float lowest = lo[0], highest = hi[0], any_nan = nan[0];
  for (int k = 1; k < kLanes; ++k) {
    lowest = lo[k] < lowest ? lo[k] : lowest;
    highest = hi[k] > highest ? hi[k] : highest;
    any_nan = nan[k] > any_nan ? nan[k] : any_nan;
  }
  return Range{lowest, highest, any_nan != 0.0f};
}

Range range_of(const float* x, int64_t n) { return range_in_lanes<16>(x, n); }

// Short runs of a per-channel grid ([N, C, 7, 7]: 49 values per run) in explicit vectors of 8
// lanes (GCC/Clang vector extensions). Each group keeps its min/max/NaN lanes across all its
// runs and folds them once at the end: reducing every 49-value run to scalars cost more than
// reading it. The tail of a run is one more full vector ending at its end, since min, max and
// "any NaN" do not mind seeing a value twice. Runs have at least 8 values.
typedef float Float32x8 __attribute__((vector_size(32)));

// A group's lanes in memory: lo[8], hi[8], nan[8]. Plain floats moved with memcpy, because
// std::vector does not promise the 32-byte alignment of a vector type.
constexpr int kLaneFloats = 24;

SPLITPIPE_VECTOR_CLONES void accumulate_short_runs(const float* x, int64_t first_row, int64_t end_row, int64_t inner,
                                                   int64_t groups, float* lanes) {
  const Float32x8 one = {1, 1, 1, 1, 1, 1, 1, 1};
  int64_t group = first_row % groups;
  for (int64_t row = first_row; row < end_row; ++row) {
    const float* run = x + row * inner;
    float* group_lanes = lanes + group * kLaneFloats;
    Float32x8 lo, hi, nan;
    std::memcpy(&lo, group_lanes, sizeof(lo));
    std::memcpy(&hi, group_lanes + 8, sizeof(hi));
    std::memcpy(&nan, group_lanes + 16, sizeof(nan));
    const auto take = [&](const float* at) {
      Float32x8 v;
      std::memcpy(&v, at, sizeof(v));
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      nan = v != v ? one : nan;
    };
    int64_t i = 0;
    for (; i + 8 <= inner; i += 8) take(run + i);
    if (i < inner) take(run + inner - 8);
    std::memcpy(group_lanes, &lo, sizeof(lo));
    std::memcpy(group_lanes + 8, &hi, sizeof(hi));
    std::memcpy(group_lanes + 16, &nan, sizeof(nan));
    if (++group == groups) group = 0;
  }
}

// group_ranges for runs of 8..255 values: one set of group lanes per thread, merged at the end.
void short_run_ranges(const float* x, int64_t rows, GridLayout layout, std::vector<Range>& ranges) {
  const int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows / 64));
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> lanes(static_cast<size_t>(tasks * layout.groups * kLaneFloats));
  for (size_t at = 0; at < lanes.size(); at += kLaneFloats) {
    std::fill_n(&lanes[at], 8, inf);
    std::fill_n(&lanes[at + 8], 8, -inf);
    std::fill_n(&lanes[at + 16], 8, 0.0f);
  }
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      accumulate_short_runs(x, rows * t / tasks, rows * (t + 1) / tasks, layout.inner, layout.groups,
                            &lanes[t * layout.groups * kLaneFloats]);
  });
  for (int64_t t = 0; t < tasks; ++t)
    for (int64_t g = 0; g < layout.groups; ++g) {
      const float* r = &lanes[(t * layout.groups + g) * kLaneFloats];
      for (int k = 0; k < 8; ++k) ranges[g] = ranges[g].merged({r[k], r[8 + k], r[16 + k] != 0.0f});
    }
}

// Calls body(begin, end, group) for the runs of [begin, end) that share a grid. One division
// per call, not per run: runs can be short (49 values per channel of [N, C, 7, 7]) and a
// 64-bit division costs as much as quantizing a dozen values.
template <typename Body>
void for_each_grid_run(int64_t begin, int64_t end, GridLayout layout, const Body& body) {
  if (begin >= end) return;
  int64_t row = begin / layout.inner;
  int64_t group = row % layout.groups;
  while (begin < end) {
    const int64_t stop = std::min(end, (row + 1) * layout.inner);
    body(begin, stop, group);
    begin = stop;
    ++row;
    if (++group == layout.groups) group = 0;
  }
}

SPLITPIPE_VECTOR_CLONES void quantize_nearest_long(const float* x, int64_t n, float lo, float inverse,
                                                   float top_level, uint32_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = nearest_code(x[i], lo, inverse, top_level);
}

// nearest_code of a short run (8 <= n), in explicit vectors like accumulate_short_runs, the tail as one
// more vector ending at n (a code written twice is the same code). Same operations in the same
// order as nearest_code, without FMA, so the codes are identical.
typedef int32_t Int32x8 __attribute__((vector_size(32)));

SPLITPIPE_VECTOR_CLONES void quantize_nearest_short(const float* x, int64_t n, float lo, float inverse,
                                                    float top_level, uint32_t* codes) {
  const Float32x8 zero = {0, 0, 0, 0, 0, 0, 0, 0};
  const Float32x8 los = zero + lo, inverses = zero + inverse, tops = zero + top_level, half = zero + 0.5f;
  const auto quantize = [&](int64_t at) {
    Float32x8 v;
    std::memcpy(&v, x + at, sizeof(v));
    Float32x8 level = (v - los) * inverses + half;
    level = level > zero ? level : zero;  // also maps NaN to 0
    level = tops < level ? tops : level;
    const Int32x8 code = __builtin_convertvector(level, Int32x8);
    std::memcpy(codes + at, &code, sizeof(code));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) quantize(i);
  if (i < n) quantize(n - 8);
}

void quantize_nearest(const float* x, int64_t n, float lo, float inverse, float top_level, uint32_t* codes) {
  if (n >= 8 && n < 256)
    quantize_nearest_short(x, n, lo, inverse, top_level, codes);
  else
    quantize_nearest_long(x, n, lo, inverse, top_level, codes);
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
  } else if (layout.inner >= 8 && layout.inner < 256) {
    short_run_ranges(x, count / layout.inner, layout, ranges);
  } else {
    const int64_t rows = count / layout.inner;
    std::vector<Range> row_ranges(rows);
    at::parallel_for(0, rows, std::max<int64_t>(1, kValuesPerTask / layout.inner), [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) row_ranges[row] = range_of(x + row * layout.inner, layout.inner);
    });
    for (int64_t row = 0, group = 0; row < rows; ++row, group = group + 1 == layout.groups ? 0 : group + 1)
      ranges[group] = ranges[group].merged(row_ranges[row]);
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
