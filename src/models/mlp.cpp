// Fully connected classifier (default 1000-500-125, the ECG-heartbeat setup).
#include "model_util.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe::models {

std::vector<Block> build_mlp(const ModelSpec& spec) {
  namespace nn = torch::nn;
  for (auto h : spec.mlp_hidden) {
    if (h <= 0) throw UsageError("model 'mlp': hidden layer sizes must be positive");
  }
  std::vector<Block> blocks;
  int64_t in = product(spec.input_shape);
  for (size_t i = 0; i <= spec.mlp_hidden.size(); ++i) {
    const bool last = i == spec.mlp_hidden.size();
    nn::Sequential seq;
    // Flatten first, so image batches [B,C,H,W] feed the same model as vectors [B,N].
    if (i == 0) seq->push_back(nn::Flatten());
    const int64_t out = last ? spec.num_classes : spec.mlp_hidden[i];
    seq->push_back(nn::Linear(in, out));
    if (!last) seq->push_back(nn::ReLU());
    blocks.push_back(make_block("fc" + std::to_string(i + 1), seq));
    in = out;
  }
  return blocks;
}

}  // namespace splitpipe::models
