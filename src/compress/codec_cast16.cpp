// `fp16` and `bf16`: the values cast to a 16-bit float type, half the bytes of float32.
// fp16 keeps 11 significant bits but overflows above 65504; bf16 keeps float32's range with
// 8 significant bits. Payload: 16-bit values [numel], row-major.
#include "payload.hpp"
#include "spec_parser.hpp"

#include <ATen/ATen.h>

namespace splitpipe {
namespace {

class Cast16Codec final : public Codec {
 public:
  Cast16Codec(CodecId id, at::ScalarType wire_type, std::string name)
      : id_(id), wire_type_(wire_type), name_(std::move(name)) {}

  CodecId id() const override { return id_; }
  std::string spec() const override { return name_; }

  size_t encoded_bytes(c10::IntArrayRef shape) const override {
    return message_bytes(static_cast<size_t>(shape_numel(shape)) * 2);
  }

  size_t encode(const at::Tensor& x, std::vector<uint8_t>& out, int /*stream*/) override {
    PayloadWriter writer(out, id_, x.sizes(), static_cast<size_t>(x.numel()) * 2);
    writer.put_tensor(x, wire_type_);
    return writer.finish();
  }

  void decode_into(const uint8_t* data, size_t size, at::Tensor& out) override {
    PayloadReader reader(data, size, id_);
    const StoredValues values = reader.values(reader.numel(), wire_type_, "values");
    reader.expect_end();
    values.convert_to(reusable_output(out, reader.sizes()).data_ptr<float>());
  }

 private:
  CodecId id_;
  at::ScalarType wire_type_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Codec> make_fp16_codec(CodecParams& /*params*/) {
  return std::make_unique<Cast16Codec>(CodecId::Fp16, at::kHalf, "fp16");
}

std::unique_ptr<Codec> make_bf16_codec(CodecParams& /*params*/) {
  return std::make_unique<Cast16Codec>(CodecId::Bf16, at::kBFloat16, "bf16");
}

}  // namespace splitpipe
