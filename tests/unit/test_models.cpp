#include "splitpipe/error.hpp"
#include "splitpipe/model.hpp"

// Internal helper under test (the dummy shape pass must not draw from the RNG).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../../src/models/model_util.hpp"

using splitpipe::Block;
using splitpipe::ModelSpec;

namespace {

ModelSpec spec(const std::string& name, std::vector<int64_t> shape, int64_t classes) {
  ModelSpec s;
  s.name = name;
  s.input_shape = std::move(shape);
  s.num_classes = classes;
  return s;
}

std::vector<Block> build(const ModelSpec& s, uint64_t seed = 1) {
  torch::manual_seed(seed);
  return splitpipe::build_model(s);
}

int64_t block_sum(const std::vector<Block>& blocks) {
  int64_t n = 0;
  for (const auto& b : blocks) n += b.parameters;
  return n;
}

// The whole model as one flat Sequential sharing the blocks' layers (a Sequential cannot hold
// another Sequential, so the blocks' layers are moved up one level).
torch::nn::Sequential joined(const std::vector<Block>& blocks) {
  torch::nn::Sequential all;
  for (const auto& b : blocks) {
    auto module = b.module;
    for (const auto& layer : *module) all->push_back(layer);
  }
  return all;
}

std::vector<int64_t> batched(int64_t batch, const std::vector<int64_t>& shape) {
  std::vector<int64_t> out{batch};
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

// One small configuration per model (and per classifier variant) to keep the suite fast.
std::vector<ModelSpec> small_specs() {
  return {spec("lenet5", {1, 28, 28}, 10),    spec("mlp", {187}, 5),
          spec("mlp", {1, 28, 28}, 10),       spec("alexnet", {3, 64, 64}, 4),
          spec("vgg16bn", {3, 32, 32}, 10),   spec("vgg16bn", {1, 28, 28}, 10),
          spec("mobilenetv2", {3, 8, 8}, 10), spec("mobilenetv2", {1, 16, 16}, 7),
          spec("resnet18", {3, 16, 16}, 10)};
}

std::string label(const ModelSpec& s) {
  return s.name + " on " + splitpipe::models::shape_string(s.input_shape);
}

}  // namespace

TEST(Models, NamesListsEveryModel) {
  EXPECT_EQ(
      splitpipe::model_names(),
      (std::vector<std::string>{"lenet5", "mlp", "alexnet", "vgg16bn", "mobilenetv2", "resnet18", "transformer", "vit"}));
}

TEST(Models, Lenet5ParameterCount) {
  auto blocks = build(spec("lenet5", {1, 28, 28}, 10));
  EXPECT_EQ(block_sum(blocks), 61706);
  EXPECT_EQ(splitpipe::count_parameters(*joined(blocks)), 61706);
  EXPECT_EQ(blocks[1].output_shape, (std::vector<int64_t>{16, 5, 5}));
}

TEST(Models, MlpParameterCount) {
  auto blocks = build(spec("mlp", {187}, 5));
  EXPECT_EQ(block_sum(blocks), 751755);
  EXPECT_EQ(splitpipe::count_parameters(*joined(blocks)), 751755);
}

TEST(Models, AlexnetParameterCount) {
  auto blocks = build(spec("alexnet", {3, 224, 224}, 2));
  EXPECT_EQ(block_sum(blocks), 57012034);
  EXPECT_EQ(blocks[4].output_shape, (std::vector<int64_t>{256, 6, 6}));
}

TEST(Models, MlpCustomHidden) {
  auto s = spec("mlp", {20}, 3);
  s.mlp_hidden = {8};
  auto blocks = build(s);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(block_sum(blocks), 20 * 8 + 8 + 8 * 3 + 3);
}

TEST(Models, BlockNamesAndCounts) {
  auto names = [](const std::vector<Block>& blocks) {
    std::vector<std::string> out;
    for (const auto& b : blocks) out.push_back(b.name);
    return out;
  };
  EXPECT_EQ(names(build(spec("lenet5", {1, 28, 28}, 10))),
            (std::vector<std::string>{"conv1", "conv2", "fc1", "fc2", "fc3"}));
  EXPECT_EQ(names(build(spec("mlp", {187}, 5))),
            (std::vector<std::string>{"fc1", "fc2", "fc3", "fc4"}));
  EXPECT_EQ(build(spec("alexnet", {3, 64, 64}, 2)).size(), 8u);

  auto vgg = names(build(spec("vgg16bn", {3, 32, 32}, 10)));
  ASSERT_EQ(vgg.size(), 14u);
  EXPECT_EQ(vgg.front(), "conv1");
  EXPECT_EQ(vgg[12], "conv13");
  EXPECT_EQ(vgg.back(), "fc");

  auto mob = names(build(spec("mobilenetv2", {3, 8, 8}, 10)));
  ASSERT_EQ(mob.size(), 20u);
  EXPECT_EQ(mob.front(), "stem");
  EXPECT_EQ(mob[1], "ir1");
  EXPECT_EQ(mob[17], "ir17");
  EXPECT_EQ(mob[18], "head");
  EXPECT_EQ(mob[19], "classifier");

  auto res = names(build(spec("resnet18", {3, 16, 16}, 10)));
  EXPECT_EQ(res, (std::vector<std::string>{"stem", "res1", "res2", "res3", "res4", "res5", "res6",
                                           "res7", "res8", "classifier"}));
}

TEST(Models, VggClassicHeadOnLargeInputs) {
  auto blocks = build(spec("vgg16bn", {3, 64, 64}, 10));
  ASSERT_EQ(blocks.size(), 16u);
  EXPECT_EQ(blocks[13].name, "fc1");
  EXPECT_EQ(blocks[15].name, "fc3");
  EXPECT_EQ(blocks[12].output_shape, (std::vector<int64_t>{512, 2, 2}));
  EXPECT_EQ(blocks[13].parameters, 25088 * 4096 + 4096);
  EXPECT_EQ(blocks.back().output_shape, (std::vector<int64_t>{10}));
}

TEST(Models, VggSkipsPoolsOnceTheMapIsOnePixel) {
  auto blocks = build(spec("vgg16bn", {1, 28, 28}, 10));
  EXPECT_EQ(blocks[12].output_shape, (std::vector<int64_t>{512, 1, 1}));
  EXPECT_EQ(blocks[9].output_shape, (std::vector<int64_t>{512, 1, 1}));
}

TEST(Models, MobilenetV2CifarShapes) {
  auto blocks = build(spec("mobilenetv2", {3, 32, 32}, 10));
  EXPECT_EQ(blocks[0].output_shape, (std::vector<int64_t>{32, 32, 32}));
  EXPECT_EQ(blocks[17].output_shape, (std::vector<int64_t>{320, 4, 4}));
  EXPECT_EQ(blocks.back().output_shape, (std::vector<int64_t>{10}));
}

TEST(Models, Resnet18CifarParameterCount) {
  // The well-known CIFAR ResNet-18 figure for 10 classes.
  auto blocks = build(spec("resnet18", {3, 32, 32}, 10));
  EXPECT_EQ(block_sum(blocks), 11173962);
  EXPECT_EQ(blocks[8].output_shape, (std::vector<int64_t>{512, 4, 4}));
}

TEST(Models, OutputIsLogitsForEveryModel) {
  for (const auto& s : small_specs()) {
    SCOPED_TRACE(label(s));
    auto blocks = build(s);
    auto model = joined(blocks);
    model->train();  // BatchNorm with batch 2 is fine in training mode too
    auto y = model->forward(torch::randn(batched(2, s.input_shape)));
    EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, s.num_classes}));
    EXPECT_EQ(blocks.back().output_shape, (std::vector<int64_t>{s.num_classes}));
  }
}

