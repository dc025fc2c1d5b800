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
#include "sampling.hpp"
#include "spec_parser.hpp"
#include "splitpipe/error.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

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

// Buffers of the selection below, kept by the codec so that every message reuses warm pages.
struct SelectionScratch {
  std::vector<int32_t> above, band, chosen;
  std::vector<float> magnitudes;
};

// Appends i to `positions` (logically `count` long) when `keep`, without a branch: the slot
// is written either way and only the count moves. The caller made room for the block.
inline void append_if(bool keep, int32_t i, int32_t* positions, int64_t& count) {
  positions[count] = i;
  count += keep ? 1 : 0;
}

// The positions, ascending, of the k largest magnitudes of `flat` (float32, contiguous; NaN
// counts as largest, as in at::topk), found without a selection over the whole tensor: a sample
// brackets the k-th largest magnitude between two thresholds, one branch-free pass keeps every
// position above the upper one and collects the band between them, and only the band is
// partially sorted. Returns false when the bracket missed (the caller then selects exactly).
bool largest_magnitudes(const at::Tensor& flat, int64_t k, at::Generator& generator, SelectionScratch& scratch,
                        std::vector<int32_t>& result) {
  const int64_t n = flat.numel();
  // Below this a plain selection is as fast, and the sample would be the whole tensor.
  constexpr int64_t kMinSampled = 8 * kMaxSample;
  if (n < kMinSampled || k == 0) return false;
  const at::Tensor sample = std::get<0>(random_sample(flat, kMaxSample, generator).abs().sort());
  const float* sorted = sample.data_ptr<float>();
  const int64_t m = sample.numel();
  const double kept = static_cast<double>(k) / static_cast<double>(n);
  // Four standard errors of the sample quantile either side: the bracket misses rarely, and
  // the band stays a few percent of the tensor.
  const double margin = 4.0 * std::sqrt(kept * (1.0 - kept) / static_cast<double>(m)) + 1.0 / static_cast<double>(m);
  const auto sample_at = [&](double fraction) {  // the magnitude with `fraction` of the sample below it
    const auto rank = static_cast<int64_t>(std::floor(fraction * static_cast<double>(m)));
    return sorted[std::clamp<int64_t>(rank, 0, m - 1)];
  };
  const float low = 1.0 - kept - margin <= 0 ? 0.0f : sample_at(1.0 - kept - margin);
  const float high = 1.0 - kept + margin >= 1 ? std::numeric_limits<float>::infinity() : sample_at(1.0 - kept + margin);
  if (std::isnan(low) || std::isnan(high)) return false;

  const float* x = flat.data_ptr<float>();
  int64_t above_count = 0, band_count = 0;
  constexpr int64_t kBlock = 4096;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t end = std::min(n, begin + kBlock);
    // Room for the whole block in both lists; they grow geometrically, so rarely.
    for (auto* list : {&scratch.above, &scratch.band}) {
      const auto needed = static_cast<size_t>((list == &scratch.above ? above_count : band_count) + kBlock);
      if (list->size() < needed) list->resize(std::max(needed, 2 * list->size()));
    }
    int32_t* above = scratch.above.data();
    int32_t* band = scratch.band.data();
    for (int64_t i = begin; i < end; ++i) {
      const float magnitude = std::fabs(x[i]);
      const bool in_band = magnitude >= low && magnitude <= high;
      append_if(!(magnitude <= high), static_cast<int32_t>(i), above, above_count);  // NaN too
      append_if(in_band, static_cast<int32_t>(i), band, band_count);
    }
  }
  const int64_t taken_from_band = k - above_count;
  if (taken_from_band < 0 || taken_from_band > band_count) return false;
  // The smallest magnitude kept from the band; ties at it are kept in position order.
  auto& chosen = scratch.chosen;
  chosen.clear();
  if (taken_from_band > 0) {
    auto& magnitudes = scratch.magnitudes;
    magnitudes.resize(static_cast<size_t>(band_count));
    for (int64_t i = 0; i < band_count; ++i) magnitudes[i] = std::fabs(x[scratch.band[i]]);
    const auto cut = magnitudes.begin() + (taken_from_band - 1);
    std::nth_element(magnitudes.begin(), cut, magnitudes.end(), std::greater<float>());
    const float smallest_kept = *cut;
    const auto strictly_above =
        std::count_if(magnitudes.begin(), magnitudes.end(), [&](float v) { return v > smallest_kept; });
    int64_t ties_left = taken_from_band - strictly_above;
    chosen.reserve(static_cast<size_t>(taken_from_band));
    for (int64_t i = 0; i < band_count; ++i) {
      const int32_t position = scratch.band[i];
      const float magnitude = std::fabs(x[position]);
      if (magnitude > smallest_kept || (magnitude == smallest_kept && ties_left-- > 0)) chosen.push_back(position);
    }
  }
  result.resize(static_cast<size_t>(k));
  std::merge(scratch.above.begin(), scratch.above.begin() + above_count, chosen.begin(), chosen.end(), result.begin());
  return true;
}

