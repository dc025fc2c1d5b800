// Exact host tensor memory of a training step: LibTorch's CPU allocator is wrapped (c10's
// SetCPUAllocator) by one that counts the bytes allocated by the thread that installed it (the
// training thread; a prefetch thread's batches are not counted) and still alive, and the peak of
// that count. A step's peak above what was alive when it started is what it held at once:
// activations kept for backward (every micro-batch in flight), parameter gradients, boundary
// messages. Device memory (--edge-device/--server-device cuda) is not counted.
#pragma once
#include <cstdint>

namespace splitpipe::step_memory {

// Installs the counting allocator (once per process) and counts this thread's allocations.
void install();
// Bytes this thread allocated and has not freed yet; 0 before install().
int64_t live_bytes();
// Starts a new peak at the current live bytes.
void reset_peak();
// The largest live_bytes() since reset_peak().
int64_t peak_bytes();

}  // namespace splitpipe::step_memory
