// Boundary compression. A Codec turns a float32 tensor into a self-describing byte message
// and back. Every message starts with a WireHeader, so a receiver can check what arrived
// before trusting a single payload byte.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace splitpipe {

enum class CodecId : uint8_t {
  None = 0,       // raw float32
  Fp16 = 1,
  Bf16 = 2,
  Quant = 3,      // uniform quantization, bit-packed codes
  SortQuant = 4,  // quantile buckets + per-bucket uniform quantization
  LowRank = 5,    // randomized SVD / power iteration factors
  TopK = 6,       // values + packed indices
  KMeans = 7,     // codebook + packed codes
};

constexpr uint32_t kWireMagic = 0x50535053;  // "SPSP" little-endian
constexpr uint8_t kWireVersion = 1;
constexpr int kMaxWireDims = 6;

// Fixed-size, little-endian header at the start of every message (64 bytes on the wire).
struct WireHeader {
  uint32_t magic = kWireMagic;
  uint8_t version = kWireVersion;
  CodecId codec = CodecId::None;
  uint8_t dtype = 0;  // at::ScalarType of the decoded tensor (float32 today)
  uint8_t ndim = 0;
  int64_t shape[kMaxWireDims] = {0, 0, 0, 0, 0, 0};
  uint64_t payload_bytes = 0;  // bytes after the header, codec parameters included

  static constexpr size_t kSize = 64;
  int64_t numel() const;
  std::vector<int64_t> sizes() const;
};

// Serialises the header into out[0..kSize). out must have room.
void write_wire_header(const WireHeader& header, uint8_t* out);
// Parses and validates (magic, version, ndim, non-negative dims, payload fits in size).
// Throws FormatError saying what is wrong.
WireHeader read_wire_header(const uint8_t* data, size_t size);

class Codec {
 public:
  virtual ~Codec() = default;
  virtual CodecId id() const = 0;
  // Canonical spec with every parameter spelled out, e.g. "quant:bits=8,per=tensor,round=nearest".
  virtual std::string spec() const = 0;
  // The exact size of encode()'s output for a float32 tensor of this shape, header included:
  // it depends on the shape only, so a receiver posts a receive of exactly this size (the
  // data plane has no probes; tests/unit/test_compress_format.cpp holds every codec to it).
  virtual size_t encoded_bytes(c10::IntArrayRef shape) const = 0;
  // Encodes x (float32, any layout) into out, resizing it (its capacity is reused across calls).
  // `stream` names the message stream (e.g. the micro-batch index) for codecs that keep state
  // between messages (error-feedback residuals, low-rank warm starts). Returns bytes written.
  virtual size_t encode(const at::Tensor& x, std::vector<uint8_t>& out, int stream = 0) = 0;
  // Decodes a message produced by a codec of the same kind into `out`. A receiver that keeps
  // `out` between messages gets its storage reused when it is a contiguous float32 CPU tensor of
  // the message's shape that nothing else references (no other handle, no view, no autograd
  // use): decoding then writes into warm pages instead of faulting in fresh ones (a 100 MB
  // decode ran at 0.2 GB/s on fresh pages). Otherwise `out` is replaced by a new tensor.
  // Throws FormatError for anything malformed, never reading out of bounds whatever the bytes;
  // `out`'s values are then unspecified.
  virtual void decode_into(const uint8_t* data, size_t size, at::Tensor& out) = 0;
  // decode_into a new tensor.
  at::Tensor decode(const uint8_t* data, size_t size) {
    at::Tensor out;
    decode_into(data, size, out);
    return out;
  }
};

// Builds a codec from a spec such as "none", "fp16", "quant:bits=4", "sortquant:bits=6,split=2".
// Throws UsageError naming the unknown codec / parameter / out-of-range value and what is allowed.
std::unique_ptr<Codec> make_codec(const std::string& spec);

// Codec names and a one-line summary of their parameters, for --help.
std::vector<std::pair<std::string, std::string>> codec_catalogue();

}  // namespace splitpipe
