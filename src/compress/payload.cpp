#include "payload.hpp"

#include "bit_pack.hpp"
#include "splitpipe/error.hpp"
#include "wire.hpp"

#include <ATen/ATen.h>

#include <cstring>
#include <limits>

namespace splitpipe {

int64_t shape_numel(c10::IntArrayRef shape) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

PayloadWriter::PayloadWriter(std::vector<uint8_t>& out, CodecId codec, c10::IntArrayRef shape, size_t payload_bytes)
    : out_(out), position_(WireHeader::kSize) {
  if (shape.size() > static_cast<size_t>(kMaxWireDims))
    throw Error(std::string("codec '") + codec_id_name(static_cast<uint8_t>(codec)) + "': cannot send a " +
                std::to_string(shape.size()) + "-D tensor, at most " + std::to_string(kMaxWireDims) + " dimensions");
  WireHeader header;
  header.codec = codec;
  header.dtype = static_cast<uint8_t>(at::kFloat);
  header.ndim = static_cast<uint8_t>(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) header.shape[d] = shape[d];
  header.payload_bytes = payload_bytes;
  out_.resize(message_bytes(payload_bytes));
  write_wire_header(header, out_.data());
}

uint8_t* PayloadWriter::reserve(size_t n) {
  // A codec announcing the wrong payload size is a bug in this library, not bad input.
  TORCH_CHECK(n <= out_.size() - position_, "codec wrote past its announced payload size");
  uint8_t* at = out_.data() + position_;
  position_ += n;
  return at;
}

void PayloadWriter::put_u32(uint32_t value) {
  uint8_t* at = reserve(4);
  for (int i = 0; i < 4; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

void PayloadWriter::put_u64(uint64_t value) {
  uint8_t* at = reserve(8);
  for (int i = 0; i < 8; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

void PayloadWriter::put_f32(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  put_u32(bits);
}

void PayloadWriter::put_tensor(const at::Tensor& values, at::ScalarType dtype) {
  const size_t n = static_cast<size_t>(values.numel()) * at::elementSize(dtype);
  uint8_t* at = reserve(n);
  if (n == 0) return;
  // Writing through a view of the output buffer fuses the cast and the copy into one pass.
  at::from_blob(at, values.sizes(), at::TensorOptions().dtype(dtype)).copy_(values);
}

void PayloadWriter::put_codes(const at::Tensor& codes, int bits) {
  TORCH_CHECK(codes.scalar_type() == at::kInt, "codes must be int32");
  const at::Tensor contiguous = codes.contiguous();
  uint8_t* at = reserve(packed_bytes(contiguous.numel(), bits));
  pack_bits(reinterpret_cast<const uint32_t*>(contiguous.data_ptr<int32_t>()), contiguous.numel(), bits, at);
}

uint8_t* PayloadWriter::claim(size_t n) { return reserve(n); }

size_t PayloadWriter::finish() const {
  TORCH_CHECK(position_ == out_.size(), "codec wrote ", position_ - WireHeader::kSize,
              " payload bytes but announced ", out_.size() - WireHeader::kSize);
  return out_.size();
}

PayloadReader::PayloadReader(const uint8_t* data, size_t size, CodecId codec)
    : data_(data), size_(size), position_(WireHeader::kSize), header_(read_wire_header(data, size)) {
  const auto got = static_cast<uint8_t>(header_.codec);
  if (header_.codec != codec) {
    const char* got_name = codec_id_name(got);
    fail(std::string("message was encoded by ") +
         (got_name ? std::string("codec '") + got_name + "'" : "an unknown codec") + " (id " + std::to_string(got) +
         "), not by this codec");
  }
  if (header_.dtype != static_cast<uint8_t>(at::kFloat))
    fail("unsupported dtype " + std::to_string(header_.dtype) + " (only float32 is sent)");
}

void PayloadReader::fail(const std::string& problem) const {
  const char* name = codec_id_name(static_cast<uint8_t>(header_.codec));
  throw FormatError(std::string(name ? name : "unknown-codec") + " message: " + problem);
}

const uint8_t* PayloadReader::take(size_t n, const char* what) {
  const size_t left = size_ - position_;
  if (n > left)
    fail(std::string("truncated payload: ") + what + " needs " + std::to_string(n) + " bytes, " +
         std::to_string(left) + " left");
  const uint8_t* at = data_ + position_;
  position_ += n;
  return at;
}

uint32_t PayloadReader::u32(const char* what) {
  const uint8_t* at = take(4, what);
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(at[i]) << (8 * i);
  return value;
}

uint64_t PayloadReader::u64(const char* what) {
  const uint8_t* at = take(8, what);
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(at[i]) << (8 * i);
  return value;
}

float PayloadReader::f32(const char* what) {
  const uint32_t bits = u32(what);
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

StoredValues PayloadReader::values(int64_t count, at::ScalarType stored, const char* what) {
  const size_t element = at::elementSize(stored);
  if (count < 0 || static_cast<uint64_t>(count) > (size_ - position_) / element)
    fail(std::string("truncated payload: ") + what + " needs " + std::to_string(count) + " values of " +
         std::to_string(element) + " bytes, " + std::to_string(size_ - position_) + " bytes left");
  return StoredValues{take(static_cast<size_t>(count) * element, what), count, stored};
}

at::Tensor PayloadReader::tensor(int64_t count, at::ScalarType stored, const char* what) {
  const StoredValues stored_values = values(count, stored, what);
  at::Tensor result = at::empty({count}, at::kFloat);
  stored_values.convert_to(result.data_ptr<float>());
  return result;
}

void StoredValues::convert_to(float* out) const {
  if (count == 0) return;
  const size_t element = at::elementSize(stored);
  const at::Tensor result = at::from_blob(out, {count}, at::kFloat);
  if (reinterpret_cast<uintptr_t>(data) % element == 0) {
    // Aligned: convert straight from the caller's buffer, one pass.
    result.copy_(at::from_blob(const_cast<uint8_t*>(data), {count}, at::TensorOptions().dtype(stored)));
  } else if (stored == at::kFloat) {
    std::memcpy(out, data, static_cast<size_t>(count) * element);
  } else {
    at::Tensor staged = at::empty({count}, at::TensorOptions().dtype(stored));
    std::memcpy(staged.data_ptr(), data, static_cast<size_t>(count) * element);
    result.copy_(staged);
  }
}

at::Tensor& reusable_output(at::Tensor& out, c10::IntArrayRef sizes) {
  // Only this handle may see the storage: another handle, a view (which shares the storage) or
  // an autograd graph that saved it would otherwise see its values change under it.
  const bool reusable = out.defined() && out.device().is_cpu() && out.scalar_type() == at::kFloat &&
                        out.is_contiguous() && out.sizes() == sizes && !out.requires_grad() &&
                        out.use_count() == 1 && out.storage().use_count() == 1;
  if (!reusable) out = at::empty(sizes, at::kFloat);
  return out;
}

const uint8_t* PayloadReader::packed_codes(int64_t count, int bits, const char* what) {
  // Bound the count by the bytes left before multiplying, so a huge header count cannot overflow.
  const size_t left = size_ - position_;
  if (count < 0 || static_cast<uint64_t>(count) / 8 > left)
    fail(std::string("truncated payload: ") + what + " needs " + std::to_string(count) + " codes of " +
         std::to_string(bits) + " bits, " + std::to_string(left) + " bytes left");
  return take(packed_bytes(count, bits), what);
}

at::Tensor PayloadReader::codes(int64_t count, int bits, const char* what) {
  const uint8_t* at = packed_codes(count, bits, what);
  at::Tensor result = at::empty({count}, at::kInt);
  unpack_bits(at, count, bits, reinterpret_cast<uint32_t*>(result.data_ptr<int32_t>()));
  return result;
}

const uint8_t* PayloadReader::bytes(size_t n, const char* what) { return take(n, what); }

void PayloadReader::expect_end() const {
  if (position_ != size_)
    fail(std::to_string(size_ - position_) + " unexpected bytes after the payload");
}

}  // namespace splitpipe
