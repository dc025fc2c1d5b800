// Codec::decode_into: a receiver that keeps its tensor decodes into the same storage, and never
// into storage that somebody else still sees.
#include "splitpipe/codec.hpp"
#include "test_compress_helpers.hpp"

#include <gtest/gtest.h>

namespace splitpipe {
namespace {

using testing::encoded;
using testing::randn;

const char* const kEveryCodec[] = {"none", "fp16", "bf16", "quant:bits=8", "quant:bits=8,per=channel",
                                   "sortquant:bits=6,split=2", "lowrank:rank=2", "lowrank:rank=2,view=batch",
                                   "topk:ratio=0.2", "kmeans:bits=3", "quant:bits=4,ef=1"};

TEST(CompressBuffers, AKeptTensorIsDecodedIntoAgainWithTheSameValues) {
  for (const char* spec : kEveryCodec) {
    auto codec = make_codec(spec);
    const at::Tensor first = randn({4, 6, 5, 5}, 1), second = randn({4, 6, 5, 5}, 2) * 3;
    const std::vector<uint8_t> first_bytes = encoded(*codec, first), second_bytes = encoded(*codec, second);
    at::Tensor kept;
    codec->decode_into(first_bytes.data(), first_bytes.size(), kept);
    EXPECT_TRUE(at::equal(kept, codec->decode(first_bytes.data(), first_bytes.size()))) << spec;
    const void* storage = kept.data_ptr();
    codec->decode_into(second_bytes.data(), second_bytes.size(), kept);
    EXPECT_EQ(kept.data_ptr(), storage) << spec << ": not reused";
    // Reuse must not leave anything of the first message behind (topk's zeros, for one).
    EXPECT_TRUE(at::equal(kept, codec->decode(second_bytes.data(), second_bytes.size()))) << spec;
  }
}

TEST(CompressBuffers, StorageSomebodyElseSeesIsNeverOverwritten) {
  auto codec = make_codec("quant:bits=8");
  const at::Tensor x = randn({8, 32}, 3), y = randn({8, 32}, 4);
  const std::vector<uint8_t> x_bytes = encoded(*codec, x), y_bytes = encoded(*codec, y);
  at::Tensor kept;
  codec->decode_into(x_bytes.data(), x_bytes.size(), kept);
  const at::Tensor expected = kept.clone();

  // Another handle, a view, a tensor that requires grad, an autograd graph that saved it: each
  // must keep the first message's values, and the second decode lands in fresh storage.
  const auto check_untouched = [&](const at::Tensor& holder, const char* what) {
    codec->decode_into(y_bytes.data(), y_bytes.size(), kept);
    EXPECT_TRUE(at::equal(holder.detach().reshape({8, 32}), expected)) << what;
    EXPECT_NE(kept.data_ptr(), holder.data_ptr()) << what;
    EXPECT_TRUE(at::equal(kept, codec->decode(y_bytes.data(), y_bytes.size()))) << what;
    codec->decode_into(x_bytes.data(), x_bytes.size(), kept);  // back to the first message, sole owner
  };
  { const at::Tensor handle = kept; check_untouched(handle, "second handle"); }
  { const at::Tensor view = kept.view({32, 8}); check_untouched(view, "view"); }
  { const at::Tensor detached = kept.detach(); check_untouched(detached, "detached alias"); }
  {
    const at::Tensor leaf = kept.detach().requires_grad_(true);
    const at::Tensor loss = (leaf * leaf).sum();  // the graph saves leaf
    check_untouched(leaf, "saved by autograd");
    (void)loss;
  }
  // A tensor of another shape or type is replaced, not reinterpreted.
  at::Tensor wrong_shape = at::zeros({32, 8});
  codec->decode_into(x_bytes.data(), x_bytes.size(), wrong_shape);
  EXPECT_TRUE(at::equal(wrong_shape, expected));
  at::Tensor wrong_type = at::zeros({8, 32}, at::kDouble);
  codec->decode_into(x_bytes.data(), x_bytes.size(), wrong_type);
  EXPECT_EQ(wrong_type.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(wrong_type, expected));
}

}  // namespace
}  // namespace splitpipe
