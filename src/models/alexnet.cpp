// AlexNet in torchvision's single-tower layout (Krizhevsky 2014, "One weird trick").
#include "model_util.hpp"

namespace splitpipe::models {

std::vector<Block> build_alexnet(const ModelSpec& spec) {
  // Three stride-2 3x3 pools after the stride-4 conv1: 63 px is the smallest input that still
  // leaves a 1x1 map for the last pool (62 leaves 2x2 before it, 0x0 after).
  const auto in = require_image(spec, 63);
  namespace nn = torch::nn;
  auto pool = [] { return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)); };
  auto conv = [](int64_t i, int64_t o, int64_t k, int64_t s, int64_t p) {
    return nn::Conv2d(nn::Conv2dOptions(i, o, k).stride(s).padding(p));
  };

  std::vector<Block> blocks;
  blocks.push_back(
      make_block("conv1", nn::Sequential(conv(in.channels, 64, 11, 4, 2), nn::ReLU(), pool())));
  blocks.push_back(make_block("conv2", nn::Sequential(conv(64, 192, 5, 1, 2), nn::ReLU(), pool())));
  blocks.push_back(make_block("conv3", nn::Sequential(conv(192, 384, 3, 1, 1), nn::ReLU())));
  blocks.push_back(make_block("conv4", nn::Sequential(conv(384, 256, 3, 1, 1), nn::ReLU())));
  blocks.push_back(
      make_block("conv5", nn::Sequential(conv(256, 256, 3, 1, 1), nn::ReLU(), pool())));
  blocks.push_back(make_block(
      "fc1",
      nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({6, 6})), nn::Flatten(),
                     nn::Dropout(0.5), nn::Linear(256 * 6 * 6, 4096), nn::ReLU())));
  blocks.push_back(
      make_block("fc2", nn::Sequential(nn::Dropout(0.5), nn::Linear(4096, 4096), nn::ReLU())));
  blocks.push_back(make_block("fc3", nn::Sequential(nn::Linear(4096, spec.num_classes))));
  return blocks;
}

}  // namespace splitpipe::models
