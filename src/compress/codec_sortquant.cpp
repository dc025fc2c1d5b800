// `sortquant`: quantile buckets, each quantized uniformly on its own grid.
//
// The values are cut into 2^split equal-count buckets at quantile boundaries b_0 <= ... <= b_{K-2}
// (K = 2^split). Bucket j holds the values with b_{j-1} < x <= b_j (b_{-1} = -inf, b_{K-1} = +inf),
// so its range is [lo_j, hi_j] with lo_0 = min(x), lo_j = b_{j-1}, hi_j = b_j, hi_{K-1} = max(x).
// The boundaries come from the quantiles of a sample of at most kMaxSample values (all values
// when the tensor is small), selected from it without sorting it (nth_element per boundary, a
// sort of the sample only for more than 16 buckets): O(sample), no sort of the whole tensor.
// Encoding is then two passes over the values: min/max, then bucket, quantize and pack fused
// (kernels below), without int64 bucket indices or per-element ATen temporaries.
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
#include "bucket_search.hpp"
#include "vector_clones.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <vector>

namespace splitpipe {
namespace {

constexpr int kMaxValueBits = 16, kMaxSplitBits = 8, kMaxCodeBits = 24;
// The parameter ranges alone keep a code within 24 bits (2^24 levels are plenty for any tensor).
static_assert(kMaxValueBits + kMaxSplitBits <= kMaxCodeBits, "codes must fit in 24 bits");

// Bucket of x: the number of boundaries below it, as at::bucketize(right=false) counts them.
// Bucket j > 0 starts at lo[j] = b_{j-1} and the boundaries are sorted, so x > lo[j] holds for
// exactly j = 1..bucket: a branchless pass over the small table selects the bucket's grid
// without an index (vectorizable), and large tables use a branchless binary search.
template <int Buckets>
SPLITPIPE_VECTOR_CLONES void bucketed_codes(const float* x, int64_t n, const float* lo, const float* inverse,
                                            float top_level, int value_bits, uint32_t* codes) {
  // Local copies, and the bucket as its code bits, keep every select 32 bits wide: the compiler
  // vectorizes the loop over values with the loop over buckets unrolled.
  float table_lo[Buckets], table_inverse[Buckets];
  uint32_t table_bucket_bits[Buckets];
  for (int j = 0; j < Buckets; ++j) {
    table_lo[j] = lo[j];
    table_inverse[j] = inverse[j];
    table_bucket_bits[j] = static_cast<uint32_t>(j) << value_bits;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float bucket_lo = table_lo[0], bucket_inverse = table_inverse[0];
    uint32_t bucket_bits = 0;
#pragma GCC unroll 16
    for (int j = 1; j < Buckets; ++j) {
      const bool above = v > table_lo[j];
      bucket_lo = above ? table_lo[j] : bucket_lo;
      bucket_inverse = above ? table_inverse[j] : bucket_inverse;
      bucket_bits = above ? table_bucket_bits[j] : bucket_bits;
    }
    codes[i] = bucket_bits | nearest_code(v, bucket_lo, bucket_inverse, top_level);
  }
}

void bucketed_codes_searched(const float* x, int64_t n, const float* lo, const float* inverse, int64_t buckets,
                             float top_level, int value_bits, uint32_t* codes) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const int64_t bucket = searched_bucket(v, lo, buckets);
    codes[i] = (static_cast<uint32_t>(bucket) << value_bits) | nearest_code(v, lo[bucket], inverse[bucket], top_level);
  }
}

// Writes the packed codes (bucket << value_bits | value code) of n values, in one pass.
void quantize_pack_bucketed(const float* x, int64_t n, int value_bits, int split_bits, const float* lo,
                            const float* step, uint8_t* out) {
  const int64_t buckets = int64_t{1} << split_bits;
  const auto top_level = static_cast<float>((int64_t{1} << value_bits) - 1);
  std::vector<float> inverse(buckets);
  for (int64_t j = 0; j < buckets; ++j) inverse[j] = inverse_step(step[j]);
  const float* inv = inverse.data();
  pack_produced(n, value_bits + split_bits, out, [&](int64_t begin, int64_t end, uint32_t* codes) {
    const float* values = x + begin;
    const int64_t m = end - begin;
    switch (split_bits) {
      case 0: return bucketed_codes<1>(values, m, lo, inv, top_level, value_bits, codes);
      case 1: return bucketed_codes<2>(values, m, lo, inv, top_level, value_bits, codes);
      case 2: return bucketed_codes<4>(values, m, lo, inv, top_level, value_bits, codes);
      case 3: return bucketed_codes<8>(values, m, lo, inv, top_level, value_bits, codes);
      case 4: return bucketed_codes<16>(values, m, lo, inv, top_level, value_bits, codes);
      default: return bucketed_codes_searched(values, m, lo, inv, buckets, top_level, value_bits, codes);
    }
  });
}