TEST(Models, BlockShapesChainAndSplitRunEqualsJoinedRun) {
  for (const auto& s : small_specs()) {
    SCOPED_TRACE(label(s));
    auto blocks = build(s);
    for (auto& b : blocks) b.module->eval();
    torch::NoGradGuard no_grad;
    auto x = torch::randn(batched(3, s.input_shape));
    auto y = x;
    for (auto& b : blocks) {
      y = b.module->forward(y);
      EXPECT_EQ(y.sizes().vec(), batched(3, b.output_shape)) << "after block " << b.name;
    }
    auto z = joined(blocks)->forward(x);
    EXPECT_TRUE(torch::equal(y, z));
  }
}

TEST(Models, BlockParametersSumToTotal) {
  for (const auto& s : small_specs()) {
    SCOPED_TRACE(label(s));
    auto blocks = build(s);
    for (const auto& b : blocks) {
      EXPECT_EQ(b.parameters, splitpipe::count_parameters(*b.module));
      EXPECT_GT(b.parameters, 0) << b.name;
    }
    EXPECT_EQ(block_sum(blocks), splitpipe::count_parameters(*joined(blocks)));
  }
}

TEST(Models, SameSeedSameWeightsDifferentSeedDifferent) {
  for (const auto& s : small_specs()) {
    SCOPED_TRACE(label(s));
    auto a = joined(build(s, 42))->parameters();
    auto b = joined(build(s, 42))->parameters();
    auto c = joined(build(s, 43))->parameters();
    ASSERT_EQ(a.size(), b.size());
    bool all_equal_c = true;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
      all_equal_c = all_equal_c && torch::equal(a[i], c[i]);
    }
    EXPECT_FALSE(all_equal_c);
  }
}

