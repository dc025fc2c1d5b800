// `kmeans`: a 2^bits-entry codebook fitted by Lloyd's algorithm, one code per value.
//
// Centroids start at the quantiles of a sample of at most kMaxSample values and are refined
// on that sample; in 1-D the nearest centroid is the cell between the midpoints of the sorted
// centroids. The full tensor is assigned once, at the end, in one pass that finds the last
// midpoint below each value (a vectorized scan up to 16 cells; a binary search above). The codebook
// adapts to clustered values where a uniform grid wastes levels on gaps.
//
// Payload:
//   u32 bits (1..8), u32 0
//   float32 codebook [2^bits], ascending
//   codes, bits bits each, bit-packed, row-major; decoded as codebook[code]
#include "bit_pack.hpp"
#include "bucket_search.hpp"
#include "error_feedback.hpp"
#include "payload.hpp"
#include "sampling.hpp"
#include "spec_parser.hpp"
#include "vector_clones.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <vector>

namespace splitpipe {
namespace {

at::Tensor midpoints(const at::Tensor& sorted_centroids) {
  const int64_t k = sorted_centroids.numel();
  return (sorted_centroids.narrow(0, 1, k - 1) + sorted_centroids.narrow(0, 0, k - 1)).mul_(0.5);
}

// The nearest centroid's code of each of n values, given the cells' starts (starts[j] is the
// midpoint between centroids j-1 and j): what at::bucketize against the midpoints gives, NaN
// included (last cell), in one pass that small codebooks run vectorized.
template <int Cells>
SPLITPIPE_VECTOR_CLONES void nearest_cells(const float* x, int64_t n, const float* starts, uint32_t* codes) {
  // The last start below v wins, and as the starts ascend that is v's cell. Local tables and
  // 32-bit selects only: GCC vectorizes the loop over values with the scan unrolled (it does
  // not when the cell index is the loop counter).
  float table[Cells];
  uint32_t cell_of[Cells];
  for (int j = 0; j < Cells; ++j) {
    table[j] = starts[j];
    cell_of[j] = static_cast<uint32_t>(j);
  }
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    uint32_t cell = 0;
#pragma GCC unroll 16
    for (int j = 1; j < Cells; ++j) cell = v > table[j] ? cell_of[j] : cell;
    const bool nan = v != v;
    codes[i] = nan ? cell_of[Cells - 1] : cell;
  }
}

void nearest_cells_searched(const float* x, int64_t n, const float* starts, int64_t cells, uint32_t* codes) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    codes[i] = static_cast<uint32_t>(v == v ? searched_bucket(v, starts, cells) : cells - 1);
  }
}

// Writes the packed codes of the n values of x against the sorted codebook.
void assign_and_pack(const float* x, int64_t n, const at::Tensor& codebook, int bits, uint8_t* out) {
  const int64_t cells = codebook.numel();
  std::vector<float> starts(cells, 0.0f);
  const at::Tensor mid = midpoints(codebook);
  std::copy(mid.data_ptr<float>(), mid.data_ptr<float>() + cells - 1, starts.begin() + 1);
  const float* s = starts.data();
  pack_produced(n, bits, out, [&](int64_t begin, int64_t end, uint32_t* codes) {
    switch (bits) {
      case 1: return nearest_cells<2>(x + begin, end - begin, s, codes);
      case 2: return nearest_cells<4>(x + begin, end - begin, s, codes);
      case 3: return nearest_cells<8>(x + begin, end - begin, s, codes);
      case 4: return nearest_cells<16>(x + begin, end - begin, s, codes);
      default: return nearest_cells_searched(x + begin, end - begin, s, cells, codes);
    }
  });
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

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
    PayloadReader reader(data, size, id());
    const uint32_t bits = reader.u32("bit width");
    const uint32_t reserved = reader.u32("reserved");
    if (bits < 1 || bits > 8 || reserved != 0) reader.fail("invalid bit width " + std::to_string(bits));
    const at::Tensor codebook = reader.tensor(int64_t{1} << bits, at::kFloat, "codebook");
    const int64_t count = reader.numel();
    const uint8_t* codes = reader.packed_codes(count, static_cast<int>(bits), "codes");
    reader.expect_end();
    float* decoded = reusable_output(out, reader.sizes()).data_ptr<float>();
    // Codes have `bits` bits, so every one indexes the 2^bits codebook.
    const float* centroid = codebook.data_ptr<float>();
    unpack_consumed(codes, count, static_cast<int>(bits), [&](int64_t begin, int64_t end, const uint32_t* block) {
      for (int64_t i = begin; i < end; ++i) decoded[i] = centroid[block[i - begin]];
    });
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    const int64_t k = int64_t{1} << bits_;
    const at::Tensor flat = x.reshape(-1);
    at::Tensor codebook = at::zeros({k}, x.options());
    if (flat.numel() > 0) codebook = fit_codebook(sorted_sample(flat, kMaxSample, generator_), k).contiguous();
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(x.numel()));
    writer.put_u32(static_cast<uint32_t>(bits_));
    writer.put_u32(0);
    writer.put_tensor(codebook, at::kFloat);
    const at::Tensor values = flat.contiguous();
    assign_and_pack(values.data_ptr<float>(), values.numel(), codebook, bits_, writer.claim(packed_bytes(values.numel(), bits_)));
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
