// VGG-16 with batch normalisation (Simonyan & Zisserman 2015; BN as in torchvision's vgg16_bn).
#include "model_util.hpp"

namespace splitpipe::models {

std::vector<Block> build_vgg16bn(const ModelSpec& spec) {
  const auto in = require_image(spec, 1);
  namespace nn = torch::nn;
  // 0 marks a 2x2 max pool, appended to the conv block before it.
  const std::vector<int64_t> config{64, 64,  0,   128, 128, 0,   256, 256, 256,
                                    0,  512, 512, 512, 0,   512, 512, 512, 0};

  std::vector<Block> blocks;
  int64_t channels = in.channels, h = in.height, w = in.width;
  for (auto c : config) {
    if (c == 0) {
      // Small inputs (28x28 reaches 1x1 after four pools) skip the pools that would empty the
      // map, so the same 13-conv stack serves MNIST-size and CIFAR-size data.
      if (h >= 2 && w >= 2) {
        blocks.back().module->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
        h /= 2;
        w /= 2;
      }
      continue;
    }
    nn::Sequential seq;
    // torchvision keeps the conv bias in front of BN; so do we, to match its parameter count.
    append_conv_bn(seq, channels, c, 3, 1, Act::ReLU, 1, /*bias=*/true);
    blocks.push_back(make_block("conv" + std::to_string(blocks.size() + 1), seq));
    channels = c;
  }

  // Classifier choice: at 64 px and up (ImageNet-like inputs) the classic head — pool to 7x7 and
  // three fully connected layers (120M parameters). Below that (CIFAR, MNIST) the map is at most
  // 2x2 and the 25088-wide head would mostly replicate a few pixels, so we use the CIFAR-style
  // single linear layer on the flattened 512*h*w features, as common CIFAR ports of VGG do.
  if (in.height >= 64 && in.width >= 64) {
    blocks.push_back(make_block(
        "fc1",
        nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({7, 7})), nn::Flatten(),
                       nn::Linear(512 * 7 * 7, 4096), nn::ReLU(), nn::Dropout(0.5))));
    blocks.push_back(
        make_block("fc2", nn::Sequential(nn::Linear(4096, 4096), nn::ReLU(), nn::Dropout(0.5))));
    blocks.push_back(make_block("fc3", nn::Sequential(nn::Linear(4096, spec.num_classes))));
  } else {
    blocks.push_back(make_block(
        "fc", nn::Sequential(nn::Flatten(), nn::Linear(channels * h * w, spec.num_classes))));
  }
  return blocks;
}

}  // namespace splitpipe::models