TEST(Models, BuiltModelsAreInTrainingMode) {
  for (const auto& s : small_specs()) {
    SCOPED_TRACE(label(s));
    for (const auto& b : build(s)) {
      EXPECT_TRUE(b.module->is_training()) << b.name;
      auto module = b.module;
      for (const auto& child : module->modules()) EXPECT_TRUE(child->is_training());
    }
  }
}

TEST(Models, ShapePassDoesNotDrawFromTheRng) {
  auto s = spec("alexnet", {3, 64, 64}, 3);  // has dropout, the module that could draw
  auto blocks = build(s);
  torch::manual_seed(7);
  auto expected = torch::rand({4});
  torch::manual_seed(7);
  splitpipe::models::fill_block_info(blocks, s.input_shape);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST(Models, UnknownModelThrowsListingKnown) {
  try {
    splitpipe::build_model(spec("resnet50", {3, 32, 32}, 10));
    FAIL() << "no exception";
  } catch (const splitpipe::UsageError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("resnet50"), std::string::npos);
    EXPECT_NE(what.find("mobilenetv2"), std::string::npos);
    EXPECT_NE(what.find("lenet5"), std::string::npos);
  }
}

TEST(Models, BadInputShapesThrowUsageError) {
  using splitpipe::UsageError;
  EXPECT_THROW(splitpipe::build_model(spec("lenet5", {187}, 10)), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("lenet5", {1, 8, 8}, 10)), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("resnet18", {187}, 10)), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("mobilenetv2", {3, 32}, 10)), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("vgg16bn", {}, 10)), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("mlp", {0}, 10)), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("mlp", {187}, 0)), UsageError);
  auto neg = spec("mlp", {187}, 5);
  neg.mlp_hidden = {100, -1};
  EXPECT_THROW(splitpipe::build_model(neg), UsageError);
  try {
    splitpipe::build_model(spec("alexnet", {3, 32, 32}, 10));
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("63"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(splitpipe::build_model(spec("alexnet", {3, 63, 63}, 10)));
}

TEST(Models, BlockTableIsAligned) {
  auto table = splitpipe::format_block_table(build(spec("lenet5", {1, 28, 28}, 10)));
  EXPECT_NE(table.find("conv1"), std::string::npos);
  EXPECT_NE(table.find("6x14x14"), std::string::npos);
  EXPECT_NE(table.find("16x5x5"), std::string::npos);
  EXPECT_NE(table.find("61,706"), std::string::npos);
  EXPECT_NE(table.find("total"), std::string::npos);
  // Every row but the rule has the parameter column ending at the same place.
  std::istringstream in(table);
  std::string line;
  size_t width = 0;
  while (std::getline(in, line)) {
    if (line.find_first_not_of('-') == std::string::npos) continue;
    if (width == 0) width = line.size();
    EXPECT_EQ(line.size(), width) << line;
  }
}

// Parameter counts computed by hand from the layer definitions (W width, F = 4W feed-forward,
// L tokens, V vocabulary, C classes, P patch side):
//   embedding V*W + L*W; patches C_in*P*P*W + W + N*W;
//   encoder layer: attention in-projection 3W*W + 3W, out-projection W*W + W, feed-forward
//   W*F + F + F*W + W, two layer norms 4W;  head: layer norm 2W, linear W*C + C.
int64_t encoder_layer_params(int64_t w) {
  const int64_t f = 4 * w;
  return 3 * w * w + 3 * w + w * w + w + w * f + f + f * w + w + 4 * w;
}

TEST(Models, TransformerBlocksAndParameterCountsByHand) {
  ModelSpec s = spec("transformer", {32}, 7);
  s.transformer.layers = 3;
  s.transformer.width = 24;
  s.transformer.heads = 4;
  const auto blocks = build(s);
  ASSERT_EQ(blocks.size(), 5u);  // embed, layer1..3, head
  EXPECT_EQ(blocks[0].name, "embed");
  EXPECT_EQ(blocks[4].name, "head");
  EXPECT_EQ(blocks[0].parameters, 256 * 24 + 32 * 24);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(blocks[i].parameters, encoder_layer_params(24)) << blocks[i].name;
    EXPECT_EQ(blocks[i].output_shape, (std::vector<int64_t>{32, 24})) << "[tokens, width] crosses a cut";
  }
  EXPECT_EQ(blocks[4].parameters, 2 * 24 + 24 * 7 + 7);
  EXPECT_EQ(blocks[4].output_shape, (std::vector<int64_t>{7}));
  // A batch of token ids goes through: [B, L] -> [B, C], finite.
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {3, 32}).to(torch::kFloat);
  for (auto b : blocks) x = b.module->forward(x);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 7}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
}

