// `kmeans`: a 2^bits-entry codebook fitted by Lloyd's algorithm, one code per value.
//
// Centroids start at the quantiles of a sample of at most kMaxSample values and are refined
// on that sample; in 1-D the nearest centroid is found by bucketize against the midpoints of
// the sorted centroids, O(n log k) instead of O(n k). The full tensor is assigned once, at the
// end. The codebook adapts to clustered values where a uniform grid wastes levels on gaps.
//
// Payload:
//   u32 bits (1..8), u32 0
//   float32 codebook [2^bits], ascending
//   codes, bits bits each, bit-packed, row-major; decoded as codebook[code]
#include "bit_pack.hpp"
#include "error_feedback.hpp"
#include "payload.hpp"
#include "sampling.hpp"
#include "spec_parser.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace splitpipe {
namespace {

at::Tensor midpoints(const at::Tensor& sorted_centroids) {
  const int64_t k = sorted_centroids.numel();
  return (sorted_centroids.narrow(0, 1, k - 1) + sorted_centroids.narrow(0, 0, k - 1)).mul_(0.5);
}

class KMeansCodec final : public FeedbackCodec {
 public:
  KMeansCodec(int bits, int iters, bool error_feedback)
      : FeedbackCodec(error_feedback), bits_(bits), iters_(iters),
        generator_(at::make_generator<at::CPUGeneratorImpl>(0x5eed0007)) {}

  CodecId id() const override { return CodecId::KMeans; }
  std::string spec() const override {
    return "kmeans:bits=" + std::to_string(bits_) + ",iters=" + std::to_string(iters_) + feedback_spec();
  }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape_numel(shape)));
  }

  at::Tensor decode(const uint8_t* data, size_t size) override {
    PayloadReader reader(data, size, id());
    const uint32_t bits = reader.u32("bit width");
    const uint32_t reserved = reader.u32("reserved");
    if (bits < 1 || bits > 8 || reserved != 0) reader.fail("invalid bit width " + std::to_string(bits));
    const at::Tensor codebook = reader.tensor(int64_t{1} << bits, at::kFloat, "codebook");
    const at::Tensor codes = reader.codes(reader.numel(), static_cast<int>(bits), "codes");
    reader.expect_end();
    // Codes have `bits` bits, so every one indexes the 2^bits codebook.
    return codebook.index_select(0, codes).view(reader.sizes());
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const int64_t k = int64_t{1} << bits_;
    const at::Tensor flat = x.reshape(-1);
    at::Tensor codebook = at::zeros({k}, x.options());
    at::Tensor codes = at::zeros({0}, x.options().dtype(at::kInt));
    if (flat.numel() > 0) {
      codebook = fit_codebook(sorted_sample(flat, kMaxSample, generator_), k);
      codes = at::bucketize(flat, midpoints(codebook), /*out_int32=*/true);
    }
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(x.numel()));
    writer.put_u32(static_cast<uint32_t>(bits_));
    writer.put_u32(0);
    writer.put_tensor(codebook, at::kFloat);
    writer.put_codes(codes, bits_);
    return writer.finish();
  }

 private:
  at::Tensor fit_codebook(const at::Tensor& sorted, int64_t k) const {
    const int64_t m = sorted.numel();
    // Initial centroids at the mid-quantiles (j + 1/2) / k.
    const at::Tensor ranks = at::arange(k, at::kLong).mul_(2).add_(1).mul_(m).div_(2 * k, "floor");
    at::Tensor centroids = sorted.index_select(0, ranks);
    const at::Tensor ones = at::ones_like(sorted);
    for (int round = 0; round < iters_; ++round) {
      const at::Tensor cell = at::bucketize(sorted, midpoints(centroids));
      const at::Tensor sums = at::zeros({k}, sorted.options()).index_add_(0, cell, sorted);
      const at::Tensor counts = at::zeros({k}, sorted.options()).index_add_(0, cell, ones);
      // An empty cell keeps its centroid rather than collapsing to 0/0.
      const at::Tensor updated = std::get<0>(at::where(counts > 0, sums / counts.clamp_min(1), centroids).sort());
      if (updated.equal(centroids)) break;
      centroids = updated;
    }
    return centroids;
  }

  size_t payload_bytes(int64_t numel) const {
    return 2 * sizeof(uint32_t) + (size_t{1} << bits_) * sizeof(float) + packed_bytes(numel, bits_);
  }

  int bits_;
  int iters_;
  at::Generator generator_;  // sampling; never the global generator
};

}  // namespace

std::unique_ptr<Codec> make_kmeans_codec(CodecParams& params) {
  const int bits = params.integer("bits", 4, 1, 8);
  const int iters = params.integer("iters", 20, 0, 1000);
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<KMeansCodec>(bits, iters, error_feedback);
}

}  // namespace splitpipe
