// `quant`: uniform quantization with a per-tensor or per-channel (lo, step) grid.
// Payload:
//   u32 bits (1..16), u32 per (0 = one grid for the tensor, 1 = one grid per channel = dim 1)
//   float32 [groups][2] (lo, step)      groups = shape[1] per channel, else 1
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

  at::Tensor decode(const uint8_t* data, size_t size) override {
    PayloadReader reader(data, size, id());
    const uint32_t bits = reader.u32("bit width");
    if (bits < 1 || bits > 16) reader.fail("bit width " + std::to_string(bits) + " outside 1..16");
    const uint32_t per = reader.u32("grouping");
    const std::vector<int64_t> sizes = reader.sizes();
    if (per > 1 || (per == 1 && sizes.size() < 2)) reader.fail("invalid grouping " + std::to_string(per));
    const GridLayout layout = grid_layout(sizes, per == 1);
    const UniformGrid grid = read_grid_table(reader, layout.groups);
    const int64_t count = reader.numel();
    const uint8_t* codes = reader.packed_codes(count, static_cast<int>(bits), "codes");
    reader.expect_end();
    at::Tensor decoded = at::empty(sizes, at::kFloat);
    if (count > 0)
      unpack_dequantize(codes, count, layout, grid.lo.data_ptr<float>(), grid.step.data_ptr<float>(),
                        static_cast<int>(bits), decoded.data_ptr<float>());
    return decoded;
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const at::Tensor values = x.contiguous();
    const int64_t count = values.numel();
    const bool per_channel = uses_channels(values.sizes());
    const GridLayout layout = grid_layout(values.sizes().vec(), per_channel);
    at::Tensor lo = at::zeros({layout.groups}, values.options()), hi = at::zeros({layout.groups}, values.options());
    if (count > 0) group_ranges(values.data_ptr<float>(), count, layout, lo.data_ptr<float>(), hi.data_ptr<float>());
    const UniformGrid grid = uniform_grid(lo, hi, bits_);
    PayloadWriter writer(out, id(), values.sizes(), payload_bytes(values.sizes()));
    writer.put_u32(static_cast<uint32_t>(bits_));
    writer.put_u32(per_channel ? 1 : 0);
    put_grid_table(writer, grid);
    if (rounding_ == Rounding::Nearest) {
      uint8_t* codes = writer.claim(packed_bytes(count, bits_));
      if (count > 0)
        quantize_pack_nearest(values.data_ptr<float>(), count, layout, grid.lo.data_ptr<float>(),
                              grid.step.data_ptr<float>(), bits_, codes);
    } else {
      const std::vector<int64_t> grid_shape = broadcast_shape(values.sizes().vec(), per_channel);
      writer.put_codes(quantize_codes(values, grid.lo.view(grid_shape), grid.step.view(grid_shape), bits_,
                                      rounding_, generator_),
                       bits_);
    }
    return writer.finish();
  }

 private:
  bool uses_channels(c10::IntArrayRef shape) const { return per_channel_ && shape.size() >= 2; }

  size_t payload_bytes(c10::IntArrayRef shape) const {
    const int64_t groups = uses_channels(shape) ? shape[1] : 1;
    return 2 * sizeof(uint32_t) + grid_table_bytes(groups) + packed_bytes(shape_numel(shape), bits_);
  }

  // Channel = dim 1: C grids, each used by runs of prod(dims 2..) consecutive values.
  static GridLayout grid_layout(const std::vector<int64_t>& sizes, bool per_channel) {
    if (!per_channel) return {1, std::max<int64_t>(1, shape_numel(sizes))};
    int64_t inner = 1;
    for (size_t d = 2; d < sizes.size(); ++d) inner *= sizes[d];
    return {sizes[1], inner};
  }

  // [1, C, 1, ...] for per-channel grids, [1, ...] otherwise, so (lo, step) broadcast over x.
  static std::vector<int64_t> broadcast_shape(std::vector<int64_t> sizes, bool per_channel) {
    for (size_t d = 0; d < sizes.size(); ++d)
      if (!(per_channel && d == 1)) sizes[d] = 1;
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
