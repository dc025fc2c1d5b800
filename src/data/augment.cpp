// CIFAR-style augmentation: zero-pad, random crop back to size, random horizontal flip.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "splitpipe/data.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

constexpr int64_t kPad = 4;

}  // namespace

at::Tensor augment_crop_flip(const at::Tensor& images, uint64_t gen_seed) {
  using torch::indexing::Slice;
  if (images.dim() != 4) {
    throw Error("augment_crop_flip: expected images [B,C,H,W], got " + std::to_string(images.dim()) + " dims");
  }
  const int64_t batch = images.size(0), height = images.size(2), width = images.size(3);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(gen_seed);
  const at::Tensor row_offset = torch::randint(0, 2 * kPad + 1, {batch, 1}, generator, torch::kLong);
  const at::Tensor col_offset = torch::randint(0, 2 * kPad + 1, {batch, 1}, generator, torch::kLong);
  const at::Tensor flip = torch::randint(0, 2, {batch, 1}, generator, torch::kLong).to(torch::kBool);

  // One gather for the whole batch instead of a slice per image: rows[b, y] and cols[b, x] are
  // the padded-image coordinates that output pixel (y, x) of image b comes from.
  const at::Tensor rows = row_offset + torch::arange(height, torch::kLong);
  const at::Tensor x = torch::arange(width, torch::kLong);
  const at::Tensor cols = col_offset + torch::where(flip, width - 1 - x, x);
  const at::Tensor padded = torch::constant_pad_nd(images, {kPad, kPad, kPad, kPad}, 0);
  const at::Tensor image_index = torch::arange(batch, torch::kLong).view({batch, 1, 1});
  // Advanced indices around a slice put the broadcast index dims first: [B, H, W, C].
  const at::Tensor gathered =
      padded.index({image_index, Slice(), rows.view({batch, height, 1}), cols.view({batch, 1, width})});
  return gathered.permute({0, 3, 1, 2}).contiguous();
}

}  // namespace splitpipe
