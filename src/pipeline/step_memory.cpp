#include "splitpipe/step_memory.hpp"

#include <c10/core/CPUAllocator.h>
#include <malloc.h>

#include <cstdlib>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

namespace splitpipe::step_memory {
namespace {

std::atomic<int64_t> g_live{0}, g_peak{0};
thread_local bool t_counted = false;
c10::Allocator* g_inner = nullptr;

// Every allocation starts with a header holding the bytes it counted (0 when made by a thread
// that is not counted); the tensor's data follows it. LibTorch's raw_allocate needs the data
// pointer to be the deleter's context, so the header, not a side table, carries the size. 64
// bytes keep the data as aligned as the inner allocator's (gAlignment).
constexpr size_t kHeader = 64;

void release(void* data) {
  if (data == nullptr) return;
  auto* block = static_cast<uint8_t*>(data) - kHeader;
  int64_t counted = 0;
  std::memcpy(&counted, block, sizeof(counted));
  g_live.fetch_sub(counted, std::memory_order_relaxed);
  g_inner->raw_deallocate(block);
}

class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    auto* block = static_cast<uint8_t*>(g_inner->raw_allocate(n + kHeader));
    const int64_t counted = t_counted ? static_cast<int64_t>(n) : 0;
    std::memcpy(block, &counted, sizeof(counted));
    if (counted > 0) {
      const int64_t live = g_live.fetch_add(counted, std::memory_order_relaxed) + counted;
      int64_t peak = g_peak.load(std::memory_order_relaxed);
      while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
      }
    }
    void* data = block + kHeader;
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

}  // namespace

void keep_freed_memory_for_reuse() {
  for (const char* name : {"MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"})
    if (std::getenv(name)) return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

void install() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_inner = c10::GetCPUAllocator();
    if (g_inner->raw_deleter() == nullptr) return;  // cannot wrap it: nothing is counted (peaks stay 0)
    static CountingAllocator allocator;
    // Priority above the default allocator's, so LibTorch's CPU tensors come from it.
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  });
  t_counted = true;
}

int64_t live_bytes() { return g_live.load(std::memory_order_relaxed); }

void reset_peak() { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

int64_t peak_bytes() { return g_peak.load(std::memory_order_relaxed); }

}  // namespace splitpipe::step_memory
