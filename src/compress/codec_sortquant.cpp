// `sortquant`: quantile buckets, each quantized uniformly on its own grid.
//
// The values are cut into 2^split equal-count buckets at quantile boundaries b_0 <= ... <= b_{K-2}
// (K = 2^split). Bucket j holds the values with b_{j-1} < x <= b_j (b_{-1} = -inf, b_{K-1} = +inf),
// so its range is [lo_j, hi_j] with lo_0 = min(x), lo_j = b_{j-1}, hi_j = b_j, hi_{K-1} = max(x).
// The boundaries come from the quantiles of a sample of at most kMaxSample values (all values
// when the tensor is small): sorting the sample is O(sample), no sort of the whole tensor.
// Dense regions get narrow buckets and fine steps, outliers get their own buckets, which is why
// it beats plain quantization on heavy-tailed tensors at the same bits.
//
// Payload:
//   u32 value_bits B (1..16), u32 split_bits S (0..8), B + S <= 24
//   float32 [2^S][2] (lo_j, step_j), step_j = (hi_j - lo_j) / (2^B - 1)
//   codes of B + S bits each, bit-packed, row-major: code = (bucket << B) | value_code,
//   decoded as lo_bucket + value_code * step_bucket
#include "bit_pack.hpp"
#include "error_feedback.hpp"
#include "payload.hpp"
#include "sampling.hpp"
#include "spec_parser.hpp"
#include "uniform_quant.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace splitpipe {
namespace {

constexpr int kMaxValueBits = 16, kMaxSplitBits = 8, kMaxCodeBits = 24;
// The parameter ranges alone keep a code within 24 bits (2^24 levels are plenty for any tensor).
static_assert(kMaxValueBits + kMaxSplitBits <= kMaxCodeBits, "codes must fit in 24 bits");

class SortQuantCodec final : public FeedbackCodec {
 public:
  SortQuantCodec(int value_bits, int split_bits, bool error_feedback)
      : FeedbackCodec(error_feedback), value_bits_(value_bits), split_bits_(split_bits),
        generator_(at::make_generator<at::CPUGeneratorImpl>(0x5eed0004)) {}

  CodecId id() const override { return CodecId::SortQuant; }

  std::string spec() const override {
    return "sortquant:bits=" + std::to_string(value_bits_) + ",split=" + std::to_string(split_bits_) +
           feedback_spec();
  }

  size_t max_encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape_numel(shape)));
  }

  at::Tensor decode(const uint8_t* data, size_t size) override {
    PayloadReader reader(data, size, id());
    const uint32_t value_bits = reader.u32("value bits");
    const uint32_t split_bits = reader.u32("split bits");
    if (value_bits < 1 || value_bits > kMaxValueBits || split_bits > kMaxSplitBits)
      reader.fail("invalid bit widths: bits=" + std::to_string(value_bits) + ", split=" + std::to_string(split_bits));
    const UniformGrid grid = read_grid_table(reader, int64_t{1} << split_bits);
    const at::Tensor codes = reader.codes(reader.numel(), static_cast<int>(value_bits + split_bits), "codes");
    reader.expect_end();
    // Codes have value_bits + split_bits bits, so every bucket index is inside the table.
    const at::Tensor bucket = at::bitwise_right_shift(codes, static_cast<int64_t>(value_bits));
    const at::Tensor value_code = at::bitwise_and(codes, (int64_t{1} << value_bits) - 1);
    return dequantize_codes(value_code, grid.lo.index_select(0, bucket), grid.step.index_select(0, bucket))
        .view(reader.sizes());
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const int64_t buckets = int64_t{1} << split_bits_;
    const at::Tensor flat = x.reshape(-1);
    at::Tensor lo, hi, bucket;
    if (flat.numel() == 0) {
      lo = hi = at::zeros({buckets}, x.options());
      bucket = at::zeros({0}, x.options().dtype(at::kInt));
    } else {
      const at::Tensor sample = sorted_sample(flat, kMaxSample, generator_);
      const at::Tensor bounds = sample.index_select(0, boundary_ranks(sample.numel(), buckets));
      bucket = at::bucketize(flat, bounds, /*out_int32=*/true, /*right=*/false);
      at::Tensor min, max;
      std::tie(min, max) = at::aminmax(flat);
      lo = at::cat({min.view({1}), bounds});
      hi = at::cat({bounds, max.view({1})});
    }
    const UniformGrid grid = uniform_grid(lo, hi, value_bits_);
    const at::Tensor value_code = quantize_codes(flat, grid.lo.index_select(0, bucket),
                                                 grid.step.index_select(0, bucket), value_bits_,
                                                 Rounding::Nearest, generator_);
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(x.numel()));
    writer.put_u32(static_cast<uint32_t>(value_bits_));
    writer.put_u32(static_cast<uint32_t>(split_bits_));
    put_grid_table(writer, grid);
    writer.put_codes(at::add(value_code, bucket, int64_t{1} << value_bits_), value_bits_ + split_bits_);
    return writer.finish();
  }

 private:
  size_t payload_bytes(int64_t numel) const {
    return 2 * sizeof(uint32_t) + grid_table_bytes(int64_t{1} << split_bits_) +
           packed_bytes(numel, value_bits_ + split_bits_);
  }

  // Rank of the last value of each bucket but the last in a sorted sample of m values: bucket j
  // takes ranks [ceil(j*m/K), ceil((j+1)*m/K)).
  static at::Tensor boundary_ranks(int64_t m, int64_t buckets) {
    std::vector<int64_t> ranks;
    for (int64_t j = 1; j < buckets; ++j) ranks.push_back(std::max<int64_t>(0, (j * m + buckets - 1) / buckets - 1));
    return at::tensor(ranks, at::kLong);
  }

  int value_bits_;
  int split_bits_;
  at::Generator generator_;  // boundary sampling; never the global generator
};

}  // namespace

std::unique_ptr<Codec> make_sortquant_codec(CodecParams& params) {
  const int value_bits = params.integer("bits", 6, 1, kMaxValueBits);
  const int split_bits = params.integer("split", 2, 0, kMaxSplitBits);
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<SortQuantCodec>(value_bits, split_bits, error_feedback);
}

}  // namespace splitpipe
