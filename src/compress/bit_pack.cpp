// Group-at-a-time packing: every 32 codes end on a 32-bit word boundary (32*bits bits), so groups
// of 32 codes pack independently. The bulk is split across threads, only the final <32 codes go
// through a small padded buffer. Widths that divide a byte (1, 2, 4, 8, 16 bits) have loops the
// compiler vectorizes; the others shift codes through a 64-bit accumulator, fully unrolled over
// the 32 codes of a group so that every shift and word store position is a constant.
#include "bit_pack.hpp"

#include "vector_clones.hpp"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace splitpipe {
namespace {

constexpr int64_t kGroup = 32;            // codes per word-aligned group
constexpr int64_t kGroupsPerTask = 2048;  // 64k codes: enough work to be worth a thread
static_assert(kCodeBlock % kGroup == 0, "fused blocks must hold whole groups");

inline void store32(uint8_t* out, uint32_t word) { std::memcpy(out, &word, 4); }
inline uint32_t load32(const uint8_t* in) {
  uint32_t word;
  std::memcpy(&word, in, 4);
  return word;
}

// Packs a whole number of groups: exactly groups*4*Bits bytes.
template <int Bits>
void pack_groups(const uint32_t* codes, int64_t groups, uint8_t* out) {
  constexpr uint64_t mask = Bits == 32 ? 0xffffffffull : (1ull << Bits) - 1;
  for (int64_t g = 0; g < groups; ++g, codes += kGroup, out += 4 * Bits) {
    uint64_t accumulator = 0;
    int filled = 0;
    uint8_t* word = out;
#pragma GCC unroll 32
    for (int i = 0; i < kGroup; ++i) {
      accumulator |= (codes[i] & mask) << filled;
      filled += Bits;
      if (filled >= 32) {
        store32(word, static_cast<uint32_t>(accumulator));
        word += 4;
        accumulator >>= 32;
        filled -= 32;
      }
    }
  }
}

template <int Bits>
void unpack_groups(const uint8_t* in, int64_t groups, uint32_t* codes) {
  constexpr uint64_t mask = Bits == 32 ? 0xffffffffull : (1ull << Bits) - 1;
  for (int64_t g = 0; g < groups; ++g, in += 4 * Bits, codes += kGroup) {
    uint64_t accumulator = 0;
    int available = 0;
    const uint8_t* word = in;
#pragma GCC unroll 32
    for (int i = 0; i < kGroup; ++i) {
      if (available < Bits) {
        accumulator |= static_cast<uint64_t>(load32(word)) << available;
        word += 4;
        available += 32;
      }
      codes[i] = static_cast<uint32_t>(accumulator & mask);
      accumulator >>= Bits;
      available -= Bits;
    }
  }
}

// Widths that divide a byte: byte i holds codes [i*PerByte, (i+1)*PerByte), lowest first.
template <int Bits>
SPLITPIPE_VECTOR_CLONES void pack_sub_byte(const uint32_t* codes, int64_t groups, uint8_t* out) {
  constexpr int per_byte = 8 / Bits;
  constexpr uint32_t mask = (1u << Bits) - 1;
  const int64_t bytes = groups * kGroup / per_byte;
  for (int64_t i = 0; i < bytes; ++i) {
    uint32_t byte = 0;
    for (int k = 0; k < per_byte; ++k) byte |= (codes[i * per_byte + k] & mask) << (k * Bits);
    out[i] = static_cast<uint8_t>(byte);
  }
}

template <int Bits>
SPLITPIPE_VECTOR_CLONES void unpack_sub_byte(const uint8_t* in, int64_t groups, uint32_t* codes) {
  constexpr int per_byte = 8 / Bits;
  constexpr uint32_t mask = (1u << Bits) - 1;
  const int64_t bytes = groups * kGroup / per_byte;
  for (int64_t i = 0; i < bytes; ++i) {
    const uint32_t byte = in[i];
    for (int k = 0; k < per_byte; ++k) codes[i * per_byte + k] = (byte >> (k * Bits)) & mask;
  }
}

template <>
void pack_groups<1>(const uint32_t* codes, int64_t groups, uint8_t* out) { pack_sub_byte<1>(codes, groups, out); }
template <>
void pack_groups<2>(const uint32_t* codes, int64_t groups, uint8_t* out) { pack_sub_byte<2>(codes, groups, out); }
template <>
void pack_groups<4>(const uint32_t* codes, int64_t groups, uint8_t* out) { pack_sub_byte<4>(codes, groups, out); }
template <>
void unpack_groups<1>(const uint8_t* in, int64_t groups, uint32_t* codes) { unpack_sub_byte<1>(in, groups, codes); }
template <>
void unpack_groups<2>(const uint8_t* in, int64_t groups, uint32_t* codes) { unpack_sub_byte<2>(in, groups, codes); }
template <>
void unpack_groups<4>(const uint8_t* in, int64_t groups, uint32_t* codes) { unpack_sub_byte<4>(in, groups, codes); }

// Byte and 16-bit codes: a narrowing or widening copy.
template <typename Word>
SPLITPIPE_VECTOR_CLONES void pack_words(const uint32_t* codes, int64_t groups, uint8_t* out) {
  const int64_t count = groups * kGroup;
  for (int64_t i = 0; i < count; ++i) {
    const auto code = static_cast<Word>(codes[i]);
    std::memcpy(out + sizeof(Word) * i, &code, sizeof(Word));  // little-endian, as payload.hpp checks
  }
}
template <typename Word>
SPLITPIPE_VECTOR_CLONES void unpack_words(const uint8_t* in, int64_t groups, uint32_t* codes) {
  const int64_t count = groups * kGroup;
  for (int64_t i = 0; i < count; ++i) {
    Word code;
    std::memcpy(&code, in + sizeof(Word) * i, sizeof(Word));
    codes[i] = code;
  }
}

template <>
void pack_groups<8>(const uint32_t* codes, int64_t groups, uint8_t* out) { pack_words<uint8_t>(codes, groups, out); }
template <>
void unpack_groups<8>(const uint8_t* in, int64_t groups, uint32_t* codes) { unpack_words<uint8_t>(in, groups, codes); }
template <>
void pack_groups<16>(const uint32_t* codes, int64_t groups, uint8_t* out) { pack_words<uint16_t>(codes, groups, out); }
template <>
void unpack_groups<16>(const uint8_t* in, int64_t groups, uint32_t* codes) {
  unpack_words<uint16_t>(in, groups, codes);
}

using PackFn = void (*)(const uint32_t*, int64_t, uint8_t*);
using UnpackFn = void (*)(const uint8_t*, int64_t, uint32_t*);

template <size_t... I>
constexpr std::array<PackFn, sizeof...(I)> pack_table(std::index_sequence<I...>) {
  return {&pack_groups<static_cast<int>(I) + 1>...};
}
template <size_t... I>
constexpr std::array<UnpackFn, sizeof...(I)> unpack_table(std::index_sequence<I...>) {
  return {&unpack_groups<static_cast<int>(I) + 1>...};
}

constexpr auto kPack = pack_table(std::make_index_sequence<32>());
constexpr auto kUnpack = unpack_table(std::make_index_sequence<32>());

void check_bits(int bits) { TORCH_CHECK(bits >= 1 && bits <= 32, "bit width ", bits, " outside 1..32"); }

// Byte offset of code `index`, a multiple of 8 (every block and task starts on a group).
inline size_t byte_offset(int64_t index, int bits) { return static_cast<size_t>(index / 8) * bits; }

// Packs count codes (any count) serially; the last partial group goes through a padded buffer.
void pack_span(PackFn pack, const uint32_t* codes, int64_t count, int bits, uint8_t* out) {
  const int64_t groups = count / kGroup;
  pack(codes, groups, out);
  const int64_t rest = count - groups * kGroup;
  if (rest == 0) return;
  // The last partial group: pad with zero codes, keep only the bytes that hold real codes.
  uint32_t padded_codes[kGroup] = {};
  std::memcpy(padded_codes, codes + groups * kGroup, rest * sizeof(uint32_t));
  uint8_t padded_bytes[4 * 32];
  pack(padded_codes, 1, padded_bytes);
  std::memcpy(out + byte_offset(groups * kGroup, bits), padded_bytes, packed_bytes(rest, bits));
}

void unpack_span(UnpackFn unpack, const uint8_t* in, int64_t count, int bits, uint32_t* codes) {
  const int64_t groups = count / kGroup;
  unpack(in, groups, codes);
  const int64_t rest = count - groups * kGroup;
  if (rest == 0) return;
  uint8_t padded_bytes[4 * 32] = {};
  std::memcpy(padded_bytes, in + byte_offset(groups * kGroup, bits), packed_bytes(rest, bits));
  uint32_t padded_codes[kGroup];
  unpack(padded_bytes, 1, padded_codes);
  std::memcpy(codes + groups * kGroup, padded_codes, rest * sizeof(uint32_t));
}

// Runs body(begin, end) over [0, count) in spans that start on a group, on several threads.
template <typename Body>
void for_each_span(int64_t count, int64_t span, const Body& body) {
  const int64_t spans = (count + span - 1) / span;
  const int64_t spans_per_task = std::max<int64_t>(1, kGroupsPerTask * kGroup / span);
  at::parallel_for(0, spans, spans_per_task, [&](int64_t first, int64_t last) {
    for (int64_t s = first; s < last; ++s) body(s * span, std::min(count, (s + 1) * span));
  });
}

}  // namespace

