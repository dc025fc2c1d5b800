// The fused float32 kernels of quant and sortquant against a straightforward ATen reference
// (quantize_codes / dequantize_codes / at::bucketize + pack_bits): bit-identical packed codes and
// decoded values for every bit width, lengths that are not multiples of 8 or of a block, per
// tensor, per channel and per quantile bucket, with values placed exactly on rounding ties.
// Decoded values are compared up to one rounding: lo + code*step is one FMA in an optimised
// build on an FMA machine (as in ATen's kernel) and two roundings in a -O0 (sanitizer) build.
#include "../../src/compress/bit_pack.hpp"
#include "../../src/compress/uniform_quant.hpp"
#include "splitpipe/codec.hpp"
#include "test_compress_helpers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace splitpipe {
namespace {

using testing::encoded;
using testing::randn;
using testing::seeded;

// |mine - reference| within two float epsilons of the values' magnitude: the rounding of
// code*step that an FMA skips.
void expect_same_dequantized(const at::Tensor& mine, const at::Tensor& reference, const std::string& where) {
  const float scale = reference.abs().max().item<float>();
  EXPECT_LE((mine - reference).abs().max().item<float>(), 2 * std::numeric_limits<float>::epsilon() * scale)
      << where;
}

std::vector<uint8_t> reference_packed(const at::Tensor& codes, int bits) {
  const at::Tensor contiguous = codes.contiguous();
  std::vector<uint8_t> packed(packed_bytes(contiguous.numel(), bits));
  pack_bits(reinterpret_cast<const uint32_t*>(contiguous.data_ptr<int32_t>()), contiguous.numel(), bits,
            packed.data());
  return packed;
}

// Every third value moved onto the midpoint between two levels, lo + (k + 0.5)*step in float32,
// where a different evaluation order would round the other way.
at::Tensor with_ties(at::Tensor x, const UniformGrid& grid, int bits, uint64_t seed) {
  at::Generator generator = seeded(seed);
  const int64_t top = (int64_t{1} << bits) - 1;
  if (top < 1 || x.numel() < 3) return x;
  const at::Tensor levels = at::randint(0, top, {(x.numel() + 2) / 3}, generator, at::kInt).to(at::kFloat);
  x.view(-1).slice(0, 0, x.numel(), 3).copy_(levels.add(0.5).mul(grid.step).add(grid.lo));
  return x;
}

float max_abs(const at::Tensor& x) { return x.abs().max().item<float>(); }

TEST(CompressKernels, QuantizePackAndDecodeEqualTheAtenReferenceForEveryWidth) {
  at::Generator unused = seeded(0);
  uint64_t seed = 100;
  for (int bits = 1; bits <= 16; ++bits) {
    // 70001 spans several threads' worth of blocks; the others end inside a group and a byte.
    for (int64_t count : {1, 7, 33, 1001, 4099, 70001}) {
      const at::Tensor source = randn({count}, ++seed) * 3 + 1;
      at::Tensor lo, hi;
      std::tie(lo, hi) = at::aminmax(source);
      const UniformGrid grid = uniform_grid(lo.view({1}), hi.view({1}), bits);
      const at::Tensor x = with_ties(source.clone(), grid, bits, ++seed);
      const std::string where = std::to_string(bits) + " bits, " + std::to_string(count) + " values";

      const at::Tensor codes = quantize_codes(x, grid.lo, grid.step, bits, Rounding::Nearest, unused);
      const std::vector<uint8_t> expected = reference_packed(codes, bits);
      std::vector<uint8_t> packed(expected.size() + 1, 0xAB);
      quantize_pack_nearest(x.data_ptr<float>(), count, GridLayout{1, count}, grid.lo.data_ptr<float>(),
                            grid.step.data_ptr<float>(), bits, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "wrote past the end, " << where;
      packed.pop_back();
      EXPECT_EQ(packed, expected) << where;

      at::Tensor decoded = at::empty({count}, at::kFloat);
      unpack_dequantize(packed.data(), count, GridLayout{1, count}, grid.lo.data_ptr<float>(),
                        grid.step.data_ptr<float>(), bits, decoded.data_ptr<float>());
      expect_same_dequantized(decoded, dequantize_codes(codes, grid.lo, grid.step), where);
      const float step = grid.step.item<float>();
      EXPECT_LE(max_abs(decoded - x), step / 2 * (1 + 1e-4f) + 1e-6f * max_abs(x)) << where;
    }
  }
}

TEST(CompressKernels, PerChannelGridsEqualTheAtenReference) {
  at::Generator unused = seeded(0);
  // Inner sizes 1, 21 and 49: runs of one grid that end inside a group, a byte and a block;
  // 8 and 256 the ends of the short-run kernels (8..255 values) and the first long run.
  // Inner 1 (a grid per value of the last dim, as for [N, T, W] features) takes its own
  // kernels; {300, 77} has rows that straddle the packing's chunks.
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{3, 5}, {300, 77}, {4, 5, 3, 7}, {9, 40, 7, 7}, {5, 6, 8}, {3, 4, 256}}) {
    const int64_t channels = shape[1];
    std::vector<int64_t> grid_shape(shape.size(), 1);
    grid_shape[1] = channels;
    // Channels on different scales, and a constant one: step 0, every code 0, decoded exactly.
    at::Tensor x = randn(shape, 200 + shape.size()) * at::arange(1, channels + 1, at::kFloat).view(grid_shape);
    x.select(1, 1).fill_(-2.5f);
    const int64_t count = x.numel();
    const GridLayout layout{channels, count / (shape[0] * channels)};
    std::vector<int64_t> other_dims = {0};
    for (size_t d = 2; d < shape.size(); ++d) other_dims.push_back(static_cast<int64_t>(d));

    at::Tensor lo = at::empty({channels}), hi = at::empty({channels});
    group_ranges(x.data_ptr<float>(), count, layout, lo.data_ptr<float>(), hi.data_ptr<float>());
    EXPECT_TRUE(at::equal(lo, x.amin(other_dims)));
    EXPECT_TRUE(at::equal(hi, x.amax(other_dims)));

    for (int bits : {1, 3, 8, 13, 16}) {
      const UniformGrid grid = uniform_grid(lo, hi, bits);
      const at::Tensor codes =
          quantize_codes(x, grid.lo.view(grid_shape), grid.step.view(grid_shape), bits, Rounding::Nearest, unused);
      std::vector<uint8_t> packed(packed_bytes(count, bits));
      quantize_pack_nearest(x.data_ptr<float>(), count, layout, grid.lo.data_ptr<float>(), grid.step.data_ptr<float>(),
                            bits, packed.data());
      EXPECT_EQ(packed, reference_packed(codes, bits)) << bits << " bits";
      at::Tensor decoded = at::empty(shape, at::kFloat);
      unpack_dequantize(packed.data(), count, layout, grid.lo.data_ptr<float>(), grid.step.data_ptr<float>(), bits,
                        decoded.data_ptr<float>());
      expect_same_dequantized(decoded, dequantize_codes(codes, grid.lo.view(grid_shape), grid.step.view(grid_shape)),
                              std::to_string(bits) + " bits");
      EXPECT_TRUE(at::equal(decoded.select(1, 1), x.select(1, 1))) << bits << " bits";
    }
  }
}

