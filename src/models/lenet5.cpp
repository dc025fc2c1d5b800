// LeNet-5 with ReLU and max pooling (the usual modern variant of LeCun et al. 1998).
#include "model_util.hpp"

namespace splitpipe::models {

std::vector<Block> build_lenet5(const ModelSpec& spec) {
  // conv2's 5x5 kernel needs a 6x6 map after the first pool to leave 2x2 for the second.
  const auto in = require_image(spec, 12);
  namespace nn = torch::nn;

  std::vector<Block> blocks;
  blocks.push_back(make_block(
      "conv1", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in.channels, 6, 5).padding(2)),
                              nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)))));
  blocks.push_back(
      make_block("conv2", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(6, 16, 5)), nn::ReLU(),
                                         nn::MaxPool2d(nn::MaxPool2dOptions(2)))));
  // 400 for 28x28; other sizes follow from the conv stack rather than a formula kept in sync.
  const int64_t flat = product(output_shape(blocks, spec.input_shape));
  blocks.push_back(
      make_block("fc1", nn::Sequential(nn::Flatten(), nn::Linear(flat, 120), nn::ReLU())));
  blocks.push_back(make_block("fc2", nn::Sequential(nn::Linear(120, 84), nn::ReLU())));
  blocks.push_back(make_block("fc3", nn::Sequential(nn::Linear(84, spec.num_classes))));
  return blocks;
}

}  // namespace splitpipe::models