// Decodes n codes: lo_bucket + value_code * step_bucket. Codes have value_bits + split_bits
// bits, so every bucket index is inside the table whatever the message holds.
SPLITPIPE_FMA_CLONES void dequantize_bucketed(const uint32_t* codes, int64_t n, int value_bits, const float* lo,
                                              const float* step, float* out) {
  const uint32_t value_mask = (uint32_t{1} << value_bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bucket = codes[i] >> value_bits;
    out[i] = dequantized(codes[i] & value_mask, lo[bucket], step[bucket]);
  }
}

void unpack_bucketed(const uint8_t* in, int64_t n, int value_bits, int split_bits, const float* lo,
                     const float* step, float* out) {
  unpack_consumed(in, n, value_bits + split_bits, [&](int64_t begin, int64_t end, const uint32_t* codes) {
    dequantize_bucketed(codes, end - begin, value_bits, lo, step, out + begin);
  });
}

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

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape_numel(shape)));
  }

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
    PayloadReader reader(data, size, id());
    const uint32_t value_bits = reader.u32("value bits");
    const uint32_t split_bits = reader.u32("split bits");
    if (value_bits < 1 || value_bits > kMaxValueBits || split_bits > kMaxSplitBits)
      reader.fail("invalid bit widths: bits=" + std::to_string(value_bits) + ", split=" + std::to_string(split_bits));
    const UniformGrid grid = read_grid_table(reader, int64_t{1} << split_bits);
    const int64_t count = reader.numel();
    const uint8_t* codes = reader.packed_codes(count, static_cast<int>(value_bits + split_bits), "codes");
    reader.expect_end();
    at::Tensor& decoded = reusable_output(out, reader.sizes());
    if (count > 0)
      unpack_bucketed(codes, count, static_cast<int>(value_bits), static_cast<int>(split_bits),
                      grid.lo.data_ptr<float>(), grid.step.data_ptr<float>(), decoded.data_ptr<float>());
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const int64_t buckets = int64_t{1} << split_bits_;
    const at::Tensor flat = x.contiguous().view(-1);
    const int64_t count = flat.numel();
    at::Tensor lo, hi;
    if (count == 0) {
      lo = hi = at::zeros({buckets}, x.options());
    } else {
      const at::Tensor sample = random_sample(flat, kMaxSample, generator_);
      const at::Tensor bounds = at::tensor(order_statistics(sample, boundary_ranks(sample.numel(), buckets)));
      at::Tensor min = at::empty({1}, x.options()), max = at::empty({1}, x.options());
      group_ranges(flat.data_ptr<float>(), count, GridLayout{1, count}, min.data_ptr<float>(), max.data_ptr<float>());
      lo = at::cat({min, bounds});
      hi = at::cat({bounds, max});
    }
    const UniformGrid grid = uniform_grid(lo, hi, value_bits_);
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(count));
    writer.put_u32(static_cast<uint32_t>(value_bits_));
    writer.put_u32(static_cast<uint32_t>(split_bits_));
    put_grid_table(writer, grid);
    uint8_t* codes = writer.claim(packed_bytes(count, value_bits_ + split_bits_));
    if (count > 0)
      quantize_pack_bucketed(flat.data_ptr<float>(), count, value_bits_, split_bits_, grid.lo.data_ptr<float>(),
                             grid.step.data_ptr<float>(), codes);
    return writer.finish();
  }

 private:
  size_t payload_bytes(int64_t numel) const {
    return 2 * sizeof(uint32_t) + grid_table_bytes(int64_t{1} << split_bits_) +
           packed_bytes(numel, value_bits_ + split_bits_);
  }

  // Rank of the last value of each bucket but the last in a sorted sample of m values: bucket j
  // takes ranks [ceil(j*m/K), ceil((j+1)*m/K)).
  static std::vector<int64_t> boundary_ranks(int64_t m, int64_t buckets) {
    std::vector<int64_t> ranks;
    for (int64_t j = 1; j < buckets; ++j) ranks.push_back(std::max<int64_t>(0, (j * m + buckets - 1) / buckets - 1));
    return ranks;
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
