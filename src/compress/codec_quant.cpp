// `quant`: uniform quantization with a per-tensor or per-channel (lo, step) grid.
// The channel of [N, C, ...] images and [N, F] features is dim 1; of [N, T, W] sequences
// (transformer, ViT) it is the last dim, the feature: each of the W features of a token has its
// own range, while dim 1 would group by token position, which says nothing about the values.
// Payload:
//   u32 bits (1..16), u32 per (0 = one grid for the tensor, 1 = one grid per index of dim 1,
//                              2 = one grid per index of the last dim)
//   float32 [groups][2] (lo, step)      groups = the size of that dim, else 1
//   codes, `bits` bits each, bit-packed, row-major
// Per channel needs >= 2 dims; smaller tensors fall back to one grid (and say so: per = 0).
#include "error_feedback.hpp"
#include "payload.hpp"
#include "bit_pack.hpp"
#include "spec_parser.hpp"
#include "uniform_quant.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace splitpipe {
namespace {

class QuantCodec final : public FeedbackCodec {
 public:
  QuantCodec(int bits, bool per_channel, Rounding rounding, bool error_feedback)
      : FeedbackCodec(error_feedback), bits_(bits), per_channel_(per_channel), rounding_(rounding),
        generator_(at::make_generator<at::CPUGeneratorImpl>(0x5eed0003)) {}

  CodecId id() const override { return CodecId::Quant; }

  std::string spec() const override {
    return "quant:bits=" + std::to_string(bits_) + ",per=" + (per_channel_ ? "channel" : "tensor") +
           ",round=" + (rounding_ == Rounding::Nearest ? "nearest" : "stochastic") + feedback_spec();
  }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape));
  }

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
    PayloadReader reader(data, size, id());
    const uint32_t bits = reader.u32("bit width");
    if (bits < 1 || bits > 16) reader.fail("bit width " + std::to_string(bits) + " outside 1..16");
    const uint32_t per = reader.u32("grouping");
    const std::vector<int64_t> sizes = reader.sizes();
    if (per > kLastDim || (per != kTensor && sizes.size() < 2))
      reader.fail("invalid grouping " + std::to_string(per));
    const GridLayout layout = grid_layout(sizes, static_cast<Grouping>(per));
    const UniformGrid grid = read_grid_table(reader, layout.groups);
    const int64_t count = reader.numel();
    const uint8_t* codes = reader.packed_codes(count, static_cast<int>(bits), "codes");
    reader.expect_end();
    at::Tensor& decoded = reusable_output(out, sizes);
    if (count > 0)
      unpack_dequantize(codes, count, layout, grid.lo.data_ptr<float>(), grid.step.data_ptr<float>(),
                        static_cast<int>(bits), decoded.data_ptr<float>());
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const at::Tensor values = x.contiguous();
    const int64_t count = values.numel();
    const Grouping grouping = grouping_of(values.sizes());
    const GridLayout layout = grid_layout(values.sizes().vec(), grouping);
    at::Tensor lo = at::zeros({layout.groups}, values.options()), hi = at::zeros({layout.groups}, values.options());
    if (count > 0) group_ranges(values.data_ptr<float>(), count, layout, lo.data_ptr<float>(), hi.data_ptr<float>());
    const UniformGrid grid = uniform_grid(lo, hi, bits_);
    PayloadWriter writer(out, id(), values.sizes(), payload_bytes(values.sizes()));
    writer.put_u32(static_cast<uint32_t>(bits_));
    writer.put_u32(grouping);
    put_grid_table(writer, grid);
    if (rounding_ == Rounding::Nearest) {
      uint8_t* codes = writer.claim(packed_bytes(count, bits_));
      if (count > 0)
        quantize_pack_nearest(values.data_ptr<float>(), count, layout, grid.lo.data_ptr<float>(),
                              grid.step.data_ptr<float>(), bits_, codes);
    } else {
      const std::vector<int64_t> grid_shape = broadcast_shape(values.sizes().vec(), grouping);
      writer.put_codes(quantize_codes(values, grid.lo.view(grid_shape), grid.step.view(grid_shape), bits_,
                                      rounding_, generator_),
                       bits_);
    }
    return writer.finish();
  }

 private:
  enum Grouping : uint32_t { kTensor = 0, kDim1 = 1, kLastDim = 2 };

  Grouping grouping_of(c10::IntArrayRef shape) const {
    if (!per_channel_ || shape.size() < 2) return kTensor;
    return shape.size() == 3 ? kLastDim : kDim1;
  }

  // The dim that has a grid per index, or -1 for one grid.
  static int grid_dim(size_t dims, Grouping grouping) {
    return grouping == kTensor ? -1 : grouping == kDim1 ? 1 : static_cast<int>(dims) - 1;
  }

  size_t payload_bytes(c10::IntArrayRef shape) const {
    const int dim = grid_dim(shape.size(), grouping_of(shape));
    const int64_t groups = dim < 0 ? 1 : shape[dim];
    return 2 * sizeof(uint32_t) + grid_table_bytes(groups) + packed_bytes(shape_numel(shape), bits_);
  }

  // One grid per index of the grid dim, each used by runs of prod(dims after it) consecutive
  // values (1 for the last dim).
  static GridLayout grid_layout(const std::vector<int64_t>& sizes, Grouping grouping) {
    const int dim = grid_dim(sizes.size(), grouping);
    if (dim < 0) return {1, std::max<int64_t>(1, shape_numel(sizes))};
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(dim) + 1; d < sizes.size(); ++d) inner *= sizes[d];
    return {sizes[static_cast<size_t>(dim)], inner};
  }

  // 1 everywhere but the grid dim, so (lo, step) broadcast over x.
  static std::vector<int64_t> broadcast_shape(std::vector<int64_t> sizes, Grouping grouping) {
    const int dim = grid_dim(sizes.size(), grouping);
    for (size_t d = 0; d < sizes.size(); ++d)
      if (static_cast<int>(d) != dim) sizes[d] = 1;
    return sizes;
  }

  int bits_;
  bool per_channel_;
  Rounding rounding_;
  at::Generator generator_;  // stochastic rounding; never the global generator
};

}  // namespace

std::unique_ptr<Codec> make_quant_codec(CodecParams& params) {
  const int bits = params.integer("bits", 8, 1, 16);
  const bool per_channel = params.choice("per", "tensor", {"tensor", "channel"}) == "channel";
  const bool stochastic = params.choice("round", "nearest", {"nearest", "stochastic"}) == "stochastic";
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<QuantCodec>(bits, per_channel, stochastic ? Rounding::Stochastic : Rounding::Nearest,
                                      error_feedback);
}

}  // namespace splitpipe
