// `none`: the float32 values as they are, for a baseline and for exact runs.
// Payload: float32[numel], row-major.
#include "payload.hpp"
#include "spec_parser.hpp"

#include <ATen/ATen.h>

namespace splitpipe {
namespace {

class NoneCodec final : public Codec {
 public:
  CodecId id() const override { return CodecId::None; }
  std::string spec() const override { return "none"; }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(static_cast<size_t>(shape_numel(shape)) * sizeof(float));
  }

  size_t encode(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    PayloadWriter writer(out, id(), x.sizes(), static_cast<size_t>(x.numel()) * sizeof(float));
    writer.put_tensor(x, at::kFloat);
    return writer.finish();
  }

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
    PayloadReader reader(data, size, id());
    const StoredValues values = reader.values(reader.numel(), at::kFloat, "values");
    reader.expect_end();
    values.convert_to(reusable_output(out, reader.sizes()).data_ptr<float>());
  }
};

}  // namespace

std::unique_ptr<Codec> make_none_codec(CodecParams& /*params*/) { return std::make_unique<NoneCodec>(); }

}  // namespace splitpipe
