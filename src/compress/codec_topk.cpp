// `topk`: the k = max(1, round(ratio * numel)) largest magnitudes as values + positions; the
// receiver puts them back into zeros. Positions take ceil(log2(numel)) bits each, so at
// ratio r the message is about r * (32 + log2(numel)) / 32 of float32.
//
// Payload:
//   u32 index_bits, float32 ratio, u64 k
//   float32 values [k]
//   indices into the flattened tensor, index_bits bits each, bit-packed
#include "bit_pack.hpp"
#include "error_feedback.hpp"
#include "payload.hpp"
#include "spec_parser.hpp"
#include "splitpipe/error.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

namespace splitpipe {
namespace {

// Indices travel in int32 tensors; 2^31 elements (8 GiB of float32) is far beyond a boundary.
constexpr int64_t kMaxElements = std::numeric_limits<int32_t>::max();

int index_bits(int64_t numel) {
  int bits = 1;
  while ((int64_t{1} << bits) < numel) ++bits;
  return bits;
}

// Both sides compute k from the float32 ratio that travels, so they always agree.
int64_t kept_count(int64_t numel, float ratio) {
  if (numel == 0) return 0;
  const auto k = static_cast<int64_t>(std::llround(static_cast<double>(ratio) * static_cast<double>(numel)));
  return std::min(numel, std::max<int64_t>(1, k));
}

class TopKCodec final : public FeedbackCodec {
 public:
  TopKCodec(double ratio, bool error_feedback) : FeedbackCodec(error_feedback), ratio_(ratio) {}

  CodecId id() const override { return CodecId::TopK; }
  std::string spec() const override { return "topk:ratio=" + format_number(ratio_) + feedback_spec(); }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape_numel(shape)));
  }

  at::Tensor decode(const uint8_t* data, size_t size) override {
    PayloadReader reader(data, size, id());
    const int64_t numel = reader.numel();
    const uint32_t bits = reader.u32("index bits");
    const float ratio = reader.f32("ratio");
    const uint64_t k = reader.u64("count");
    if (numel > kMaxElements) reader.fail("tensor of " + std::to_string(numel) + " elements is too large");
    if (!(ratio > 0.0f && ratio <= 1.0f) || static_cast<int>(bits) != index_bits(numel) ||
        k != static_cast<uint64_t>(kept_count(numel, ratio)))
      reader.fail("inconsistent parameters for " + std::to_string(numel) + " elements: index bits " +
                  std::to_string(bits) + ", ratio " + std::to_string(ratio) + ", count " + std::to_string(k));
    const auto count = static_cast<int64_t>(k);
    const at::Tensor values = reader.tensor(count, at::kFloat, "values");
    const at::Tensor indices = reader.codes(count, static_cast<int>(bits), "indices").to(at::kLong);
    reader.expect_end();
    if (count > 0 && indices.max().item<int64_t>() >= numel) reader.fail("index out of range");
    return at::zeros({numel}, at::kFloat).index_copy_(0, indices, values).view(reader.sizes());
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const int64_t numel = x.numel();
    if (numel > kMaxElements)
      throw Error("codec 'topk': tensor of " + std::to_string(numel) + " elements is too large (at most 2^31-1)");
    const float ratio = static_cast<float>(ratio_);
    const int64_t k = kept_count(numel, ratio);
    const at::Tensor flat = x.reshape(-1);
    const at::Tensor indices = std::get<1>(flat.abs().topk(k, 0, /*largest=*/true, /*sorted=*/false));
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(numel));
    writer.put_u32(static_cast<uint32_t>(index_bits(numel)));
    writer.put_f32(ratio);
    writer.put_u64(static_cast<uint64_t>(k));
    writer.put_tensor(flat.index_select(0, indices), at::kFloat);
    writer.put_codes(indices.to(at::kInt), index_bits(numel));
    return writer.finish();
  }

 private:
  size_t payload_bytes(int64_t numel) const {
    const int64_t k = kept_count(numel, static_cast<float>(ratio_));
    return sizeof(uint32_t) + sizeof(float) + sizeof(uint64_t) + static_cast<size_t>(k) * sizeof(float) +
           packed_bytes(k, index_bits(numel));
  }

  double ratio_;
};

}  // namespace

std::unique_ptr<Codec> make_topk_codec(CodecParams& params) {
  const double ratio = params.real_above("ratio", 0.1, 0.0, 1.0);
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<TopKCodec>(ratio, error_feedback);
}

}  // namespace splitpipe