size_t packed_bytes(int64_t count, int bits) {
  // count*bits can exceed 64 bits only for absurd counts; split to stay exact.
  const auto n = static_cast<uint64_t>(count);
  return static_cast<size_t>((n / 8) * bits + ((n % 8) * bits + 7) / 8);
}

void pack_bits(const uint32_t* codes, int64_t count, int bits, uint8_t* out) {
  check_bits(bits);
  const PackFn pack = kPack[bits - 1];
  for_each_span(count, kGroupsPerTask * kGroup, [&](int64_t begin, int64_t end) {
    pack_span(pack, codes + begin, end - begin, bits, out + byte_offset(begin, bits));
  });
}

void unpack_bits(const uint8_t* in, int64_t count, int bits, uint32_t* codes) {
  check_bits(bits);
  const UnpackFn unpack = kUnpack[bits - 1];
  for_each_span(count, kGroupsPerTask * kGroup, [&](int64_t begin, int64_t end) {
    unpack_span(unpack, in + byte_offset(begin, bits), end - begin, bits, codes + begin);
  });
}

void pack_produced(int64_t count, int bits, uint8_t* out, CodeProducer produce) {
  check_bits(bits);
  const PackFn pack = kPack[bits - 1];
  for_each_span(count, kCodeBlock, [&](int64_t begin, int64_t end) {
    uint32_t codes[kCodeBlock];
    produce(begin, end, codes);
    pack_span(pack, codes, end - begin, bits, out + byte_offset(begin, bits));
  });
}

void unpack_consumed(const uint8_t* in, int64_t count, int bits, CodeConsumer consume) {
  check_bits(bits);
  const UnpackFn unpack = kUnpack[bits - 1];
  for_each_span(count, kCodeBlock, [&](int64_t begin, int64_t end) {
    uint32_t codes[kCodeBlock];
    unpack_span(unpack, in + byte_offset(begin, bits), end - begin, bits, codes);
    consume(begin, end, codes);
  });
}

}  // namespace splitpipe
