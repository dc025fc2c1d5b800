// Malformed messages: every decoder must throw FormatError (or, for bytes that happen to form a
// valid message, decode), never crash or read out of bounds. Run under AddressSanitizer too.
#include "splitpipe/codec.hpp"
#include "splitpipe/error.hpp"
#include "test_compress_helpers.hpp"

#include <gtest/gtest.h>

#include <random>

namespace splitpipe {
namespace {

using testing::encoded;
using testing::randn;

const std::vector<std::string> kSpecs = {
    "none", "fp16", "bf16", "quant:bits=3", "quant:bits=5,per=channel", "quant:bits=1,round=stochastic",
    "sortquant:bits=2,split=2", "sortquant:bits=5,split=0", "lowrank:rank=2", "lowrank:rank=2,factors=fp16",
    "topk:ratio=0.3", "kmeans:bits=2", "quant:bits=4,ef=1"};

// Small messages of each codec: a 3-D tensor and a 1-D one.
std::vector<std::vector<uint8_t>> sample_messages(Codec& codec) {
  return {encoded(codec, randn({2, 3, 5}, 41)), encoded(codec, randn({7}, 42))};
}

// Decodes a copy that owns exactly `size` bytes, so ASan sees any read past the end.
void decode_copy(Codec& codec, const std::vector<uint8_t>& bytes, size_t size) {
  const std::vector<uint8_t> copy(bytes.begin(), bytes.begin() + size);
  codec.decode(copy.data(), copy.size());
}

void expect_format_error(Codec& codec, const std::vector<uint8_t>& bytes, const std::string& what) {
  try {
    decode_copy(codec, bytes, bytes.size());
    ADD_FAILURE() << codec.spec() << ": " << what << " decoded without error";
  } catch (const FormatError&) {
  } catch (const std::exception& other) {
    ADD_FAILURE() << codec.spec() << ": " << what << " threw something else: " << other.what();
  }
}

// Either decodes or throws FormatError; anything else is a failure.
void expect_no_crash(Codec& codec, const std::vector<uint8_t>& bytes, const std::string& what) {
  try {
    decode_copy(codec, bytes, bytes.size());
  } catch (const FormatError&) {
  } catch (const std::exception& other) {
    ADD_FAILURE() << codec.spec() << ": " << what << " threw something else: " << other.what();
  }
}

void put_u64(std::vector<uint8_t>& bytes, size_t at, uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
}

TEST(CompressFuzz, EveryTruncationIsRejected) {
  for (const auto& spec : kSpecs) {
    auto codec = make_codec(spec);
    for (const auto& message : sample_messages(*codec)) {
      for (size_t size = 0; size < message.size(); ++size)
        expect_format_error(*codec, std::vector<uint8_t>(message.begin(), message.begin() + size),
                            "prefix of " + std::to_string(size) + " bytes");
      std::vector<uint8_t> longer = message;
      longer.push_back(0);
      expect_format_error(*codec, longer, "message with a trailing byte");
    }
  }
}

TEST(CompressFuzz, FlippedHeaderFieldsAreRejected) {
  for (const auto& spec : kSpecs) {
    auto codec = make_codec(spec);
    for (const auto& message : sample_messages(*codec)) {
      const int ndim = message[7];
      auto flipped = [&](auto&& change, const std::string& what) {
        std::vector<uint8_t> copy = message;
        change(copy);
        expect_format_error(*codec, copy, what);
      };
      for (size_t at = 0; at < 4; ++at) flipped([&](auto& m) { m[at] ^= 0x01; }, "magic byte " + std::to_string(at));
      for (int version : {0, 2, 255}) flipped([&](auto& m) { m[4] = version; }, "version");
      for (int id = 0; id < 256; ++id)
        if (id != message[5]) flipped([&](auto& m) { m[5] = id; }, "codec id " + std::to_string(id));
      for (int dtype : {0, 5, 7, 255}) flipped([&](auto& m) { m[6] = dtype; }, "dtype");
      for (int dims = 0; dims < 256; ++dims)
        if (dims != ndim) flipped([&](auto& m) { m[7] = dims; }, "ndim " + std::to_string(dims));
      for (int d = 0; d < kMaxWireDims; ++d) {
        int64_t size = 0;
        for (int i = 0; i < 8; ++i) size |= static_cast<int64_t>(message[8 + 8 * d + i]) << (8 * i);
        std::vector<int64_t> replacements = {-1, size * 2 + 1, int64_t{1} << 40, int64_t{1} << 62,
                                             std::numeric_limits<int64_t>::max()};
        if (d < ndim) replacements.push_back(0);
        for (int64_t value : replacements)
          flipped([&](auto& m) { put_u64(m, 8 + 8 * d, static_cast<uint64_t>(value)); },
                  "dim " + std::to_string(d) + " = " + std::to_string(value));
      }
      const uint64_t payload = message.size() - WireHeader::kSize;
      for (uint64_t value : {payload - 1, payload + 1, uint64_t{0}, ~uint64_t{0}, uint64_t{1} << 63})
        flipped([&](auto& m) { put_u64(m, 56, value); }, "payload length " + std::to_string(value));
    }
  }
}

TEST(CompressFuzz, RandomBytesNeverCrash) {
  std::mt19937_64 random(43);
  for (const auto& spec : kSpecs) {
    auto codec = make_codec(spec);
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint8_t> bytes(random() % 400);
      for (auto& byte : bytes) byte = static_cast<uint8_t>(random());
      expect_format_error(*codec, bytes, "random bytes");
    }
    // A valid header in front of random payload bytes (parameters, tables, codes, indices).
    for (const auto& message : sample_messages(*codec)) {
      for (int trial = 0; trial < 300; ++trial) {
        std::vector<uint8_t> copy = message;
        for (size_t at = WireHeader::kSize; at < copy.size(); ++at)
          if (trial % 2 == 0 || random() % 8 == 0) copy[at] = static_cast<uint8_t>(random());
        expect_no_crash(*codec, copy, "random payload");
      }
      // Every single payload byte set to extreme values.
      for (size_t at = WireHeader::kSize; at < message.size(); ++at) {
        for (uint8_t value : {0x00, 0x7f, 0x80, 0xff}) {
          std::vector<uint8_t> copy = message;
          copy[at] = value;
          expect_no_crash(*codec, copy, "payload byte " + std::to_string(at));
        }
      }
    }
  }
}

}  // namespace
}  // namespace splitpipe
