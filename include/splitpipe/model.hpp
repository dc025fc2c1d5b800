// A model is an ordered list of named blocks, so a partition is "the first K blocks, the
// middle, the last M blocks" and every stage is a contiguous range.
#pragma once
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <string>
#include <vector>

#include "splitpipe/transformer_shape.hpp"

namespace splitpipe {

struct Block {
  std::string name;
  torch::nn::Sequential module;
  std::vector<int64_t> output_shape;  // per sample (no batch dim)
  int64_t parameters = 0;
};

struct ModelSpec {
  std::string name;                   // lenet5 | mlp | alexnet | vgg16bn | mobilenetv2 | resnet18 | transformer | vit
  std::vector<int64_t> input_shape;   // per sample, e.g. {1,28,28} or {187}
  int64_t num_classes = 10;
  std::vector<int64_t> mlp_hidden{1000, 500, 125};
  TransformerShape transformer{};
};

// Builds the model's blocks with weights drawn from the current torch RNG (seed it first:
// every rank builds the whole model from the same seed, then keeps its own blocks).
// Throws UsageError for an unknown model, or an input shape the model cannot take.
std::vector<Block> build_model(const ModelSpec& spec);

std::vector<std::string> model_names();

int64_t count_parameters(const torch::nn::Module& module);

// Human-readable block table: index, name, output shape, parameters.
std::string format_block_table(const std::vector<Block>& blocks);

}  // namespace splitpipe
