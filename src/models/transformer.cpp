// Encoder-only transformers, built from LibTorch's own layers: `transformer` classifies token
// sequences (BERT-style: token + learned position embedding, encoder layers, a pooled
// classifier) and `vit` classifies images cut into patches. Blocks: the embedding, one block per
// encoder layer, the head, so a cut between blocks sends [tokens, width] activations per sample.
//
// Dropout is off: every rank builds the whole model from one seed and the pipeline must compute
// exactly what one process does, which per-rank dropout draws would break. Every token is
// attended to, padding included (padding has its own learned embedding): blocks pass one tensor
// between stages, with no attention mask beside it.
#include "model_util.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe::models {
namespace {

namespace nn = torch::nn;

// Token ids (carried as floats, exact below 2^24) -> [B, L, W] embeddings plus positions.
class TokenEmbeddingImpl : public nn::Module {
 public:
  TokenEmbeddingImpl(int64_t vocab, int64_t length, int64_t width)
      : vocab_(vocab),
        tokens_(register_module("tokens", nn::Embedding(vocab, width))),
        positions_(register_parameter("positions", torch::randn({length, width}) * 0.02)) {}
  torch::Tensor forward(const torch::Tensor& ids) {
    return tokens_(ids.to(torch::kLong).clamp(0, vocab_ - 1)) + positions_;
  }

 private:
  int64_t vocab_;
  nn::Embedding tokens_;
  torch::Tensor positions_;
};
TORCH_MODULE(TokenEmbedding);

// [B, C, H, W] images -> [B, patches, W] patch embeddings plus positions.
class PatchEmbeddingImpl : public nn::Module {
 public:
  PatchEmbeddingImpl(int64_t channels, int64_t patch, int64_t patches, int64_t width)
      : project_(register_module("project", nn::Conv2d(nn::Conv2dOptions(channels, width, patch).stride(patch)))),
        positions_(register_parameter("positions", torch::randn({patches, width}) * 0.02)) {}
  torch::Tensor forward(const torch::Tensor& images) {
    return project_(images).flatten(2).transpose(1, 2) + positions_;
  }

 private:
  nn::Conv2d project_;
  torch::Tensor positions_;
};
TORCH_MODULE(PatchEmbedding);

// LibTorch's encoder layer takes [L, B, W]; the pipeline's activations are batch-first.
class EncoderLayerImpl : public nn::Module {
 public:
  EncoderLayerImpl(int64_t width, int64_t heads)
      : layer_(register_module(
            "layer", nn::TransformerEncoderLayer(
                         nn::TransformerEncoderLayerOptions(width, heads).dim_feedforward(4 * width).dropout(0.0)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return layer_(x.transpose(0, 1)).transpose(0, 1); }

 private:
  nn::TransformerEncoderLayer layer_;
};
TORCH_MODULE(EncoderLayer);

// Layer norm, the mean over tokens, one linear layer.
class PooledClassifierImpl : public nn::Module {
 public:
  PooledClassifierImpl(int64_t width, int64_t classes)
      : norm_(register_module("norm", nn::LayerNorm(nn::LayerNormOptions({width})))),
        linear_(register_module("linear", nn::Linear(width, classes))) {}
  torch::Tensor forward(const torch::Tensor& x) { return linear_(norm_(x).mean(1)); }

 private:
  nn::LayerNorm norm_;
  nn::Linear linear_;
};
TORCH_MODULE(PooledClassifier);

void check_shape(const ModelSpec& spec) {
  const TransformerShape& t = spec.transformer;
  if (t.layers < 1 || t.width < 1 || t.heads < 1 || t.width % t.heads != 0)
    throw UsageError("model '" + spec.name + "': --transformer-width " + std::to_string(t.width) +
                     " must be a positive multiple of --transformer-heads " + std::to_string(t.heads) +
                     ", with at least one layer (--transformer-layers " + std::to_string(t.layers) + ")");
}

// The encoder layers and the head, shared by both models.
void append_encoder(std::vector<Block>& blocks, const ModelSpec& spec) {
  for (int64_t i = 0; i < spec.transformer.layers; ++i)
    blocks.push_back(make_block("layer" + std::to_string(i + 1),
                                nn::Sequential(EncoderLayer(spec.transformer.width, spec.transformer.heads))));
  blocks.push_back(make_block("head", nn::Sequential(PooledClassifier(spec.transformer.width, spec.num_classes))));
}

}  // namespace

std::vector<Block> build_transformer(const ModelSpec& spec) {
  check_shape(spec);
  if (spec.input_shape.size() != 1)
    throw UsageError("model 'transformer' takes token sequences [length], not samples of shape " +
                     shape_string(spec.input_shape) + " (use a text dataset: fortunes, text)");
  std::vector<Block> blocks;
  blocks.push_back(make_block("embed", nn::Sequential(TokenEmbedding(spec.transformer.vocab, spec.input_shape[0],
                                                                     spec.transformer.width))));
  append_encoder(blocks, spec);
  return blocks;
}

std::vector<Block> build_vit(const ModelSpec& spec) {
  check_shape(spec);
  const int64_t patch = spec.transformer.patch;
  const auto in = require_image(spec, std::max<int64_t>(patch, 1));
  if (patch < 1 || in.height % patch != 0 || in.width % patch != 0)
    throw UsageError("model 'vit': --vit-patch " + std::to_string(patch) + " must divide the image's " +
                     std::to_string(in.height) + "x" + std::to_string(in.width) + " pixels");
  const int64_t patches = (in.height / patch) * (in.width / patch);
  std::vector<Block> blocks;
  blocks.push_back(make_block(
      "patches", nn::Sequential(PatchEmbedding(in.channels, patch, patches, spec.transformer.width))));
  append_encoder(blocks, spec);
  return blocks;
}

}  // namespace splitpipe::models
