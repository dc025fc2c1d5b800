// ResNet-18 (He et al. 2016), CIFAR variant: 3x3 stride-1 stem and no stem max pool.
#include "model_util.hpp"

namespace splitpipe::models {

namespace {

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    torch::nn::Sequential main;
    append_conv_bn(main, in, out, 3, stride, Act::ReLU);
    // The ReLU comes after the residual add, in forward().
    append_conv_bn(main, out, out, 3, 1, Act::None);
    main_ = register_module("main", main);
    if (stride != 1 || in != out) {
      torch::nn::Sequential shortcut;
      append_conv_bn(shortcut, in, out, 1, stride, Act::None);
      shortcut_ = register_module("shortcut", shortcut);
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto identity = shortcut_ ? shortcut_->forward(x) : x;
    return torch::relu(main_->forward(x) + identity);
  }

 private:
  torch::nn::Sequential main_{nullptr};
  torch::nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

std::vector<Block> build_resnet18(const ModelSpec& spec) {
  const auto in = require_image(spec, 1);
  namespace nn = torch::nn;

  std::vector<Block> blocks;
  nn::Sequential stem;
  append_conv_bn(stem, in.channels, 64, 3, 1, Act::ReLU);
  blocks.push_back(make_block("stem", stem));

  int64_t channels = 64;
  for (int64_t width : {64, 64, 128, 128, 256, 256, 512, 512}) {
    // Each stage after the first halves the map at its first block, where the width doubles.
    const int64_t stride = width != channels ? 2 : 1;
    blocks.push_back(make_block("res" + std::to_string(blocks.size()),
                                nn::Sequential(BasicBlock(channels, width, stride))));
    channels = width;
  }
  blocks.push_back(make_block("classifier",
                              nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)),
                                             nn::Flatten(), nn::Linear(512, spec.num_classes))));
  return blocks;
}

}  // namespace splitpipe::models
