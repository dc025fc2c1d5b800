// Internal: dense little-endian bit packing of unsigned codes, 1..32 bits each.
// Code i occupies bits [i*bits, (i+1)*bits) of the byte stream, least significant bit first,
// so 4-bit codes cost 1/8 of float32 and 12-bit codes 3/8 (no rounding up to 16).
#pragma once
#include <c10/util/FunctionRef.h>

#include <cstddef>
#include <cstdint>

namespace splitpipe {

// Bytes holding `count` codes of `bits` bits: ceil(count*bits/8).
size_t packed_bytes(int64_t count, int bits);

// Writes exactly packed_bytes(count, bits) bytes to out (every byte overwritten, unused high
// bits of the last byte zero). Codes are masked to `bits` bits.
void pack_bits(const uint32_t* codes, int64_t count, int bits, uint8_t* out);

// Reads packed_bytes(count, bits) bytes from in.
void unpack_bits(const uint8_t* in, int64_t count, int bits, uint32_t* codes);

// Fused encoders and decoders: the codes of elements [begin, end) pass through a block of at most
// kCodeBlock codes that stays in L1 cache, instead of a whole int32 tensor that makes an extra
// round trip through memory. Blocks start at multiples of 32 codes (so each packs on its own)
// and may run on several threads at once.
constexpr int64_t kCodeBlock = 1024;
// Fills codes[0, end - begin) with the codes of elements [begin, end).
using CodeProducer = c10::function_ref<void(int64_t begin, int64_t end, uint32_t* codes)>;
// Receives the codes of elements [begin, end) as codes[0, end - begin).
using CodeConsumer = c10::function_ref<void(int64_t begin, int64_t end, const uint32_t* codes)>;

// The same bytes as pack_bits of all the produced codes.
void pack_produced(int64_t count, int bits, uint8_t* out, CodeProducer produce);
// Unpacks packed_bytes(count, bits) bytes from in, block by block.
void unpack_consumed(const uint8_t* in, int64_t count, int bits, CodeConsumer consume);

}  // namespace splitpipe
