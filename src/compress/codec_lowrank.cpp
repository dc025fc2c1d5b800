// `lowrank`: rank-R factorisations P Q^T of the tensor seen as matrices, PowerSGD style.
//
// view=sample (the default; the research's PCA/PowerSVD): every sample is its own matrix
// [shape[1], prod(shape[2..])]: channels x pixels of an image activation, tokens x width of a
// sequence. view=batch: one matrix [shape[0], numel/shape[0]] (samples as rows), whose rank is
// capped by the micro-batch size. 2-D tensors have no per-sample matrix and use the batch view.
// Each message runs `iters` rounds of (batched) subspace iteration:
//   P = orth(M Q), Q = M^T P
// with orth the reduced QR. Q starts from the previous message of the same stream when the
// shape matches (warm start: one round per message tracks a slowly changing subspace), else
// from a Gaussian draw of the codec's own generator. R is clamped to min(rows, cols).
// Tensors of fewer than 2 dims, or empty ones, are sent raw (there is no matrix to factor).
//
// Payload:
//   u32 mode (0 = raw, 1 = one matrix, 2 = one per sample), u32 rank R,
//   u32 factor type (0 = fp32, 1 = fp16), u32 0
//   mode 0: float32 [numel]
//   mode 1, 2: P [matrices][rows][R] then Q [matrices][cols][R] in the factor type; decoded as P Q^T
#include "error_feedback.hpp"
#include "payload.hpp"
#include "spec_parser.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <map>

namespace splitpipe {
namespace {

enum : uint32_t { kRaw = 0, kBatchMatrix = 1, kSampleMatrices = 2 };

struct MatrixView {
  uint32_t mode;
  int64_t matrices, rows, cols, rank;
  bool factored() const { return mode != kRaw; }
};

class LowRankCodec final : public FeedbackCodec {
 public:
  LowRankCodec(int rank, int iters, bool per_sample, bool half_factors, bool error_feedback)
      : FeedbackCodec(error_feedback), rank_(rank), iters_(iters), per_sample_(per_sample), half_factors_(half_factors),
        generator_(at::make_generator<at::CPUGeneratorImpl>(0x5eed0005)) {}

  CodecId id() const override { return CodecId::LowRank; }

  std::string spec() const override {
    return "lowrank:rank=" + std::to_string(rank_) + ",iters=" + std::to_string(iters_) +
           ",view=" + (per_sample_ ? "sample" : "batch") + ",factors=" + (half_factors_ ? "fp16" : "fp32") +
           feedback_spec();
  }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape));
  }

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
    PayloadReader reader(data, size, id());
    const uint32_t mode = reader.u32("mode");
    const uint32_t rank = reader.u32("rank");
    const uint32_t factor_type = reader.u32("factor type");
    const uint32_t reserved = reader.u32("reserved");
    if (mode > kSampleMatrices) reader.fail("unknown mode " + std::to_string(mode));
    const MatrixView view = matrix_view(reader.sizes(), rank, mode == kSampleMatrices);
    const bool consistent = mode == view.mode && factor_type <= 1 && reserved == 0 &&
                            (view.factored() ? rank >= 1 && view.rank == static_cast<int64_t>(rank) : rank == 0);
    if (!consistent)
      reader.fail("inconsistent parameters: mode " + std::to_string(mode) + ", rank " + std::to_string(rank) +
                  ", factor type " + std::to_string(factor_type));
    if (!view.factored()) {
      const StoredValues values = reader.values(reader.numel(), at::kFloat, "raw values");
      reader.expect_end();
      values.convert_to(reusable_output(out, reader.sizes()).data_ptr<float>());
      return;
    }
    const at::ScalarType stored = factor_type == 1 ? at::kHalf : at::kFloat;
    const at::Tensor p = reader.tensor(view.matrices * view.rows * view.rank, stored, "P factor")
                             .view({view.matrices, view.rows, view.rank});
    const at::Tensor q = reader.tensor(view.matrices * view.cols * view.rank, stored, "Q factor")
                             .view({view.matrices, view.cols, view.rank});
    reader.expect_end();
    at::Tensor product = reusable_output(out, reader.sizes()).view({view.matrices, view.rows, view.cols});
    at::bmm_out(product, p, q.transpose(1, 2));
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int stream) override {
    const MatrixView view = matrix_view(x.sizes(), rank_, per_sample_);
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(x.sizes()));
    writer.put_u32(view.mode);
    writer.put_u32(static_cast<uint32_t>(view.rank));
    writer.put_u32(half_factors_ ? 1 : 0);
    writer.put_u32(0);
    if (!view.factored()) {
      writer.put_tensor(x, at::kFloat);
      return writer.finish();
    }
    const at::Tensor m = x.reshape({view.matrices, view.rows, view.cols});
    at::Tensor& q = warm_q_[stream];
    const std::vector<int64_t> q_shape{view.matrices, view.cols, view.rank};
    if (!q.defined() || q.sizes() != c10::IntArrayRef(q_shape)) q = at::randn(q_shape, generator_, x.options());
    at::Tensor p;
    for (int round = 0; round < iters_; ++round) {
      p = std::get<0>(at::linalg_qr(m.bmm(q)));
      q = m.transpose(1, 2).bmm(p);
    }
    const at::ScalarType stored = half_factors_ ? at::kHalf : at::kFloat;
    writer.put_tensor(p, stored);
    writer.put_tensor(q, stored);
    return writer.finish();
  }

 private:
  static MatrixView matrix_view(c10::IntArrayRef shape, int64_t rank, bool per_sample) {
    const int64_t numel = shape_numel(shape);
    if (shape.size() < 2 || numel == 0) return {kRaw, 0, 0, 0, 0};
    if (per_sample && shape.size() >= 3) {
      const int64_t rows = shape[1], cols = numel / (shape[0] * rows);
      return {kSampleMatrices, shape[0], rows, cols, std::min({rank, rows, cols})};
    }
    const int64_t rows = shape[0], cols = numel / rows;
    return {kBatchMatrix, 1, rows, cols, std::min({rank, rows, cols})};
  }

  size_t payload_bytes(c10::IntArrayRef shape) const {
    const MatrixView view = matrix_view(shape, rank_, per_sample_);
    const size_t values = view.factored()
                              ? static_cast<size_t>(view.matrices * (view.rows + view.cols) * view.rank)
                              : static_cast<size_t>(shape_numel(shape));
    const size_t value_bytes = view.factored() && half_factors_ ? 2 : 4;
    return 4 * sizeof(uint32_t) + values * value_bytes;
  }

  int rank_;
  int iters_;
  bool per_sample_;
  bool half_factors_;
  at::Generator generator_;            // cold-start Q; never the global generator
  std::map<int, at::Tensor> warm_q_;  // per stream: Q of the last message
};

}  // namespace

std::unique_ptr<Codec> make_lowrank_codec(CodecParams& params) {
  const int rank = params.integer("rank", 8, 1, 4096);
  const int iters = params.integer("iters", 1, 1, 100);
  const bool per_sample = params.choice("view", "sample", {"sample", "batch"}) == "sample";
  const bool half_factors = params.choice("factors", "fp32", {"fp32", "fp16"}) == "fp16";
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<LowRankCodec>(rank, iters, per_sample, half_factors, error_feedback);
}

}  // namespace splitpipe
