// The encoder shape of the transformer and vit models (a plain struct: the configuration holds
// one without pulling in LibTorch's module headers).
#pragma once
#include <cstdint>

namespace splitpipe {

struct TransformerShape {
  int64_t layers = 4;   // encoder layers, one block each
  int64_t width = 128;  // model dimension
  int64_t heads = 4;    // attention heads (divides width)
  int64_t patch = 7;    // vit: square patch side (divides the image's height and width)
  int64_t vocab = 256;  // transformer: token ids 0..vocab-1 (byte-level text: 256, 0 = padding)
};

}  // namespace splitpipe
