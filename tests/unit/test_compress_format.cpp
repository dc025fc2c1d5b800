// Wire header, bit packing, message sizes and spec parsing.
#include "../../src/compress/bit_pack.hpp"
#include "splitpipe/codec.hpp"
#include "splitpipe/error.hpp"
#include "test_compress_helpers.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace splitpipe {
namespace {

using testing::encoded;
using testing::randn;

template <typename Error, typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}

TEST(CompressWireHeader, RoundTripsAndReportsWhatIsWrong) {
  WireHeader header;
  header.codec = CodecId::Quant;
  header.dtype = static_cast<uint8_t>(at::kFloat);
  header.ndim = 3;
  header.shape[0] = 4;
  header.shape[1] = 5;
  header.shape[2] = 6;
  header.payload_bytes = 10;
  std::vector<uint8_t> bytes(WireHeader::kSize + 10);
  write_wire_header(header, bytes.data());
  EXPECT_EQ(bytes[0], 0x53);  // little-endian magic: "SPSP"
  const WireHeader back = read_wire_header(bytes.data(), bytes.size());
  EXPECT_EQ(back.codec, CodecId::Quant);
  EXPECT_EQ(back.sizes(), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(back.numel(), 120);
  EXPECT_EQ(back.payload_bytes, 10u);

  EXPECT_NE(error_message<FormatError>([&] { read_wire_header(bytes.data(), 100 - 36); })
                .find("header says 10 payload bytes, 0 arrived"),
            std::string::npos);
  EXPECT_NE(error_message<FormatError>([&] { read_wire_header(bytes.data(), 20); }).find("truncated"),
            std::string::npos);
  auto corrupt = [&](size_t at, uint8_t value) {
    std::vector<uint8_t> copy = bytes;
    copy[at] = value;
    return error_message<FormatError>([&] { read_wire_header(copy.data(), copy.size()); });
  };
  EXPECT_NE(corrupt(0, 0).find("magic"), std::string::npos);
  EXPECT_NE(corrupt(4, 9).find("version"), std::string::npos);
  EXPECT_NE(corrupt(7, 7).find("ndim"), std::string::npos);
  EXPECT_NE(corrupt(15, 0x80).find("negative"), std::string::npos);
  EXPECT_NE(corrupt(8 + 8 * 4, 1).find("unused dimension"), std::string::npos);
}

TEST(CompressBitPack, RoundTripsEveryWidthAndIsDense) {
  at::Generator generator = testing::seeded(31);
  for (int bits = 1; bits <= 32; ++bits) {
    for (int64_t count : {0, 1, 31, 32, 33, 1000, 100003}) {
      const at::Tensor random = at::randint(0, int64_t{1} << 62, {count}, generator, at::kLong);
      const at::Tensor codes = random.bitwise_and((int64_t{1} << bits) - 1).to(at::kInt);
      std::vector<uint8_t> packed(packed_bytes(count, bits) + 1, 0xAB);
      EXPECT_EQ(packed.size() - 1, static_cast<size_t>((count * bits + 7) / 8));
      pack_bits(reinterpret_cast<const uint32_t*>(codes.data_ptr<int32_t>()), count, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "wrote past the end";
      at::Tensor back = at::empty({count}, at::kInt);
      unpack_bits(packed.data(), count, bits, reinterpret_cast<uint32_t*>(back.data_ptr<int32_t>()));
      EXPECT_TRUE(at::equal(back, codes)) << bits << " bits, " << count << " codes";
    }
  }
  // Least significant bit first: codes 1, 2, 3 of 2 bits are 0b111001.
  const uint32_t codes[] = {1, 2, 3};
  uint8_t byte = 0xFF;
  pack_bits(codes, 3, 2, &byte);
  EXPECT_EQ(byte, 0x39);
}

TEST(CompressSizes, MessagesAreHeaderPlusTheDocumentedPayloadBits) {
  const std::vector<int64_t> shape = {6, 10, 7, 3};
  const int64_t n = 6 * 10 * 7 * 3;
  const at::Tensor x = at::relu(randn(shape, 32));
  auto bytes_of = [](int64_t count, int bits) { return static_cast<size_t>((count * bits + 7) / 8); };
  const int64_t topk_k = std::llround(0.1 * n);
  const std::vector<std::pair<std::string, size_t>> expected = {
      {"none", 64 + 4 * n},
      {"fp16", 64 + 2 * n},
      {"bf16", 64 + 2 * n},
      {"quant:bits=4", 64 + 8 + 8 + bytes_of(n, 4)},
      {"quant:bits=12", 64 + 8 + 8 + bytes_of(n, 12)},
      {"quant:bits=5,per=channel", 64 + 8 + 10 * 8 + bytes_of(n, 5)},
      {"sortquant:bits=6,split=2", 64 + 8 + 4 * 8 + bytes_of(n, 8)},
      // Per sample: 6 matrices [10, 21]; one batch matrix: [6, 210].
      {"lowrank:rank=3", 64 + 16 + 6 * (10 + 21) * 3 * 4},
      {"lowrank:rank=3,factors=fp16", 64 + 16 + 6 * (10 + 21) * 3 * 2},
      {"lowrank:rank=3,view=batch", 64 + 16 + (6 + 210) * 3 * 4},
      {"topk:ratio=0.1", 64 + 16 + 4 * topk_k + bytes_of(topk_k, 11)},
      {"kmeans:bits=3", 64 + 8 + 8 * 4 + bytes_of(n, 3)},
  };
  for (const auto& [spec, size] : expected) {
    auto codec = make_codec(spec);
    EXPECT_EQ(encoded(*codec, x).size(), size) << spec;
    EXPECT_EQ(codec->encoded_bytes(x.sizes()), size) << spec;
  }
  // 4 bits cost 1/8 of float32, 12 bits 3/8, up to the header and table.
  EXPECT_EQ(bytes_of(n, 4) * 8, static_cast<size_t>(4 * n));
  EXPECT_EQ(bytes_of(n, 12) * 8, static_cast<size_t>(4 * n) * 3);
}

TEST(CompressSizes, EncodeWritesExactlyTheSizeTheShapeDetermines) {
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {1}, {7}, {3, 0, 2}, {1, 1}, {2, 3, 5}, {5, 1, 9, 2}};
  for (const auto& [name, summary] : codec_catalogue()) {
    auto codec = make_codec(name);
    for (const auto& shape : shapes) {
      const at::Tensor x = randn(shape, 33);
      const std::vector<uint8_t> bytes = encoded(*codec, x);
      EXPECT_EQ(bytes.size(), codec->encoded_bytes(x.sizes())) << name;
      const at::Tensor decoded = codec->decode(bytes.data(), bytes.size());
      EXPECT_EQ(decoded.sizes(), x.sizes()) << name;
    }
  }
}

TEST(CompressSpec, ErrorsNameTheCodecAndWhatIsAllowed) {
  auto usage = [](const std::string& spec) { return error_message<UsageError>([&] { make_codec(spec); }); };
  EXPECT_EQ(usage("qant"), "unknown codec 'qant'; known: none, fp16, bf16, quant, sortquant, lowrank, topk, kmeans");
  EXPECT_EQ(usage("quant:bits=20"), "codec 'quant': bits=20 is out of range (1..16)");
  EXPECT_EQ(usage("topk:bits=4"), "codec 'topk': unknown parameter 'bits' (known: ratio, ef)");
  EXPECT_NE(usage("quant:bits").find("codec 'quant': malformed parameter 'bits'"), std::string::npos);
  EXPECT_NE(usage("quant:").find("codec 'quant'"), std::string::npos);
  EXPECT_NE(usage("quant:bits=x").find("not an integer"), std::string::npos);
  EXPECT_NE(usage("quant:bits=4,bits=5").find("twice"), std::string::npos);
  EXPECT_NE(usage("quant:per=row").find("tensor, channel"), std::string::npos);
  EXPECT_NE(usage("topk:ratio=0").find("out of range"), std::string::npos);
  EXPECT_NE(usage("topk:ratio=1.5").find("codec 'topk'"), std::string::npos);
  EXPECT_NE(usage("none:bits=4").find("takes no parameters"), std::string::npos);
  EXPECT_NE(usage("kmeans:bits=9").find("codec 'kmeans': bits=9"), std::string::npos);
  EXPECT_NE(usage("").find("empty"), std::string::npos);
}

TEST(CompressSpec, CanonicalSpecsRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"none", "none"},
      {"fp16", "fp16"},
      {"bf16", "bf16"},
      {"quant:bits=4", "quant:bits=4,per=tensor,round=nearest,ef=0"},
      {"quant:round=stochastic,per=channel,bits=3,ef=1", "quant:bits=3,per=channel,round=stochastic,ef=1"},
      {"sortquant:bits=6,split=2", "sortquant:bits=6,split=2,ef=0"},
      {"lowrank:rank=12,factors=fp16", "lowrank:rank=12,iters=1,view=sample,factors=fp16,ef=0"},
      {"topk:ratio=0.2", "topk:ratio=0.2,ef=0"},
      {"kmeans:bits=4,iters=50", "kmeans:bits=4,iters=50,ef=0"},
  };
  for (const auto& [spec, canonical] : cases) {
    auto codec = make_codec(spec);
    EXPECT_EQ(codec->spec(), canonical);
    EXPECT_EQ(make_codec(codec->spec())->spec(), canonical);
  }
  EXPECT_EQ(codec_catalogue().size(), 8u);
}

}  // namespace
}  // namespace splitpipe
