// IDX files (the MNIST layout): magic 00 00 <dtype> <ndim>, ndim big-endian uint32 dims, data.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "byte_source.hpp"
#include "splitpipe/data.hpp"

namespace splitpipe {
namespace {

constexpr const char* kIdxFormat =
    "MNIST-style IDX: magic 0x00000803 for images or 0x00000801 for labels, big-endian uint32 "
    "dims, uint8 data, see http://yann.lecun.com/exdb/mnist/";
constexpr uint8_t kUint8Dtype = 0x08;  // the only IDX element type the datasets we read use

uint32_t big_endian_u32(const uint8_t* bytes) {
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 | uint32_t{bytes[3]};
}

std::string hex_byte(uint8_t value) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", value);
  return text;
}

}  // namespace

at::Tensor read_idx(const std::string& path) {
  using data_detail::throw_format_error;
  const std::vector<uint8_t> bytes = data_detail::read_file_bytes(path, kIdxFormat);
  if (bytes.size() < 4) {
    throw_format_error(path, "only " + std::to_string(bytes.size()) + " bytes, too short for an IDX magic number",
                       kIdxFormat);
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    char magic[16];
    std::snprintf(magic, sizeof magic, "0x%08x", big_endian_u32(bytes.data()));
    throw_format_error(path, std::string("bad magic number ") + magic + ", not an IDX file", kIdxFormat);
  }
  if (bytes[2] != kUint8Dtype) {
    throw_format_error(path, "unsupported IDX element type " + hex_byte(bytes[2]) + " (only 0x08, uint8, is read)",
                       kIdxFormat);
  }
  const size_t ndim = bytes[3];
  if (ndim == 0) throw_format_error(path, "IDX header declares 0 dimensions", kIdxFormat);
  const size_t header_bytes = 4 + 4 * ndim;
  if (bytes.size() < header_bytes) {
    throw_format_error(path,
                       "truncated IDX header: " + std::to_string(ndim) + " dimensions need " +
                           std::to_string(header_bytes) + " header bytes, found " + std::to_string(bytes.size()),
                       kIdxFormat);
  }

  std::vector<int64_t> dims(ndim);
  for (size_t d = 0; d < ndim; ++d) dims[d] = big_endian_u32(bytes.data() + 4 + 4 * d);
  // Saturate the product so a corrupt header with huge dims reads as truncated, not as overflow.
  constexpr uint64_t kMaxElements = uint64_t{1} << 48;
  uint64_t elements = 1;
  for (const int64_t dim : dims) {
    const auto extent = static_cast<uint64_t>(dim);
    elements = extent != 0 && elements > kMaxElements / extent ? kMaxElements : elements * extent;
  }

  const uint64_t found = bytes.size() - header_bytes;
  if (found < elements) {
    throw_format_error(path,
                       "truncated IDX file: header promises " + std::to_string(elements) + " bytes of data, found " +
                           std::to_string(found),
                       kIdxFormat);
  }
  if (found > elements) {
    throw_format_error(path,
                       "IDX file too long: header promises " + std::to_string(elements) + " bytes of data, found " +
                           std::to_string(found),
                       kIdxFormat);
  }

  at::Tensor data = torch::empty(dims, torch::kUInt8);
  std::memcpy(data.data_ptr<uint8_t>(), bytes.data() + header_bytes, elements);
  return data;
}

}  // namespace splitpipe
