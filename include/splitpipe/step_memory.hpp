// Exact host tensor memory of a training step: LibTorch's CPU allocator is wrapped (c10's
// SetCPUAllocator) by one that counts the bytes allocated by the thread that installed it (the
// training thread; a prefetch thread's batches are not counted) and still alive, and the peak of
// that count. A step's peak above what was alive when it started is what it held at once:
// activations kept for backward (every micro-batch in flight), parameter gradients, boundary
// messages. Device memory (--edge-device/--server-device cuda) is not counted.
#pragma once
#include <cstdint>

namespace splitpipe::step_memory {

// glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
// fresh mmap and returns it with munmap: every activation tensor of every micro-batch then
// costs page faults on zeroed pages, which on MobileNetV2 here took more time than the
// arithmetic. Training allocates the same sizes every step, so this keeps freed memory in the
// heap instead (RSS stays at its peak). MALLOC_* environment variables, when set, win. Called
// first thing by splitpipe's main and by the benchmarks, so they measure the same heap.
void keep_freed_memory_for_reuse();

// Installs the counting allocator (once per process) and counts this thread's allocations.
void install();
// Bytes this thread allocated and has not freed yet; 0 before install().
int64_t live_bytes();
// Starts a new peak at the current live bytes.
void reset_peak();
// The largest live_bytes() since reset_peak().
int64_t peak_bytes();

}  // namespace splitpipe::step_memory
