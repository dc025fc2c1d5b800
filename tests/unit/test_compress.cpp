// Accuracy of every codec against what its definition promises.
#include "splitpipe/codec.hpp"
#include "test_compress_helpers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace splitpipe {
namespace {

using testing::encoded;
using testing::randn;
using testing::relative_error;
using testing::round_trip;

TEST(CompressNone, RoundTripsBitExactlyIncludingNonContiguousInput) {
  auto codec = make_codec("none");
  const at::Tensor x = randn({3, 5, 7}, 1);
  EXPECT_TRUE(at::equal(round_trip(*codec, x), x));
  const at::Tensor transposed = x.transpose(0, 2);
  EXPECT_TRUE(at::equal(round_trip(*codec, transposed), transposed));
}

TEST(CompressCast, Fp16AndBf16StayWithinTheirPrecision) {
  const at::Tensor x = randn({4, 1000}, 2) * 10;
  auto fp16 = make_codec("fp16");
  // fp16: 11 significant bits (relative 2^-11 after rounding); below 2^-14 subnormal spacing 2^-24.
  const at::Tensor fp16_error = (round_trip(*fp16, x) - x).abs();
  EXPECT_TRUE((fp16_error <= x.abs() * std::ldexp(1.0, -11) + std::ldexp(1.0, -25)).all().item<bool>());
  auto bf16 = make_codec("bf16");
  const at::Tensor bf16_error = (round_trip(*bf16, x) - x).abs();
  EXPECT_TRUE((bf16_error <= x.abs() * std::ldexp(1.0, -8)).all().item<bool>());
  EXPECT_GT(bf16_error.max().item<double>(), fp16_error.max().item<double>());
}

TEST(CompressQuant, NearestRoundingIsWithinHalfAStep) {
  const at::Tensor x = randn({4, 8, 16, 16}, 3) * 3 + 1;
  const double range = (x.max() - x.min()).item<double>();
  for (int bits : {1, 2, 4, 8, 12, 16}) {
    auto codec = make_codec("quant:bits=" + std::to_string(bits));
    const double step = range / ((1 << bits) - 1);
    const double worst = (round_trip(*codec, x) - x).abs().max().item<double>();
    EXPECT_LE(worst, step / 2 * (1 + 1e-4) + 1e-6 * x.abs().max().item<double>()) << bits << " bits";
  }
}

TEST(CompressQuant, ConstantTensorsDecodeExactly) {
  for (const char* spec : {"quant:bits=4", "quant:bits=3,per=channel", "sortquant:bits=4,split=2",
                           "kmeans:bits=2", "quant:bits=2,round=stochastic"}) {
    auto codec = make_codec(spec);
    const at::Tensor constant = at::full({2, 3, 4}, 1.75f);
    EXPECT_TRUE(at::equal(round_trip(*codec, constant), constant)) << spec;
    const at::Tensor zeros = at::zeros({5, 7});
    EXPECT_TRUE(at::equal(round_trip(*codec, zeros), zeros)) << spec;
  }
}

TEST(CompressQuant, StochasticRoundingIsUnbiased) {
  auto codec = make_codec("quant:bits=2,round=stochastic");
  const at::Tensor x = randn({1000}, 4);
  const double step = (x.max() - x.min()).item<double>() / 3;
  at::Tensor sum = at::zeros_like(x);
  const int draws = 400;
  for (int i = 0; i < draws; ++i) sum += round_trip(*codec, x);
  const at::Tensor bias = sum / draws - x;
  // One draw errs by up to a step; the mean of 400 by about step/40 per element.
  EXPECT_LT(bias.abs().mean().item<double>(), 0.03 * step);
  EXPECT_LT(bias.abs().max().item<double>(), 0.15 * step);
  auto nearest = make_codec("quant:bits=2");
  EXPECT_GT((round_trip(*nearest, x) - x).abs().mean().item<double>(), 5 * bias.abs().mean().item<double>());
}

TEST(CompressQuant, PerChannelBeatsPerTensorOnChannelScaledData) {
  const at::Tensor scales = at::pow(10.0, at::linspace(-2, 1, 16)).view({1, 16, 1, 1});
  const at::Tensor x = randn({8, 16, 10, 10}, 5) * scales;
  auto per_tensor = make_codec("quant:bits=6,per=tensor");
  auto per_channel = make_codec("quant:bits=6,per=channel");
  const double tensor_error = relative_error(x, round_trip(*per_tensor, x));
  const double channel_error = relative_error(x, round_trip(*per_channel, x));
  EXPECT_LT(channel_error, 0.5 * tensor_error);
  // Each channel is within half of its own step.
  const at::Tensor decoded = round_trip(*per_channel, x);
  for (int64_t c = 0; c < 16; ++c) {
    const at::Tensor channel = x.select(1, c);
    const double step = (channel.max() - channel.min()).item<double>() / 63;
    EXPECT_LE((decoded.select(1, c) - channel).abs().max().item<double>(), step / 2 * (1 + 1e-4) + 1e-6 * 10);
  }
}

// [batch, tokens, width] activations: the channel is the feature (last dim), whose scale is
// what differs between the channels of a transformer's hidden state, not the token position.
TEST(CompressQuant, PerChannelOnSequencesGroupsByFeature) {
  const int64_t width = 16;
  const at::Tensor scales = at::pow(10.0, at::linspace(-2, 1, width)).view({1, 1, width});
  const at::Tensor x = randn({8, 12, width}, 9) * scales;
  for (const char* rounding : {"nearest", "stochastic"}) {
    auto per_tensor = make_codec(std::string("quant:bits=6,per=tensor,round=") + rounding);
    auto per_channel = make_codec(std::string("quant:bits=6,per=channel,round=") + rounding);
    const at::Tensor decoded = round_trip(*per_channel, x);
    EXPECT_LT(relative_error(x, decoded), 0.5 * relative_error(x, round_trip(*per_tensor, x))) << rounding;
    // One grid per feature: each within its own step (half a step when rounding to nearest).
    for (int64_t w = 0; w < width; ++w) {
      const at::Tensor feature = x.select(2, w);
      const double step = (feature.max() - feature.min()).item<double>() / 63;
      const double bound = std::string(rounding) == "nearest" ? step / 2 : step;
      EXPECT_LE((decoded.select(2, w) - feature).abs().max().item<double>(), bound * (1 + 1e-4) + 1e-5) << w;
    }
    // The payload holds `width` grids, not one per token.
    const size_t codes = static_cast<size_t>((x.numel() * 6 + 7) / 8);
    EXPECT_EQ(per_channel->encoded_bytes(x.sizes()), 64 + 8 + width * 8 + codes);
  }
}

// A tensor with rare huge outliers: 0.1% of the values scaled by 1000.
at::Tensor with_outliers(int64_t n, uint64_t seed) {
  at::Generator generator = testing::seeded(seed);
  const at::Tensor x = at::randn({n}, generator, at::kFloat);
  const at::Tensor outlier = at::rand({n}, generator, at::kFloat) < 0.001;
  return at::where(outlier, x * 1000, x);
}

TEST(CompressSortQuant, BeatsQuantAtTheSameTotalBitsOnHeavyTails) {
  const at::Tensor x = with_outliers(200000, 6);
  auto sortquant = make_codec("sortquant:bits=6,split=2");
  auto quant = make_codec("quant:bits=8");
  EXPECT_LT(relative_error(x, round_trip(*sortquant, x)), 0.5 * relative_error(x, round_trip(*quant, x)));
}

TEST(CompressKMeans, AtMostQuantErrorOnClusteredData) {
  at::Generator generator = testing::seeded(7);
  const at::Tensor centers = at::rand({16}, generator, at::kFloat) * 10 - 5;
  const at::Tensor x =
      centers.index_select(0, at::randint(16, {50000}, generator, at::kLong)) +
      0.01 * at::randn({50000}, generator, at::kFloat);
  auto kmeans = make_codec("kmeans:bits=4");
  auto quant = make_codec("quant:bits=4");
  const double kmeans_error = relative_error(x, round_trip(*kmeans, x));
  EXPECT_LE(kmeans_error, relative_error(x, round_trip(*quant, x)));
  EXPECT_LT(kmeans_error, 0.05);
}

TEST(CompressTopK, KeepsExactlyTheLargestMagnitudes) {
  const at::Tensor x = randn({100, 100}, 8);
  auto codec = make_codec("topk:ratio=0.05");
  const at::Tensor decoded = round_trip(*codec, x).reshape(-1);
  const at::Tensor flat = x.reshape(-1);
  const int64_t k = 500;
  const at::Tensor reference = std::get<1>(flat.abs().sort(0, /*descending=*/true)).narrow(0, 0, k);
  at::Tensor expected = at::zeros_like(flat);
  expected.index_copy_(0, reference, flat.index_select(0, reference));
  EXPECT_TRUE(at::equal(decoded, expected));
  EXPECT_EQ(decoded.ne(0).sum().item<int64_t>(), k);
}

// Above 2^17 values the codec brackets the k-th magnitude from a sample and selects in a band;
// whatever the data (ties at zero, all magnitudes equal, a heavy tail, NaN), what it keeps must
// be a top-k set: k positions, x's own values, and the k largest magnitudes.
TEST(CompressTopK, LargeTensorsKeepATopKSetWhateverTheData) {
  const at::Tensor normal = randn({64, 4096}, 21);
  at::Tensor with_nan = normal.clone();
  with_nan.view(-1).slice(0, 1000, 200000, 1000).fill_(std::numeric_limits<float>::quiet_NaN());
  const std::vector<std::pair<std::string, at::Tensor>> cases = {
      {"normal", normal},
      {"relu (half zeros)", normal.relu()},
      {"heavy tail", normal.pow(5)},
      {"equal magnitudes", normal.sign()},
      {"NaN", with_nan},
  };
  for (const auto& [name, x] : cases)
    for (double ratio : {0.01, 0.1, 0.6}) {
      auto codec = make_codec("topk:ratio=" + std::to_string(ratio));
      const at::Tensor flat = x.reshape(-1);
      const at::Tensor decoded = round_trip(*codec, x).reshape(-1);
      const auto k = static_cast<int64_t>(std::llround(ratio * static_cast<double>(flat.numel())));
      const std::string what = name + ", ratio " + std::to_string(ratio);
      const at::Tensor nan = flat.isnan();
      // Every NaN is among the largest (as in at::topk) and comes through as NaN.
      EXPECT_TRUE(decoded.index({nan}).isnan().all().item<bool>()) << what;
      const at::Tensor finite = decoded.index({~nan}), original = flat.index({~nan});
      EXPECT_TRUE(((finite == original) | (finite == 0)).all().item<bool>()) << what;
      const int64_t finite_kept = k - nan.sum().item<int64_t>();
      const at::Tensor kept_magnitudes = std::get<0>(finite.abs().sort(0, true)).narrow(0, 0, finite_kept);
      const at::Tensor best_magnitudes = std::get<0>(original.abs().sort(0, true)).narrow(0, 0, finite_kept);
      EXPECT_TRUE(at::equal(kept_magnitudes, best_magnitudes)) << what;
      EXPECT_LE(finite.ne(0).sum().item<int64_t>(), finite_kept) << what;
    }
}

TEST(CompressKMeans, CodesAreTheNearestCentroidsAsBucketizeFindsThem) {
  const at::Tensor x = randn({64, 3000}, 22).relu();
  for (int bits : {1, 2, 3, 4, 5, 8}) {
    auto codec = make_codec("kmeans:bits=" + std::to_string(bits));
    const std::vector<uint8_t> bytes = encoded(*codec, x);
    // The codebook follows the 64-byte header and two u32s.
    const int64_t k = int64_t{1} << bits;
    at::Tensor codebook = at::empty({k});
    std::memcpy(codebook.data_ptr<float>(), bytes.data() + 64 + 8, static_cast<size_t>(k) * sizeof(float));
    const at::Tensor midpoints = (codebook.narrow(0, 1, k - 1) + codebook.narrow(0, 0, k - 1)) * 0.5;
    const at::Tensor expected = codebook.index_select(0, at::bucketize(x.reshape(-1), midpoints)).view(x.sizes());
    EXPECT_TRUE(at::equal(codec->decode(bytes.data(), bytes.size()), expected)) << bits << " bits";
  }
}

TEST(CompressLowRank, ExactOnARankRInput) {
  at::Generator generator = testing::seeded(9);
  const at::Tensor x = at::randn({64, 8}, generator, at::kFloat)
                           .mm(at::randn({8, 300}, generator, at::kFloat))
                           .view({64, 3, 100});
  auto codec = make_codec("lowrank:rank=8,view=batch");
  EXPECT_LT(relative_error(x, round_trip(*codec, x)), 1e-4);
  auto half = make_codec("lowrank:rank=8,view=batch,factors=fp16");
  EXPECT_LT(relative_error(x, round_trip(*half, x)), 2e-3);
  // Rank above min(rows, cols) is clamped and stays exact.
  auto big = make_codec("lowrank:rank=100");
  const at::Tensor small = randn({5, 7}, 10);
  EXPECT_LT(relative_error(small, round_trip(*big, small)), 1e-4);
  // 1-D tensors travel raw.
  const at::Tensor vector = randn({33}, 11);
  EXPECT_TRUE(at::equal(round_trip(*codec, vector), vector));
}

// The per-sample view (the default): each sample's [C, H*W] (or [tokens, width]) matrix has its
// own factors, so samples of rank R each are exact at rank R, which one [N, C*H*W] matrix of
// rank R cannot be; and the bytes are N*(C + H*W)*R floats.
TEST(CompressLowRank, PerSampleViewFactorsEachSampleOnItsOwn) {
  at::Generator generator = testing::seeded(14);
  const int64_t n = 16, channels = 12, pixels = 49, rank = 3;
  const at::Tensor x = at::randn({n, channels, rank}, generator, at::kFloat)
                           .bmm(at::randn({n, rank, pixels}, generator, at::kFloat))
                           .view({n, channels, 7, 7});
  auto per_sample = make_codec("lowrank:rank=3");
  auto one_matrix = make_codec("lowrank:rank=3,view=batch");
  EXPECT_LT(relative_error(x, round_trip(*per_sample, x)), 1e-4);
  EXPECT_GT(relative_error(x, round_trip(*one_matrix, x)), 0.3);
  EXPECT_EQ(per_sample->encoded_bytes(x.sizes()), 64 + 16 + static_cast<size_t>(n * (channels + pixels) * rank * 4));
  // Sequences [batch, tokens, width] alike.
  const at::Tensor sequence = x.view({n, channels, pixels});
  EXPECT_LT(relative_error(sequence, round_trip(*per_sample, sequence)), 1e-4);
  // 2-D tensors have no per-sample matrix: the batch view, as with view=batch.
  const at::Tensor flat = randn({n, 40}, 15);
  EXPECT_EQ(per_sample->encoded_bytes(flat.sizes()), one_matrix->encoded_bytes(flat.sizes()));
}

TEST(CompressLowRank, WarmStartConvergesToTheBestRankRApproximation) {
  at::Generator generator = testing::seeded(12);
  const at::Tensor u = std::get<0>(at::linalg_qr(at::randn({64, 32}, generator, at::kFloat)));
  const at::Tensor v = std::get<0>(at::linalg_qr(at::randn({500, 32}, generator, at::kFloat)));
  const at::Tensor singular = at::pow(0.8, at::arange(32, at::kFloat));
  const at::Tensor m = (u * singular).mm(v.t());
  const int rank = 4;
  const double best = singular.narrow(0, rank, 32 - rank).norm().item<double>() / singular.norm().item<double>();
  auto codec = make_codec("lowrank:rank=4,iters=1");
  const double first = relative_error(m, round_trip(*codec, m));
  double last = first;
  for (int message = 0; message < 40; ++message) last = relative_error(m, round_trip(*codec, m));
  EXPECT_LT(last, best * 1.01);
  EXPECT_LT(last, first);
  // A different stream starts cold.
  EXPECT_GT(relative_error(m, round_trip(*codec, m, /*stream=*/1)), best * 1.01);
}

TEST(CompressErrorFeedback, KeepsTheErrorOfASumOfGradientsBounded) {
  const at::Tensor gradient = randn({256}, 13);
  const int steps = 50;
  for (const char* spec : {"quant:bits=2", "topk:ratio=0.1", "sortquant:bits=1,split=1", "kmeans:bits=1"}) {
    auto plain = make_codec(spec);
    auto feedback = make_codec(std::string(spec) + ",ef=1");
    at::Tensor plain_sum = at::zeros_like(gradient), feedback_sum = at::zeros_like(gradient);
    for (int step = 0; step < steps; ++step) {
      plain_sum += round_trip(*plain, gradient);
      feedback_sum += round_trip(*feedback, gradient);
    }
    const at::Tensor truth = gradient * steps;
    // Without EF the same error repeats every step; with it the sum lags by at most about one step's error.
    EXPECT_LT(relative_error(truth, feedback_sum), 0.2 * relative_error(truth, plain_sum)) << spec;
  }
}

}  // namespace
}  // namespace splitpipe
