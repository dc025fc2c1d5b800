// make_shards: disjoint shards covering the training set, seeded, and skewed on request.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"

namespace {

using splitpipe::make_shards;
using splitpipe::ShardSpec;

// 10 classes, 200 samples each, interleaved (label = index % 10).
at::Tensor balanced_labels() { return at::arange(2000, at::kLong).remainder(10); }

void expect_disjoint_and_covering(const std::vector<at::Tensor>& shards, int64_t n) {
  const at::Tensor all = std::get<0>(at::cat(shards).sort());
  ASSERT_EQ(all.size(0), n) << "shards must hold every sample exactly once";
  EXPECT_TRUE(all.equal(at::arange(n, at::kLong)));
  for (const auto& s : shards) EXPECT_TRUE(s.equal(std::get<0>(s.sort()))) << "each shard is in index order";
}

// Fraction of a shard taken by its most frequent label.
double top_label_share(const at::Tensor& labels, const at::Tensor& shard) {
  const at::Tensor counts = at::bincount(labels.index_select(0, shard), {}, 10);
  return counts.max().item<double>() / static_cast<double>(shard.size(0));
}

TEST(Shards, IidIsDisjointCoveringWithEqualSizes) {
  const at::Tensor labels = balanced_labels();
  const auto shards = make_shards(labels, 10, 3, ShardSpec{"iid", 0}, 5, 64);
  ASSERT_EQ(shards.size(), 3u);
  expect_disjoint_and_covering(shards, 2000);
  EXPECT_EQ(shards[0].size(0), 667);  // 2000 = 667 + 667 + 666
  EXPECT_EQ(shards[1].size(0), 667);
  EXPECT_EQ(shards[2].size(0), 666);
  // A random cut, not the first third: every label shows up in about a tenth of each shard.
  for (const auto& s : shards) EXPECT_LT(top_label_share(labels, s), 0.16);
}

TEST(Shards, SameSeedSameShardsOtherSeedOthers) {
  const at::Tensor labels = balanced_labels();
  for (const ShardSpec& spec : {ShardSpec{"iid", 0}, ShardSpec{"label-skew", 0.5}}) {
    const auto a = make_shards(labels, 10, 4, spec, 11, 1);
    const auto b = make_shards(labels, 10, 4, spec, 11, 1);
    const auto c = make_shards(labels, 10, 4, spec, 12, 1);
    bool all_equal_other_seed = true;
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(a[i].equal(b[i])) << spec.kind << " client " << i;
      all_equal_other_seed = all_equal_other_seed && a[i].sizes() == c[i].sizes() && a[i].equal(c[i]);
    }
    EXPECT_FALSE(all_equal_other_seed) << spec.kind << ": another seed must give other shards";
  }
}

TEST(Shards, LabelSkewIsDisjointCoveringAndSkewsWithSmallAlpha) {
  const at::Tensor labels = balanced_labels();
  const auto skewed = make_shards(labels, 10, 4, ShardSpec{"label-skew", 0.1}, 3, 1);
  const auto mixed = make_shards(labels, 10, 4, ShardSpec{"label-skew", 100}, 3, 1);
  expect_disjoint_and_covering(skewed, 2000);
  expect_disjoint_and_covering(mixed, 2000);
  double skewed_share = 0, mixed_share = 0;
  for (int c = 0; c < 4; ++c) {
    skewed_share += top_label_share(labels, skewed[c]) / 4;
    mixed_share += top_label_share(labels, mixed[c]) / 4;
    // alpha = 100: near-uniform proportions, so sizes near 500 and labels near a tenth each.
    EXPECT_NEAR(mixed[c].size(0), 500, 100) << "client " << c;
  }
  EXPECT_LT(mixed_share, 0.15);
  EXPECT_GT(skewed_share, 0.3) << "alpha = 0.1 must concentrate labels on few clients";
}

TEST(Shards, ShardSmallerThanOneBatchNamesTheClient) {
  const at::Tensor labels = at::arange(100, at::kLong).remainder(10);
  try {
    make_shards(labels, 10, 3, ShardSpec{"iid", 0}, 1, 34);  // 34 + 33 + 33
    FAIL() << "expected an error";
  } catch (const splitpipe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("edge client 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("33 samples"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(make_shards(labels, 10, 3, ShardSpec{"iid", 0}, 1, 33));
}

}  // namespace
