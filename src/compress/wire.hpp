// Internal: what the codec library knows about codec ids on the wire.
#pragma once
#include <cstdint>

namespace splitpipe {

// The codec name for a wire id, or nullptr when the byte names no codec (a corrupt message).
const char* codec_id_name(uint8_t id);

}  // namespace splitpipe
