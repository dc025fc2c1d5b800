// Word-at-a-time packing: codes are shifted into a 64-bit accumulator and written 32 bits at a
// time, with the width a template parameter so the shifts are constants. Every 32 codes end on
// a 32-bit word boundary (32*bits bits), so blocks of 32 codes pack independently: the bulk is
// split across threads and only the final <32 codes go through a small padded buffer.
#include "bit_pack.hpp"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <array>
#include <cstring>
#include <utility>

namespace splitpipe {
namespace {

constexpr int64_t kGroup = 32;           // codes per word-aligned group
constexpr int64_t kGroupsPerTask = 2048;  // 64k codes: enough work to be worth a thread

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
  uint64_t accumulator = 0;
  int filled = 0;
  const int64_t count = groups * kGroup;
  for (int64_t i = 0; i < count; ++i) {
    accumulator |= (codes[i] & mask) << filled;
    filled += Bits;
    if (filled >= 32) {
      store32(out, static_cast<uint32_t>(accumulator));
      out += 4;
      accumulator >>= 32;
      filled -= 32;
    }
  }
}

template <int Bits>
void unpack_groups(const uint8_t* in, int64_t groups, uint32_t* codes) {
  constexpr uint64_t mask = Bits == 32 ? 0xffffffffull : (1ull << Bits) - 1;
  uint64_t accumulator = 0;
  int available = 0;
  const int64_t count = groups * kGroup;
  for (int64_t i = 0; i < count; ++i) {
    if (available < Bits) {
      accumulator |= static_cast<uint64_t>(load32(in)) << available;
      in += 4;
      available += 32;
    }
    codes[i] = static_cast<uint32_t>(accumulator & mask);
    accumulator >>= Bits;
    available -= Bits;
  }
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

}  // namespace

size_t packed_bytes(int64_t count, int bits) {
  // count*bits can exceed 64 bits only for absurd counts; split to stay exact.
  const auto n = static_cast<uint64_t>(count);
  return static_cast<size_t>((n / 8) * bits + ((n % 8) * bits + 7) / 8);
}

void pack_bits(const uint32_t* codes, int64_t count, int bits, uint8_t* out) {
  check_bits(bits);
  const PackFn pack = kPack[bits - 1];
  const int64_t groups = count / kGroup;
  const size_t group_bytes = 4 * static_cast<size_t>(bits);
  at::parallel_for(0, groups, kGroupsPerTask, [&](int64_t begin, int64_t end) {
    pack(codes + begin * kGroup, end - begin, out + begin * group_bytes);
  });
  const int64_t rest = count - groups * kGroup;
  if (rest == 0) return;
  // The last partial group: pad with zero codes, keep only the bytes that hold real codes.
  uint32_t padded_codes[kGroup] = {};
  std::memcpy(padded_codes, codes + groups * kGroup, rest * sizeof(uint32_t));
  uint8_t padded_bytes[4 * 32];
  pack(padded_codes, 1, padded_bytes);
  std::memcpy(out + groups * group_bytes, padded_bytes, packed_bytes(rest, bits));
}

void unpack_bits(const uint8_t* in, int64_t count, int bits, uint32_t* codes) {
  check_bits(bits);
  const UnpackFn unpack = kUnpack[bits - 1];
  const int64_t groups = count / kGroup;
  const size_t group_bytes = 4 * static_cast<size_t>(bits);
  at::parallel_for(0, groups, kGroupsPerTask, [&](int64_t begin, int64_t end) {
    unpack(in + begin * group_bytes, end - begin, codes + begin * kGroup);
  });
  const int64_t rest = count - groups * kGroup;
  if (rest == 0) return;
  uint8_t padded_bytes[4 * 32] = {};
  std::memcpy(padded_bytes, in + groups * group_bytes, packed_bytes(rest, bits));
  uint32_t padded_codes[kGroup];
  unpack(padded_bytes, 1, padded_codes);
  std::memcpy(codes + groups * kGroup, padded_codes, rest * sizeof(uint32_t));
}

}  // namespace splitpipe
