// BatchOrder's epoch permutations and the crop/flip augmentation.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"

namespace {

using splitpipe::BatchOrder;

// Every batch of the current epoch, concatenated in visiting order.
at::Tensor epoch_order(const BatchOrder& order) {
  std::vector<at::Tensor> batches;
  for (int64_t b = 0; b < order.num_batches(); ++b) batches.push_back(order.batch_indices(b));
  return at::cat(batches);
}

TEST(BatchOrder, BatchesCoverEveryIndexOnceWithSmallerLastBatch) {
  BatchOrder order(10, 3, /*shuffle=*/true, 42);
  ASSERT_EQ(order.num_batches(), 4);
  EXPECT_EQ(order.batch_length(0), 3);
  EXPECT_EQ(order.batch_length(3), 1);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    order.start_epoch(epoch);
    for (int64_t b = 0; b < order.num_batches(); ++b) {
      const at::Tensor indices = order.batch_indices(b);
      EXPECT_EQ(indices.scalar_type(), at::kLong);
      EXPECT_EQ(indices.size(0), order.batch_length(b));
    }
    const auto [sorted, unused] = epoch_order(order).sort();
    EXPECT_TRUE(sorted.equal(at::arange(10, at::kLong))) << "epoch " << epoch;
  }
}

TEST(BatchOrder, SameSeedAndEpochGiveSameOrderWhateverCameBefore) {
  BatchOrder walked(1000, 64, true, 7);
  for (int64_t epoch = 0; epoch <= 3; ++epoch) walked.start_epoch(epoch);
  BatchOrder resumed(1000, 64, true, 7);
  resumed.start_epoch(3);
  EXPECT_TRUE(epoch_order(walked).equal(epoch_order(resumed)));
}

TEST(BatchOrder, OrderChangesAcrossEpochsAndSeeds) {
  BatchOrder order(1000, 100, true, 7);
  const at::Tensor epoch0 = epoch_order(order);
  EXPECT_FALSE(epoch0.equal(at::arange(1000, at::kLong)));  // actually shuffled
  order.start_epoch(1);
  EXPECT_FALSE(epoch_order(order).equal(epoch0));
  BatchOrder other_seed(1000, 100, true, 8);
  EXPECT_FALSE(epoch_order(other_seed).equal(epoch0));
}

TEST(BatchOrder, WithoutShuffleIsIdentity) {
  BatchOrder order(7, 4, /*shuffle=*/false, 3);
  order.start_epoch(5);
  EXPECT_TRUE(order.batch_indices(1).equal(at::tensor(std::vector<int64_t>{4, 5, 6})));
  EXPECT_TRUE(epoch_order(order).equal(at::arange(7, at::kLong)));
}

TEST(BatchOrder, EdgeCasesAndBadArguments) {
  EXPECT_EQ(BatchOrder(0, 8, true, 1).num_batches(), 0);
  EXPECT_EQ(BatchOrder(8, 8, true, 1).num_batches(), 1);
  EXPECT_THROW(BatchOrder(8, 0, true, 1), splitpipe::UsageError);
  const BatchOrder order(8, 3, true, 1);
  EXPECT_THROW(order.batch_indices(3), std::out_of_range);
  EXPECT_THROW(order.batch_length(-1), std::out_of_range);
}

TEST(BatchOrder, LeavesTheGlobalRngAlone) {
  at::manual_seed(5);
  const at::Tensor expected = at::rand({4});
  at::manual_seed(5);
  BatchOrder order(500, 32, true, 9);
  order.start_epoch(2);
  EXPECT_TRUE(at::rand({4}).equal(expected));
}

// Whether `out` is `image` zero-padded by 4, cropped at (top, left) and maybe mirrored.
bool is_crop_flip_of(const at::Tensor& out, const at::Tensor& image) {
  const int64_t h = image.size(1), w = image.size(2);
  const at::Tensor padded = at::constant_pad_nd(image, {4, 4, 4, 4}, 0);
  for (int64_t top = 0; top <= 8; ++top) {
    for (int64_t left = 0; left <= 8; ++left) {
      const at::Tensor crop = padded.narrow(1, top, h).narrow(2, left, w);
      if (out.equal(crop) || out.equal(crop.flip({2}))) return true;
    }
  }
  return false;
}

TEST(AugmentCropFlip, EachImageIsAPaddedCropMaybeMirrored) {
  // Distinct positive values, so a crop is identified by its content.
  const at::Tensor images = at::arange(1, 16 * 3 * 32 * 32 + 1, at::kFloat).view({16, 3, 32, 32});
  const at::Tensor out = splitpipe::augment_crop_flip(images, 123);
  ASSERT_EQ(out.sizes(), images.sizes());
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  int64_t changed = 0;
  for (int64_t b = 0; b < images.size(0); ++b) {
    EXPECT_TRUE(is_crop_flip_of(out[b], images[b])) << "image " << b;
    changed += out[b].equal(images[b]) ? 0 : 1;
  }
  EXPECT_GT(changed, 8);  // 1 in 162 draws leaves an image alone
}

TEST(AugmentCropFlip, DeterministicPerSeedDifferentAcrossSeeds) {
  const at::Tensor images = at::arange(4 * 3 * 8 * 8, at::kFloat).view({4, 3, 8, 8});
  const at::Tensor a = splitpipe::augment_crop_flip(images, 1);
  EXPECT_TRUE(a.equal(splitpipe::augment_crop_flip(images, 1)));
  EXPECT_FALSE(a.equal(splitpipe::augment_crop_flip(images, 2)));
}

TEST(AugmentCropFlip, LeavesTheGlobalRngAloneAndRejectsNon4dInput) {
  at::manual_seed(5);
  const at::Tensor expected = at::rand({4});
  at::manual_seed(5);
  splitpipe::augment_crop_flip(at::zeros({2, 3, 32, 32}), 9);
  EXPECT_TRUE(at::rand({4}).equal(expected));
  EXPECT_THROW(splitpipe::augment_crop_flip(at::zeros({3, 32, 32}), 9), splitpipe::Error);
}

TEST(AugmentCropFlip, CifarBatchIsFast) {
  // Generous bound (the machine is shared): a per-pixel loop would take far longer.
  const at::Tensor images = at::randn({128, 3, 32, 32});
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) splitpipe::augment_crop_flip(images, static_cast<uint64_t>(i));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds / 20, 0.1);
}

}  // namespace
