#include "error_feedback.hpp"

#include <ATen/ATen.h>

namespace splitpipe {

size_t FeedbackCodec::encode(const at::Tensor& x, std::vector<uint8_t>& out, int stream) {
  const at::Tensor values = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  if (!error_feedback_) return encode_values(values, out, stream);
  at::Tensor& residual = residuals_[stream];
  const at::Tensor corrected =
      residual.defined() && residual.sizes() == values.sizes() ? values + residual : values;
  const size_t bytes = encode_values(corrected, out, stream);
  // Measure the residual on what the receiver will actually reconstruct.
  at::Tensor& decoded = decoded_[stream];
  decode_into(out.data(), bytes, decoded);
  residual = corrected - decoded.view(corrected.sizes());
  return bytes;
}

}  // namespace splitpipe
