// Internal: dense little-endian bit packing of unsigned codes, 1..32 bits each.
// Code i occupies bits [i*bits, (i+1)*bits) of the byte stream, least significant bit first,
// so 4-bit codes cost 1/8 of float32 and 12-bit codes 3/8 (no rounding up to 16).
#pragma once
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

}  // namespace splitpipe
