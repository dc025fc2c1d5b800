// The 64-byte message header. Fields are written byte by byte in little-endian order so the
// layout does not depend on struct padding or host byte order:
//   [0,4)   magic          u32
//   [4]     version        u8
//   [5]     codec id       u8
//   [6]     dtype          u8  (at::ScalarType of the decoded tensor)
//   [7]     ndim           u8
//   [8,56)  shape[6]       i64 each; entries past ndim are 0
//   [56,64) payload_bytes  u64
#include "splitpipe/codec.hpp"
#include "splitpipe/error.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

namespace splitpipe {
namespace {

constexpr size_t kShapeOffset = 8;
constexpr size_t kPayloadOffset = 56;
static_assert(kPayloadOffset + 8 == WireHeader::kSize, "header layout must fill 64 bytes");

void store_le(uint8_t* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t load_le(const uint8_t* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

}  // namespace

const char* codec_id_name(uint8_t id) {
  static const char* const names[] = {"none", "fp16", "bf16", "quant", "sortquant", "lowrank", "topk", "kmeans"};
  return id < sizeof(names) / sizeof(names[0]) ? names[id] : nullptr;
}

int64_t WireHeader::numel() const {
  int64_t count = 1;
  for (int d = 0; d < ndim && d < kMaxWireDims; ++d) count *= shape[d];
  return count;
}

std::vector<int64_t> WireHeader::sizes() const {
  return std::vector<int64_t>(shape, shape + std::min<int>(ndim, kMaxWireDims));
}

void write_wire_header(const WireHeader& header, uint8_t* out) {
  store_le(out, header.magic, 4);
  out[4] = header.version;
  out[5] = static_cast<uint8_t>(header.codec);
  out[6] = header.dtype;
  out[7] = header.ndim;
  for (int d = 0; d < kMaxWireDims; ++d)
    store_le(out + kShapeOffset + 8 * d, static_cast<uint64_t>(d < header.ndim ? header.shape[d] : 0), 8);
  store_le(out + kPayloadOffset, header.payload_bytes, 8);
}

WireHeader read_wire_header(const uint8_t* data, size_t size) {
  if (data == nullptr || size < WireHeader::kSize)
    throw FormatError("message truncated: " + std::to_string(size) + " bytes arrived, the header alone needs " +
                      std::to_string(WireHeader::kSize));
  WireHeader header;
  header.magic = static_cast<uint32_t>(load_le(data, 4));
  if (header.magic != kWireMagic)
    throw FormatError("not a splitpipe message: magic is " + hex32(header.magic) + ", expected " + hex32(kWireMagic) +
                      " (\"SPSP\")");
  header.version = data[4];
  if (header.version != kWireVersion)
    throw FormatError("unsupported message version " + std::to_string(header.version) + " (this build reads version " +
                      std::to_string(kWireVersion) + ")");
  header.codec = static_cast<CodecId>(data[5]);
  header.dtype = data[6];
  header.ndim = data[7];
  if (header.ndim > kMaxWireDims)
    throw FormatError("message header says ndim " + std::to_string(header.ndim) + ", at most " +
                      std::to_string(kMaxWireDims) + " dimensions are supported");
  int64_t numel = 1;
  for (int d = 0; d < kMaxWireDims; ++d) {
    const auto dim = static_cast<int64_t>(load_le(data + kShapeOffset + 8 * d, 8));
    if (d >= header.ndim) {
      if (dim != 0)
        throw FormatError("message header has a non-zero size " + std::to_string(dim) + " in unused dimension " +
                          std::to_string(d) + " (ndim " + std::to_string(header.ndim) + ")");
      continue;
    }
    if (dim < 0)
      throw FormatError("message header has a negative size " + std::to_string(dim) + " in dimension " +
                        std::to_string(d));
    if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / dim)
      throw FormatError("message header shape overflows: the element count does not fit in 64 bits");
    numel *= dim;
    header.shape[d] = dim;
  }
  header.payload_bytes = load_le(data + kPayloadOffset, 8);
  const uint64_t arrived = size - WireHeader::kSize;
  if (header.payload_bytes > arrived)
    throw FormatError("message truncated: header says " + std::to_string(header.payload_bytes) + " payload bytes, " +
                      std::to_string(arrived) + " arrived");
  if (header.payload_bytes < arrived)
    throw FormatError("message has trailing bytes: header says " + std::to_string(header.payload_bytes) +
                      " payload bytes, " + std::to_string(arrived) + " arrived");
  return header;
}

}  // namespace splitpipe
