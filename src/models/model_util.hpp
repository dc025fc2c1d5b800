// Helpers shared by the model files; not part of the public interface.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "splitpipe/model.hpp"

namespace splitpipe::models {

// Block with only name and module set; build_model fills the rest after the dummy pass.
inline Block make_block(std::string name, torch::nn::Sequential module) {
  Block b;
  b.name = std::move(name);
  b.module = std::move(module);
  return b;
}

enum class Act { None, ReLU, ReLU6 };

// Appends Conv (padding kernel/2, so stride 1 keeps the spatial size) + BatchNorm2d + activation.
// Bias defaults to off: BatchNorm's shift makes it redundant.
void append_conv_bn(torch::nn::Sequential& seq, int64_t in, int64_t out, int64_t kernel,
                    int64_t stride, Act act, int64_t groups = 1, bool bias = false);

struct ImageShape {
  int64_t channels, height, width;
};

// Checks that spec.input_shape is C,H,W with H and W at least min_spatial, naming the model
// and the minimum in the UsageError otherwise.
ImageShape require_image(const ModelSpec& spec, int64_t min_spatial);

// Per-sample output shape of `blocks` run in order on `input_shape`, from one batch-1 pass of
// zeros in eval mode without autograd. Draws nothing from the torch RNG (zeros, and eval-mode
// dropout is the identity), so calling it mid-build does not shift the weights built after it.
std::vector<int64_t> output_shape(const std::vector<Block>& blocks,
                                  const std::vector<int64_t>& input_shape);

// Fills every Block's output_shape and parameters (same dummy pass as output_shape()).
void fill_block_info(std::vector<Block>& blocks, const std::vector<int64_t>& input_shape);

std::string shape_string(const std::vector<int64_t>& shape);

int64_t product(const std::vector<int64_t>& shape);

// One builder per model file.
std::vector<Block> build_lenet5(const ModelSpec& spec);
std::vector<Block> build_mlp(const ModelSpec& spec);
std::vector<Block> build_alexnet(const ModelSpec& spec);
std::vector<Block> build_vgg16bn(const ModelSpec& spec);
std::vector<Block> build_mobilenetv2(const ModelSpec& spec);
std::vector<Block> build_resnet18(const ModelSpec& spec);
std::vector<Block> build_transformer(const ModelSpec& spec);
std::vector<Block> build_vit(const ModelSpec& spec);
// spec.name = "torchscript:FILE".
constexpr const char* kTorchScriptPrefix = "torchscript:";
std::vector<Block> build_torchscript(const ModelSpec& spec);

}  // namespace splitpipe::models