TEST(Models, VitBlocksAndParameterCountsByHand) {
  ModelSpec s = spec("vit", {1, 28, 28}, 10);
  s.transformer.layers = 2;
  s.transformer.width = 32;
  s.transformer.heads = 4;
  s.transformer.patch = 7;
  const auto blocks = build(s);
  ASSERT_EQ(blocks.size(), 4u);
  EXPECT_EQ(blocks[0].name, "patches");
  EXPECT_EQ(blocks[0].parameters, 1 * 7 * 7 * 32 + 32 + 16 * 32);  // 16 patches of 7x7
  EXPECT_EQ(blocks[0].output_shape, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(blocks[1].parameters, encoder_layer_params(32));
  EXPECT_EQ(blocks[3].parameters, 2 * 32 + 32 * 10 + 10);
}

TEST(Models, TransformerShapesThatCannotWorkAreRefused) {
  using splitpipe::UsageError;
  ModelSpec vit = spec("vit", {1, 28, 28}, 10);
  vit.transformer.patch = 5;  // does not divide 28
  EXPECT_THROW(splitpipe::build_model(vit), UsageError);
  ModelSpec heads = spec("transformer", {16}, 4);
  heads.transformer.width = 30;
  heads.transformer.heads = 4;  // does not divide 30
  EXPECT_THROW(splitpipe::build_model(heads), UsageError);
  EXPECT_THROW(splitpipe::build_model(spec("transformer", {1, 28, 28}, 10)), UsageError);  // not tokens
  EXPECT_THROW(splitpipe::build_model(spec("vit", {784}, 10)), UsageError);                // not an image
}