class TopKCodec final : public FeedbackCodec {
 public:
  TopKCodec(double ratio, bool error_feedback) : FeedbackCodec(error_feedback), ratio_(ratio) {}

  CodecId id() const override { return CodecId::TopK; }
  std::string spec() const override { return "topk:ratio=" + format_number(ratio_) + feedback_spec(); }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape_numel(shape)));
  }

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
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
    const uint8_t* indices = reader.packed_codes(count, static_cast<int>(bits), "indices");
    reader.expect_end();
    float* decoded = reusable_output(out, reader.sizes()).data_ptr<float>();
    std::fill(decoded, decoded + numel, 0.0f);
    const float* kept = values.data_ptr<float>();
    std::atomic<bool> out_of_range{false};
    unpack_consumed(indices, count, static_cast<int>(bits), [&](int64_t begin, int64_t end, const uint32_t* codes) {
      for (int64_t i = begin; i < end; ++i) {
        const uint32_t at = codes[i - begin];
        if (at < static_cast<uint64_t>(numel))
          decoded[at] = kept[i];
        else
          out_of_range = true;
      }
    });
    if (out_of_range) reader.fail("index out of range");
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const int64_t numel = x.numel();
    if (numel > kMaxElements)
      throw Error("codec 'topk': tensor of " + std::to_string(numel) + " elements is too large (at most 2^31-1)");
    const float ratio = static_cast<float>(ratio_);
    const int64_t k = kept_count(numel, ratio);
    const at::Tensor flat = x.reshape(-1).contiguous();
    const float* values = flat.data_ptr<float>();
    std::vector<int32_t>& kept = kept_;
    if (!largest_magnitudes(flat, k, generator_, scratch_, kept)) {  // the sample missed: select exactly
      const at::Tensor indices = std::get<1>(flat.abs().topk(k, 0, /*largest=*/true, /*sorted=*/false)).to(at::kInt);
      kept.assign(indices.data_ptr<int32_t>(), indices.data_ptr<int32_t>() + k);
    }
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(numel));
    writer.put_u32(static_cast<uint32_t>(index_bits(numel)));
    writer.put_f32(ratio);
    writer.put_u64(static_cast<uint64_t>(k));
    uint8_t* kept_values = writer.claim(static_cast<size_t>(k) * sizeof(float));
    for (int64_t i = 0; i < k; ++i) std::memcpy(kept_values + i * sizeof(float), values + kept[i], sizeof(float));
    const auto* positions = reinterpret_cast<const uint32_t*>(kept.data());
    pack_produced(k, index_bits(numel), writer.claim(packed_bytes(k, index_bits(numel))),
                  [&](int64_t begin, int64_t end, uint32_t* codes) { std::copy(positions + begin, positions + end, codes); });
    return writer.finish();
  }

 private:
  size_t payload_bytes(int64_t numel) const {
    const int64_t k = kept_count(numel, static_cast<float>(ratio_));
    return sizeof(uint32_t) + sizeof(float) + sizeof(uint64_t) + static_cast<size_t>(k) * sizeof(float) +
           packed_bytes(k, index_bits(numel));
  }

  double ratio_;
  at::Generator generator_ = at::make_generator<at::CPUGeneratorImpl>(0x5eed0006);  // sampling only
  SelectionScratch scratch_;
  std::vector<int32_t> kept_;  // the kept positions of the last message
};

}  // namespace

std::unique_ptr<Codec> make_topk_codec(CodecParams& params) {
  const double ratio = params.real_above("ratio", 0.1, 0.0, 1.0);
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<TopKCodec>(ratio, error_feedback);
}

}  // namespace splitpipe
