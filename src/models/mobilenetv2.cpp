// MobileNetV2 (Sandler et al. 2018), CIFAR variant: stride-1 stem and stride-1 24-channel stage,
// so 32x32 inputs end at 4x4 rather than 1x1.
#include "model_util.hpp"

namespace splitpipe::models {

namespace {

class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expand)
      : residual_(stride == 1 && in == out) {
    const int64_t hidden = in * expand;
    torch::nn::Sequential seq;
    if (expand != 1) append_conv_bn(seq, in, hidden, 1, 1, Act::ReLU6);
    append_conv_bn(seq, hidden, hidden, 3, stride, Act::ReLU6, /*groups=*/hidden);
    // Linear bottleneck: no activation after the projection (the paper's point).
    append_conv_bn(seq, hidden, out, 1, 1, Act::None);
    conv_ = register_module("conv", seq);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    return residual_ ? x + conv_->forward(x) : conv_->forward(x);
  }

 private:
  bool residual_;
  torch::nn::Sequential conv_{nullptr};
};
TORCH_MODULE(InvertedResidual);

}  // namespace

std::vector<Block> build_mobilenetv2(const ModelSpec& spec) {
  const auto in = require_image(spec, 1);
  namespace nn = torch::nn;
  struct Stage {
    int64_t t, c, n, s;
  };
  const std::vector<Stage> stages{{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

  std::vector<Block> blocks;
  nn::Sequential stem;
  append_conv_bn(stem, in.channels, 32, 3, 1, Act::ReLU6);
  blocks.push_back(make_block("stem", stem));

  int64_t channels = 32;
  for (const auto& st : stages) {
    for (int64_t i = 0; i < st.n; ++i) {
      const int64_t stride = i == 0 ? st.s : 1;
      blocks.push_back(make_block("ir" + std::to_string(blocks.size()),
                                  nn::Sequential(InvertedResidual(channels, st.c, stride, st.t))));
      channels = st.c;
    }
  }

  nn::Sequential head;
  append_conv_bn(head, channels, 1280, 1, 1, Act::ReLU6);
  blocks.push_back(make_block("head", head));
  blocks.push_back(make_block("classifier",
                              nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)),
                                             nn::Flatten(), nn::Linear(1280, spec.num_classes))));
  return blocks;
}

}  // namespace splitpipe::models