TEST(CompressKernels, RangesPropagateNaNLikeAmin) {
  at::Tensor x = randn({2, 3, 41}, 300);
  x[1][2][40] = std::numeric_limits<float>::quiet_NaN();
  float lo[3], hi[3];
  group_ranges(x.data_ptr<float>(), x.numel(), GridLayout{3, 41}, lo, hi);
  EXPECT_FALSE(std::isnan(lo[0]) || std::isnan(hi[0]) || std::isnan(lo[1]) || std::isnan(hi[1]));
  EXPECT_TRUE(std::isnan(lo[2]) && std::isnan(hi[2]));
  group_ranges(x.data_ptr<float>(), x.numel(), GridLayout{1, x.numel()}, lo, hi);
  EXPECT_TRUE(std::isnan(lo[0]) && std::isnan(hi[0]));
  // The codec then sends NaN grids, so the receiver sees NaN rather than made-up finite values.
  auto codec = make_codec("quant:bits=8");
  const std::vector<uint8_t> bytes = encoded(*codec, x);
  EXPECT_TRUE(codec->decode(bytes.data(), bytes.size()).isnan().all().item<bool>());
}

// The message's codes and decoded values against bucketize + quantize_codes on the message's own
// grid table: the branchless bucket search (unrolled selects up to 16 buckets, a binary search
// above) must pick the bucket at::bucketize picks, duplicate boundaries (ReLU zeros) included.
TEST(CompressKernels, SortQuantEqualsBucketizeAndTheAtenReferenceForEveryWidth) {
  at::Generator unused = seeded(0);
  const int64_t n = 5003;
  const at::Tensor relu = at::relu(randn({n}, 400));
  const at::Tensor spread = randn({n}, 401).pow(3);
  for (int split = 0; split <= 8; ++split) {
    for (int bits = 1; bits <= 16 && bits + split <= 24; ++bits) {
      const int64_t buckets = int64_t{1} << split;
      auto codec = make_codec("sortquant:bits=" + std::to_string(bits) + ",split=" + std::to_string(split));
      for (const at::Tensor& x : {relu, spread}) {
        const std::string where = std::to_string(bits) + " bits, split " + std::to_string(split);
        const std::vector<uint8_t> bytes = encoded(*codec, x);
        // Documented payload: u32 bits, u32 split, float32 [2^split][2] (lo, step), packed codes.
        const size_t table_at = WireHeader::kSize + 8, codes_at = table_at + buckets * 2 * sizeof(float);
        ASSERT_EQ(bytes.size(), codes_at + packed_bytes(n, bits + split)) << where;
        at::Tensor table = at::empty({buckets, 2}, at::kFloat);
        std::memcpy(table.data_ptr<float>(), bytes.data() + table_at, table.numel() * sizeof(float));
        const at::Tensor lo = table.select(1, 0).contiguous(), step = table.select(1, 1).contiguous();

        const at::Tensor bucket = at::bucketize(x, lo.narrow(0, 1, buckets - 1), /*out_int32=*/true);
        const at::Tensor bucket_lo = lo.index_select(0, bucket), bucket_step = step.index_select(0, bucket);
        const at::Tensor value = quantize_codes(x, bucket_lo, bucket_step, bits, Rounding::Nearest, unused);
        const at::Tensor codes = value + bucket * (int64_t{1} << bits);
        const std::vector<uint8_t> expected = reference_packed(codes.to(at::kInt), bits + split);
        EXPECT_TRUE(std::equal(expected.begin(), expected.end(), bytes.begin() + codes_at)) << where;
        expect_same_dequantized(codec->decode(bytes.data(), bytes.size()),
                                dequantize_codes(value, bucket_lo, bucket_step), where);
      }
    }
  }
}

}  // namespace
}  // namespace splitpipe
