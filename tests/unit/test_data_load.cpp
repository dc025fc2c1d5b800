// load_dataset on every dataset kind (the real Fashion-MNIST included) and make_synthetic.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "splitpipe/data.hpp"
#include "test_data_helpers.hpp"

namespace {

using namespace splitpipe_test;
using splitpipe::DataOptions;
using splitpipe::Dataset;
using splitpipe::load_dataset;

// Mean and (population) std per channel, i.e. over every dim but 1.
std::pair<at::Tensor, at::Tensor> channel_stats(const at::Tensor& inputs) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < inputs.dim(); ++d) dims.push_back(d);
  const at::Tensor as_double = inputs.to(at::kDouble);
  return {as_double.mean(dims), as_double.std(dims, /*unbiased=*/false)};
}

void expect_standardised(const at::Tensor& inputs) {
  const auto [mean, std] = channel_stats(inputs);
  EXPECT_LT(mean.abs().max().item<double>(), 1e-4) << mean;
  EXPECT_LT((std - 1).abs().max().item<double>(), 1e-4) << std;
}

const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnist, LoadsRealDataNormalisedWithTrainStats) {
  if (!fs::exists(kFashionDir)) GTEST_SKIP() << kFashionDir << " absent (apt-get install dataset-fashion-mnist)";
  const auto splits = load_dataset(DataOptions{});  // the defaults are fashion-mnist from its package dir
  EXPECT_EQ(splits.train.size(), 60000);
  EXPECT_EQ(splits.test.size(), 10000);
  EXPECT_EQ(splits.train.sample_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(splits.train.inputs.scalar_type(), at::kFloat);
  EXPECT_EQ(splits.train.num_classes, 10);
  EXPECT_EQ(splits.test.num_classes, 10);
  ASSERT_EQ(splits.train.class_names.size(), 10u);
  EXPECT_EQ(splits.train.class_names.front(), "T-shirt/top");
  EXPECT_EQ(splits.train.class_names.back(), "Ankle boot");
  EXPECT_EQ(splits.description,
            "fashion-mnist from /usr/share/datasets/fashion-mnist: 60000 train, 10000 test, 1x28x28, 10 classes");
  expect_standardised(splits.train.inputs);
  // The test split uses the training statistics, so it is close to, not exactly, standardised.
  const auto [test_mean, test_std] = channel_stats(splits.test.inputs);
  EXPECT_NEAR(test_mean.item<double>(), 0.0, 0.05);
  EXPECT_NEAR(test_std.item<double>(), 1.0, 0.05);
  // Fashion-MNIST is balanced: 6000 training images per class.
  EXPECT_TRUE(splits.train.labels.bincount().equal(at::full({10}, 6000, at::kLong)));
  EXPECT_TRUE(splits.test.labels.bincount().equal(at::full({10}, 1000, at::kLong)));
}

TEST(FashionMnist, MaxSamplesKeepsTheFirstAndComputesStatsOnThem) {
  if (!fs::exists(kFashionDir)) GTEST_SKIP() << kFashionDir << " absent";
  DataOptions options;
  options.max_train_samples = 1000;
  options.max_test_samples = 100;
  const auto splits = load_dataset(options);
  EXPECT_EQ(splits.train.size(), 1000);
  EXPECT_EQ(splits.test.size(), 100);
  expect_standardised(splits.train.inputs);
  const at::Tensor all_labels = splitpipe::read_idx(kFashionDir + "/train-labels-idx1-ubyte.gz");
  EXPECT_TRUE(splits.train.labels.equal(all_labels.narrow(0, 0, 1000).to(at::kLong)));
  EXPECT_CONTAINS(splits.description, "1000 train, 100 test");
}

class LoadDatasetTest : public TempDirTest {
 protected:
  DataOptions options_for(const std::string& dataset) const {
    DataOptions options;
    options.dataset = dataset;
    options.data_dir = dir_.string();
    return options;
  }
  // A tiny MNIST-layout directory: 6 training and 3 test 4x4 images, a mix of plain and gzip.
  void write_mnist(const Bytes& train_labels = {0, 1, 2, 3, 9, 5}) {
    write_file(path("train-images-idx3-ubyte"), idx_bytes({6, 4, 4}, counting_bytes(96, 10)));
    write_gzip(path("train-labels-idx1-ubyte.gz"),
               idx_bytes({static_cast<uint32_t>(train_labels.size())}, train_labels));
    write_gzip(path("t10k-images-idx3-ubyte.gz"), idx_bytes({3, 4, 4}, counting_bytes(48, 200)));
    write_file(path("t10k-labels-idx1-ubyte"), idx_bytes({3}, Bytes{7, 8, 0}));
  }
};

TEST_F(LoadDatasetTest, MnistLayoutMixedPlainAndGzip) {
  write_mnist();
  const auto splits = load_dataset(options_for("mnist"));
  EXPECT_EQ(splits.train.size(), 6);
  EXPECT_EQ(splits.test.size(), 3);
  EXPECT_EQ(splits.train.sample_shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(splits.train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_TRUE(splits.test.labels.equal(at::tensor(std::vector<int64_t>{7, 8, 0})));
  expect_standardised(splits.train.inputs);
  // The test split is scaled with the training split's statistics.
  const at::Tensor train_pixels = at::arange(10, 106, at::kDouble) / 255;
  const double mean = train_pixels.mean().item<double>();
  const double std = train_pixels.std(/*unbiased=*/false).item<double>();
  EXPECT_NEAR(splits.test.inputs[0][0][0][0].item<double>(), (200 / 255.0 - mean) / std, 1e-4);
  EXPECT_EQ(splits.description, "mnist from " + dir_.string() + ": 6 train, 3 test, 1x4x4, 10 classes");
}

TEST_F(LoadDatasetTest, ImageAndLabelCountMismatchNamesBothFiles) {
  write_mnist({0, 1, 2, 3, 4});
  const std::string message = error_message([&] { load_dataset(options_for("mnist")); });
  EXPECT_CONTAINS(message, path("train-images-idx3-ubyte") + " holds 6 samples");
  EXPECT_CONTAINS(message, path("train-labels-idx1-ubyte.gz") + " holds 5 labels");
}

TEST_F(LoadDatasetTest, LabelOutOfRangeNamesLabelsFile) {
  write_mnist({0, 1, 2, 10, 4, 5});
  EXPECT_CONTAINS(error_message([&] { load_dataset(options_for("mnist")); }),
                  path("train-labels-idx1-ubyte.gz") + ": label 10 at index 3 is outside [0, 10)");
}

TEST_F(LoadDatasetTest, LabelsFileInPlaceOfImagesIsAnError) {
  write_mnist();
  write_file(path("train-images-idx3-ubyte"), idx_bytes({6}, counting_bytes(6)));
  EXPECT_CONTAINS(error_message([&] { load_dataset(options_for("mnist")); }),
                  path("train-images-idx3-ubyte") + ": images file has 1 dimensions, not 3");
}

TEST_F(LoadDatasetTest, MissingFashionFilesSayWhereToGetThem) {
  const std::string message = error_message([&] { load_dataset(options_for("fashion-mnist")); });
  EXPECT_CONTAINS(message, path("train-images-idx3-ubyte") + ": not found");
  EXPECT_CONTAINS(message, "apt-get install dataset-fashion-mnist");
  EXPECT_CONTAINS(message, "--data-dir");
}

TEST_F(LoadDatasetTest, MissingSecondFileIsNamed) {
  write_mnist();
  fs::remove(path("t10k-images-idx3-ubyte.gz"));
  const std::string message = error_message([&] { load_dataset(options_for("mnist")); });
  EXPECT_CONTAINS(message, path("t10k-images-idx3-ubyte") + ": not found");
  EXPECT_CONTAINS(message, "yann.lecun.com");
}

TEST_F(LoadDatasetTest, Cifar10BatchesNormalisedPerChannel) {
  const auto write_batch = [&](const std::string& name, int records, uint8_t seed) {
    Bytes bytes;
    for (int r = 0; r < records; ++r) {
      bytes.push_back(static_cast<uint8_t>((r + seed) % 10));
      const Bytes pixels = counting_bytes(3072, static_cast<uint8_t>(seed * 31 + r));
      bytes.insert(bytes.end(), pixels.begin(), pixels.end());
    }
    write_file(path(name), bytes);
  };
  for (int b = 1; b <= 5; ++b) write_batch("data_batch_" + std::to_string(b) + ".bin", 2, static_cast<uint8_t>(b));
  write_batch("test_batch.bin", 3, 0);
  const auto splits = load_dataset(options_for("cifar10"));
  EXPECT_EQ(splits.train.size(), 10);
  EXPECT_EQ(splits.test.size(), 3);
  EXPECT_EQ(splits.train.sample_shape(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(splits.train.num_classes, 10);
  EXPECT_EQ(splits.train.class_names.at(9), "truck");
  EXPECT_EQ(splits.train.labels[2].item<int64_t>(), 2);  // first record of data_batch_2
  expect_standardised(splits.train.inputs);
  EXPECT_CONTAINS(splits.description, "10 train, 3 test, 3x32x32, 10 classes");
}

TEST_F(LoadDatasetTest, MissingCifarBatchSaysWhereToGetIt) {
  const std::string message = error_message([&] { load_dataset(options_for("cifar10")); });
  EXPECT_CONTAINS(message, path("data_batch_1.bin") + ": not found");
  EXPECT_CONTAINS(message, "cifar-10-binary.tar.gz");
}

TEST_F(LoadDatasetTest, CsvClassesFromBothSplitsAndPerColumnStats) {
  write_text(path("train.csv"), "a,b,const,label\n1,10,5,0\n2,20,5,1\n3,30,5,0\n4,40,5,1\n");
  write_text(path("test.csv"), "5,50,5,2\n");
  const auto splits = load_dataset(options_for("csv"));
  EXPECT_EQ(splits.train.num_classes, 3);  // the test split's label 2 counts
  EXPECT_EQ(splits.train.sample_shape(), std::vector<int64_t>{3});
  const at::Tensor train = splits.train.inputs;
  // Columns a and b standardise to the same values; the constant column becomes 0, not nan.
  const at::Tensor expected = (at::arange(1, 5, at::kFloat) - 2.5) / std::sqrt(1.25f);
  EXPECT_TRUE(train.select(1, 0).allclose(expected, 1e-5, 1e-5)) << train;
  EXPECT_TRUE(train.select(1, 1).allclose(expected, 1e-5, 1e-5)) << train;
  EXPECT_LT(train.select(1, 2).abs().max().item<float>(), 1e-5);
  EXPECT_NEAR(splits.test.inputs[0][0].item<float>(), 2.5 / std::sqrt(1.25), 1e-5);
  EXPECT_EQ(splits.description, "csv from " + dir_.string() + ": 4 train, 1 test, 3, 3 classes");
}

TEST_F(LoadDatasetTest, CsvFeatureCountMismatchNamesBothFiles) {
  write_text(path("train.csv"), "1,2,0\n");
  write_text(path("test.csv"), "1,0\n");
  const std::string message = error_message([&] { load_dataset(options_for("csv")); });
  EXPECT_CONTAINS(message, path("train.csv") + " has 2 feature columns but " + path("test.csv") + " has 1");
}

TEST_F(LoadDatasetTest, UnknownDatasetAndNegativeLimitsAreUsageErrors) {
  EXPECT_THROW(load_dataset(options_for("imagenet")), splitpipe::UsageError);
  DataOptions options = options_for("synthetic");
  options.max_train_samples = -1;
  EXPECT_THROW(load_dataset(options), splitpipe::UsageError);
}

DataOptions small_synthetic(uint64_t seed) {
  DataOptions options;
  options.dataset = "synthetic";
  options.seed = seed;
  options.synthetic_shape = {2, 6, 6};
  options.synthetic_classes = 4;
  options.synthetic_train = 200;
  options.synthetic_test = 100;
  return options;
}

TEST(SyntheticDataset, LoadsWithOptionsAndNormalises) {
  const auto splits = load_dataset(small_synthetic(5));
  EXPECT_EQ(splits.train.size(), 200);
  EXPECT_EQ(splits.test.size(), 100);
  EXPECT_EQ(splits.train.sample_shape(), (std::vector<int64_t>{2, 6, 6}));
  EXPECT_EQ(splits.train.num_classes, 4);
  EXPECT_TRUE(splits.train.labels.bincount().equal(at::full({4}, 50, at::kLong)));  // balanced
  EXPECT_TRUE(splits.test.labels.bincount().equal(at::full({4}, 25, at::kLong)));
  expect_standardised(splits.train.inputs);
  EXPECT_FALSE(splits.train.inputs.narrow(0, 0, 100).equal(splits.test.inputs));
  EXPECT_EQ(splits.description, "synthetic (seed 5): 200 train, 100 test, 2x6x6, 4 classes");

  DataOptions truncated = small_synthetic(5);
  truncated.max_train_samples = 50;
  EXPECT_EQ(load_dataset(truncated).train.size(), 50);
}

TEST(SyntheticDataset, TestSplitSharesTheTrainingClasses) {
  // Nearest class mean of the training split classifies the test split: the data is learnable
  // and both splits come from the same prototypes. Default options: 1x28x28, 10 classes.
  DataOptions options;
  options.dataset = "synthetic";
  const auto splits = load_dataset(options);
  const at::Tensor train = splits.train.inputs.flatten(1);
  const at::Tensor one_hot = at::one_hot(splits.train.labels, 10).to(at::kFloat);
  const at::Tensor class_means = one_hot.t().mm(train) / one_hot.sum(0).unsqueeze(1);
  const at::Tensor predicted = at::cdist(splits.test.inputs.flatten(1), class_means).argmin(1);
  const double accuracy = predicted.eq(splits.test.labels).to(at::kDouble).mean().item<double>();
  EXPECT_GT(accuracy, 0.9);
}

TEST(MakeSynthetic, DeterministicPerSeedAndDifferentAcrossSeeds) {
  const Dataset a = splitpipe::make_synthetic({3, 4, 4}, 5, 40, 11);
  const Dataset b = splitpipe::make_synthetic({3, 4, 4}, 5, 40, 11);
  const Dataset c = splitpipe::make_synthetic({3, 4, 4}, 5, 40, 12);
  EXPECT_EQ(a.inputs.sizes().vec(), (std::vector<int64_t>{40, 3, 4, 4}));
  EXPECT_EQ(a.labels.scalar_type(), at::kLong);
  EXPECT_EQ(a.num_classes, 5);
  EXPECT_TRUE(a.inputs.equal(b.inputs));
  EXPECT_TRUE(a.labels.equal(b.labels));
  EXPECT_FALSE(a.inputs.equal(c.inputs));
  EXPECT_TRUE(a.labels.bincount().equal(at::full({5}, 8, at::kLong)));
}

TEST(MakeSynthetic, LeavesTheGlobalRngAlone) {
  at::manual_seed(99);
  const at::Tensor expected = at::randn({8});
  at::manual_seed(99);
  splitpipe::make_synthetic({1, 8, 8}, 3, 30, 4);
  load_dataset(small_synthetic(4));
  EXPECT_TRUE(at::randn({8}).equal(expected));
}

TEST(MakeSynthetic, BadParametersAreUsageErrors) {
  EXPECT_THROW(splitpipe::make_synthetic({1, 0, 4}, 3, 10, 1), splitpipe::UsageError);
  EXPECT_THROW(splitpipe::make_synthetic({1, 4, 4}, 0, 10, 1), splitpipe::UsageError);
  EXPECT_THROW(splitpipe::make_synthetic({}, 3, 10, 1), splitpipe::UsageError);
}

}  // namespace
