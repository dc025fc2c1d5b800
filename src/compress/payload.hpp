// Internal: the one way codecs write and read their messages. The writer sizes the buffer once
// and checks the codec filled exactly what it announced; the reader is a bounds-checked cursor,
// so a decoder cannot read past the bytes that arrived whatever the header or payload claim.
#pragma once
#include "splitpipe/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace splitpipe {

// Payload sections are raw host memory (float32, fp16 values, packed codes); the wire format is
// little-endian, so big-endian hosts would need byte swapping that nobody has written yet.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format assumes a little-endian host");

class PayloadWriter {
 public:
  // Resizes `out` to header + payload_bytes (reusing its capacity) and writes the header.
  PayloadWriter(std::vector<uint8_t>& out, CodecId codec, c10::IntArrayRef shape, size_t payload_bytes);

  void put_u32(uint32_t value);
  void put_u64(uint64_t value);
  void put_f32(float value);
  // Writes `values` converted to `dtype` (one pass: casts and non-contiguous inputs included).
  void put_tensor(const at::Tensor& values, at::ScalarType dtype);
  // Packs int32 codes (any shape, values < 2^bits) densely: packed_bytes(numel, bits) bytes.
  void put_codes(const at::Tensor& codes, int bits);
  // Hands out the next n bytes for the caller to fill completely (bit-packed codes).
  uint8_t* claim(size_t n);
  // Checks the codec wrote exactly the payload it announced; returns the message size.
  size_t finish() const;

 private:
  uint8_t* reserve(size_t n);
  std::vector<uint8_t>& out_;
  size_t position_;
};

// A run of values inside a received message (valid while the caller's buffer is).
struct StoredValues {
  const uint8_t* data;
  int64_t count;
  at::ScalarType stored;
  // Writes the count values as float32 to out (one pass; the message may be unaligned).
  void convert_to(float* out) const;
};

// The tensor a decoder writes into: `out` itself when its storage can be reused (see
// Codec::decode_into), else a new contiguous float32 tensor of `sizes` assigned to `out`.
// Call it only after the message has been checked, so a forged shape allocates nothing.
at::Tensor& reusable_output(at::Tensor& out, c10::IntArrayRef sizes);

class PayloadReader {
 public:
  // Parses the header and checks it names `codec` and float32.
  PayloadReader(const uint8_t* data, size_t size, CodecId codec);

  const WireHeader& header() const { return header_; }
  std::vector<int64_t> sizes() const { return header_.sizes(); }
  int64_t numel() const { return header_.numel(); }

  uint32_t u32(const char* what);
  uint64_t u64(const char* what);
  float f32(const char* what);
  // `count` values stored as `stored` (float32, float16 or bfloat16), checked to be there.
  StoredValues values(int64_t count, at::ScalarType stored, const char* what);
  // A new float32 tensor of values(count, stored, what).
  at::Tensor tensor(int64_t count, at::ScalarType stored, const char* what);
  // `count` packed codes of `bits` bits as a new int32 tensor (each < 2^bits).
  at::Tensor codes(int64_t count, int bits, const char* what);
  // The packed_bytes(count, bits) bytes of `count` codes, checked to be there (for the fused
  // decoders that unpack straight from the message).
  const uint8_t* packed_codes(int64_t count, int bits, const char* what);
  // The next n bytes (valid while the caller's buffer is).
  const uint8_t* bytes(size_t n, const char* what);
  // Throws unless the payload was consumed exactly.
  void expect_end() const;
  // Throws FormatError "<codec> message: <problem>".
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  const uint8_t* take(size_t n, const char* what);
  const uint8_t* data_;
  size_t size_;
  size_t position_;
  WireHeader header_;
};

// Bytes of a header plus a payload, for encoded_bytes.
constexpr size_t message_bytes(size_t payload_bytes) { return WireHeader::kSize + payload_bytes; }

// Element count of a shape, as the header will carry it.
int64_t shape_numel(c10::IntArrayRef shape);

}  // namespace splitpipe
