// Internal: error feedback (EF), shared by the lossy codecs that take `ef=1`.
//
// With EF the encoder adds the residual left by the previous message of the same stream
// (when the shape matches) before compressing, and keeps the new residual
// (input + old residual) - decoded. On gradients this makes the compression error not
// accumulate across steps: what one step loses is sent on the next, so the sum of what was
// applied tracks the sum of the true gradients. On activations it is not meaningful: the
// micro-batches of a stream are different samples, so last step's error has nothing to do
// with this step's tensor.
#pragma once
#include "splitpipe/codec.hpp"

#include <map>
#include <string>

namespace splitpipe {

class FeedbackCodec : public Codec {
 public:
  size_t encode(const at::Tensor& x, std::vector<uint8_t>& out, int stream) final;

 protected:
  explicit FeedbackCodec(bool error_feedback) : error_feedback_(error_feedback) {}
  // Encodes a float32 tensor (error feedback already applied).
  virtual size_t encode_values(const at::Tensor& x, std::vector<uint8_t>& out, int stream) = 0;
  // ",ef=0" or ",ef=1", for spec().
  std::string feedback_spec() const { return error_feedback_ ? ",ef=1" : ",ef=0"; }

 private:
  bool error_feedback_;
  std::map<int, at::Tensor> residuals_;  // per stream
  std::map<int, at::Tensor> decoded_;    // per stream: what the receiver reconstructs, kept for reuse
};

}  // namespace splitpipe
