// sortquant against its definition: bucket invariants, and its sampled quantile boundaries
// against an exact version that sorts everything (written here, not in the library).
#include "../../src/compress/bit_pack.hpp"
#include "splitpipe/codec.hpp"
#include "test_compress_helpers.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace splitpipe {
namespace {

using testing::encoded;
using testing::randn;
using testing::relative_error;

// Reconstruction of the definition with exact quantiles: sort all values, cut them into 2^split
// equal-count buckets by rank, quantize each bucket on its own [min, max] grid.
at::Tensor exact_sort_quantize(const at::Tensor& x, int bits, int split) {
  const at::Tensor flat = x.reshape(-1);
  const int64_t n = flat.numel(), buckets = int64_t{1} << split;
  at::Tensor sorted, order;
  std::tie(sorted, order) = flat.sort();
  at::Tensor decoded_sorted = at::empty_like(sorted);
  const double levels = (1 << bits) - 1;
  for (int64_t j = 0; j < buckets; ++j) {
    const int64_t begin = (j * n + buckets - 1) / buckets, end = ((j + 1) * n + buckets - 1) / buckets;
    if (end <= begin) continue;
    const at::Tensor bucket = sorted.narrow(0, begin, end - begin);
    const double lo = bucket.min().item<double>(), step = (bucket.max().item<double>() - lo) / levels;
    decoded_sorted.narrow(0, begin, end - begin)
        .copy_(step > 0 ? ((bucket - lo) / step).round() * step + lo : at::full_like(bucket, lo));
  }
  at::Tensor decoded = at::empty_like(flat);
  decoded.index_copy_(0, order, decoded_sorted);
  return decoded.view(x.sizes());
}

at::Tensor heavy_tailed(int64_t n, uint64_t seed) {
  at::Generator generator = testing::seeded(seed);
  const at::Tensor x = at::randn({n}, generator, at::kFloat);
  return at::where(at::rand({n}, generator, at::kFloat) < 0.001, x * 1000, x);
}

TEST(CompressSortQuant, WithinTenPercentOfTheExactSortVersion) {
  const std::vector<at::Tensor> tensors = {randn({64, 4096}, 21), at::relu(randn({32, 16, 20, 20}, 22)),
                                           heavy_tailed(300000, 23), randn({64, 4096}, 24).pow(3)};
  for (const auto& [bits, split] : std::vector<std::pair<int, int>>{{6, 2}, {2, 2}, {4, 4}}) {
    auto codec = make_codec("sortquant:bits=" + std::to_string(bits) + ",split=" + std::to_string(split));
    for (size_t t = 0; t < tensors.size(); ++t) {
      const at::Tensor& x = tensors[t];
      const std::vector<uint8_t> bytes = encoded(*codec, x);
      const double sampled = relative_error(x, codec->decode(bytes.data(), bytes.size()));
      const double exact = relative_error(x, exact_sort_quantize(x, bits, split));
      EXPECT_LE(sampled, 1.1 * exact) << "bits=" << bits << " split=" << split << " tensor " << t;
    }
  }
}

TEST(CompressSortQuant, BucketsHoldEqualCountsAndDecodeInsideTheirRange) {
  const int bits = 6, split = 3, buckets = 1 << split;
  const int64_t n = 200000;
  const at::Tensor x = randn({n}, 25) * 2 + 0.5;
  auto codec = make_codec("sortquant:bits=6,split=3");
  const std::vector<uint8_t> bytes = encoded(*codec, x);
  // Documented payload: u32 bits, u32 split, float32 [2^split][2] (lo, step), packed codes.
  const size_t table_at = WireHeader::kSize + 8, codes_at = table_at + buckets * 2 * sizeof(float);
  ASSERT_EQ(bytes.size(), codes_at + packed_bytes(n, bits + split));
  std::vector<float> table(buckets * 2);
  std::memcpy(table.data(), bytes.data() + table_at, table.size() * sizeof(float));
  at::Tensor codes = at::empty({n}, at::kInt);
  unpack_bits(bytes.data() + codes_at, n, bits + split, reinterpret_cast<uint32_t*>(codes.data_ptr<int32_t>()));
  const at::Tensor bucket = codes.bitwise_right_shift(bits);
  const at::Tensor decoded = codec->decode(bytes.data(), bytes.size());
  for (int j = 0; j < buckets; ++j) {
    const at::Tensor members = bucket == j;
    const int64_t count = members.sum().item<int64_t>();
    EXPECT_NEAR(count, n / buckets, 0.1 * n / buckets) << "bucket " << j;
    const float lo = table[2 * j], hi = lo + table[2 * j + 1] * ((1 << bits) - 1);
    const double slack = 1e-5 * (std::abs(lo) + std::abs(hi));
    const at::Tensor originals = x.masked_select(members), values = decoded.masked_select(members);
    EXPECT_GE(values.min().item<double>(), lo - slack) << "bucket " << j;
    EXPECT_LE(values.max().item<double>(), hi + slack) << "bucket " << j;
    EXPECT_GE(originals.min().item<double>(), lo - slack) << "bucket " << j;
    EXPECT_LE(originals.max().item<double>(), hi + slack) << "bucket " << j;
    if (j > 0) {
      EXPECT_GE(lo, table[2 * (j - 1)]) << "buckets are ordered";
    }
  }
}

}  // namespace
}  // namespace splitpipe
