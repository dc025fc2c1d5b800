// `lowrank`: a rank-R factorisation P Q^T of the tensor seen as a matrix, PowerSGD style.
//
// The tensor is viewed as M = [shape[0], numel/shape[0]] (batch rows, everything else as
// columns). Each message runs `iters` rounds of subspace (power) iteration:
//   P = orth(M Q), Q = M^T P
// with orth the reduced QR. Q starts from the previous message of the same stream when the
// shape matches (warm start: one round per message tracks a slowly changing subspace), else
// from a Gaussian draw of the codec's own generator. R is clamped to min(rows, cols).
// Tensors of fewer than 2 dims, or empty ones, are sent raw (there is no matrix to factor).
//
// Payload:
//   u32 mode (0 = raw, 1 = factors), u32 rank R, u32 factor type (0 = fp32, 1 = fp16), u32 0
//   mode 0: float32 [numel]
//   mode 1: P [rows][R] then Q [cols][R] in the factor type; decoded as P Q^T
#include "error_feedback.hpp"
#include "payload.hpp"
#include "spec_parser.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <map>

namespace splitpipe {
namespace {

enum : uint32_t { kRaw = 0, kFactors = 1 };

struct MatrixView {
  bool factored;
  int64_t rows, cols, rank;
};

class LowRankCodec final : public FeedbackCodec {
 public:
  LowRankCodec(int rank, int iters, bool half_factors, bool error_feedback)
      : FeedbackCodec(error_feedback), rank_(rank), iters_(iters), half_factors_(half_factors),
        generator_(at::make_generator<at::CPUGeneratorImpl>(0x5eed0005)) {}

  CodecId id() const override { return CodecId::LowRank; }

  std::string spec() const override {
    return "lowrank:rank=" + std::to_string(rank_) + ",iters=" + std::to_string(iters_) +
           ",factors=" + (half_factors_ ? "fp16" : "fp32") + feedback_spec();
  }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(payload_bytes(shape));
  }

  at::Tensor decode(const uint8_t* data, size_t size) override {
    PayloadReader reader(data, size, id());
    const uint32_t mode = reader.u32("mode");
    const uint32_t rank = reader.u32("rank");
    const uint32_t factor_type = reader.u32("factor type");
    const uint32_t reserved = reader.u32("reserved");
    const MatrixView view = matrix_view(reader.sizes(), rank);
    const bool consistent = mode == (view.factored ? kFactors : kRaw) && factor_type <= 1 && reserved == 0 &&
                            (view.factored ? rank >= 1 && view.rank == static_cast<int64_t>(rank) : rank == 0);
    if (!consistent)
      reader.fail("inconsistent parameters: mode " + std::to_string(mode) + ", rank " + std::to_string(rank) +
                  ", factor type " + std::to_string(factor_type));
    if (!view.factored) {
      at::Tensor values = reader.tensor(reader.numel(), at::kFloat, "raw values");
      reader.expect_end();
      return values.view(reader.sizes());
    }
    const at::ScalarType stored = factor_type == 1 ? at::kHalf : at::kFloat;
    const at::Tensor p = reader.tensor(view.rows * view.rank, stored, "P factor").view({view.rows, view.rank});
    const at::Tensor q = reader.tensor(view.cols * view.rank, stored, "Q factor").view({view.cols, view.rank});
    reader.expect_end();
    return p.mm(q.t()).view(reader.sizes());
  }

 protected:
  size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int stream) override {
    const MatrixView view = matrix_view(x.sizes(), rank_);
    PayloadWriter writer(out, id(), x.sizes(), payload_bytes(x.sizes()));
    writer.put_u32(view.factored ? kFactors : kRaw);
    writer.put_u32(static_cast<uint32_t>(view.rank));
    writer.put_u32(half_factors_ ? 1 : 0);
    writer.put_u32(0);
    if (!view.factored) {
      writer.put_tensor(x, at::kFloat);
      return writer.finish();
    }
    const at::Tensor m = x.reshape({view.rows, view.cols});
    at::Tensor& q = warm_q_[stream];
    if (!q.defined() || q.size(0) != view.cols || q.size(1) != view.rank)
      q = at::randn({view.cols, view.rank}, generator_, x.options());
    at::Tensor p;
    for (int round = 0; round < iters_; ++round) {
      p = std::get<0>(at::linalg_qr(m.mm(q)));
      q = m.t().mm(p);
    }
    const at::ScalarType stored = half_factors_ ? at::kHalf : at::kFloat;
    writer.put_tensor(p, stored);
    writer.put_tensor(q, stored);
    return writer.finish();
  }

 private:
  static MatrixView matrix_view(c10::IntArrayRef shape, int64_t rank) {
    const int64_t numel = shape_numel(shape);
    if (shape.size() < 2 || numel == 0) return {false, 0, 0, 0};
    const int64_t rows = shape[0], cols = numel / rows;
    return {true, rows, cols, std::min({rank, rows, cols})};
  }

  size_t payload_bytes(c10::IntArrayRef shape) const {
    const MatrixView view = matrix_view(shape, rank_);
    const size_t values = view.factored ? static_cast<size_t>((view.rows + view.cols) * view.rank)
                                        : static_cast<size_t>(shape_numel(shape));
    const size_t value_bytes = view.factored && half_factors_ ? 2 : 4;
    return 4 * sizeof(uint32_t) + values * value_bytes;
  }

  int rank_;
  int iters_;
  bool half_factors_;
  at::Generator generator_;            // cold-start Q; never the global generator
  std::map<int, at::Tensor> warm_q_;  // per stream: Q of the last message
};

}  // namespace

std::unique_ptr<Codec> make_lowrank_codec(CodecParams& params) {
  const int rank = params.integer("rank", 8, 1, 4096);
  const int iters = params.integer("iters", 1, 1, 100);
  const bool half_factors = params.choice("factors", "fp32", {"fp32", "fp16"}) == "fp16";
  const bool error_feedback = params.flag("ef", false);
  return std::make_unique<LowRankCodec>(rank, iters, half_factors, error_feedback);
}

}  // namespace splitpipe
