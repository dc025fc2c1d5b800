// Shared helpers of the test_compress binary.
#pragma once
#include "splitpipe/codec.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <vector>

namespace splitpipe::testing {

inline at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

inline at::Tensor randn(at::IntArrayRef shape, uint64_t seed) {
  at::Generator generator = seeded(seed);
  return at::randn(shape, generator, at::kFloat);
}

inline std::vector<uint8_t> encoded(Codec& codec, const at::Tensor& x, int stream = 0) {
  std::vector<uint8_t> bytes;
  const size_t size = codec.encode(x, bytes, stream);
  EXPECT_EQ(size, bytes.size());
  return bytes;
}

inline at::Tensor round_trip(Codec& codec, const at::Tensor& x, int stream = 0) {
  const std::vector<uint8_t> bytes = encoded(codec, x, stream);
  at::Tensor decoded = codec.decode(bytes.data(), bytes.size());
  EXPECT_EQ(decoded.sizes(), x.sizes());
  return decoded;
}

inline double relative_error(const at::Tensor& x, const at::Tensor& decoded) {
  return (x - decoded).norm().item<double>() / x.norm().item<double>();
}

}  // namespace splitpipe::testing
